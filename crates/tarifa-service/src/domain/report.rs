//! Invoices and reconciliation: pure functions over a month of stored event lines.
//!
//! Both re-rate the month with the batch engine (exact and independent of arrival order), once
//! at the business's price list and once at Meta's prices. The month is the calendar month in
//! the WABA's time zone; a line belongs to the month of the local date that decided its price
//! (delivery). The caller passes the events from a few days before the month (windows and
//! conversations opened then) and up to 30 days before for late deliveries.

use crate::domain::effects::Charge;
use rust_decimal::{Decimal, RoundingStrategy};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use tarifa_core::bill::Bill;
use tarifa_core::category::{BilledCategory, MetaPricingType, PricingModel, PricingType};
use tarifa_core::engine::{Prices, Rater, Setup};
use tarifa_core::input::{parse_line, Event};
use tarifa_core::time::{LocalDate, Month};

/// A calendar month, parsed from `YYYY-MM`.
pub fn parse_month(text: &str) -> Option<LocalDate> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    LocalDate::from_ymd(y.parse().ok()?, m.parse().ok()?, 1)
}

/// The first day of the month after `first`.
pub fn next_month(first: LocalDate) -> LocalDate {
    let (y, m, _) = first.ymd_parts();
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    LocalDate::from_ymd(y, m, 1).unwrap_or(first)
}

/// A stored event that could not be re-rated: its place among the period's events and why
/// (it no longer parses, or its business left the rating config). The report is made of the
/// others, and says so.
#[derive(Debug, Serialize, Clone, PartialEq, Eq)]
pub struct UnusableEvent {
    /// 1-based, in the order the events were stored.
    pub position: usize,
    pub event_id: Option<String>,
    pub reason: String,
}

/// Rates the period's stored event lines at `prices`; also returns the lines it could not use.
fn rate(setup: &Setup, prices: Prices, lines: &[String]) -> (Bill, Vec<UnusableEvent>) {
    let mut setup = setup.clone();
    setup.prices = prices;
    let mut rater = Rater::new(Arc::new(setup));
    let mut unusable = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        let mut refused = None;
        let parsed = parse_line(line.as_bytes(), &mut |e| {
            if let Err(e) = rater.push(e) {
                refused.get_or_insert(e);
            }
        });
        if let Some(e) = parsed.err().or(refused) {
            unusable.push(UnusableEvent {
                position: i + 1,
                event_id: e.event_id.clone(),
                reason: e.message,
            });
        }
    }
    (rater.finish(), unusable)
}

/// Minor units of a currency (ISO 4217 exponent) for the rounded total.
pub fn minor_units(currency: &str) -> u32 {
    match currency {
        "JPY" | "KRW" | "CLP" | "VND" | "IDR" | "ISK" | "HUF" | "TWD" | "UGX" | "XAF" | "XOF" => 0,
        "BHD" | "KWD" | "OMR" | "JOD" | "TND" | "IQD" | "LYD" => 3,
        _ => 2,
    }
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct InvoiceLine {
    pub market: String,
    pub category: String,
    /// `message` (per-message era), `conversation` (a conversation's opening message) or
    /// `message_in_conversation` (free inside an open conversation), `notification` (era A).
    pub unit: String,
    pub pricing_type: String,
    /// Volume-tier band (0: none).
    pub band: u8,
    pub rate: Option<String>,
    pub quantity: u64,
    /// At the business's price list.
    pub amount: String,
    /// At Meta's prices.
    pub meta_cost: String,
    pub margin: String,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Invoice {
    pub business: String,
    pub month: String,
    pub timezone: String,
    pub currency: String,
    pub lines: Vec<InvoiceLine>,
    /// Exact sum of the lines.
    pub subtotal: String,
    /// The subtotal rounded half-to-even to the currency's minor unit: what is due.
    pub total: String,
    pub meta_cost: String,
    pub margin: String,
    /// Messages by pricing type (free entry point, free customer service, free tier, …).
    pub messages_by_pricing_type: BTreeMap<String, u64>,
    pub unrated_messages: u64,
    /// Stored events the invoice could not use (absent when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unusable_events: Vec<UnusableEvent>,
}

fn unit_of(model: PricingModel, pricing_type: PricingType) -> &'static str {
    match (model, pricing_type) {
        (PricingModel::Cbp, PricingType::InOpenConversation) => "message_in_conversation",
        (PricingModel::Cbp, _) => "conversation",
        (PricingModel::Nbp, _) => "notification",
        _ => "message",
    }
}

/// Lines of `business` whose price was decided in `month`, keyed by (message, user).
fn month_lines<'a>(
    bill: &'a Bill,
    business: &str,
    month: Month,
) -> Vec<tarifa_core::bill::MessageView<'a>> {
    bill.messages()
        .filter(|v| v.business == business && v.line.date.month() == month)
        .collect()
}

