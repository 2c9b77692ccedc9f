//! What the book remembers of recent traffic: each conversation key's events (parsed once), the
//! messages it follows and whether their wallet is settled, and the schedule of when each may be
//! forgotten, so forgetting visits only what expires.

use super::*;
use tarifa_core::category::BilledCategory;
use tarifa_core::input::MetaPricing;

/// A message the book follows.
#[derive(Clone, Debug)]
pub(super) struct Msg {
    pub(super) key: ConversationKey,
    pub(super) at: Instant,
    /// Priced (at delivery) or released (failed): the wallet is settled for it.
    pub(super) settled: bool,
    /// What its charge holds now, while it may still be re-priced (`None`: not delivered).
    pub(super) charged: Option<Box<Charged>>,
    /// Meta's pricing and conversation origin as last seen on its statuses: a status that
    /// repeats them (W-4: on `sent` and on a delivery) is no new evidence.
    pub(super) seen: (Option<MetaPricing>, Option<BilledCategory>),
    /// When [`Book::trim`] looks at it again (its live entry in [`Book::forget`]).
    pub(super) forget_at: Instant,
}

/// A delivered message's charge as it stands: what re-pricing compares with and corrects.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Charged {
    /// Its price, in ledger units.
    pub(super) amount: Amount,
    /// The part of it the wallet did not cover.
    pub(super) uncollected: Amount,
    pub(super) pricing_type: PricingType,
    /// The instant that decided its price (its delivery).
    pub(super) at: Instant,
    /// The monthly counters it moved.
    pub(super) counted: Vec<CounterKey>,
}

/// The recent events of one (business, user or group).
#[derive(Clone, Debug, Default)]
pub(super) struct KeyHistory {
    /// In time order (events of the same time in arrival order), so that those out of the window
    /// are at the front: forgetting them costs what they are, not the length of the history (a
    /// busy group's history holds hundreds of thousands). Rating does not depend on the order.
    pub(super) events: VecDeque<HistoryEvent>,
    /// When its oldest event leaves the window: its live entry in [`Book::forget`].
    pub(super) forget_at: Instant,
    /// A user message of it came through an entry point (an ad, a Page button): one message's
    /// delivery may then change the price of later ones. Never unset (conservative).
    pub(super) entry_points: bool,
}

/// What [`Book::trim`] looks at again, filed in [`Book::forget`].
#[derive(Clone, Debug)]
pub(super) enum Forget {
    Message(Arc<str>),
    /// Boxed: one entry per message is filed, and a key's two strings would triple its size.
    History(Box<ConversationKey>),
}

/// An event of a conversation's history, parsed once (when it was received or reloaded).
#[derive(Clone, Debug)]
pub(super) struct HistoryEvent {
    pub(super) at: Instant,
    /// [`message_tail`] of the event, kept beside it so that rating one message can pass over
    /// the other messages of a long history without reading their events.
    pub(super) tail: Option<u64>,
    pub(super) event: Arc<Event<'static>>,
}

impl Book {
    /// Adds an event to the history and registers its message; returns the key it went to.
    pub(super) fn remember(
        &mut self,
        business: &str,
        event: &Arc<Event<'static>>,
    ) -> Option<ConversationKey> {
        let (key, at) = match &**event {
            Event::Inbound(e) => (
                ConversationKey::new(business, e.group.as_deref().unwrap_or(&e.user)),
                e.at,
            ),
            Event::Outbound(e) => {
                let party = e.group.as_ref().map_or(&*e.user, |(g, _)| g).to_string();
                let key = ConversationKey::new(business, party);
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
                            let key = ConversationKey::new(business, r.as_ref());
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
                entry_points: false,
            });
        kept.entry_points |= matches!(&**event, Event::Inbound(i) if i.referral);
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
    pub(super) fn follow(&mut self, id: &str, key: ConversationKey, at: Instant) {
        let id: Arc<str> = Arc::from(id);
        let forget_at = at.saturating_add(self.history_secs);
        self.messages.insert(
            id.clone(),
            Msg {
                key,
                at,
                settled: false,
                charged: None,
                seen: (None, None),
                forget_at,
            },
        );
        self.forget.file(forget_at, Forget::Message(id));
    }

    /// The wallet is settled for `message`: it may be forgotten once out of the window, even if
    /// [`Book::trim`] had kept it past the window for its hold.
    pub(super) fn mark_settled(&mut self, message: &str) {
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

    /// A user message in the 24 hours before `at` (the customer service window).
    pub(super) fn window_open(&self, key: &ConversationKey, at: Instant) -> bool {
        self.history.get(key).is_some_and(|kept| {
            kept.events
                .iter()
                .any(|e| e.at <= at && at - e.at < DAY && matches!(*e.event, Event::Inbound(_)))
        })
    }
}
