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

pub use super::effects::LedgerOp;
use super::effects::{Alert, Charge, Effects, LedgerEntry, NewEvent, OptOut};
use super::ids::{funding_account, revenue_account, top_up, wallet_account, MessageTransfers};
use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
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

/// A message the book follows.
#[derive(Clone, Debug)]
struct Msg {
    key: (String, String),
    at: Instant,
    /// Priced (at delivery) or released (failed): the wallet is settled for it.
    settled: bool,
    /// When [`Book::trim`] looks at it again (its live entry in [`Book::forget`]).
    forget_at: Instant,
}

/// The recent events of one (business, user or group).
#[derive(Clone, Debug, Default)]
struct KeyHistory {
    /// In time order (events of the same time in arrival order), so that those out of the window
    /// are at the front: forgetting them costs what they are, not the length of the history (a
    /// busy group's history holds hundreds of thousands). Rating does not depend on the order.
    events: VecDeque<HistoryEvent>,
    /// When its oldest event leaves the window: its live entry in [`Book::forget`].
    forget_at: Instant,
}

/// What [`Book::trim`] looks at again, filed in [`Book::forget`].
#[derive(Clone, Debug)]
enum Forget {
    Message(Arc<str>),
    /// Boxed: one entry per message is filed, and a key's two strings would triple its size.
    History(Box<(String, String)>),
}

/// An event of a conversation's history, parsed once (when it was received or reloaded).
#[derive(Clone, Debug)]
struct HistoryEvent {
    at: Instant,
    /// [`message_tail`] of the event, kept beside it so that rating one message can pass over
    /// the other messages of a long history without reading their events.
    tail: Option<u64>,
    event: Arc<Event<'static>>,
}

