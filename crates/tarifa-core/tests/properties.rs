//! Property tests guarding the rating invariants of `shared/spec/whatsapp-pricing.md`.
//!
//! One strategy ([`world`]) generates small but rich inputs as normalized JSON lines: 1–3 WABAs in
//! different time zones (two of them in one portfolio), 1–2 business numbers each, 1–6 users in
//! Brazil, India, Germany, the United States and Indonesia, inbound messages (some through an
//! entry point, from Android, iOS or the web), templates of every category, free-form and Meta
//! Business Agent messages, and statuses (sent / delivered / read / failed; some missing, some
//! `read` without `delivered`, some earlier than their message), all around an era or month
//! boundary. Rate cards cover every market for every era, and a tiny volume-tier card (bands
//! 1–2, 3–4, 5+) makes tiers move with a handful of messages. Most cases use allowances of 2 (B-5,
//! C-7, D-19) so that the free tiers run out.
//!
//! Each property names the spec rules it guards.

use proptest::prelude::*;
use proptest::sample::{select, subsequence, Index};
use proptest::test_runner::TestCaseError;
use rust_decimal::Decimal;
use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::OnceLock;
use tarifa_core::bill::{Bill, ConversationView, MessageView};
use tarifa_core::card::{RateBook, RateCard, TierCard, TierCategory};
use tarifa_core::category::{
    BilledCategory, MetaPricingType, PricingModel, PricingType, TemplateCategory,
};
use tarifa_core::config::{
    AuthInternationalConfig, BusinessConfig, ConversationScope, ConversationStart, Rules,
    WindowJudgedAt,
};
use tarifa_core::engine::{
    id_tail, lookback, may_concern, message_tail, CounterKey, Era, Prices, Rater, Setup,
};
use tarifa_core::input::{
    parse_line, to_json_line, AccountChange, AccountUpdate, DeliveryStatus, Event, Inbound,
    MetaPricing, Outbound, Platform, Status, TemplateCategoryChange, AUTH_INTL_EVENT,
    VOLUME_TIER_EVENT,
};
use tarifa_core::market::MarketOptions;
use tarifa_core::time::{format_instant, Calendar, Instant, LocalDate, Month, DAY, HOUR};

// ---------------------------------------------------------------------------------------------
// Rate cards (Meta's layouts, RC-3 and RC-4; invented rates covering the markets used here)
// ---------------------------------------------------------------------------------------------

const CARD_2021: &str = "\
Cost per message in USD, effective January 1, 2021,,
Note: property-test card (invented rates); era A notification pricing,,
Market,Currency,Template
Brazil,$US,0.0400
Germany,$US,0.0800
India,$US,0.0050
Indonesia,$US,0.0300
North America,$US,0.0100
Other,$US,0.0500
";

const CARD_2022: &str = "\
Cost per conversation in USD, effective February 1, 2022,,
Note: property-test card (invented rates),,
Market,Currency,Business-Initiated,User-Initiated
Brazil,$US,0.0500,0.0300
Germany,$US,0.1365,0.0819
India,$US,0.0066,0.0040
Indonesia,$US,0.0316,0.0190
North America,$US,0.0147,0.0088
Other,$US,0.0600,0.0300
";

const CARD_2023: &str = "\
Cost per conversation in USD, effective June 1, 2023,,,,,,
Note: property-test card (invented rates),,,,,,
Market,Currency,Marketing,Utility,Authentication,\"Authentication-
International\",Service
Brazil,$US,0.0625,0.0350,0.0315,n/a,0.0300
Germany,$US,0.1365,0.0853,0.0768,n/a,0.0819
India,$US,0.0099,0.0042,0.0042,0.0280,0.0040
Indonesia,$US,0.0411,0.0200,0.0300,0.1360,0.0190
North America,$US,0.0250,0.0150,0.0135,n/a,0.0088
Other,$US,0.0604,0.0338,0.0304,n/a,0.0145
";

const CARD_2025: &str = "\
Cost per message in USD, effective July 1, 2025,,,,,,
Note: property-test card (invented rates); service is free until 2026-10-01,,,,,,
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
Brazil,$US,0.0625,0.0068,0.0068,n/a,n/a
Germany,$US,0.1365,0.0550,0.0550,n/a,n/a
India,$US,0.0118,0.0014,0.0014,0.0280,n/a
Indonesia,$US,0.0411,0.0250,0.0250,0.1360,n/a
North America,$US,0.0250,0.0034,0.0034,n/a,n/a
Other,$US,0.0604,0.0077,0.0077,n/a,n/a
";

const CARD_2026: &str = "\
Cost per message in USD, effective October 1, 2026,,,,,,
Note: property-test card (invented rates); service = utility (D-15),,,,,,
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
Brazil,$US,0.0625,0.0068,0.0068,n/a,0.0068
Germany,$US,0.1365,0.0550,0.0550,n/a,0.0550
India,$US,0.0118,0.0014,0.0014,0.0280,0.0014
Indonesia,$US,0.0411,0.0250,0.0250,0.1360,0.0250
North America,$US,0.0250,0.0034,0.0034,n/a,0.0034
Other,$US,0.0604,0.0077,0.0077,n/a,0.0077
";

/// Tiny bands (1–2 list, 3–4 −10 %, 5+ −20 %) so that a few messages cross tiers (V-3).
const TIERS_2025: &str = "\
Volume tiers for utility and authentication messages in USD, effective July 1, 2025,,,,,,,,,,,,,,,,
https://developers.facebook.com/documentation/business-messaging/whatsapp/pricing,,,,,,,,,,,,,,,,
Note: property-test card: INVENTED tiny bands so that tiers move with a few messages.,,,,,,,,,,,,,,,,
,,Utility,,,,,Authentication,,,,,Auth-Intl,,,,
,,Messages per month,,What we charge,,,Messages per month,,What we charge,,,Messages per month,,What we charge,,
\"Market
(per rate card)\",Currency,From,To,Rate type,Rate,vs. List rate,From,To,Rate type,Rate,vs. List rate,From,To,Rate type,Rate,vs. List rate
Brazil,USD,1,2,List,0.006800,0%,1,2,List,0.006800,0%,n/a,n/a,n/a,n/a,n/a
,,3,4,Tier,0.006120,-10%,3,4,Tier,0.006120,-10%,n/a,n/a,n/a,n/a,n/a
,,5,,Tier,0.005440,-20%,5,,Tier,0.005440,-20%,n/a,n/a,n/a,n/a,n/a
Germany,USD,1,2,List,0.055000,0%,1,2,List,0.055000,0%,n/a,n/a,n/a,n/a,n/a
,,3,4,Tier,0.049500,-10%,3,4,Tier,0.049500,-10%,n/a,n/a,n/a,n/a,n/a
,,5,,Tier,0.044000,-20%,5,,Tier,0.044000,-20%,n/a,n/a,n/a,n/a,n/a
India,USD,1,2,List,0.001400,0%,1,2,List,0.001400,0%,1,2,List,0.028000,0%
,,3,4,Tier,0.001260,-10%,3,4,Tier,0.001260,-10%,3,4,Tier,0.025200,-10%
,,5,,Tier,0.001120,-20%,5,,Tier,0.001120,-20%,5,,Tier,0.022400,-20%
Indonesia,USD,1,2,List,0.025000,0%,1,2,List,0.025000,0%,1,2,List,0.136000,0%
,,3,4,Tier,0.022500,-10%,3,4,Tier,0.022500,-10%,3,4,Tier,0.122400,-10%
,,5,,Tier,0.020000,-20%,5,,Tier,0.020000,-20%,5,,Tier,0.108800,-20%
North America,USD,1,2,List,0.003400,0%,1,2,List,0.003400,0%,n/a,n/a,n/a,n/a,n/a
,,3,4,Tier,0.003060,-10%,3,4,Tier,0.003060,-10%,n/a,n/a,n/a,n/a,n/a
,,5,,Tier,0.002720,-20%,5,,Tier,0.002720,-20%,n/a,n/a,n/a,n/a,n/a
Other,USD,1,2,List,0.007700,0%,1,2,List,0.007700,0%,n/a,n/a,n/a,n/a,n/a
,,3,4,Tier,0.006930,-10%,3,4,Tier,0.006930,-10%,n/a,n/a,n/a,n/a,n/a
,,5,,Tier,0.006160,-20%,5,,Tier,0.006160,-20%,n/a,n/a,n/a,n/a,n/a
";

/// Band number (1-based) of the `nth` charged message of a month in [`TIERS_2025`].
fn expected_band(nth: usize) -> u8 {
    match nth {
        1 | 2 => 1,
        3 | 4 => 2,
        _ => 3,
    }
}

// ---------------------------------------------------------------------------------------------
// Businesses, users, setup
// ---------------------------------------------------------------------------------------------

/// (WABA id, time zone, portfolio): the first two share a portfolio (V-1).
const WABAS: [(&str, &str, &str); 3] = [
    ("waba-utc", "UTC", "portfolio-1"),
    ("waba-sp", "America/Sao_Paulo", "portfolio-1"),
    ("waba-in", "Asia/Kolkata", "portfolio-2"),
];

const USERS: [&str; 8] = [
    "5511987650001",     // Brazil
    "+55 21 98765-0002", // Brazil, written with punctuation
    "919876543210",      // India
    "4915112345678",     // Germany
    "12125550123",       // United States (212) → North America
    "6281234567890",     // Indonesia
    "918765432109",      // India
    "6289876543210",     // Indonesia
];

