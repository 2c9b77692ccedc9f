//! Step 3a: per conversation key, in time order, decide what each message opens or falls into.
//!
//! This is where the eras differ (spec §2–§5). Each key (business number × user, or × group) is
//! walked once; the state is the key's open conversations, its entry-point window and its
//! inbound messages (the customer service window). Prices and monthly counters are not applied
//! here: a decision says "free because …" or "chargeable as column X, subject to counter Y".

use super::records::{
    Conversation, Counter, InboundRec, MetaCheck, OutboundRec, NEVER, NONE, QUALIFYING_CLIENT,
    REFERRAL,
};
use super::Rater;
use crate::card::RateColumn;
use crate::category::{BilledCategory, MessageKind, PricingModel, PricingType, TemplateCategory};
use crate::config::{ConversationStart, Rules, WindowJudgedAt};
use crate::time::{Instant, LocalDate, DAY, HOUR, MINUTE};

/// Start of conversation-based pricing v1 (B-1).
pub const CBP_V1_START: LocalDate = LocalDate::ymd(2022, 2, 1);
/// Start of category conversations (C-1).
pub const CBP_V2_START: LocalDate = LocalDate::ymd(2023, 6, 1);
/// Service conversations free for everyone (C-8).
pub const SERVICE_FREE_FROM: LocalDate = LocalDate::ymd(2024, 11, 1);
/// Per-message pricing (D-1).
pub const PMP_START: LocalDate = LocalDate::ymd(2025, 7, 1);
/// Meta Business Agent tokens charged (D-14).
pub const AGENT_TOKENS_FROM: LocalDate = LocalDate::ymd(2026, 8, 1);
/// Service charged, in-window utility charged (D-15, D-16).
pub const SERVICE_CHARGED_FROM: LocalDate = LocalDate::ymd(2026, 10, 1);

/// The pricing era of a local date (1-3: chosen by the date in the WABA's time zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Era {
    /// A: notification-based, up to 2022-01-31.
    Notification,
    /// B: user-/business-initiated conversations, 2022-02-01 → 2023-05-31.
    InitiatedConversations,
    /// C: category conversations, 2023-06-01 → 2025-06-30.
    CategoryConversations,
    /// D: per message, from 2025-07-01.
    PerMessage,
}

