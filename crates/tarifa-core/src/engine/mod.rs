//! The rating engine: events in, a [`Bill`] out.
//!
//! Three steps, so that the bill depends only on the events' own timestamps and ids, never on
//! their order in the input (spec §1, issue contract):
//!
//! 1. **Collect** ([`Rater::push`]): every event is interned into compact records (names become
//!    indices, ids become 128-bit hashes). Nothing is decided yet.
//! 2. **Join** ([`Rater::finish`]): records are sorted by id, duplicates collapse (an explicit
//!    outbound record wins over one reconstructed from a webhook), statuses fold into their message
//!    (first `sent`, first `delivered`/`read`, any `failed`: order-free aggregates).
//! 3. **Rate**: per conversation key (business number × user, in time order) the era rules decide
//!    what each message opens or falls into ([`conversations`]); then, over all keys in global time
//!    order, the monthly counters (free tiers, the service allowance, volume tiers) and the rate
//!    cards turn decisions into amounts ([`pricing`]).

pub mod bill;
mod conversations;
mod evidence;
mod live;
mod lookback;
mod pricing;
mod records;
mod setup;

pub use conversations::{conversation_expiry, Era};
pub use live::{price_message, LiveError, LivePrice};
pub use lookback::{id_tail, lookback, may_concern, message_tail, PER_MESSAGE_SETTLED};
pub use pricing::{CounterBase, CounterKey};
pub use records::{Conversation, Counter, InputStats, MetaCheck};
pub use setup::{PriceList, Prices, Setup};

use crate::category::{BilledCategory, MessageKind, TemplateCategory};
use crate::config::ConversationScope;
use crate::input::{
    DeliveryStatus, Event, Inbound, InputError, MetaPricing, Outbound, Platform, Status,
};
use crate::time::Instant;
use bill::{Bill, Line, Names};
use records::{
    id_hash, IdHash, InboundRec, Interner, MemberDelivery, OutboundRec, StatusRec, EXPLICIT,
    FROM_WEBHOOK, NEVER, NONE, QUALIFYING_CLIENT, REFERRAL,
};
use rustc_hash::FxHashMap;

/// Collects events; [`Rater::finish`] rates them.
pub struct Rater {
    pub(crate) setup: std::sync::Arc<Setup>,
    business_index: FxHashMap<String, u32>,
    pub(crate) phones: Interner,
    pub(crate) users: Interner,
    pub(crate) groups: Interner,
    pub(crate) templates: Interner,
    keys: FxHashMap<(u32, u32, u32, bool), u32>,
    /// Per key: (business, phone, party, is_group).
    pub(crate) key_owner: Vec<(u32, u32, u32, bool)>,
    /// Per user: the last (business, phone, key) it was seen with, to skip the key map lookup
    /// (a user nearly always talks to one number).
    user_key: Vec<(u32, u32, u32)>,
    pub(crate) inbound: Vec<InboundRec>,
    pub(crate) outbound: Vec<OutboundRec>,
    statuses: Vec<StatusRec>,
    pub(crate) id_text: String,
    pub(crate) members: Vec<u32>,
    category_changes: Vec<(u32, u32, Instant, TemplateCategory)>,
    /// Groups API messages known only from statuses: (message, participant) of each status.
    reported_members: Vec<(IdHash, u32)>,
    pub(crate) stats: InputStats,
}

impl Rater {
    /// A rater over `setup` (a `Setup`, or an `Arc<Setup>` shared by many raters: a service
    /// creates one per priced message).
    pub fn new(setup: impl Into<std::sync::Arc<Setup>>) -> Rater {
        let setup = setup.into();
        let business_index = setup
            .businesses
            .iter()
            .enumerate()
            .map(|(i, b)| (b.id.clone(), i as u32))
            .collect();
        Rater {
            setup,
            business_index,
            phones: Interner::default(),
            users: Interner::default(),
            groups: Interner::default(),
            templates: Interner::default(),
            keys: FxHashMap::default(),
            key_owner: Vec::new(),
            user_key: Vec::new(),
            inbound: Vec::new(),
            outbound: Vec::new(),
            statuses: Vec::new(),
            id_text: String::new(),
            members: Vec::new(),
            category_changes: Vec::new(),
            reported_members: Vec::new(),
            stats: InputStats::default(),
        }
    }

    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    /// Checks that an event can be taken (its business is configured) without taking it.
    pub fn check(&self, event: &Event<'_>) -> Result<(), InputError> {
        self.business_of(event).map(|_| ())
    }

