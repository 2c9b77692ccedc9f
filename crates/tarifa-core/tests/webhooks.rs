//! Data-driven tests of raw Cloud API webhook bodies (spec §9) and of the line parser's errors.
//!
//! The fixtures in `tests/fixtures/webhooks/` are Meta's shapes copied verbatim from spec §9.2
//! (a)–(l), pretty-printed as there (see the README in that folder). Each test compacts a fixture
//! to one line with serde_json, exactly as a JSON Lines log would hold it, and hands it to
//! [`parse_line`]. The last group of tests rates webhooks end to end, with no outbound records.

use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::str::FromStr;
use tarifa_core::bill::Bill;
use tarifa_core::card::{RateBook, RateCard};
use tarifa_core::category::{BilledCategory, MetaPricingType, PricingModel, TemplateCategory};
use tarifa_core::config::{BusinessConfig, Rules};
use tarifa_core::engine::{Prices, Rater, Setup};
use tarifa_core::input::{
    parse_line, to_json_line, AccountChange, AccountUpdate, DeliveryStatus, Event, Inbound,
    InputError, MetaPricing, Platform, Status, TemplateCategoryChange,
};
use tarifa_core::market::MarketOptions;

/// Entry (WABA) id, phone number id, message id and recipient of example (a).
const WABA_A: &str = "102290129340398";
const PHONE_A: &str = "106540352242922";
const WAMID_A: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=";
const RECIPIENT_A: &str = "16505551234";
/// Message id of example (c).
const WAMID_C: &str = "wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0QUQ2MjA4NEYyRkExNjMyREUA";
/// Entry id used to wrap the era-B `value` of example (i) (the capture has none).
const WABA_I: &str = "104996122399160";

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

fn fixture(name: &str) -> Value {
    let path = format!(
        "{}/tests/fixtures/webhooks/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// One JSON Lines line.
fn line(v: &Value) -> String {
    let text = serde_json::to_string(v).unwrap();
    assert!(!text.contains('\n'));
    text
}

fn parse(line: &str) -> Result<Vec<Event<'_>>, InputError> {
    let mut events = Vec::new();
    parse_line(line.as_bytes(), &mut |e| events.push(e))?;
    Ok(events)
}

fn parse_ok(line: &str) -> Vec<Event<'_>> {
    parse(line).unwrap_or_else(|e| panic!("{line}: unexpected error: {e}"))
}

/// Parses a line that must be rejected; checks that no event of it reached the sink.
fn parse_err(line: &str) -> InputError {
    let mut emitted = 0;
    match parse_line(line.as_bytes(), &mut |_| emitted += 1) {
        Ok(()) => panic!("{line}: expected an error, got {emitted} event(s)"),
        Err(e) => {
            assert_eq!(emitted, 0, "{line}: events emitted before the error {e}");
            e
        }
    }
}

/// Asserts that an error's text names every one of `needles`.
fn assert_names(e: &InputError, needles: &[&str]) {
    let text = e.to_string();
    for n in needles {
        assert!(text.contains(n), "error {text:?} does not name {n:?}");
    }
}

fn the_status<'a>(events: &'a [Event<'a>]) -> &'a Status<'a> {
    match events {
        [Event::Status(s)] => s,
        other => panic!("expected one Status event, got {other:?}"),
    }
}

/// The first status object of a full webhook.
fn status_of(webhook: &mut Value) -> &mut Value {
    &mut webhook["entry"][0]["changes"][0]["value"]["statuses"][0]
}

/// Wraps status objects into the envelope of example (a) (same WABA and phone number id).
fn status_webhook(statuses: Vec<Value>) -> Value {
    let mut w = fixture("a_pmp_marketing_sent.json");
    w["entry"][0]["changes"][0]["value"]["statuses"] = Value::Array(statuses);
    w
}

/// Example (a), the sent status, with `status`, `timestamp` (shifted) and optionally the id
/// replaced. `delivered`/`read` variants drop `expiration_timestamp` (W-4: only on `sent`).
fn a_with(status: &str, shift: i64, id: Option<&str>) -> Value {
    let mut w = fixture("a_pmp_marketing_sent.json");
    let s = status_of(&mut w);
    s["status"] = json!(status);
    let ts: i64 = s["timestamp"].as_str().unwrap().parse().unwrap();
    s["timestamp"] = json!((ts + shift).to_string());
    if let Some(id) = id {
        s["id"] = json!(id);
    }
    if status != "sent" {
        s["conversation"]
            .as_object_mut()
            .unwrap()
            .remove("expiration_timestamp");
    }
    w
}

fn pricing(
    billable: Option<bool>,
    model: PricingModel,
    category: Option<BilledCategory>,
    pricing_type: Option<MetaPricingType>,
) -> Option<MetaPricing> {
    Some(MetaPricing {
        billable,
        model: Some(model),
        category,
        pricing_type,
    })
}

// ---------------------------------------------------------------------------------------------
// Status webhooks
// ---------------------------------------------------------------------------------------------

/// (a) W-3: a PMP marketing `sent` with `conversation` and `pricing` → one Status event; the
/// business is the entry id, the phone the `phone_number_id`, the recipient `recipient_id`.
#[test]
fn w3_a_pmp_marketing_sent() {
    let text = line(&fixture("a_pmp_marketing_sent.json"));
    let events = parse_ok(&text);
    let expected = Event::Status(Status {
        id: Cow::Borrowed(WAMID_A),
        at: 1_750_030_073,
        status: DeliveryStatus::Sent,
        recipient: Some(Cow::Borrowed(RECIPIENT_A)),
        group: None,
        business: Some(Cow::Borrowed(WABA_A)),
        phone: Some(Cow::Borrowed(PHONE_A)),
        pricing: pricing(
            Some(true),
            PricingModel::Pmp,
            Some(BilledCategory::Marketing),
            Some(MetaPricingType::Regular),
        ),
        conversation_id: Some(Cow::Borrowed("72b14d6bd5407799e66f64d1b338e567")),
        conversation_origin: Some(BilledCategory::Marketing),
        error_codes: vec![],
    });
    assert_eq!(events, vec![expected]);
}

/// (b) W-4: from v24.0 a status may carry neither `conversation` nor `pricing`.
#[test]
fn w4_b_status_without_conversation_or_pricing() {
    let text = line(&status_webhook(vec![fixture(
        "b_v24_status_without_pricing.json",
    )]));
    let events = parse_ok(&text);
    let s = the_status(&events);
    assert_eq!(s.id, WAMID_A);
    assert_eq!(s.status, DeliveryStatus::Sent);
    assert_eq!(s.at, 1_750_030_073);
    assert_eq!(s.pricing, None);
}

/// (c) 1-2: a `failed` status with `errors` and no pricing → Status Failed.
#[test]
fn one_two_c_failed_status() {
    let text = line(&status_webhook(vec![fixture("c_failed_status.json")]));
    let events = parse_ok(&text);
    let s = the_status(&events);
    assert_eq!(s.id, WAMID_C);
    assert_eq!(s.status, DeliveryStatus::Failed);
    assert_eq!(s.at, 1_751_142_888);
    assert_eq!(s.recipient.as_deref(), Some(RECIPIENT_A));
    assert_eq!(s.business.as_deref(), Some(WABA_A));
    assert_eq!(s.phone.as_deref(), Some(PHONE_A));
    assert_eq!(s.pricing, None);
    assert_eq!(s.error_codes, vec![131_049]);
    assert_eq!((&s.conversation_id, s.conversation_origin), (&None, None));
}

