//! The result of a rating run: one line per outbound message (per member for group messages),
//! the conversations opened, and totals.
//!
//! Invariant: every total is the exact sum of its lines (no rounding anywhere: amounts are exact
//! decimals in the card's currency).

use super::records::{Conversation, Counter, InputStats, MetaCheck, OutboundRec, NEVER, NONE};
use super::setup::Setup;
use crate::card::RateColumn;
use crate::category::{BilledCategory, PricingModel, PricingType};
use crate::config::Business;
use crate::input::MetaPricing;
use crate::market::{Country, Market};
use crate::time::{Instant, LocalDate};
use rust_decimal::Decimal;

/// Why a line has the price it has, beyond its pricing type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Note {
    None,
    /// Counted as the `nth` against a monthly allowance of `limit`.
    Allowance {
        nth: u64,
        limit: u64,
    },
    /// The `nth` charged message of its tier counter this month.
    Tier {
        nth: u64,
    },
    /// Meta Business Agent tokens.
    Tokens(u64),
    /// No rate card for the currency in force on the date.
    NoCard,
    /// The card has no rate for the market in this column.
    NoRate(RateColumn),
    /// No per-token price configured for the currency.
    NoAgentPrice,
    /// The recipient is not a phone number (e.g. a business-scoped user id), so no market.
    NotAPhoneNumber,
    /// E-3: known only from statuses that name no category, and no rule decides without one.
    UnknownMessage,
}

/// One priced line.
#[derive(Clone, Copy, Debug)]
pub struct Line {
    pub(crate) msg: u32,
    pub(crate) business: u32,
    /// The WABA-local date of `at`.
    pub date: LocalDate,
    pub(crate) user: u32,
    /// The instant that decided the price: delivery, or the send when undelivered.
    pub at: Instant,
    pub market: Option<Market>,
    pub country: Option<Country>,
    pub category: BilledCategory,
    pub pricing_type: PricingType,
    pub model: PricingModel,
    pub amount: Decimal,
    /// The per-message (or per-conversation, per-million-tokens) rate applied.
    pub rate: Option<Decimal>,
    /// 1-based volume-tier band, 0 when none applied.
    pub band: u8,
    pub(crate) conversation: u32,
    /// The spec rule that decided.
    pub rule: &'static str,
    pub note: Note,
    /// How Meta's own pricing of the message compared with the rules (E-1, E-2).
    pub meta_check: MetaCheck,
    pub(crate) chargeable: Option<(RateColumn, Counter)>,
}

impl Line {
    /// Billable by Meta: a regular charge, or one tarifa could not price (unrated).
    pub fn charged(&self) -> bool {
        matches!(
            self.pricing_type,
            PricingType::Regular | PricingType::Unrated
        )
    }

    /// Charged at a known rate: what `charged_messages` counts (unrated lines are counted apart,
    /// in `unrated_messages`, so that a total never mixes priced and unpriced messages).
    pub fn priced_charge(&self) -> bool {
        self.pricing_type == PricingType::Regular
    }
}

/// Interned names, to print lines.
pub(crate) struct Names {
    pub phones: Vec<Box<str>>,
    pub users: Vec<Box<str>>,
    pub groups: Vec<Box<str>>,
    pub id_text: String,
}

/// A rated run.
pub struct Bill {
    pub(crate) setup: std::sync::Arc<Setup>,
    pub(crate) names: Names,
    pub(crate) outbound: Vec<OutboundRec>,
    pub(crate) key_owner: Vec<(u32, u32, u32, bool)>,
    /// The lines in rating order; [`Bill::messages`] gives them in bill order.
    pub lines: Vec<Line>,
    /// Bill order: indices into `lines` by send time, then message id.
    pub(crate) order: Vec<u32>,
    pub conversations: Vec<Conversation>,
    pub stats: InputStats,
}

/// A line with its names resolved.
pub struct MessageView<'a> {
    pub id: &'a str,
    pub business: &'a str,
    pub phone: &'a str,
    pub user: &'a str,
    pub group: Option<&'a str>,
    pub currency: &'a str,
    pub sent_at: Instant,
    pub delivered_at: Option<Instant>,
    pub conversation: Option<String>,
    pub meta: Option<MetaPricing>,
    pub line: &'a Line,
}

/// A conversation with its names resolved.
pub struct ConversationView<'a> {
    pub id: String,
    pub business: &'a str,
    pub phone: &'a str,
    pub user: &'a str,
    pub category: BilledCategory,
    pub model: PricingModel,
    pub opened_by: &'a str,
    pub opened_at: Instant,
    pub expires_at: Instant,
    pub charged: bool,
    pub amount: Decimal,
}

/// Totals of one business in one currency.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Totals {
    pub business: String,
    pub currency: String,
    #[serde(serialize_with = "normalized")]
    pub amount: Decimal,
    pub messages: u64,
    /// Lines charged at a known rate (`regular`); unrated ones are counted apart.
    pub charged_messages: u64,
    /// Lines Meta bills that tarifa could not price (`unrated`).
    pub unrated_messages: u64,
    pub conversations_opened: u64,
    /// Lines where Meta's pricing disagreed with the rules and the rules decided (`verify`).
    pub meta_differs: u64,
    /// Lines where Meta's pricing disagreed with the rules and was followed (`follow`).
    pub meta_followed: u64,
}