    /// The config index of the event's business (`NONE` for events without one).
    fn business_of(&self, event: &Event<'_>) -> Result<u32, InputError> {
        let (business, id) = match event {
            Event::Inbound(e) => (Some(&e.business), Some(&e.id)),
            Event::Outbound(e) => (Some(&e.business), Some(&e.id)),
            Event::Status(e) => (e.business.as_ref(), Some(&e.id)),
            Event::TemplateCategory(e) => (Some(&e.business), None),
            // Not checked against the config: the rating does not use them.
            Event::AccountUpdate(_) | Event::Ignored => (None, None),
        };
        match business {
            None => Ok(NONE),
            Some(b) => self
                .business_index
                .get(b.as_ref())
                .copied()
                .ok_or_else(|| InputError {
                    event_id: id.map(|i| i.to_string()),
                    message: format!(
                        "business {b:?} is not in the config (add a [[business]] with id = {b:?})"
                    ),
                }),
        }
    }

    /// Takes all events of one input line, or none of them if any is invalid.
    pub fn push_all(&mut self, events: Vec<Event<'_>>) -> Result<(), InputError> {
        let businesses = events
            .iter()
            .map(|e| self.business_of(e))
            .collect::<Result<Vec<u32>, _>>()?;
        for (e, b) in events.iter().zip(businesses) {
            self.push_checked(e, b);
        }
        Ok(())
    }

    /// Takes one event.
    pub fn push(&mut self, event: Event<'_>) -> Result<(), InputError> {
        self.push_ref(&event)
    }

    /// Takes one event by reference (a service keeps its events and rates them many times).
    pub fn push_ref(&mut self, event: &Event<'_>) -> Result<(), InputError> {
        let business = self.business_of(event)?;
        self.push_checked(event, business);
        Ok(())
    }

    /// Reserves room for about `events` more events, so that collecting does not copy its
    /// buffers as they grow (the binary estimates it from file sizes). Capacity that is never
    /// used is never touched, so an estimate on the high side costs address space, not memory.
    pub fn reserve(&mut self, events: usize) {
        self.inbound.reserve(events / 4);
        self.outbound.reserve(events / 3);
        self.statuses.reserve(events * 3 / 4);
        self.id_text.reserve(events / 3 * 24);
    }

    /// Parses one input line and takes its events, or none of them if any is invalid.
    pub fn push_line(&mut self, line: &[u8]) -> Result<(), InputError> {
        // Most lines hold one event: keep it out of a Vec (no allocation per line).
        let mut first = None;
        let mut rest = Vec::new();
        crate::input::parse_line(line, &mut |e| match first {
            None => first = Some(e),
            Some(_) => rest.push(e),
        })?;
        match first {
            None => Ok(()),
            Some(e) if rest.is_empty() => self.push(e),
            Some(e) => {
                rest.insert(0, e);
                self.push_all(rest)
            }
        }
    }

    /// The conversation key of a user (not a group), through the per-user cache.
    fn user_key(&mut self, business: u32, phone: u32, user: u32) -> u32 {
        if let Some(&(b, p, k)) = self.user_key.get(user as usize) {
            if b == business && p == phone {
                return k;
            }
        }
        let k = self.key(business, phone, user, false);
        if self.user_key.len() <= user as usize {
            self.user_key.resize(user as usize + 1, (NONE, NONE, NONE));
        }
        self.user_key[user as usize] = (business, phone, k);
        k
    }

    fn key(&mut self, business: u32, phone: u32, party: u32, group: bool) -> u32 {
        let scope = match self.setup.rules.conversation_scope {
            ConversationScope::PhoneNumber => phone,
            ConversationScope::Business => NONE,
        };
        let next = self.key_owner.len() as u32;
        let k = *self
            .keys
            .entry((business, scope, party, group))
            .or_insert(next);
        if k == next {
            self.key_owner.push((business, phone, party, group));
        }
        k
    }