/// Error codes: every `errors[].code` in order (W-2 (g): 130472; 131050: the user stopped
/// marketing messages); a code as decimal text is read too. A missing or non-numeric code is
/// rejected, naming the field.
#[test]
fn one_two_error_codes_of_a_failed_status() {
    let mut failed = fixture("c_failed_status.json");
    failed["errors"] = json!([{"code": 131050, "title": "x"}, {"code": "130472"}]);
    let l = line(&status_webhook(vec![failed.clone()]));
    let events = parse_ok(&l);
    assert_eq!(the_status(&events).error_codes, vec![131_050, 130_472]);

    for (code, named) in [
        (json!(null), "missing"),
        (json!(-1), "-1"),
        (json!("E42"), "E42"),
    ] {
        let mut bad = failed.clone();
        bad["errors"][1]["code"] = code;
        let e = parse_err(&line(&status_webhook(vec![bad])));
        assert_names(
            &e,
            &[
                "entry[0].changes[0].value.statuses[0].errors[1].code",
                named,
            ],
        );
    }
}

/// W-1/W-2: `conversation.origin.type` is read like `pricing.category`; an unknown origin is
/// `None` (Meta adds categories), not an error; the id is kept without an origin.
#[test]
fn w2_conversation_origin() {
    let mut w = a_with("sent", 0, None);
    status_of(&mut w)["conversation"]["origin"]["type"] = json!("authentication-international");
    let l = line(&w);
    let events = parse_ok(&l);
    assert_eq!(
        the_status(&events).conversation_origin,
        Some(BilledCategory::AuthenticationInternational)
    );

    status_of(&mut w)["conversation"]["origin"]["type"] = json!("general_purpose_ai");
    let l = line(&w);
    let events = parse_ok(&l);
    let s = the_status(&events);
    assert_eq!(s.conversation_origin, None);
    assert_eq!(
        s.conversation_id.as_deref(),
        Some("72b14d6bd5407799e66f64d1b338e567")
    );
}

/// (f) W-3: a PMP status with BSUID fields (`parent_recipient_user_id`) parses like any other.
#[test]
fn w3_f_pmp_status_with_bsuid_fields() {
    let text = line(&status_webhook(vec![fixture("f_pmp_bsuid_status.json")]));
    let events = parse_ok(&text);
    let s = the_status(&events);
    assert_eq!(s.id, "ABGGFlA5Fpa");
    assert_eq!(s.recipient.as_deref(), Some("16315551181"));
    assert_eq!(s.at, 1_504_902_988);
    assert_eq!(
        s.pricing,
        pricing(
            Some(true),
            PricingModel::Pmp,
            Some(BilledCategory::Marketing),
            Some(MetaPricingType::Regular)
        )
    );
}

/// (g) W-2: era C, CBP, service, `sent` — a full webhook with `contacts`; and the `delivered`
/// variant of the same fixture (no `expiration_timestamp`).
#[test]
fn w2_g_cbp_service_sent_and_delivered() {
    let sent = fixture("g_cbp_service_sent.json");
    let expected_pricing = pricing(
        Some(true),
        PricingModel::Cbp,
        Some(BilledCategory::Service),
        None,
    );
    let text = line(&sent);
    let events = parse_ok(&text);
    let s = the_status(&events);
    assert_eq!(s.id, "wamid.xyzxyz");
    assert_eq!(s.status, DeliveryStatus::Sent);
    assert_eq!(s.at, 1_698_266_945);
    assert_eq!(s.business.as_deref(), Some("5467539754836534"));
    assert_eq!(s.phone.as_deref(), Some("1122334455667"));
    assert_eq!(s.recipient.as_deref(), Some("972987654321"));
    assert_eq!(s.pricing, expected_pricing);

    let mut delivered = sent.clone();
    let st = status_of(&mut delivered);
    st["status"] = json!("delivered");
    st["conversation"]
        .as_object_mut()
        .unwrap()
        .remove("expiration_timestamp");
    let text = line(&delivered);
    let events = parse_ok(&text);
    let s = the_status(&events);
    assert_eq!(s.status, DeliveryStatus::Delivered);
    assert_eq!(s.pricing, expected_pricing);

    // `read` and `played` (voice) both mean delivered-and-seen.
    for status in ["read", "played"] {
        let mut v = delivered.clone();
        status_of(&mut v)["status"] = json!(status);
        let text = line(&v);
        let events = parse_ok(&text);
        assert_eq!(the_status(&events).status, DeliveryStatus::Read, "{status}");
    }
}

/// (h) W-2: era C, CBP, marketing, `delivered` status object.
#[test]
fn w2_h_cbp_marketing_delivered() {
    let text = line(&status_webhook(vec![fixture(
        "h_cbp_marketing_delivered_status.json",
    )]));
    let events = parse_ok(&text);
    let s = the_status(&events);
    assert_eq!(s.id, "wamid.ID");
    assert_eq!(s.status, DeliveryStatus::Delivered);
    assert_eq!(s.at, 1_690_327_464);
    assert_eq!(s.recipient.as_deref(), Some("CUSTOMER_PHONE_NUMBER"));
    assert_eq!(
        s.pricing,
        pricing(
            Some(true),
            PricingModel::Cbp,
            Some(BilledCategory::Marketing),
            None
        )
    );
}

/// (i) W-1: the era-B (2022) capture, `user_initiated`, wrapped in a full envelope with an entry
/// id (the capture is only a `change`).
#[test]
fn w1_i_era_b_user_initiated_capture() {
    let webhook = json!({
        "object": "whatsapp_business_account",
        "entry": [{ "id": WABA_I, "changes": [fixture("i_era_b_user_initiated_value.json")] }],
    });
    let text = line(&webhook);
    let events = parse_ok(&text);
    let expected = Event::Status(Status {
        id: Cow::Borrowed("wamid.HBgMOTIzMDM2NTQ3MTg4FQIAERgSODRBNEVBMDAwRDlBNThCNUJGAA=="),
        at: 1_668_595_349,
        status: DeliveryStatus::Sent,
        recipient: Some(Cow::Borrowed("923036547188")),
        group: None,
        business: Some(Cow::Borrowed(WABA_I)),
        phone: Some(Cow::Borrowed("107287895522530")),
        pricing: pricing(
            Some(true),
            PricingModel::Cbp,
            Some(BilledCategory::UserInitiated),
            None,
        ),
        conversation_id: Some(Cow::Borrowed("2e889aa0c7d5d0c9e2626780cadb6554")),
        conversation_origin: Some(BilledCategory::UserInitiated),
        error_codes: vec![],
    });
    assert_eq!(events, vec![expected]);
}

/// W-1: the other era-B values of `pricing.category` (B-6: `referral_conversion`, billable false).
#[test]
fn w1_b6_era_b_categories() {
    for (text, category) in [
        ("business_initiated", BilledCategory::BusinessInitiated),
        ("user_initiated", BilledCategory::UserInitiated),
        ("referral_conversion", BilledCategory::ReferralConversion),
    ] {
        let mut w = a_with("sent", 0, None);
        status_of(&mut w)["pricing"] = json!({ "billable": text != "referral_conversion", "pricing_model": "CBP", "category": text });
        let l = line(&w);
        let events = parse_ok(&l);
        let p = the_status(&events).pricing.unwrap();
        assert_eq!(p.category, Some(category), "{text}");
        assert_eq!(p.model, Some(PricingModel::Cbp));
        assert_eq!(p.billable, Some(text != "referral_conversion"));
    }
}

