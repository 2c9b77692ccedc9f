//! Typed ids: every key and ledger id the service makes is built here, in one place, so the
//! formats that are stored (and must never change) are written once.
//!
//! The stored formats: event keys `in:{id}`, `out:{id}`, `st:{id}:{status}:{recipient}`,
//! `tc:{business}:{template}:{at}:{category}`, `au:{business}:{at}:{hash of the line}`; ledger
//! accounts `wallet:{business}`, `revenue:{currency}`, `funding:{currency}`; transfers
//! `hold:{message}`, `capture:{message}`, `release:{message}`, `charge:{message}`,
//! `topup:{id}`. A reservation (the cost of a message the service is about to send, sales
//! recovery) is held under the reservation's own id (`rcv:{recovery}`), apart from the
//! message's: when the message is recorded as sent, the reservation is released and the
//! message's own hold made in the same step (`Book::record_reserved`).

use std::fmt;
use tarifa_core::input::DeliveryStatus;
use tarifa_core::ledger::{AccountId, TransferId};
use tarifa_core::time::Instant;

/// The idempotency key of a stored event.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventKey(String);

impl EventKey {
    pub fn inbound(id: &str) -> EventKey {
        EventKey(format!("in:{id}"))
    }

    pub fn outbound(id: &str) -> EventKey {
        EventKey(format!("out:{id}"))
    }

    pub fn status(id: &str, status: DeliveryStatus, recipient: &str) -> EventKey {
        let status = match status {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        };
        EventKey(format!("st:{id}:{status}:{recipient}"))
    }

    pub fn template_category(
        business: &str,
        template: &str,
        at: Instant,
        category: &str,
    ) -> EventKey {
        EventKey(format!("tc:{business}:{template}:{at}:{category}"))
    }

    /// An account update has no id of its own: its business, time and line's hash stand for it.
    pub fn account_update(business: &str, at: Instant, line: &str) -> EventKey {
        let hash = xxhash_rust::xxh3::xxh3_64(line.as_bytes());
        EventKey(format!("au:{business}:{at}:{hash:016x}"))
    }

    /// A key read back from storage.
    pub fn stored(key: String) -> EventKey {
        EventKey(key)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EventKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A conversation key: a business and the party it talks with (a user's number, or a group).
/// Windows, conversations and opt-outs are per key.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConversationKey {
    pub business: String,
    /// The user's number as given, or the group's id.
    pub party: String,
}

impl ConversationKey {
    pub fn new(business: impl Into<String>, party: impl Into<String>) -> ConversationKey {
        ConversationKey {
            business: business.into(),
            party: party.into(),
        }
    }
}

/// A business's prepaid wallet.
pub fn wallet_account(business: &str) -> AccountId {
    AccountId(format!("wallet:{business}"))
}

/// Where a currency's charges go.
pub fn revenue_account(currency: &str) -> AccountId {
    AccountId(format!("revenue:{currency}"))
}

/// Where a currency's top-ups come from.
pub fn funding_account(currency: &str) -> AccountId {
    AccountId(format!("funding:{currency}"))
}

/// The ledger transfers of one message (or of a reservation made under its id).
pub struct MessageTransfers<'a>(pub &'a str);

impl MessageTransfers<'_> {
    /// The hold of its price, made when it is recorded as sent.
    pub fn hold(&self) -> TransferId {
        TransferId(format!("hold:{}", self.0))
    }

    /// The capture of the hold at delivery.
    pub fn capture(&self) -> TransferId {
        TransferId(format!("capture:{}", self.0))
    }

    /// The release of the hold (failed, free after all, or a reservation let go).
    pub fn release(&self) -> TransferId {
        TransferId(format!("release:{}", self.0))
    }

    /// A direct charge of what the hold did not cover.
    pub fn charge(&self) -> TransferId {
        TransferId(format!("charge:{}", self.0))
    }

    /// The `n`th correction (1, 2, …) of its charge after new evidence re-priced it: a new
    /// transfer, never an edit of an old one; numbered, so a replay finds it applied.
    pub fn adjustment(&self, n: u32) -> TransferId {
        TransferId(format!("adjust:{}:{n}", self.0))
    }
}

/// A top-up, idempotent by the caller's id.
pub fn top_up(id: &str) -> TransferId {
    TransferId(format!("topup:{id}"))
}