/// Era boundaries (2022-02-01, 2023-06-01, 2024-11-01, 2025-07-01, 2026-08-01, 2026-10-01) and
/// plain month / year boundaries, as UTC midnights; events fall within days of one of them.
const ANCHORS: [&str; 14] = [
    "2022-02-01",
    "2023-06-01",
    "2024-11-01",
    "2025-07-01",
    "2026-08-01",
    "2026-10-01",
    "2021-12-01",
    "2022-03-01",
    "2023-01-01",
    "2024-03-01",
    "2024-06-01",
    "2025-09-01",
    "2026-01-01",
    "2026-11-01",
];

fn base_setup() -> &'static Setup {
    static SETUP: OnceLock<Setup> = OnceLock::new();
    SETUP.get_or_init(|| {
        let mut book = RateBook::new();
        for (name, text) in [
            ("usd-2021", CARD_2021),
            ("usd-2022", CARD_2022),
            ("usd-2023", CARD_2023),
            ("usd-2025", CARD_2025),
            ("usd-2026", CARD_2026),
        ] {
            book.add_rate_card(RateCard::parse_csv(text, name).unwrap())
                .unwrap();
        }
        book.add_tier_card(TierCard::parse_csv(TIERS_2025, "usd-tiers-2025", None).unwrap())
            .unwrap();
        let businesses = WABAS
            .iter()
            .map(|&(id, tz, portfolio)| {
                let india = id == "waba-in";
                BusinessConfig {
                    id: id.into(),
                    portfolio: Some(portfolio.into()),
                    currency: "USD".into(),
                    timezone: tz.into(),
                    // AI-1, AI-3: an Indian business pays auth-international for Indonesia from
                    // 2024-06-01, domestic rates for India.
                    primary_country: india.then(|| "IN".into()),
                    auth_international: india.then(|| AuthInternationalConfig {
                        start: "2024-06-01".into(),
                        exceptions: BTreeMap::new(),
                    }),
                    price_list: None,
                    meta_pricing: None,
                }
                .resolve()
                .unwrap()
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
    })
}

/// Rule variants: 0 = defaults; 1 = allowances of 2; 2 = also windows from `sent` and the CSW
/// judged at send; 3 = allowances of 2 and conversations per WABA × user. B-9 is always off.
const RULE_VARIANTS: u8 = 4;

fn rules(variant: u8) -> Rules {
    let mut r = Rules::default();
    if variant >= 1 {
        r.free_conversations_per_month = 2;
        r.free_service_messages_per_number = 2;
    }
    match variant {
        2 => {
            r.conversation_start = ConversationStart::Sent;
            r.window_judged_at = WindowJudgedAt::Send;
        }
        3 => r.conversation_scope = ConversationScope::Business,
        _ => {}
    }
    r
}

fn setup(variant: u8) -> Setup {
    let mut s = base_setup().clone();
    s.rules = rules(variant);
    s
}

// ---------------------------------------------------------------------------------------------
// The generator
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum St {
    Sent,
    Delivered,
    Read,
    Failed,
}

impl St {
    fn as_str(self) -> &'static str {
        match self {
            St::Sent => "sent",
            St::Delivered => "delivered",
            St::Read => "read",
            St::Failed => "failed",
        }
    }
}

#[derive(Clone, Debug)]
enum Kind {
    Template(&'static str),
    FreeForm,
    Agent(u64),
}

#[derive(Clone, Debug)]
enum Act {
    Inbound {
        who: (Index, Index, Index),
        t: i64,
        referral: bool,
        platform: Option<&'static str>,
    },
    Outbound {
        who: (Index, Index, Index),
        t: i64,
        kind: Kind,
        /// Statuses and their offsets from the send (negative: reported "before" the message).
        statuses: Vec<(St, i64)>,
    },
    /// `n` messages of one kind from one business number, `gap` apart, to the users in turn,
    /// each delivered `delay` seconds after its send; with `reply`, each answers a user message
    /// sent a minute earlier (a customer service window). Makes counters and tiers move.
    Burst {
        who: (Index, Index, Index),
        t: i64,
        kind: Kind,
        n: usize,
        gap: i64,
        delay: i64,
        reply: bool,
    },
}

#[derive(Clone, Debug)]
struct World {
    /// Indices into [`WABAS`].
    wabas: Vec<usize>,
    /// Business numbers per WABA of [`WABAS`] (1 or 2).
    phones: Vec<usize>,
    users: Vec<&'static str>,
    anchor: &'static str,
    variant: u8,
    acts: Vec<Act>,
}

/// The JSON lines of a world, and what the test knows about them.
#[derive(Clone, Debug)]
struct Generated {
    lines: Vec<String>,
    /// Outbound message ids with a `delivered` or `read` status.
    delivered: BTreeSet<String>,
    /// Every outbound message id.
    outbound: BTreeSet<String>,
}

impl World {
    fn anchor(&self) -> Instant {
        LocalDate::parse(self.anchor).unwrap().0 as i64 * DAY
    }

    fn who(&self, (b, p, u): &(Index, Index, Index)) -> (&'static str, String, &'static str) {
        let w = self.wabas[b.index(self.wabas.len())];
        let phone = format!("{}-pn{}", WABAS[w].0, p.index(self.phones[w]) + 1);
        (WABAS[w].0, phone, self.users[u.index(self.users.len())])
    }

    fn generate(&self) -> Generated {
        let anchor = self.anchor();
        let mut lines = Vec::new();
        let mut delivered = BTreeSet::new();
        let mut outbound = BTreeSet::new();
        for (n, act) in self.acts.iter().enumerate() {
            match act {
                Act::Inbound {
                    who,
                    t,
                    referral,
                    platform,
                } => {
                    let (business, phone, user) = self.who(who);
                    let mut v = json!({
                        "type": "inbound", "id": format!("in.{n}"), "at": stamp(n, anchor + t),
                        "business": business, "phone": phone, "user": user,
                    });
                    if *referral {
                        v["referral"] = json!({"source_type": "ad", "source_id": "ad-1"});
                    }
                    if let Some(p) = platform {
                        v["platform"] = json!(p);
                    }
                    lines.push(v.to_string());
                }
                Act::Outbound {
                    who,
                    t,
                    kind,
                    statuses,
                } => {
                    let (business, phone, user) = self.who(who);
                    let id = format!("out.{n}");
                    let at = anchor + t;
                    let mut v = json!({
                        "type": "outbound", "id": id, "at": stamp(n, at),
                        "business": business, "phone": phone, "user": user,
                    });
                    match kind {
                        Kind::Template(c) => {
                            v["template"] = json!({"name": format!("tpl-{c}"), "category": c})
                        }
                        Kind::FreeForm => {}
                        Kind::Agent(tokens) => v["agent"] = json!({ "tokens": tokens }),
                    }
                    lines.push(v.to_string());
                    for (k, &(status, offset)) in statuses.iter().enumerate() {
                        if matches!(status, St::Delivered | St::Read) {
                            delivered.insert(id.clone());
                        }
                        lines.push(
                            json!({
                                "type": "status", "id": id, "at": stamp(n + k + 1, at + offset),
                                "status": status.as_str(),
                            })
                            .to_string(),
                        );
                    }
                    outbound.insert(id);
                }
                Act::Burst {
                    who,
                    t,
                    kind,
                    n: count,
                    gap,
                    delay,
                    reply,
                } => {
                    let (business, phone, _) = self.who(who);
                    let first = who.2.index(self.users.len());
                    for i in 0..*count {
                        let user = self.users[(first + i) % self.users.len()];
                        let at = anchor + t + i as i64 * gap;
                        if *reply {
                            lines.push(
                                json!({
                                    "type": "inbound", "id": format!("in.{n}.{i}"),
                                    "at": stamp(n + i, at - 60), "business": business,
                                    "phone": phone, "user": user,
                                })
                                .to_string(),
                            );
                        }
                        let id = format!("out.{n}.{i}");
                        let mut v = json!({
                            "type": "outbound", "id": id, "at": stamp(n + i + 1, at),
                            "business": business, "phone": phone, "user": user,
                        });
                        match kind {
                            Kind::Template(c) => {
                                v["template"] = json!({"name": format!("tpl-{c}"), "category": c})
                            }
                            Kind::FreeForm => {}
                            Kind::Agent(tokens) => v["agent"] = json!({ "tokens": tokens }),
                        }
                        lines.push(v.to_string());
                        lines.push(
                            json!({
                                "type": "status", "id": id, "at": stamp(n + i + 2, at + delay),
                                "status": if i % 2 == 0 { "delivered" } else { "read" },
                            })
                            .to_string(),
                        );
                        delivered.insert(id.clone());
                        outbound.insert(id);
                    }
                }
            }
        }
        Generated {
            lines,
            delivered,
            outbound,
        }
    }
}

/// Instants in the three forms the input accepts: RFC 3339, Unix seconds, Unix seconds as text.
fn stamp(n: usize, at: Instant) -> Value {
    match n % 3 {
        0 => json!(format_instant(at)),
        1 => json!(at),
        _ => json!(at.to_string()),
    }
}

fn offset() -> impl Strategy<Value = i64> {
    prop_oneof![
        4 => -40 * HOUR..56 * HOUR,
        1 => -3 * DAY..5 * DAY,
    ]
}

fn who() -> impl Strategy<Value = (Index, Index, Index)> {
    (any::<Index>(), any::<Index>(), any::<Index>())
}

fn status() -> impl Strategy<Value = (St, i64)> {
    (
        prop_oneof![
            2 => Just(St::Sent),
            3 => Just(St::Delivered),
            2 => Just(St::Read),
            1 => Just(St::Failed),
        ],
        prop_oneof![
            1 => -900i64..0,
            4 => 0i64..120,
            2 => 120..6 * HOUR,
            1 => 6 * HOUR..30 * HOUR,
        ],
    )
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        4 => select(
            &[
                "marketing",
                "utility",
                "utility",
                "authentication",
                "authentication",
                "marketing_lite",
            ][..]
        )
        .prop_map(Kind::Template),
        2 => Just(Kind::FreeForm),
        1 => (1u64..60_000).prop_map(Kind::Agent),
    ]
}

