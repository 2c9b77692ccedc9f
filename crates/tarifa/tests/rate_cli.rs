//! Integration tests of `tarifa rate`: the built binary on temporary config, card and event files.
//!
//! Covers the output formats (JSON, CSV, table), the invalid-line contract (`file:line: reason`,
//! or `--skip-invalid` to count, report and rate the rest), config errors, order independence
//! through the CLI, and mixed normalized-event / raw-webhook input.

use rust_decimal::Decimal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};

// ---------------------------------------------------------------------------------------------
// Fixtures
// ---------------------------------------------------------------------------------------------

const CARD: &str = "Cost per message in USD, effective July 1, 2025
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
North America,$US,0.025,0.004,0.004,n/a,n/a
Brazil,$US,0.0625,0.0068,0.0068,n/a,n/a
United Kingdom,$US,0.0529,0.022,0.0358,n/a,n/a
";

/// Era D traffic of one business (all rules from spec §5):
/// m1 marketing to +1 (D-3, 1-1) charged; m2 utility outside any window, `read` without
/// `delivered` (W-4) charged; m3 free-form inside the CSW (D-2) free; m4 failed (1-2) free;
/// m5 reply to a click-to-WhatsApp ad opens a free-entry-point window (D-5); m6 marketing inside
/// it (D-2) free; m7 authentication after the window closed (D-3) charged.
const EVENTS: &[&str] = &[
    r#"{"type":"outbound","id":"m1","at":"2025-08-04T09:00:00Z","business":"waba-1","phone":"pn-1","user":"16505551234","template":{"name":"promo","category":"marketing"}}"#,
    r#"{"type":"status","id":"m1","at":"2025-08-04T09:00:05Z","status":"delivered"}"#,
    r#"{"type":"outbound","id":"m2","at":"2025-08-04T09:10:00Z","business":"waba-1","phone":"pn-1","user":"5511987654321","template":{"name":"ship","category":"utility"}}"#,
    r#"{"type":"status","id":"m2","at":"2025-08-04T09:10:05Z","status":"read"}"#,
    r#"{"type":"inbound","id":"i1","at":"2025-08-04T10:00:00Z","business":"waba-1","phone":"pn-1","user":"5511987654321"}"#,
    r#"{"type":"outbound","id":"m3","at":"2025-08-04T10:05:00Z","business":"waba-1","phone":"pn-1","user":"5511987654321"}"#,
    r#"{"type":"status","id":"m3","at":"2025-08-04T10:05:03Z","status":"delivered"}"#,
    r#"{"type":"outbound","id":"m4","at":"2025-08-04T11:00:00Z","business":"waba-1","phone":"pn-1","user":"5511987654321","template":{"name":"promo","category":"marketing"}}"#,
    r#"{"type":"status","id":"m4","at":"2025-08-04T11:00:02Z","status":"failed"}"#,
    r#"{"type":"inbound","id":"i2","at":"2025-08-05T08:00:00Z","business":"waba-1","phone":"pn-1","user":"447700900123","referral":{"source_type":"ad"},"platform":"android"}"#,
    r#"{"type":"outbound","id":"m5","at":"2025-08-05T08:30:00Z","business":"waba-1","phone":"pn-1","user":"447700900123"}"#,
    r#"{"type":"status","id":"m5","at":"2025-08-05T08:30:02Z","status":"delivered"}"#,
    r#"{"type":"outbound","id":"m6","at":"2025-08-06T12:00:00Z","business":"waba-1","phone":"pn-1","user":"447700900123","template":{"name":"promo","category":"marketing"}}"#,
    r#"{"type":"status","id":"m6","at":"2025-08-06T12:00:02Z","status":"delivered"}"#,
    r#"{"type":"outbound","id":"m7","at":"2025-08-10T12:00:00Z","business":"waba-1","phone":"pn-1","user":"447700900123","template":{"name":"otp","category":"authentication"}}"#,
    r#"{"type":"status","id":"m7","at":"2025-08-10T12:00:02Z","status":"delivered"}"#,
];

