//! Unit tests of the generator: dates and numbers, determinism, line counts, the validity and
//! consistency of every line, the promised shares, eras, and the config TOML.

use super::clock::DAY;
use super::config::{config_toml, relative_path};
use super::digits::put_u64;
use super::intensity::Warp;
use super::numbering::PLANS;
use super::render::Render;
use super::world::World;
use super::{generate, GenArgs};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use tarifa_core::time::LocalDate;

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(text: &str) -> Option<i64> {
    LocalDate::parse(text).map(|d| i64::from(d.0))
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let (y, m, d) = LocalDate(days as i32).ymd_parts();
    (i64::from(y), m, d)
}

fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    LocalDate::from_ymd(y as i32, m, d).map(|date| i64::from(date.0))
}

fn args(events: u64) -> GenArgs {
    GenArgs {
        events,
        ..GenArgs::default()
    }
}

fn gen_bytes(a: &GenArgs) -> Vec<u8> {
    let mut out = Vec::new();
    let stats = generate(a, &mut out).unwrap();
    assert_eq!(stats.lines, a.events);
    assert_eq!(stats.bytes, out.len() as u64);
    out
}

fn lines(bytes: &[u8]) -> Vec<&str> {
    std::str::from_utf8(bytes).unwrap().lines().collect()
}

fn unix_of_date(s: &str) -> i64 {
    parse_date(s).unwrap() * 86_400
}

/// Parses an ISO `…Z` instant to Unix seconds.
fn iso_unix(s: &str) -> i64 {
    assert_eq!(s.len(), 20, "{s}");
    assert!(s.ends_with('Z') && &s[10..11] == "T", "{s}");
    let day = parse_date(&s[..10]).unwrap_or_else(|| panic!("{s}"));
    let h: i64 = s[11..13].parse().unwrap();
    let m: i64 = s[14..16].parse().unwrap();
    let sec: i64 = s[17..19].parse().unwrap();
    assert!(h < 24 && m < 60 && sec < 60, "{s}");
    day * 86_400 + h * 3600 + m * 60 + sec
}

/// One parsed line, whatever its form.
#[derive(Debug)]
struct Line {
    kind: String, // inbound | outbound | sent | delivered | read | failed
    id: String,
    at: i64,
    hook: bool,
    user: String,
    business: Option<String>,
    phone: Option<String>,
    v: Value,
}

fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("missing string {key} in {v}"))
}

fn check_number(n: &str) {
    assert!(n.bytes().all(|b| b.is_ascii_digit()), "{n}");
    assert!((9..=15).contains(&n.len()), "{n}");
    assert_ne!(&n[..1], "0", "{n}");
}

fn parse_line(text: &str) -> Line {
    let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(!text.contains('\n'));
    if v.get("object").is_some() {
        return parse_hook(v);
    }
    let ty = str_of(&v, "type").to_string();
    let id = str_of(&v, "id").to_string();
    assert!(id.starts_with("wamid."), "{id}");
    let at = iso_unix(str_of(&v, "at"));
    match ty.as_str() {
        "inbound" | "outbound" => parse_message(text, v, ty, id, at),
        "status" => parse_status(text, v, id, at),
        other => panic!("unknown type {other}: {text}"),
    }
}

/// A normalized `inbound` or `outbound` line.
fn parse_message(text: &str, v: Value, ty: String, id: String, at: i64) -> Line {
    let obj = v.as_object().unwrap();
    let business = str_of(&v, "business").to_string();
    let phone = str_of(&v, "phone").to_string();
    let user = str_of(&v, "user").to_string();
    check_number(&user);
    assert!(
        phone.starts_with(&format!("pn-{}-", &business[5..])),
        "{text}"
    );
    let allowed: &[&str] = if ty == "inbound" {
        &[
            "type", "id", "at", "business", "phone", "user", "referral", "platform",
        ]
    } else {
        &[
            "type", "id", "at", "business", "phone", "user", "template", "agent",
        ]
    };
    for k in obj.keys() {
        assert!(allowed.contains(&k.as_str()), "unexpected {k}: {text}");
    }
    if let Some(r) = v.get("referral") {
        assert!(matches!(str_of(r, "source_type"), "ad" | "post"));
        assert!(matches!(str_of(&v, "platform"), "android" | "ios" | "web"));
    }
    if let Some(t) = v.get("template") {
        assert!(!str_of(t, "name").is_empty());
        assert!(matches!(
            str_of(t, "category"),
            "marketing" | "utility" | "authentication"
        ));
        assert!(v.get("agent").is_none());
    }
    if let Some(a) = v.get("agent") {
        let tokens = a["tokens"].as_u64().unwrap();
        assert!((15_000..=30_000).contains(&tokens));
        assert!(at >= unix_of_date("2026-08-01"), "{text}");
    }
    Line {
        kind: ty,
        id,
        at,
        hook: false,
        user,
        business: Some(business),
        phone: Some(phone),
        v,
    }
}