fn act() -> impl Strategy<Value = Act> {
    let inbound = (
        who(),
        offset(),
        prop::bool::weighted(0.3),
        prop::option::of(select(&["android", "ios", "web"][..])),
    )
        .prop_map(|(who, t, referral, platform)| Act::Inbound {
            who,
            t,
            referral,
            platform,
        });
    let outbound = (
        who(),
        offset(),
        kind(),
        prop::collection::vec(status(), 0..4),
    )
        .prop_map(|(who, t, kind, statuses)| Act::Outbound {
            who,
            t,
            kind,
            statuses,
        });
    let burst = (
        who(),
        offset(),
        kind(),
        2usize..8,
        prop_oneof![60i64..600, 600..6 * HOUR],
        1i64..300,
        any::<bool>(),
    )
        .prop_map(|(who, t, kind, n, gap, delay, reply)| Act::Burst {
            who,
            t,
            kind,
            n,
            gap,
            delay,
            reply,
        });
    prop_oneof![2 => inbound, 3 => outbound, 1 => burst]
}

fn world() -> impl Strategy<Value = World> {
    (
        subsequence(vec![0usize, 1, 2], 1..=3),
        prop::collection::vec(1usize..=2, 3),
        subsequence(USERS.to_vec(), 1..=6),
        select(&ANCHORS[..]),
        0..RULE_VARIANTS,
        prop::collection::vec(act(), 1..=32),
    )
        .prop_map(|(wabas, phones, users, anchor, variant, acts)| World {
            wabas,
            phones,
            users,
            anchor,
            variant,
            acts,
        })
}

// ---------------------------------------------------------------------------------------------
// Rating and reading a bill
// ---------------------------------------------------------------------------------------------

fn rate(setup: Setup, lines: &[String]) -> Bill {
    let mut rater = Rater::new(setup);
    for line in lines {
        let mut events = Vec::new();
        parse_line(line.as_bytes(), &mut |e| events.push(e))
            .unwrap_or_else(|e| panic!("generated line rejected: {line}: {e}"));
        rater
            .push_all(events)
            .unwrap_or_else(|e| panic!("generated line rejected: {line}: {e}"));
    }
    rater.finish()
}

fn dump(lines: &[String]) -> String {
    lines.join("\n")
}

fn calendar<'a>(bill: &'a Bill, business: &str) -> &'a Calendar {
    &bill
        .setup()
        .businesses
        .iter()
        .find(|b| b.id == business)
        .expect("business of the bill")
        .calendar
}

fn portfolio<'a>(bill: &'a Bill, business: &str) -> &'a str {
    &bill
        .setup()
        .businesses
        .iter()
        .find(|b| b.id == business)
        .expect("business of the bill")
        .portfolio
}

/// Local month and era of an instant for a WABA (1-3).
fn local(bill: &Bill, business: &str, at: Instant) -> (Month, Era) {
    let date = calendar(bill, business).date(at);
    (date.month(), Era::of(date))
}

/// A canonical rendering of one line (no input-order-dependent indices).
fn render_line(_bill: &Bill, v: &MessageView<'_>) -> String {
    let l = v.line;
    format!(
        "message {} business={} phone={} user={} group={:?} currency={} sent={} delivered={:?} \
             conversation={:?} meta={:?} at={} market={:?} country={:?} category={} type={} \
             model={} amount={} rate={:?} band={} rule={} note={:?}",
        v.id,
        v.business,
        v.phone,
        v.user,
        v.group,
        v.currency,
        v.sent_at,
        v.delivered_at,
        v.conversation,
        v.meta,
        l.at,
        l.market.map(|m| m.name()),
        l.country.map(|c| c.as_str().to_string()),
        l.category,
        l.pricing_type,
        l.model.as_str(),
        l.amount.normalize(),
        l.rate.map(|r| r.normalize()),
        l.band,
        l.rule,
        l.note,
    )
}

/// A canonical rendering of everything a bill says (no input-order-dependent indices).
fn render(bill: &Bill) -> Vec<String> {
    let mut out: Vec<String> = bill.messages().map(|v| render_line(bill, &v)).collect();
    for c in bill.conversation_views() {
        out.push(format!(
            "conversation {} business={} phone={} user={} category={} model={} opened_by={} \
             opened_at={} expires_at={} charged={} amount={}",
            c.id,
            c.business,
            c.phone,
            c.user,
            c.category,
            c.model.as_str(),
            c.opened_by,
            c.opened_at,
            c.expires_at,
            c.charged,
            c.amount.normalize(),
        ));
    }
    for t in bill.totals() {
        out.push(format!(
            "total {} {} amount={} messages={} charged={} unrated={} conversations={}",
            t.business,
            t.currency,
            t.amount.normalize(),
            t.messages,
            t.charged_messages,
            t.unrated_messages,
            t.conversations_opened
        ));
    }
    for b in bill.breakdown() {
        out.push(format!(
            "breakdown {} {} {} {} amount={} messages={} charged={}",
            b.business,
            b.currency,
            b.market,
            b.category,
            b.amount.normalize(),
            b.messages,
            b.charged_messages
        ));
    }
    out
}

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 128,
        // Counterexamples are kept as explicit regression tests below, not in files.
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// The instant at which the engine judged whether a line falls into a conversation: the send for
/// per-message windows (D-5), else the window start of B-2/C-2 (delivery, or the `sent` status
/// when `conversation_start = "sent"`).
fn judged_at(bill: &Bill, v: &MessageView<'_>) -> Instant {
    let delivered = v
        .delivered_at
        .expect("lines in a conversation are delivered");
    if v.line.model == PricingModel::Pmp {
        v.sent_at
    } else if bill.setup().rules.conversation_start == ConversationStart::Sent {
        v.sent_at.min(delivered)
    } else {
        delivered
    }
}

/// The conversation key of a view (spec §11 #14: per number × user, or per WABA × user).
fn conversation_key(bill: &Bill, c: &ConversationView<'_>) -> (String, String, String) {
    match bill.setup().rules.conversation_scope {
        ConversationScope::PhoneNumber => (c.business.into(), c.phone.into(), c.user.into()),
        ConversationScope::Business => (c.business.into(), String::new(), c.user.into()),
    }
}

fn overlap(a: &ConversationView<'_>, b: &ConversationView<'_>) -> bool {
    a.opened_at < b.expires_at && b.opened_at < a.expires_at
}