/// Expected message lines: id, user, market, charged, amount, category, pricing type.
const EXPECTED: &[(&str, &str, &str, bool, &str, &str, &str)] = &[
    (
        "m1",
        "16505551234",
        "North America",
        true,
        "0.025",
        "marketing",
        "regular",
    ),
    (
        "m2",
        "5511987654321",
        "Brazil",
        true,
        "0.0068",
        "utility",
        "regular",
    ),
    (
        "m3",
        "5511987654321",
        "Brazil",
        false,
        "0",
        "service",
        "free_customer_service",
    ),
    (
        "m4",
        "5511987654321",
        "Brazil",
        false,
        "0",
        "marketing",
        "not_delivered",
    ),
    (
        "m5",
        "447700900123",
        "United Kingdom",
        false,
        "0",
        "service",
        "free_entry_point",
    ),
    (
        "m6",
        "447700900123",
        "United Kingdom",
        false,
        "0",
        "marketing",
        "free_entry_point",
    ),
    (
        "m7",
        "447700900123",
        "United Kingdom",
        true,
        "0.0358",
        "authentication",
        "regular",
    ),
];

const BAD_TIME: &str = r#"{"type":"outbound","id":"bad-time","at":"yesterday","business":"waba-1","phone":"pn-1","user":"16505551234"}"#;
const BAD_JSON: &str = r#"{"type":"inbound","id":"#;
const UNKNOWN_BUSINESS: &str = r#"{"type":"inbound","id":"i9","at":"2025-08-04T10:00:00Z","business":"waba-9","phone":"pn-1","user":"5511987654321"}"#;

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

