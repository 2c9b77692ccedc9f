#!/usr/bin/env bash
# Measures `tarifa rate` on generated logs: events/s, peak memory, and the ratio to a pass that only
# parses the same file. Usage: bench/rate.sh [EVENTS...]   (default: 1000000 10000000)
# Writes logs to bench-data/ (git-ignored); prints a Markdown table for BENCHMARKS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -q
bin=target/release/tarifa
mkdir -p bench-data
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(1000000 10000000)
measure() { # prints "seconds max_rss_kb"
  /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1
}
echo "| events | users | file | parse only | rate (--summary) | events/s | rate/parse ratio | peak RSS |"
echo "|---:|---:|---:|---:|---:|---:|---:|---:|"
for n in "${sizes[@]}"; do
  users=$(( n / 10 ))
  log=bench-data/gen-$n.jsonl cfg=bench-data/gen-$n.toml
  [ -s "$log" ] || $bin gen --events "$n" --users "$users" --businesses 50 --currency EUR \
      --seed 7 --output "$log" --config-out "$cfg" 2>/dev/null
  bytes=$(stat -c %s "$log")
  read -r parse _ < <(measure $bin rate "$log" --config "$cfg" --parse-only)
  best=""; rss=""
  runs=3; [ "$n" -le 10000000 ] || runs=1
  for _ in $(seq $runs); do
    read -r t m < <(measure $bin rate "$log" --config "$cfg" --summary)
    if [ -z "$best" ] || awk "BEGIN{exit !($t < $best)}"; then best=$t; rss=$m; fi
  done
  awk -v n="$n" -v u="$users" -v b="$bytes" -v p="$parse" -v t="$best" -v r="$rss" 'BEGIN{
    printf "| %d | %d | %.2f GB | %.2f s | %.2f s | %.2f M | %.2f | %.0f MB |\n", n, u, b/1e9, p, t, n/t/1e6, p/t, r/1024 }'
done