/// Era-C conversation slot (C-2: marketing and marketing lite share one).
fn slot(category: BilledCategory) -> u8 {
    match category {
        BilledCategory::Marketing | BilledCategory::MarketingLite => 0,
        BilledCategory::Utility => 1,
        BilledCategory::Authentication | BilledCategory::AuthenticationInternational => 2,
        BilledCategory::Service => 3,
        _ => 4,
    }
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// Rule 1-2 (and B-8, D-7): a message without a `delivered` or `read` status is never
    /// charged: pricing type `not_delivered`, not `charged()`, amount 0. B-9 is off in every rule
    /// variant used here (the default).
    #[test]
    fn rule_1_2_undelivered_is_never_charged(w in world()) {
        let g = w.generate();
        let bill = rate(setup(w.variant), &g.lines);
        let mut seen = BTreeSet::new();
        for v in bill.messages() {
            seen.insert(v.id.to_string());
            let delivered = g.delivered.contains(v.id);
            prop_assert_eq!(v.delivered_at.is_some(), delivered, "{}: delivered_at", v.id);
            if !delivered {
                prop_assert!(
                    v.line.pricing_type == PricingType::NotDelivered
                        && !v.line.charged()
                        && v.line.amount.is_zero(),
                    "undelivered {} was {} {} ({})\n{}",
                    v.id, v.line.pricing_type, v.line.amount, bill.explain(v.line), dump(&g.lines)
                );
            } else {
                prop_assert_ne!(v.line.pricing_type, PricingType::NotDelivered, "{}", v.id);
            }
        }
        prop_assert_eq!(seen, g.outbound, "one line per outbound message");
    }

    /// Rules 1-2 … V-6 as a whole, and the engine contract (§1, issue contract): the bill
    /// depends only on the events' own timestamps and ids, never on their order in the input or
    /// on duplicated lines (dedupe of inbound, outbound and statuses).
    #[test]
    fn order_and_duplicates_do_not_change_the_bill(
        (w, lines, shuffled) in world().prop_flat_map(|w| {
            let lines = w.generate().lines;
            let n = lines.len();
            (Just(w), Just(lines), prop::collection::vec(any::<bool>(), n))
        }).prop_flat_map(|(w, lines, dup)| {
            let mut with_dups = lines.clone();
            with_dups.extend(lines.iter().zip(&dup).filter(|(_, d)| **d).map(|(l, _)| l.clone()));
            (Just(w), Just(lines), Just(with_dups).prop_shuffle())
        })
    ) {
        let a = render(&rate(setup(w.variant), &lines));
        let b = render(&rate(setup(w.variant), &shuffled));
        if a != b {
            let diff: Vec<String> = a
                .iter()
                .zip(&b)
                .filter(|(x, y)| x != y)
                .map(|(x, y)| format!("in order: {x}\nshuffled: {y}"))
                .take(6)
                .collect();
            return Err(TestCaseError::fail(format!(
                "bills differ (rule variant {}; {} vs {} rendered lines):\n{}\n--- input:\n{}\n--- shuffled:\n{}",
                w.variant, a.len(), b.len(), diff.join("\n"), dump(&lines), dump(&shuffled)
            )));
        }
    }

    /// The live service's way of rating (`Rater::finish_for`): pricing each delivered message on
    /// its own, in the order the batch prices them, with the monthly counters carried from one
    /// message to the next (B-5, C-7, D-19, V-1 … V-6), gives every message exactly the line the
    /// batch bill gives it.
    #[test]
    fn one_message_at_a_time_with_carried_counters_equals_the_batch(w in world()) {
        let g = w.generate();
        let batch = rate(setup(w.variant), &g.lines);
        let mut order: Vec<(Instant, String, String)> = batch
            .messages()
            .filter(|v| v.delivered_at.is_some())
            .map(|v| (v.line.at, v.id.to_string(), render_line(&batch, &v)))
            .collect();
        order.sort();
        let mut counts: std::collections::HashMap<CounterKey, u64> = Default::default();
        for (_, id, expected) in order {
            let mut rater = Rater::new(setup(w.variant));
            for line in &g.lines {
                parse_line(line.as_bytes(), &mut |e| rater.push(e).expect("generated line"))
                    .expect("generated line");
            }
            let (bill, counted) = rater.finish_for(&[&id], &counts);
            let lines: Vec<String> = bill.messages().map(|v| render_line(&bill, &v)).collect();
            prop_assert_eq!(lines.len(), 1, "{}: one line", id);
            prop_assert_eq!(&lines[0], &expected, "{}\n{}", id, dump(&g.lines));
            for key in counted {
                *counts.entry(key).or_default() += 1;
            }
        }
    }

    /// Live pricing's bounded look-back ([`lookback`]): a service keeps each conversation key's
    /// events and rates a delivered message over only the events `lookback` picks (its own, the
    /// user messages of the 24 h before its window is judged and their duplicates, template
    /// changes: 1-6, D-2, D-6, D-16 under D-1), or over the whole key when entry points (C-9,
    /// C-10, D-5), conversation eras (B-1 … C-11, D-8) or groups (D-10) are in play. Either way
    /// every message gets exactly the line and the counters that rating it over the whole input
    /// gives — with the input shuffled, some lines duplicated, and some statuses written as
    /// webhook statuses (WABA, number, recipient, Meta's category) whose outbound record is
    /// missing (W-1, W-4).
    #[test]
    fn lookback_over_a_key_rates_like_the_whole_history((w, seed) in (world(), any::<u64>())) {
        let g = w.generate();
        let events = live_events(&g.lines, seed);
        let setup = std::sync::Arc::new(setup(w.variant));
        let counts: std::collections::HashMap<CounterKey, u64> = Default::default();
        let price = |events: &mut dyn Iterator<Item = &Event<'static>>, id: &str| {
            let mut rater = Rater::new(setup.clone());
            for e in events {
                rater.push_ref(e).expect("generated event");
            }
            let (bill, counted) = rater.finish_for(&[id], &counts);
            let lines: Vec<String> = bill
                .messages()
                .map(|v| format!("{} | {}", render_line(&bill, &v), bill.explain(v.line)))
                .collect();
            (lines, counted)
        };
        for (key, mine) in book_keys(&events) {
            let targets: BTreeSet<&str> = mine
                .iter()
                .filter_map(|e| match e {
                    Event::Outbound(o) => Some(&*o.id),
                    Event::Status(s) => Some(&*s.id),
                    _ => None,
                })
                .collect();
            for id in targets {
                let whole = price(&mut events.iter(), id);
                let part = match lookback(mine.iter().copied(), id) {
                    Some(picked) => price(&mut picked.iter().map(|&i| mine[i]), id),
                    None => price(&mut mine.iter().copied(), id),
                };
                prop_assert_eq!(
                    &part, &whole, "{} of key {:?}, picked {:?}\n{}",
                    id, key, lookback(mine.iter().copied(), id), dump(&g.lines)
                );
                // Without the records and statuses of other messages (`may_concern`), the
                // same events are picked.
                let near: Vec<&Event<'static>> = mine
                    .iter()
                    .copied()
                    .filter(|e| may_concern(message_tail(e), id_tail(id)))
                    .collect();
                let picks = |list: &[&Event<'static>]| {
                    lookback(list.iter().copied(), id)
                        .map(|p| p.iter().map(|&i| list[i] as *const Event).collect::<Vec<_>>())
                };
                prop_assert_eq!(picks(&near), picks(&mine), "{} of key {:?}", id, key);
            }
        }
    }

    /// bill.rs invariant (totals are the exact sum of their lines), rules 1-2 and RC-5: per
    /// business and currency, `totals().amount` is the sum of the line amounts, `messages` the
    /// line count, `charged_messages` the charged lines, `conversations_opened` the
    /// conversations; `breakdown()` sums to the same; no amount is negative, free lines cost 0,
    /// and with cards covering every market and era no charged line is unrated.
    #[test]
    fn totals_equal_the_sum_of_the_lines(w in world()) {
        let g = w.generate();
        let bill = rate(setup(w.variant), &g.lines);
        #[derive(Default, Debug, PartialEq)]
        struct Sum { amount: Decimal, messages: u64, charged: u64, unrated: u64, conversations: u64 }
        let mut want: BTreeMap<(String, String), Sum> = BTreeMap::new();
        for v in bill.messages() {
            let l = v.line;
            prop_assert!(l.amount >= Decimal::ZERO, "{}: negative amount {}", v.id, l.amount);
            if !l.charged() {
                prop_assert!(l.amount.is_zero(), "{}: free line costs {}", v.id, l.amount);
            }
            prop_assert_ne!(
                l.pricing_type, PricingType::Unrated,
                "{}: unrated: {}\n{}", v.id, bill.explain(l), dump(&g.lines)
            );
            if l.pricing_type == PricingType::Regular {
                prop_assert!(l.rate.is_some(), "{}: regular without a rate", v.id);
            }
            let s = want.entry((v.business.into(), v.currency.into())).or_default();
            s.amount += l.amount;
            s.messages += 1;
            s.charged += l.charged() as u64;
            s.unrated += (l.pricing_type == PricingType::Unrated) as u64;
        }
        for c in bill.conversation_views() {
            want.entry((c.business.into(), "USD".into())).or_default().conversations += 1;
        }
        let got: BTreeMap<(String, String), Sum> = bill
            .totals()
            .into_iter()
            .map(|t| {
                ((t.business, t.currency), Sum {
                    amount: t.amount,
                    messages: t.messages,
                    charged: t.charged_messages,
                    unrated: t.unrated_messages,
                    conversations: t.conversations_opened,
                })
            })
            .collect();
        prop_assert_eq!(&got, &want);
        let mut by_breakdown: BTreeMap<(String, String), Sum> = BTreeMap::new();
        for b in bill.breakdown() {
            prop_assert!(b.amount >= Decimal::ZERO);
            let s = by_breakdown.entry((b.business, b.currency)).or_default();
            s.amount += b.amount;
            s.messages += b.messages;
            s.charged += b.charged_messages;
        }
        for (k, s) in &want {
            let b = by_breakdown.remove(k).unwrap_or_default();
            prop_assert_eq!(
                (b.amount, b.messages, b.charged),
                (s.amount, s.messages, s.charged),
                "breakdown of {:?}", k
            );
        }
        prop_assert!(by_breakdown.values().all(|s| s.messages == 0), "breakdown of an unknown business");
    }

    /// B-5, C-7, D-19: per WABA × local month at most `free_conversations_per_month` era-B
    /// conversations (either type) and, separately, era-C service conversations are `free_tier`;
    /// per business number × local month at most `free_service_messages_per_number` service
    /// messages (from 2026-10-01). The allowance is used first: a charged line of a counter comes
    /// only after the allowance of its month is exhausted, and never before a free one.
    #[test]
    fn rules_b_5_c_7_d_19_free_tiers_never_exceed_their_allowance(w in world()) {
        let g = w.generate();
        let bill = rate(setup(w.variant), &g.lines);
        let rules = &bill.setup().rules;
        // (counter, WABA or number, month) → (free instants, charged instants).
        type Lines = (Vec<Instant>, Vec<Instant>);
        let mut counters: BTreeMap<(&str, String, Month), Lines> = BTreeMap::new();
        for v in bill.messages() {
            let l = v.line;
            let (month, era) = local(&bill, v.business, l.at);
            let (counter, owner) = match l.rule {
                "B-3" | "B-9" => ("B-5", v.business.to_string()),
                "C-7" => ("C-7", v.business.to_string()),
                "D-15" => ("D-19", v.phone.to_string()),
                _ => {
                    prop_assert_ne!(
                        l.pricing_type, PricingType::FreeTier,
                        "{}: free tier under rule {}", v.id, l.rule
                    );
                    continue;
                }
            };
            let want_era = match counter {
                "B-5" => Era::InitiatedConversations,
                "C-7" => Era::CategoryConversations,
                _ => Era::PerMessage,
            };
            prop_assert_eq!(era, want_era, "{}: rule {} outside its era", v.id, l.rule);
            let e = counters.entry((counter, owner, month)).or_default();
            match l.pricing_type {
                PricingType::FreeTier => e.0.push(l.at),
                _ if l.charged() => e.1.push(l.at),
                other => {
                    return Err(TestCaseError::fail(format!(
                        "{}: rule {} with pricing type {other}", v.id, l.rule
                    )))
                }
            }
        }
        for ((counter, owner, month), (free, charged)) in &counters {
            let limit = match *counter {
                "D-19" => rules.free_service_messages_per_number,
                _ => rules.free_conversations_per_month,
            } as usize;
            prop_assert!(
                free.len() <= limit,
                "{counter}: {owner} {month}: {} free, allowance {limit}\n{}", free.len(), dump(&g.lines)
            );
            if !charged.is_empty() {
                prop_assert_eq!(
                    free.len(), limit,
                    "{}: {} {}: charged before the allowance ran out\n{}", counter, owner, month, dump(&g.lines)
                );
                let last_free = free.iter().max().copied().unwrap_or(Instant::MIN);
                let first_charged = charged.iter().min().copied().unwrap();
                prop_assert!(
                    last_free <= first_charged,
                    "{counter}: {owner} {month}: a free line at {last_free} after a charged one at {first_charged}\n{}",
                    dump(&g.lines)
                );
            }
        }
    }

    /// V-1 … V-6: per portfolio × market × tier counter (utility; authentication shared with
    /// authentication-international) × the WABA's local month, the charged per-message lines get
    /// bands 1, 1, 2, 2, 3, … in time order: a later message never gets a lower band than an
    /// earlier one (graduated, V-3), only charged messages count (V-2), and the rate is the
    /// band's rate.
    #[test]
    fn rule_v_3_graduated_tiers_are_monotone(w in world()) {
        let g = w.generate();
        let bill = rate(setup(w.variant), &g.lines);
        let book = &bill.setup().book;
        // (portfolio, market, tier counter, local month) → (delivered at, band, message id).
        type Group = (String, String, u8, Month);
        let mut groups: BTreeMap<Group, Vec<(Instant, u8, String)>> = BTreeMap::new();
        for v in bill.messages() {
            let l = v.line;
            let tiered = match l.category {
                BilledCategory::Utility => Some(0),
                BilledCategory::Authentication | BilledCategory::AuthenticationInternational => Some(1),
                _ => None,
            };
            let (month, era) = local(&bill, v.business, l.at);
            let Some(counter) = tiered.filter(|_| l.charged() && era == Era::PerMessage) else {
                prop_assert_eq!(l.band, 0, "{}: band on an untiered line ({})", v.id, bill.explain(l));
                continue;
            };
            prop_assert_eq!(l.model, PricingModel::Pmp);
            let market = l.market.expect("market of a charged line");
            prop_assert!(l.band >= 1, "{}: no band ({})", v.id, bill.explain(l));
            let date = calendar(&bill, v.business).date(l.at);
            let category = if l.category == BilledCategory::AuthenticationInternational {
                TierCategory::AuthenticationInternational
            } else if counter == 0 {
                TierCategory::Utility
            } else {
                TierCategory::Authentication
            };
            let bands = book.tier_card(v.currency, date).expect("tier card").bands(market, category);
            prop_assert_eq!(
                l.rate, Some(bands[l.band as usize - 1].rate),
                "{}: rate is not its band's ({})", v.id, bill.explain(l)
            );
            groups
                .entry((portfolio(&bill, v.business).into(), market.name().into(), counter, month))
                .or_default()
                .push((l.at, l.band, v.id.to_string()));
        }
        for (key, mut lines) in groups {
            lines.sort();
            for pair in lines.windows(2) {
                let ((t1, b1, id1), (t2, b2, id2)) = (&pair[0], &pair[1]);
                prop_assert!(
                    t1 == t2 || b1 <= b2,
                    "{:?}: {id2} at {t2} has band {b2}, below {id1} at {t1} with band {b1}\n{}",
                    key, dump(&g.lines)
                );
            }
            let mut got: Vec<u8> = lines.iter().map(|l| l.1).collect();
            got.sort();
            let want: Vec<u8> = (1..=lines.len()).map(expected_band).collect();
            prop_assert_eq!(got, want, "{:?}: bands of {:?}\n{}", key, lines, dump(&g.lines));
        }
    }

    /// B-1, B-2, B-4, C-2, C-3, C-10: every conversation is opened by exactly one delivered
    /// message (whose line belongs to it, at its start), conversation ids are unique, every line
    /// in a conversation refers to an existing one and falls inside its window; in era B no two
    /// conversations of one key overlap (B-1); in era C no two conversations of one category of
    /// one business number × user overlap (C-2) and an entry-point conversation overlaps no other
    /// (C-10).
    #[test]
    fn rules_b_1_c_2_conversations_are_well_formed(w in world()) {
        let g = w.generate();
        let bill = rate(setup(w.variant), &g.lines);
        let views: Vec<MessageView<'_>> = bill.messages().collect();
        let by_id: BTreeMap<&str, &MessageView<'_>> = views.iter().map(|v| (v.id, v)).collect();
        prop_assert_eq!(by_id.len(), views.len(), "one line per message");
        let convs: Vec<ConversationView<'_>> = bill.conversation_views().collect();
        let ids: BTreeMap<&str, &ConversationView<'_>> =
            convs.iter().map(|c| (c.id.as_str(), c)).collect();
        prop_assert_eq!(ids.len(), convs.len(), "conversation ids are unique");
        for c in &convs {
            let Some(opener) = by_id.get(c.opened_by) else {
                return Err(TestCaseError::fail(format!("{}: opener {} has no line", c.id, c.opened_by)));
            };
            prop_assert!(opener.delivered_at.is_some(), "{}: opened by undelivered {}", c.id, c.opened_by);
            prop_assert_eq!(opener.conversation.as_deref(), Some(c.id.as_str()), "{}: opener's line", c.id);
            prop_assert_eq!(opener.business, c.business);
            prop_assert_eq!(opener.user, c.user);
            prop_assert_eq!(judged_at(&bill, opener), c.opened_at, "{}: start", c.id);
            prop_assert!(c.opened_at <= c.expires_at, "{}: ends before it starts", c.id);
        }
        for v in &views {
            let Some(cid) = &v.conversation else { continue };
            let Some(c) = ids.get(cid.as_str()) else {
                return Err(TestCaseError::fail(format!("{}: unknown conversation {cid}", v.id)));
            };
            prop_assert!(v.delivered_at.is_some(), "{}: undelivered line in {}", v.id, cid);
            prop_assert_eq!(v.business, c.business);
            prop_assert_eq!(v.user, c.user);
            if v.id == c.opened_by {
                continue;
            }
            let t = judged_at(&bill, v);
            // A conversation closed early by an entry point (C-10) ends when that one starts; a
            // line judged at that very instant may have been decided before it opened.
            let cut_at_t = convs.iter().any(|e| {
                e.category == BilledCategory::ReferralConversion
                    && e.opened_at == t
                    && conversation_key(&bill, e) == conversation_key(&bill, c)
            });
            prop_assert!(
                c.opened_at <= t && (t < c.expires_at || (t == c.expires_at && cut_at_t)),
                "{} judged at {t} is outside {cid} [{}, {})\n{}",
                v.id, c.opened_at, c.expires_at, dump(&g.lines)
            );
        }
        // Overlaps, per key and era (the era of the opener's delivery date, 1-3).
        let era_of = |c: &ConversationView<'_>| {
            let delivered = by_id[c.opened_by].delivered_at.unwrap();
            local(&bill, c.business, delivered).1
        };
        for (i, a) in convs.iter().enumerate() {
            for b in &convs[i + 1..] {
                if conversation_key(&bill, a) != conversation_key(&bill, b)
                    || era_of(a) != era_of(b)
                    || !overlap(a, b)
                {
                    continue;
                }
                let what = format!(
                    "{} {} [{}, {}) overlaps {} {} [{}, {})\n{}",
                    a.id, a.category, a.opened_at, a.expires_at,
                    b.id, b.category, b.opened_at, b.expires_at, dump(&g.lines)
                );
                match era_of(a) {
                    Era::InitiatedConversations => {
                        return Err(TestCaseError::fail(format!("B-1: {what}")));
                    }
                    Era::CategoryConversations => {
                        prop_assert!(
                            a.category != BilledCategory::ReferralConversion
                                && b.category != BilledCategory::ReferralConversion,
                            "C-10: {}", what
                        );
                        prop_assert_ne!(slot(a.category), slot(b.category), "C-2: {}", what);
                    }
                    _ => {}
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing never panics
// ---------------------------------------------------------------------------------------------

const KEYS: [&str; 48] = [
    "type",
    "id",
    "at",
    "business",
    "phone",
    "user",
    "referral",
    "platform",
    "template",
    "name",
    "category",
    "status",
    "recipient",
    "agent",
    "tokens",
    "group",
    "members",
    "object",
    "entry",
    "changes",
    "field",
    "value",
    "metadata",
    "phone_number_id",
    "messages",
    "statuses",
    "from",
    "timestamp",
    "recipient_id",
    "pricing",
    "billable",
    "pricing_model",
    "time",
    "group_id",
    "message_template_name",
    "new_category",
    "conversation",
    "origin",
    "errors",
    "contacts",
    "event",
    "volume_tier_info",
    "pricing_category",
    "tier",
    "auth_international_rate_eligibility",
    "start_time",
    "exception_countries",
    "country_code",
];

const WORDS: [&str; 44] = [
    "inbound",
    "outbound",
    "status",
    "template_category",
    "account_update",
    "VOLUME_BASED_PRICING_TIER_UPDATE",
    "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE",
    "whatsapp_business_account",
    "messages",
    "template_category_update",
    "account_update",
    "sent",
    "delivered",
    "read",
    "played",
    "failed",
    "deleted",
    "warning",
    "marketing",
    "utility",
    "authentication",
    "authentication-international",
    "marketing_lite",
    "service",
    "android",
    "ios",
    "web",
    "desktop",
    "CBP",
    "PMP",
    "NBP",
    "regular",
    "free_customer_service",
    "other",
    "2023-06-01T00:00:00Z",
    "2024-02-29T23:59:59+05:30",
    "1750030073",
    "99999999999999999999",
    "-1",
    "",
    "waba-utc",
    "waba-in-pn1",
    "5511987650001",
    "\u{0}é💥",
];

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        select(&WORDS[..]).prop_map(Value::from),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((select(&KEYS[..]), inner), 0..8).prop_map(|kv| {
                Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())
            }),
        ]
    })
}