impl Era {
    pub fn of(date: LocalDate) -> Era {
        if date < CBP_V1_START {
            Era::Notification
        } else if date < CBP_V2_START {
            Era::InitiatedConversations
        } else if date < PMP_START {
            Era::CategoryConversations
        } else {
            Era::PerMessage
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Free(PricingType),
    Chargeable(RateColumn, Counter),
    /// E-3: neither the rules nor Meta's evidence say what the message was: `unrated`.
    Undecided,
}

/// What the conversation rules decided for one message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Decision {
    pub msg: u32,
    pub outcome: Outcome,
    pub category: BilledCategory,
    pub model: PricingModel,
    pub conversation: u32,
    /// The instant that decides dates, months and order: delivery (or the send, when undelivered).
    pub at: Instant,
    /// The rule that decided, for the explanation.
    pub rule: &'static str,
    /// How Meta's own pricing of the message compares (E-1, E-2).
    pub meta_check: MetaCheck,
}

/// E-3: a message known only from statuses that name no category decides nothing by itself.
fn undecided(d: Decision) -> Decision {
    Decision {
        outcome: Outcome::Undecided,
        rule: "E-3",
        ..d
    }
}

/// W-5: Meta's `expiration_timestamp` is the start plus the duration, rounded up to the minute.
pub fn conversation_expiry(start: Instant, duration: i64) -> Instant {
    let end = start + duration;
    end + (MINUTE - end.rem_euclid(MINUTE)) % MINUTE
}

/// Category conversation slots of era C.
const MARKETING: usize = 0;
const UTILITY: usize = 1;
const AUTHENTICATION: usize = 2;
const SERVICE: usize = 3;

struct KeyState {
    /// Era B: the one open conversation.
    initiated: u32,
    /// Era C: open conversation per category slot.
    by_category: [u32; 4],
    /// Entry-point conversation (C) or window (D).
    entry_point: u32,
}

pub(crate) struct Decided {
    pub decisions: Vec<Decision>,
    pub conversations: Vec<Conversation>,
}

fn is_open(convs: &[Conversation], c: u32, at: Instant) -> bool {
    c != NONE && convs[c as usize].start <= at && at < convs[c as usize].expiry
}

/// When a message takes effect under the rules: its delivery, or its send with
/// `conversation_start = "sent"`.
#[inline]
fn opens_at(rules: &Rules, m: &OutboundRec) -> Instant {
    match rules.conversation_start {
        ConversationStart::Delivered => m.delivered_at,
        ConversationStart::Sent => m.sent_at,
    }
}

/// Buffers reused across keys: no allocation per key.
#[derive(Default)]
struct KeyBuffers {
    /// Offsets of the key's messages that reply to an entry point.
    entry_openers: Vec<usize>,
    /// Times of the key's inbound messages, sorted.
    inbound: Vec<Instant>,
    /// Times of the key's entry-point messages from qualifying clients.
    referrals: Vec<Instant>,
}

impl KeyBuffers {
    fn fill(&mut self, inbound: &[InboundRec], messages: &[OutboundRec]) {
        self.inbound.clear();
        self.inbound.extend(inbound.iter().map(|r| r.at));
        self.referrals.clear();
        self.referrals.extend(
            inbound
                .iter()
                .filter(|r| {
                    r.flags & (REFERRAL | QUALIFYING_CLIENT) == REFERRAL | QUALIFYING_CLIENT
                })
                .map(|r| r.at),
        );
        entry_point_openers(messages, &self.referrals, &mut self.entry_openers);
    }
}

/// Decides every message, key by key.
pub(crate) fn decide(rater: &mut Rater) -> Decided {
    let rules = rater.setup.rules.clone();
    // Order of effect within a key: when the message could open a conversation.
    rater.outbound.sort_unstable_by_key(|m| {
        let t = if m.delivered_at == NEVER {
            m.sent_at
        } else {
            opens_at(&rules, m).min(m.delivered_at)
        };
        (m.key, t, m.id)
    });
    let mut decisions = Vec::with_capacity(rater.outbound.len());
    let mut conversations = Vec::new();
    let mut buffers = KeyBuffers::default();
    let (mut i, mut j) = (0, 0);
    let n = rater.outbound.len();
    while i < n {
        let key = rater.outbound[i].key;
        let mut end = i;
        while end < n && rater.outbound[end].key == key {
            end += 1;
        }
        while j < rater.inbound.len() && rater.inbound[j].key < key {
            j += 1;
        }
        let mut inbound_end = j;
        while inbound_end < rater.inbound.len() && rater.inbound[inbound_end].key == key {
            inbound_end += 1;
        }
        buffers.fill(&rater.inbound[j..inbound_end], &rater.outbound[i..end]);
        let walk = KeyWalk {
            rules: &rules,
            inbound: &buffers.inbound,
            conversations: &mut conversations,
            state: KeyState {
                initiated: NONE,
                by_category: [NONE; 4],
                entry_point: NONE,
            },
            key,
        };
        walk.decide_all(rater, i, end, &buffers.entry_openers, &mut decisions);
        i = end;
        j = inbound_end;
    }
    Decided {
        decisions,
        conversations,
    }
}

/// C-9, D-5, B-6: the reply to an entry-point message is the first delivered business message
/// sent within 24 h after it. Returns offsets into `messages`.
fn entry_point_openers(messages: &[OutboundRec], referrals: &[Instant], out: &mut Vec<usize>) {
    out.clear();
    if referrals.is_empty() {
        return;
    }
    for &r in referrals {
        let first = messages
            .iter()
            .enumerate()
            .filter(|(_, m)| m.delivered_at != NEVER && m.sent_at >= r && m.sent_at < r + DAY)
            .min_by_key(|(_, m)| (m.sent_at, m.id));
        if let Some((offset, _)) = first {
            if !out.contains(&offset) {
                out.push(offset);
            }
        }
    }
}

/// A delivered message as the era rules see it.
#[derive(Clone, Copy)]
struct Delivery<'m> {
    m: &'m OutboundRec,
    /// When it takes effect: its delivery, or its send with `conversation_start = "sent"`.
    start: Instant,
    /// The WABA-local date of `start`.
    date: LocalDate,
    /// It replies to an entry point (C-9, D-5, B-6).
    entry: bool,
}

