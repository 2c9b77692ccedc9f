//! The results of sales recovery for a store and a period: what was triggered, sent and skipped
//! (with reasons), which orders the messages won back, the revenue, what the messages cost and
//! the return on that cost.
//!
//! Cost is what the wallet charged for each message once Meta's delivery webhook settled it,
//! else what it was quoted and held at (`pending`). Revenue is in the orders' currencies; the
//! return on cost is given when the revenue is in the wallet's currency (tarifa converts no
//! currencies).

use crate::storage::recovery::{OrderRow, RecoveryRow, RecoveryStore};
use anyhow::Result;
use rust_decimal::Decimal;
use serde::Serialize;
use std::collections::BTreeMap;
use tarifa_core::recovery::{attribute, Attribution, Order, SentRecovery};
use tarifa_core::time::{Instant, HOUR};

#[derive(Debug, Serialize)]
pub struct Report {
    pub business: String,
    pub from: String,
    pub to: String,
    pub triggers: Triggers,
    pub sent: Sent,
    /// Skipped recoveries by reason.
    pub skipped: BTreeMap<String, u64>,
    /// Recoveries not decided yet (scheduled, claimed or sending).
    pub pending: u64,
    pub recovered: Recovered,
    /// Revenue of the recovered orders, by currency.
    pub revenue: BTreeMap<String, String>,
    pub cost: Cost,
    /// (revenue − cost) / cost in the wallet's currency; `None` without cost or without revenue
    /// in that currency.
    pub return_on_cost: Option<String>,
    pub orders: Vec<RecoveredOrder>,
}