/// A normalized `status` line.
fn parse_status(text: &str, v: Value, id: String, at: i64) -> Line {
    let obj = v.as_object().unwrap();
    let status = str_of(&v, "status").to_string();
    assert!(matches!(
        status.as_str(),
        "sent" | "delivered" | "read" | "failed"
    ));
    for k in obj.keys() {
        assert!(
            ["type", "id", "at", "status", "errors"].contains(&k.as_str()),
            "{text}"
        );
    }
    if status == "failed" {
        let codes = v["errors"].as_array().unwrap();
        assert_eq!(codes.len(), 1, "{text}");
        let code = codes[0].as_u64().unwrap();
        assert!(code == 131_049 || code == 131_026);
        // The parser reads the code back (it ignored the old `error` object).
        let mut parsed = Vec::new();
        tarifa_core::input::parse_line(text.as_bytes(), &mut |e| parsed.push(e.into_owned()))
            .unwrap();
        match &parsed[..] {
            [tarifa_core::input::Event::Status(s)] => {
                assert_eq!(s.error_codes, [code as u32], "{text}")
            }
            other => panic!("{text}: {other:?}"),
        }
    } else {
        assert!(v.get("errors").is_none());
    }
    Line {
        kind: status,
        id,
        at,
        hook: false,
        user: String::new(),
        business: None,
        phone: None,
        v,
    }
}

fn parse_hook(v: Value) -> Line {
    assert_eq!(v["object"], "whatsapp_business_account");
    let entries = v["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let business = str_of(&entries[0], "id").to_string();
    assert!(business.starts_with("waba-"));
    let changes = entries[0]["changes"].as_array().unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["field"], "messages");
    let value = &changes[0]["value"];
    assert_eq!(value["messaging_product"], "whatsapp");
    let phone = str_of(&value["metadata"], "phone_number_id").to_string();
    assert!(phone.starts_with(&format!("pn-{}-", &business[5..])));
    check_number(str_of(&value["metadata"], "display_phone_number"));
    if let Some(statuses) = value.get("statuses") {
        let st = &statuses.as_array().unwrap()[0];
        let status = str_of(st, "status").to_string();
        let at: i64 = str_of(st, "timestamp").parse().unwrap();
        let user = str_of(st, "recipient_id").to_string();
        check_number(&user);
        if status == "failed" {
            let code = st["errors"][0]["code"].as_u64().unwrap();
            assert!(code == 131_049 || code == 131_026);
            assert!(st.get("pricing").is_none());
        }
        check_hook_pricing(st, &status, at);
        Line {
            kind: status,
            id: str_of(st, "id").to_string(),
            at,
            hook: true,
            user,
            business: Some(business),
            phone: Some(phone),
            v,
        }
    } else {
        let m = &value["messages"].as_array().unwrap()[0];
        let user = str_of(m, "from").to_string();
        check_number(&user);
        assert_eq!(value["contacts"][0]["wa_id"], user.as_str());
        assert!(!str_of(&value["contacts"][0]["profile"], "name").is_empty());
        assert_eq!(m["type"], "text");
        assert!(!str_of(&m["text"], "body").is_empty());
        if let Some(r) = m.get("referral") {
            for k in [
                "source_url",
                "source_id",
                "source_type",
                "headline",
                "ctwa_clid",
            ] {
                assert!(!str_of(r, k).is_empty());
            }
        }
        Line {
            kind: "inbound".into(),
            id: str_of(m, "id").to_string(),
            at: str_of(m, "timestamp").parse().unwrap(),
            hook: true,
            user,
            business: Some(business),
            phone: Some(phone),
            v,
        }
    }
}

