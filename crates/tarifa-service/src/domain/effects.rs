//! What a change of the book produces, for storage to write in one transaction: the rows of
//! new events, ledger operations, charges, opt-outs, alerts and dead letters.

/// One event as stored: `line` is a normalized JSON line that `tarifa rate` reads back.
#[derive(Clone, Debug, PartialEq)]
pub struct EventRow {
    /// Idempotency key (`out:{id}`, `st:{id}:{status}:{recipient}`, …).
    pub key: String,
    pub business: String,
    pub kind: &'static str,
    /// The message id for outbound records and statuses, else empty.
    pub message: String,
    pub at: i64,
    pub received_at: i64,
    pub line: String,
    /// The event `line` reads as, parsed once by the request handler (not stored).
    pub event: std::sync::Arc<tarifa_core::input::Event<'static>>,
}

impl EventRow {
    /// What [`Store::existing_keys`] finds the event by: its key and its message id.
    pub fn lookup(&self) -> (&str, &str) {
        (&self.key, &self.message)
    }
}

/// A priced message (the wallet's view; invoices re-rate from the events).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChargeRow {
    pub message: String,
    pub business: String,
    pub at: i64,
    pub pricing_type: String,
    pub category: String,
    pub rule: String,
    /// Exact decimal, in the business's currency, at its price list.
    pub amount: String,
    pub currency: String,
    /// Taken from the wallet.
    pub captured: String,
    /// Charged but not covered by the wallet (a postpaid remainder).
    pub uncollected: String,
    /// The monthly counters the message moved, as JSON.
    pub counters: String,
}

/// Everything one group commit writes.
#[derive(Default, Debug)]
pub struct WriteSet {
    pub events: Vec<EventRow>,
    /// (instant, JSON of a `LedgerOp`).
    pub ledger_ops: Vec<(i64, String)>,
    pub charges: Vec<ChargeRow>,
    pub optouts: Vec<(String, String, i64)>,
    /// (business, url, payload, first attempt at).
    pub alerts: Vec<(String, String, String, i64)>,
    /// (received at, source, reason, body).
    pub dead_letters: Vec<(i64, String, String, String)>,
}

impl WriteSet {
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
            && self.ledger_ops.is_empty()
            && self.charges.is_empty()
            && self.optouts.is_empty()
            && self.alerts.is_empty()
            && self.dead_letters.is_empty()
    }
}
