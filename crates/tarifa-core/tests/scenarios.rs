//! Data-driven scenario tests: Meta's worked examples (spec §12) and derived cases.
//!
//! Each file in `tests/scenarios/` holds scenarios in a small line language (documented in
//! `tests/scenarios/README.md`); [`check`] runs one and reports every mismatch with the scenario
//! id, so a failure names the worked example and the rules it covers.

use rust_decimal::Decimal;
use std::collections::BTreeMap;
use std::str::FromStr;
use tarifa_core::bill::Bill;
use tarifa_core::card::{RateBook, RateCard, TierCard};
use tarifa_core::config::{BusinessConfig, Rules};
use tarifa_core::engine::{Prices, Rater, Setup};
use tarifa_core::input::parse_line;
use tarifa_core::market::MarketOptions;
use tarifa_core::time::{format_instant, parse_instant, Instant};

#[derive(Default)]
struct Scenario {
    id: String,
    title: String,
    rules: Vec<String>,
    businesses: Vec<BusinessConfig>,
    rule_overrides: Vec<(String, String)>,
    cards: Vec<(String, String)>,
    tier_cards: Vec<(String, String)>,
    users: BTreeMap<String, String>,
    start: Instant,
    events: Vec<String>,
    expectations: Vec<(usize, String)>,
    line: usize,
}

