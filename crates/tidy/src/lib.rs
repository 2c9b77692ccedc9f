//! Architecture checks run by `cargo test` (as rust-analyzer's `tidy` does): the direction of
//! dependencies between the service's layers, the purity of the core and of the service's domain,
//! and no module cycle in any crate.
//!
//! It reads the sources as text: the paths of `use` declarations and inline `crate::…`,
//! `super::…` and `self::…` paths, outside comments, string literals and `#[cfg(test)]` code.
//! Test code may build fixtures from any layer; what ships may not.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;

/// A crate's sources: the path of each file under `src/` (`lib.rs`, `domain/book.rs`, …) and
/// its text.
pub type Sources = BTreeMap<String, String>;

/// What the checks found wrong.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Problem {
    /// A module of `layer` uses `target`, a layer it may not depend on.
    Direction {
        file: String,
        layer: String,
        target: String,
    },
    /// A module uses an external crate (or a part of `std`) that its layer must not touch.
    Forbidden { file: String, path: String },
    /// Sibling modules of `parent` that depend on each other in a circle.
    Cycle {
        parent: String,
        modules: Vec<String>,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Direction {
                file,
                layer,
                target,
            } => write!(
                f,
                "{file}: the {layer} layer uses crate::{target}, which it may not depend on"
            ),
            Problem::Forbidden { file, path } => {
                write!(f, "{file}: uses {path}, which its layer may not touch")
            }
            Problem::Cycle { parent, modules } => {
                let parent = if parent.is_empty() { "crate" } else { parent };
                write!(f, "module cycle under {parent}: {}", modules.join(" → "))
            }
        }
    }
}

/// The layers of a crate: each top-level module's name and the top-level modules it may use.
/// A module not listed is not a layer and is not checked for direction.
pub struct Layers<'a> {
    pub allowed: &'a [(&'a str, &'a [&'a str])],
    /// Path prefixes that modules of a layer may not use, per layer (`sqlx`, `std::fs`, …); the
    /// layer `*` is every module of the crate.
    pub forbidden: &'a [(&'a str, &'a [&'a str])],
}

/// Reads every `.rs` file under `src` into [`Sources`].
pub fn read_sources(src: &Path) -> std::io::Result<Sources> {
    let mut out = Sources::new();
    let mut dirs = vec![src.to_path_buf()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir)? {
            let path = entry?.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let name = path
                    .strip_prefix(src)
                    .expect("under src")
                    .to_string_lossy()
                    .replace('\\', "/");
                out.insert(name, std::fs::read_to_string(&path)?);
            }
        }
    }
    Ok(out)
}

/// The module path of a file: `lib.rs` → `[]`, `a.rs` and `a/mod.rs` → `[a]`, `a/b.rs` →
/// `[a, b]`. `main.rs` is a root too.
pub fn module_of(file: &str) -> Vec<String> {
    let mut parts: Vec<String> = file.split('/').map(str::to_string).collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if !matches!(stem, "lib" | "main" | "mod") {
        parts.push(stem.to_string());
    }
    parts
}

/// Whether `module` exists in `sources` (a file of its own).
fn is_module(sources: &Sources, module: &[String]) -> bool {
    sources.keys().any(|f| module_of(f) == module)
}

/// The text of a file that ships: from its first `#[cfg(test)]` on, it is test code (by the
/// convention of a `tests` module at the end), and comments and string literals are blanked.
pub fn shipped_code(text: &str) -> String {
    let text = match text.find("#[cfg(test)]") {
        Some(at) => &text[..at],
        None => text,
    };
    blank_comments_and_strings(text)
}

fn blank_comments_and_strings(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        if rest.starts_with("//") {
            let end = rest.find('\n').unwrap_or(rest.len());
            i += end;
        } else if rest.starts_with("/*") {
            let end = rest.find("*/").map_or(rest.len(), |e| e + 2);
            i += end;
            out.push(' ');
        } else if let Some(len) = raw_string_len(rest) {
            i += len;
            out.push_str("\"\"");
        } else if rest.starts_with('"') {
            i += quoted_len(rest);
            out.push_str("\"\"");
        } else if let Some(len) = char_literal_len(rest) {
            i += len;
            out.push_str("' '");
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            i += c.len_utf8();
        }
    }
    out
}

/// The length of a `"…"` literal at the start of `s` (escapes skipped).
fn quoted_len(s: &str) -> usize {
    let bytes = s.as_bytes();
    let mut i = 1;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 2,
            b'"' => return i + 1,
            _ => i += 1,
        }
    }
    bytes.len()
}