/// The `pricing` and `conversation` objects of a webhook status.
fn check_hook_pricing(st: &Value, status: &str, at: i64) {
    if let Some(p) = st.get("pricing") {
        let model = str_of(p, "pricing_model");
        assert!(matches!(model, "NBP" | "CBP" | "PMP"));
        assert!(p["billable"].is_boolean());
        assert!(!str_of(p, "category").is_empty());
        if model == "PMP" {
            assert!(matches!(
                str_of(p, "type"),
                "regular" | "free_customer_service" | "free_entry_point"
            ));
        }
        if let Some(c) = st.get("conversation") {
            assert_eq!(str_of(c, "id").len(), 32);
            assert!(!str_of(&c["origin"], "type").is_empty());
            assert_eq!(c.get("expiration_timestamp").is_some(), status == "sent");
            if let Some(e) = c.get("expiration_timestamp") {
                let e: i64 = e.as_str().unwrap().parse().unwrap();
                assert_eq!(e % 60, 0);
                assert!(e > at);
            }
        }
    } else {
        assert!(st.get("conversation").is_none());
    }
}

fn parse_all(bytes: &[u8]) -> Vec<Line> {
    lines(bytes).into_iter().map(parse_line).collect()
}

#[test]
fn dates() {
    assert_eq!(parse_date("2000-01-01"), Some(10_957));
    assert_eq!(
        parse_date("1970-01-01"),
        None,
        "before 2000: not a date tarifa reads"
    );
    assert_eq!(parse_date("2024-02-29"), Some(19_782));
    assert_eq!(parse_date("2023-02-29"), None);
    assert_eq!(parse_date("2023-13-01"), None);
    assert_eq!(parse_date("2023-1-01"), None);
    for d in [0, 10_000, 19_782, 20_635, 21_000, -400] {
        let (y, m, dd) = civil_from_days(d);
        assert_eq!(days_from_civil(y, m, dd), Some(d));
    }
    let mut r = Render::default();
    let mut out = Vec::new();
    r.iso(&mut out, 1_750_030_073);
    assert_eq!(out, b"2025-06-15T23:27:53Z");
    assert_eq!(iso_unix("2025-06-15T23:27:53Z"), 1_750_030_073);
}

#[test]
fn numbers_render() {
    for v in [0u64, 7, 10, 99, 100, 12_345, 5_511_987_654_321, u64::MAX] {
        let mut out = Vec::new();
        put_u64(&mut out, v);
        assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
    }
}

#[test]
fn warp_is_monotone_and_in_range() {
    let w = Warp::new(LocalDate::parse("2026-07-01").unwrap(), 92);
    let mut prev = 0;
    for i in 0..=10_000 {
        let t = w.at(i as f64 / 10_000.0);
        assert!(t >= prev && t < 92 * DAY, "{i} {t}");
        prev = t;
    }
    assert!(w.at(0.999_999) > 91 * DAY);
}

#[test]
fn deterministic() {
    let a = GenArgs {
        events: 3_000,
        webhook_fraction: 0.3,
        duplicates: 0.02,
        shuffle_window: 16,
        ..GenArgs::default()
    };
    let x = gen_bytes(&a);
    assert_eq!(x, gen_bytes(&a));
    let y = gen_bytes(&GenArgs {
        seed: 2,
        ..a.clone()
    });
    assert_ne!(x, y);
}

#[test]
fn exactly_n_lines() {
    for n in [0u64, 1, 2, 7, 100, 1_234] {
        for (w, d) in [(0usize, 0.0), (50, 0.1), (5_000, 0.5)] {
            let a = GenArgs {
                events: n,
                shuffle_window: w,
                duplicates: d,
                ..GenArgs::default()
            };
            let out = gen_bytes(&a);
            assert_eq!(lines(&out).len() as u64, n, "n={n} w={w} d={d}");
            assert!(out.is_empty() || out.ends_with(b"\n"));
        }
    }
}

#[test]
fn lines_are_valid_and_consistent() {
    let a = GenArgs {
        events: 20_000,
        users: 500,
        businesses: 7,
        ..GenArgs::default()
    };
    let out = gen_bytes(&a);
    let parsed = parse_all(&out);
    let (lo, hi) = (unix_of_date("2026-07-01"), unix_of_date("2026-10-01"));
    let mut outbound: HashMap<String, (i64, String)> = HashMap::new();
    let mut message_ids = HashSet::new();
    let mut user_home: HashMap<String, (String, String)> = HashMap::new();
    let mut prev_at = lo;
    for l in &parsed {
        assert!(l.at >= lo && l.at < hi, "{l:?}");
        assert!(l.at >= prev_at, "not in time order: {l:?}");
        prev_at = l.at;
        match l.kind.as_str() {
            "inbound" | "outbound" => {
                assert!(message_ids.insert(l.id.clone()), "duplicate id {}", l.id);
                let home = (l.business.clone().unwrap(), l.phone.clone().unwrap());
                let known = user_home
                    .entry(l.user.clone())
                    .or_insert_with(|| home.clone());
                assert_eq!(*known, home, "a user belongs to one business phone");
                if l.kind == "outbound" {
                    outbound.insert(l.id.clone(), (l.at, l.user.clone()));
                }
            }
            _ => {
                let (sent_at, _) = outbound
                    .get(&l.id)
                    .unwrap_or_else(|| panic!("status before its message: {l:?}"));
                assert!(l.at > *sent_at);
            }
        }
    }
    assert!(user_home.len() > 200, "{}", user_home.len());
    let businesses: HashSet<_> = user_home.values().map(|h| h.0.clone()).collect();
    assert!(businesses.len() >= 5, "{businesses:?}");
}