/// JSON objects shaped like events and webhooks with values of any type, and generated event
/// lines as they are or with one field replaced or removed.
fn json_object() -> impl Strategy<Value = Value> {
    let event = (
        prop::option::of(select(&WORDS[..])),
        prop::collection::vec((select(&KEYS[..]), json_value()), 0..10),
    )
        .prop_map(|(kind, fields)| {
            let mut o: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            if let Some(k) = kind {
                let key = if k == "whatsapp_business_account" {
                    "object"
                } else {
                    "type"
                };
                o.insert(key.into(), k.into());
            }
            Value::Object(o)
        });
    // Up to three edits: set an existing field or any known key to a value, or remove a field.
    let edit = (
        any::<Index>(),
        prop::option::of(select(&KEYS[..17])),
        prop::option::of(prop_oneof![
            2 => Just(Value::Null),
            2 => select(&WORDS[..]).prop_map(Value::from),
            1 => any::<i64>().prop_map(Value::from),
            2 => json_value(),
        ]),
    );
    // A generated line: from a world, or any event as `to_json_line` writes it.
    let generated = prop_oneof![
        2 => (world(), any::<Index>()).prop_map(|(w, line)| {
            let lines = w.generate().lines;
            lines[line.index(lines.len())].clone()
        }),
        1 => any_event().prop_map(|e| to_json_line(&e).unwrap()),
    ];
    let mutated = (generated, prop::collection::vec(edit, 0..3)).prop_map(|(line, edits)| {
        let mut v: Value = serde_json::from_str(&line).unwrap();
        let o = v.as_object_mut().unwrap();
        for (field, known, value) in edits {
            let key = match known {
                Some(k) => k.to_string(),
                None if o.is_empty() => continue,
                None => o.keys().nth(field.index(o.len())).unwrap().clone(),
            };
            match value {
                Some(x) => {
                    o.insert(key, x);
                }
                None => {
                    o.remove(&key);
                }
            }
        }
        v
    });
    prop_oneof![1 => event, 2 => mutated]
}

