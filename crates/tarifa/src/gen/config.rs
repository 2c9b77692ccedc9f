//! The business config TOML that matches a generated log (`--config-out`): the businesses as the
//! generator made them, and the rate cards of `--rates-dir`, so that `tarifa rate` can rate the
//! log at once.

use super::args::GenArgs;
use super::businesses::Business;
use super::world::World;
use anyhow::Result;
use std::fmt::Write as _;
use std::path::{Component, Path, PathBuf};

pub(super) fn config_toml(args: &GenArgs, world: &World, config_path: &Path) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Businesses of a synthetic log: tarifa gen --seed {} --businesses {} --users {} --from {} --to {}",
        args.seed, args.businesses, args.users, args.from, args.to
    );
    for b in &world.businesses {
        write_business(&mut s, b);
    }
    let files = card_files(&args.rates_dir);
    if !files.is_empty() {
        write_cards(&mut s, &files, &args.rates_dir, config_path);
    }
    Ok(s)
}

fn write_business(s: &mut String, b: &Business) {
    s.push_str("\n[[business]]\n");
    let _ = writeln!(s, "id = {}", toml_str(&b.id));
    if let Some(p) = &b.portfolio {
        let _ = writeln!(s, "portfolio = {}", toml_str(p));
    }
    let _ = writeln!(s, "currency = {}", toml_str(&b.currency));
    let _ = writeln!(s, "timezone = {}", toml_str(b.profile.timezone));
    if let Some(c) = b.profile.primary {
        let _ = writeln!(s, "primary_country = {}", toml_str(c.as_str()));
    }
    if let Some(variant) = b.auth_intl {
        s.push_str("[business.auth_international]\n");
        let _ = writeln!(s, "start = {}", toml_str(&variant.start.to_string()));
        let exceptions: Vec<String> = variant
            .exceptions
            .iter()
            .filter(|(c, _)| Some(*c) != b.profile.primary)
            .map(|(c, d)| format!("{c} = {}", toml_str(&d.to_string())))
            .collect();
        if !exceptions.is_empty() {
            let _ = writeln!(s, "exceptions = {{ {} }}", exceptions.join(", "));
        }
    }
}

/// `[[rate_card]]` then `[[tier_card]]` entries for `files` of `rates_dir`, relative to the
/// config's directory where they share more than the root.
fn write_cards(s: &mut String, files: &[(String, bool)], rates_dir: &Path, config_path: &Path) {
    let rates = absolute(rates_dir);
    let parent = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let config_dir = absolute(&parent);
    for tiers in [false, true] {
        for (name, _) in files.iter().filter(|(_, t)| *t == tiers) {
            let target = rates.join(name);
            let path = relative_path(&target, &config_dir).unwrap_or(target);
            let text = path.to_string_lossy().replace('\\', "/");
            s.push_str(if tiers {
                "\n[[tier_card]]\n"
            } else {
                "\n[[rate_card]]\n"
            });
            let _ = writeln!(s, "file = {}", toml_str(&text));
        }
    }
}

/// `s` as a TOML basic string.
fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `target` relative to the directory `base` (both absolute); `None` if they share nothing but
/// the root (`/tmp/c.toml` → `/work/data/rates`: an absolute path is clearer than `../../work/…`).
pub(super) fn relative_path(target: &Path, base: &Path) -> Option<PathBuf> {
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let root = t
        .iter()
        .take_while(|c| !matches!(c, Component::Normal(_)))
        .count();
    if common <= root {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    Some(rel)
}

/// `path` made absolute, through links where it exists.
fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Rate-card CSVs of `dir` (sorted): `(file name, is a tier card)`; none if the dir is missing.
fn card_files(dir: &Path) -> Vec<(String, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, bool)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.to_ascii_lowercase().ends_with(".csv") && !name.contains("excerpt"))
        .map(|name| {
            let tiers = name.contains("tiers");
            (name, tiers)
        })
        .collect();
    files.sort();
    files
}