/// A generated failed status (normalized) is read by the parser with its error code, as
/// `errors` (input.rs), the way `tarifa serve` and `tarifa rate` read it.
#[test]
fn failed_statuses_parse_with_their_error_code() {
    let a = GenArgs {
        events: 20_000,
        ..GenArgs::default()
    };
    let out = gen_bytes(&a);
    let mut failed = 0;
    for line in lines(&out) {
        let mut events = Vec::new();
        tarifa_core::input::parse_line(line.as_bytes(), &mut |e| events.push(e.into_owned()))
            .unwrap();
        for e in events {
            if let tarifa_core::input::Event::Status(s) = e {
                if s.status == tarifa_core::input::DeliveryStatus::Failed && s.business.is_none() {
                    failed += 1;
                    assert!(
                        s.error_codes == [131_049] || s.error_codes == [131_026],
                        "{}: {:?}",
                        line,
                        s.error_codes
                    );
                }
            }
        }
    }
    assert!(failed > 10, "{failed} failed statuses");
}

/// Per outbound, the statuses follow the promised shares.
#[test]
fn realistic_shares() {
    let a = GenArgs {
        events: 200_000,
        users: 20_000,
        businesses: 5,
        ..GenArgs::default()
    };
    let out = gen_bytes(&a);
    let parsed = parse_all(&out);
    let mut per_msg: HashMap<&str, Vec<&str>> = HashMap::new();
    let mut count: HashMap<&str, usize> = HashMap::new();
    let mut categories: HashMap<String, usize> = HashMap::new();
    let mut free_form = 0usize;
    let mut agent = 0usize;
    let mut referral = 0usize;
    let mut calling: HashSet<String> = HashSet::new();
    for l in &parsed {
        *count.entry(l.kind.as_str()).or_default() += 1;
        match l.kind.as_str() {
            "outbound" => {
                per_msg.insert(&l.id, Vec::new());
                if let Some(t) = l.v.get("template") {
                    *categories.entry(str_of(t, "category").into()).or_default() += 1;
                } else {
                    free_form += 1;
                }
                agent += usize::from(l.v.get("agent").is_some());
                calling.insert(l.user[..2].to_string());
            }
            "inbound" => referral += usize::from(l.v.get("referral").is_some()),
            _ => per_msg.get_mut(l.id.as_str()).unwrap().push(&l.kind),
        }
    }
    // Only messages whose statuses are complete (not cut at the end).
    let msgs: Vec<&Vec<&str>> = per_msg.values().collect();
    let n = msgs.len() as f64;
    let share = |f: &dyn Fn(&Vec<&str>) -> bool| msgs.iter().filter(|m| f(m)).count() as f64 / n;
    let sent = share(&|m| m.contains(&"sent"));
    let delivered = share(&|m| m.contains(&"delivered"));
    let failed = share(&|m| m.contains(&"failed"));
    let read = share(&|m| m.contains(&"read"));
    let read_only = share(&|m| m.contains(&"read") && !m.contains(&"delivered"));
    assert!(sent > 0.99, "sent {sent}");
    assert!((0.86..0.93).contains(&delivered), "delivered {delivered}");
    assert!((0.04..0.06).contains(&failed), "failed {failed}");
    assert!((0.52..0.62).contains(&read), "read {read}");
    assert!(
        (0.02..0.04).contains(&read_only),
        "read without delivered {read_only}"
    );
    let templates: usize = categories.values().sum();
    assert!(free_form > templates / 2, "{free_form} {categories:?}");
    assert!(categories["marketing"] > categories["authentication"]);
    assert!(categories["utility"] > categories["authentication"]);
    assert!(agent > 0 && agent < free_form / 2, "{agent} {free_form}");
    let inbound = count["inbound"] as f64;
    let r = referral as f64 / inbound;
    assert!((0.05..0.3).contains(&r), "referral share {r}");
    assert!(calling.len() > 20, "{calling:?}");
}

