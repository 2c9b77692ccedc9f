//! A session's windows as Meta sees them: the customer service window (1-6: 24 h from the user's
//! last message), the entry point window (D-5, B-7), and in eras B and C the conversations an
//! outbound opens or falls into (B-3, B-4, B-6, C-2 … C-5, C-8, C-10).

use super::clock::{Secs, DAY};
use super::pricing::{PriceTag, SERVICE_FREE_FROM};
use super::users::Device;
use super::world::World;
use tarifa_core::category::BilledCategory;
use tarifa_core::engine::Era;

/// An open conversation: its start and category.
type Open = (Secs, BilledCategory);

const NO_CONVERSATION: Open = (Secs::MAX, BilledCategory::Marketing);
/// Slot of [`Session::conversations`] for era C's service conversation.
const SERVICE_SLOT: usize = 3;
/// Slot of [`Session::conversations`] for era B's single user/business-initiated conversation.
const ERA_B_SLOT: usize = 4;

/// Per-session state: the windows as seen by this session.
pub(super) struct Session {
    pub user: u32,
    pub device: Device,
    /// The business answers with Meta Business Agent.
    pub agent: bool,
    pub last_inbound: Option<Secs>,
    pub entry_point_window: Option<(Secs, Secs)>,
    /// The user came from an ad on Android/iOS: the next business reply opens an entry point
    /// window.
    pub entry_point_pending: bool,
    /// Open conversations (eras B and C): marketing, utility, authentication, service, and
    /// era B's single user/business-initiated one.
    conversations: [Open; 5],
}

impl Session {
    pub fn new(w: &World, user: u32) -> Session {
        let business = w.phone_of(user).business;
        Session {
            user,
            device: w.users.device[user as usize],
            agent: w.businesses[business as usize].agent,
            last_inbound: None,
            entry_point_window: None,
            entry_point_pending: false,
            conversations: [NO_CONVERSATION; 5],
        }
    }

    pub fn in_service_window(&self, t: Secs) -> bool {
        self.last_inbound.is_some_and(|last| t < last + DAY)
    }

    pub fn in_entry_point_window(&self, t: Secs) -> bool {
        self.entry_point_start(t).is_some()
    }

    /// The start of the entry point window `t` falls in, if any.
    pub fn entry_point_start(&self, t: Secs) -> Option<Secs> {
        self.entry_point_window
            .filter(|&(start, end)| t >= start && t < end)
            .map(|(start, _)| start)
    }

    /// The business's first reply to an ad: the entry point window opens if the reply is within
    /// the customer service window.
    pub fn open_entry_point_window(&mut self, w: &World, t: Secs, in_service_window: bool) {
        self.entry_point_pending = false;
        if !in_service_window {
            return;
        }
        // B-7: 24 h entry point conversations before 2023-03-01, then 72 h.
        let length = if w.clock.date(t) < w.entry_point_72h_from {
            DAY
        } else {
            3 * DAY
        };
        self.entry_point_window = Some((t, t + length));
        // C-10: an entry point conversation closes the others.
        self.conversations = [NO_CONVERSATION; 5];
    }

    /// The conversation an outbound of eras B/C belongs to, opening one if needed: its pricing
    /// tag and start (judged at send time; only a delivered message opens one, B-2, C-2).
    pub fn conversation(
        &mut self,
        w: &World,
        t: Secs,
        category: BilledCategory,
        free_form: bool,
        delivered: bool,
    ) -> (PriceTag, Secs) {
        if let Some(start) = self.entry_point_start(t) {
            return (
                PriceTag::conversation(BilledCategory::ReferralConversion, false),
                start,
            );
        }
        if Era::of(w.clock.date(t)) <= Era::InitiatedConversations {
            return self.initiated_conversation(t, delivered);
        }
        let slot = match category {
            _ if free_form => SERVICE_SLOT,
            BilledCategory::Marketing => 0,
            BilledCategory::Utility => 1,
            _ => 2,
        };
        let current = if free_form {
            // C-3: any open conversation carries a free-form message.
            (0..=SERVICE_SLOT)
                .filter(|&i| is_open(self.conversations[i], t))
                .max_by_key(|&i| self.conversations[i].0)
                .map(|i| self.conversations[i])
        } else {
            Some(self.conversations[slot]).filter(|&c| is_open(c, t))
        };
        let (start, category) = current.unwrap_or_else(|| {
            let opened = (t, category);
            if delivered {
                self.conversations[slot] = opened;
            }
            opened
        });
        // C-8: service conversations are free from 2024-11-01.
        let billable =
            !(category == BilledCategory::Service && w.clock.date(start) >= SERVICE_FREE_FROM);
        (PriceTag::conversation(category, billable), start)
    }

    /// Era B: one conversation at a time, user- or business-initiated by the service window.
    fn initiated_conversation(&mut self, t: Secs, delivered: bool) -> (PriceTag, Secs) {
        let current = self.conversations[ERA_B_SLOT];
        if is_open(current, t) {
            return (PriceTag::conversation(current.1, true), current.0);
        }
        let category = if self.in_service_window(t) {
            BilledCategory::UserInitiated
        } else {
            BilledCategory::BusinessInitiated
        };
        if delivered {
            self.conversations[ERA_B_SLOT] = (t, category);
        }
        (PriceTag::conversation(category, true), t)
    }
}

/// A conversation is open for 24 h from its start.
fn is_open((start, _): Open, t: Secs) -> bool {
    start <= t && t - start < DAY
}
