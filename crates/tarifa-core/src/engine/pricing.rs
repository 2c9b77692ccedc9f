//! Step 3b: turn decisions into priced bill lines.
//!
//! Lines are walked in global time order (delivery instant, then id), because the monthly
//! counters are shared across users: the first 1,000 conversations of a WABA (B-5), the first
//! 1,000 service conversations (C-7), the free service messages of a number (D-19) and the
//! graduated volume tiers of a portfolio × market × category (V-1 … V-6). Each counter's month is
//! the WABA's local month (1-3, V-4).

use super::bill::{Bill, Line, Note};
use super::conversations::{Decided, Decision, Outcome};
use super::records::{Counter, IdHash, MemberDelivery, OutboundRec, NEVER, NONE};
use super::setup::Setup;
use super::Rater;
use crate::card::{RateBook, RateCard, RateColumn, TierCard, TierCategory};
use crate::category::{BilledCategory, PricingType};
use crate::config::{Business, Rules};
use crate::market::{country_of, market_of, Country, Market};
use crate::time::{Instant, LocalDate, Month};
use rust_decimal::Decimal;
use rustc_hash::FxHashMap;

/// Country of each user's number, resolved once.
struct Countries {
    cache: Vec<Option<Result<Option<Country>, ()>>>,
}

impl Countries {
    fn get(&mut self, user: u32, names: &[Box<str>]) -> Result<Option<Country>, ()> {
        let slot = &mut self.cache[user as usize];
        *slot.get_or_insert_with(|| country_of(&names[user as usize]).map_err(|_| ()))
    }
}

/// The rate and tier cards in force for one business on one date.
type CardsInForce<'a> = (Option<&'a RateCard>, Option<&'a TierCard>);

/// A monthly counter by name, so that it means the same in every run (a live service keeps them
/// between runs; see [`Rater::finish_for`](super::Rater::finish_for)).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CounterKey {
    pub counter: Counter,
    /// The business id (B-5, C-7), the business phone number (D-19) or the portfolio (tiers).
    pub owner: String,
    /// Tiers: the market index shifted left by one, plus 1 for the authentication counter shared
    /// with authentication-international (V-6); otherwise 0.
    pub bucket: u32,
    /// The WABA-local month.
    pub month: Month,
}

/// How much of each monthly counter was used before a run.
pub trait CounterBase {
    fn used(&self, key: &CounterKey) -> u64;
}

impl<S: std::hash::BuildHasher> CounterBase for std::collections::HashMap<CounterKey, u64, S> {
    fn used(&self, key: &CounterKey) -> u64 {
        self.get(key).copied().unwrap_or(0)
    }
}

/// The targets of a live run and the counts each counter starts from (see
/// [`Rater::finish_for`](super::Rater::finish_for)).
pub(crate) type Only<'a> = Option<(&'a rustc_hash::FxHashSet<IdHash>, &'a dyn CounterBase)>;

pub(crate) fn price(
    rater: Rater,
    decided: Decided,
    members: Vec<MemberDelivery>,
    only: Only<'_>,
) -> (Bill, Vec<CounterKey>) {
    let Decided {
        decisions,
        conversations,
    } = decided;
    let mut lines = expand(&rater, &decisions, &members);
    drop(decisions);
    if let Some((targets, _)) = only {
        lines.retain(|l| targets.contains(&rater.outbound[l.msg as usize].id));
    }
    assign_markets(&rater, &mut lines);
    let counted = price_chargeable(&rater, &mut lines, only);
    let order = bill_order(&rater, &lines);
    (rater.into_bill(lines, order, conversations), counted)
}

/// Expands decisions into lines: one per message, or one per member of a group message.
fn expand(rater: &Rater, decisions: &[Decision], members: &[MemberDelivery]) -> Vec<Line> {
    let mut lines: Vec<Line> = Vec::with_capacity(decisions.len());
    for d in decisions {
        let m = &rater.outbound[d.msg as usize];
        let base = Line {
            msg: d.msg,
            business: m.business,
            date: LocalDate(0),
            user: m.user,
            at: d.at,
            market: None,
            country: None,
            category: d.category,
            pricing_type: PricingType::NotDelivered,
            model: d.model,
            amount: Decimal::ZERO,
            rate: None,
            band: 0,
            conversation: d.conversation,
            rule: d.rule,
            note: Note::None,
            meta_check: d.meta_check,
            chargeable: None,
        };
        if m.members_len == 0 {
            lines.push(with_outcome(d, base));
        } else {
            expand_group(rater, d, m, base, members, &mut lines);
        }
    }
    lines
}