    fn push_checked(&mut self, event: &Event<'_>, business: u32) {
        self.stats.events += 1;
        match event {
            Event::Inbound(e) => self.push_inbound(e, business),
            Event::Outbound(e) => self.push_outbound(e, business),
            Event::Status(e) => self.push_status(e, business),
            Event::TemplateCategory(e) => {
                self.stats.template_category_changes += 1;
                let t = self.templates.intern(&e.template);
                self.category_changes.push((business, t, e.at, e.category));
            }
            Event::AccountUpdate(_) => {
                self.stats.account_updates += 1;
                self.stats.ignored += 1;
            }
            Event::Ignored => self.stats.ignored += 1,
        }
    }

    #[inline]
    fn push_inbound(&mut self, e: &Inbound<'_>, business: u32) {
        self.stats.inbound += 1;
        let phone = self.phones.intern(&e.phone);
        let key = match &e.group {
            Some(g) => {
                let g = self.groups.intern(g);
                self.key(business, phone, g, true)
            }
            None => {
                let u = self.users.intern(&e.user);
                self.user_key(business, phone, u)
            }
        };
        let qualifying = match e.platform {
            Platform::Android | Platform::Ios => true,
            Platform::Web => false,
            Platform::Unknown => self.setup.rules.unknown_platform_qualifies_for_entry_point,
        };
        let flags =
            if e.referral { REFERRAL } else { 0 } | if qualifying { QUALIFYING_CLIENT } else { 0 };
        self.inbound.push(InboundRec {
            id: id_hash(&e.id),
            at: e.at,
            key,
            flags,
        });
    }

    #[inline]
    fn push_outbound(&mut self, e: &Outbound<'_>, business: u32) {
        self.stats.outbound += 1;
        let phone = self.phones.intern(&e.phone);
        let (user, key, members_at, members_len) = match &e.group {
            Some((g, members)) => {
                let g = self.groups.intern(g);
                let at = self.members.len() as u32;
                for m in members {
                    let u = self.users.intern(m);
                    self.members.push(u);
                }
                (
                    NONE,
                    self.key(business, phone, g, true),
                    at,
                    members.len() as u32,
                )
            }
            None => {
                let u = self.users.intern(&e.user);
                (u, self.user_key(business, phone, u), 0, 0)
            }
        };
        let (kind, template) = match (&e.template, e.agent_tokens) {
            (Some((name, category)), _) => (
                MessageKind::Template(*category),
                self.templates.intern(name),
            ),
            (None, Some(_)) => (MessageKind::Agent, NONE),
            (None, None) => (MessageKind::FreeForm, NONE),
        };
        let rec = self.new_outbound(&e.id, e.at, business, phone, user, key, kind, EXPLICIT);
        self.outbound.push(OutboundRec {
            template,
            tokens: e.agent_tokens.unwrap_or(0),
            members_at,
            members_len,
            ..rec
        });
    }