/// A unique temporary directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "tarifa-rate-cli-{}-{}-{name}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn write(&self, file: &str, text: &str) -> PathBuf {
        let path = self.0.join(file);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `card.csv` and a config with one USD business in UTC using it.
    fn config(&self) -> PathBuf {
        let card = self.write("card.csv", CARD);
        self.write(
            "config.toml",
            &format!(
                "[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n\n[[rate_card]]\nfile = {:?}\n",
                card.display().to_string()
            ),
        )
    }

    fn events(&self, file: &str, lines: &[&str]) -> PathBuf {
        let mut text = lines.join("\n");
        text.push('\n');
        self.write(file, &text)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn tarifa_rate(config: &Path, events: &Path, extra: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_tarifa"))
        .arg("rate")
        .arg("--config")
        .arg(config)
        .arg(events)
        .args(extra)
        .output()
        .expect("run tarifa");
    Run {
        success: out.status.success(),
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

fn ok(run: Run) -> Run {
    assert!(
        run.success,
        "tarifa failed:\nstderr: {}\nstdout: {}",
        run.stderr, run.stdout
    );
    run
}

fn json(run: &Run) -> Value {
    serde_json::from_str(&run.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", run.stdout))
}

fn dec(v: &Value) -> Decimal {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("amount {v} is not a decimal string"));
    Decimal::from_str(s).unwrap_or_else(|e| panic!("amount {s:?}: {e}"))
}

fn ids(report: &Value) -> Vec<String> {
    report["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

/// Splits one CSV record (fields may be quoted with `"`, quotes doubled inside).
fn csv_fields(row: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = row.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut cur)),
            (c, _) => cur.push(c),
        }
    }
    fields.push(cur);
    fields
}

/// Checks the message lines and totals of a JSON report against [`EXPECTED`].
fn check_expected_bill(report: &Value) {
    let messages = report["messages"].as_array().unwrap();
    assert_eq!(messages.len(), EXPECTED.len(), "{messages:#?}");
    for (m, &(id, user, market, charged, amount, category, pricing_type)) in
        messages.iter().zip(EXPECTED)
    {
        assert_eq!(m["id"], id);
        assert_eq!(m["business"], "waba-1", "{id}");
        assert_eq!(m["user"], user, "{id}");
        assert_eq!(m["market"], market, "{id}");
        assert_eq!(m["charged"], charged, "{id}");
        assert!(m["amount"].is_string(), "{id}: amount must be a string");
        assert_eq!(
            dec(&m["amount"]),
            Decimal::from_str(amount).unwrap(),
            "{id}"
        );
        assert_eq!(m["currency"], "USD", "{id}");
        assert_eq!(m["category"], category, "{id}");
        assert_eq!(m["pricing_type"], pricing_type, "{id}");
    }
    let totals = report["totals"].as_array().unwrap();
    assert_eq!(totals.len(), 1);
    let sum: Decimal = messages.iter().map(|m| dec(&m["amount"])).sum();
    assert_eq!(dec(&totals[0]["amount"]), sum);
    assert_eq!(sum, Decimal::from_str("0.0676").unwrap());
    assert_eq!(totals[0]["business"], "waba-1");
    assert_eq!(totals[0]["currency"], "USD");
    assert_eq!(totals[0]["messages"], 7);
    assert_eq!(
        totals[0]["charged_messages"],
        messages.iter().filter(|m| m["charged"] == true).count()
    );
    assert_eq!(totals[0]["charged_messages"], 3);
}

// ---------------------------------------------------------------------------------------------
// Output formats
// ---------------------------------------------------------------------------------------------

#[test]
fn json_report_of_the_happy_path() {
    let dir = TempDir::new("json");
    let config = dir.config();
    let events = dir.events("events.jsonl", EVENTS);
    let run = ok(tarifa_rate(&config, &events, &["--format", "json"]));
    let report = json(&run);
    check_expected_bill(&report);

    // D-5: the reply to the ad opened one free-entry-point window, 72 h from the reply.
    let conversations = report["conversations"].as_array().unwrap();
    assert_eq!(conversations.len(), 1, "{conversations:#?}");
    let c = &conversations[0];
    assert_eq!(c["opened_by"], "m5");
    assert_eq!(c["user"], "447700900123");
    assert_eq!(c["category"], "referral_conversion");
    assert_eq!(c["charged"], false);
    assert_eq!(c["opened_at"], "2025-08-05T08:30:00Z");
    assert_eq!(c["expires_at"], "2025-08-08T08:30:00Z");
    assert_eq!(report["messages"][4]["conversation"], c["id"]);
    assert_eq!(report["messages"][5]["conversation"], c["id"]);
    assert_eq!(report["totals"][0]["conversations_opened"], 1);

    assert_eq!(report["input"]["invalid_lines"], 0);
    assert_eq!(report["input"]["stats"]["events"], 16);
    assert!(run.stderr.is_empty(), "stderr: {}", run.stderr);
}

#[test]
fn csv_messages_table() {
    let dir = TempDir::new("csv");
    let config = dir.config();
    let events = dir.events("events.jsonl", EVENTS);
    let run = ok(tarifa_rate(&config, &events, &["--format", "csv"]));
    let rows: Vec<Vec<String>> = run.stdout.lines().map(csv_fields).collect();
    assert_eq!(rows.len(), 1 + EXPECTED.len(), "{}", run.stdout);
    let header = &rows[0];
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name:?} in {header:?}"))
    };
    assert_eq!(header[0], "id");
    for row in &rows[1..] {
        assert_eq!(row.len(), header.len(), "{row:?}");
    }
    let mut sum = Decimal::ZERO;
    for (row, &(id, user, market, charged, amount, category, pricing_type)) in
        rows[1..].iter().zip(EXPECTED)
    {
        assert_eq!(row[col("id")], id);
        assert_eq!(row[col("business")], "waba-1");
        assert_eq!(row[col("user")], user);
        assert_eq!(row[col("market")], market);
        assert_eq!(row[col("charged")], charged.to_string());
        assert_eq!(
            Decimal::from_str(&row[col("amount")]).unwrap(),
            Decimal::from_str(amount).unwrap()
        );
        assert_eq!(row[col("currency")], "USD");
        assert_eq!(row[col("category")], category);
        assert_eq!(row[col("pricing_type")], pricing_type);
        sum += Decimal::from_str(&row[col("amount")]).unwrap();
    }
    assert_eq!(sum, Decimal::from_str("0.0676").unwrap());
}

#[test]
fn csv_totals_table() {
    let dir = TempDir::new("csv-totals");
    let config = dir.config();
    let events = dir.events("events.jsonl", EVENTS);
    let run = ok(tarifa_rate(
        &config,
        &events,
        &["--format", "csv", "--table", "totals"],
    ));
    let rows: Vec<Vec<String>> = run.stdout.lines().map(csv_fields).collect();
    assert_eq!(rows.len(), 2, "{}", run.stdout);
    let record: Vec<(&str, &str)> = rows[0]
        .iter()
        .map(String::as_str)
        .zip(rows[1].iter().map(String::as_str))
        .collect();
    for (k, v) in [
        ("business", "waba-1"),
        ("currency", "USD"),
        ("amount", "0.0676"),
        ("messages", "7"),
        ("charged_messages", "3"),
        ("conversations_opened", "1"),
    ] {
        assert!(record.contains(&(k, v)), "{k}={v} not in {record:?}");
    }
}