/// (d) W-3: Meta's PMP pricing snippets — `free_customer_service` for service and utility, a
/// `regular` charge for each category (the `<PRICING_CATEGORY>` placeholder filled in), and the
/// post-2026-10-01 charged `service`; plus a `free_entry_point` one (B-6/D-5; spec §11 #13: its
/// category may be the underlying one or `referral_conversion`).
#[test]
fn w3_d_pmp_pricing_snippets() {
    let snippet = |name: &str| fixture(name)["pricing"].clone();
    let mut cases: Vec<(Value, Option<MetaPricing>)> = vec![
        (
            snippet("d1_free_customer_service_service.json"),
            pricing(
                Some(false),
                PricingModel::Pmp,
                Some(BilledCategory::Service),
                Some(MetaPricingType::FreeCustomerService),
            ),
        ),
        (
            snippet("d2_free_customer_service_utility.json"),
            pricing(
                Some(false),
                PricingModel::Pmp,
                Some(BilledCategory::Utility),
                Some(MetaPricingType::FreeCustomerService),
            ),
        ),
        (
            snippet("d4_regular_service.json"),
            pricing(
                Some(true),
                PricingModel::Pmp,
                Some(BilledCategory::Service),
                Some(MetaPricingType::Regular),
            ),
        ),
    ];
    let placeholder = snippet("d3_regular_placeholder_category.json");
    assert_eq!(placeholder["category"], json!("<PRICING_CATEGORY>"));
    for (text, category) in [
        ("marketing", BilledCategory::Marketing),
        ("utility", BilledCategory::Utility),
        ("authentication", BilledCategory::Authentication),
        (
            "authentication_international",
            BilledCategory::AuthenticationInternational,
        ),
        ("marketing_lite", BilledCategory::MarketingLite),
        ("service", BilledCategory::Service),
        ("referral_conversion", BilledCategory::ReferralConversion),
        // D-10: Groups API categories are billed as their base category.
        ("group_marketing", BilledCategory::Marketing),
        ("group_utility", BilledCategory::Utility),
        ("group_service", BilledCategory::Service),
    ] {
        let mut p = placeholder.clone();
        p["category"] = json!(text);
        cases.push((
            p,
            pricing(
                Some(true),
                PricingModel::Pmp,
                Some(category),
                Some(MetaPricingType::Regular),
            ),
        ));
    }
    for category in ["referral_conversion", "marketing"] {
        cases.push((
            json!({ "billable": false, "pricing_model": "PMP", "type": "free_entry_point", "category": category }),
            pricing(
                Some(false),
                PricingModel::Pmp,
                BilledCategory::parse(category),
                Some(MetaPricingType::FreeEntryPoint),
            ),
        ));
    }
    for (p, expected) in cases {
        let mut w = a_with("delivered", 60, None);
        status_of(&mut w)["pricing"] = p.clone();
        let l = line(&w);
        let events = parse_ok(&l);
        let s = the_status(&events);
        assert_eq!(s.status, DeliveryStatus::Delivered);
        assert_eq!(s.pricing, expected, "pricing {p}");
    }
}

/// (e) C-18: the MM Lite fragment (`marketing_lite`, no `type`), merged into a status object.
#[test]
fn c18_e_mm_lite_marketing_lite() {
    let fragment = fixture("e_mm_lite_fragment.json");
    let mut w = a_with("sent", 0, None);
    let s = status_of(&mut w);
    s["conversation"] = fragment["conversation"].clone();
    s["pricing"] = fragment["pricing"].clone();
    let l = line(&w);
    let events = parse_ok(&l);
    assert_eq!(
        the_status(&events).pricing,
        pricing(
            Some(true),
            PricingModel::Pmp,
            Some(BilledCategory::MarketingLite),
            None
        )
    );
}

/// AI-5, spec §11 #12: `authentication-international` (hyphen, one M4 row) and the underscore
/// form both mean authentication-international.
#[test]
fn ai5_authentication_international_both_spellings() {
    for text in [
        "authentication-international",
        "authentication_international",
    ] {
        let mut w = a_with("delivered", 60, None);
        status_of(&mut w)["pricing"]["category"] = json!(text);
        let l = line(&w);
        let events = parse_ok(&l);
        assert_eq!(
            the_status(&events).pricing.unwrap().category,
            Some(BilledCategory::AuthenticationInternational),
            "{text}"
        );
    }
}

/// Statuses that say nothing about delivery or price are ignored, not rejected.
#[test]
fn w4_statuses_without_pricing_meaning_are_ignored() {
    for status in ["deleted", "warning"] {
        let w = a_with(status, 0, None);
        let l = line(&w);
        assert_eq!(parse_ok(&l), vec![Event::Ignored], "{status}");
    }
}

/// Several statuses in one webhook come out in their order.
#[test]
fn w4_several_statuses_in_one_webhook() {
    let sent = status_of(&mut a_with("sent", 0, None)).clone();
    let read = status_of(&mut a_with("read", 30, None)).clone();
    let failed = fixture("c_failed_status.json");
    let l = line(&status_webhook(vec![sent, read, failed]));
    let events = parse_ok(&l);
    let got: Vec<(&str, DeliveryStatus)> = events
        .iter()
        .map(|e| match e {
            Event::Status(s) => (s.id.as_ref(), s.status),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (WAMID_A, DeliveryStatus::Sent),
            (WAMID_A, DeliveryStatus::Read),
            (WAMID_C, DeliveryStatus::Failed)
        ]
    );
}

// ---------------------------------------------------------------------------------------------
// Inbound, account updates, template category updates
// ---------------------------------------------------------------------------------------------

/// (j) B-6/C-9/D-5: an inbound message from a click-to-WhatsApp ad (`referral`) → Inbound with
/// `referral: true`; raw webhooks do not say the client platform.
#[test]
fn b6_j_inbound_with_referral() {
    let webhook = fixture("j_inbound_referral.json");
    let text = line(&webhook);
    let events = parse_ok(&text);
    let expected = Event::Inbound(Inbound {
        id: Cow::Borrowed("wamid.ID"),
        at: 1_697_045_000,
        business: Cow::Borrowed("1234567890987654321"),
        phone: Cow::Borrowed("1122334455667"),
        user: Cow::Borrowed("972987654321"),
        referral: true,
        platform: Platform::Unknown,
        group: None,
        text: Some(Cow::Borrowed("BODY")),
    });
    assert_eq!(events, vec![expected]);

    // The same message without `referral` is a plain inbound message.
    let mut plain = webhook.clone();
    plain["entry"][0]["changes"][0]["value"]["messages"][0]
        .as_object_mut()
        .unwrap()
        .remove("referral");
    let text = line(&plain);
    match parse_ok(&text).as_slice() {
        [Event::Inbound(i)] => assert!(!i.referral),
        other => panic!("{other:?}"),
    }

    // Short texts (opt-out keywords, quick-reply buttons) are kept; longer ones are not.
    let message = &mut plain["entry"][0]["changes"][0]["value"]["messages"][0];
    message["text"]["body"] = "STOP".into();
    match parse_ok(&line(&plain)).as_slice() {
        [Event::Inbound(i)] => assert_eq!(i.text.as_deref(), Some("STOP")),
        other => panic!("{other:?}"),
    }
    plain["entry"][0]["changes"][0]["value"]["messages"][0]["text"]["body"] =
        "a question about my order, which is late by three days".into();
    match parse_ok(&line(&plain)).as_slice() {
        [Event::Inbound(i)] => assert_eq!(i.text, None),
        other => panic!("{other:?}"),
    }
}