/// JSON-ish text: [`json_object`]s, some cut or spliced with junk.
fn json_ish() -> impl Strategy<Value = String> {
    let text = json_object().prop_map(|v| v.to_string());
    (text, any::<Index>(), prop::option::of((0u8..3, ".{0,6}"))).prop_map(|(s, at, edit)| {
        let Some((how, junk)) = edit else { return s };
        let mut cut = at.index(s.len() + 1);
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        match how {
            0 => s[..cut].to_string(),
            1 => format!("{}{junk}{}", &s[..cut], &s[cut..]),
            _ => format!("{}{junk}", &s[..cut]),
        }
    })
}

/// A JSON object written from its fields (a key may repeat), compact or with spaces and line
/// breaks; with `escape`, every character of every string and key is written as a `\uXXXX`
/// escape: the same JSON, but text the fast scanner of flat events hands to serde.
fn object_text(fields: &[(String, Value)], escape: bool, pretty: bool) -> String {
    fn string(s: &str, escape: bool, out: &mut String) {
        if !escape {
            out.push_str(&Value::from(s).to_string());
            return;
        }
        out.push('"');
        for unit in s.encode_utf16() {
            out.push_str(&format!("\\u{unit:04x}"));
        }
        out.push('"');
    }
    fn value(v: &Value, escape: bool, out: &mut String) {
        match v {
            Value::String(s) => string(s, escape, out),
            Value::Array(items) => {
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    value(x, escape, out);
                }
                out.push(']');
            }
            Value::Object(fields) => {
                out.push('{');
                for (i, (k, x)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    string(k, escape, out);
                    out.push(':');
                    value(x, escape, out);
                }
                out.push('}');
            }
            other => out.push_str(&other.to_string()),
        }
    }
    let (open, sep, colon, close) = if pretty {
        ("{\n  ", ",\n  ", ": ", "\n}")
    } else {
        ("{", ",", ":", "}")
    };
    let mut out = String::from(open);
    for (i, (k, v)) in fields.iter().enumerate() {
        if i > 0 {
            out.push_str(sep);
        }
        string(k, escape, &mut out);
        out.push_str(colon);
        value(v, escape, &mut out);
    }
    out.push_str(close);
    out
}

/// Everything `parse_line` makes of a line, as text (`Event` borrows from the line); serde's
/// positions (`at line 1 column 8`) left out of errors, since escapes move them.
fn parsed(line: &str) -> String {
    let mut events = Vec::new();
    let result = parse_line(line.as_bytes(), &mut |e| events.push(format!("{e:?}")));
    let result = result.map_err(|mut e| {
        if let Some(p) = e.message.find(" at line ") {
            e.message.truncate(p);
        }
        e
    });
    format!("{result:?} {events:?}")
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    /// Input contract (input.rs): `parse_line` returns `Ok` or an `InputError` for arbitrary
    /// bytes, never panics, and emits nothing from a line it rejects.
    #[test]
    fn parse_line_never_panics_on_arbitrary_bytes(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let mut n = 0;
        if parse_line(&bytes, &mut |_| n += 1).is_err() {
            prop_assert_eq!(n, 0);
        }
    }

    /// Input contract (input.rs): `parse_line` never panics on JSON-ish text (event- and
    /// webhook-shaped objects with values of any type, broken or spliced generated lines), and
    /// emits nothing from a line it rejects.
    #[test]
    fn parse_line_never_panics_on_json_ish_text(text in json_ish()) {
        let mut n = 0;
        if parse_line(text.as_bytes(), &mut |_| n += 1).is_err() {
            prop_assert_eq!(n, 0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, failure_persistence: None, ..ProptestConfig::default() })]

    /// Input contract (input.rs, fast_json.rs): the fast scanner of flat event lines reads a line
    /// exactly as serde does. The same JSON (some with a repeated key, some with whitespace or junk
    /// around it) is parsed once as written, compact or pretty (the scanner's path), and once
    /// with every string escaped (which the scanner leaves to serde): same events, or the same
    /// error.
    #[test]
    fn parse_line_fast_path_agrees_with_serde(
        v in json_object(),
        pretty in any::<bool>(),
        repeat in prop::option::of((any::<Index>(), json_value())),
        before in select(&["", "", " ", "\t", "\n", "\u{feff}"][..]),
        after in select(&["", "", " ", "\r\n", "\r", "x", "}", ",", "{}", "\u{0}", "null"][..]),
    ) {
        let mut fields: Vec<(String, Value)> =
            v.as_object().unwrap().iter().map(|(k, x)| (k.clone(), x.clone())).collect();
        if let (Some((i, x)), false) = (repeat, fields.is_empty()) {
            // A repeated key (serde rejects it for known fields).
            fields.push((fields[i.index(fields.len())].0.clone(), x));
        }
        // Around the object: whitespace, a byte-order mark, trailing junk (same on both sides).
        let plain = format!("{before}{}{after}", object_text(&fields, false, pretty));
        let slow = format!("{before}{}{after}", object_text(&fields, true, false));
        prop_assert_eq!(parsed(&plain), parsed(&slow), "\n{}\n{}", plain, slow);
    }
}

// ---------------------------------------------------------------------------------------------
// Normalized lines round-trip
// ---------------------------------------------------------------------------------------------

