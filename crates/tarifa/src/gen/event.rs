//! One generated event, as small as it can be (a queue holds every event in flight): what
//! happened, to which message and user, when, and the few facts its line needs. Events order by
//! time, then by the order they were generated in.

use super::catalog::TemplateId;
use super::clock::Secs;
use super::pricing::PriceTag;
use std::cmp::Ordering;

/// What an event is. The numbers salt the webhook and duplicate draws: they are part of the
/// output.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Kind {
    Inbound = 0,
    Outbound = 1,
    Sent = 2,
    Delivered = 3,
    Read = 4,
    Failed = 5,
}

impl Kind {
    /// The `status` of a status event.
    pub fn status_name(self) -> &'static str {
        match self {
            Kind::Sent => "sent",
            Kind::Delivered => "delivered",
            Kind::Read => "read",
            _ => "failed",
        }
    }
}

/// Written as a raw Cloud API webhook body.
pub(super) const F_HOOK: u8 = 1;
/// This status carries the `pricing` (and `conversation`) object in webhook form.
pub(super) const F_PRICING: u8 = 2;
/// An inbound message from a Click-to-WhatsApp ad or post.
pub(super) const F_REFERRAL: u8 = 4;
/// The referral is a post, not an ad.
pub(super) const F_POST: u8 = 8;
/// A webhook retry of an earlier event.
pub(super) const F_DUP: u8 = 16;

const TIME_SHIFT: u32 = 34;
const SEQ_MASK: u64 = (1 << TIME_SHIFT) - 1;

#[derive(Clone, Copy)]
pub(super) struct Ev {
    /// Emission order: time (bits 34..) then generation sequence.
    pub key: u64,
    /// Message counter (the id is derived from it); statuses carry their message's.
    pub msg: u64,
    pub user: u32,
    /// Event time.
    pub at: Secs,
    /// Conversation (CBP) or entry-point window (PMP) start, for webhook decoration.
    pub conv: Secs,
    pub kind: Kind,
    pub tmpl: TemplateId,
    pub price: PriceTag,
    pub flags: u8,
    /// Agent tokens (outbound), error variant (failed), text index (inbound), device (inbound).
    pub extra: u16,
}

impl Ev {
    /// An event with nothing but its kind, message, user and time.
    pub fn new(kind: Kind, msg: u64, user: u32, at: Secs) -> Ev {
        Ev {
            key: 0,
            msg,
            user,
            at,
            conv: 0,
            kind,
            tmpl: 0,
            price: PriceTag::NONE,
            flags: 0,
            extra: 0,
        }
    }

    /// The time it is emitted at.
    pub fn time(&self) -> Secs {
        (self.key >> TIME_SHIFT) as Secs
    }

    /// Places the event at `at`, after every event generated before sequence number `seq`.
    pub fn schedule(&mut self, at: Secs, seq: u64) {
        self.key = (u64::from(at) << TIME_SHIFT) | (seq & SEQ_MASK);
    }

    /// The error of a failed status: code and title.
    pub fn error(&self) -> (u64, &'static str) {
        if self.extra == 0 {
            (
                131_049,
                "This message was not delivered to maintain healthy ecosystem engagement.",
            )
        } else {
            (131_026, "Message undeliverable")
        }
    }
}

impl PartialEq for Ev {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ev {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> Ordering {
        other.key.cmp(&self.key)
    }
}