/// (k) V-7: the `account_update` volume-tier webhook → AccountUpdate at the entry `time`, with
/// Meta's category and tier as written (the rating computes tiers itself and ignores it).
#[test]
fn v7_k_volume_tier_update() {
    let text = line(&fixture("k_account_update_volume_tier.json"));
    let expected = Event::AccountUpdate(AccountUpdate {
        business: Cow::Borrowed(WABA_A),
        at: 1_743_451_903,
        change: AccountChange::VolumeTier {
            category: Cow::Borrowed("UTILITY"),
            tier: Cow::Borrowed("25000001:50000000"),
            effective_month: Some(Cow::Borrowed("2025-11")),
            region: Some(Cow::Borrowed("India")),
        },
    });
    assert_eq!(parse_ok(&text), vec![expected]);
}

/// (l) AI-5: the auth-international eligibility `account_update` → AccountUpdate with the start
/// and the exception countries (the rating takes eligibility from the config and ignores it).
#[test]
fn ai5_l_auth_international_eligibility() {
    let text = line(&fixture("l_account_update_auth_intl.json"));
    let expected = Event::AccountUpdate(AccountUpdate {
        business: Cow::Borrowed(WABA_A),
        at: 1_743_451_903,
        change: AccountChange::AuthInternationalEligibility {
            start: Some(1_748_780_624),
            exceptions: vec![(Cow::Borrowed("ID"), 1_751_347_424)],
        },
    });
    assert_eq!(parse_ok(&text), vec![expected]);
}

/// Another `account_update` event keeps its name; another webhook `field` stays Ignored.
#[test]
fn other_account_updates_and_fields() {
    let mut w = fixture("k_account_update_volume_tier.json");
    w["entry"][0]["changes"][0]["value"] = json!({"event": "PARTNER_ADDED"});
    match parse_ok(&line(&w)).as_slice() {
        [Event::AccountUpdate(u)] => {
            assert_eq!(
                u.change,
                AccountChange::Other(Cow::Borrowed("PARTNER_ADDED"))
            );
            assert_eq!(u.change.event(), "PARTNER_ADDED");
        }
        other => panic!("{other:?}"),
    }
    w["entry"][0]["changes"][0]["field"] = json!("phone_number_quality_update");
    assert_eq!(parse_ok(&line(&w)), vec![Event::Ignored]);
}

/// A bad `account_update` is rejected, naming the field path (here in the second change).
#[test]
fn account_update_errors_name_the_field_path() {
    let k = fixture("k_account_update_volume_tier.json");
    let l = fixture("l_account_update_auth_intl.json");
    let in_second = |base: &Value, edit: &dyn Fn(&mut Value)| {
        let mut w = base.clone();
        let mut change = w["entry"][0]["changes"][0].clone();
        edit(&mut change);
        w["entry"][0]["changes"]
            .as_array_mut()
            .unwrap()
            .push(change);
        line(&w)
    };
    let here = "entry[0].changes[1].value";
    let cases: Vec<(String, String)> = vec![
        (
            in_second(&k, &|c| c["value"]["volume_tier_info"]["tier"] = json!("")),
            format!("`{here}.volume_tier_info.tier` is empty"),
        ),
        (
            in_second(&k, &|c| {
                c["value"]["volume_tier_info"]
                    .as_object_mut()
                    .unwrap()
                    .remove("pricing_category");
            }),
            format!("{here}.volume_tier_info.pricing_category"),
        ),
        (
            in_second(&k, &|c| {
                c["value"]
                    .as_object_mut()
                    .unwrap()
                    .remove("volume_tier_info");
            }),
            format!("{here}.volume_tier_info"),
        ),
        (
            in_second(&k, &|c| {
                c["value"].as_object_mut().unwrap().remove("event");
            }),
            format!("{here}.event"),
        ),
        (
            in_second(&l, &|c| {
                c["value"]["auth_international_rate_eligibility"]["start_time"] = json!("soon")
            }),
            format!("{here}.auth_international_rate_eligibility.start_time"),
        ),
        (
            in_second(&l, &|c| {
                c["value"]["auth_international_rate_eligibility"]["exception_countries"][0]
                    .as_object_mut()
                    .unwrap()
                    .remove("country_code");
            }),
            format!(
                "{here}.auth_international_rate_eligibility.exception_countries[0].country_code"
            ),
        ),
    ];
    for (text, named) in cases {
        assert_names(&parse_err(&text), &[&named]);
    }
    let mut no_time = k.clone();
    no_time["entry"][0].as_object_mut().unwrap().remove("time");
    assert_names(&parse_err(&line(&no_time)), &["entry[0].time"]);
}

/// 1-5: a `template_category_update` webhook → TemplateCategory at the entry `time`, for the
/// entry's WABA, with the new category.
#[test]
fn one_five_template_category_update() {
    let text = line(&fixture("template_category_update.json"));
    let events = parse_ok(&text);
    let expected = Event::TemplateCategory(TemplateCategoryChange {
        at: 1_752_624_000,
        business: Cow::Borrowed(WABA_A),
        template: Cow::Borrowed("order_confirmation"),
        category: TemplateCategory::Utility,
    });
    assert_eq!(events, vec![expected]);
}

/// 1-5: a template_category_update without the entry `time` or with an unknown category is
/// rejected, naming the field.
#[test]
fn one_five_template_category_update_errors() {
    let mut no_time = fixture("template_category_update.json");
    no_time["entry"][0].as_object_mut().unwrap().remove("time");
    let e = parse_err(&line(&no_time));
    assert_names(&e, &["entry[0].time"]);

    let mut bad = fixture("template_category_update.json");
    bad["entry"][0]["changes"][0]["value"]["new_category"] = json!("PROMOTIONAL");
    let e = parse_err(&line(&bad));
    assert_names(
        &e,
        &["entry[0].changes[0].value.new_category", "PROMOTIONAL"],
    );
}

// ---------------------------------------------------------------------------------------------
// Webhook errors
// ---------------------------------------------------------------------------------------------

/// Only `whatsapp_business_account` webhooks are WhatsApp traffic.
#[test]
fn webhook_from_another_object_is_rejected() {
    let mut w = fixture("a_pmp_marketing_sent.json");
    w["object"] = json!("page");
    let e = parse_err(&line(&w));
    assert_names(&e, &["object", "page"]);
}

#[test]
fn status_without_id_names_the_field_path() {
    let mut w = fixture("a_pmp_marketing_sent.json");
    status_of(&mut w).as_object_mut().unwrap().remove("id");
    let e = parse_err(&line(&w));
    assert_names(&e, &["entry[0].changes[0].value.statuses[0].id"]);
}

#[test]
fn status_without_timestamp_names_the_field_path() {
    let mut w = fixture("a_pmp_marketing_sent.json");
    status_of(&mut w)
        .as_object_mut()
        .unwrap()
        .remove("timestamp");
    let e = parse_err(&line(&w));
    assert_names(&e, &["entry[0].changes[0].value.statuses[0].timestamp"]);
}