/// `line` as decision `d` left it: free, or chargeable subject to a counter.
#[inline]
fn with_outcome(d: &Decision, line: Line) -> Line {
    match d.outcome {
        Outcome::Free(p) => Line {
            pricing_type: p,
            ..line
        },
        Outcome::Chargeable(column, counter) => Line {
            chargeable: Some((column, counter)),
            ..line
        },
        Outcome::Undecided => Line {
            pricing_type: PricingType::Unrated,
            note: Note::UnknownMessage,
            ..line
        },
    }
}

/// D-10: a group message is charged once per member it was delivered to.
fn expand_group(
    rater: &Rater,
    d: &Decision,
    m: &OutboundRec,
    base: Line,
    members: &[MemberDelivery],
    lines: &mut Vec<Line>,
) {
    let start = members.partition_point(|x| x.message < m.id);
    let delivered: Vec<&MemberDelivery> = members[start..]
        .iter()
        .take_while(|x| x.message == m.id)
        .collect();
    for &user in &rater.members[m.members_at as usize..][..m.members_len as usize] {
        match delivered.iter().find(|x| x.user == user) {
            Some(x) if m.delivered_at != NEVER => lines.push(with_outcome(
                d,
                Line {
                    user,
                    at: x.delivered_at,
                    ..base
                },
            )),
            _ => lines.push(Line {
                user,
                pricing_type: PricingType::NotDelivered,
                rule: "D-10",
                ..base
            }),
        }
    }
}

/// Markets (1-1, MK-2): by the recipient's number on the line's local date.
fn assign_markets(rater: &Rater, lines: &mut [Line]) {
    let setup = &rater.setup;
    let mut countries = Countries {
        cache: vec![None; rater.users.names.len()],
    };
    for line in lines {
        let m = &rater.outbound[line.msg as usize];
        line.business = m.business;
        line.date = setup.businesses[m.business as usize].calendar.date(line.at);
        if line.user == NONE {
            continue;
        }
        match countries.get(line.user, &rater.users.names) {
            Ok(country) => {
                line.country = country;
                line.market = Some(market_of(country, line.date, &setup.markets));
            }
            Err(()) => {
                if line.chargeable.is_some() {
                    line.pricing_type = PricingType::Unrated;
                    line.note = Note::NotAPhoneNumber;
                    line.chargeable = None;
                }
            }
        }
    }
}

/// Counters and prices of the chargeable lines, in global time order. Returns the counters moved
/// (only in a targeted run).
fn price_chargeable(rater: &Rater, lines: &mut [Line], only: Only<'_>) -> Vec<CounterKey> {
    let mut order: Vec<(Instant, IdHash, u64, u32)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.chargeable.is_some())
        .map(|(i, l)| {
            (
                l.at,
                rater.outbound[l.msg as usize].id,
                member_rank(rater, l),
                i as u32,
            )
        })
        .collect();
    order.sort_unstable();
    let mut pricer = Pricer::new(rater, only);
    for (_, _, _, i) in order {
        pricer.price(&mut lines[i as usize]);
    }
    for line in lines {
        line.chargeable = None;
    }
    pricer.counted
}

/// Bill order: by send time, then id (keys extracted once: comparing through `outbound` would
/// be a cache miss per comparison). The lines stay where they are (moving them is a cache miss
/// each); the bill keeps the order.
fn bill_order(rater: &Rater, lines: &[Line]) -> Vec<u32> {
    let mut keyed: Vec<(Instant, IdHash, u64, u32)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let m = &rater.outbound[l.msg as usize];
            (m.at, m.id, member_rank(rater, l), i as u32)
        })
        .collect();
    keyed.sort_unstable();
    keyed.into_iter().map(|(_, _, _, i)| i).collect()
}

/// Names interned counters, for the base and for the caller of a targeted run.
struct CounterNames<'a> {
    rater: &'a Rater,
    /// Portfolio names by interned index.
    portfolios: Vec<&'a str>,
}

impl CounterNames<'_> {
    fn key(&self, counter: Counter, owner: u32, bucket: u32, month: Month) -> CounterKey {
        CounterKey {
            counter,
            owner: match counter {
                Counter::FreeServiceMessages => self.rater.phones.names[owner as usize].to_string(),
                Counter::UtilityTiers | Counter::AuthenticationTiers => {
                    self.portfolios[owner as usize].to_string()
                }
                _ => self.rater.setup.businesses[owner as usize].id.clone(),
            },
            bucket,
            month,
        }
    }
}

