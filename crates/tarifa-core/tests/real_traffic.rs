//! The problems real traffic showed, each as a test named after it: phone-number notations,
//! group statuses, statuses without their context, out-of-range times, and notices that are not
//! user messages. Events are normalized lines and raw webhook bodies as Meta posts them.

use serde_json::{json, Value};
use tarifa_core::bill::Bill;
use tarifa_core::card::{RateBook, RateCard};
use tarifa_core::config::{BusinessConfig, Rules};
use tarifa_core::engine::{Prices, Rater, Setup};
use tarifa_core::input::{parse_line, phone_number, Event};
use tarifa_core::market::MarketOptions;

/// TEST DATA: round numbers, not Meta's rates.
const CARD: &str = "Cost per message in USD, effective July 1, 2025
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
Brazil,$US,0.0625,0.0068,0.0068,n/a,0.004
North America,$US,0.025,0.004,0.004,n/a,0.003
";

fn setup() -> Setup {
    let mut book = RateBook::new();
    book.add_rate_card(RateCard::parse_csv(CARD, "inline card").unwrap())
        .unwrap();
    let b: BusinessConfig =
        toml::from_str("id = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n").unwrap();
    Setup {
        businesses: vec![b.resolve().unwrap()],
        rules: Rules::default(),
        markets: MarketOptions::default(),
        book,
        price_lists: Vec::new(),
        prices: Prices::Meta,
    }
}

fn rate(lines: &[Value]) -> Bill {
    let mut rater = Rater::new(setup());
    for l in lines {
        let text = l.to_string();
        let mut events = Vec::new();
        parse_line(text.as_bytes(), &mut |e| events.push(e)).unwrap_or_else(|e| panic!("{e}"));
        rater.push_all(events).unwrap();
    }
    rater.finish()
}

/// (id, user, category, pricing type, amount) of every line, in bill order.
fn lines(bill: &Bill) -> Vec<(String, String, String, String, String)> {
    bill.messages()
        .map(|v| {
            (
                v.id.to_string(),
                v.user.to_string(),
                v.line.category.to_string(),
                v.line.pricing_type.to_string(),
                v.line.amount.normalize().to_string(),
            )
        })
        .collect()
}

fn row(
    id: &str,
    user: &str,
    category: &str,
    pricing: &str,
    amount: &str,
) -> (String, String, String, String, String) {
    (
        id.into(),
        user.into(),
        category.into(),
        pricing.into(),
        amount.into(),
    )
}

fn inbound(id: &str, at: &str, user: &str) -> Value {
    json!({"type": "inbound", "id": id, "at": at, "business": "waba-1", "phone": "pn-1", "user": user})
}

fn outbound(id: &str, at: &str, user: &str, category: Option<&str>) -> Value {
    let mut v = json!({"type": "outbound", "id": id, "at": at, "business": "waba-1", "phone": "pn-1", "user": user});
    if let Some(c) = category {
        v["template"] = json!({"name": "t", "category": c});
    }
    v
}

fn delivered(id: &str, at: &str) -> Value {
    json!({"type": "status", "id": id, "at": at, "status": "delivered"})
}

/// A `messages` webhook of WABA `waba-1`, number `pn-1`, with `value` fields merged in.
fn webhook(value: Value) -> Value {
    let mut v = json!({"messaging_product": "whatsapp", "metadata": {"display_phone_number": "15550001111", "phone_number_id": "pn-1"}});
    v.as_object_mut()
        .unwrap()
        .extend(value.as_object().unwrap().clone());
    json!({"object": "whatsapp_business_account", "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": v}]}]})
}

/// Problem 1: `+55 11 98765-0001` and `5511987650001` are one user. The window the user opened
/// in one notation covers the utility template sent in the other (D-2), and the bill shows the
/// number as digits.
#[test]
fn phone_notations_are_one_user() {
    let bill = rate(&[
        inbound("i1", "2025-08-04T09:00:00Z", "+55 11 98765-0001"),
        outbound(
            "m1",
            "2025-08-04T10:00:00Z",
            "5511987650001",
            Some("utility"),
        ),
        delivered("m1", "2025-08-04T10:00:02Z"),
        outbound(
            "m2",
            "2025-08-05T12:00:00Z",
            "+55 (11) 98765-0001",
            Some("utility"),
        ),
        delivered("m2", "2025-08-05T12:00:02Z"),
    ]);
    assert_eq!(
        lines(&bill),
        vec![
            row(
                "m1",
                "5511987650001",
                "utility",
                "free_customer_service",
                "0"
            ),
            row("m2", "5511987650001", "utility", "regular", "0.0068"),
        ]
    );
    assert_eq!(phone_number("+1 (650) 555-1234".into()), "16505551234");
    // Not a number in any notation: kept as written (a business-scoped id, a group id).
    assert_eq!(
        phone_number("US.13491208655302741918".into()),
        "US.13491208655302741918"
    );
    assert_eq!(
        phone_number("120363025555555555@g.us".into()),
        "120363025555555555@g.us"
    );
}