/// The length of a raw string `r"…"`, `r#"…"#`, `br"…"` at the start of `s`.
fn raw_string_len(s: &str) -> Option<usize> {
    let body = s.strip_prefix("br").or_else(|| s.strip_prefix('r'))?;
    let hashes = body.len() - body.trim_start_matches('#').len();
    let after = body[hashes..].strip_prefix('"')?;
    let close = format!("\"{}", "#".repeat(hashes));
    let end = after.find(&close)? + close.len();
    Some(s.len() - after.len() + end)
}

/// The length of a character literal (`'a'`, `'\n'`, `'\''`) at the start of `s`, telling it
/// from a lifetime (`'a`).
fn char_literal_len(s: &str) -> Option<usize> {
    let rest = s.strip_prefix('\'')?;
    if let Some(escaped) = rest.strip_prefix('\\') {
        let close = escaped[1..].find('\'')?;
        return Some(close + 4);
    }
    let c = rest.chars().next()?;
    rest[c.len_utf8()..]
        .starts_with('\'')
        .then_some(c.len_utf8() + 2)
}

/// Every path a file's shipped code names: `use` trees expanded (`use a::{b, c::d}` gives
/// `a::b` and `a::c::d`) and inline paths that start with `crate`, `super` or `self`, each as
/// its segments.
pub fn paths(code: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = find_word(rest, "use") {
        let after = &rest[at + 3..];
        let end = after.find(';').unwrap_or(after.len());
        expand_use_tree(after[..end].trim(), &[], &mut out);
        rest = &after[end..];
    }
    for start in ["crate::", "super::", "self::"] {
        let mut rest = code;
        while let Some(at) = rest.find(start) {
            let before = rest[..at].chars().next_back();
            let path: String = rest[at..]
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
                .collect();
            if !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                out.push(segments(&path));
            }
            rest = &rest[at + start.len()..];
        }
    }
    out
}