pub fn invoice(
    setup: &Setup,
    business: &str,
    first: LocalDate,
    lines: &[String],
) -> Option<Invoice> {
    let b = setup.businesses.iter().find(|b| b.id == business)?;
    let (resale, unusable_events) = rate(setup, Prices::Resale, lines);
    let (meta, _) = rate(setup, Prices::Meta, lines);
    let month = first.month();
    let meta_amounts: HashMap<(String, String), Decimal> = month_lines(&meta, business, month)
        .into_iter()
        .map(|v| ((v.id.to_string(), v.user.to_string()), v.line.amount))
        .collect();
    type Group = (String, String, &'static str, String, u8, Option<Decimal>);
    let mut groups: BTreeMap<Group, (u64, Decimal, Decimal)> = BTreeMap::new();
    let mut by_type: BTreeMap<String, u64> = BTreeMap::new();
    let mut unrated = 0;
    for v in month_lines(&resale, business, month) {
        let l = v.line;
        *by_type.entry(l.pricing_type.to_string()).or_default() += 1;
        unrated += (l.pricing_type == PricingType::Unrated) as u64;
        let cost = meta_amounts
            .get(&(v.id.to_string(), v.user.to_string()))
            .copied()
            .unwrap_or_default();
        let g = groups
            .entry((
                l.market.map_or("(unknown)", |m| m.name()).to_string(),
                l.category.as_str().to_string(),
                unit_of(l.model, l.pricing_type),
                l.pricing_type.to_string(),
                l.band,
                l.rate,
            ))
            .or_default();
        g.0 += 1;
        g.1 += l.amount;
        g.2 += cost;
    }
    let (mut subtotal, mut cost_total) = (Decimal::ZERO, Decimal::ZERO);
    let lines = groups
        .into_iter()
        .map(
            |((market, category, unit, pricing_type, band, rate), (n, amount, cost))| {
                subtotal += amount;
                cost_total += cost;
                InvoiceLine {
                    market,
                    category,
                    unit: unit.to_string(),
                    pricing_type,
                    band,
                    rate: rate.map(|r| r.normalize().to_string()),
                    quantity: n,
                    amount: amount.normalize().to_string(),
                    meta_cost: cost.normalize().to_string(),
                    margin: (amount - cost).normalize().to_string(),
                }
            },
        )
        .collect();
    let total = subtotal.round_dp_with_strategy(
        minor_units(&b.currency),
        RoundingStrategy::MidpointNearestEven,
    );
    let (y, m, _) = first.ymd_parts();
    Some(Invoice {
        business: business.to_string(),
        month: format!("{y:04}-{m:02}"),
        timezone: b.calendar.name().to_string(),
        currency: b.currency.clone(),
        lines,
        subtotal: subtotal.normalize().to_string(),
        total: format!("{total:.prec$}", prec = minor_units(&b.currency) as usize),
        meta_cost: cost_total.normalize().to_string(),
        margin: (subtotal - cost_total).normalize().to_string(),
        messages_by_pricing_type: by_type,
        unrated_messages: unrated,
        unusable_events,
    })
}

/// The invoice as CSV: one row per line, then the totals.
pub fn invoice_csv(inv: &Invoice) -> String {
    let mut out = String::from(
        "business,month,currency,market,category,unit,pricing_type,band,rate,quantity,amount,meta_cost,margin\n",
    );
    let field = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for l in &inv.lines {
        out.push_str(
            &[
                field(&inv.business),
                inv.month.clone(),
                inv.currency.clone(),
                field(&l.market),
                l.category.clone(),
                l.unit.clone(),
                l.pricing_type.clone(),
                l.band.to_string(),
                l.rate.clone().unwrap_or_default(),
                l.quantity.to_string(),
                l.amount.clone(),
                l.meta_cost.clone(),
                l.margin.clone(),
            ]
            .join(","),
        );
        out.push('\n');
    }
    out.push_str(&format!(
        "{},{},{},TOTAL,,,,,,,{},{},{}\n",
        field(&inv.business),
        inv.month,
        inv.currency,
        inv.total,
        inv.meta_cost,
        inv.margin
    ));
    out
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Mismatch {
    pub message: String,
    pub kind: &'static str,
    pub tarifa: String,
    pub meta: String,
}

#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct Reconciliation {
    pub business: String,
    pub month: String,
    pub messages_compared: u64,
    /// Delivered messages whose webhooks carried no `pricing` object.
    pub without_meta_pricing: u64,
    pub mismatches_by_kind: BTreeMap<&'static str, u64>,
    pub mismatches: Vec<Mismatch>,
    /// Stored events the comparison could not use (absent when there are none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unusable_events: Vec<UnusableEvent>,
}

/// What Meta's statuses said about a message's conversation.
#[derive(Default, Clone)]
struct MetaConversation {
    id: Option<String>,
    origin: Option<BilledCategory>,
}

/// Compares tarifa's rating at Meta's prices with Meta's own `pricing` and `conversation`
/// objects, and (when `charges` are given) the wallet's live charges with the invoice.
pub fn reconcile(
    setup: &Setup,
    business: &str,
    first: LocalDate,
    lines: &[String],
    charges: &[Charge],
) -> Reconciliation {
    let (bill, unusable_events) = rate(setup, Prices::Meta, lines);
    let (resale, _) = rate(setup, Prices::Resale, lines);
    let month = first.month();
    let mut conversations: HashMap<String, MetaConversation> = HashMap::new();
    for line in lines {
        let _ = parse_line(line.as_bytes(), &mut |e| {
            if let Event::Status(s) = e {
                let c = conversations.entry(s.id.to_string()).or_default();
                if let Some(id) = &s.conversation_id {
                    c.id.get_or_insert_with(|| id.to_string());
                }
                if let Some(o) = s.conversation_origin {
                    c.origin.get_or_insert(o);
                }
            }
        });
    }
    let mut mismatches = Vec::new();
    let mut compared = 0;
    let mut without = 0;
    // Conversation partition: tarifa conversation → Meta ids seen, Meta id → tarifa conversations.
    let mut by_tarifa: HashMap<String, Vec<(String, String)>> = HashMap::new();
    for v in month_lines(&bill, business, month) {
        let l = v.line;
        if l.pricing_type == PricingType::NotDelivered {
            continue;
        }
        compared += 1;
        let Some(meta) = v.meta else {
            without += 1;
            continue;
        };
        let mut push = |kind: &'static str, tarifa: String, meta: String| {
            mismatches.push(Mismatch {
                message: v.id.to_string(),
                kind,
                tarifa,
                meta,
            })
        };
        let tarifa_billable = match l.model {
            PricingModel::Cbp => matches!(
                l.pricing_type,
                PricingType::Regular
                    | PricingType::Unrated
                    | PricingType::FreeTier
                    | PricingType::InOpenConversation
            ),
            _ => l.charged(),
        };
        let meta_billable = match meta.pricing_type {
            Some(MetaPricingType::Regular) => Some(true),
            Some(MetaPricingType::FreeCustomerService) | Some(MetaPricingType::FreeEntryPoint) => {
                Some(false)
            }
            _ => meta.billable,
        };
        if let Some(mb) = meta_billable {
            if mb != tarifa_billable {
                push(
                    "billable",
                    format!("{} ({})", tarifa_billable, l.pricing_type),
                    format!("{mb}"),
                );
            }
        }
        if let Some(mt) = meta.pricing_type {
            let expected = match l.pricing_type {
                PricingType::FreeCustomerService => Some(MetaPricingType::FreeCustomerService),
                PricingType::FreeEntryPoint => Some(MetaPricingType::FreeEntryPoint),
                _ => None,
            };
            if let Some(e) = expected {
                if e != mt && meta_billable == Some(false) {
                    push(
                        "pricing_type",
                        l.pricing_type.to_string(),
                        format!("{mt:?}"),
                    );
                }
            }
        }
        if let Some(mc) = meta.category {
            if mc != l.category && tarifa_billable {
                push("category", l.category.as_str().into(), mc.as_str().into());
            }
        }
        if let Some(model) = meta.model {
            if model != l.model {
                push(
                    "pricing_model",
                    l.model.as_str().into(),
                    model.as_str().into(),
                );
            }
        }
        let mc = conversations.get(v.id).cloned().unwrap_or_default();
        if l.model == PricingModel::Cbp {
            if let (Some(_), Some(origin)) = (&v.conversation, mc.origin) {
                if origin != l.category && origin != BilledCategory::ReferralConversion {
                    push(
                        "conversation_origin",
                        l.category.as_str().into(),
                        origin.as_str().into(),
                    );
                }
            }
            if let (Some(conv), Some(id)) = (&v.conversation, &mc.id) {
                by_tarifa
                    .entry(conv.clone())
                    .or_default()
                    .push((v.id.to_string(), id.clone()));
            }
        }
    }
    // One tarifa conversation should be one Meta conversation, and the other way round.
    let mut meta_to_tarifa: HashMap<&str, &str> = HashMap::new();
    let mut partition = Vec::new();
    for (conv, members) in &by_tarifa {
        let first_id = &members[0].1;
        for (message, id) in members {
            if id != first_id {
                partition.push(Mismatch {
                    message: message.clone(),
                    kind: "conversation_split",
                    tarifa: conv.clone(),
                    meta: id.clone(),
                });
            }
            match meta_to_tarifa.insert(id.as_str(), conv.as_str()) {
                Some(other) if other != conv => partition.push(Mismatch {
                    message: message.clone(),
                    kind: "conversation_merged",
                    tarifa: conv.clone(),
                    meta: id.clone(),
                }),
                _ => {}
            }
        }
    }
    partition.sort_by(|a, b| (&a.message, a.kind).cmp(&(&b.message, b.kind)));
    mismatches.extend(partition);
    // The wallet's live charges against the invoice's re-rating.
    if !charges.is_empty() {
        let invoiced: HashMap<&str, Decimal> = month_lines(&resale, business, month)
            .into_iter()
            .map(|v| (v.id, v.line.amount))
            .collect();
        for c in charges {
            let live: Decimal = c.amount;
            if let Some(&inv) = invoiced.get(c.message.as_str()) {
                if inv != live {
                    mismatches.push(Mismatch {
                        message: c.message.clone(),
                        kind: "wallet_charge",
                        tarifa: inv.normalize().to_string(),
                        meta: format!("wallet charged {}", live.normalize()),
                    });
                }
            }
        }
    }
    let mut by_kind = BTreeMap::new();
    for m in &mismatches {
        *by_kind.entry(m.kind).or_default() += 1;
    }
    let (y, m, _) = first.ymd_parts();
    Reconciliation {
        business: business.to_string(),
        month: format!("{y:04}-{m:02}"),
        messages_compared: compared,
        without_meta_pricing: without,
        mismatches_by_kind: by_kind,
        mismatches,
        unusable_events,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_advance() {
        let d = parse_month("2026-12").unwrap();
        assert_eq!(next_month(d), LocalDate::from_ymd(2027, 1, 1).unwrap());
        assert!(parse_month("2026-13").is_none());
        assert!(parse_month("26-1").is_none());
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(minor_units("USD"), 2);
        assert_eq!(minor_units("JPY"), 0);
        assert_eq!(minor_units("KWD"), 3);
    }
}
