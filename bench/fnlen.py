#!/usr/bin/env python3
# Function lengths of shipped Rust code (tests excluded): a distribution and the longest ones.
# Usage: TOP=15 python3 bench/fnlen.py crates/*/src
import re,sys,os
# counts lines of each fn body (from the fn line to its closing brace) in non-test code
def fns(path):
    src=open(path).read().split('\n')
    out=[]
    i=0
    in_tests=False
    while i<len(src):
        l=src[i]
        if re.match(r'\s*#\[cfg\(test\)\]',l): break
        m=re.match(r'\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)',l)
        if m:
            depth=0;started=False;j=i
            while j<len(src):
                s=re.sub(r'"(\\.|[^"\\])*"','""',src[j]); s=re.sub(r"'(\\.|[^'\\])'","''",s); s=s.split('//')[0]
                for ch in s:
                    if ch=='{': depth+=1;started=True
                    elif ch=='}': depth-=1
                    elif ch==';' and not started and depth==0: break
                if (started and depth==0) or (not started and ';' in s): break
                j+=1
            if started: out.append((j-i+1,m.group(6),path,i+1))
        i+=1
    return out
allf=[]
for root in sys.argv[1:]:
    for d,_,fs in os.walk(root):
        for f in fs:
            if f.endswith('.rs') and '/tests' not in d: allf+=fns(os.path.join(d,f))
n=len(allf)
b=[(0,20),(21,40),(41,70),(71,150),(151,10000)]
print("functions:",n)
for lo,hi in b: print(f"{lo}-{hi}:",sum(1 for x in allf if lo<=x[0]<=hi))
for x in sorted(allf,reverse=True)[:int(os.environ.get('TOP','15'))]: print(x)