    #[inline]
    fn push_status(&mut self, e: &Status<'_>, business: u32) {
        self.stats.statuses += 1;
        let id = id_hash(&e.id);
        let recipient = e
            .recipient
            .as_deref()
            .map_or(NONE, |r| self.users.intern(r));
        self.statuses.push(StatusRec {
            id,
            at: e.at,
            status: e.status,
            recipient,
            pricing: e.pricing,
            origin: e.conversation_origin,
        });
        // A webhook status describes its message well enough to rate it when the business
        // sent no outbound record: recipient, number and WABA; what it was (E-3) is judged once
        // all its statuses are joined.
        if let (Some(_), Some(p), Some(_)) = (&e.business, &e.phone, &e.recipient) {
            let phone = self.phones.intern(p);
            if let Some(g) = &e.group {
                // D-10: a group's message, known from its participants' statuses.
                let g = self.groups.intern(g);
                let key = self.key(business, phone, g, true);
                let rec = self.new_outbound(
                    &e.id,
                    e.at,
                    business,
                    phone,
                    NONE,
                    key,
                    MessageKind::Unknown,
                    FROM_WEBHOOK,
                );
                self.outbound.push(rec);
                self.reported_members.push((id, recipient));
                return;
            }
            let key = self.user_key(business, phone, recipient);
            let kind = MessageKind::Unknown;
            let rec = self.new_outbound(
                &e.id,
                e.at,
                business,
                phone,
                recipient,
                key,
                kind,
                FROM_WEBHOOK,
            );
            self.outbound.push(rec);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn new_outbound(
        &mut self,
        id: &str,
        at: Instant,
        business: u32,
        phone: u32,
        user: u32,
        key: u32,
        kind: MessageKind,
        source: u8,
    ) -> OutboundRec {
        let id_at = self.id_text.len() as u64;
        self.id_text.push_str(id);
        OutboundRec {
            id: id_hash(id),
            id_at,
            id_len: id.len() as u32,
            at,
            business,
            phone,
            user,
            key,
            kind,
            source,
            template: NONE,
            tokens: 0,
            members_at: 0,
            members_len: 0,
            sent_at: NEVER,
            delivered_at: NEVER,
            failed: false,
            meta: None,
            origin: None,
        }
    }

    /// Rates everything collected.
    pub fn finish(self) -> Bill {
        self.finish_with_progress(&mut |_| {})
    }

    /// Rates only the messages with the ids `targets`, the way a live service prices one message
    /// at a time: the other events collected are the targets' history (they decide windows and
    /// conversations, and are not priced themselves), and every monthly counter starts from what
    /// `base` says was already used this month instead of from zero.
    ///
    /// Returns the bill of the targets' lines and, per priced line in pricing order, the counter
    /// it moved (the caller adds them to its own counts).
    pub fn finish_for(self, targets: &[&str], base: &dyn CounterBase) -> (Bill, Vec<CounterKey>) {
        let targets: rustc_hash::FxHashSet<IdHash> = targets.iter().map(|t| id_hash(t)).collect();
        self.rate(Some((&targets, base)), &mut |_| {})
    }

    /// [`Rater::finish`], calling `progress` with the name of each step as it completes (the
    /// binary uses it to time the steps; the core itself has no clock).
    pub fn finish_with_progress(self, progress: &mut dyn FnMut(&'static str)) -> Bill {
        self.rate(None, progress).0
    }

    fn rate(
        mut self,
        only: Option<(&rustc_hash::FxHashSet<IdHash>, &dyn CounterBase)>,
        progress: &mut dyn FnMut(&'static str),
    ) -> (Bill, Vec<CounterKey>) {
        self.dedupe_inbound();
        self.dedupe_outbound();
        self.attach_reported_members();
        progress("dedupe");
        let member_deliveries = self.join_statuses();
        self.apply_category_changes();
        progress("join");
        let mut decided = conversations::decide(&mut self);
        evidence::weigh(&self, &mut decided.decisions);
        progress("decide");
        let priced = pricing::price(self, decided, member_deliveries, only);
        progress("price");
        priced
    }

    /// Hands the bill the priced lines with the names and records it prints them from.
    fn into_bill(
        self,
        lines: Vec<Line>,
        order: Vec<u32>,
        conversations: Vec<Conversation>,
    ) -> Bill {
        Bill {
            names: Names {
                phones: self.phones.names,
                users: self.users.names,
                groups: self.groups.names,
                id_text: self.id_text,
            },
            setup: self.setup,
            outbound: self.outbound,
            key_owner: self.key_owner,
            lines,
            order,
            conversations,
            stats: self.stats,
        }
    }

    fn dedupe_inbound(&mut self) {
        let before = self.inbound.len();
        let (owners, phones, users, groups) = (
            &self.key_owner,
            &self.phones.names,
            &self.users.names,
            &self.groups.names,
        );
        let party = |key: u32| {
            let (business, phone, party, group) = owners[key as usize];
            let name = if group {
                &groups[party as usize]
            } else {
                &users[party as usize]
            };
            (business, &phones[phone as usize], name, group)
        };
        let mut inbound = std::mem::take(&mut self.inbound);
        keep_least_per_id(
            &mut inbound,
            |r| r.id,
            |a, b| (a.at, a.flags, party(a.key)).cmp(&(b.at, b.flags, party(b.key))),
            |_, _| {},
        );
        self.inbound = inbound;
        self.stats.duplicate_inbound = (before - self.inbound.len()) as u64;
        self.inbound.sort_unstable_by_key(|r| (r.key, r.at, r.id));
    }

    fn dedupe_outbound(&mut self) {
        let (phones, users, templates) =
            (&self.phones.names, &self.users.names, &self.templates.names);
        let name = |names: &'_ [Box<str>], i: u32| {
            if i == NONE { "" } else { &*names[i as usize] }.to_string()
        };
        // Explicit records sort first, so a webhook reconstruction never replaces one; then a
        // fixed order over the content (names, not input-order indices).
        let content = |r: &OutboundRec| {
            (
                r.source,
                r.at,
                r.business,
                name(phones, r.phone),
                name(users, r.user),
                r.kind,
                name(templates, r.template),
                r.tokens,
                r.members_len,
            )
        };
        let (mut duplicates, mut conflicts) = (0, 0);
        let mut outbound = std::mem::take(&mut self.outbound);
        keep_least_per_id(
            &mut outbound,
            |r| r.id,
            |a, b| content(a).cmp(&content(b)),
            |dropped, kept| {
                // Several statuses of one message reconstruct it several times: not a duplicate.
                if dropped.source == EXPLICIT {
                    duplicates += 1;
                    conflicts += (content(dropped) != content(kept)) as u64;
                }
            },
        );
        self.outbound = outbound;
        self.stats.conflicting_outbound = conflicts;
        self.stats.duplicate_outbound = duplicates;
    }

    /// D-10: a group message known only from statuses has the participants they name as its
    /// members (an explicit record keeps its own list).
    fn attach_reported_members(&mut self) {
        if self.reported_members.is_empty() {
            return;
        }
        let reported = &mut self.reported_members;
        reported.sort_unstable();
        reported.dedup();
        for msg in &mut self.outbound {
            let is_group = self.key_owner[msg.key as usize].3;
            if msg.source != FROM_WEBHOOK || !is_group {
                continue;
            }
            let start = reported.partition_point(|&(id, _)| id < msg.id);
            let end = reported.partition_point(|&(id, _)| id <= msg.id);
            msg.members_at = self.members.len() as u32;
            msg.members_len = (end - start) as u32;
            self.members
                .extend(reported[start..end].iter().map(|&(_, user)| user));
        }
    }

    /// Folds statuses into their messages. Returns per-member deliveries of group messages.
    fn join_statuses(&mut self) -> Vec<MemberDelivery> {
        let mut statuses = std::mem::take(&mut self.statuses);
        statuses.sort_unstable_by_key(|s| (s.id, s.at, s.status, s.recipient));
        let mut members = Vec::new();
        let mut orphans = 0u64;
        let mut i = 0;
        let mut m = 0;
        while i < statuses.len() {
            let id = statuses[i].id;
            let mut j = i;
            while j < statuses.len() && statuses[j].id == id {
                j += 1;
            }
            while m < self.outbound.len() && self.outbound[m].id < id {
                m += 1;
            }
            if m < self.outbound.len() && self.outbound[m].id == id {
                fold_statuses(
                    &mut self.outbound[m],
                    &statuses[i..j],
                    &self.members,
                    &mut members,
                );
            } else {
                orphans += (j - i) as u64;
            }
            i = j;
        }
        self.stats.orphan_statuses = orphans;
        for msg in &mut self.outbound {
            if msg.sent_at == NEVER {
                msg.sent_at = msg.at;
            }
            if msg.source == FROM_WEBHOOK {
                // Reconstructed from statuses: it was sent no later than its first status.
                msg.at = msg.sent_at.min(msg.delivered_at).min(msg.at);
                msg.kind = reported_kind(msg.meta, msg.origin);
            }
        }
        members.sort_unstable_by_key(|d| (d.message, d.user, d.delivered_at));
        members.dedup_by_key(|d| (d.message, d.user));
        members
    }

    /// Rule 1-5: the category in force when a template is used decides the price.
    fn apply_category_changes(&mut self) {
        if self.category_changes.is_empty() {
            return;
        }
        self.category_changes
            .sort_unstable_by_key(|&(b, t, at, c)| (b, t, at, c));
        let changes = &self.category_changes;
        for msg in &mut self.outbound {
            if msg.template == NONE {
                continue;
            }
            let start =
                changes.partition_point(|&(b, t, _, _)| (b, t) < (msg.business, msg.template));
            let end = changes.partition_point(|&(b, t, at, _)| {
                (b, t, at) <= (msg.business, msg.template, msg.at)
            });
            if end > start {
                msg.kind = MessageKind::Template(changes[end - 1].3);
            }
        }
    }
}

/// Folds the statuses of one message into it (first `sent`, first `delivered`/`read`, any
/// `failed`, Meta's pricing), adding the deliveries of a group message's members to `deliveries`.
#[inline]
fn fold_statuses(
    msg: &mut OutboundRec,
    statuses: &[StatusRec],
    members: &[u32],
    deliveries: &mut Vec<MemberDelivery>,
) {
    let id = msg.id;
    let mut pricing_seen: Option<(u8, MetaPricing)> = None;
    for s in statuses {
        match s.status {
            DeliveryStatus::Sent => msg.sent_at = msg.sent_at.min(s.at),
            DeliveryStatus::Delivered | DeliveryStatus::Read => {
                if msg.members_len > 0 {
                    let targets: Vec<u32> = if s.recipient == NONE {
                        members[msg.members_at as usize..][..msg.members_len as usize].to_vec()
                    } else {
                        vec![s.recipient]
                    };
                    for user in targets {
                        deliveries.push(MemberDelivery {
                            message: id,
                            user,
                            delivered_at: s.at,
                        });
                    }
                }
                msg.delivered_at = msg.delivered_at.min(s.at);
            }
            DeliveryStatus::Failed => msg.failed = true,
        }
        // Meta may repeat the origin on several statuses; keep the least, whatever their order.
        msg.origin = match (msg.origin, s.origin) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        if let Some(p) = s.pricing {
            // W-4: pricing rides on `sent` and on one of delivered/read; prefer the
            // latter, and among equals the earliest (statuses are sorted by time).
            let rank = if s.status == DeliveryStatus::Sent {
                1
            } else {
                2
            };
            if pricing_seen.is_none_or(|(r, _)| rank > r) {
                pricing_seen = Some((rank, p));
            }
        }
    }
    msg.meta = pricing_seen.map(|(_, p)| p);
    if msg.sent_at == NEVER {
        msg.sent_at = msg.at;
    }
}

/// Sorts `records` by id and keeps, of each group with one id, the least by `order`, calling
/// `dropped(record, kept)` for the others. Only groups of two or more are compared, so `order`
/// may be slow (it compares names, which keeps the survivor independent of input order). Ids are
/// 128-bit hashes; two different ids colliding is not a practical concern (≈ 10⁻¹⁹ for 10¹⁰ ids).
fn keep_least_per_id<T: Copy>(
    records: &mut Vec<T>,
    id: impl Fn(&T) -> IdHash,
    order: impl Fn(&T, &T) -> std::cmp::Ordering,
    mut dropped: impl FnMut(&T, &T),
) {
    records.sort_unstable_by_key(&id);
    let mut write = 0;
    let mut i = 0;
    while i < records.len() {
        let mut j = i + 1;
        while j < records.len() && id(&records[j]) == id(&records[i]) {
            j += 1;
        }
        let mut best = i;
        for k in i + 1..j {
            if order(&records[k], &records[best]).is_lt() {
                best = k;
            }
        }
        for k in i..j {
            if k != best {
                dropped(&records[k], &records[best]);
            }
        }
        records[write] = records[best];
        write += 1;
        i = j;
    }
    records.truncate(write);
}

/// E-3: what a message known only from its statuses was: the category Meta bills it as, else its
/// conversation's origin, else unknown (rated `unrated` unless a rule decides without the kind).
fn reported_kind(meta: Option<MetaPricing>, origin: Option<BilledCategory>) -> MessageKind {
    meta.and_then(|p| p.category)
        .or(origin)
        .map_or(MessageKind::Unknown, kind_from_meta)
}

/// What a message was, judged from the category Meta reported for it.
fn kind_from_meta(category: BilledCategory) -> MessageKind {
    match category {
        BilledCategory::Marketing => MessageKind::Template(TemplateCategory::Marketing),
        BilledCategory::MarketingLite => MessageKind::Template(TemplateCategory::MarketingLite),
        BilledCategory::Utility => MessageKind::Template(TemplateCategory::Utility),
        BilledCategory::Authentication | BilledCategory::AuthenticationInternational => {
            MessageKind::Template(TemplateCategory::Authentication)
        }
        BilledCategory::Service => MessageKind::FreeForm,
        BilledCategory::MetaBusinessAgent => MessageKind::Agent,
        BilledCategory::Template
        | BilledCategory::UserInitiated
        | BilledCategory::BusinessInitiated
        | BilledCategory::ReferralConversion => MessageKind::Unknown,
    }
}