#[test]
fn markets_are_mixed() {
    let a = GenArgs {
        users: 50_000,
        businesses: 6,
        ..GenArgs::default()
    };
    let w = World::new(&a).unwrap();
    let starts = |p: &str| {
        w.users
            .number
            .iter()
            .filter(|n| n.to_string().starts_with(p))
            .count() as f64
            / w.users.number.len() as f64
    };
    assert!(starts("55") > 0.15, "Brazil {}", starts("55"));
    assert!(starts("91") > 0.12, "India");
    assert!(starts("62") > 0.05, "Indonesia");
    assert!(
        starts("1809") + starts("1829") + starts("1849") > 0.002,
        "DR"
    );
    assert!(starts("234") > 0.01, "Nigeria");
    assert!(starts("254") > 0.001, "Kenya");
    assert!(starts("63") > 0.003, "Philippines");
    assert!(starts("82") > 0.0005, "Korea (Other)");
    for n in &w.users.number {
        let s = n.to_string();
        assert!(
            (10..=15).contains(&s.len()) || s.starts_with("960") || s.starts_with("354"),
            "{s}"
        );
    }
    // Brazil numbers: 55 + 2-digit area + 9 + 8 digits.
    let br = w
        .users
        .number
        .iter()
        .find(|n| n.to_string().starts_with("55"))
        .unwrap();
    assert_eq!(br.to_string().len(), 13);
    assert_eq!(&br.to_string()[4..5], "9");
}

#[test]
fn duplicates_and_shuffle() {
    let base = GenArgs {
        events: 10_000,
        ..GenArgs::default()
    };
    let plain = gen_bytes(&base);
    let plain_lines = lines(&plain);
    let uniq: HashSet<&str> = plain_lines.iter().copied().collect();
    assert_eq!(uniq.len(), plain_lines.len(), "no duplicates by default");

    let dup = gen_bytes(&GenArgs {
        duplicates: 0.1,
        ..base.clone()
    });
    let dup_lines = lines(&dup);
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for l in &dup_lines {
        *seen.entry(l).or_default() += 1;
    }
    let twice = seen.values().filter(|&&c| c == 2).count() as f64;
    assert!(seen.values().all(|&c| c <= 2));
    let share = twice / seen.len() as f64;
    assert!((0.07..0.13).contains(&share), "duplicate share {share}");
    parse_all(&dup);

    // A shuffle permutes exactly the lines of the unshuffled log, each moved at most
    // `window` lines earlier.
    let window = 64;
    let shuffled = gen_bytes(&GenArgs {
        shuffle_window: window,
        ..base.clone()
    });
    let sh_lines = lines(&shuffled);
    assert_ne!(sh_lines, plain_lines);
    let mut a = sh_lines.clone();
    let mut b = plain_lines.clone();
    a.sort_unstable();
    b.sort_unstable();
    assert_eq!(a, b);
    let pos: HashMap<&str, usize> = plain_lines
        .iter()
        .enumerate()
        .map(|(i, l)| (*l, i))
        .collect();
    let mut moved = 0;
    for (i, l) in sh_lines.iter().enumerate() {
        let orig = pos[l];
        assert!(i + window >= orig, "line moved too early: {orig} → {i}");
        moved += usize::from(i != orig);
    }
    assert!(moved > sh_lines.len() / 2);
}