#[test]
fn default_format_is_a_table_with_totals() {
    let dir = TempDir::new("table");
    let config = dir.config();
    let events = dir.events("events.jsonl", EVENTS);
    let run = ok(tarifa_rate(&config, &events, &[]));
    assert!(run.stdout.contains("TOTALS"), "{}", run.stdout);
    assert!(run.stdout.contains("MESSAGES"), "{}", run.stdout);
    assert!(run.stdout.contains("0.0676"), "{}", run.stdout);
    for (id, ..) in EXPECTED {
        assert!(run.stdout.contains(id), "{id} missing:\n{}", run.stdout);
    }
}

// ---------------------------------------------------------------------------------------------
// Invalid lines
// ---------------------------------------------------------------------------------------------

/// Without `--skip-invalid` the first bad line stops the run: non-zero exit, `file:line: reason`
/// on stderr, nothing on stdout.
#[test]
fn bad_line_stops_the_run() {
    let dir = TempDir::new("bad-line");
    let config = dir.config();
    for (bad, reason) in [(BAD_TIME, "`at`"), (BAD_JSON, "invalid JSON")] {
        let mut lines = EVENTS.to_vec();
        lines.insert(4, bad); // line 5
        let events = dir.events("bad.jsonl", &lines);
        let run = tarifa_rate(&config, &events, &["--format", "json"]);
        assert!(!run.success, "{bad}: expected failure");
        let location = format!("{}:5:", events.display());
        assert!(
            run.stderr.contains(&location),
            "stderr does not contain {location:?}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains(reason),
            "stderr does not give the reason {reason:?}: {}",
            run.stderr
        );
        assert!(run.stdout.is_empty(), "stdout not empty: {}", run.stdout);
    }
}

/// With `--skip-invalid`: exit 0, the invalid lines are counted and reported with their line
/// numbers (physical lines, blank ones included), and the valid lines are rated.
#[test]
fn skip_invalid_rates_the_rest() {
    let dir = TempDir::new("skip-invalid");
    let config = dir.config();
    let mut lines = EVENTS.to_vec();
    lines.insert(2, BAD_TIME); // line 3
    lines.insert(5, ""); // line 6, blank: skipped silently but counted
    lines.insert(8, BAD_JSON); // line 9
    let events = dir.events("skip.jsonl", &lines);
    let run = ok(tarifa_rate(
        &config,
        &events,
        &["--format", "json", "--skip-invalid"],
    ));
    assert!(
        run.stderr.contains("2 invalid line(s)"),
        "stderr: {}",
        run.stderr
    );
    for n in [3, 9] {
        let location = format!("{}:{n}:", events.display());
        assert!(
            run.stderr.contains(&location),
            "stderr does not contain {location:?}: {}",
            run.stderr
        );
    }
    assert!(run.stderr.contains("yesterday"), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["input"]["invalid_lines"], 2);
    let invalid = report["input"]["invalid"].as_array().unwrap();
    let numbers: Vec<u64> = invalid
        .iter()
        .map(|i| i["line"].as_u64().unwrap())
        .collect();
    assert_eq!(numbers, vec![3, 9]);
    assert!(invalid[0]["message"].as_str().unwrap().contains("`at`"));
    assert!(invalid[1]["message"]
        .as_str()
        .unwrap()
        .starts_with("invalid JSON"));
    // The valid lines give the same bill as the clean file.
    check_expected_bill(&report);
}

/// A business id that is not in the config is an invalid line, reported with its number.
#[test]
fn unknown_business_is_an_invalid_line() {
    let dir = TempDir::new("unknown-business");
    let config = dir.config();
    let mut lines = EVENTS.to_vec();
    lines.insert(6, UNKNOWN_BUSINESS); // line 7
    let events = dir.events("unknown.jsonl", &lines);

    let run = tarifa_rate(&config, &events, &["--format", "json"]);
    assert!(!run.success);
    assert!(run.stdout.is_empty(), "stdout: {}", run.stdout);
    let location = format!("{}:7:", events.display());
    assert!(run.stderr.contains(&location), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("waba-9"), "stderr: {}", run.stderr);

    let run = ok(tarifa_rate(
        &config,
        &events,
        &["--format", "json", "--skip-invalid"],
    ));
    assert!(run.stderr.contains(&location), "stderr: {}", run.stderr);
    let report = json(&run);
    assert_eq!(report["input"]["invalid_lines"], 1);
    assert_eq!(report["input"]["invalid"][0]["line"], 7);
    assert!(report["input"]["invalid"][0]["message"]
        .as_str()
        .unwrap()
        .contains("waba-9"));
    check_expected_bill(&report);
}