/// Prices chargeable lines one by one, keeping the monthly counters.
struct Pricer<'a> {
    rater: &'a Rater,
    setup: &'a Setup,
    only: Only<'a>,
    /// Per business: the cards it is billed from and the markup of prices not on cards.
    books: Vec<(&'a RateBook, Decimal)>,
    /// Per business: its interned portfolio.
    portfolio_of: Vec<u32>,
    names: CounterNames<'a>,
    cards: FxHashMap<(u32, LocalDate), CardsInForce<'a>>,
    counters: FxHashMap<(Counter, u32, u32, Month), u64>,
    counted: Vec<CounterKey>,
}

impl<'a> Pricer<'a> {
    fn new(rater: &'a Rater, only: Only<'a>) -> Pricer<'a> {
        let setup: &'a Setup = &rater.setup;
        let mut portfolios: FxHashMap<&str, u32> = FxHashMap::default();
        let portfolio_of: Vec<u32> = setup
            .businesses
            .iter()
            .map(|b| {
                let next = portfolios.len() as u32;
                *portfolios.entry(b.portfolio.as_str()).or_insert(next)
            })
            .collect();
        let mut portfolio_names = vec![""; portfolios.len()];
        for (name, i) in &portfolios {
            portfolio_names[*i as usize] = name;
        }
        Pricer {
            rater,
            setup,
            only,
            books: setup
                .businesses
                .iter()
                .map(|b| setup.prices_for(b))
                .collect(),
            portfolio_of,
            names: CounterNames {
                rater,
                portfolios: portfolio_names,
            },
            cards: FxHashMap::default(),
            counters: FxHashMap::default(),
            counted: Vec::new(),
        }
    }

    /// Counts one more message against `counter` of (`owner`, `bucket`) in `month`; returns
    /// its number this month.
    #[inline]
    fn bump(&mut self, counter: Counter, owner: u32, bucket: u32, month: Month) -> u64 {
        let n = self
            .counters
            .entry((counter, owner, bucket, month))
            .or_insert_with(|| match self.only {
                None => 0,
                Some((_, base)) => base.used(&self.names.key(counter, owner, bucket, month)),
            });
        *n += 1;
        if self.only.is_some() {
            self.counted
                .push(self.names.key(counter, owner, bucket, month));
        }
        *n
    }

    /// Prices one chargeable line.
    fn price(&mut self, line: &mut Line) {
        let (rater, setup) = (self.rater, self.setup);
        let m = &rater.outbound[line.msg as usize];
        let business = &setup.businesses[m.business as usize];
        let (column, counter) = line.chargeable.expect("filtered to chargeable lines");
        let date = line.date;
        // Free allowances first: a message inside one needs no rate.
        if self.within_allowance(line, m, counter) {
            return;
        }
        if counter == Counter::AgentTokens {
            self.price_tokens(line, m, business);
            return;
        }
        let (book, _) = self.books[m.business as usize];
        let (card, tiers) = *self.cards.entry((m.business, date)).or_insert_with(|| {
            (
                book.rate_card(&business.currency, date),
                book.tier_card(&business.currency, date),
            )
        });
        let Some(card) = card else {
            line.pricing_type = PricingType::Unrated;
            line.note = Note::NoCard;
            return;
        };
        let market = line.market.unwrap_or(Market::OTHER);
        let column = auth_international(line, card, market, column, business);
        let mut rate = card_rate(card, market, column, &setup.rules);
        if let Some(tier) = tier_of(counter, column) {
            let portfolio = self.portfolio_of[m.business as usize];
            if let Some(band_rate) = self.tier_rate(line, counter, tier, portfolio, tiers) {
                rate = Some(band_rate);
            }
        }
        match rate {
            Some(rate) => {
                line.rate = Some(rate);
                line.amount = rate;
                line.pricing_type = PricingType::Regular;
            }
            None => {
                line.pricing_type = PricingType::Unrated;
                line.note = Note::NoRate(column);
            }
        }
    }

    /// B-5, C-7, D-19: counts the line against its free allowance; true if it falls inside.
    #[inline]
    fn within_allowance(&mut self, line: &mut Line, m: &OutboundRec, counter: Counter) -> bool {
        let rules = &self.setup.rules;
        let month = line.date.month();
        let allowance = match counter {
            Counter::FreeConversations | Counter::FreeServiceConversations => Some((
                self.bump(counter, m.business, 0, month),
                rules.free_conversations_per_month as u64,
            )),
            Counter::FreeServiceMessages => Some((
                self.bump(counter, m.phone, 0, month),
                rules.free_service_messages_per_number as u64,
            )),
            _ => None,
        };
        match allowance {
            Some((nth, limit)) if nth <= limit => {
                line.pricing_type = PricingType::FreeTier;
                line.note = Note::Allowance { nth, limit };
                true
            }
            _ => false,
        }
    }

    /// D-14: tokens × the per-million price of the WABA currency.
    fn price_tokens(&self, line: &mut Line, m: &OutboundRec, business: &Business) {
        let (_, markup) = self.books[m.business as usize];
        match self
            .setup
            .rules
            .agent_price_per_million_tokens
            .get(&business.currency)
        {
            Some(price) => {
                let rate = *price * markup;
                line.rate = Some(rate);
                line.amount = rate * Decimal::from(m.tokens) / Decimal::from(1_000_000u32);
                line.pricing_type = PricingType::Regular;
                line.note = Note::Tokens(m.tokens);
            }
            None => {
                line.pricing_type = PricingType::Unrated;
                line.note = Note::NoAgentPrice;
            }
        }
    }

    /// V-2, V-3, V-5, V-6: counts only charged messages, per portfolio × market × category
    /// (authentication and auth-international share one), and prices by the band reached: the
    /// band's rate, if the tier card has one.
    fn tier_rate(
        &mut self,
        line: &mut Line,
        counter: Counter,
        (category, shared): (TierCategory, u32),
        portfolio: u32,
        tiers: Option<&TierCard>,
    ) -> Option<Decimal> {
        let market = line.market.unwrap_or(Market::OTHER);
        let nth = self.bump(
            counter,
            portfolio,
            (market.0 as u32) << 1 | shared,
            line.date.month(),
        );
        line.note = Note::Tier { nth };
        let bands = tiers?.bands(market, category);
        let p = bands
            .iter()
            .position(|b| b.from <= nth && b.to.is_none_or(|to| nth <= to))?;
        line.band = p as u8 + 1;
        Some(bands[p].rate)
    }
}