#[test]
fn webhook_fraction() {
    let base = GenArgs {
        events: 8_000,
        ..GenArgs::default()
    };
    let plain = parse_all(&gen_bytes(&base));
    assert!(plain.iter().all(|l| !l.hook));
    let all = parse_all(&gen_bytes(&GenArgs {
        webhook_fraction: 1.0,
        ..base.clone()
    }));
    let half = parse_all(&gen_bytes(&GenArgs {
        webhook_fraction: 0.5,
        ..base.clone()
    }));
    // Same traffic, different encoding.
    assert_eq!(plain.len(), all.len());
    let mut users: HashMap<String, String> = HashMap::new();
    for (p, (a, h)) in plain.iter().zip(all.iter().zip(&half)) {
        assert_eq!((&p.kind, &p.id, p.at), (&a.kind, &a.id, a.at));
        assert_eq!((&p.kind, &p.id, p.at), (&h.kind, &h.id, h.at));
        assert_eq!(a.hook, p.kind != "outbound");
        if p.kind == "outbound" {
            users.insert(p.id.clone(), p.user.clone());
        } else if p.kind == "inbound" {
            assert_eq!(p.user, a.user);
            assert_eq!(p.business, a.business);
            assert_eq!(p.phone, a.phone);
            assert_eq!(
                p.v.get("referral").is_some(),
                a.v["entry"][0]["changes"][0]["value"]["messages"][0]
                    .get("referral")
                    .is_some()
            );
        } else if let Some(u) = users.get(&a.id) {
            assert_eq!(*u, a.user, "recipient_id is the outbound's user");
        }
    }
    let eligible = half.iter().filter(|l| l.kind != "outbound").count() as f64;
    let hooks = half.iter().filter(|l| l.hook).count() as f64;
    let share = hooks / eligible;
    assert!((0.45..0.55).contains(&share), "webhook share {share}");
    // PMP era pricing on `sent` and on exactly one of delivered/read.
    let mut pricing: HashMap<String, usize> = HashMap::new();
    for l in &all {
        if l.kind == "outbound" {
            continue;
        }
        let st = &l.v["entry"][0]["changes"][0]["value"]["statuses"][0];
        if let Some(p) = st.get("pricing") {
            assert_eq!(p["pricing_model"], "PMP");
            *pricing.entry(l.id.clone()).or_default() += 1;
            if l.kind == "sent" {
                assert_eq!(*pricing.get(&l.id).unwrap(), 1);
            }
        }
    }
    assert!(pricing.values().all(|&c| c <= 2));
    assert!(pricing.values().filter(|&&c| c == 2).count() > pricing.len() / 2);
}

fn models(from: &str, to: &str) -> HashSet<(String, String)> {
    let a = GenArgs {
        events: 6_000,
        from: from.into(),
        to: to.into(),
        webhook_fraction: 1.0,
        ..GenArgs::default()
    };
    let parsed = parse_all(&gen_bytes(&a));
    let (lo, hi) = (unix_of_date(from), unix_of_date(to) + 86_400);
    let mut out = HashSet::new();
    for l in &parsed {
        assert!(l.at >= lo && l.at < hi, "{l:?}");
        if l.kind == "outbound" {
            continue;
        }
        let value = &l.v["entry"][0]["changes"][0]["value"];
        if let Some(p) = value.get("statuses").and_then(|s| s[0].get("pricing")) {
            out.insert((
                str_of(p, "pricing_model").to_string(),
                str_of(p, "category").to_string(),
            ));
        }
    }
    out
}

#[test]
fn eras() {
    let nbp = models("2021-03-01", "2021-05-31");
    assert!(nbp.iter().all(|(m, _)| m == "NBP"), "{nbp:?}");
    let b = models("2022-06-01", "2022-12-31");
    assert!(b.iter().all(|(m, _)| m == "CBP"));
    assert!(b.contains(&("CBP".into(), "user_initiated".into())));
    assert!(b.contains(&("CBP".into(), "business_initiated".into())));
    assert!(
        b.contains(&("CBP".into(), "referral_conversion".into())),
        "{b:?}"
    );
    let c = models("2024-01-01", "2024-03-31");
    for cat in ["marketing", "utility", "authentication", "service"] {
        assert!(c.contains(&("CBP".into(), cat.into())), "{cat} {c:?}");
    }
    let d = models("2025-06-25", "2025-07-05");
    assert!(d.contains(&("CBP".into(), "marketing".into())));
    assert!(d.contains(&("PMP".into(), "marketing".into())));
    let e = models("2026-10-01", "2026-12-31");
    assert!(e.contains(&("PMP".into(), "service".into())));
}

#[test]
fn auth_international_dates() {
    let w = World::new(&args(1)).unwrap();
    let plan = |iso: &str| {
        PLANS
            .iter()
            .position(|p| p.country.as_str() == iso)
            .unwrap()
    };
    let rel = |d: &str| unix_of_date(d) - w.clock.base;
    // waba-1: BR, start 2024-06-01, IN from 2024-07-01.
    assert_eq!(w.auth_intl_from[0][plan("IN")], rel("2024-07-01"));
    assert_eq!(w.auth_intl_from[0][plan("ID")], rel("2024-06-01"));
    assert_eq!(w.auth_intl_from[0][plan("NG")], rel("2025-02-01"));
    assert_eq!(w.auth_intl_from[0][plan("BD")], rel("2026-10-01"));
    assert_eq!(w.auth_intl_from[0][plan("BR")], i64::MAX);
    assert_eq!(w.auth_intl_from[0][plan("DE")], i64::MAX);
    // waba-2: not eligible.
    assert!(w.auth_intl_from[1].iter().all(|&t| t == i64::MAX));
    // waba-3: ID, start 2025-02-01; never at home (AI-3).
    assert_eq!(w.auth_intl_from[2][plan("ID")], i64::MAX);
    assert_eq!(w.auth_intl_from[2][plan("IN")], rel("2025-02-01"));

    let a = GenArgs {
        events: 60_000,
        users: 5_000,
        from: "2025-03-01".into(),
        to: "2025-08-31".into(),
        webhook_fraction: 1.0,
        ..GenArgs::default()
    };
    let mut intl = 0;
    for l in parse_all(&gen_bytes(&a)) {
        let value = &l.v["entry"][0]["changes"][0]["value"];
        let Some(p) = value.get("statuses").and_then(|s| s[0].get("pricing")) else {
            continue;
        };
        if p["category"] == "authentication_international" {
            intl += 1;
            assert!(
                ["91", "62", "20", "60", "234", "92", "966", "27", "971"]
                    .iter()
                    .any(|c| l.user.starts_with(c)),
                "{}",
                l.user
            );
        }
    }
    assert!(intl > 0);
}