// ---------------------------------------------------------------------------------------------
// Config errors
// ---------------------------------------------------------------------------------------------

fn config_error(name: &str, config_text: &str, needles: &[&str]) {
    let dir = TempDir::new(name);
    let card = dir.write("card.csv", CARD);
    let config = dir.write(
        "config.toml",
        &config_text.replace("CARD", &card.display().to_string()),
    );
    let events = dir.events("events.jsonl", EVENTS);
    let run = tarifa_rate(&config, &events, &["--format", "json"]);
    assert!(!run.success, "{name}: expected failure");
    assert!(run.stdout.is_empty(), "{name}: stdout: {}", run.stdout);
    for n in needles {
        assert!(
            run.stderr.contains(n),
            "{name}: stderr does not name {n:?}: {}",
            run.stderr
        );
    }
}

#[test]
fn unknown_config_key_is_an_error() {
    config_error(
        "unknown-business-key",
        "[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\ncolour = \"red\"\n[[rate_card]]\nfile = \"CARD\"\n",
        &["colour", "unknown field"],
    );
    config_error(
        "unknown-top-key",
        "ratecard = 1\n[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n[[rate_card]]\nfile = \"CARD\"\n",
        &["ratecard", "unknown field"],
    );
    config_error(
        "unknown-rule",
        "[rules]\nfree_tier = 5\n[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n[[rate_card]]\nfile = \"CARD\"\n",
        &["free_tier", "unknown field"],
    );
}

#[test]
fn bad_time_zone_is_an_error() {
    config_error(
        "bad-tz",
        "[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"Mars/Olympus_Mons\"\n[[rate_card]]\nfile = \"CARD\"\n",
        &["Mars/Olympus_Mons", "waba-1", "time zone"],
    );
}

#[test]
fn missing_card_file_is_an_error() {
    config_error(
        "missing-card",
        "[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n[[rate_card]]\nfile = \"CARD.missing\"\n",
        &["card.csv.missing", "rate card"],
    );
}

#[test]
fn missing_config_file_is_an_error() {
    let dir = TempDir::new("missing-config");
    let events = dir.events("events.jsonl", EVENTS);
    let config = dir.0.join("nope.toml");
    let run = tarifa_rate(&config, &events, &[]);
    assert!(!run.success);
    assert!(run.stderr.contains("nope.toml"), "stderr: {}", run.stderr);
}

// ---------------------------------------------------------------------------------------------
// Order independence
// ---------------------------------------------------------------------------------------------