struct KeyWalk<'a> {
    rules: &'a Rules,
    /// Times of the key's inbound messages, sorted.
    inbound: &'a [Instant],
    conversations: &'a mut Vec<Conversation>,
    state: KeyState,
    key: u32,
}

impl KeyWalk<'_> {
    /// Decides the key's messages `rater.outbound[i..end]`, in their order of effect.
    fn decide_all(
        mut self,
        rater: &Rater,
        i: usize,
        end: usize,
        entry_openers: &[usize],
        decisions: &mut Vec<Decision>,
    ) {
        let business = rater.key_owner[self.key as usize].0 as usize;
        let calendar = &rater.setup.businesses[business].calendar;
        for (offset, m) in rater.outbound[i..end].iter().enumerate() {
            let index = (i + offset) as u32;
            let opens_entry_point = entry_openers.contains(&offset);
            let d = if m.delivered_at == NEVER {
                self.undelivered(index, m, calendar.date(m.sent_at))
            } else {
                // The era and the rate card are those of the moment the message takes effect:
                // its delivery, or its send with `conversation_start = "sent"` (C-6: the rate in
                // force when the conversation opened).
                let start = opens_at(self.rules, m).min(m.delivered_at);
                self.delivered(index, m, start, calendar.date(start), opens_entry_point)
            };
            decisions.push(d);
        }
    }

    /// Time of the last user message at or before `at`.
    fn last_inbound(&self, at: Instant) -> Option<Instant> {
        let p = self.inbound.partition_point(|&t| t <= at);
        (p > 0).then(|| self.inbound[p - 1])
    }

    /// 1-6: the customer service window is open for 24 h after each user message.
    fn window_open(&self, at: Instant) -> bool {
        self.last_inbound(at).is_some_and(|t| at < t + DAY)
    }

    fn open(
        &mut self,
        opener: u32,
        category: BilledCategory,
        model: PricingModel,
        start: Instant,
        expiry: Instant,
    ) -> u32 {
        self.conversations.push(Conversation {
            opener,
            key: self.key,
            category,
            model,
            start,
            expiry,
        });
        (self.conversations.len() - 1) as u32
    }

    /// A conversation of the conversation eras, opened by this message (W-5 expiry).
    fn open_cbp(
        &mut self,
        opener: u32,
        category: BilledCategory,
        start: Instant,
        duration: i64,
    ) -> u32 {
        self.open(
            opener,
            category,
            PricingModel::Cbp,
            start,
            conversation_expiry(start, duration),
        )
    }

    /// The message falls inside the open conversation `open` (B-4, C-2, C-3): free, billed as
    /// that conversation's category.
    fn inside(&self, d: Decision, open: u32, rule: &'static str) -> Decision {
        let c = self.conversations[open as usize];
        let pricing = if c.category == BilledCategory::ReferralConversion {
            PricingType::FreeEntryPoint
        } else {
            PricingType::InOpenConversation
        };
        Decision {
            outcome: Outcome::Free(pricing),
            category: c.category,
            conversation: open,
            rule,
            ..d
        }
    }

    fn undelivered(&mut self, index: u32, m: &OutboundRec, send_date: LocalDate) -> Decision {
        let mut d = Decision {
            msg: index,
            outcome: Outcome::Free(PricingType::NotDelivered),
            category: billed_category_of(m.kind),
            model: model_of(Era::of(send_date)),
            conversation: NONE,
            at: m.sent_at,
            rule: "1-2",
            meta_check: MetaCheck::NotGiven,
        };
        // B-9 (off by default): a failed free-form message outside the window opens a
        // business-initiated conversation, billed if the user replies within 24 h.
        if self.rules.failed_free_form_opens_conversation
            && Era::of(send_date) == Era::InitiatedConversations
            && m.failed
            && !m.kind.is_template()
            && !self.window_open(m.sent_at)
            && !is_open(self.conversations, self.state.initiated, m.sent_at)
        {
            let replied = self
                .inbound
                .iter()
                .any(|&t| t > m.sent_at && t < m.sent_at + DAY);
            if replied {
                let c = self.open_cbp(index, BilledCategory::BusinessInitiated, m.sent_at, DAY);
                self.state.initiated = c;
                d.outcome =
                    Outcome::Chargeable(RateColumn::BusinessInitiated, Counter::FreeConversations);
                d.category = BilledCategory::BusinessInitiated;
                d.conversation = c;
                d.rule = "B-9";
            }
        }
        d
    }

    fn delivered(
        &mut self,
        index: u32,
        m: &OutboundRec,
        start: Instant,
        date: LocalDate,
        entry: bool,
    ) -> Decision {
        let x = Delivery {
            m,
            start,
            date,
            entry,
        };
        // Groups API messages (D-10) exist only under per-message pricing; a group message dated
        // earlier is rated by those rules rather than opening conversations for a whole group.
        let era = if m.members_len > 0 {
            Era::PerMessage
        } else {
            Era::of(date)
        };
        let base = Decision {
            msg: index,
            outcome: Outcome::Free(PricingType::FreeCustomerService),
            category: billed_category_of(m.kind),
            model: model_of(era),
            conversation: NONE,
            at: start,
            rule: "",
            meta_check: MetaCheck::NotGiven,
        };
        match era {
            Era::Notification => self.notification(base, m),
            Era::InitiatedConversations => self.initiated(base, x),
            Era::CategoryConversations => self.category(base, x),
            Era::PerMessage => self.per_message(base, x),
        }
    }

    /// a delivered template is charged at the template rate; session messages are free.
    fn notification(&mut self, d: Decision, m: &OutboundRec) -> Decision {
        if m.kind == MessageKind::Unknown {
            return undecided(d);
        }
        if m.kind.is_template() {
            Decision {
                outcome: Outcome::Chargeable(RateColumn::Template, Counter::None),
                category: BilledCategory::Template,
                rule: "A-2",
                ..d
            }
        } else {
            Decision {
                category: BilledCategory::Service,
                rule: "A-2",
                ..d
            }
        }
    }

    /// Era B: one 24 h conversation at a time; its type is decided by timing (B-1 … B-6).
    fn initiated(&mut self, d: Decision, x: Delivery<'_>) -> Decision {
        let Delivery {
            m,
            start,
            date,
            entry,
        } = x;
        let open = self.state.initiated;
        if is_open(self.conversations, open, start) {
            return self.inside(d, open, "B-4");
        }
        if entry {
            // B-6, B-7: the entry-point conversation is free; 24 h, 72 h from the configured date.
            let hours = if date >= self.rules.entry_point_72h_from {
                72
            } else {
                24
            };
            let c = self.open_cbp(
                d.msg,
                BilledCategory::ReferralConversion,
                start,
                hours * HOUR,
            );
            self.state.initiated = c;
            return Decision {
                outcome: Outcome::Free(PricingType::FreeEntryPoint),
                category: BilledCategory::ReferralConversion,
                conversation: c,
                rule: "B-6",
                ..d
            };
        }
        // B-3: user-initiated if sent within 24 h of the user's last message.
        let user_initiated = self
            .last_inbound(m.sent_at)
            .is_some_and(|t| m.sent_at < t + DAY);
        let (category, column) = if user_initiated {
            (BilledCategory::UserInitiated, RateColumn::UserInitiated)
        } else {
            (
                BilledCategory::BusinessInitiated,
                RateColumn::BusinessInitiated,
            )
        };
        let c = self.open_cbp(d.msg, category, start, DAY);
        self.state.initiated = c;
        Decision {
            outcome: Outcome::Chargeable(column, Counter::FreeConversations),
            category,
            conversation: c,
            rule: "B-3",
            ..d
        }
    }

    /// Era C: category conversations (C-1 … C-11).
    fn category(&mut self, d: Decision, x: Delivery<'_>) -> Decision {
        let Delivery {
            m,
            start,
            date,
            entry,
        } = x;
        // Conversations of era B do not carry into era C.
        self.state.initiated = NONE;
        if let Some(d) = self.in_entry_point(d, start, true) {
            return d;
        }
        if entry {
            return self.open_entry_point_conversation(d, start);
        }
        if m.kind == MessageKind::Unknown {
            return undecided(d);
        }
        let (slot, category, column) = category_slot(m.kind);
        if slot != SERVICE {
            // C-2: a template opens a conversation of its category unless one is open.
            let open = self.state.by_category[slot];
            if is_open(self.conversations, open, start) {
                return self.inside(d, open, "C-2");
            }
            let c = self.open_cbp(d.msg, category, start, DAY);
            self.state.by_category[slot] = c;
            // C-4: concurrent conversations of different categories are each charged.
            return Decision {
                outcome: Outcome::Chargeable(column, Counter::None),
                category,
                conversation: c,
                rule: "C-2",
                ..d
            };
        }
        self.service_conversation(d, start, date)
    }

    /// C-10: the entry-point conversation lasts 72 h and closes every other one.
    fn open_entry_point_conversation(&mut self, d: Decision, start: Instant) -> Decision {
        let c = self.open_cbp(d.msg, BilledCategory::ReferralConversion, start, 72 * HOUR);
        for slot in self.state.by_category.iter_mut() {
            if *slot != NONE {
                let conv = &mut self.conversations[*slot as usize];
                conv.expiry = conv.expiry.min(start).max(conv.start);
                *slot = NONE;
            }
        }
        self.state.entry_point = c;
        Decision {
            outcome: Outcome::Free(PricingType::FreeEntryPoint),
            category: BilledCategory::ReferralConversion,
            conversation: c,
            rule: "C-10",
            ..d
        }
    }

    /// C-3: a non-template message opens a service conversation only when nothing is open;
    /// C-7, C-8: it is free from 2024-11-01, else subject to the monthly free ones.
    fn service_conversation(&mut self, d: Decision, start: Instant, date: LocalDate) -> Decision {
        let (category, column) = (BilledCategory::Service, RateColumn::Service);
        let open_now = self
            .state
            .by_category
            .iter()
            .copied()
            .filter(|&c| is_open(self.conversations, c, start))
            .min_by_key(|&c| {
                let conv = self.conversations[c as usize];
                (conv.category != BilledCategory::Service, conv.start, c)
            });
        if let Some(open) = open_now {
            return self.inside(d, open, "C-3");
        }
        let c = self.open_cbp(d.msg, category, start, DAY);
        self.state.by_category[SERVICE] = c;
        if date >= SERVICE_FREE_FROM {
            // C-8: service conversations are free from 2024-11-01 (still opened).
            return Decision {
                outcome: Outcome::Free(PricingType::FreeCustomerService),
                category,
                conversation: c,
                rule: "C-8",
                ..d
            };
        }
        // C-7: 1,000 free service conversations per WABA per month.
        Decision {
            outcome: Outcome::Chargeable(column, Counter::FreeServiceConversations),
            category,
            conversation: c,
            rule: "C-7",
            ..d
        }
    }

    /// Inside an open entry-point conversation or window everything is free (C-10, D-2, D-17).
    fn in_entry_point(&self, d: Decision, at: Instant, conversation_era: bool) -> Option<Decision> {
        let open = self.state.entry_point;
        if !is_open(self.conversations, open, at) {
            return None;
        }
        Some(Decision {
            outcome: Outcome::Free(PricingType::FreeEntryPoint),
            category: if conversation_era {
                BilledCategory::ReferralConversion
            } else {
                d.category
            },
            conversation: open,
            rule: if conversation_era { "C-10" } else { "D-2" },
            ..d
        })
    }

    /// Era D: per delivered message (D-1 … D-19).
    fn per_message(&mut self, d: Decision, x: Delivery<'_>) -> Decision {
        let Delivery {
            m,
            start,
            date,
            entry,
        } = x;
        self.state.initiated = NONE;
        let agent_charged = m.kind == MessageKind::Agent && date >= AGENT_TOKENS_FROM;
        if let Some(d) = self.entry_point_window(d, m, entry, agent_charged) {
            return d;
        }
        let judged = match self.rules.window_judged_at {
            WindowJudgedAt::Delivery => m.delivered_at,
            WindowJudgedAt::Send => m.sent_at,
        };
        match m.kind {
            MessageKind::Agent if agent_charged => agent(d, "D-14"),
            MessageKind::FreeForm | MessageKind::Agent => service_message(d, date),
            MessageKind::Unknown => undecided(d),
            MessageKind::Template(TemplateCategory::Utility) => {
                self.utility_message(d, start, date, judged)
            }
            MessageKind::Template(TemplateCategory::Authentication) => Decision {
                outcome: Outcome::Chargeable(
                    RateColumn::Authentication,
                    Counter::AuthenticationTiers,
                ),
                rule: "D-3",
                ..d
            },
            MessageKind::Template(
                TemplateCategory::Marketing | TemplateCategory::MarketingLite,
            ) => Decision {
                outcome: Outcome::Chargeable(RateColumn::Marketing, Counter::None),
                rule: "D-3",
                ..d
            },
        }
    }

    /// D-2, D-5, D-14, D-17: inside an open entry-point window, or opening one, the message is
    /// free (Meta Business Agent tokens excepted); `None` when no window concerns it.
    fn entry_point_window(
        &mut self,
        d: Decision,
        m: &OutboundRec,
        entry: bool,
        agent_charged: bool,
    ) -> Option<Decision> {
        // D-5: the entry-point window is judged at the time the business sends.
        if let Some(inside) = self.in_entry_point(d, m.sent_at, false) {
            // D-14: Meta Business Agent tokens are charged even inside the window.
            return Some(if agent_charged {
                agent(
                    Decision {
                        conversation: inside.conversation,
                        ..d
                    },
                    "D-14",
                )
            } else {
                inside
            });
        }
        if !entry || is_open(self.conversations, self.state.entry_point, m.sent_at) {
            return None;
        }
        let c = self.open(
            d.msg,
            BilledCategory::ReferralConversion,
            PricingModel::Pmp,
            m.sent_at,
            m.sent_at + 72 * HOUR,
        );
        self.state.entry_point = c;
        if agent_charged {
            return Some(agent(
                Decision {
                    conversation: c,
                    ..d
                },
                "D-14",
            ));
        }
        Some(Decision {
            outcome: Outcome::Free(PricingType::FreeEntryPoint),
            conversation: c,
            rule: "D-5",
            ..d
        })
    }

    /// A utility template of era D (D-2, D-3, D-6, D-8, D-16), its window judged at `judged`.
    fn utility_message(
        &self,
        d: Decision,
        start: Instant,
        date: LocalDate,
        judged: Instant,
    ) -> Decision {
        // D-8: a utility conversation opened before the switch still covers utility
        // templates while it stays open.
        let open = self.state.by_category[UTILITY];
        if is_open(self.conversations, open, start)
            && self.conversations[open as usize].model == PricingModel::Cbp
        {
            return Decision {
                outcome: Outcome::Free(PricingType::InOpenConversation),
                model: PricingModel::Cbp,
                conversation: open,
                rule: "D-8",
                ..d
            };
        }
        if date < SERVICE_CHARGED_FROM && self.window_open(judged) {
            // D-2, D-6: utility delivered inside an open window is free until 2026-10-01.
            return Decision {
                outcome: Outcome::Free(PricingType::FreeCustomerService),
                rule: "D-2",
                ..d
            };
        }
        let rule = if date >= SERVICE_CHARGED_FROM && self.window_open(judged) {
            "D-16"
        } else {
            "D-3"
        };
        Decision {
            outcome: Outcome::Chargeable(RateColumn::Utility, Counter::UtilityTiers),
            rule,
            ..d
        }
    }
}

