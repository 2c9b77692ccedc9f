//! The service's state: the wallets' ledger and what live pricing needs to know, changed only by
//! the single writer ([`crate::runtime::writer`]) and read by quotes. No I/O and no clock: every
//! operation gets `now` and returns the rows to store ([`Effects`]), so the writer can store
//! them in one transaction before it answers anyone.
//!
//! Live pricing reuses the rating engine exactly: a delivered message is rated with
//! [`Rater::finish_for`] over its conversation's recent events (the last `history_days`) with the
//! monthly counters (free tiers, allowances, volume tiers) carried in from earlier messages.
//! Invoices re-rate the whole month from the stored events instead, so they are exact even when
//! a delivery arrived out of order; reconciliation shows any difference.

mod converge;
mod history;
mod quote;
mod wallet;

use super::effects::{Alert, Charge, Effects, LedgerEntry, LedgerOp, NewEvent, OptOut};
use super::error::DomainError;
use super::ids::{
    funding_account, revenue_account, top_up, wallet_account, ConversationKey, MessageTransfers,
};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet, VecDeque};
use std::hash::RandomState;
use std::sync::Arc;
use tarifa_core::category::{PricingType, TemplateCategory};
use tarifa_core::collections::{GrowingMap, Schedule};
use tarifa_core::engine::{
    id_tail, lookback, may_concern, message_tail, price_message, CounterKey, LiveError, LivePrice,
    Setup,
};
use tarifa_core::input::{parse_line, DeliveryStatus, Event, Outbound, Status};
use tarifa_core::ledger::{
    AccountKind, Amount, Applied, Ledger, LedgerError, NewAccount, Request, WalletPolicy,
};
use tarifa_core::time::{Instant, Month, DAY};

use history::{Charged, Forget, HistoryEvent, KeyHistory, Msg};
pub use quote::{Block, Planned, PlannedTemplate, Quote, WalletView};

/// Most items (messages and histories) the writer's tick forgets at once: about 25 ms of
/// freeing (forgetting 20,000 messages and their events took 20–26 ms,
/// `docs/benchmarks-history.md`), more than a load of 20,000 events/s has leave the window each
/// second.
pub const FORGET_PER_TICK: usize = 20_000;

/// Meta's error for a user who stopped marketing messages.
pub const MARKETING_OPT_OUT: u32 = 131050;
/// Meta stopped delivering marketing templates to US numbers on this day (error 131049).
pub const US_MARKETING_PAUSED_FROM: Instant = 1_743_465_600; // 2025-04-01T00:00:00Z

/// A wallet's rules, resolved from the service config and the price list.
#[derive(Clone, Debug)]
pub struct WalletRules {
    pub prepaid: bool,
    pub currency: String,
    pub policy: WalletPolicy,
    pub min_balance_for_free_service: Option<Amount>,
    pub alert_url: Option<String>,
}

/// What became of one event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Stored,
    Duplicate,
    Rejected { code: String, message: String },
}

impl Outcome {
    fn rejected(code: &str, message: impl Into<String>) -> Outcome {
        Outcome::Rejected {
            code: code.into(),
            message: message.into(),
        }
    }
}

pub struct Book {
    setup: Arc<Setup>,
    wallets: HashMap<String, WalletRules>,
    hold_secs: i64,
    history_secs: i64,
    pub ledger: Ledger,
    /// When each transfer was applied (the ledger has no clock).
    applied_at: GrowingMap<String, Instant, RandomState>,
    /// Recent events per (business, user or group).
    history: GrowingMap<ConversationKey, KeyHistory, RandomState>,
    messages: GrowingMap<Arc<str>, Msg, RandomState>,
    /// Each message and each history at the time it may leave the window, so that trimming
    /// visits what expires, not everything kept. An entry whose time is no longer its item's
    /// `forget_at` is stale and passed over.
    forget: Schedule<Forget>,
    category_changes: HashMap<String, Vec<Arc<Event<'static>>>>,
    counts: HashMap<CounterKey, u64>,
    optouts: HashSet<ConversationKey>,
}