#[test]
fn long_and_short_ranges() {
    for (from, to, n) in [
        ("2021-01-01", "2027-12-31", 30_000u64),
        ("2025-07-01", "2025-07-01", 5_000),
    ] {
        let a = GenArgs {
            events: n,
            from: from.into(),
            to: to.into(),
            webhook_fraction: 0.2,
            ..GenArgs::default()
        };
        let parsed = parse_all(&gen_bytes(&a));
        let (lo, hi) = (unix_of_date(from), unix_of_date(to) + 86_400);
        assert!(parsed.iter().all(|l| l.at >= lo && l.at < hi));
        // The log spans the range.
        let first = parsed.iter().map(|l| l.at).min().unwrap();
        let last = parsed.iter().map(|l| l.at).max().unwrap();
        let span = (hi - lo) as f64;
        assert!(((first - lo) as f64) < span * 0.01, "{from}: starts late");
        assert!(((hi - last) as f64) < span * 0.05, "{to}: ends early");
        // No agent replies before 2026-08-01.
        assert!(parsed
            .iter()
            .all(|l| l.v.get("agent").is_none() || l.at >= unix_of_date("2026-08-01")));
    }
}

#[test]
fn rejects_bad_arguments() {
    let bad = [
        GenArgs {
            from: "2026-02-30".into(),
            ..args(1)
        },
        GenArgs {
            from: "2026-09-01".into(),
            to: "2026-08-01".into(),
            ..args(1)
        },
        GenArgs {
            users: 0,
            ..args(1)
        },
        GenArgs {
            businesses: 0,
            ..args(1)
        },
        GenArgs {
            webhook_fraction: 1.5,
            ..args(1)
        },
        GenArgs {
            duplicates: -0.1,
            ..args(1)
        },
        GenArgs {
            currency: vec!["US".into()],
            ..args(1)
        },
    ];
    for a in &bad {
        assert!(generate(a, &mut Vec::new()).is_err(), "{a:?}");
    }
}

#[test]
fn tiny_worlds() {
    // One user, one business: sessions overlap but everything stays valid.
    let a = GenArgs {
        events: 2_000,
        users: 1,
        businesses: 1,
        duplicates: 0.05,
        webhook_fraction: 0.5,
        ..GenArgs::default()
    };
    let parsed = parse_all(&gen_bytes(&a));
    let users: HashSet<&str> = parsed
        .iter()
        .filter(|l| !l.user.is_empty())
        .map(|l| l.user.as_str())
        .collect();
    assert_eq!(users.len(), 1);
}