/// D-14: a Meta Business Agent message, charged by its tokens.
fn agent(d: Decision, rule: &'static str) -> Decision {
    Decision {
        outcome: Outcome::Chargeable(RateColumn::Service, Counter::AgentTokens),
        category: BilledCategory::MetaBusinessAgent,
        rule,
        ..d
    }
}

/// A non-template message of era D: free until 2026-10-01 (D-2); then charged at the service
/// rate after the monthly allowance (D-15, D-19).
fn service_message(d: Decision, date: LocalDate) -> Decision {
    let d = Decision {
        category: BilledCategory::Service,
        ..d
    };
    if date >= SERVICE_CHARGED_FROM {
        Decision {
            outcome: Outcome::Chargeable(RateColumn::Service, Counter::FreeServiceMessages),
            rule: "D-15",
            ..d
        }
    } else {
        Decision {
            outcome: Outcome::Free(PricingType::FreeCustomerService),
            rule: "D-2",
            ..d
        }
    }
}

/// The era-C slot, billed category and rate column of a message kind.
fn category_slot(kind: MessageKind) -> (usize, BilledCategory, RateColumn) {
    match kind {
        MessageKind::Template(TemplateCategory::Marketing) => {
            (MARKETING, BilledCategory::Marketing, RateColumn::Marketing)
        }
        MessageKind::Template(TemplateCategory::MarketingLite) => (
            MARKETING,
            BilledCategory::MarketingLite,
            RateColumn::Marketing,
        ),
        MessageKind::Template(TemplateCategory::Utility) => {
            (UTILITY, BilledCategory::Utility, RateColumn::Utility)
        }
        MessageKind::Template(TemplateCategory::Authentication) => (
            AUTHENTICATION,
            BilledCategory::Authentication,
            RateColumn::Authentication,
        ),
        MessageKind::FreeForm | MessageKind::Agent | MessageKind::Unknown => {
            (SERVICE, BilledCategory::Service, RateColumn::Service)
        }
    }
}

