//! The engine's data: the compact records events are interned into, and the plain values its
//! steps hand each other and the [`Bill`](super::bill::Bill) (conversations, counters, input
//! counts). Depends on no other part of the engine.

use crate::category::{BilledCategory, MessageKind, PricingModel};
use crate::input::{DeliveryStatus, MetaPricing};
use crate::time::Instant;

pub(crate) const NONE: u32 = u32::MAX;
pub(crate) const NEVER: Instant = i64::MAX;

/// 128-bit hash of an id: equal ids collide by construction; unequal ones practically never.
pub(crate) type IdHash = [u64; 2];

pub(crate) fn id_hash(id: &str) -> IdHash {
    let h = xxhash_rust::xxh3::xxh3_128(id.as_bytes());
    [(h >> 64) as u64, h as u64]
}

/// Interns strings to dense indices.
#[derive(Default, Clone)]
pub(crate) struct Interner {
    /// Indices into `names`, found by the hash of the name: each name is stored once.
    table: hashbrown::HashTable<u32>,
    pub(crate) names: Vec<Box<str>>,
}

impl std::fmt::Debug for Interner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Interner({} names)", self.names.len())
    }
}

fn name_hash(name: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(name.as_bytes())
}

impl Interner {
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        let hash = name_hash(name);
        let names = &self.names;
        if let Some(&i) = self.table.find(hash, |&i| &*names[i as usize] == name) {
            return i;
        }
        let i = self.names.len() as u32;
        self.names.push(name.into());
        let names = &self.names;
        self.table
            .insert_unique(hash, i, |&j| name_hash(&names[j as usize]));
        i
    }
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct InboundRec {
    pub id: IdHash,
    pub at: Instant,
    pub key: u32,
    /// Bit 0: came through an entry point (referral); bit 1: from a qualifying (mobile) client.
    pub flags: u8,
}

pub(crate) const REFERRAL: u8 = 1;
pub(crate) const QUALIFYING_CLIENT: u8 = 2;

/// How an outbound record came to be known.
pub(crate) const EXPLICIT: u8 = 0;
pub(crate) const FROM_WEBHOOK: u8 = 1;

#[derive(Clone, Copy, Debug)]
pub(crate) struct OutboundRec {
    pub id: IdHash,
    /// Position of the id text in the id arena.
    pub id_at: u64,
    pub id_len: u32,
    pub at: Instant,
    pub business: u32,
    pub phone: u32,
    /// Recipient user index, or `NONE` for a group message.
    pub user: u32,
    pub key: u32,
    pub kind: MessageKind,
    pub source: u8,
    pub template: u32,
    pub tokens: u64,
    /// Group members: a range of `Rater::members`.
    pub members_at: u32,
    pub members_len: u32,
    // Filled by the join.
    pub sent_at: Instant,
    pub delivered_at: Instant,
    pub failed: bool,
    pub meta: Option<MetaPricing>,
    /// Meta's `conversation.origin.type` from the statuses (the least, for order independence).
    pub origin: Option<BilledCategory>,
}

#[derive(Clone, Copy, Debug)]
pub(crate) struct StatusRec {
    pub id: IdHash,
    pub at: Instant,
    pub status: DeliveryStatus,
    /// Member user index for group messages (or the recipient of a webhook status), else `NONE`.
    pub recipient: u32,
    pub pricing: Option<MetaPricing>,
    pub origin: Option<BilledCategory>,
}

/// How Meta's pricing of a message compared with tarifa's rules.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetaCheck {
    /// Meta's webhooks said nothing about the price (or the message was not delivered).
    NotGiven,
    /// Meta bills it as tarifa's rules do.
    Agrees,
    /// Meta bills it otherwise; the rules decided (`verify`, or nothing to follow).
    Differs,
    /// Meta bills it otherwise and was followed; the rules would have applied this rule.
    Followed { overruled: &'static str },
}

impl MetaCheck {
    pub fn as_str(self) -> &'static str {
        match self {
            MetaCheck::NotGiven => "",
            MetaCheck::Agrees => "agrees",
            MetaCheck::Differs => "differs",
            MetaCheck::Followed { .. } => "followed",
        }
    }
}

/// Per-member delivery of a group message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MemberDelivery {
    pub message: IdHash,
    pub user: u32,
    pub delivered_at: Instant,
}

/// Counts of what the input held, for the run report.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct InputStats {
    pub events: u64,
    pub inbound: u64,
    pub outbound: u64,
    pub statuses: u64,
    pub template_category_changes: u64,
    /// Events the rating does not use, account updates included.
    pub ignored: u64,
    /// `account_update` webhooks (also counted in `ignored`).
    pub account_updates: u64,
    pub duplicate_inbound: u64,
    pub duplicate_outbound: u64,
    /// Same id, different content: one record was kept by a fixed rule.
    pub conflicting_outbound: u64,
    /// Statuses whose message is not in the input (normalized statuses only: a webhook status
    /// describes its own message).
    pub orphan_statuses: u64,
}

/// Which monthly counter a chargeable message is subject to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Counter {
    None,
    /// B-5: first 1,000 conversations per WABA per month, either type.
    FreeConversations,
    /// C-7: first 1,000 service conversations per WABA per month.
    FreeServiceConversations,
    /// D-19: free service messages per business phone number per month.
    FreeServiceMessages,
    /// V-1: graduated volume tiers of utility.
    UtilityTiers,
    /// V-1, V-6: graduated volume tiers of authentication (shared with auth-international).
    AuthenticationTiers,
    /// D-14: priced per token, not by card.
    AgentTokens,
}

impl Counter {
    pub(crate) const ALL: [Counter; 7] = [
        Counter::None,
        Counter::FreeConversations,
        Counter::FreeServiceConversations,
        Counter::FreeServiceMessages,
        Counter::UtilityTiers,
        Counter::AuthenticationTiers,
        Counter::AgentTokens,
    ];

    /// A stable name, for storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Counter::None => "none",
            Counter::FreeConversations => "free_conversations",
            Counter::FreeServiceConversations => "free_service_conversations",
            Counter::FreeServiceMessages => "free_service_messages",
            Counter::UtilityTiers => "utility_tiers",
            Counter::AuthenticationTiers => "authentication_tiers",
            Counter::AgentTokens => "agent_tokens",
        }
    }

    pub fn parse(name: &str) -> Option<Counter> {
        Counter::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A conversation (eras B, C) or entry-point window (all conversation eras and D).
#[derive(Clone, Copy, Debug)]
pub struct Conversation {
    /// Index of the message that opened it.
    pub opener: u32,
    pub key: u32,
    pub category: BilledCategory,
    pub model: PricingModel,
    pub start: Instant,
    /// First instant it is no longer open; earlier than planned when an entry point closed it
    /// (C-10).
    pub expiry: Instant,
}