/// The answer to a quote.
#[derive(Clone, Debug, Serialize)]
pub struct Quote {
    pub allowed: bool,
    /// Why it may not be sent (empty when allowed).
    pub blocked_by: Vec<Block>,
    pub currency: String,
    /// Exact decimal text.
    pub amount: String,
    pub pricing_type: String,
    pub category: String,
    pub rule: String,
    pub explanation: String,
    /// Volume-tier band (1-based), when one applied.
    pub band: Option<u8>,
    pub customer_service_window_open: bool,
    pub wallet: Option<WalletView>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Block {
    pub code: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WalletView {
    pub currency: String,
    pub posted: String,
    pub pending: String,
    pub available: String,
}

/// A planned message, for a quote.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Planned {
    pub business: String,
    pub phone: String,
    pub user: String,
    /// `None`: a free-form (non-template) message.
    pub template: Option<PlannedTemplate>,
    /// Unix seconds or RFC 3339; default now.
    pub at: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedTemplate {
    #[serde(default)]
    pub name: String,
    pub category: String,
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
    history: GrowingMap<(String, String), KeyHistory, RandomState>,
    messages: GrowingMap<Arc<str>, Msg, RandomState>,
    /// Each message and each history at the time it may leave the window, so that trimming
    /// visits what expires, not everything kept. An entry whose time is no longer its item's
    /// `forget_at` is stale and passed over.
    forget: Schedule<Forget>,
    category_changes: HashMap<String, Vec<Arc<Event<'static>>>>,
    counts: HashMap<CounterKey, u64>,
    optouts: HashSet<(String, String)>,
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
    format!("{e:?}")
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

    /// The ledger operations that open every configured account not opened yet; returns the
    /// accounts whose rules (floor, alert threshold) changed in the config since they were
    /// opened: the ledger keeps the rules it opened them with.
    pub fn open_accounts(&mut self, now: Instant, w: &mut Effects) -> anyhow::Result<Vec<String>> {
        let mut wanted = Vec::new();
        let mut changed = Vec::new();
        for (business, rules) in &self.wallets {
            for (id, kind) in [
                (wallet_account(business), AccountKind::Wallet(rules.policy)),
                (revenue_account(&rules.currency), AccountKind::Revenue),
                (funding_account(&rules.currency), AccountKind::Funding),
            ] {
                wanted.push(NewAccount {
                    id,
                    currency: rules.currency.clone(),
                    kind,
                });
            }
        }
        wanted.sort_by(|a, b| a.id.0.cmp(&b.id.0));
        wanted.dedup_by(|a, b| a.id == b.id);
        for account in wanted {
            match self.ledger.account(&account.id.0) {
                Some(existing) if existing.kind != account.kind => changed.push(account.id.0),
                Some(_) => {}
                None => {
                    self.ledger
                        .create_account(&account)
                        .map_err(|e| anyhow::anyhow!("account {}: {e:?}", account.id.0))?;
                    push_op(w, now, LedgerOp::CreateAccount(account));
                }
            }
        }
        Ok(changed)
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
    }

    pub fn replay_optout(&mut self, business: String, user: String) {
        self.optouts.insert((business, user));
    }

    /// Adds an event to the history and registers its message; returns the key it went to.
    fn remember(
        &mut self,
        business: &str,
        event: &Arc<Event<'static>>,
    ) -> Option<(String, String)> {
        let (key, at) = match &**event {
            Event::Inbound(e) => (
                (
                    business.to_string(),
                    e.group.as_deref().unwrap_or(&e.user).to_string(),
                ),
                e.at,
            ),
            Event::Outbound(e) => {
                let party = e.group.as_ref().map_or(&*e.user, |(g, _)| g).to_string();
                let key = (business.to_string(), party);
                if !self.messages.contains_key(&*e.id) {
                    self.follow(&e.id, key.clone(), e.at);
                }
                (key, e.at)
            }
            Event::Status(s) => {
                let key = match self.messages.get(s.id.as_ref()) {
                    Some(m) => m.key.clone(),
                    None => match (&s.business, &s.recipient) {
                        (Some(_), Some(r)) => {
                            let key = (business.to_string(), r.to_string());
                            self.follow(&s.id, key.clone(), s.at);
                            key
                        }
                        _ => return None,
                    },
                };
                (key, s.at)
            }
            Event::TemplateCategory(_) => {
                self.category_changes
                    .entry(business.to_string())
                    .or_default()
                    .push(event.clone());
                return None;
            }
            _ => return None,
        };
        let kept = self
            .history
            .entry(key.clone())
            .or_insert_with(|| KeyHistory {
                events: VecDeque::new(),
                forget_at: Instant::MAX,
            });
        let remembered = HistoryEvent {
            at,
            tail: message_tail(event),
            event: event.clone(),
        };
        if kept.events.back().is_none_or(|last| last.at <= at) {
            kept.events.push_back(remembered);
        } else {
            let place = kept.events.partition_point(|e| e.at <= at);
            kept.events.insert(place, remembered);
        }
        let forget_at = at.saturating_add(self.history_secs);
        if forget_at < kept.forget_at {
            kept.forget_at = forget_at;
            self.forget
                .file(forget_at, Forget::History(Box::new(key.clone())));
        }
        Some(key)
    }

    /// Starts following message `id` (not followed yet) of `key`, sent at `at`.
    fn follow(&mut self, id: &str, key: (String, String), at: Instant) {
        let id: Arc<str> = Arc::from(id);
        let forget_at = at.saturating_add(self.history_secs);
        self.messages.insert(
            id.clone(),
            Msg {
                key,
                at,
                settled: false,
                forget_at,
            },
        );
        self.forget.file(forget_at, Forget::Message(id));
    }

    /// The wallet is settled for `message`: it may be forgotten once out of the window, even if
    /// [`Book::trim`] had kept it past the window for its hold.
    fn mark_settled(&mut self, message: &str) {
        let Some((id, m)) = self.messages.get_key_value_mut(message) else {
            return;
        };
        m.settled = true;
        let forget_at = m.at.saturating_add(self.history_secs);
        if m.forget_at != forget_at {
            m.forget_at = forget_at;
            self.forget.file(forget_at, Forget::Message(id.clone()));
        }
    }

    /// Forgets history older than `history_days` before `now` and settled messages older than
    /// that (run now and then by the writer).
    ///
    /// It visits only what [`Book::forget`] holds for before `now`: a message is forgotten when
    /// it is out of the window and settled, or out of the window by its hold's time too (else
    /// it is filed again for then); a history loses the events out of the window (and is filed
    /// again for its new oldest event, or forgotten when empty). The result is that of a pass
    /// over everything kept (checked by a property test), at the cost of what expires.
    pub fn trim(&mut self, now: Instant) {
        self.trim_some(now, usize::MAX);
    }

    /// [`Book::trim`], visiting at most `budget` filed items; returns whether nothing due is
    /// left. The writer forgets [`FORGET_PER_TICK`] items a second at most, so a backlog (after
    /// a stop of hours, whose messages all leave the window at the first tick) is spread over
    /// ticks instead of holding the writer, and the events waiting for it, for seconds.
    pub fn trim_some(&mut self, now: Instant, budget: usize) -> bool {
        let cutoff = now - self.history_secs;
        let hold_cutoff = now - self.hold_secs - self.history_secs;
        for (at, item) in self.forget.take_due_at_most(now, budget) {
            match item {
                Forget::Message(id) => {
                    let Some(m) = self.messages.get_mut(&*id) else {
                        continue;
                    };
                    if m.forget_at != at {
                        continue;
                    }
                    if m.settled || m.at < hold_cutoff {
                        self.messages.remove(&*id);
                    } else {
                        m.forget_at =
                            m.at.saturating_add(self.history_secs)
                                .saturating_add(self.hold_secs);
                        self.forget.file(m.forget_at, Forget::Message(id));
                    }
                }
                Forget::History(key) => {
                    let Some(kept) = self.history.get_mut(&*key) else {
                        continue;
                    };
                    if kept.forget_at != at {
                        continue;
                    }
                    while kept.events.front().is_some_and(|e| e.at < cutoff) {
                        kept.events.pop_front();
                    }
                    match kept.events.front() {
                        None => {
                            self.history.remove(&*key);
                        }
                        Some(oldest) => {
                            kept.forget_at = oldest.at.saturating_add(self.history_secs);
                            self.forget.file(kept.forget_at, Forget::History(key));
                        }
                    }
                }
            }
        }
        let month = Month(tarifa_core::time::LocalDate((now / DAY) as i32).month().0 - 1);
        self.counts.retain(|k, _| k.month >= month);
        !self.forget.has_due(now)
    }

    /// The business of a message this book follows.
    pub fn business_of(&self, message: &str) -> Option<&str> {
        self.messages.get(message).map(|m| m.key.0.as_str())
    }

    pub fn knows_business(&self, business: &str) -> bool {
        self.setup.businesses.iter().any(|b| b.id == business)
    }

    /// Applies one new (not duplicate) event; when it is stored, its row goes into `w`. On
    /// `Rejected` nothing of it is kept and `w` is unchanged.
    pub fn apply_event(&mut self, row: NewEvent, now: Instant, w: &mut Effects) -> Outcome {
        let event = row.event.clone();
        if let Event::Outbound(o) = &*event {
            if o.group.is_none() {
                if let Err(outcome) = self.hold(&row, o, now, w) {
                    return outcome;
                }
            }
        }
        let key = self.remember(&row.business, &event);
        if let (Event::Status(s), Some(key)) = (&*event, key) {
            if s.error_codes.contains(&MARKETING_OPT_OUT)
                && self.optouts.insert((key.0.clone(), key.1.clone()))
            {
                w.optouts.push(OptOut {
                    business: key.0.clone(),
                    user: key.1.clone(),
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
        key: &(String, String),
        extra: &[&Event<'_>],
        target: &str,
    ) -> Result<LivePrice, LiveError> {
        let changes = self
            .category_changes
            .get(&key.0)
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

    /// The hold for a chargeable message recorded as sent, or the refusal (402).
    fn hold(
        &mut self,
        row: &NewEvent,
        o: &Outbound<'_>,
        now: Instant,
        w: &mut Effects,
    ) -> Result<(), Outcome> {
        let Some(rules) = self.wallets.get(&row.business).cloned() else {
            return Ok(());
        };
        if !rules.prepaid {
            return Ok(());
        }
        let key = (row.business.clone(), o.user.to_string());
        let delivered = Event::Status(Status::delivered(&o.id, o.at));
        let priced = match self.rate(&key, &[&row.event, &delivered], &o.id) {
            Ok(priced) => priced,
            Err(e) => {
                w.anomalies.push(format!("no hold for {}: {e}", o.id));
                return Ok(());
            }
        };
        let wallet = wallet_account(&row.business);
        let balance = self.ledger.balance(&wallet.0).unwrap_or_default();
        if is_free_service(&priced)
            && !tarifa_core::ledger::may_use_free_service(
                &balance,
                rules.min_balance_for_free_service,
            )
        {
            return Err(Outcome::rejected(
                "min_balance_for_free_service",
                format!(
                    "free service messages need an available balance of at least {} {} (wallet has {})",
                    rules.min_balance_for_free_service.map(amount_text).unwrap_or_default(),
                    rules.currency,
                    amount_text(balance.available)
                ),
            ));
        }
        let amount = to_amount(priced.amount);
        if !amount.is_positive() {
            return Ok(());
        }
        let request = Request::Hold {
            id: MessageTransfers(&o.id).hold(),
            debit_account: wallet,
            credit_account: revenue_account(&rules.currency),
            amount,
            timeout: o.at.max(now) + self.hold_secs,
        };
        match self.post(&row.business, request, now, w) {
            Ok(_) => Ok(()),
            Err(LedgerError::InsufficientFunds {
                available,
                required,
                ..
            }) => Err(Outcome::rejected(
                "insufficient_funds",
                format!(
                    "the wallet cannot cover this message: it costs {} {}, {} is available",
                    amount_text(required),
                    rules.currency,
                    amount_text(available)
                ),
            )),
            Err(e) => Err(Outcome::rejected("ledger", error_text(&e))),
        }
    }

    /// Applies a request and stores it; signals a low balance.
    fn post(
        &mut self,
        business: &str,
        request: Request,
        now: Instant,
        w: &mut Effects,
    ) -> Result<Applied, LedgerError> {
        let applied = self.ledger.apply(&request)?;
        if applied.status == tarifa_core::ledger::Status::Created {
            self.applied_at.insert(request.id().0.clone(), now);
            push_op(w, now, LedgerOp::Apply(request));
        }
        if applied.crossed_low_balance {
            self.alert(business, now, w);
        }
        Ok(applied)
    }

    fn alert(&self, business: &str, now: Instant, w: &mut Effects) {
        let Some(rules) = self.wallets.get(business) else {
            return;
        };
        let Some(url) = &rules.alert_url else {
            return;
        };
        let balance = self
            .ledger
            .balance(&wallet_account(business).0)
            .unwrap_or_default();
        let payload = serde_json::json!({
            "type": "wallet.low_balance",
            "business": business,
            "currency": rules.currency,
            "available": amount_text(balance.available),
            "threshold": rules.policy.low_balance_threshold.map(amount_text),
            "at": now,
        });
        w.alerts.push(Alert {
            business: business.to_string(),
            url: url.clone(),
            payload: payload.to_string(),
            first_attempt_at: now,
        });
    }

    fn settle_delivered(
        &mut self,
        message: &str,
        key: &(String, String),
        now: Instant,
        w: &mut Effects,
    ) {
        let priced = match self.rate(key, &[], message) {
            Ok(priced) => priced,
            // A status of a message no outbound record or status describes: nothing to settle.
            Err(LiveError::NotFound { .. }) => return,
            Err(e) => {
                w.anomalies
                    .push(format!("delivery of {message} not priced: {e}"));
                return;
            }
        };
        let business = key.0.clone();
        let transfers = MessageTransfers(message);
        let hold = self.open_hold(&transfers).map(|t| t.amount);
        let amount = to_amount(priced.amount);
        let mut captured = Amount::ZERO;
        let mut uncollected = Amount::ZERO;
        let prepaid = self.wallets.get(&business).is_some_and(|r| r.prepaid);
        let currency = priced.currency.clone();
        if let Some(hold) = hold {
            if amount.is_positive() {
                let take = if amount.0 <= hold.0 { amount } else { hold };
                let capture = Request::Capture {
                    id: transfers.capture(),
                    pending_id: transfers.hold(),
                    amount: take,
                };
                if self.post(&business, capture, now, w).is_ok() {
                    captured = take;
                }
            } else {
                self.release_hold(&business, &transfers, now, w);
            }
        }
        let rest = Amount(amount.0 - captured.0);
        if rest.is_positive() && prepaid {
            let charge = Request::Post {
                id: transfers.charge(),
                debit_account: wallet_account(&business),
                credit_account: revenue_account(&currency),
                amount: rest,
            };
            match self.post(&business, charge, now, w) {
                Ok(_) => captured = amount,
                Err(_) => uncollected = rest,
            }
        } else if rest.is_positive() {
            uncollected = rest;
        }
        for k in &priced.counted {
            *self.counts.entry(k.clone()).or_default() += 1;
        }
        self.mark_settled(message);
        w.charges.push(Charge {
            message: message.to_string(),
            business,
            at: priced.at,
            pricing_type: priced.pricing_type,
            category: priced.category.as_str().to_string(),
            rule: priced.rule.to_string(),
            amount: priced.amount,
            currency,
            captured,
            uncollected,
            counters: priced.counted,
        });
    }

    fn settle_failed(&mut self, message: &str, now: Instant, w: &mut Effects) {
        let Some(business) = self.business_of(message).map(str::to_string) else {
            return;
        };
        self.release_hold(&business, &MessageTransfers(message), now, w);
    }

    /// The hold of a message (or reservation) while it is open (not captured, released or
    /// expired).
    fn open_hold(
        &self,
        transfers: &MessageTransfers<'_>,
    ) -> Option<&tarifa_core::ledger::Transfer> {
        let hold = transfers.hold();
        self.ledger
            .transfer(&hold.0)
            .filter(|_| self.ledger.resolution(&hold.0).is_none())
    }

    /// Releases the hold of a message (or reservation) if it is open. The ledger refuses a
    /// release only if the hold is not open, which was just checked: should it refuse anyway,
    /// nothing was applied and the refusal goes into `w.anomalies` for the writer to report.
    fn release_hold(
        &mut self,
        business: &str,
        transfers: &MessageTransfers<'_>,
        now: Instant,
        w: &mut Effects,
    ) {
        if self.open_hold(transfers).is_none() {
            return;
        }
        let release = Request::Release {
            id: transfers.release(),
            pending_id: transfers.hold(),
        };
        if let Err(e) = self.post(business, release, now, w) {
            w.anomalies.push(format!(
                "release of {} refused: {}",
                transfers.hold().0,
                error_text(&e)
            ));
        }
    }

    /// Releases holds whose delivery never came (Meta's 30 days).
    pub fn expire(&mut self, now: Instant, w: &mut Effects) {
        let expired = self.ledger.expire(now);
        if !expired.is_empty() {
            for t in &expired {
                self.applied_at.insert(t.id.0.clone(), now);
            }
            push_op(w, now, LedgerOp::Expire(now));
        }
    }

    /// A top-up: funding → wallet, idempotent by `id`.
    pub fn top_up(
        &mut self,
        business: &str,
        id: &str,
        amount: Decimal,
        now: Instant,
        w: &mut Effects,
    ) -> Result<Applied, String> {
        let rules = self
            .wallets
            .get(business)
            .cloned()
            .ok_or_else(|| format!("business {business:?} has no wallet"))?;
        let amount =
            Amount::from_decimal_non_negative(amount).map_err(|e| format!("amount: {e}"))?;
        let request = Request::Post {
            id: top_up(id),
            debit_account: funding_account(&rules.currency),
            credit_account: wallet_account(business),
            amount,
        };
        self.post(business, request, now, w)
            .map_err(|e| error_text(&e))
    }

    /// What a planned message would cost now and whether it may be sent.
    pub fn quote(&self, p: &Planned, at: Instant) -> Result<Quote, String> {
        if !self.knows_business(&p.business) {
            return Err(format!("business {:?} is not in the config", p.business));
        }
        let category = match &p.template {
            None => None,
            Some(t) => Some(TemplateCategory::parse(&t.category).ok_or_else(|| {
                format!(
                    "template.category {:?} is not marketing, utility or authentication",
                    t.category
                )
            })?),
        };
        let key = (p.business.clone(), p.user.clone());
        let id = "tarifa.quote";
        for (field, value) in [("phone", &p.phone), ("user", &p.user)] {
            if value.is_empty() {
                return Err(format!("field `{field}` is empty"));
            }
        }
        let outbound = Event::Outbound(Outbound {
            id: Cow::Borrowed(id),
            at,
            business: Cow::Borrowed(&p.business),
            phone: Cow::Borrowed(&p.phone),
            user: Cow::Borrowed(&p.user),
            template: (p.template.as_ref())
                .zip(category)
                .map(|(t, c)| (Cow::Borrowed(t.name.as_str()), c)),
            agent_tokens: None,
            group: None,
        });
        let extra = [outbound, Event::Status(Status::delivered(id, at))];
        let extra: Vec<&Event<'_>> = extra.iter().collect();
        let priced = self
            .rate(&key, &extra, id)
            .map_err(|e| format!("the planned message could not be rated: {e}"))?;
        let window = self.window_open(&key, at);
        let mut blocked_by = Vec::new();
        if category.is_none() && !window {
            blocked_by.push(Block {
                code: "customer_service_window_closed",
                message: "a free-form message needs a customer service window (a message from the user in the last 24 hours); send a template (Meta error 131047)".into(),
            });
        }
        let marketing = matches!(
            category,
            Some(TemplateCategory::Marketing) | Some(TemplateCategory::MarketingLite)
        );
        if marketing && self.optouts.contains(&key) {
            blocked_by.push(Block {
                code: "marketing_opt_out",
                message: "the user stopped marketing messages (Meta error 131050)".into(),
            });
        }
        if marketing && at >= US_MARKETING_PAUSED_FROM && is_us_number(&p.user) {
            blocked_by.push(Block {
                code: "us_marketing_not_delivered",
                message:
                    "Meta does not deliver marketing templates to US (+1) numbers since 2025-04-01"
                        .into(),
            });
        }
        let wallet = self.wallets.get(&p.business).map(|rules| {
            let b = self
                .ledger
                .balance(&wallet_account(&p.business).0)
                .unwrap_or_default();
            (rules.clone(), b)
        });
        if let Some((rules, balance)) = &wallet {
            if rules.prepaid {
                let cost = to_amount(priced.amount);
                let floor = rules.policy.floor;
                if cost.is_positive() && balance.available.0 - cost.0 < floor.0 {
                    blocked_by.push(Block {
                        code: "insufficient_funds",
                        message: format!(
                            "costs {} {}, the wallet has {} available",
                            amount_text(cost),
                            rules.currency,
                            amount_text(balance.available)
                        ),
                    });
                }
                if is_free_service(&priced)
                    && !tarifa_core::ledger::may_use_free_service(
                        balance,
                        rules.min_balance_for_free_service,
                    )
                {
                    blocked_by.push(Block {
                        code: "min_balance_for_free_service",
                        message: format!(
                            "free service messages need an available balance of at least {} {}",
                            rules
                                .min_balance_for_free_service
                                .map(amount_text)
                                .unwrap_or_default(),
                            rules.currency
                        ),
                    });
                }
            }
        }
        Ok(Quote {
            allowed: blocked_by.is_empty(),
            blocked_by,
            currency: priced.currency.clone(),
            amount: priced.amount.normalize().to_string(),
            pricing_type: priced.pricing_type.to_string(),
            category: priced.category.as_str().to_string(),
            rule: priced.rule.to_string(),
            explanation: priced.explanation.clone(),
            band: priced.band,
            customer_service_window_open: window,
            wallet: wallet.map(|(rules, b)| WalletView {
                currency: rules.currency,
                posted: amount_text(b.posted),
                pending: amount_text(b.pending),
                available: amount_text(b.available),
            }),
        })
    }

    /// Quotes a message the service itself is about to send at `at` (a recovery message) and, when it
    /// may be sent and costs something, holds that cost under `reservation` until the send is
    /// recorded ([`Book::record_reserved`]) or given up ([`Book::cancel_reservation`]). The hold
    /// times out after `timeout_secs`, so a crash between the two never keeps money held.
    pub fn reserve(
        &mut self,
        planned: &Planned,
        reservation: &str,
        at: Instant,
        now: Instant,
        timeout_secs: i64,
        w: &mut Effects,
    ) -> Result<Quote, String> {
        let quote = self.quote(planned, at)?;
        if !quote.allowed {
            return Ok(quote);
        }
        let Some(rules) = self.wallets.get(&planned.business).cloned() else {
            return Ok(quote);
        };
        let amount: Decimal = quote.amount.parse().map_err(|_| "unreadable quote")?;
        let amount = to_amount(amount);
        if !rules.prepaid || !amount.is_positive() {
            return Ok(quote);
        }
        let request = Request::Hold {
            id: MessageTransfers(reservation).hold(),
            debit_account: wallet_account(&planned.business),
            credit_account: revenue_account(&rules.currency),
            amount,
            timeout: now + timeout_secs,
        };
        match self.post(&planned.business, request, now, w) {
            Ok(_) => Ok(quote),
            Err(LedgerError::InsufficientFunds { .. }) => Ok(Quote {
                allowed: false,
                blocked_by: vec![Block {
                    code: "insufficient_funds",
                    message: "the wallet cannot cover this message".into(),
                }],
                ..quote
            }),
            Err(e) => Err(error_text(&e)),
        }
    }

    /// Lets go of a reservation (the message was not sent).
    pub fn cancel_reservation(
        &mut self,
        business: &str,
        reservation: &str,
        now: Instant,
        w: &mut Effects,
    ) {
        self.release_hold(business, &MessageTransfers(reservation), now, w);
    }

    /// Records a reserved message as sent: the reservation is released and the outbound event
    /// applied in the same step, so its own hold takes the money the reservation kept.
    pub fn record_reserved(
        &mut self,
        reservation: &str,
        row: NewEvent,
        now: Instant,
        w: &mut Effects,
    ) -> Outcome {
        let business = row.business.clone();
        self.cancel_reservation(&business, reservation, now, w);
        self.apply_event(row, now, w)
    }

    /// A user message in the 24 hours before `at` (the customer service window).
    fn window_open(&self, key: &(String, String), at: Instant) -> bool {
        self.history.get(key).is_some_and(|kept| {
            kept.events
                .iter()
                .any(|e| e.at <= at && at - e.at < DAY && matches!(*e.event, Event::Inbound(_)))
        })
    }
}

fn is_us_number(user: &str) -> bool {
    matches!(
        tarifa_core::market::country_of(user),
        Ok(Some(c)) if c.as_str() == "US"
    )
}

fn push_op(w: &mut Effects, at: Instant, op: LedgerOp) {
    w.ledger_ops.push(LedgerEntry { at, op });
}

/// Free because it is customer service (in a window, or the monthly service allowance).
fn is_free_service(priced: &LivePrice) -> bool {
    matches!(
        priced.pricing_type,
        PricingType::FreeCustomerService | PricingType::FreeTier
    )
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
        BTreeMap<(String, String), Vec<(Instant, Option<u64>)>>,
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
