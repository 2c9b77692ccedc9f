//! The workspace's architecture, checked on its sources: layers of the service that depend in
//! one direction only (`api → runtime → storage → domain`, the domain importing nothing but
//! `tarifa-core`), a core and a domain without I/O, and no module cycle in any crate.

use std::path::{Path, PathBuf};
use tidy::{check_cycles, check_layers, read_sources, Layers, Problem, Sources};

/// What each layer of `tarifa-service` may use, besides itself and `tarifa-core`.
const SERVICE_LAYERS: &[(&str, &[&str])] = &[
    ("domain", &[]),
    ("clock", &[]),
    ("storage", &["domain", "clock"]),
    ("runtime", &["domain", "storage", "clock"]),
    ("api", &["runtime", "domain", "storage", "clock"]),
];

/// What does I/O, reads the clock or the environment, or logs: none of it in a pure part.
const IMPURE: &[&str] = &[
    "sqlx",
    "tokio",
    "axum",
    "reqwest",
    "tracing",
    "std::fs",
    "std::net",
    "std::env",
    "std::process",
    "std::io",
    "std::time::SystemTime",
];

const SERVICE: Layers<'static> = Layers {
    allowed: SERVICE_LAYERS,
    forbidden: &[("domain", IMPURE)],
};

const CORE: Layers<'static> = Layers {
    allowed: &[],
    forbidden: &[("*", IMPURE)],
};

fn crate_sources(name: &str) -> Sources {
    let src = workspace().join("crates").join(name).join("src");
    read_sources(&src).unwrap_or_else(|e| panic!("reading {}: {e}", src.display()))
}

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn crates() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(workspace().join("crates"))
        .expect("crates/")
        .filter_map(|e| e.ok())
        .filter(|e| e.path().join("src").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn report(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}\n"))
        .collect::<String>()
}

#[test]
fn service_layers_depend_in_one_direction_and_the_domain_is_pure() {
    let sources = crate_sources("tarifa-service");
    for layer in ["domain", "storage", "runtime", "api"] {
        assert!(
            sources.keys().any(|f| f.starts_with(&format!("{layer}/"))),
            "the service has no {layer} layer"
        );
    }
    let problems = check_layers(&sources, &SERVICE);
    assert!(problems.is_empty(), "layering:\n{}", report(&problems));
}

#[test]
fn the_core_does_no_io() {
    let problems = check_layers(&crate_sources("tarifa-core"), &CORE);
    assert!(problems.is_empty(), "tarifa-core:\n{}", report(&problems));
}

#[test]
fn no_crate_has_a_module_cycle() {
    let names = crates();
    assert!(names.len() >= 4, "found only {names:?}");
    let mut all = String::new();
    for name in names {
        let problems = check_cycles(&crate_sources(&name));
        if !problems.is_empty() {
            all += &format!("{name}:\n{}", report(&problems));
        }
    }
    assert!(all.is_empty(), "{all}");
}

/// The check is not a formality: the service's real domain, with one import of storage added,
/// fails it, and so does a cycle put into the real tree.
#[test]
fn a_domain_module_that_uses_storage_fails_the_check() {
    let mut sources = crate_sources("tarifa-service");
    let book = sources
        .keys()
        .find(|f| f.starts_with("domain/"))
        .expect("a domain module")
        .clone();
    sources
        .get_mut(&book)
        .unwrap()
        .insert_str(0, "use crate::storage::Store;\n");
    let problems = check_layers(&sources, &SERVICE);
    assert_eq!(
        problems,
        vec![Problem::Direction {
            file: book,
            layer: "domain".into(),
            target: "storage".into()
        }]
    );
}

#[test]
fn inline_paths_grouped_imports_and_impure_calls_are_caught() {
    let sources: Sources = [
        ("lib.rs", "pub mod domain; pub mod api; pub mod runtime;"),
        (
            "domain/mod.rs",
            "pub mod wallet;\nfn f() { let _ = crate::runtime::now(); }",
        ),
        (
            "domain/wallet.rs",
            "use crate::{api::{routes, X}};\n// crate::storage in a comment is fine\n\
             fn g() { let s = \"crate::storage\"; tracing::warn!(\"x\"); }",
        ),
        ("api/mod.rs", "use super::domain::wallet;"),
        ("runtime/mod.rs", ""),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let problems: Vec<String> = check_layers(&sources, &SERVICE)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        vec![
            "domain/mod.rs: the domain layer uses crate::runtime, which it may not depend on",
            "domain/wallet.rs: the domain layer uses crate::api, which it may not depend on",
            "domain/wallet.rs: uses tracing, which its layer may not touch",
        ]
    );
}

#[test]
fn cycles_between_siblings_are_found_at_any_depth() {
    let sources: Sources = [
        ("lib.rs", "mod a; mod b; mod c;"),
        ("a.rs", "use crate::b::X;"),
        ("b.rs", "fn f() { crate::c::g() }"),
        ("c.rs", "use crate::a;"),
        ("d/mod.rs", "mod e; mod f; pub use e::E; struct D;"),
        ("d/e.rs", "use super::f::F; use super::D;"),
        ("d/f.rs", "use super::e::E;"),
    ]
    .into_iter()
    .map(|(f, t)| (f.to_string(), t.to_string()))
    .collect();
    let problems: Vec<String> = check_cycles(&sources)
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        problems,
        vec![
            "module cycle under crate: a → b → c → a",
            "module cycle under d: e → f → e",
        ]
    );
}