/// Exact decimal to ledger micro-units; finer digits are rounded away from zero (charges are
/// never rounded down below what the card says).
pub fn to_amount(value: Decimal) -> Amount {
    let rounded = value.round_dp_with_strategy(Amount::SCALE, RoundingStrategy::AwayFromZero);
    Amount::from_decimal(rounded).unwrap_or(Amount::ZERO)
}

pub fn amount_text(a: Amount) -> String {
    a.to_decimal()
        .map(|d| d.normalize().to_string())
        .unwrap_or_else(|_| a.to_string())
}

fn error_text(e: &LedgerError) -> String {
    e.to_string()
}

impl Book {
    pub fn new(
        setup: Arc<Setup>,
        wallets: HashMap<String, WalletRules>,
        hold_days: i64,
        history_days: i64,
    ) -> Book {
        Book {
            setup,
            wallets,
            hold_secs: hold_days * DAY,
            history_secs: history_days * DAY,
            ledger: Ledger::new(),
            applied_at: GrowingMap::default(),
            history: GrowingMap::default(),
            messages: GrowingMap::default(),
            forget: Schedule::default(),
            category_changes: HashMap::new(),
            counts: HashMap::new(),
            optouts: HashSet::new(),
        }
    }

    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    pub fn wallet_rules(&self, business: &str) -> Option<&WalletRules> {
        self.wallets.get(business)
    }

    pub fn applied_at(&self, transfer: &str) -> Option<Instant> {
        self.applied_at.get(transfer).copied()
    }

    /// Replays one stored ledger operation (at start).
    pub fn replay_op(&mut self, at: Instant, op: &LedgerOp) -> anyhow::Result<()> {
        for id in op.apply_to(&mut self.ledger)? {
            self.applied_at.insert(id, at);
        }
        Ok(())
    }

    /// Takes a stored event back into memory at start (no pricing, no ledger: their effects are
    /// stored already); a line that no longer parses is an error, and nothing of it is kept.
    pub fn replay_event(
        &mut self,
        business: &str,
        line: &str,
    ) -> Result<(), tarifa_core::input::InputError> {
        let mut events = Vec::new();
        parse_line(line.as_bytes(), &mut |e| events.push(e.into_owned()))?;
        for e in events {
            self.remember(business, &Arc::new(e));
        }
        Ok(())
    }

    /// Marks a message as settled (its charge is stored) and restores its counters.
    pub fn replay_charge(&mut self, charge: &Charge) {
        self.mark_settled(&charge.message);
        for key in &charge.counters {
            *self.counts.entry(key.clone()).or_default() += 1;
        }
        self.keep_charged(
            &charge.message,
            Charged {
                amount: to_amount(charge.amount),
                uncollected: charge.uncollected,
                pricing_type: charge.pricing_type,
                at: charge.at,
                counted: charge.counters.clone(),
            },
        );
    }

    pub fn replay_optout(&mut self, business: String, user: String) {
        self.optouts.insert(ConversationKey::new(business, user));
    }

    /// The business of a message this book follows.
    pub fn business_of(&self, message: &str) -> Option<&str> {
        self.messages.get(message).map(|m| m.key.business.as_str())
    }

    pub fn knows_business(&self, business: &str) -> bool {
        self.setup.businesses.iter().any(|b| b.id == business)
    }

    /// Applies one new (not duplicate) event; when it is stored, its row goes into `w`. On
    /// `Rejected` nothing of it is kept and `w` is unchanged.
    pub fn apply_event(&mut self, row: NewEvent, now: Instant, w: &mut Effects) -> Outcome {
        let event = row.event.clone();
        if let Event::Outbound(o) = &*event {
            // A message already settled (its delivery came first) is not held again.
            if o.group.is_none() && !self.is_settled(&o.id) {
                if let Err(outcome) = self.hold(&row, o, now, w) {
                    return outcome;
                }
            }
        }
        let key = self.remember(&row.business, &event);
        self.reprice_on_evidence(&event, key.as_ref(), now, w);
        if let (Event::Status(s), Some(key)) = (&*event, key) {
            if s.error_codes.contains(&MARKETING_OPT_OUT) && self.optouts.insert(key.clone()) {
                w.optouts.push(OptOut {
                    business: key.business.clone(),
                    user: key.party.clone(),
                    at: s.at,
                });
            }
            let settled = self.messages.get(s.id.as_ref()).is_none_or(|m| m.settled);
            if !settled {
                match s.status {
                    DeliveryStatus::Delivered | DeliveryStatus::Read => {
                        self.settle_delivered(&s.id, &key, now, w)
                    }
                    DeliveryStatus::Failed => self.settle_failed(&s.id, now, w),
                    DeliveryStatus::Sent => {}
                }
            }
        }
        w.events.push(row);
        Outcome::Stored
    }