/// Problem 1, groups: the members written with `+` and spaces, the statuses with digits; every
/// delivered member is charged (D-10), none is left undelivered.
#[test]
fn group_member_notations_match_their_statuses() {
    let group = json!({"type": "outbound", "id": "g1", "at": "2025-08-04T10:00:00Z", "business": "waba-1", "phone": "pn-1",
        "template": {"name": "t", "category": "marketing"},
        "group": {"id": "grp-1", "members": ["+55 11 98765-0001", "+1 650-555-1234"]}});
    let status = |user: &str| json!({"type": "status", "id": "g1", "at": "2025-08-04T10:00:05Z", "status": "delivered", "recipient": user});
    let bill = rate(&[group, status("5511987650001"), status("16505551234")]);
    let mut got = lines(&bill);
    got.sort();
    assert_eq!(
        got,
        vec![
            row("g1", "16505551234", "marketing", "regular", "0.025"),
            row("g1", "5511987650001", "marketing", "regular", "0.0625"),
        ]
    );
}

/// Problem 2: a Groups API status names the group in `recipient_id` and the participant in
/// `recipient_participant_id`; each participant's delivery is charged at the participant's
/// market, not "recipient is not a phone number".
#[test]
fn group_statuses_are_attributed_to_the_participant() {
    let status = |participant: &str, market_category: &str| {
        json!({"id": "wamid.GROUP1", "status": "delivered", "timestamp": "1754301600",
               "recipient_id": "120363025555555555", "recipient_type": "group",
               "recipient_participant_id": participant,
               "pricing": {"billable": true, "pricing_model": "PMP", "type": "regular", "category": market_category}})
    };
    let bill = rate(&[webhook(json!({"statuses": [
        status("5511987650001", "group_marketing"),
        status("16505551234", "group_marketing"),
    ]}))]);
    let mut got = lines(&bill);
    got.sort();
    assert_eq!(
        got,
        vec![
            row(
                "wamid.GROUP1",
                "16505551234",
                "marketing",
                "regular",
                "0.025"
            ),
            row(
                "wamid.GROUP1",
                "5511987650001",
                "marketing",
                "regular",
                "0.0625"
            ),
        ]
    );
    let view = bill.messages().next().unwrap();
    assert_eq!(view.group, Some("120363025555555555"));
}

/// Problem 5: times outside 2000–2099 are clear errors naming the field, never stored or rated.
#[test]
fn times_outside_the_supported_years_are_errors() {
    for at in [
        json!(253_402_300_800i64),
        json!(-1),
        json!("0000-01-01T00:00:00Z"),
        json!("2150-01-01T00:00:00Z"),
        json!("1999-12-31T23:59:59Z"),
    ] {
        let line = json!({"type": "inbound", "id": "i1", "at": at, "business": "waba-1", "phone": "pn-1", "user": "5511987650001"}).to_string();
        let err = parse_line(line.as_bytes(), &mut |_: Event<'_>| {}).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("`at`") && text.contains("2000"),
            "{at}: {text}"
        );
    }
    let ok = json!({"type": "inbound", "id": "i1", "at": "2099-12-31T23:59:59Z", "business": "waba-1", "phone": "pn-1", "user": "5511987650001"}).to_string();
    parse_line(ok.as_bytes(), &mut |_| {}).unwrap();
}

/// Problem 5: system notices and edits/deletions are not the user writing: they open no customer
/// service window, so a utility template after them is charged; a text does open one.
#[test]
fn notices_that_are_not_user_messages_open_no_window() {
    let message = |id: &str, kind: &str, extra: Value| {
        let mut m =
            json!({"from": "5511987650001", "id": id, "timestamp": "1754298000", "type": kind});
        m.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        m
    };
    let notices = webhook(json!({"messages": [
        message("s1", "system", json!({"system": {"body": "User changed number", "type": "user_changed_number"}})),
        message("e1", "edit", json!({})),
        message("r1", "revoke", json!({})),
        message("u1", "unsupported", json!({"unsupported": {"type": "edit"}})),
    ]}));
    let template = |id: &str| {
        vec![
            outbound(id, "2025-08-04T10:00:00Z", "5511987650001", Some("utility")),
            delivered(id, "2025-08-04T10:00:02Z"),
        ]
    };
    let mut after_notices = vec![notices];
    after_notices.extend(template("m1"));
    assert_eq!(lines(&rate(&after_notices))[0].3, "regular");
    let text =
        webhook(json!({"messages": [message("t1", "text", json!({"text": {"body": "oi"}}))]}));
    let mut after_text = vec![text];
    after_text.extend(template("m1"));
    assert_eq!(lines(&rate(&after_text))[0].3, "free_customer_service");
    // A poll (unsupported content of another kind) is the user writing: it opens the window.
    let poll = webhook(
        json!({"messages": [message("p1", "unsupported", json!({"unsupported": {"type": "poll_creation"}}))]}),
    );
    let mut after_poll = vec![poll];
    after_poll.extend(template("m1"));
    assert_eq!(lines(&rate(&after_poll))[0].3, "free_customer_service");
}

/// Limits on what an outsider controls: an id (or business, user) longer than
/// `MAX_FIELD_LEN` is refused with its length, and the error never echoes it whole.
#[test]
fn overlong_ids_are_refused_without_being_echoed() {
    let long = "w".repeat(1_000_000);
    for field in ["id", "business", "user"] {
        let mut line = json!({"type": "inbound", "id": "i1", "at": "2025-08-04T09:00:00Z", "business": "waba-1", "phone": "pn-1", "user": "5511987650001"});
        line[field] = json!(long);
        let text = line.to_string();
        let err = parse_line(text.as_bytes(), &mut |_: Event<'_>| {})
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!("`{field}`")) && err.contains("1000000 bytes"),
            "{err}"
        );
        assert!(err.len() < 300, "{field}: {} bytes of error", err.len());
    }
}