#[test]
fn unknown_status_value_is_rejected() {
    let w = a_with("bounced", 0, None);
    let e = parse_err(&line(&w));
    assert_names(&e, &["status", "bounced"]);
}

#[test]
fn messages_change_without_phone_number_id_is_rejected() {
    let mut w = fixture("a_pmp_marketing_sent.json");
    w["entry"][0]["changes"][0]["value"]
        .as_object_mut()
        .unwrap()
        .remove("metadata");
    let e = parse_err(&line(&w));
    assert_names(&e, &["entry[0].changes[0].value.metadata.phone_number_id"]);
}

#[test]
fn inbound_message_without_from_names_the_field_path() {
    let mut w = fixture("j_inbound_referral.json");
    w["entry"][0]["changes"][0]["value"]["messages"][0]
        .as_object_mut()
        .unwrap()
        .remove("from");
    let e = parse_err(&line(&w));
    assert_names(&e, &["entry[0].changes[0].value.messages[0].from"]);
}

/// A webhook is all-or-nothing: one bad status rejects the whole line and emits no event, even
/// the valid ones before it.
#[test]
fn webhook_with_one_bad_status_emits_nothing() {
    let good = status_of(&mut a_with("sent", 0, None)).clone();
    let mut bad = fixture("c_failed_status.json");
    bad.as_object_mut().unwrap().remove("id");
    let e = parse_err(&line(&status_webhook(vec![good.clone(), bad])));
    assert_names(&e, &["entry[0].changes[0].value.statuses[1].id"]);

    // Same across entries: a valid first entry, an invalid status in the second.
    let mut two = fixture("a_pmp_marketing_sent.json");
    let mut second = two["entry"][0].clone();
    second["changes"][0]["value"]["statuses"][0]["status"] = json!("exploded");
    two["entry"].as_array_mut().unwrap().push(second);
    let e = parse_err(&line(&two));
    assert_names(&e, &["status", "exploded"]);
}

#[test]
fn invalid_json_is_rejected() {
    let text = line(&fixture("a_pmp_marketing_sent.json"));
    for bad in [&text[..text.len() / 2], "{", "not json", "", "[1,2]"] {
        let e = parse_err(bad);
        assert!(e.to_string().starts_with("invalid JSON"), "{bad:?}: {e}");
    }
}

// ---------------------------------------------------------------------------------------------
// Normalized-event errors
// ---------------------------------------------------------------------------------------------

const INBOUND: &str = r#"{"type":"inbound","id":"in-1","at":"2025-08-04T09:00:00Z","business":"waba-1","phone":"pn-1","user":"16505551234"}"#;
const OUTBOUND: &str = r#"{"type":"outbound","id":"out-1","at":"2025-08-04T09:00:00Z","business":"waba-1","phone":"pn-1","user":"16505551234","template":{"name":"promo","category":"marketing"}}"#;
const STATUS: &str =
    r#"{"type":"status","id":"out-1","at":"2025-08-04T09:00:05Z","status":"delivered"}"#;
const CATEGORY: &str = r#"{"type":"template_category","at":"2025-08-04T00:00:00Z","business":"waba-1","template":"promo","category":"utility"}"#;

fn edit(base: &str, f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
    let mut v: Value = serde_json::from_str(base).unwrap();
    f(v.as_object_mut().unwrap());
    line(&v)
}

#[test]
fn normalized_events_parse() {
    for base in [INBOUND, OUTBOUND, STATUS, CATEGORY] {
        assert_eq!(parse_ok(base).len(), 1, "{base}");
    }
}

#[test]
fn normalized_missing_at_is_rejected() {
    for base in [INBOUND, OUTBOUND, STATUS, CATEGORY] {
        let e = parse_err(&edit(base, |o| {
            o.remove("at");
        }));
        assert_names(&e, &["`at`"]);
    }
}

#[test]
fn normalized_bad_time_is_rejected() {
    for bad in ["yesterday", "2025-13-01T00:00:00Z", "2025-08-04 09:00"] {
        let e = parse_err(&edit(OUTBOUND, |o| {
            o.insert("at".into(), json!(bad));
        }));
        assert_names(&e, &["`at`", bad]);
    }
}

#[test]
fn normalized_unknown_type_is_rejected() {
    let e = parse_err(&edit(INBOUND, |o| {
        o.insert("type".into(), json!("reaction"));
    }));
    assert_names(&e, &["`type`", "reaction"]);

    let e = parse_err(&edit(INBOUND, |o| {
        o.remove("type");
    }));
    assert_names(&e, &["`type`"]);
}

/// 1-5: categories are marketing, utility, authentication (and marketing_lite, C-18).
#[test]
fn normalized_unknown_template_category_is_rejected() {
    let e = parse_err(&edit(OUTBOUND, |o| {
        o.insert(
            "template".into(),
            json!({"name": "promo", "category": "promotional"}),
        );
    }));
    assert_names(&e, &["template.category", "promotional"]);

    let e = parse_err(&edit(CATEGORY, |o| {
        o.insert("category".into(), json!("promotional"));
    }));
    assert_names(&e, &["`category`", "promotional"]);
}

/// C-9/D-5: the platform decides whether an entry point qualifies; an unknown one is an error.
#[test]
fn normalized_unknown_platform_is_rejected() {
    let e = parse_err(&edit(INBOUND, |o| {
        o.insert("platform".into(), json!("tv"));
    }));
    assert_names(&e, &["platform", "tv"]);
}

#[test]
fn normalized_unknown_status_is_rejected() {
    let e = parse_err(&edit(STATUS, |o| {
        o.insert("status".into(), json!("bounced"));
    }));
    assert_names(&e, &["status", "bounced"]);
}