    /// Rates `target` (already in the history of `key`, or given as `extra` events) with the
    /// counters used so far; returns its line's facts.
    ///
    /// The rater gets the events [`lookback`] picks from the business's template category
    /// changes, the key's history and `extra` (under per-message pricing without entry points:
    /// the message's own events and the user messages of the day before it), or all of them;
    /// either way the price is the one the replay of all of them gives (property test
    /// `lookback_over_a_key_rates_like_the_whole_history` in tarifa-core). `lookback` is given
    /// the history without the records and statuses of other messages ([`may_concern`]: it
    /// picks the same events), so rating a message does not read every event of a long history.
    fn rate(
        &self,
        key: &ConversationKey,
        extra: &[&Event<'_>],
        target: &str,
    ) -> Result<LivePrice, LiveError> {
        let changes = self
            .category_changes
            .get(&key.business)
            .map_or(&[][..], Vec::as_slice);
        let history = self.history.get(key).map(|h| &h.events);
        let all = |concerns: &dyn Fn(&HistoryEvent) -> bool| -> Vec<&Event<'_>> {
            let changes = changes.iter().map(|e| &**e);
            let history = history
                .into_iter()
                .flatten()
                .filter(|h| concerns(h))
                .map(|h| &*h.event);
            changes
                .chain(history)
                .chain(extra.iter().copied())
                .collect()
        };
        let target_tail = id_tail(target);
        let near = all(&|h| may_concern(h.tail, target_tail));
        let counts = &self.counts;
        match lookback(near.iter().copied(), target) {
            Some(picked) => {
                let picked = picked.into_iter().map(|i| near[i]);
                price_message(self.setup.clone(), picked, target, counts)
            }
            None => price_message(self.setup.clone(), all(&|_| true), target, counts),
        }
    }
}

