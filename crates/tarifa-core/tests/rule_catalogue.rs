//! `docs/RULES.md` explains every rule id a bill can cite.
//!
//! Every charge line names the rule that decided it (field `rule`, and the `why` text). The ids
//! come from string literals in this crate's sources (`rule: "D-16"`, `"… ({rule}, V-3)"`). This
//! test collects every rule id that appears inside a string literal of
//! `crates/tarifa-core/src/**/*.rs` (outside items marked `#[cfg(test)]`) and checks that:
//!
//! * each one has an entry in `docs/RULES.md` marked `yes` in its "On bills" column;
//! * each entry marked `yes` is still cited by the code (an id the code stopped citing must be
//!   marked `doc only`).
//!
//! Entries marked `doc only` are rules that never appear on a bill line but that the
//! documentation and the config refer to (switches such as `B-7`, rate-card rules such as `RC-3`,
//! rules tarifa knowingly does not implement such as `D-11`); they are allowed.
//!
//! Rule ids look like `1-2`, `A-2`, `C-10`, `D-16`, `V-3`, `AI-1`, `MK-4`, `RC-3`: a prefix of one
//! to three capital letters (or the single digit `1`, the rules of every era), a dash, a number
//! and an optional lower-case letter. Only std is used: a small hand-written scanner finds the
//! string literals (skipping comments, char literals and lifetimes), then the ids inside them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Every `.rs` file under `dir`, recursively (files move around; nothing is named here).
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A Rust source text taken apart: its string literals (normal, raw and byte strings, with the
/// index of their first character) and its code, where every comment, string and char literal
/// is blanked out (so that braces and attributes can be found in code only). Escapes inside
/// literals are kept as written, which is enough to find ids.
struct Lexed {
    literals: Vec<(usize, String)>,
    code: Vec<char>,
}

fn lex(src: &str) -> Lexed {
    let chars: Vec<char> = src.chars().collect();
    let n = chars.len();
    let mut code = chars.clone();
    let mut literals = Vec::new();
    let blank = |code: &mut Vec<char>, from: usize, to: usize| {
        for c in &mut code[from..to.min(n)] {
            if *c != '\n' {
                *c = ' ';
            }
        }
    };
    let at = |k: usize| chars.get(k).copied();
    let mut i = 0;
    while i < n {
        let c = chars[i];
        // Line comment.
        if c == '/' && at(i + 1) == Some('/') {
            let from = i;
            while i < n && chars[i] != '\n' {
                i += 1;
            }
            blank(&mut code, from, i);
            continue;
        }
        // Block comment (nested).
        if c == '/' && at(i + 1) == Some('*') {
            let from = i;
            let mut depth = 0;
            while i < n {
                if chars[i] == '/' && at(i + 1) == Some('*') {
                    depth += 1;
                    i += 2;
                } else if chars[i] == '*' && at(i + 1) == Some('/') {
                    depth -= 1;
                    i += 2;
                    if depth == 0 {
                        break;
                    }
                } else {
                    i += 1;
                }
            }
            blank(&mut code, from, i);
            continue;
        }
        // Raw string: r"…", r#"…"#, br"…" (only where `r` or `b` starts a token).
        let ident_before = i > 0 && (chars[i - 1].is_alphanumeric() || chars[i - 1] == '_');
        if !ident_before && (c == 'r' || (c == 'b' && at(i + 1) == Some('r'))) {
            let mut j = if c == 'b' { i + 2 } else { i + 1 };
            let mut hashes = 0;
            while at(j) == Some('#') {
                hashes += 1;
                j += 1;
            }
            if at(j) == Some('"') {
                j += 1;
                let first = j;
                while j < n && !(chars[j] == '"' && (1..=hashes).all(|h| at(j + h) == Some('#'))) {
                    j += 1;
                }
                literals.push((first, chars[first..j.min(n)].iter().collect()));
                blank(&mut code, i, j + 1 + hashes);
                i = j + 1 + hashes;
                continue;
            }
        }
        // Normal (or byte) string.
        if c == '"' {
            let mut j = i + 1;
            let first = j;
            while j < n && chars[j] != '"' {
                if chars[j] == '\\' {
                    j += 1;
                }
                j += 1;
            }
            literals.push((first, chars[first..j.min(n)].iter().collect()));
            blank(&mut code, i, j + 1);
            i = j + 1;
            continue;
        }
        // Char literal ('x', '\n', '\'', '"') or lifetime ('a).
        if c == '\'' {
            if at(i + 1) == Some('\\') {
                // The escaped character itself, then up to the closing quote.
                let mut j = i + 3;
                while j < n && chars[j] != '\'' {
                    j += 1;
                }
                blank(&mut code, i, j + 1);
                i = j + 1;
            } else if at(i + 2) == Some('\'') {
                blank(&mut code, i, i + 3);
                i += 3;
            } else {
                i += 1;
            }
            continue;
        }
        i += 1;
    }
    Lexed { literals, code }
}

/// The contents of every string literal of a source text.
fn string_literals(src: &str) -> Vec<String> {
    lex(src).literals.into_iter().map(|(_, l)| l).collect()
}

/// The ranges (character indices) of the items marked `#[cfg(test)]`: the attribute up to the
/// end of the item (its `;`, or the brace closing its body: a `mod tests { … }` anywhere in the
/// file, a test-only `fn`, `impl` or `use`).
fn test_items(code: &[char]) -> Vec<(usize, usize)> {
    const ATTR: &str = "#[cfg(test)]";
    let text: String = code.iter().collect();
    let mut ranges = Vec::new();
    let mut search = 0;
    while let Some(found) = text[search..].find(ATTR) {
        let byte = search + found;
        // `find` gives a byte offset; the ranges are in characters (the code may hold non-ASCII).
        let from = text[..byte].chars().count();
        let mut i = from + ATTR.chars().count();
        let mut depth = 0usize;
        while i < code.len() {
            match code[i] {
                '{' => depth += 1,
                '}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 0 {
                        break;
                    }
                }
                ';' if depth == 0 => break,
                _ => {}
            }
            i += 1;
        }
        ranges.push((from, i + 1));
        search = byte + ATTR.len();
    }
    ranges
}