/// A normalized status may carry what Meta's status webhook said (WABA, number, pricing,
/// conversation, error codes), read the same whichever parsing path handles the line.
#[test]
fn normalized_status_with_meta_fields() {
    let full = r#"{"type":"status","id":"out-1","at":1754298005,"status":"read","recipient":"16505551234","business":"waba-1","phone":"pn-1","pricing":{"billable":true,"pricing_model":"CBP","category":"authentication-international","type":"free_entry_point"},"conversation":{"id":"conv-1","origin":"referral_conversion"},"errors":[131050]}"#;
    let expected = Event::Status(Status {
        id: Cow::Borrowed("out-1"),
        at: 1_754_298_005,
        status: DeliveryStatus::Read,
        recipient: Some(Cow::Borrowed("16505551234")),
        group: None,
        business: Some(Cow::Borrowed("waba-1")),
        phone: Some(Cow::Borrowed("pn-1")),
        pricing: pricing(
            Some(true),
            PricingModel::Cbp,
            Some(BilledCategory::AuthenticationInternational),
            Some(MetaPricingType::FreeEntryPoint),
        ),
        conversation_id: Some(Cow::Borrowed("conv-1")),
        conversation_origin: Some(BilledCategory::ReferralConversion),
        error_codes: vec![131_050],
    });
    assert_eq!(parse_ok(full), vec![expected.clone()]);
    // An escape sends the line to serde.
    let escaped = full.replace(r#""id":"out-1""#, r#""id":"out\u002d1""#);
    assert_eq!(parse_ok(&escaped), vec![expected]);

    // `pricing: {}` is a pricing that says nothing; an unknown `type` is `Other`.
    let l = edit(STATUS, |o| {
        o.insert("pricing".into(), json!({}));
    });
    assert_eq!(the_status(&parse_ok(&l)).pricing, pricing_none());
    let l = edit(STATUS, |o| {
        o.insert("pricing".into(), json!({"type": "free_tier"}));
    });
    assert_eq!(
        the_status(&parse_ok(&l)).pricing.unwrap().pricing_type,
        Some(MetaPricingType::Other)
    );

    // Unlike in a webhook, an unknown model or category is an error in tarifa's own format.
    for (field, value, named) in [
        (
            "pricing",
            json!({"pricing_model": "XBP"}),
            "pricing.pricing_model",
        ),
        ("pricing", json!({"category": "promo"}), "pricing.category"),
        (
            "conversation",
            json!({"origin": "promo"}),
            "conversation.origin",
        ),
    ] {
        let e = parse_err(&edit(STATUS, |o| {
            o.insert(field.into(), value);
        }));
        assert_names(&e, &[named]);
    }
}

fn pricing_none() -> Option<MetaPricing> {
    Some(MetaPricing {
        billable: None,
        model: None,
        category: None,
        pricing_type: None,
    })
}

#[test]
fn normalized_missing_required_fields_are_named() {
    for (base, field) in [
        (INBOUND, "business"),
        (INBOUND, "phone"),
        (INBOUND, "user"),
        (INBOUND, "id"),
        (OUTBOUND, "business"),
        (OUTBOUND, "user"),
        (OUTBOUND, "id"),
        (STATUS, "id"),
        (STATUS, "status"),
        (CATEGORY, "business"),
    ] {
        let e = parse_err(&edit(base, |o| {
            o.remove(field);
        }));
        assert_names(&e, &[&format!("`{field}`")]);
    }
}

// ---------------------------------------------------------------------------------------------
// End to end: rating from webhooks alone
// ---------------------------------------------------------------------------------------------

const CARD: &str = "Cost per message in USD, effective July 1, 2025
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
North America,$US,0.025,0.004,0.004,n/a,n/a
Israel,$US,0.0353,0.0053,0.0053,n/a,n/a
";

/// Meta's examples (a) and (c) are dated June 2025, before per-message pricing went live
/// (2025-07-01, 1-3); the end-to-end tests move them 30 days later, into era D.
const TO_ERA_D: i64 = 30 * 86_400;

fn setup() -> Setup {
    let mut book = RateBook::new();
    book.add_rate_card(RateCard::parse_csv(CARD, "inline USD card").unwrap())
        .unwrap();
    let businesses = [WABA_A, "5467539754836534"]
        .iter()
        .map(|id| {
            let b: BusinessConfig = toml::from_str(&format!(
                "id = \"{id}\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n"
            ))
            .unwrap();
            b.resolve().unwrap()
        })
        .collect();
    Setup {
        businesses,
        rules: Rules::default(),
        markets: MarketOptions::default(),
        book,
        price_lists: Vec::new(),
        prices: Prices::Meta,
    }
}

fn rate(lines: &[String]) -> Bill {
    let mut rater = Rater::new(setup());
    for l in lines {
        let events = parse_ok(l);
        rater
            .push_all(events)
            .unwrap_or_else(|e| panic!("{l}: {e}"));
    }
    rater.finish()
}

/// (id, category, pricing type, amount, market) of every line.
type Rated = (String, String, String, Decimal, Option<String>);

fn rated(bill: &Bill) -> Vec<Rated> {
    let mut v: Vec<Rated> = bill
        .messages()
        .map(|m| {
            (
                m.id.to_string(),
                m.line.category.as_str().to_string(),
                m.line.pricing_type.as_str().to_string(),
                m.line.amount,
                m.line.market.map(|x| x.name().to_string()),
            )
        })
        .collect();
    v.sort();
    v
}

/// Rates the lines in order and reversed (the bill must not depend on order) and returns the
/// rated lines.
fn rate_lines(lines: &[Value]) -> Vec<Rated> {
    let lines: Vec<String> = lines.iter().map(line).collect();
    let forward = rated(&rate(&lines));
    let mut reversed = lines.clone();
    reversed.reverse();
    assert_eq!(forward, rated(&rate(&reversed)), "order changes the bill");
    forward
}

fn dec(s: &str) -> Decimal {
    Decimal::from_str(s).unwrap()
}

fn na() -> Option<String> {
    Some("North America".to_string())
}

/// W-3, D-1, 1-1: (a) `sent` + `delivered` for the same wamid, no outbound record → the message is
/// rated from the webhook: marketing, regular, 0.025, market North America (from +1 650).
#[test]
fn w3_d1_sent_and_delivered_webhooks_alone_are_rated() {
    let got = rate_lines(&[
        a_with("sent", TO_ERA_D, None),
        a_with("delivered", TO_ERA_D + 5, None),
    ]);
    assert_eq!(
        got,
        vec![(
            WAMID_A.to_string(),
            "marketing".into(),
            "regular".into(),
            dec("0.025"),
            na()
        )]
    );
}

/// 1-2: (a) `sent` + (c) `failed` for another id → that message is not delivered, never charged;
/// the delivered one is charged.
#[test]
fn one_two_sent_then_failed_is_not_delivered() {
    let mut failed = status_webhook(vec![fixture("c_failed_status.json")]);
    let ts: i64 = status_of(&mut failed)["timestamp"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    status_of(&mut failed)["timestamp"] = json!((ts + TO_ERA_D).to_string());
    // The `sent` of the failed message: (a)'s shape with (c)'s id, a few seconds before the failure.
    let a_ts: i64 = 1_750_030_073;
    let sent_c = a_with("sent", ts - 5 - a_ts + TO_ERA_D, Some(WAMID_C));
    let got = rate_lines(&[
        a_with("sent", TO_ERA_D, None),
        a_with("delivered", TO_ERA_D + 5, None),
        sent_c,
        failed,
    ]);
    assert_eq!(
        got,
        vec![
            (
                WAMID_C.to_string(),
                "marketing".into(),
                "not_delivered".into(),
                Decimal::ZERO,
                na()
            ),
            (
                WAMID_A.to_string(),
                "marketing".into(),
                "regular".into(),
                dec("0.025"),
                na()
            ),
        ]
    );
}

/// W-4: a `read` carrying pricing and no `delivered` implies delivery → charged.
#[test]
fn w4_read_without_delivered_is_charged() {
    let got = rate_lines(&[
        a_with("sent", TO_ERA_D, None),
        a_with("read", TO_ERA_D + 40, None),
    ]);
    assert_eq!(
        got,
        vec![(
            WAMID_A.to_string(),
            "marketing".into(),
            "regular".into(),
            dec("0.025"),
            na()
        )]
    );
}

/// 1-2: a `sent` alone (no delivery reported) is not charged.
#[test]
fn one_two_sent_alone_is_not_charged() {
    let got = rate_lines(&[a_with("sent", TO_ERA_D, None)]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].2, "not_delivered");
    assert_eq!(got[0].3, Decimal::ZERO);
}

/// Duplicated webhooks (Meta may retry) rate once.
#[test]
fn duplicated_webhooks_rate_once() {
    let sent = a_with("sent", TO_ERA_D, None);
    let delivered = a_with("delivered", TO_ERA_D + 5, None);
    let got = rate_lines(&[sent.clone(), delivered.clone(), sent, delivered]);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].3, dec("0.025"));
}

