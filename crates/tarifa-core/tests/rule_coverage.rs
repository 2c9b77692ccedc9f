//! Every pricing rule the rating engine implements has a test that names it.
//!
//! The rule ids are the pricing rules of `docs/RULES.md` that the engine implements. A test
//! "names" a rule when the id appears in test code: a scenario's `rules` line
//! (`tests/scenarios/*.scn`), or a test file / `#[cfg(test)]` module, written `C-10` or `c_10`.

use std::path::Path;

fn required() -> Vec<String> {
    let mut ids = Vec::new();
    let mut range = |prefix: &str, last: u32| {
        for n in 1..=last {
            ids.push(format!("{prefix}-{n}"));
        }
    };
    range("1", 6);
    range("A", 4);
    range("B", 9);
    range("C", 18);
    range("D", 20);
    range("V", 8);
    range("AI", 6);
    range("MK", 6);
    range("W", 5);
    range("E", 3);
    ids.extend(["RC-3", "RC-4", "RC-5"].map(String::from));
    ids
}

/// The test code of a source file: everything from the first `#[cfg(test)]` on.
fn test_code(path: &Path, text: &str) -> String {
    let in_tests_dir = path.components().any(|c| c.as_os_str() == "tests");
    if in_tests_dir {
        return text.to_string();
    }
    text.find("#[cfg(test)]")
        .map_or(String::new(), |i| text[i..].to_string())
}

fn collect(dir: &Path, out: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            if path.file_name().is_some_and(|n| n != "target") {
                collect(&path, out);
            }
        } else if path.extension().is_some_and(|e| e == "rs" || e == "scn") {
            let text = std::fs::read_to_string(&path).unwrap();
            out.push_str(&test_code(&path, &text));
            out.push('\n');
        }
    }
}

/// Does `text` contain `id` (or its snake-case form) as a whole token?
fn names(text: &str, id: &str) -> bool {
    let snake = id.to_ascii_lowercase().replace('-', "_");
    [id.to_string(), snake].iter().any(|needle| {
        text.match_indices(needle.as_str()).any(|(i, m)| {
            let before = text[..i].chars().next_back();
            let after = text[i + m.len()..].chars().next();
            !before.is_some_and(|c| c.is_ascii_alphanumeric())
                && !after.is_some_and(|c| c.is_ascii_digit())
        })
    })
}

#[test]
fn every_implemented_rule_has_a_test_naming_it() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut code = String::new();
    collect(crates, &mut code);
    assert!(
        code.len() > 10_000,
        "found no test code under {}",
        crates.display()
    );
    let missing: Vec<String> = required()
        .into_iter()
        .filter(|id| !names(&code, id))
        .collect();
    assert!(
        missing.is_empty(),
        "rules without a test naming them: {missing:?}"
    );
}

#[test]
fn the_token_match_is_exact() {
    assert!(names("scenario T-C10 rules C-10", "C-10"));
    assert!(!names("rules C-10", "C-1"));
    assert!(names("fn c_1_four_categories()", "C-1"));
    assert!(!names("fn c_18()", "C-1"));
    assert!(!names("AI-1", "I-1"));
}
