//! Live pricing: one message at a time, as a service prices it, with a typed answer.
//!
//! A service keeps each conversation key's events and the monthly counters it has used; to price
//! a message it rates the message's history with it ([`Rater::finish_for`]) and reads the one line
//! it gets. [`price_message`] does that and returns the line's facts as a [`LivePrice`], or says
//! what went wrong ([`LiveError`]): no event is dropped on the way.

use super::bill::{Bill, Line, Note};
use super::pricing::{CounterBase, CounterKey};
use super::setup::Setup;
use super::Rater;
use crate::category::{BilledCategory, PricingType};
use crate::input::{Event, InputError};
use crate::market::Market;
use crate::time::Instant;
use rust_decimal::Decimal;
use std::sync::Arc;

/// The price of one message, rated live (see [`price_message`]).
#[derive(Clone, Debug, PartialEq)]
pub struct LivePrice {
    /// What the message costs, exactly, in `currency`.
    pub amount: Decimal,
    /// The currency of the WABA (and of its rate card).
    pub currency: String,
    pub pricing_type: PricingType,
    /// The category it is billed as.
    pub category: BilledCategory,
    /// The spec rule that decided (`"D-3"`, `"B-5"` …).
    pub rule: &'static str,
    /// The 1-based volume-tier band, when a tier priced it.
    pub band: Option<u8>,
    /// The per-message (or per-conversation, per-million-tokens) rate applied.
    pub rate: Option<Decimal>,
    /// The recipient's market; `None` when its number has none (see `unrated`).
    pub market: Option<Market>,
    /// Billable by Meta: a regular charge, or one tarifa could not price (unrated).
    pub charged: bool,
    /// Why tarifa could not price it ([`Note::NoCard`], [`Note::NoRate`] …); `None` when it did.
    pub unrated: Option<Note>,
    /// Why it has its price beyond its pricing type (allowance, tier, tokens, or as `unrated`).
    pub note: Note,
    /// A sentence saying why it costs what it costs.
    pub explanation: String,
    /// The instant that decided the price: delivery, or the send when undelivered.
    pub at: Instant,
    /// The monthly counters it moved, in pricing order: the caller adds them to its own counts.
    pub counted: Vec<CounterKey>,
}

/// Why [`price_message`] gave no price.
#[derive(Clone, Debug, PartialEq)]
pub enum LiveError {
    /// The rater refused one of the events (e.g. its business is not in the setup): a price
    /// computed without it could be wrong.
    Rejected {
        /// The id of the refused event, when it has one.
        event_id: Option<String>,
        error: InputError,
    },
    /// The events rate to no line for the target: no outbound message (or status describing
    /// one) has its id.
    NotFound { target: String },
}

impl std::fmt::Display for LiveError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LiveError::Rejected { error, .. } => write!(f, "event rejected: {error}"),
            LiveError::NotFound { target } => {
                write!(f, "no outbound message {target:?} among the events")
            }
        }
    }
}

impl std::error::Error for LiveError {}

/// Prices the message `target` the way a live service does: `events` are its history (they
/// decide windows and conversations, and are not priced themselves) and every monthly counter
/// starts from what `counters` says was already used this month ([`Rater::finish_for`]).
///
/// An undelivered target is priced too (`PricingType::NotDelivered`, amount 0): to quote a message
/// before it is delivered, add a planned delivery ([`Status::delivered`](crate::input::Status::delivered))
/// to the events. A group message has a line per member; the first in bill order is returned.
///
/// Errors: the first event the rater refuses ([`LiveError::Rejected`]: nothing is dropped), or no
/// line for `target` ([`LiveError::NotFound`]).
pub fn price_message<'e, 'a: 'e>(
    setup: Arc<Setup>,
    events: impl IntoIterator<Item = &'e Event<'a>>,
    target: &str,
    counters: &dyn CounterBase,
) -> Result<LivePrice, LiveError> {
    let mut rater = Rater::new(setup);
    for event in events {
        rater.push_ref(event).map_err(|error| LiveError::Rejected {
            event_id: error.event_id.clone(),
            error,
        })?;
    }
    let (bill, counted) = rater.finish_for(&[target], counters);
    let Some(view) = bill.messages().next() else {
        return Err(LiveError::NotFound {
            target: target.to_string(),
        });
    };
    Ok(live_price(&bill, view.line, view.currency, counted))
}