/// AI-1 … AI-3, AI-6: the authentication-international column where it applies (and the line's
/// category with it); otherwise `column`.
#[inline]
fn auth_international(
    line: &mut Line,
    card: &RateCard,
    market: Market,
    column: RateColumn,
    business: &Business,
) -> RateColumn {
    if column == RateColumn::Authentication {
        if let (Some(country), Some(ai)) = (line.country, &business.auth_international) {
            if card
                .rate(market, RateColumn::AuthenticationInternational)
                .is_some()
                && ai.applies(country, business.primary_country, line.at)
            {
                line.category = BilledCategory::AuthenticationInternational;
                return RateColumn::AuthenticationInternational;
            }
        }
    }
    column
}

/// The card's rate of `column` in `market`; D-15: service is charged at the utility rate of the
/// market where the card has no service rate.
#[inline]
fn card_rate(
    card: &RateCard,
    market: Market,
    column: RateColumn,
    rules: &Rules,
) -> Option<Decimal> {
    let rate = card.rate(market, column);
    if rate.is_none() && column == RateColumn::Service && rules.service_rate_falls_back_to_utility {
        return card.rate(market, RateColumn::Utility);
    }
    rate
}

/// The volume-tier category of a counter, and whether it is the authentication counter shared
/// with authentication-international (V-6).
#[inline]
fn tier_of(counter: Counter, column: RateColumn) -> Option<(TierCategory, u32)> {
    match counter {
        Counter::UtilityTiers => Some((TierCategory::Utility, 0)),
        Counter::AuthenticationTiers if column == RateColumn::AuthenticationInternational => {
            Some((TierCategory::AuthenticationInternational, 1))
        }
        Counter::AuthenticationTiers => Some((TierCategory::Authentication, 1)),
        _ => None,
    }
}

/// Orders the member lines of one group message by a hash of the member's number (not by the
/// interned index, which follows input order); 0 for ordinary messages.
fn member_rank(rater: &Rater, line: &Line) -> u64 {
    if rater.outbound[line.msg as usize].members_len == 0 {
        0
    } else {
        xxhash_rust::xxh3::xxh3_64(rater.users.names[line.user as usize].as_bytes())
    }
}