/// Totals of one business × currency × market × category.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Breakdown {
    pub business: String,
    pub currency: String,
    pub market: String,
    pub category: String,
    #[serde(serialize_with = "normalized")]
    pub amount: Decimal,
    pub messages: u64,
    /// Lines charged at a known rate (`regular`); unrated ones are counted apart.
    pub charged_messages: u64,
    /// Lines Meta bills that tarifa could not price (`unrated`).
    pub unrated_messages: u64,
}

fn normalized<S: serde::Serializer>(d: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&d.normalize())
}

fn conversation_id(id: &str) -> String {
    format!("conv.{id}")
}

impl Bill {
    pub fn setup(&self) -> &Setup {
        &self.setup
    }

    fn id_of(&self, msg: u32) -> &str {
        let m = &self.outbound[msg as usize];
        &self.names.id_text[m.id_at as usize..][..m.id_len as usize]
    }

    pub fn view<'a>(&'a self, line: &'a Line) -> MessageView<'a> {
        let m = &self.outbound[line.msg as usize];
        let business = &self.setup.businesses[m.business as usize];
        let (_, _, party, is_group) = self.key_owner[m.key as usize];
        MessageView {
            id: self.id_of(line.msg),
            business: &business.id,
            phone: &self.names.phones[m.phone as usize],
            user: if line.user == NONE {
                ""
            } else {
                &self.names.users[line.user as usize]
            },
            group: is_group.then(|| &*self.names.groups[party as usize]),
            currency: &business.currency,
            sent_at: m.sent_at,
            // A group member's line carries that member's delivery; `line.at` of other lines is
            // the instant that decided the price (the send, with `conversation_start = "sent"`).
            delivered_at: match (m.delivered_at, m.members_len) {
                (NEVER, _) => None,
                (_, 0) => Some(m.delivered_at),
                _ => (line.pricing_type != PricingType::NotDelivered).then_some(line.at),
            },
            conversation: (line.conversation != NONE).then(|| {
                conversation_id(self.id_of(self.conversations[line.conversation as usize].opener))
            }),
            meta: m.meta,
            line,
        }
    }