/// E-1: the business's record says utility, Meta's status bills the message as marketing. Under
/// `follow` (the default) Meta's category decides the rate column (marketing, 0.025); under
/// `verify` the record decides (utility, 0.004) and the line reports that Meta differs.
#[test]
fn e1_meta_category_against_the_send_record_by_policy() {
    let at = 1_750_030_073 + TO_ERA_D - 2;
    let outbound = json!({
        "type": "outbound", "id": WAMID_A, "at": at, "business": WABA_A, "phone": PHONE_A,
        "user": RECIPIENT_A, "template": { "name": "order_update", "category": "utility" }
    });
    let lines = [
        a_with("sent", TO_ERA_D, None),
        a_with("delivered", TO_ERA_D + 5, None),
        outbound,
    ];
    let one = |category: &str, amount: &str| {
        vec![(
            WAMID_A.to_string(),
            category.into(),
            "regular".into(),
            dec(amount),
            na(),
        )]
    };
    assert_eq!(rate_lines(&lines), one("marketing", "0.025"));
    let mut verify = setup();
    verify.rules.meta_pricing = tarifa_core::config::MetaPolicy::Verify;
    let mut rater = Rater::new(verify);
    for l in &lines {
        rater.push_all(parse_ok(&line(l))).unwrap();
    }
    let bill = rater.finish();
    assert_eq!(rated(&bill), one("utility", "0.004"));
    assert_eq!(bill.lines[0].meta_check.as_str(), "differs");
    assert_eq!(bill.totals()[0].meta_differs, 1);
}

/// 1-5: the template_category_update webhook re-prices explicit template messages sent after it
/// (MARKETING → UTILITY at 2025-07-16T00:00Z), not those sent before.
#[test]
fn one_five_category_update_webhook_reprices_later_sends() {
    let out = |id: &str, at: &str| {
        json!({
            "type": "outbound", "id": id, "at": at, "business": WABA_A, "phone": PHONE_A,
            "user": RECIPIENT_A, "template": { "name": "order_confirmation", "category": "marketing" }
        })
    };
    let delivered =
        |id: &str, at: &str| json!({"type": "status", "id": id, "at": at, "status": "delivered"});
    let got = rate_lines(&[
        fixture("template_category_update.json"),
        out("before", "2025-07-15T10:00:00Z"),
        delivered("before", "2025-07-15T10:00:05Z"),
        out("after", "2025-07-16T10:00:00Z"),
        delivered("after", "2025-07-16T10:00:05Z"),
    ]);
    assert_eq!(
        got,
        vec![
            (
                "after".to_string(),
                "utility".into(),
                "regular".into(),
                dec("0.004"),
                na()
            ),
            (
                "before".to_string(),
                "marketing".into(),
                "regular".into(),
                dec("0.025"),
                na()
            ),
        ]
    );
}

/// A status webhook for a WABA that is not in the config is rejected by the rater (whole line).
#[test]
fn webhook_for_unknown_business_is_rejected_by_the_rater() {
    let mut w = a_with("sent", TO_ERA_D, None);
    w["entry"][0]["id"] = json!("999999999999999");
    let l = line(&w);
    let mut rater = Rater::new(setup());
    let e = rater.push_all(parse_ok(&l)).unwrap_err();
    assert_names(&e, &["999999999999999", "not in the config"]);
}

/// JSON escapes in ids and numbers as timestamps are accepted (serde_json writes `/` unescaped,
/// other producers write `\/`).
#[test]
fn escaped_strings_and_numeric_timestamps() {
    let l = r#"{"object":"whatsapp_business_account","entry":[{"id":"102290129340398","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"106540352242922"},"statuses":[{"id":"wamid.AB\/CD\u003d","status":"delivered","timestamp":1752622078,"recipient_id":"16505551234"}]}}]}]}"#;
    let events = parse_ok(l);
    let s = the_status(&events);
    assert_eq!(s.id, "wamid.AB/CD=");
    assert_eq!(s.at, 1_752_622_078);
    assert_eq!(s.status, DeliveryStatus::Delivered);
}