#[derive(Debug, Default, Serialize)]
pub struct Triggers {
    pub total: u64,
    pub bot: u64,
    pub cart: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Sent {
    pub total: u64,
    pub free_form: u64,
    pub template: u64,
    pub with_coupon: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Recovered {
    pub orders: u64,
    /// Recovered / sent, 4 decimals.
    pub rate: String,
    pub by_link: u64,
    pub by_coupon: u64,
    pub by_window: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Cost {
    pub currency: String,
    /// Settled by the delivery webhook (the rated amount).
    pub charged: String,
    /// Quoted and held, not settled yet.
    pub pending: String,
    pub total: String,
}

#[derive(Debug, Serialize)]
pub struct RecoveredOrder {
    pub order_id: String,
    pub recovery: String,
    pub user: String,
    pub total: String,
    pub currency: String,
    pub attribution: Attribution,
}

/// The report for `[from, to)` (instants; the caller turns local dates into them).
pub async fn build(
    store: &RecoveryStore,
    business: &str,
    currency: &str,
    (from, to): (Instant, Instant),
    (from_text, to_text): (String, String),
    attribution_hours: u32,
) -> Result<Report> {
    let started = store.list(business, from, to, None, i64::MAX).await?;
    let (skipped, pending) = outcomes(&started);
    let sent_rows = store.sent_between(business, from, to).await?;
    let sent = Sent::count(&sent_rows);
    let window = attribution_hours as i64 * HOUR;
    let order_rows = store.orders(business, from, to + window).await?;
    let mut won = WonBack::attribute(&sent_rows, &order_rows, window);
    won.recovered.rate = if sent.total == 0 {
        "0".into()
    } else {
        ratio(
            Decimal::from(won.recovered.orders),
            Decimal::from(sent.total),
        )
    };
    let (charged, held) = message_costs(store, &sent_rows).await?;
    let total_cost = charged + held;
    let return_on_cost = won
        .revenue
        .get(currency)
        .filter(|_| total_cost > Decimal::ZERO)
        .map(|revenue| ratio(revenue - total_cost, total_cost));
    Ok(Report {
        business: business.to_string(),
        from: from_text,
        to: to_text,
        triggers: Triggers::count(&started),
        sent,
        skipped,
        pending,
        recovered: won.recovered,
        revenue: won.revenue.into_iter().map(|(c, v)| (c, text(v))).collect(),
        cost: Cost {
            currency: currency.to_string(),
            charged: text(charged),
            pending: text(held),
            total: text(total_cost),
        },
        return_on_cost,
        orders: won.orders,
    })
}

impl Triggers {
    fn count(started: &[RecoveryRow]) -> Self {
        let mut triggers = Triggers::default();
        for r in started {
            triggers.total += 1;
            match r.trigger.as_str() {
                "cart" => triggers.cart += 1,
                _ => triggers.bot += 1,
            }
        }
        triggers
    }
}

/// The skipped recoveries by reason, and how many are not decided yet.
fn outcomes(started: &[RecoveryRow]) -> (BTreeMap<String, u64>, u64) {
    let mut skipped: BTreeMap<String, u64> = BTreeMap::new();
    let mut pending = 0;
    for r in started {
        match r.state.as_str() {
            "skipped" => *skipped.entry(r.reason.clone()).or_default() += 1,
            "sent" | "recovered" => {}
            _ => pending += 1,
        }
    }
    (skipped, pending)
}

impl Sent {
    fn count(sent_rows: &[RecoveryRow]) -> Self {
        let mut sent = Sent::default();
        for r in sent_rows {
            sent.total += 1;
            match r.channel.as_deref() {
                Some("template") => sent.template += 1,
                _ => sent.free_form += 1,
            }
            if r.coupon_code.is_some() {
                sent.with_coupon += 1;
            }
        }
        sent
    }
}

/// The orders the messages won back (the rate is left for the caller, who knows the sends).
struct WonBack {
    recovered: Recovered,
    revenue: BTreeMap<String, Decimal>,
    orders: Vec<RecoveredOrder>,
}

impl WonBack {
    fn attribute(sent_rows: &[RecoveryRow], order_rows: &[OrderRow], window: i64) -> Self {
        let orders: Vec<Order> = order_rows.iter().map(order_of).collect();
        let recoveries: Vec<SentRecovery> = sent_rows.iter().map(sent_recovery_of).collect();
        let mut won = WonBack {
            recovered: Recovered::default(),
            revenue: BTreeMap::new(),
            orders: Vec::new(),
        };
        for (si, oi, how) in attribute(&recoveries, &orders, window) {
            won.recovered.orders += 1;
            match how {
                Attribution::Link => won.recovered.by_link += 1,
                Attribution::Coupon => won.recovered.by_coupon += 1,
                Attribution::Window => won.recovered.by_window += 1,
            }
            let row = &order_rows[oi];
            *won.revenue.entry(row.currency.clone()).or_default() += orders[oi].total;
            won.orders.push(RecoveredOrder {
                order_id: row.order_id.clone(),
                recovery: recoveries[si].id.clone(),
                user: row.user.clone(),
                total: row.total.clone(),
                currency: row.currency.clone(),
                attribution: how,
            });
        }
        won
    }
}

fn order_of(o: &OrderRow) -> Order {
    Order {
        id: o.order_id.clone(),
        user: o.user.clone(),
        at: o.at,
        total: o.total.parse().unwrap_or_default(),
        coupon: o.coupon.clone(),
        recovery: o.recovery.clone(),
    }
}

fn sent_recovery_of(r: &RecoveryRow) -> SentRecovery {
    SentRecovery {
        id: r.id.clone(),
        user: r.user.clone(),
        sent_at: r.sent_at.unwrap_or_default(),
        coupon_code: r.coupon_code.clone(),
    }
}

/// What the sent messages cost: charged once their delivery settled, else still held at
/// their quote.
async fn message_costs(
    store: &RecoveryStore,
    sent_rows: &[RecoveryRow],
) -> Result<(Decimal, Decimal)> {
    let ids: Vec<&str> = sent_rows
        .iter()
        .filter_map(|r| r.message_id.as_deref())
        .collect();
    let charged: BTreeMap<String, Decimal> = store
        .charged(&ids)
        .await?
        .into_iter()
        .map(|(m, a)| (m, a.parse().unwrap_or_default()))
        .collect();
    let (mut settled, mut held) = (Decimal::ZERO, Decimal::ZERO);
    for r in sent_rows {
        match r.message_id.as_ref().and_then(|m| charged.get(m)) {
            Some(a) => settled += a,
            None => {
                held += r
                    .cost
                    .as_deref()
                    .and_then(|c| c.parse::<Decimal>().ok())
                    .unwrap_or_default()
            }
        }
    }
    Ok((settled, held))
}

/// `a / b` to 4 decimals, as text.
fn ratio(a: Decimal, b: Decimal) -> String {
    text((a / b).round_dp(4))
}

/// A decimal as text, without trailing zeros.
fn text(d: Decimal) -> String {
    d.normalize().to_string()
}

/// Marks the customer's sent recovery that `order` wins back (as this report attributes it:
/// link, coupon, then the latest message within the window) as `recovered`. Returns how many
/// it marked (0 or 1; 0 again when the order is replayed).
pub async fn mark_won_back(
    store: &RecoveryStore,
    order: &OrderRow,
    attribution_hours: u32,
    now: Instant,
) -> Result<u64> {
    let sent_rows = store.sent_unrecovered(&order.business, &order.user).await?;
    let recoveries: Vec<SentRecovery> = sent_rows.iter().map(sent_recovery_of).collect();
    let window = attribution_hours as i64 * HOUR;
    let mut marked = 0;
    for (si, _, _) in attribute(&recoveries, &[order_of(order)], window) {
        marked += store.mark_recovered(&sent_rows[si].id, now).await? as u64;
    }
    Ok(marked)
}