/// The position of `word` as a whole word (a keyword) in `text`.
fn find_word(text: &str, word: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find(word).map(|a| a + from) {
        let before = text[..at].chars().next_back();
        let after = text[at + word.len()..].chars().next();
        let boundary = |c: Option<char>| !c.is_some_and(|c| c.is_alphanumeric() || c == '_');
        if boundary(before) && boundary(after) {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn segments(path: &str) -> Vec<String> {
    path.split("::")
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Expands one `use` tree (`a::{b, c::{d, e}}`, `a::b as c`, `a::*`) under `prefix`.
fn expand_use_tree(tree: &str, prefix: &[String], out: &mut Vec<Vec<String>>) {
    let tree = tree.trim();
    match tree.find('{') {
        None => {
            let tree = tree.split(" as ").next().unwrap_or(tree);
            let mut path = prefix.to_vec();
            path.extend(segments(tree).into_iter().filter(|s| s != "*"));
            if !path.is_empty() {
                out.push(path);
            }
        }
        Some(open) => {
            let mut path = prefix.to_vec();
            path.extend(segments(tree[..open].trim_end_matches("::")));
            let close = tree.rfind('}').unwrap_or(tree.len());
            for part in split_top_level(&tree[open + 1..close]) {
                if part.trim() == "self" {
                    out.push(path.clone());
                } else {
                    expand_use_tree(part, &path, out);
                }
            }
        }
    }
}

/// `a, b::{c, d}, e` split at the commas outside braces.
fn split_top_level(list: &str) -> Vec<&str> {
    let (mut out, mut depth, mut start) = (Vec::new(), 0, 0);
    for (i, c) in list.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&list[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&list[start..]);
    out.into_iter().filter(|p| !p.trim().is_empty()).collect()
}

/// A path made absolute (from the crate root) for a file of module `module`; `None` for a path
/// into another crate.
fn resolve(module: &[String], path: &[String]) -> Option<Vec<String>> {
    let first = path.first()?;
    let (mut base, rest) = match first.as_str() {
        "crate" => (Vec::new(), &path[1..]),
        "self" => (module.to_vec(), &path[1..]),
        "super" => {
            let mut base = module.to_vec();
            let mut rest = path;
            while rest.first().is_some_and(|s| s == "super") {
                base.pop();
                rest = &rest[1..];
            }
            (base, rest)
        }
        _ => return None,
    };
    base.extend(rest.iter().cloned());
    Some(base)
}

/// The dependencies between modules: for each file, the absolute paths its shipped code names.
fn uses(sources: &Sources) -> Vec<(String, Vec<String>, Vec<String>)> {
    let mut out = Vec::new();
    for (file, text) in sources {
        let module = module_of(file);
        for path in paths(&shipped_code(text)) {
            if let Some(target) = resolve(&module, &path) {
                out.push((file.clone(), module.clone(), target));
            }
        }
    }
    out
}

/// Checks the direction between layers and the paths each layer may not touch.
pub fn check_layers(sources: &Sources, layers: &Layers<'_>) -> Vec<Problem> {
    let layer_of = |module: &[String]| {
        let top = module.first()?;
        layers.allowed.iter().find(|(name, _)| name == top)
    };
    let mut problems = BTreeSet::new();
    for (file, module, target) in uses(sources) {
        let (Some((layer, allowed)), Some(top)) = (layer_of(&module), target.first()) else {
            continue;
        };
        let is_layer = layers.allowed.iter().any(|(name, _)| name == top);
        if is_layer && top != layer && !allowed.contains(&top.as_str()) {
            problems.insert(Problem::Direction {
                file,
                layer: layer.to_string(),
                target: top.clone(),
            });
        }
    }
    for (file, text) in sources {
        let module = module_of(file);
        let top = module.first().map_or("", String::as_str);
        let Some((_, forbidden)) = layers
            .forbidden
            .iter()
            .find(|(name, _)| *name == top || *name == "*")
        else {
            continue;
        };
        for path in paths(&shipped_code(text)) {
            let joined = path.join("::");
            if forbidden.iter().any(|f| is_path_prefix(f, &joined)) {
                problems.insert(Problem::Forbidden {
                    file: file.clone(),
                    path: joined,
                });
            }
        }
        problems.extend(forbidden_inline(file, text, forbidden));
    }
    problems.into_iter().collect()
}

/// Whether `prefix` (`std::fs`, `sqlx`) starts `path` at a segment boundary.
fn is_path_prefix(prefix: &str, path: &str) -> bool {
    path == prefix || path.starts_with(&format!("{prefix}::"))
}

/// Forbidden paths written inline (`tokio::spawn(…)`, `std::fs::read(…)`) rather than imported.
fn forbidden_inline(file: &str, text: &str, forbidden: &[&str]) -> Vec<Problem> {
    let code = shipped_code(text);
    let mut out = Vec::new();
    for prefix in forbidden {
        let mut rest = code.as_str();
        while let Some(at) = rest.find(prefix) {
            let before = rest[..at].chars().next_back();
            let after = &rest[at + prefix.len()..];
            let starts = !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':');
            if starts && (after.starts_with("::") || after.starts_with('!')) {
                out.push(Problem::Forbidden {
                    file: file.to_string(),
                    path: prefix.to_string(),
                });
                break;
            }
            rest = after;
        }
    }
    out
}

/// Finds cycles among the sibling modules of every module: module `a::b` depends on its
/// sibling `a::c` when any file under `a::b` names a path under `a::c`. A module's own file
/// and its children may use each other (Rust's `super::`); siblings may not go in a circle.
pub fn check_cycles(sources: &Sources) -> Vec<Problem> {
    let mut edges: BTreeMap<Vec<String>, BTreeMap<String, BTreeSet<String>>> = BTreeMap::new();
    for (_, module, target) in uses(sources) {
        let common = module
            .iter()
            .zip(&target)
            .take_while(|(a, b)| a == b)
            .count();
        if common == module.len() || common == target.len() {
            continue; // the same module, or an ancestor's or descendant's item
        }
        let parent = module[..common].to_vec();
        let mut sibling = parent.clone();
        sibling.push(target[common].clone());
        if !is_module(sources, &sibling) {
            continue; // an item of the parent, not a module
        }
        edges
            .entry(parent)
            .or_default()
            .entry(module[common].clone())
            .or_default()
            .insert(target[common].clone());
    }
    let mut problems = Vec::new();
    for (parent, graph) in edges {
        for cycle in cycles(&graph) {
            problems.push(Problem::Cycle {
                parent: parent.join("::"),
                modules: cycle,
            });
        }
    }
    problems
}

/// One cycle per strongly connected group of more than one node (or a node that uses itself),
/// listed from its smallest name and back to it.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<Vec<String>> {
    let mut found: Vec<Vec<String>> = Vec::new();
    for start in graph.keys() {
        if found.iter().any(|c| c.contains(start)) {
            continue;
        }
        if let Some(mut path) = path_back(graph, start) {
            path.push(start.clone());
            found.push(path);
        }
    }
    found
}

/// A path from `start` back to itself, if one exists (breadth first: the shortest).
fn path_back(graph: &BTreeMap<String, BTreeSet<String>>, start: &str) -> Option<Vec<String>> {
    let mut came_from: BTreeMap<String, String> = BTreeMap::new();
    let mut queue = std::collections::VecDeque::from([start.to_string()]);
    while let Some(node) = queue.pop_front() {
        for next in graph.get(&node).into_iter().flatten() {
            if next == start {
                let mut path = vec![node.clone()];
                let mut at = node.clone();
                while let Some(prev) = came_from.get(&at) {
                    path.push(prev.clone());
                    at = prev.clone();
                }
                path.reverse();
                return Some(path);
            }
            if !came_from.contains_key(next) && next != start {
                came_from.insert(next.clone(), node.clone());
                queue.push_back(next.clone());
            }
        }
    }
    None
}
