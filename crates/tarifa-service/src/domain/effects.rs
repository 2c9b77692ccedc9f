//! What a change of the book produces, for storage to write in one transaction: new events,
//! ledger operations, charges, opt-outs, alerts and dead letters, as typed values. Storage turns
//! them into rows (`crate::storage`, through its versioned codec); the domain never sees a row.

use super::ids::EventKey;
use rust_decimal::Decimal;
use std::sync::Arc;
use tarifa_core::category::PricingType;
use tarifa_core::engine::CounterKey;
use tarifa_core::input::Event;
use tarifa_core::ledger::{Amount, Ledger, NewAccount, Request};
use tarifa_core::time::Instant;

/// The kind of a stored event (its `kind` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Inbound,
    Outbound,
    Status,
    TemplateCategory,
    AccountUpdate,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Inbound => "inbound",
            EventKind::Outbound => "outbound",
            EventKind::Status => "status",
            EventKind::TemplateCategory => "template_category",
            EventKind::AccountUpdate => "account_update",
        }
    }
}

/// A new event: `line` is a normalized JSON line that `tarifa rate` reads back.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    /// Idempotency key: a copy with the same key is a duplicate.
    pub key: EventKey,
    pub business: String,
    pub kind: EventKind,
    /// The message id for outbound records and statuses, else empty.
    pub message: String,
    pub at: Instant,
    pub received_at: Instant,
    pub line: String,
    /// The event `line` reads as, parsed once by the request handler (not stored).
    pub event: Arc<Event<'static>>,
}

impl NewEvent {
    /// What storage finds the event by: its key and its message id.
    pub fn lookup(&self) -> (&str, &str) {
        (self.key.as_str(), &self.message)
    }
}

/// A priced message (the wallet's view; invoices re-rate from the events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Charge {
    pub message: String,
    pub business: String,
    pub at: Instant,
    pub pricing_type: PricingType,
    /// The billed category, in Meta's webhook vocabulary.
    pub category: String,
    /// The rule that decided the price.
    pub rule: String,
    /// Exact, in the business's currency, at its price list.
    pub amount: Decimal,
    pub currency: String,
    /// Taken from the wallet.
    pub captured: Amount,
    /// Charged but not covered by the wallet (a postpaid remainder).
    pub uncollected: Amount,
    /// The monthly counters (free tiers, allowances, volume tiers) the message moved.
    pub counters: Vec<CounterKey>,
}

/// One entry of the ledger's operation log, replayed at start.
#[derive(Clone, Debug, PartialEq)]
pub enum LedgerOp {
    CreateAccount(NewAccount),
    Apply(Request),
    Expire(Instant),
}

impl LedgerOp {
    /// Applies this operation to `ledger` (the book at start, and anyone auditing the stored
    /// log); returns the ids of the transfers it applied or expired.
    pub fn apply_to(&self, ledger: &mut Ledger) -> anyhow::Result<Vec<String>> {
        Ok(match self {
            LedgerOp::CreateAccount(a) => {
                ledger
                    .create_account(a)
                    .map_err(|e| anyhow::anyhow!("replaying account {}: {e:?}", a.id.0))?;
                Vec::new()
            }
            LedgerOp::Apply(r) => {
                ledger
                    .apply(r)
                    .map_err(|e| anyhow::anyhow!("replaying transfer {}: {e:?}", r.id().0))?;
                vec![r.id().0.clone()]
            }
            LedgerOp::Expire(now) => ledger.expire(*now).into_iter().map(|t| t.id.0).collect(),
        })
    }
}

/// A ledger operation and when it was applied.
#[derive(Clone, Debug, PartialEq)]
pub struct LedgerEntry {
    pub at: Instant,
    pub op: LedgerOp,
}

/// A user who stopped marketing messages from a business.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OptOut {
    pub business: String,
    pub user: String,
    pub at: Instant,
}

/// An outgoing webhook to deliver (a low-balance alert).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Alert {
    pub business: String,
    pub url: String,
    /// The JSON body.
    pub payload: String,
    pub first_attempt_at: Instant,
}

/// A signed webhook body that could not be read, kept for inspection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeadLetter {
    pub received_at: Instant,
    pub source: String,
    pub reason: String,
    pub body: String,
}

/// Everything one group commit writes.
#[derive(Default, Debug)]
pub struct Effects {
    pub events: Vec<NewEvent>,
    /// In the order applied.
    pub ledger_ops: Vec<LedgerEntry>,
    pub charges: Vec<Charge>,
    /// Charges stored by an earlier group, re-priced (one per message; see
    /// [`Effects::correct_charge`]).
    pub charge_updates: Vec<Charge>,
    pub optouts: Vec<OptOut>,
    pub alerts: Vec<Alert>,
    pub dead_letters: Vec<DeadLetter>,
    /// Money operations that could not be applied although they should have (a release of a
    /// hold the book believed open): nothing of them was applied; the writer logs and counts
    /// them, so they are never silently dropped.
    pub anomalies: Vec<String>,
}

impl Effects {
    /// A message's charge as re-priced: it replaces the row this group writes for the message
    /// (new or corrected already), else it updates the stored one.
    pub fn correct_charge(&mut self, charge: Charge) {
        let same = |c: &&mut Charge| c.message == charge.message;
        if let Some(c) = self.charges.iter_mut().find(same) {
            *c = charge;
        } else if let Some(c) = self.charge_updates.iter_mut().find(same) {
            *c = charge;
        } else {
            self.charge_updates.push(charge);
        }
    }

    /// Whether there is nothing to store.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.ledger_ops.is_empty()
            && self.charges.is_empty()
            && self.charge_updates.is_empty()
            && self.optouts.is_empty()
            && self.alerts.is_empty()
            && self.dead_letters.is_empty()
    }
}
