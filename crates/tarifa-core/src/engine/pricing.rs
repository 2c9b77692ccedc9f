//! Step 3b: turn decisions into priced bill lines.
//!
//! Lines are walked in global time order (delivery instant, then id), because the monthly
//! counters are shared across users: the first 1,000 conversations of a WABA (B-5), the first
//! 1,000 service conversations (C-7), the free service messages of a number (D-19) and the
//! graduated volume tiers of a portfolio × market × category (V-1 … V-6). Each counter's month is
//! the WABA's local month (1-3, V-4).

use super::conversations::{Counter, Decided, Outcome};
use super::{IdHash, MemberDelivery, Rater, NEVER, NONE};
use crate::bill::{Bill, Line, Note};
use crate::card::{RateBook, RateCard, RateColumn, TierCard, TierCategory};
use crate::category::{BilledCategory, PricingType};
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

pub(crate) fn price(
    rater: Rater,
    decided: Decided,
    members: Vec<MemberDelivery>,
    only: Option<(&rustc_hash::FxHashSet<IdHash>, &dyn CounterBase)>,
) -> (Bill, Vec<CounterKey>) {
    let Decided {
        decisions,
        conversations,
    } = decided;
    let setup = &rater.setup;
    let mut countries = Countries {
        cache: vec![None; rater.users.names.len()],
    };

    // Expand decisions into lines: one per message, or one per member of a group message.
    let mut lines: Vec<Line> = Vec::with_capacity(decisions.len());
    for d in &decisions {
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
            chargeable: None,
        };
        let outcome = |line: Line| match d.outcome {
            Outcome::Free(p) => Line {
                pricing_type: p,
                ..line
            },
            Outcome::Chargeable(column, counter) => Line {
                chargeable: Some((column, counter)),
                ..line
            },
        };
        if m.members_len == 0 {
            lines.push(outcome(base));
            continue;
        }
        // D-10: a group message is charged once per member it was delivered to.
        let start = members.partition_point(|x| x.message < m.id);
        let delivered: Vec<&MemberDelivery> = members[start..]
            .iter()
            .take_while(|x| x.message == m.id)
            .collect();
        for &user in &rater.members[m.members_at as usize..][..m.members_len as usize] {
            match delivered.iter().find(|x| x.user == user) {
                Some(x) if m.delivered_at != NEVER => lines.push(outcome(Line {
                    user,
                    at: x.delivered_at,
                    ..base
                })),
                _ => lines.push(Line {
                    user,
                    pricing_type: PricingType::NotDelivered,
                    rule: "D-10",
                    ..base
                }),
            }
        }
    }

    drop(decisions);
    if let Some((targets, _)) = only {
        lines.retain(|l| targets.contains(&rater.outbound[l.msg as usize].id));
    }

    // Markets (1-1, MK-2): by the recipient's number on the line's local date.
    for line in &mut lines {
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

    // Counters and prices, in global time order.
    let mut order: Vec<(Instant, IdHash, u64, u32)> = lines
        .iter()
        .enumerate()
        .filter(|(_, l)| l.chargeable.is_some())
        .map(|(i, l)| {
            (
                l.at,
                rater.outbound[l.msg as usize].id,
                member_rank(&rater, l),
                i as u32,
            )
        })
        .collect();
    order.sort_unstable();
    let mut cards: FxHashMap<(u32, LocalDate), CardsInForce<'_>> = FxHashMap::default();
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
    // The name of an interned counter, for the base and for the caller of a targeted run.
    let counter_key = |counter: Counter, owner: u32, bucket: u32, month: Month| CounterKey {
        counter,
        owner: match counter {
            Counter::FreeServiceMessages => rater.phones.names[owner as usize].to_string(),
            Counter::UtilityTiers | Counter::AuthenticationTiers => {
                portfolio_names[owner as usize].to_string()
            }
            _ => setup.businesses[owner as usize].id.clone(),
        },
        bucket,
        month,
    };
    let mut counted = Vec::new();
    let books: Vec<(&RateBook, Decimal)> = setup
        .businesses
        .iter()
        .map(|b| setup.prices_for(b))
        .collect();
    let mut counters: FxHashMap<(Counter, u32, u32, Month), u64> = FxHashMap::default();
    for (_, _, _, i) in order {
        let line = &mut lines[i as usize];
        let m = &rater.outbound[line.msg as usize];
        let business = &setup.businesses[m.business as usize];
        let (column, counter) = line.chargeable.expect("filtered to chargeable lines");
        let date = line.date;
        let month = date.month();
        let market = line.market.unwrap_or(Market::OTHER);
        let (book, markup) = books[m.business as usize];
        let mut bump = |counter: Counter, a: u32, b: u32| {
            let n = counters
                .entry((counter, a, b, month))
                .or_insert_with(|| match only {
                    None => 0,
                    Some((_, base)) => base.used(&counter_key(counter, a, b, month)),
                });
            *n += 1;
            if only.is_some() {
                counted.push(counter_key(counter, a, b, month));
            }
            *n
        };
        // Free allowances first: a message inside one needs no rate.
        let allowance = match counter {
            Counter::FreeConversations | Counter::FreeServiceConversations => Some((
                bump(counter, m.business, 0),
                setup.rules.free_conversations_per_month as u64,
            )),
            Counter::FreeServiceMessages => Some((
                bump(counter, m.phone, 0),
                setup.rules.free_service_messages_per_number as u64,
            )),
            _ => None,
        };
        if let Some((nth, limit)) = allowance {
            if nth <= limit {
                line.pricing_type = PricingType::FreeTier;
                line.note = Note::Allowance { nth, limit };
                continue;
            }
        }
        if counter == Counter::AgentTokens {
            // D-14: tokens × the per-million price of the WABA currency.
            match setup
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
            continue;
        }
        let (card, tiers) = *cards.entry((m.business, date)).or_insert_with(|| {
            (
                book.rate_card(&business.currency, date),
                book.tier_card(&business.currency, date),
            )
        });
        let Some(card) = card else {
            line.pricing_type = PricingType::Unrated;
            line.note = Note::NoCard;
            continue;
        };
        // AI-1 … AI-3, AI-6: authentication-international rate where it applies.
        let mut column = column;
        if column == RateColumn::Authentication {
            if let (Some(country), Some(ai)) = (line.country, &business.auth_international) {
                if card
                    .rate(market, RateColumn::AuthenticationInternational)
                    .is_some()
                    && ai.applies(country, business.primary_country, line.at)
                {
                    column = RateColumn::AuthenticationInternational;
                    line.category = BilledCategory::AuthenticationInternational;
                }
            }
        }
        let mut rate = card.rate(market, column);
        if rate.is_none()
            && column == RateColumn::Service
            && setup.rules.service_rate_falls_back_to_utility
        {
            // D-15: service is charged at the utility rate of the market.
            rate = card.rate(market, RateColumn::Utility);
        }
        let tier = match counter {
            Counter::UtilityTiers => Some((TierCategory::Utility, 0)),
            Counter::AuthenticationTiers if column == RateColumn::AuthenticationInternational => {
                Some((TierCategory::AuthenticationInternational, 1))
            }
            Counter::AuthenticationTiers => Some((TierCategory::Authentication, 1)),
            _ => None,
        };
        if let Some((category, shared)) = tier {
            // V-2, V-3, V-5, V-6: count only charged messages, per portfolio × market × category
            // (authentication and auth-international share one), and price by the band reached.
            let nth = bump(
                counter,
                portfolio_of[m.business as usize],
                (market.0 as u32) << 1 | shared,
            );
            if let Some(tiers) = tiers {
                let bands = tiers.bands(market, category);
                if let Some(p) = bands
                    .iter()
                    .position(|b| b.from <= nth && b.to.is_none_or(|to| nth <= to))
                {
                    rate = Some(bands[p].rate);
                    line.band = p as u8 + 1;
                }
            }
            line.note = Note::Tier { nth };
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
    for line in &mut lines {
        line.chargeable = None;
    }

    // Bill order: by send time, then id (keys extracted once: comparing through `outbound` would
    // be a cache miss per comparison).
    let mut keyed: Vec<(Instant, IdHash, u64, u32)> = lines
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let m = &rater.outbound[l.msg as usize];
            (m.at, m.id, member_rank(&rater, l), i as u32)
        })
        .collect();
    keyed.sort_unstable();
    // The lines stay where they are (moving them is a cache miss each); the bill keeps the order.
    let order: Vec<u32> = keyed.into_iter().map(|(_, _, _, i)| i).collect();
    (Bill::new(rater, lines, order, conversations), counted)
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