fn push_op(w: &mut Effects, at: Instant, op: LedgerOp) {
    w.ledger_ops.push(LedgerEntry { at, op });
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::path::Path;

    const WINDOW_DAYS: i64 = 2;
    const HOLD_DAYS: i64 = 3;

    fn book() -> Book {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/config.toml");
        let setup =
            crate::runtime::setup::load(&config, Default::default()).expect("sample config");
        Book::new(Arc::new(setup), HashMap::new(), HOLD_DAYS, WINDOW_DAYS)
    }

    /// The trim of the book before schedules: one pass over everything kept.
    fn trim_by_full_pass(book: &mut Book, now: Instant) {
        let cutoff = now - book.history_secs;
        book.history.retain(|_, kept| {
            kept.events.retain(|e| e.at >= cutoff);
            !kept.events.is_empty()
        });
        let hold_cutoff = now - book.hold_secs - book.history_secs;
        book.messages
            .retain(|_, m| m.at >= cutoff || (!m.settled && m.at >= hold_cutoff));
    }

    /// What trimming decides: the messages followed (with whether settled) and each history's
    /// events (time and message), in a comparable order.
    type Kept = (
        BTreeMap<String, (Instant, bool)>,
        BTreeMap<ConversationKey, Vec<(Instant, Option<u64>)>>,
    );

    fn kept(book: &Book) -> Kept {
        let messages = book
            .messages
            .iter()
            .map(|(id, m)| (id.to_string(), (m.at, m.settled)))
            .collect();
        let history = book
            .history
            .iter()
            .map(|(key, h)| {
                (
                    key.clone(),
                    h.events.iter().map(|e| (e.at, e.tail)).collect(),
                )
            })
            .collect();
        (messages, history)
    }

    #[derive(Clone, Debug)]
    enum Step {
        /// An outbound message (id, user, hours after the start).
        Send(u8, u8, u16),
        /// A user's message.
        Receive(u8, u16),
        /// A status for a message (id, user, hours): delivered, failed or sent.
        Status(u8, u8, u16, u8),
        /// The wallet is settled for a message.
        Settle(u8),
        /// Trim, this many hours after the last trim.
        Trim(u16),
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            3 => (0..40u8, 0..6u8, 0..300u16).prop_map(|(m, u, h)| Step::Send(m, u, h)),
            2 => (0..6u8, 0..300u16).prop_map(|(u, h)| Step::Receive(u, h)),
            3 => (0..40u8, 0..6u8, 0..300u16, 0..3u8).prop_map(|(m, u, h, s)| Step::Status(m, u, h, s)),
            2 => (0..40u8).prop_map(Step::Settle),
            2 => (0..48u16).prop_map(Step::Trim),
        ]
    }

    fn time(start: Instant, hours: u16) -> String {
        tarifa_core::time::format_instant(start + i64::from(hours) * 3600)
    }

    proptest! {
        /// Trimming by schedule keeps exactly what a pass over everything keeps, whatever the
        /// order of sends, statuses (late ones too), settlements and trims.
        #[test]
        fn trimming_by_schedule_keeps_what_a_full_pass_keeps(steps in prop::collection::vec(step(), 1..120)) {
            let (mut scheduled, mut full, mut budgeted) = (book(), book(), book());
            let start: Instant = 1_700_000_000;
            let mut now = start;
            for s in steps {
                let line = match &s {
                    Step::Send(m, u, h) => Some(format!(
                        r#"{{"type":"outbound","id":"wamid.{m}","at":"{}","business":"waba-br","phone":"pn-br-1","user":"55119876543{u:02}"}}"#,
                        time(start, *h))),
                    Step::Receive(u, h) => Some(format!(
                        r#"{{"type":"inbound","id":"wamid.in.{u}.{h}","at":"{}","business":"waba-br","phone":"pn-br-1","user":"55119876543{u:02}"}}"#,
                        time(start, *h))),
                    Step::Status(m, u, h, s) => Some(format!(
                        r#"{{"type":"status","id":"wamid.{m}","at":"{}","status":"{}","business":"waba-br","recipient":"55119876543{u:02}"}}"#,
                        time(start, *h), ["delivered", "failed", "sent"][usize::from(*s)])),
                    Step::Settle(_) | Step::Trim(_) => None,
                };
                for b in [&mut scheduled, &mut full, &mut budgeted] {
                    if let Some(line) = &line {
                        let parsed = parse_line(line.as_bytes(), &mut |_| {});
                        prop_assert!(parsed.is_ok(), "{line}: {parsed:?}");
                        b.replay_event("waba-br", line).unwrap();
                    }
                    if let Step::Settle(m) = s {
                        b.mark_settled(&format!("wamid.{m}"));
                    }
                }
                if let Step::Trim(hours) = s {
                    now += i64::from(hours) * 3600;
                    scheduled.trim(now);
                    trim_by_full_pass(&mut full, now);
                    prop_assert_eq!(kept(&scheduled), kept(&full));
                    // Three items a call: the same result after as many calls as it takes.
                    let mut calls = 1;
                    while !budgeted.trim_some(now, 3) {
                        calls += 1;
                    }
                    prop_assert_eq!(kept(&budgeted), kept(&full), "after {} calls", calls);
                }
            }
            // After the last event's window and hold: everything is forgotten.
            now = now.max(start + 300 * 3600) + (WINDOW_DAYS + HOLD_DAYS) * DAY + 1;
            scheduled.trim(now);
            trim_by_full_pass(&mut full, now);
            prop_assert_eq!(kept(&scheduled), kept(&full));
            prop_assert!(scheduled.messages.is_empty() && scheduled.history.is_empty());
            prop_assert!(scheduled.forget.is_empty(), "{} entries left", scheduled.forget.len());
        }
    }
}