    pub fn messages(&self) -> impl Iterator<Item = MessageView<'_>> {
        self.order
            .iter()
            .map(|&i| self.view(&self.lines[i as usize]))
    }

    pub fn conversation_views(&self) -> impl Iterator<Item = ConversationView<'_>> {
        // The opener's line (first line of the opening message) carries the conversation's price.
        let mut price: Vec<(bool, Decimal)> =
            vec![(false, Decimal::ZERO); self.conversations.len()];
        for line in &self.lines {
            if line.conversation != NONE {
                let c = &self.conversations[line.conversation as usize];
                if c.opener == line.msg {
                    price[line.conversation as usize] = (line.charged(), line.amount);
                }
            }
        }
        let mut order: Vec<usize> = (0..self.conversations.len()).collect();
        order.sort_by_key(|&i| {
            (
                self.conversations[i].start,
                self.id_of(self.conversations[i].opener),
            )
        });
        order.into_iter().map(move |i| {
            let c = &self.conversations[i];
            let (business, _, party, is_group) = self.key_owner[c.key as usize];
            // The opener's number: with `conversation_scope = "business"` a key spans numbers.
            let phone = self.outbound[c.opener as usize].phone;
            ConversationView {
                id: conversation_id(self.id_of(c.opener)),
                business: &self.setup.businesses[business as usize].id,
                phone: &self.names.phones[phone as usize],
                user: if is_group {
                    &self.names.groups[party as usize]
                } else {
                    &self.names.users[party as usize]
                },
                category: c.category,
                model: c.model,
                opened_by: self.id_of(c.opener),
                opened_at: c.start,
                expires_at: c.expiry,
                charged: price[i].0,
                amount: price[i].1,
            }
        })
    }

    /// Totals per business and currency, sorted.
    pub fn totals(&self) -> Vec<Totals> {
        let mut per: Vec<Totals> = self
            .setup
            .businesses
            .iter()
            .map(|b| Totals {
                business: b.id.clone(),
                currency: b.currency.clone(),
                ..Totals::default()
            })
            .collect();
        for line in &self.lines {
            let t = &mut per[line.business as usize];
            t.amount += line.amount;
            t.messages += 1;
            t.charged_messages += line.priced_charge() as u64;
            t.unrated_messages += (line.pricing_type == PricingType::Unrated) as u64;
            t.meta_differs += (line.meta_check == MetaCheck::Differs) as u64;
            t.meta_followed += matches!(line.meta_check, MetaCheck::Followed { .. }) as u64;
        }
        for c in &self.conversations {
            per[self.key_owner[c.key as usize].0 as usize].conversations_opened += 1;
        }
        per.retain(|t| t.messages > 0 || t.conversations_opened > 0);
        per.sort_by(|a, b| (&a.business, &a.currency).cmp(&(&b.business, &b.currency)));
        per
    }

    /// Totals per business, currency, market and billed category, sorted.
    pub fn breakdown(&self) -> Vec<Breakdown> {
        let mut map: rustc_hash::FxHashMap<(u32, Option<Market>, BilledCategory), Breakdown> =
            Default::default();
        for line in &self.lines {
            let entry = map
                .entry((line.business, line.market, line.category))
                .or_insert_with(|| {
                    let b = &self.setup.businesses[line.business as usize];
                    Breakdown {
                        business: b.id.clone(),
                        currency: b.currency.clone(),
                        market: line.market.map_or("(unknown)", |m| m.name()).to_string(),
                        category: line.category.as_str().to_string(),
                        ..Breakdown::default()
                    }
                });
            entry.amount += line.amount;
            entry.messages += 1;
            entry.charged_messages += line.priced_charge() as u64;
            entry.unrated_messages += (line.pricing_type == PricingType::Unrated) as u64;
        }
        let mut rows: Vec<Breakdown> = map.into_values().collect();
        rows.sort_by(|a, b| {
            (&a.business, &a.currency, &a.market, &a.category).cmp(&(
                &b.business,
                &b.currency,
                &b.market,
                &b.category,
            ))
        });
        rows
    }

    /// A sentence saying why a line costs what it costs (and, where Meta's pricing was
    /// followed against the rules, which rule it overruled).
    pub fn explain(&self, line: &Line) -> String {
        let why = self.explain_price(line);
        match line.meta_check {
            MetaCheck::Followed { overruled } => {
                format!("{why}; as Meta's pricing says (tarifa's rules: {overruled})")
            }
            _ => why,
        }
    }

    fn explain_price(&self, line: &Line) -> String {
        let m = &self.outbound[line.msg as usize];
        let business = &self.setup.businesses[m.business as usize];
        let market = line
            .market
            .map_or("unknown market".to_string(), |m| m.name().to_string());
        let conv = || {
            if line.conversation == NONE {
                String::new()
            } else {
                conversation_id(self.id_of(self.conversations[line.conversation as usize].opener))
            }
        };
        let rule = line.rule;
        match line.pricing_type {
            PricingType::Regular => explain_charge(line, &business.currency, &market),
            PricingType::FreeTier => match line.note {
                Note::Allowance { nth, limit } => format!(
                    "free tier: {nth} of {limit} free this month ({})",
                    allowance_rule(rule)
                ),
                _ => "free tier".to_string(),
            },
            PricingType::FreeCustomerService => format!("free customer service ({rule})"),
            PricingType::FreeEntryPoint => format!("free entry point {} ({rule})", conv()),
            PricingType::InOpenConversation => format!(
                "inside open {} conversation {} ({rule})",
                line.category,
                conv()
            ),
            PricingType::NotDelivered => format!("not delivered: never charged ({rule})"),
            PricingType::Unrated => self.explain_unrated(line, business, &market),
        }
    }

    /// Why an unrated line has no price.
    fn explain_unrated(&self, line: &Line, business: &Business, market: &str) -> String {
        let date = business.calendar.date(line.at);
        match line.note {
            Note::NoCard => format!(
                "unrated: no {} rate card in force on {date}",
                business.currency
            ),
            Note::NoRate(column) => {
                let card = self
                    .setup
                    .prices_for(business)
                    .0
                    .rate_card(&business.currency, date)
                    .map(|c| c.effective);
                format!(
                    "unrated: the {} card effective {} has no {} rate for {market}",
                    business.currency,
                    card.map_or("?".to_string(), |d: LocalDate| d.to_string()),
                    column.name()
                )
            }
            Note::NoAgentPrice => format!(
                "unrated: no Meta Business Agent token price configured for {}",
                business.currency
            ),
            Note::NotAPhoneNumber => {
                "unrated: the recipient is not a phone number, so it has no market".to_string()
            }
            Note::UnknownMessage => "unrated: no send record, and Meta's statuses name no \
                 category or origin, so nothing says what the message was (E-3)"
                .to_string(),
            _ => "unrated".to_string(),
        }
    }
}

/// What a charged line was charged for: tokens, a tier band or a rate.
fn explain_charge(line: &Line, currency: &str, market: &str) -> String {
    let rule = line.rule;
    let rate = line
        .rate
        .map(|r| r.normalize().to_string())
        .unwrap_or_default();
    match line.note {
        Note::Tokens(t) => {
            format!("{t} Meta Business Agent tokens at {rate} {currency} per million ({rule})")
        }
        Note::Tier { nth } if line.band > 0 => format!(
            "{} in {market}: charged message #{nth} of the portfolio this month, tier band {} at {rate} ({rule}, V-3)",
            line.category, line.band
        ),
        _ => format!("{} in {market} at {rate} {currency} ({rule})", line.category),
    }
}

fn allowance_rule(rule: &str) -> &'static str {
    match rule {
        "B-3" | "B-9" => "B-5",
        "C-7" => "C-7",
        _ => "D-19",
    }
}
