//! Integration tests of `tarifa gen`: the built binary writing a log and a config to temporary
//! files.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

fn temp_dir(name: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir =
        std::env::temp_dir().join(format!("tarifa-gen-cli-{}-{n}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn tarifa(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tarifa"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("running tarifa")
}

fn ok(out: &Output) {
    assert!(
        out.status.success(),
        "tarifa failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn writes_log_and_config() {
    let dir = temp_dir("files");
    let rates = dir.join("data").join("rates");
    std::fs::create_dir_all(&rates).unwrap();
    for f in [
        "usd-2025-07-01.csv",
        "usd-2023-06-01.csv",
        "usd-tiers-2025-07-01.csv",
        "inr-excerpt-2026-01-01.csv",
        "SOURCES.md",
    ] {
        std::fs::write(rates.join(f), "x\n").unwrap();
    }
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let log = dir.join("traffic.jsonl");
    let config = configs.join("traffic.toml");
    let out = tarifa(
        &[
            "gen",
            "--events",
            "1000",
            "--output",
            path_str(&log),
            "--config-out",
            path_str(&config),
            "--rates-dir",
            path_str(&rates),
            "--currency",
            "USD,EUR",
        ],
        &dir,
    );
    ok(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("1000 events"), "{stderr}");
    assert!(stderr.contains("3 businesses"), "{stderr}");

    // The log: exactly 1000 JSON objects, one per line, in the default range.
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1000);
    assert!(text.ends_with('\n'));
    let mut types = std::collections::BTreeMap::new();
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        let ty = v["type"].as_str().expect("normalized events by default");
        *types.entry(ty.to_string()).or_insert(0) += 1;
        let at = v["at"].as_str().unwrap();
        assert!(
            ("2026-07-01".."2026-10-01").contains(&&at[..10]),
            "{at} out of range"
        );
        assert!(v["id"].as_str().unwrap().starts_with("wamid."));
        if ty != "status" {
            assert!(v["business"].as_str().unwrap().starts_with("waba-"));
            assert!(v["phone"].as_str().unwrap().starts_with("pn-"));
            assert!(v["user"]
                .as_str()
                .unwrap()
                .bytes()
                .all(|b| b.is_ascii_digit()));
        }
    }
    for ty in ["inbound", "outbound", "status"] {
        assert!(types.get(ty).copied().unwrap_or(0) > 50, "{types:?}");
    }

    // The config: three businesses and the cards, relative to the config's directory.
    let toml_text = std::fs::read_to_string(&config).unwrap();
    let cfg: toml::Value =
        toml::from_str(&toml_text).unwrap_or_else(|e| panic!("{e}\n{toml_text}"));
    let businesses = cfg["business"].as_array().unwrap();
    assert_eq!(businesses.len(), 3);
    let currencies: Vec<&str> = businesses
        .iter()
        .map(|b| b["currency"].as_str().unwrap())
        .collect();
    assert_eq!(currencies, ["USD", "EUR", "USD"]);
    for b in businesses {
        assert!(!b["timezone"].as_str().unwrap().is_empty());
    }
    let files = |key: &str| -> Vec<String> {
        cfg.get(key)
            .and_then(|v| v.as_array())
            .map(|a| {
                a.iter()
                    .map(|c| c["file"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let rate_cards = files("rate_card");
    assert_eq!(
        rate_cards,
        [
            "../data/rates/usd-2023-06-01.csv",
            "../data/rates/usd-2025-07-01.csv"
        ]
    );
    assert_eq!(
        files("tier_card"),
        ["../data/rates/usd-tiers-2025-07-01.csv"]
    );
    for f in rate_cards.iter().chain(&files("tier_card")) {
        assert!(configs.join(f).is_file(), "{f}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn deterministic_and_stdout() {
    let dir = temp_dir("stdout");
    let args = [
        "gen",
        "--events",
        "2000",
        "--seed",
        "42",
        "--webhook-fraction",
        "0.5",
        "--duplicates",
        "0.05",
        "--shuffle-window",
        "20",
        "--from",
        "2023-01-01",
        "--to",
        "2024-12-31",
    ];
    let a = tarifa(&args, &dir);
    let b = tarifa(&args, &dir);
    ok(&a);
    ok(&b);
    assert_eq!(a.stdout, b.stdout);
    let text = String::from_utf8(a.stdout.clone()).unwrap();
    assert_eq!(text.lines().count(), 2000);
    let hooks = text
        .lines()
        .filter(|l| l.starts_with("{\"object\":\"whatsapp_business_account\""))
        .count();
    assert!(hooks > 300, "{hooks} raw webhook bodies");
    for line in text.lines() {
        serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("{e}: {line}"));
    }

    // `--output FILE` writes the same bytes as stdout; another seed gives another log.
    let file = dir.join("same.jsonl");
    let mut with_file: Vec<&str> = args.to_vec();
    with_file.extend(["--output", path_str(&file)]);
    ok(&tarifa(&with_file, &dir));
    assert_eq!(std::fs::read(&file).unwrap(), a.stdout);
    let mut other: Vec<&str> = args.to_vec();
    other[4] = "43";
    let c = tarifa(&other, &dir);
    ok(&c);
    assert_ne!(c.stdout, a.stdout);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn missing_rates_dir_gives_no_cards() {
    let dir = temp_dir("norates");
    let config = dir.join("c.toml");
    // The default `data/rates` does not exist under this working directory.
    let out = tarifa(
        &[
            "gen",
            "--events",
            "10",
            "--businesses",
            "5",
            "--output",
            path_str(&dir.join("l.jsonl")),
            "--config-out",
            "c.toml",
        ],
        &dir,
    );
    ok(&out);
    let cfg: toml::Value = toml::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    assert_eq!(cfg["business"].as_array().unwrap().len(), 5);
    assert!(cfg.get("rate_card").is_none());
    assert!(cfg.get("tier_card").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_arguments_fail_cleanly() {
    let dir = temp_dir("bad");
    for args in [
        &["gen", "--from", "2026-02-30"][..],
        &["gen", "--from", "2026-09-01", "--to", "2026-08-01"],
        &["gen", "--users", "0"],
        &["gen", "--webhook-fraction", "2"],
    ] {
        let out = tarifa(args, &dir);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("tarifa:"));
    }
    let _ = std::fs::remove_dir_all(&dir);
}