/// Text with what JSON must escape (quotes, backslashes, control characters) and non-ASCII.
fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        select(
            &[
                "wamid.HBgLMTY1",
                "waba-1",
                "16505551234",
                "\"",
                "\\",
                "\n",
                "\u{0}",
                "é💥"
            ][..]
        )
        .prop_map(str::to_string),
        ".{0,8}",
        "[a-z\"\\\\\u{1}\u{7f}é💥 ]{0,6}",
    ]
    // Numbers in a notation (`+1 650`) are read as their digits: not a round trip by design.
    .prop_filter("kept as written", |t| {
        tarifa_core::input::phone_number(t.as_str().into()) == t.as_str()
    })
}

/// Text for fields the parser requires to be non-empty.
fn some_text() -> impl Strategy<Value = String> {
    any_text().prop_map(|t| if t.is_empty() { "x".to_string() } else { t })
}

fn owned(text: String) -> Cow<'static, str> {
    Cow::Owned(text)
}

fn any_billed() -> impl Strategy<Value = BilledCategory> {
    use BilledCategory::*;
    select(
        &[
            Template,
            UserInitiated,
            BusinessInitiated,
            ReferralConversion,
            Marketing,
            MarketingLite,
            Utility,
            Authentication,
            AuthenticationInternational,
            Service,
            MetaBusinessAgent,
        ][..],
    )
}

fn any_template_category() -> impl Strategy<Value = TemplateCategory> {
    use TemplateCategory::*;
    select(&[Marketing, Utility, Authentication, MarketingLite][..])
}

/// An instant the parser reads: in the years 2000-2099.
fn any_at() -> impl Strategy<Value = i64> {
    tarifa_core::time::EARLIEST..tarifa_core::time::END
}

fn any_inbound() -> impl Strategy<Value = Event<'static>> {
    (
        (some_text(), any_at(), some_text(), some_text()),
        (any_text(), any::<bool>()),
        select(
            &[
                Platform::Unknown,
                Platform::Android,
                Platform::Ios,
                Platform::Web,
            ][..],
        ),
        (
            prop::option::of(any_text()),
            prop::option::of("[A-Za-zéã!]{1,32}"),
        ),
    )
        .prop_map(
            |((id, at, business, phone), (user, referral), platform, (group, text))| {
                // Without a group the user is required.
                let user = if user.is_empty() && group.is_none() {
                    "u".into()
                } else {
                    user
                };
                Event::Inbound(Inbound {
                    id: owned(id),
                    at,
                    business: owned(business),
                    phone: owned(phone),
                    user: owned(user),
                    referral,
                    platform,
                    group: group.map(owned),
                    text: text.map(owned),
                })
            },
        )
}

fn any_outbound() -> impl Strategy<Value = Event<'static>> {
    // A message is a template, an agent reply, or free-form (never template and agent).
    let kind = prop_oneof![
        (any_text(), any_template_category()).prop_map(|(n, c)| (Some((owned(n), c)), None)),
        any::<u64>().prop_map(|t| (None, Some(t))),
        Just((None, None)),
    ];
    (
        (some_text(), any_at(), some_text(), some_text(), any_text()),
        kind,
        prop::option::of((any_text(), prop::collection::vec(any_text(), 1..4))),
    )
        .prop_map(
            |((id, at, business, phone, user), (template, agent_tokens), group)| {
                let user = if user.is_empty() && group.is_none() {
                    "u".into()
                } else {
                    user
                };
                Event::Outbound(Outbound {
                    id: owned(id),
                    at,
                    business: owned(business),
                    phone: owned(phone),
                    user: owned(user),
                    template,
                    agent_tokens,
                    group: group
                        .map(|(g, members)| (owned(g), members.into_iter().map(owned).collect())),
                })
            },
        )
}

fn any_status() -> impl Strategy<Value = Event<'static>> {
    use DeliveryStatus::*;
    use PricingModel::*;
    let pricing = (
        prop::option::of(any::<bool>()),
        prop::option::of(select(&[Nbp, Cbp, Pmp][..])),
        prop::option::of(any_billed()),
        prop::option::of(select(
            &[
                MetaPricingType::Regular,
                MetaPricingType::FreeCustomerService,
                MetaPricingType::FreeEntryPoint,
                MetaPricingType::Other,
            ][..],
        )),
    )
        .prop_map(|(billable, model, category, pricing_type)| MetaPricing {
            billable,
            model,
            category,
            pricing_type,
        });
    (
        (
            some_text(),
            any_at(),
            select(&[Sent, Delivered, Read, Failed][..]),
        ),
        (
            prop::option::of(any_text()),
            prop::option::of(any_text()),
            prop::option::of(any_text()),
        ),
        prop::option::of(pricing),
        (prop::option::of(any_text()), prop::option::of(any_billed())),
        prop::collection::vec(any::<u32>(), 0..3),
    )
        .prop_map(
            |(
                (id, at, status),
                (recipient, business, phone),
                pricing,
                (conversation_id, conversation_origin),
                error_codes,
            )| {
                Event::Status(Status {
                    id: owned(id),
                    at,
                    status,
                    recipient: recipient.map(owned),
                    group: None,
                    business: business.map(owned),
                    phone: phone.map(owned),
                    pricing,
                    conversation_id: conversation_id.map(owned),
                    conversation_origin,
                    error_codes,
                })
            },
        )
}

fn any_account_update() -> impl Strategy<Value = Event<'static>> {
    let change = prop_oneof![
        (
            some_text(),
            some_text(),
            prop::option::of(any_text()),
            prop::option::of(any_text())
        )
            .prop_map(
                |(category, tier, month, region)| AccountChange::VolumeTier {
                    category: owned(category),
                    tier: owned(tier),
                    effective_month: month.map(owned),
                    region: region.map(owned),
                }
            ),
        (
            prop::option::of(any_at()),
            prop::collection::vec((some_text(), any_at()), 0..3)
        )
            .prop_map(
                |(start, exceptions)| AccountChange::AuthInternationalEligibility {
                    start,
                    exceptions: exceptions.into_iter().map(|(c, t)| (owned(c), t)).collect(),
                }
            ),
        // `Other` never carries a known event name (those parse as their own variants).
        prop_oneof![Just("PARTNER_ADDED".to_string()), some_text()]
            .prop_filter("a known event", |n| n != VOLUME_TIER_EVENT
                && n != AUTH_INTL_EVENT)
            .prop_map(|n| AccountChange::Other(owned(n))),
    ];
    (some_text(), any_at(), change).prop_map(|(business, at, change)| {
        Event::AccountUpdate(AccountUpdate {
            business: owned(business),
            at,
            change,
        })
    })
}

/// Any event `parse_line` can produce (every kind but `Ignored`).
fn any_event() -> impl Strategy<Value = Event<'static>> {
    prop_oneof![
        any_inbound(),
        any_outbound(),
        any_status(),
        (some_text(), any_at(), some_text(), any_template_category()).prop_map(
            |(business, at, template, category)| Event::TemplateCategory(TemplateCategoryChange {
                at,
                business: owned(business),
                template: owned(template),
                category,
            })
        ),
        any_account_update(),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, failure_persistence: None, ..ProptestConfig::default() })]

    /// Input contract (input.rs): `to_json_line` writes one line that `parse_line` reads back as
    /// the same event, whatever the strings hold.
    #[test]
    fn normalized_lines_round_trip(event in any_event()) {
        let line = to_json_line(&event).expect("only Ignored has no line");
        prop_assert!(!line.contains('\n'), "{}", line);
        let mut events = Vec::new();
        parse_line(line.as_bytes(), &mut |e| events.push(e))
            .map_err(|e| TestCaseError::fail(format!("{line}: {e}")))?;
        prop_assert_eq!(events, vec![event], "{}", line);
    }
}

// ---------------------------------------------------------------------------------------------
// A live service's view of the input (for `lookback_over_a_key_rates_like_the_whole_history`)
// ---------------------------------------------------------------------------------------------

/// splitmix64: a tiny deterministic generator driven by one proptest seed.
fn next(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The events of `lines` as a service might receive them: about a third of the statuses of
/// user messages as webhook statuses (WABA, number, recipient and Meta's category), the outbound
/// record of some of those messages never sent, a quarter of the events twice (half of the
/// repeated user messages at another time), all shuffled.
fn live_events(lines: &[String], seed: u64) -> Vec<Event<'static>> {
    let mut rng = seed;
    let mut events = Vec::new();
    for line in lines {
        parse_line(line.as_bytes(), &mut |e| events.push(e.into_owned())).expect("generated line");
    }
    let mut messages: BTreeMap<String, Outbound<'static>> = BTreeMap::new();
    for e in &events {
        if let Event::Outbound(o) = e {
            if o.group.is_none() {
                messages.insert(o.id.to_string(), o.clone());
            }
        }
    }
    let mut webhook_only = BTreeSet::new();
    for e in &mut events {
        let Event::Status(s) = e else { continue };
        let Some(o) = messages.get(&*s.id) else {
            continue;
        };
        if !next(&mut rng).is_multiple_of(3) {
            continue;
        }
        s.business = Some(o.business.clone());
        s.phone = Some(o.phone.clone());
        s.recipient = Some(o.user.clone());
        s.pricing = o.template.as_ref().map(|(_, c)| MetaPricing {
            billable: Some(true),
            model: Some(PricingModel::Pmp),
            category: Some(match c {
                TemplateCategory::Marketing => BilledCategory::Marketing,
                TemplateCategory::MarketingLite => BilledCategory::MarketingLite,
                TemplateCategory::Utility => BilledCategory::Utility,
                TemplateCategory::Authentication => BilledCategory::Authentication,
            }),
            pricing_type: None,
        });
        if next(&mut rng).is_multiple_of(2) {
            webhook_only.insert(s.id.to_string());
        }
    }
    events.retain(|e| !matches!(e, Event::Outbound(o) if webhook_only.contains(&*o.id)));
    let mut copies: Vec<Event<'static>> = events
        .iter()
        .filter(|_| next(&mut rng).is_multiple_of(4))
        .cloned()
        .collect();
    for e in &mut copies {
        // Some user messages come again with another time (dedupe keeps the earliest copy).
        if let Event::Inbound(i) = e {
            if next(&mut rng).is_multiple_of(2) {
                i.at += (next(&mut rng) % (4 * DAY as u64)) as i64 - 2 * DAY;
            }
        }
    }
    events.extend(copies);
    for i in (1..events.len()).rev() {
        events.swap(i, (next(&mut rng) % (i as u64 + 1)) as usize);
    }
    events
}