/// The string literals of a source file outside its `#[cfg(test)]` items.
fn code_literals(src: &str) -> Vec<String> {
    let lexed = lex(src);
    let tests = test_items(&lexed.code);
    lexed
        .literals
        .into_iter()
        .filter(|(at, _)| !tests.iter().any(|&(from, to)| (from..to).contains(at)))
        .map(|(_, l)| l)
        .collect()
}

/// Tokens of the shape of a rule id that are not rule ids (they occur in messages of the code).
const NOT_RULE_IDS: &[&str] = &["UTF-8", "UTF-16", "SHA-1", "SHA-256", "SHA-512"];

/// Rule ids inside a text: `[A-Z]{1,3}-[0-9]{1,3}[a-z]?` or `1-[0-9]{1,3}`, as whole tokens (not
/// part of a longer word, number, date or phone number), minus [`NOT_RULE_IDS`].
fn rule_ids(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let n = chars.len();
    let mut ids = Vec::new();
    let mut i = 0;
    while i < n {
        let before = if i == 0 { None } else { Some(chars[i - 1]) };
        let boundary = !before.is_some_and(|b| b.is_alphanumeric() || "_-+.#/".contains(b));
        if !boundary {
            i += 1;
            continue;
        }
        // The prefix.
        let mut j = i;
        if chars[i] == '1' {
            j += 1;
        } else {
            while j < n && j - i < 4 && chars[j].is_ascii_uppercase() {
                j += 1;
            }
            if j == i || j - i > 3 {
                i += 1;
                continue;
            }
        }
        if j >= n || chars[j] != '-' {
            i += 1;
            continue;
        }
        // The number.
        let mut k = j + 1;
        while k < n && chars[k].is_ascii_digit() {
            k += 1;
        }
        if k == j + 1 || k - (j + 1) > 3 {
            i += 1;
            continue;
        }
        // An optional lower-case letter.
        if k < n
            && chars[k].is_ascii_lowercase()
            && !chars.get(k + 1).is_some_and(|c| c.is_alphanumeric())
        {
            k += 1;
        }
        let after = chars.get(k).copied();
        let continues = after.is_some_and(|a| a.is_alphanumeric() || a == '_' || a == '-');
        let decimal = after == Some('.') && chars.get(k + 1).is_some_and(|c| c.is_ascii_digit());
        let ends = !continues && !decimal;
        let id: String = chars[i..k].iter().collect();
        if ends && !NOT_RULE_IDS.contains(&id.as_str()) {
            ids.push(id);
            i = k;
        } else {
            i += 1;
        }
    }
    ids
}

/// Every rule id cited in a string literal of the crate's sources, with the first file citing it.
fn cited_by_code() -> Vec<(String, String)> {
    let src = manifest_dir().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    assert!(!files.is_empty(), "no sources under {}", src.display());
    let mut seen = BTreeSet::new();
    let mut cited = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for literal in code_literals(&text) {
            for id in rule_ids(&literal) {
                if seen.insert(id.clone()) {
                    let shown = file.strip_prefix(manifest_dir()).unwrap_or(&file);
                    cited.push((id, shown.display().to_string()));
                }
            }
        }
    }
    cited.sort_by_key(|a| sort_key(&a.0));
    cited
}

fn sort_key(id: &str) -> (String, u32, String) {
    let (prefix, rest) = id.split_once('-').unwrap_or((id, ""));
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let suffix: String = rest.chars().skip(digits.len()).collect();
    (prefix.to_string(), digits.parse().unwrap_or(0), suffix)
}

/// An entry of the catalogue: a table row whose first cell is a rule id in backticks and whose
/// second cell says whether bills cite it (`yes`) or not (`doc only`).
#[derive(Debug)]
struct Entry {
    id: String,
    on_bills: bool,
    line: usize,
}

fn catalogue_path() -> PathBuf {
    manifest_dir().join("../../docs/RULES.md")
}