/// The bill depends on the events' own times and ids, not on their order or on duplicates: the
/// reversed file gives byte-identical JSON; the file with every line duplicated gives a
/// byte-identical bill (everything before the `input` report, whose counters tell the
/// duplicates) and byte-identical CSV tables.
#[test]
fn order_and_duplicates_do_not_change_the_output() {
    let dir = TempDir::new("order");
    let config = dir.config();
    let events = dir.events("events.jsonl", EVENTS);
    let mut reversed_lines = EVENTS.to_vec();
    reversed_lines.reverse();
    let reversed = dir.events("reversed.jsonl", &reversed_lines);
    let doubled_lines: Vec<&str> = EVENTS.iter().flat_map(|l| [*l, *l]).collect();
    let doubled = dir.events("doubled.jsonl", &doubled_lines);

    let base = ok(tarifa_rate(&config, &events, &["--format", "json"])).stdout;
    let rev = ok(tarifa_rate(&config, &reversed, &["--format", "json"])).stdout;
    assert_eq!(base, rev, "reversed input changes the JSON output");

    let dup = ok(tarifa_rate(&config, &doubled, &["--format", "json"])).stdout;
    let bill_part = |s: &str| s.split(",\"input\":").next().unwrap().to_string();
    assert_eq!(
        bill_part(&base),
        bill_part(&dup),
        "duplicated input changes the bill"
    );
    let dup_report: Value = serde_json::from_str(&dup).unwrap();
    assert_eq!(dup_report["input"]["stats"]["duplicate_outbound"], 7);
    assert_eq!(dup_report["input"]["stats"]["duplicate_inbound"], 2);
    check_expected_bill(&dup_report);

    for table in ["messages", "conversations", "totals", "breakdown"] {
        let args = ["--format", "csv", "--table", table];
        let base = ok(tarifa_rate(&config, &events, &args)).stdout;
        assert_eq!(
            base,
            ok(tarifa_rate(&config, &reversed, &args)).stdout,
            "{table}: reversed"
        );
        assert_eq!(
            base,
            ok(tarifa_rate(&config, &doubled, &args)).stdout,
            "{table}: duplicated"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Mixed input
// ---------------------------------------------------------------------------------------------

/// Normalized events and raw webhooks in one file (W-3, W-4): a webhook delivers an explicit
/// outbound message; a webhook alone describes another message; a webhook inbound opens the CSW
/// a normalized free-form reply falls into; an `account_update` webhook is ignored (V-7).
#[test]
fn mixed_normalized_events_and_raw_webhooks() {
    let dir = TempDir::new("mixed");
    let config = dir.config();
    let lines = [
        r#"{"type":"outbound","id":"m1","at":"2025-08-04T09:00:00Z","business":"waba-1","phone":"pn-1","user":"16505551234","template":{"name":"promo","category":"marketing"}}"#,
        r#"{"object":"whatsapp_business_account","entry":[{"id":"waba-1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"pn-1"},"statuses":[{"id":"m1","status":"delivered","timestamp":"1754298005","recipient_id":"16505551234","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"marketing"}},{"id":"wamid.W1","status":"sent","timestamp":"1754299800","recipient_id":"5511987654321","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}]},"field":"messages"}]}]}"#,
        r#"{"object":"whatsapp_business_account","entry":[{"id":"waba-1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"pn-1"},"statuses":[{"id":"wamid.W1","status":"delivered","timestamp":"1754299804","recipient_id":"5511987654321","pricing":{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}]},"field":"messages"}]}]}"#,
        r#"{"object":"whatsapp_business_account","entry":[{"id":"waba-1","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"15550000000","phone_number_id":"pn-1"},"contacts":[{"profile":{"name":"Ann"},"wa_id":"447700900123"}],"messages":[{"from":"447700900123","id":"wamid.IN1","timestamp":"1754380800","type":"text","text":{"body":"hi"}}]},"field":"messages"}]}]}"#,
        r#"{"type":"outbound","id":"m5","at":"2025-08-05T08:10:00Z","business":"waba-1","phone":"pn-1","user":"447700900123"}"#,
        r#"{"type":"status","id":"m5","at":"2025-08-05T08:10:02Z","status":"delivered"}"#,
        r#"{"object":"whatsapp_business_account","entry":[{"id":"waba-1","time":1754380800,"changes":[{"value":{"volume_tier_info":{"tier_update_time":1754380800,"pricing_category":"UTILITY","tier":"25000001:50000000","effective_month":"2025-08","region":"India"},"event":"VOLUME_BASED_PRICING_TIER_UPDATE"},"field":"account_update"}]}]}"#,
    ];
    let events = dir.events("mixed.jsonl", &lines);
    let run = ok(tarifa_rate(&config, &events, &["--format", "json"]));
    let report = json(&run);
    assert_eq!(ids(&report), vec!["m1", "wamid.W1", "m5"], "{report:#}");
    let m = &report["messages"];
    let expect = [
        ("m1", "North America", "marketing", "regular", "0.025"),
        ("wamid.W1", "Brazil", "utility", "regular", "0.0068"),
        (
            "m5",
            "United Kingdom",
            "service",
            "free_customer_service",
            "0",
        ),
    ];
    for (i, (id, market, category, pricing_type, amount)) in expect.iter().enumerate() {
        assert_eq!(m[i]["id"], *id);
        assert_eq!(m[i]["market"], *market, "{id}");
        assert_eq!(m[i]["category"], *category, "{id}");
        assert_eq!(m[i]["pricing_type"], *pricing_type, "{id}");
        assert_eq!(
            dec(&m[i]["amount"]),
            Decimal::from_str(amount).unwrap(),
            "{id}"
        );
    }
    assert_eq!(m[0]["delivered_at"], "2025-08-04T09:00:05Z");
    assert_eq!(m[1]["business"], "waba-1");
    assert_eq!(m[1]["user"], "5511987654321");
    assert_eq!(m[1]["meta"]["pricing_model"], "PMP");
    assert_eq!(
        dec(&report["totals"][0]["amount"]),
        Decimal::from_str("0.0318").unwrap()
    );
    let stats = &report["input"]["stats"];
    assert_eq!(stats["ignored"], 1);
    assert_eq!(stats["inbound"], 1);
    assert_eq!(stats["statuses"], 4);
    assert_eq!(stats["orphan_statuses"], 0);

    // Reversed, the mixed file rates the same.
    let mut reversed_lines = lines.to_vec();
    reversed_lines.reverse();
    let reversed = dir.events("mixed-reversed.jsonl", &reversed_lines);
    assert_eq!(
        run.stdout,
        ok(tarifa_rate(&config, &reversed, &["--format", "json"])).stdout
    );
}

/// A raw webhook whose entry id is not a configured business is an invalid line.
#[test]
fn webhook_for_unknown_business_is_an_invalid_line() {
    let dir = TempDir::new("webhook-unknown");
    let config = dir.config();
    let webhook = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"value":{"messaging_product":"whatsapp","metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.X","status":"sent","timestamp":"1754298005","recipient_id":"16505551234"}]},"field":"messages"}]}]}"#;
    let mut lines = EVENTS.to_vec();
    lines.push(webhook); // line 17
    let events = dir.events("webhook.jsonl", &lines);
    let run = ok(tarifa_rate(
        &config,
        &events,
        &["--format", "json", "--skip-invalid"],
    ));
    let location = format!("{}:17:", events.display());
    assert!(run.stderr.contains(&location), "stderr: {}", run.stderr);
    assert!(
        run.stderr.contains("102290129340398"),
        "stderr: {}",
        run.stderr
    );
    let report = json(&run);
    assert_eq!(report["input"]["invalid_lines"], 1);
    check_expected_bill(&report);
}