#[test]
fn relative_paths() {
    let rel = |t: &str, b: &str| relative_path(Path::new(t), Path::new(b)).unwrap();
    assert_eq!(
        rel("/w/data/rates/a.csv", "/w/configs"),
        Path::new("../data/rates/a.csv")
    );
    assert_eq!(
        rel("/w/data/rates/a.csv", "/w"),
        Path::new("data/rates/a.csv")
    );
    assert_eq!(rel("/w/a.csv", "/w/x/y"), Path::new("../../a.csv"));
    assert_eq!(rel("/w", "/w"), Path::new("."));
    assert_eq!(
        relative_path(Path::new("/work/a.csv"), Path::new("/tmp")),
        None
    );
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tarifa-gen-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The businesses of the config of `config_toml_lists_businesses_and_cards`.
fn check_config_businesses(biz: &[toml::Value]) {
    assert_eq!(biz.len(), 8);
    let ids: Vec<&str> = biz.iter().map(|b| b["id"].as_str().unwrap()).collect();
    assert_eq!(ids[0], "waba-1");
    assert_eq!(ids[7], "waba-8");
    let currencies: Vec<&str> = biz
        .iter()
        .map(|b| b["currency"].as_str().unwrap())
        .collect();
    assert_eq!(&currencies[..4], ["USD", "BRL", "EUR", "USD"]);
    let tzs: HashSet<&str> = biz
        .iter()
        .map(|b| b["timezone"].as_str().unwrap())
        .collect();
    assert!(tzs.contains("America/Sao_Paulo") && tzs.contains("UTC") && tzs.len() >= 6);
    let portfolios: Vec<Option<&str>> = biz
        .iter()
        .map(|b| b.get("portfolio").and_then(|p| p.as_str()))
        .collect();
    assert_eq!(
        portfolios[0], portfolios[1],
        "some businesses share a portfolio"
    );
    assert!(portfolios.iter().any(Option::is_none));
    for b in biz {
        let keys: Vec<&str> = b.as_table().unwrap().keys().map(String::as_str).collect();
        for k in keys {
            assert!([
                "id",
                "portfolio",
                "currency",
                "timezone",
                "primary_country",
                "auth_international"
            ]
            .contains(&k));
        }
        if let Some(ai) = b.get("auth_international") {
            assert!(parse_date(ai["start"].as_str().unwrap()).is_some());
        }
    }
    assert!(biz[0].get("auth_international").is_some());
}

/// The `file`s of the `[[table]]` entries of a config.
fn card_files_of<'v>(v: &'v toml::Value, table: &str) -> Vec<&'v str> {
    v[table]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["file"].as_str().unwrap())
        .collect()
}

#[test]
fn config_toml_lists_businesses_and_cards() {
    let dir = temp_dir("config");
    let rates = dir.join("data").join("rates");
    std::fs::create_dir_all(&rates).unwrap();
    for f in [
        "usd-2023-06-01.csv",
        "eur-tiers-2026-07-01-illustrative.csv",
        "usd-2025-07-01.csv",
        "usd-excerpt-2024.csv",
        "README.md",
    ] {
        std::fs::write(rates.join(f), "x").unwrap();
    }
    let configs = dir.join("configs");
    std::fs::create_dir_all(&configs).unwrap();
    let a = GenArgs {
        businesses: 8,
        currency: vec!["USD".into(), "brl".into(), "EUR".into()],
        rates_dir: rates.clone(),
        ..GenArgs::default()
    };
    let world = World::new(&a).unwrap();
    let text = config_toml(&a, &world, &configs.join("gen.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    check_config_businesses(v["business"].as_array().unwrap());
    let cards = card_files_of(&v, "rate_card");
    assert_eq!(
        cards,
        [
            "../data/rates/usd-2023-06-01.csv",
            "../data/rates/usd-2025-07-01.csv"
        ]
    );
    let tiers = card_files_of(&v, "tier_card");
    assert_eq!(
        tiers,
        ["../data/rates/eur-tiers-2026-07-01-illustrative.csv"]
    );

    // A missing rates dir: no card lines.
    let a = GenArgs {
        rates_dir: dir.join("nope"),
        ..a
    };
    let text = config_toml(&a, &world, &configs.join("gen.toml")).unwrap();
    let v: toml::Value = toml::from_str(&text).unwrap();
    assert!(v.get("rate_card").is_none() && v.get("tier_card").is_none());
    let _ = std::fs::remove_dir_all(&dir);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]
        #[test]
        fn any_small_run_is_valid(
            events in 0u64..400,
            users in 1u32..60,
            businesses in 1u32..6,
            seed in any::<u64>(),
            window in 0usize..40,
            dups in 0.0f64..0.3,
            hooks in 0.0f64..1.0,
            start in 0i64..2_400,
            len in 0i64..120,
        ) {
            let from = civil_from_days(parse_date("2021-01-01").unwrap() + start);
            let to = civil_from_days(parse_date("2021-01-01").unwrap() + start + len);
            let fmt = |(y, m, d): (i64, u32, u32)| format!("{y:04}-{m:02}-{d:02}");
            let a = GenArgs {
                events, users, businesses, seed,
                shuffle_window: window, duplicates: dups, webhook_fraction: hooks,
                from: fmt(from), to: fmt(to),
                ..GenArgs::default()
            };
            let out = gen_bytes(&a);
            let parsed = parse_all(&out);
            prop_assert_eq!(parsed.len() as u64, events);
            let lo = unix_of_date(&a.from);
            let hi = unix_of_date(&a.to) + 86_400;
            for l in &parsed {
                prop_assert!(l.at >= lo && l.at < hi);
            }
        }
    }
}