fn catalogue(text: &str) -> Vec<Entry> {
    let mut entries = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let Some(row) = line.trim().strip_prefix('|') else {
            continue;
        };
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        let Some(id) = cells
            .first()
            .and_then(|c| c.strip_prefix('`'))
            .and_then(|c| c.strip_suffix('`'))
        else {
            continue;
        };
        if rule_ids(id) != [id.to_string()] {
            continue;
        }
        let mark = cells.get(1).copied().unwrap_or("");
        let on_bills = match mark {
            "yes" => true,
            "doc only" => false,
            other => panic!(
                "docs/RULES.md:{}: entry {id}: the \"On bills\" cell must be `yes` or `doc only`, not {other:?}",
                n + 1
            ),
        };
        entries.push(Entry {
            id: id.to_string(),
            on_bills,
            line: n + 1,
        });
    }
    entries
}

fn read_catalogue() -> Vec<Entry> {
    let path = catalogue_path();
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    catalogue(&text)
}

#[test]
fn every_rule_id_the_code_cites_has_an_entry_in_rules_md() {
    let cited = cited_by_code();
    // The engine cites about twenty rules; finding none means the scanner or the layout broke.
    assert!(
        cited.len() >= 10,
        "found only {} rule ids in crates/tarifa-core/src: {cited:?}",
        cited.len()
    );
    let entries = read_catalogue();
    let missing: Vec<String> = cited
        .iter()
        .filter(|(id, _)| !entries.iter().any(|e| &e.id == id && e.on_bills))
        .map(|(id, file)| {
            if entries.iter().any(|e| &e.id == id) {
                format!("{id} (cited in {file}, but its entry says `doc only`)")
            } else {
                format!("{id} (cited in {file})")
            }
        })
        .collect();
    assert!(
        missing.is_empty(),
        "docs/RULES.md has no `yes` entry for these rule ids the code cites:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn every_entry_marked_yes_is_cited_by_the_code() {
    let cited: BTreeSet<String> = cited_by_code().into_iter().map(|(id, _)| id).collect();
    let stale: Vec<String> = read_catalogue()
        .into_iter()
        .filter(|e| e.on_bills && !cited.contains(&e.id))
        .map(|e| format!("{} (docs/RULES.md:{})", e.id, e.line))
        .collect();
    assert!(
        stale.is_empty(),
        "docs/RULES.md marks these ids `yes` but no source cites them any more (mark them `doc only`):\n  {}",
        stale.join("\n  ")
    );
}

#[test]
fn each_rule_has_one_entry() {
    let mut seen = BTreeSet::new();
    let twice: Vec<String> = read_catalogue()
        .into_iter()
        .filter(|e| !seen.insert(e.id.clone()))
        .map(|e| format!("{} (docs/RULES.md:{})", e.id, e.line))
        .collect();
    assert!(twice.is_empty(), "rule ids with two entries: {twice:?}");
}

#[test]
fn the_scanner_finds_literals_and_ids() {
    let src = r##"
        // "X-1" in a comment is not cited
        /* nor "Y-2" in /* a nested */ block */
        let q = '"'; let e = '\''; fn f<'a>(x: &'a str) {}
        let d = Decision { rule: "D-16", ..d };
        let s = format!("{} at {rate} ({rule}, V-3)", x);
        let r = r#"raw "AI-1" text"#;
        let n = "1-2"; let date = "2026-10-01"; let phone = "+1-555-0100"; let v = "v1-2";
    "##;
    let literals = string_literals(src);
    let ids: Vec<String> = literals.iter().flat_map(|l| rule_ids(l)).collect();
    assert_eq!(ids, ["D-16", "V-3", "AI-1", "1-2"]);

    assert_eq!(
        rule_ids("C-10, MK-4 and RC-3; B-3a."),
        ["C-10", "MK-4", "RC-3", "B-3a"]
    );
    assert!(rule_ids("ABCD-1 wamid.HBgL-12 x-1 UTF-8 2026-07-01 T-C10").is_empty());
}

#[test]
fn test_items_are_left_out() {
    let src = r##"
        fn a() { let r = "A-2"; }
        #[cfg(test)]
        mod tests {
            fn t() { let s = "{ B-4"; let c = '{'; assert_eq!(x, "C-2"); }
        }
        fn b() -> &'static str { "D-3" }
        #[cfg(test)]
        use std::fmt;
        fn c() { let _ = "V-3 // not a comment"; }
    "##;
    let ids: Vec<String> = code_literals(src)
        .iter()
        .flat_map(|l| rule_ids(l))
        .collect();
    assert_eq!(ids, ["A-2", "D-3", "V-3"]);
}

#[test]
fn the_catalogue_reader_takes_only_id_rows() {
    let text = "| Id | On bills | Period | Rule | Source |\n\
                |---|---|---|---|---|\n\
                | `D-16` | yes | from 2026-10-01 | utility in window charged | M3 |\n\
                | `RC-3` | doc only | all | rates CSV layout | M1 |\n\
                | not an id | yes | | | |\n";
    let entries = catalogue(text);
    let got: Vec<(&str, bool)> = entries
        .iter()
        .map(|e| (e.id.as_str(), e.on_bills))
        .collect();
    assert_eq!(got, [("D-16", true), ("RC-3", false)]);
}