/// Normalized lines follow JSON semantics whichever parsing path handles them: `null` is absent,
/// whitespace is insignificant, Unix seconds may be a number or a string, and anything after the
/// object, a duplicate key or a fractional time is an error.
#[test]
fn normalized_lines_follow_json_semantics() {
    let referral = |v: &str| {
        let l = INBOUND.replace(
            r#""user":"16505551234""#,
            &format!(r#""user":"16505551234","referral":{v}"#),
        );
        match parse_ok(&l).as_slice() {
            [Event::Inbound(i)] => i.referral,
            other => panic!("{other:?}"),
        }
    };
    assert!(!referral("null"), "referral: null");
    assert!(referral("{}"), "referral: {{}}");
    assert!(referral(r#"{"source_type":"ad"}"#));

    let at = |v: &str| {
        let l = STATUS.replace(r#""at":"2025-08-04T09:00:05Z""#, &format!(r#""at":{v}"#));
        parse(&l).map(|e| match e.as_slice() {
            [Event::Status(s)] => s.at,
            other => panic!("{other:?}"),
        })
    };
    assert_eq!(at("1754298005").unwrap(), 1_754_298_005);
    assert_eq!(at(r#""1754298005""#).unwrap(), 1_754_298_005);
    assert_eq!(at(r#""2025-08-04T09:00:05Z""#).unwrap(), 1_754_298_005);
    assert!(at("1754298005.5").is_err(), "fractional seconds");
    assert!(at("null").is_err(), "null time");
    assert!(at("-0").is_err(), "serde_json reads -0 as a float");

    let spaced = r#"  { "type" : "status" , "id" : "out-1" , "at" : "2025-08-04T09:00:05Z" , "status" : "delivered" }  "#;
    assert_eq!(parse_ok(spaced).len(), 1);

    for bad in [
        format!("{STATUS} x"),
        format!("{STATUS}{STATUS}"),
        STATUS.replace(
            r#""status":"delivered""#,
            r#""status":"delivered","status":"read""#,
        ),
        STATUS.replace(r#""at":"#, r#""at":"2025-08-04T09:00:00Z","at":"#),
    ] {
        let e = parse_err(&bad);
        assert!(e.to_string().starts_with("invalid JSON"), "{bad}: {e}");
    }
}

/// V-7, AI-5: account updates do not change the bill; they are counted (as ignored, and as
/// account updates), even for a WABA that is not in the config.
#[test]
fn account_updates_are_counted_not_rated() {
    let mut other_waba = fixture("l_account_update_auth_intl.json");
    other_waba["entry"][0]["id"] = json!("999999999999999");
    let bill = rate(&[
        line(&fixture("k_account_update_volume_tier.json")),
        line(&other_waba),
    ]);
    assert_eq!(bill.stats.account_updates, 2);
    assert_eq!(bill.stats.ignored, 2);
    assert_eq!(bill.stats.events, 2);
    assert!(rated(&bill).is_empty());
}

/// W-3: a normalized status with WABA, number and recipient describes its message like a webhook
/// status does: rated without an outbound record, from `pricing.category`.
#[test]
fn normalized_status_with_business_is_rated_alone() {
    let l = r#"{"type":"status","id":"n1","at":"2025-08-04T09:00:05Z","status":"delivered","recipient":"16505551234","business":"102290129340398","phone":"pn-1","pricing":{"billable":true,"pricing_model":"PMP","category":"utility","type":"regular"}}"#;
    let bill = rate(&[l.to_string()]);
    assert_eq!(
        rated(&bill),
        vec![(
            "n1".to_string(),
            "utility".into(),
            "regular".into(),
            dec("0.004"),
            na()
        )]
    );
    assert_eq!(bill.stats.orphan_statuses, 0);
}

// ---------------------------------------------------------------------------------------------
// Normalized lines written by `to_json_line`
// ---------------------------------------------------------------------------------------------

/// Every fixture as a full webhook line: full bodies as they are, a change wrapped in an entry,
/// a status object in the envelope of (a), and a fragment (`pricing`, `conversation`) merged
/// into the status of (a).
fn every_fixture_as_a_webhook() -> Vec<(String, String)> {
    let dir = format!("{}/tests/fixtures/webhooks", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|f| f.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".json"))
        .collect();
    names.sort();
    names
        .into_iter()
        .map(|name| {
            let v = fixture(&name);
            let webhook = if v.get("object").is_some() {
                v
            } else if v.get("value").is_some() {
                json!({
                    "object": "whatsapp_business_account",
                    "entry": [{ "id": WABA_I, "changes": [v] }],
                })
            } else if v.get("status").is_some() {
                status_webhook(vec![v])
            } else {
                let mut w = a_with("delivered", 60, None);
                for (k, x) in v.as_object().unwrap() {
                    status_of(&mut w)[k] = x.clone();
                }
                w
            };
            (name, line(&webhook))
        })
        .collect()
}

/// Every event of every webhook fixture is written as one normalized line that reads back as
/// the same event.
#[test]
fn every_fixture_event_round_trips_through_a_normalized_line() {
    let mut kinds = std::collections::BTreeSet::new();
    for (name, webhook) in every_fixture_as_a_webhook() {
        for event in parse_ok(&webhook) {
            let Some(text) = to_json_line(&event) else {
                panic!("{name}: no line for {event:?}");
            };
            kinds.insert(text[..20].to_string());
            assert_eq!(parse_ok(&text), vec![event], "{name}: {text}");
        }
    }
    // Statuses, an inbound message, a category change and both account updates.
    assert_eq!(kinds.len(), 4, "{kinds:?}");
    assert_eq!(to_json_line(&Event::Ignored), None);
}

/// The normalized line of the first event of a fixture.
fn first_written(name: &str) -> String {
    let text = line(&fixture(name));
    let events = parse_ok(&text);
    to_json_line(&events[0]).unwrap()
}

/// The normalized line of a webhook status and of an account update, field by field.
#[test]
fn normalized_line_shapes() {
    let a = first_written("a_pmp_marketing_sent.json");
    let expected = json!({
        "type": "status", "id": WAMID_A, "at": 1_750_030_073, "business": WABA_A,
        "phone": PHONE_A, "status": "sent", "recipient": RECIPIENT_A,
        "pricing": {"billable": true, "pricing_model": "PMP", "category": "marketing", "type": "regular"},
        "conversation": {"id": "72b14d6bd5407799e66f64d1b338e567", "origin": "marketing"},
    });
    let written: Value = serde_json::from_str(&a).unwrap();
    assert_eq!(written, expected);

    let k = first_written("k_account_update_volume_tier.json");
    assert_eq!(
        k,
        r#"{"type":"account_update","at":1743451903,"business":"102290129340398","event":"VOLUME_BASED_PRICING_TIER_UPDATE","volume_tier_info":{"pricing_category":"UTILITY","tier":"25000001:50000000","effective_month":"2025-11","region":"India"}}"#
    );
    let l = first_written("l_account_update_auth_intl.json");
    assert_eq!(
        l,
        r#"{"type":"account_update","at":1743451903,"business":"102290129340398","event":"AUTH_INTL_PRICE_ELIGIBILITY_UPDATE","auth_international_rate_eligibility":{"start_time":1748780624,"exception_countries":[{"country_code":"ID","start_time":1751347424}]}}"#
    );

    // A group message without a user leaves `user` out; `read` is written for `played`; an
    // outbound template without a name gets `"name": ""`.
    for (normalized, written) in [
        (
            r#"{"type":"inbound","id":"g1","at":1754298005,"business":"w","phone":"p","group":"grp","platform":"desktop"}"#,
            r#"{"type":"inbound","id":"g1","at":1754298005,"business":"w","phone":"p","platform":"web","group":"grp"}"#,
        ),
        (
            r#"{"type":"status","id":"s1","at":"2025-08-04T09:00:05Z","status":"played"}"#,
            r#"{"type":"status","id":"s1","at":1754298005,"status":"read"}"#,
        ),
        (
            r#"{"type":"outbound","id":"o1","at":1754298005,"business":"w","phone":"p","user":"u","template":{"category":"authentication_international"},"referral":{}}"#,
            r#"{"type":"outbound","id":"o1","at":1754298005,"business":"w","phone":"p","user":"u","template":{"name":"","category":"authentication"}}"#,
        ),
    ] {
        let events = parse_ok(normalized);
        assert_eq!(to_json_line(&events[0]).unwrap(), written);
        assert_eq!(parse_ok(written), events);
    }
}

// ---------------------------------------------------------------------------------------------
// Problem 3 of real traffic: a status without its context (E-1, E-3)
// ---------------------------------------------------------------------------------------------

/// E-1: a log that starts mid-window holds a status Meta prices `billable: false`,
/// `free_customer_service`; tarifa never saw the user's message that opened the window. Under the
/// default policy (follow) the line is free, as Meta will invoice it, not `regular`.
#[test]
fn e1_status_without_context_priced_free_by_meta_is_not_charged_regular() {
    let mut delivered = a_with("delivered", TO_ERA_D + 5, None);
    status_of(&mut delivered)["pricing"] = json!({
        "billable": false, "pricing_model": "PMP",
        "type": "free_customer_service", "category": "utility"
    });
    let got = rate_lines(&[delivered]);
    assert_eq!(
        got,
        vec![(
            WAMID_A.to_string(),
            "utility".into(),
            "free_customer_service".into(),
            Decimal::ZERO,
            na()
        )]
    );
}

/// E-3: a `delivered` status without `pricing` and without a send record, whose conversation's
/// origin is `marketing`, is a marketing message: charged as one, not taken as free service.
#[test]
fn e3_status_without_pricing_is_rated_by_its_conversation_origin() {
    let mut delivered = a_with("delivered", TO_ERA_D + 5, None);
    let s = status_of(&mut delivered);
    s.as_object_mut().unwrap().remove("pricing");
    assert_eq!(s["conversation"]["origin"]["type"], "marketing");
    let got = rate_lines(&[delivered.clone()]);
    assert_eq!(
        got,
        vec![(
            WAMID_A.to_string(),
            "marketing".into(),
            "regular".into(),
            dec("0.025"),
            na()
        )]
    );
    // Without the origin either, nothing says what the message was: unrated, with the reason.
    status_of(&mut delivered)
        .as_object_mut()
        .unwrap()
        .remove("conversation");
    let bill = rate(&[line(&delivered)]);
    let only = bill.messages().next().unwrap();
    assert_eq!(only.line.pricing_type.as_str(), "unrated");
    assert!(
        bill.explain(only.line).contains("E-3"),
        "{}",
        bill.explain(only.line)
    );
}