// ---------------------------------------------------------------------------------------------
// Resale price lists (seed 002: Pancake bills Meta's rate × 1.2)
// ---------------------------------------------------------------------------------------------

/// A config with two businesses: one billed with a markup list, one with a full card of its own.
fn resale_config(dir: &TempDir, lists: &str) -> PathBuf {
    let card = dir.write("card.csv", CARD);
    let own = dir.write(
        "own.csv",
        "Cost per message in USD, effective July 1, 2025\nMarket,Currency,Marketing,Utility,Authentication,Authentication-International,Service\nNorth America,$US,0.05,0.01,0.01,n/a,n/a\nBrazil,$US,0.09,0.02,0.02,n/a,n/a\n",
    );
    dir.write(
        "config.toml",
        &format!(
            "[[business]]\nid = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\nprice_list = \"pancake\"\n\n\
             [[business]]\nid = \"waba-2\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\nprice_list = \"own\"\n\n\
             [[rate_card]]\nfile = {card:?}\n\n{lists}",
            lists = lists.replace("OWN", &format!("{:?}", own.display().to_string())),
        ),
    )
}

const LISTS: &str = "[[price_list]]\nid = \"pancake\"\nmarkup = \"1.2\"\n\n[[price_list]]\nid = \"own\"\n[[price_list.rate_card]]\nfile = OWN\n";