fn model_of(era: Era) -> PricingModel {
    match era {
        Era::Notification => PricingModel::Nbp,
        Era::InitiatedConversations | Era::CategoryConversations => PricingModel::Cbp,
        Era::PerMessage => PricingModel::Pmp,
    }
}

fn billed_category_of(kind: MessageKind) -> BilledCategory {
    match kind {
        MessageKind::Template(TemplateCategory::Marketing) => BilledCategory::Marketing,
        MessageKind::Template(TemplateCategory::MarketingLite) => BilledCategory::MarketingLite,
        MessageKind::Template(TemplateCategory::Utility) => BilledCategory::Utility,
        MessageKind::Template(TemplateCategory::Authentication) => BilledCategory::Authentication,
        MessageKind::FreeForm | MessageKind::Unknown => BilledCategory::Service,
        MessageKind::Agent => BilledCategory::MetaBusinessAgent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// W-5 (T-W1, T-W2): expiry = start + 24 h rounded up to the next minute.
    #[test]
    fn w_5_expiration_timestamp_is_rounded_up_to_the_minute() {
        assert_eq!(conversation_expiry(1_750_030_073, DAY), 1_750_116_480);
        assert_eq!(conversation_expiry(1_727_862_637, DAY), 1_727_949_060);
        assert_eq!(conversation_expiry(1_727_862_600, DAY), 1_727_949_000);
    }

    /// 1-3 and the era dates of B-1, C-1, D-1.
    #[test]
    fn counter_names_round_trip() {
        for c in Counter::ALL {
            assert_eq!(Counter::parse(c.as_str()), Some(c));
        }
        assert_eq!(Counter::parse("nope"), None);
    }

    #[test]
    fn eras_switch_on_their_dates() {
        assert_eq!(Era::of(LocalDate::ymd(2022, 1, 31)), Era::Notification);
        assert_eq!(
            Era::of(LocalDate::ymd(2022, 2, 1)),
            Era::InitiatedConversations
        );
        assert_eq!(
            Era::of(LocalDate::ymd(2023, 5, 31)),
            Era::InitiatedConversations
        );
        assert_eq!(
            Era::of(LocalDate::ymd(2023, 6, 1)),
            Era::CategoryConversations
        );
        assert_eq!(
            Era::of(LocalDate::ymd(2025, 6, 30)),
            Era::CategoryConversations
        );
        assert_eq!(Era::of(LocalDate::ymd(2025, 7, 1)), Era::PerMessage);
    }
}