/// The facts of `line` of `bill`.
fn live_price(bill: &Bill, line: &Line, currency: &str, counted: Vec<CounterKey>) -> LivePrice {
    LivePrice {
        amount: line.amount,
        currency: currency.to_string(),
        pricing_type: line.pricing_type,
        category: line.category,
        rule: line.rule,
        band: (line.band > 0).then_some(line.band),
        rate: line.rate,
        market: line.market,
        charged: line.charged(),
        unrated: (line.pricing_type == PricingType::Unrated).then_some(line.note),
        note: line.note,
        explanation: bill.explain(line),
        at: line.at,
        counted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::{RateBook, RateCard};
    use crate::category::TemplateCategory;
    use crate::config::{BusinessConfig, Rules};
    use crate::engine::Prices;
    use crate::input::{Outbound, Status};
    use crate::market::MarketOptions;
    use std::collections::HashMap;

    const CARD: &str = "Cost per message in USD, effective July 1, 2025
Market,Currency,Marketing,Utility,Authentication,Authentication-International,Service
North America,$US,0.025,0.004,0.004,n/a,n/a
";

    /// 2025-08-04 09:00 UTC: per-message pricing.
    const AT: Instant = 1_754_298_000;

    fn setup() -> Arc<Setup> {
        let mut book = RateBook::new();
        book.add_rate_card(RateCard::parse_csv(CARD, "inline USD card").unwrap())
            .unwrap();
        let business: BusinessConfig =
            toml::from_str("id = \"waba-1\"\ncurrency = \"USD\"\ntimezone = \"UTC\"\n").unwrap();
        Arc::new(Setup {
            businesses: vec![business.resolve().unwrap()],
            rules: Rules::default(),
            markets: MarketOptions::default(),
            book,
            price_lists: Vec::new(),
            prices: Prices::Meta,
        })
    }

    fn marketing(id: &str, business: &'static str) -> [Event<'static>; 2] {
        let id: &'static str = Box::leak(id.to_string().into_boxed_str());
        [
            Event::Outbound(Outbound::planned(
                id,
                AT,
                business,
                "pn-1",
                "16505551234",
                Some(("promo", TemplateCategory::Marketing)),
            )),
            Event::Status(Status::delivered(id, AT + 5)),
        ]
    }

    /// A delivered template is priced as the whole-run rating prices it.
    #[test]
    fn a_delivered_template_is_priced_like_the_whole_run() {
        let events = marketing("m1", "waba-1");
        let counts: HashMap<CounterKey, u64> = HashMap::new();
        let live = price_message(setup(), &events, "m1", &counts).unwrap();
        let mut rater = Rater::new(setup());
        for e in &events {
            rater.push_ref(e).unwrap();
        }
        let bill = rater.finish();
        let line = &bill.lines[0];
        assert_eq!(live.amount, line.amount);
        assert_eq!(live.rule, line.rule);
        assert_eq!(live.amount, Decimal::new(25, 3));
        assert_eq!(live.rule, "D-3");
        assert_eq!(live.pricing_type, PricingType::Regular);
        assert_eq!(live.category, BilledCategory::Marketing);
        assert_eq!(live.currency, "USD");
        assert_eq!(live.rate, Some(Decimal::new(25, 3)));
        assert!(live.charged);
        assert_eq!(live.unrated, None);
        assert_eq!(live.at, AT + 5);
        assert_eq!(live.explanation, bill.explain(line));
    }

    /// An event the rater refuses is an error, not silently dropped.
    #[test]
    fn a_rejected_event_is_an_error() {
        let mut events = marketing("m1", "waba-1").to_vec();
        events.extend(marketing("m2", "waba-unknown"));
        let counts: HashMap<CounterKey, u64> = HashMap::new();
        match price_message(setup(), &events, "m1", &counts) {
            Err(LiveError::Rejected { event_id, .. }) => {
                assert_eq!(event_id.as_deref(), Some("m2"))
            }
            other => panic!("expected a rejected event, got {other:?}"),
        }
    }

    /// A target that is not among the events is an error.
    #[test]
    fn a_missing_target_is_an_error() {
        let events = marketing("m1", "waba-1");
        let counts: HashMap<CounterKey, u64> = HashMap::new();
        assert_eq!(
            price_message(setup(), &events, "m9", &counts),
            Err(LiveError::NotFound {
                target: "m9".to_string()
            })
        );
    }
}