#[test]
fn resale_prices_apply_each_business_price_list() {
    let dir = TempDir::new("resale");
    let config = resale_config(&dir, LISTS);
    let events = dir.events(
        "events.jsonl",
        &[
            r#"{"type":"outbound","id":"a1","at":"2025-08-04T09:00:00Z","business":"waba-1","phone":"pn-1","user":"5511987654321","template":{"name":"p","category":"marketing"}}"#,
            r#"{"type":"status","id":"a1","at":"2025-08-04T09:00:05Z","status":"delivered"}"#,
            r#"{"type":"outbound","id":"b1","at":"2025-08-04T09:00:00Z","business":"waba-2","phone":"pn-2","user":"5511987654321","template":{"name":"p","category":"marketing"}}"#,
            r#"{"type":"status","id":"b1","at":"2025-08-04T09:00:05Z","status":"delivered"}"#,
        ],
    );
    let amount_of = |report: &Value, id: &str| {
        let m = report["messages"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["id"] == id)
            .unwrap()
            .clone();
        dec(&m["amount"])
    };
    // Meta's prices by default: the Brazil marketing rate for both.
    let meta = json(&ok(tarifa_rate(&config, &events, &["--format", "json"])));
    assert_eq!(amount_of(&meta, "a1"), Decimal::from_str("0.0625").unwrap());
    assert_eq!(amount_of(&meta, "b1"), Decimal::from_str("0.0625").unwrap());
    // Resale: × 1.2 for waba-1, the business's own card for waba-2.
    let resale = json(&ok(tarifa_rate(
        &config,
        &events,
        &["--format", "json", "--prices", "resale"],
    )));
    assert_eq!(
        amount_of(&resale, "a1"),
        Decimal::from_str("0.075").unwrap()
    );
    assert_eq!(amount_of(&resale, "b1"), Decimal::from_str("0.09").unwrap());
}

#[test]
fn a_price_list_must_be_defined_once_and_either_markup_or_cards() {
    let dir = TempDir::new("resale-bad");
    let events = dir.events("events.jsonl", &[EVENTS[0]]);
    let cases = [
        ("[[price_list]]\nid = \"own\"\nmarkup = \"1.2\"\n", "price_list \"pancake\" is not defined"),
        (
            "[[price_list]]\nid = \"pancake\"\nmarkup = \"1.2\"\n[[price_list.rate_card]]\nfile = OWN\n[[price_list]]\nid = \"own\"\nmarkup = \"1\"\n",
            "either `markup`",
        ),
        ("[[price_list]]\nid = \"pancake\"\nmarkup = \"-1\"\n[[price_list]]\nid = \"own\"\nmarkup = \"1\"\n", "markup must be positive"),
        ("[[price_list]]\nid = \"pancake\"\nmarkup = \"1.2\"\n[[price_list]]\nid = \"pancake\"\nmarkup = \"1.3\"\n", "defined twice"),
    ];
    for (lists, message) in cases {
        let config = resale_config(&dir, lists);
        let run = tarifa_rate(&config, &events, &[]);
        assert!(!run.success, "{lists}");
        assert!(run.stderr.contains(message), "{lists}: {}", run.stderr);
    }
}

/// Problem 5 of real traffic: unrated messages are counted apart from charged ones in totals and
/// breakdowns, and `--fail-on-unrated` stops a pipeline (exit 3) after printing the bill.
#[test]
fn unrated_messages_are_counted_apart_and_can_fail_the_run() {
    let dir = TempDir::new("unrated");
    let config = dir.config();
    let mut lines = EVENTS.to_vec();
    // India is not on the test card: Meta bills this marketing message, tarifa cannot price it.
    lines.push(r#"{"type":"outbound","id":"m8","at":"2025-08-11T12:00:00Z","business":"waba-1","phone":"pn-1","user":"919876543210","template":{"name":"promo","category":"marketing"}}"#);
    lines.push(r#"{"type":"status","id":"m8","at":"2025-08-11T12:00:02Z","status":"delivered"}"#);
    let events = dir.events("unrated.jsonl", &lines);
    let report = json(&ok(tarifa_rate(&config, &events, &["--format", "json"])));
    let totals = &report["totals"][0];
    assert_eq!(totals["charged_messages"], 3, "{totals}");
    assert_eq!(totals["unrated_messages"], 1, "{totals}");
    let india: Vec<&Value> = report["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["market"] == "India")
        .collect();
    assert_eq!(india.len(), 1);
    assert_eq!(india[0]["charged_messages"], 0);
    assert_eq!(india[0]["unrated_messages"], 1);

    let run = tarifa_rate(&config, &events, &["--format", "json", "--fail-on-unrated"]);
    assert_eq!(run.code, Some(3), "stderr: {}", run.stderr);
    assert!(run.stderr.contains("1 unrated message"), "{}", run.stderr);
    assert_eq!(
        json(&run)["totals"][0]["unrated_messages"],
        1,
        "the bill is still printed"
    );
    // Without unrated messages the flag changes nothing.
    let clean = dir.events("clean.jsonl", EVENTS);
    ok(tarifa_rate(
        &config,
        &clean,
        &["--format", "json", "--fail-on-unrated"],
    ));
}