fn data_file(name: &str) -> String {
    let path = format!("{}/../../data/rates/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `26h`, `0h01`, `-1h`, `d2 15:45` style offsets → seconds from the scenario start; or an
/// absolute RFC 3339 time.
fn time_of(s: &Scenario, text: &str) -> Instant {
    if let Some(t) = parse_instant(text) {
        return t;
    }
    let (neg, body) = text.strip_prefix('-').map_or((false, text), |b| (true, b));
    let (h, rest) = body
        .split_once('h')
        .unwrap_or_else(|| panic!("{}: bad time {text:?}", s.id));
    let (m, sec) = match rest.split_once(':') {
        Some((m, sec)) => (m, sec),
        None => (rest, ""),
    };
    let h: i64 = h
        .parse()
        .unwrap_or_else(|_| panic!("{}: bad hours in {text:?}", s.id));
    let m: i64 = if m.is_empty() { 0 } else { m.parse().unwrap() };
    let sec: i64 = if sec.is_empty() {
        0
    } else {
        sec.parse().unwrap()
    };
    let off = h * 3600 + m * 60 + sec;
    s.start + if neg { -off } else { off }
}

fn user(s: &Scenario, name: &str) -> String {
    s.users
        .get(name)
        .cloned()
        .unwrap_or_else(|| name.to_string())
}

/// Turns one event line of the language into JSON Lines (one or more lines).
fn event_json(s: &Scenario, line: &str) -> Vec<String> {
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = time_of(s, words[0]);
    let ts = format_instant(at);
    let business = s
        .businesses
        .first()
        .map_or("waba-1".to_string(), |b| b.id.clone());
    let mut opts: BTreeMap<&str, &str> = BTreeMap::new();
    let mut flags = Vec::new();
    for w in &words[3.min(words.len())..] {
        match w.split_once('=') {
            Some((k, v)) => {
                opts.insert(k, v);
            }
            None => flags.push(*w),
        }
    }
    let b = opts.get("business").map_or(business, |b| b.to_string());
    let phone = opts.get("phone").copied().unwrap_or("pn-1");
    match words[1] {
        "in" => {
            let id = opts
                .get("id")
                .map_or(format!("in.{}.{}", words[2], at), |i| i.to_string());
            let mut v = serde_json::json!({"type":"inbound","id":id,"at":ts,"business":b,"phone":phone,"user":user(s, words[2])});
            if flags.contains(&"ref") {
                v["referral"] = serde_json::json!({"source_type":"ad"});
                v["platform"] = serde_json::json!("android");
            }
            for p in ["web", "ios", "android"] {
                if flags.contains(&p) {
                    v["platform"] = serde_json::json!(p);
                }
            }
            if let Some(g) = opts.get("group") {
                v["group"] = serde_json::json!(g);
                v.as_object_mut().unwrap().remove("user");
            }
            vec![v.to_string()]
        }
        "out" => {
            let id = words[2];
            let to = words[3];
            let mut v = serde_json::json!({"type":"outbound","id":id,"at":ts,"business":b,"phone":phone,"user":user(s, to)});
            for c in ["marketing", "utility", "authentication", "marketing_lite"] {
                if flags.contains(&c) {
                    v["template"] = serde_json::json!({"name": format!("t-{c}"), "category": c});
                }
            }
            if let Some(t) = opts.get("agent") {
                v["agent"] = serde_json::json!({"tokens": t.parse::<u64>().unwrap()});
            }
            if let Some(members) = opts.get("members") {
                let members: Vec<String> = members.split(',').map(|m| user(s, m)).collect();
                v["group"] = serde_json::json!({"id": to, "members": members});
                v.as_object_mut().unwrap().remove("user");
            }
            let mut out = vec![v.to_string()];
            let status_at =
                |key: &str, default: i64| opts.get(key).map_or(at + default, |t| time_of(s, t));
            let outcome = ["delivered", "read", "failed", "sent", "none"]
                .into_iter()
                .find(|f| flags.contains(f))
                .unwrap_or("delivered");
            if outcome != "none" {
                out.push(serde_json::json!({"type":"status","id":id,"at":format_instant(at + 1),"status":"sent"}).to_string());
            }
            let final_at = format_instant(status_at("@", 2));
            match outcome {
                "delivered" | "read" | "failed" => {
                    if let Some(to_members) = opts.get("delivered_to") {
                        for m in to_members.split(',') {
                            out.push(serde_json::json!({"type":"status","id":id,"at":final_at,"status":"delivered","recipient":user(s, m)}).to_string());
                        }
                    } else {
                        out.push(serde_json::json!({"type":"status","id":id,"at":final_at,"status":outcome}).to_string());
                    }
                }
                _ => {}
            }
            out
        }
        "raw" => vec![line.split_once("raw").unwrap().1.trim().to_string()],
        "category" => {
            // `<t> category TEMPLATE NEW_CATEGORY`
            vec![serde_json::json!({"type":"template_category","at":ts,"business":b,"template":words[2],"category":words[3]}).to_string()]
        }
        other => panic!("{}: unknown event kind {other:?}", s.id),
    }
}

fn setup(s: &Scenario) -> Setup {
    let mut book = RateBook::new();
    for (name, text) in &s.cards {
        book.add_rate_card(
            RateCard::parse_csv(text, name).unwrap_or_else(|e| panic!("{}: {e}", s.id)),
        )
        .unwrap();
    }
    for (name, text) in &s.tier_cards {
        book.add_tier_card(
            TierCard::parse_csv(text, name, None).unwrap_or_else(|e| panic!("{}: {e}", s.id)),
        )
        .unwrap();
    }
    let mut rules_toml = String::new();
    for (k, v) in &s.rule_overrides {
        rules_toml.push_str(&format!("{k} = {v}\n"));
    }
    let rules: Rules =
        toml::from_str(&rules_toml).unwrap_or_else(|e| panic!("{}: rule override: {e}", s.id));
    let mut businesses = s.businesses.clone();
    if businesses.is_empty() {
        businesses.push(business_config("id=waba-1"));
    }
    Setup {
        businesses: businesses.iter().map(|b| b.resolve().unwrap()).collect(),
        rules,
        markets: MarketOptions::default(),
        book,
        price_lists: Vec::new(),
        prices: Prices::Meta,
    }
}

fn business_config(spec: &str) -> BusinessConfig {
    let mut toml_text = String::from("currency = \"USD\"\ntimezone = \"UTC\"\n");
    let mut ai = Vec::new();
    for kv in spec.split_whitespace() {
        let (k, v) = kv.split_once('=').expect("business key=value");
        match k {
            "ai_start" => ai.push(format!("start = \"{v}\"")),
            "ai_exception" => {
                let (c, d) = v.split_once(':').unwrap();
                ai.push(format!("exceptions.{c} = \"{d}\""));
            }
            "tz" => {
                toml_text = toml_text.replace("timezone = \"UTC\"", &format!("timezone = \"{v}\""))
            }
            "currency" => {
                toml_text = toml_text.replace("currency = \"USD\"", &format!("currency = \"{v}\""))
            }
            "primary" => toml_text.push_str(&format!("primary_country = \"{v}\"\n")),
            other => toml_text.push_str(&format!("{other} = \"{v}\"\n")),
        }
    }
    if !ai.is_empty() {
        toml_text.push_str("[auth_international]\n");
        toml_text.push_str(&ai.join("\n"));
    }
    toml::from_str(&toml_text).unwrap_or_else(|e| panic!("business {spec:?}: {e}"))
}

fn rate(s: &Scenario, events: &[String]) -> Bill {
    let mut rater = Rater::new(setup(s));
    for line in events {
        let mut evs = Vec::new();
        parse_line(line.as_bytes(), &mut |e| evs.push(e))
            .unwrap_or_else(|e| panic!("{}: {line}: {e}", s.id));
        rater
            .push_all(evs)
            .unwrap_or_else(|e| panic!("{}: {line}: {e}", s.id));
    }
    rater.finish()
}

/// Checks one expectation line against a bill; returns a failure message.
fn expectation(s: &Scenario, bill: &Bill, text: &str) -> Option<String> {
    let words: Vec<&str> = text.split_whitespace().collect();
    let fail = |msg: String| Some(format!("expect {text}: {msg}"));
    match words[0] {
        "conversations" => {
            let want: usize = words[1].parse().unwrap();
            let filter = words.get(2).copied();
            let got: Vec<String> = bill
                .conversation_views()
                .filter(|c| filter.is_none_or(|f| c.category.as_str() == f))
                .map(|c| format!("{}@{}", c.category, format_instant(c.opened_at)))
                .collect();
            (got.len() != want).then(|| format!("expect {text}: got {} {got:?}", got.len()))
        }
        "total" => {
            let want = Decimal::from_str(words[1]).unwrap();
            let got: Decimal = bill.totals().iter().map(|t| t.amount).sum();
            (got != want).then(|| format!("expect {text}: got {got}"))
        }
        "charged" => {
            let want: usize = words[1].parse().unwrap();
            let got = bill.lines.iter().filter(|l| l.charged()).count();
            (got != want).then(|| format!("expect {text}: got {got}"))
        }
        "meta" => {
            // `meta MSG CHECK`: how Meta's pricing of MSG compared (agrees, differs, followed).
            let got: Vec<&str> = bill
                .messages()
                .filter(|v| v.id == words[1])
                .map(|v| v.line.meta_check.as_str())
                .collect();
            let want = if words[2] == "none" { "" } else { words[2] };
            (got != [want]).then(|| format!("expect {text}: got {got:?}"))
        }
        "expires" => {
            // `expires MSG TIME`: the conversation opened by MSG expires at TIME.
            let want = time_of(s, words[2]);
            match bill.conversation_views().find(|c| c.opened_by == words[1]) {
                None => fail("no conversation opened by it".into()),
                Some(c) => (c.expires_at != want)
                    .then(|| format!("expect {text}: got {}", format_instant(c.expires_at))),
            }
        }
        id => {
            // `MSG [user=U] CATEGORY PRICING_TYPE [AMOUNT]`
            let mut rest = &words[1..];
            let mut member = None;
            if let Some(u) = rest.first().and_then(|w| w.strip_prefix("user=")) {
                member = Some(user(s, u));
                rest = &rest[1..];
            }
            let lines: Vec<_> = bill
                .messages()
                .filter(|v| v.id == id && member.as_deref().is_none_or(|m| v.user == m))
                .collect();
            if lines.len() != 1 {
                return fail(format!("{} lines for {id}", lines.len()));
            }
            let v = &lines[0];
            let got = format!(
                "{} {} {}",
                v.line.category,
                v.line.pricing_type,
                v.line.amount.normalize()
            );
            let mut ok =
                v.line.category.as_str() == rest[0] && v.line.pricing_type.as_str() == rest[1];
            if let Some(a) = rest.get(2) {
                ok &= v.line.amount == Decimal::from_str(a).unwrap();
            }
            (!ok).then(|| format!("expect {text}: got {got} — {}", bill.explain(v.line)))
        }
    }
}

fn parse_file(path: &str, text: &str) -> Vec<Scenario> {
    let mut out = Vec::new();
    let mut cur: Option<Scenario> = None;
    let mut lines = text.lines().enumerate();
    while let Some((n, raw)) = lines.next() {
        let line = raw.split(" #").next().unwrap().trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (head, rest) = line.split_once(' ').unwrap_or((line, ""));
        if head == "scenario" {
            let (id, title) = rest.split_once(' ').unwrap_or((rest, ""));
            cur = Some(Scenario {
                id: id.into(),
                title: title.into(),
                line: n + 1,
                ..Scenario::default()
            });
            continue;
        }
        let s = cur
            .as_mut()
            .unwrap_or_else(|| panic!("{path}:{}: outside a scenario", n + 1));
        match head {
            "rules" => s.rules.extend(rest.split_whitespace().map(String::from)),
            "business" => s.businesses.push(business_config(rest)),
            "set" => {
                let (k, v) = rest.split_once('=').unwrap();
                s.rule_overrides.push((k.trim().into(), v.trim().into()));
            }
            "user" => {
                let (name, number) = rest.split_once(' ').unwrap();
                s.users.insert(name.into(), number.trim().into());
            }
            "start" => {
                s.start =
                    parse_instant(rest).unwrap_or_else(|| panic!("{path}:{}: bad start", n + 1))
            }
            "card" | "tiers" => {
                let body = if let Some(name) = rest.strip_prefix("file=") {
                    (name.to_string(), data_file(name))
                } else {
                    let mut body = String::new();
                    for (_, l) in lines.by_ref() {
                        if l.trim() == "end" {
                            break;
                        }
                        body.push_str(l.trim());
                        body.push('\n');
                    }
                    (format!("{path}:{}", n + 1), body)
                };
                if head == "card" {
                    s.cards.push(body)
                } else {
                    s.tier_cards.push(body)
                }
            }
            "bulk" => {
                // `bulk N KIND [OPTIONS]`: N distinct users, one conversation each, an hour apart
                // per 100; OPTIONS (e.g. `phone=pn-2`) are added to every event.
                let mut words = rest.split_whitespace();
                let count: usize = words.next().unwrap().parse().unwrap();
                let kind = words.next().unwrap();
                let extra = words.collect::<Vec<_>>().join(" ");
                let base = s.events.len();
                for i in 0..count {
                    let u = format!("55119{:08}", base * 10_000 + i);
                    let h = i / 100;
                    match kind {
                        "service" => {
                            s.events.push(format!("{h}h in {u} {extra}"));
                            s.events
                                .push(format!("{h}h00:10 out bulk{base}.{i} {u} {extra}"));
                        }
                        k => s
                            .events
                            .push(format!("{h}h out bulk{base}.{i} {u} {k} {extra}")),
                    }
                }
            }
            "expect" => s.expectations.push((n + 1, rest.to_string())),
            "end" => out.push(cur.take().unwrap()),
            _ => s.events.push(line.to_string()),
        }
    }
    assert!(cur.is_none(), "{path}: last scenario has no `end`");
    out
}

/// Runs one scenario: rates its events in order, shuffled, and duplicated, and checks the
/// expectations on each (the bill must not depend on input order or duplicates).
fn check(path: &str, s: &Scenario) -> Vec<String> {
    let events: Vec<String> = s.events.iter().flat_map(|e| event_json(s, e)).collect();
    let mut failures = Vec::new();
    let mut reversed = events.clone();
    reversed.reverse();
    let mut doubled = events.clone();
    doubled.extend(events.iter().cloned());
    for (variant, evs) in [
        ("in order", &events),
        ("reversed", &reversed),
        ("duplicated", &doubled),
    ] {
        let bill = rate(s, evs);
        for (line, e) in &s.expectations {
            if let Some(f) = expectation(s, &bill, e) {
                failures.push(format!(
                    "{path}:{line}: {} ({}) [{variant}]: {f}",
                    s.id, s.title
                ));
            }
        }
    }
    failures
}

#[test]
fn worked_examples_and_derived_scenarios() {
    let dir = format!("{}/tests/scenarios", env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "scn"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    let mut count = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        for s in parse_file(&name, &text) {
            assert!(
                !s.expectations.is_empty(),
                "{name}:{}: scenario {} has no expectations",
                s.line,
                s.id
            );
            assert!(
                !s.rules.is_empty(),
                "{name}:{}: scenario {} names no rules",
                s.line,
                s.id
            );
            count += 1;
            failures.extend(check(&name, &s));
        }
    }
    assert!(count > 0, "no scenarios found in {dir}");
    assert!(
        failures.is_empty(),
        "{} failing expectation(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}