/// The events of each key the service keeps a history for (`Book`: business × user or group;
/// a status goes to its message's key, or to its own WABA × recipient when it names them).
fn book_keys<'a>(
    events: &'a [Event<'static>],
) -> BTreeMap<(String, String), Vec<&'a Event<'static>>> {
    let mut owner: BTreeMap<&str, (String, String)> = BTreeMap::new();
    for e in events {
        if let Event::Outbound(o) = e {
            let party = o.group.as_ref().map_or(&*o.user, |(g, _)| g);
            owner
                .entry(&o.id)
                .or_insert_with(|| (o.business.to_string(), party.to_string()));
        }
    }
    for e in events {
        if let Event::Status(s) = e {
            if let (Some(b), Some(r)) = (&s.business, &s.recipient) {
                owner
                    .entry(&s.id)
                    .or_insert_with(|| (b.to_string(), r.to_string()));
            }
        }
    }
    let mut keys: BTreeMap<(String, String), Vec<&Event<'static>>> = BTreeMap::new();
    for e in events {
        let key = match e {
            Event::Inbound(i) => Some((
                i.business.to_string(),
                i.group.as_deref().unwrap_or(&i.user).to_string(),
            )),
            Event::Outbound(o) => owner.get(&*o.id).cloned(),
            Event::Status(s) => owner.get(&*s.id).cloned(),
            _ => None,
        };
        if let Some(key) = key {
            keys.entry(key).or_default().push(e);
        }
    }
    keys
}

// ---------------------------------------------------------------------------------------------
// Counterexamples found by the properties, minimised (engine bugs, fixed since: regressions)
// ---------------------------------------------------------------------------------------------

fn with_rules(edit: impl FnOnce(&mut Rules)) -> Setup {
    let mut s = setup(0);
    edit(&mut s.rules);
    s
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Found by `order_and_duplicates_do_not_change_the_bill` (rule variant 3). With
/// `conversation_scope = "business"` (spec §11 #14) a conversation's `phone` is the number of
/// whichever event of the WABA × user key was pushed first, so the conversations of the bill
/// depend on the input order. Expected: the same bill in both orders (naturally the opener's
/// number, `waba-utc-pn2`); before the fix: `waba-utc-pn1` in order, `waba-utc-pn2` reversed.
#[test]
fn regression_business_scope_conversation_phone_depends_on_input_order() {
    let setup = || with_rules(|r| r.conversation_scope = ConversationScope::Business);
    let events = lines(
        r#"
        {"type":"inbound","id":"in.1","at":"2023-03-10T09:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"4915112345678"}
        {"type":"outbound","id":"out.1","at":"2023-03-10T09:05:00Z","business":"waba-utc","phone":"waba-utc-pn2","user":"4915112345678"}
        {"type":"status","id":"out.1","at":"2023-03-10T09:05:05Z","status":"delivered"}
        "#,
    );
    let mut reversed = events.clone();
    reversed.reverse();
    let in_order = render(&rate(setup(), &events));
    let shuffled = render(&rate(setup(), &reversed));
    assert_eq!(in_order, shuffled);
}

/// Found by `rules_b_1_c_2_conversations_are_well_formed` (rule variant 2, B-1/B-4). With
/// `conversation_start = "sent"` messages of a key are walked in order of their send, but the
/// era is taken from the delivery date. `out.b`, sent in era B and delivered after the switch to
/// era C, is walked before `out.c` and resets the key's era-B conversation; `out.c` (era B, sent
/// and delivered inside `conv.out.a`) then opens a second, overlapping business-initiated
/// conversation. Expected (B-1, B-4): `out.c` is in the open conversation `conv.out.a`, free;
/// before the fix: it opens `conv.out.c`, charged 0.1365 (Germany BIC) — a double charge.
#[test]
fn regression_b_1_sent_start_era_crossing_delivery_reopens_conversation() {
    let setup = with_rules(|r| {
        r.conversation_start = ConversationStart::Sent;
        r.free_conversations_per_month = 0;
    });
    let events = lines(
        r#"
        {"type":"outbound","id":"out.a","at":"2023-05-31T10:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"4915112345678","template":{"name":"m","category":"marketing"}}
        {"type":"status","id":"out.a","at":"2023-05-31T10:00:01Z","status":"sent"}
        {"type":"status","id":"out.a","at":"2023-05-31T10:00:05Z","status":"delivered"}
        {"type":"outbound","id":"out.b","at":"2023-05-31T12:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"4915112345678","template":{"name":"m","category":"marketing"}}
        {"type":"status","id":"out.b","at":"2023-05-31T12:00:01Z","status":"sent"}
        {"type":"status","id":"out.b","at":"2023-06-01T00:30:00Z","status":"delivered"}
        {"type":"outbound","id":"out.c","at":"2023-05-31T20:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"4915112345678","template":{"name":"m","category":"marketing"}}
        {"type":"status","id":"out.c","at":"2023-05-31T20:00:01Z","status":"sent"}
        {"type":"status","id":"out.c","at":"2023-05-31T20:00:05Z","status":"delivered"}
        "#,
    );
    let bill = rate(setup, &events);
    let era_b: Vec<String> = bill
        .conversation_views()
        .filter(|c| {
            matches!(
                c.category,
                BilledCategory::BusinessInitiated | BilledCategory::UserInitiated
            )
        })
        .map(|c| format!("{} [{}, {})", c.id, c.opened_at, c.expires_at))
        .collect();
    assert_eq!(era_b, ["conv.out.a [1685527201, 1685613660)"]);
    let c = bill.messages().find(|v| v.id == "out.c").unwrap();
    assert_eq!(
        (
            c.line.pricing_type,
            c.conversation.as_deref(),
            c.line.amount
        ),
        (
            PricingType::InOpenConversation,
            Some("conv.out.a"),
            Decimal::ZERO
        ),
        "{}",
        bill.explain(c.line)
    );
}

/// Found by an order-invariance check on group messages (D-10 × V-3; groups are not in the
/// generator). Two members of a group message delivered at the same instant are counted in the
/// order of their interned user index, which depends on the input order: which member gets the
/// 2nd and which the 3rd utility message of the month (band 1 vs band 2) changes when the lines
/// are reversed. Expected: the same bill in both orders; before the fix: member 5511900000002
/// was charged 0.0068 (band 1) in order and 0.00612 (band 2) reversed, and the lines swapped.
#[test]
fn regression_group_members_delivered_together_are_tiered_in_input_order() {
    let events = lines(
        r#"
        {"type":"inbound","id":"in.b","at":"2025-08-10T09:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"5511900000002"}
        {"type":"outbound","id":"out.x","at":"2025-08-10T08:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"5511900000009","template":{"name":"u","category":"utility"}}
        {"type":"status","id":"out.x","at":"2025-08-10T08:00:05Z","status":"delivered"}
        {"type":"outbound","id":"out.g","at":"2025-08-12T10:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","group":{"id":"grp-1","members":["5511900000001","5511900000002"]},"template":{"name":"u","category":"utility"}}
        {"type":"status","id":"out.g","at":"2025-08-12T10:00:05Z","status":"delivered"}
        "#,
    );
    let mut reversed = events.clone();
    reversed.reverse();
    assert_eq!(
        render(&rate(setup(0), &events)),
        render(&rate(setup(0), &reversed))
    );
}

/// With `conversation_start = "sent"` the price is decided at the send, but the bill still
/// reports when the message was delivered (and a group member's line its own delivery).
#[test]
fn delivered_at_is_the_delivery_whatever_decides_the_price() {
    let setup = with_rules(|r| r.conversation_start = ConversationStart::Sent);
    let events = lines(
        r#"
        {"type":"outbound","id":"out.a","at":"2023-05-31T10:00:00Z","business":"waba-utc","phone":"waba-utc-pn1","user":"4915112345678","template":{"name":"m","category":"marketing"}}
        {"type":"status","id":"out.a","at":"2023-05-31T10:00:01Z","status":"sent"}
        {"type":"status","id":"out.a","at":"2023-05-31T10:07:00Z","status":"delivered"}
        "#,
    );
    let bill = rate(setup, &events);
    let v = bill.messages().next().unwrap();
    assert_eq!(v.sent_at, 1_685_527_201);
    assert_eq!(v.delivered_at, Some(1_685_527_620));
}
