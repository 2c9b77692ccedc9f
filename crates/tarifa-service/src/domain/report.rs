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
use tarifa_core::bill::{Bill, Line, MessageView};
use tarifa_core::category::{BilledCategory, MetaPricingType, PricingModel, PricingType};
use tarifa_core::config::MetaPolicy;
use tarifa_core::engine::{Prices, Rater, Setup};
use tarifa_core::input::{parse_line, Event, MetaPricing};
use tarifa_core::time::{LocalDate, Month};

/// A calendar month, parsed from `YYYY-MM`.
pub fn parse_month(text: &str) -> Option<LocalDate> {
    let (y, m) = text.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let year: i32 = y.parse().ok()?;
    if !tarifa_core::time::YEARS.contains(&year) {
        return None;
    }
    LocalDate::from_ymd(year, m.parse().ok()?, 1)
}

/// The first day of the month after `first`.
pub fn next_month(first: LocalDate) -> LocalDate {
    let (y, m, _) = first.ymd_parts();
    let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    LocalDate::ymd(y, m, 1)
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
    let groups = InvoiceGroups::of(&resale, &meta, business, first.month());
    let (mut subtotal, mut cost_total) = (Decimal::ZERO, Decimal::ZERO);
    let lines = groups
        .lines
        .into_iter()
        .map(|(group, sums)| {
            subtotal += sums.amount;
            cost_total += sums.cost;
            invoice_line(group, sums)
        })
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
        messages_by_pricing_type: groups.by_type,
        unrated_messages: groups.unrated,
        unusable_events,
    })
}

/// What makes an invoice line: market, category, unit, pricing type, band and rate.
type InvoiceGroup = (String, String, &'static str, String, u8, Option<Decimal>);

/// The messages of an invoice line: how many, at resale prices, at Meta's.
#[derive(Default)]
struct LineSums {
    quantity: u64,
    amount: Decimal,
    cost: Decimal,
}

/// A month's messages grouped into invoice lines, with counts by pricing type.
struct InvoiceGroups {
    lines: BTreeMap<InvoiceGroup, LineSums>,
    by_type: BTreeMap<String, u64>,
    unrated: u64,
}

impl InvoiceGroups {
    fn of(resale: &Bill, meta: &Bill, business: &str, month: Month) -> InvoiceGroups {
        let meta_amounts: HashMap<(&str, &str), Decimal> = month_lines(meta, business, month)
            .into_iter()
            .map(|v| ((v.id, v.user), v.line.amount))
            .collect();
        let mut groups = InvoiceGroups {
            lines: BTreeMap::new(),
            by_type: BTreeMap::new(),
            unrated: 0,
        };
        for v in month_lines(resale, business, month) {
            let l = v.line;
            *groups
                .by_type
                .entry(l.pricing_type.to_string())
                .or_default() += 1;
            groups.unrated += (l.pricing_type == PricingType::Unrated) as u64;
            let cost = meta_amounts
                .get(&(v.id, v.user))
                .copied()
                .unwrap_or_default();
            let group = (
                l.market.map_or("(unknown)", |m| m.name()).to_string(),
                l.category.as_str().to_string(),
                unit_of(l.model, l.pricing_type),
                l.pricing_type.to_string(),
                l.band,
                l.rate,
            );
            let sums = groups.lines.entry(group).or_default();
            sums.quantity += 1;
            sums.amount += l.amount;
            sums.cost += cost;
        }
        groups
    }
}

fn invoice_line(group: InvoiceGroup, sums: LineSums) -> InvoiceLine {
    let (market, category, unit, pricing_type, band, rate) = group;
    InvoiceLine {
        market,
        category,
        unit: unit.to_string(),
        pricing_type,
        band,
        rate: rate.map(|r| r.normalize().to_string()),
        quantity: sums.quantity,
        amount: sums.amount.normalize().to_string(),
        meta_cost: sums.cost.normalize().to_string(),
        margin: (sums.amount - sums.cost).normalize().to_string(),
    }
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
    // The rules alone, compared with Meta: under `follow` the bill would agree by construction.
    let by_rules = setup.clone().with_meta_policy(MetaPolicy::Verify);
    let (bill, unusable_events) = rate(&by_rules, Prices::Meta, lines);
    let month = first.month();
    let mut comparison = Comparison {
        conversations: meta_conversations(lines),
        ..Comparison::default()
    };
    for v in month_lines(&bill, business, month) {
        comparison.line(&v);
    }
    let mut mismatches = comparison.mismatches;
    mismatches.extend(conversation_partition(&comparison.by_tarifa));
    if !charges.is_empty() {
        let (resale, _) = rate(setup, Prices::Resale, lines);
        mismatches.extend(wallet_mismatches(&resale, business, month, charges));
    }
    let mut by_kind = BTreeMap::new();
    for m in &mismatches {
        *by_kind.entry(m.kind).or_default() += 1;
    }
    let (y, m, _) = first.ymd_parts();
    Reconciliation {
        business: business.to_string(),
        month: format!("{y:04}-{m:02}"),
        messages_compared: comparison.compared,
        without_meta_pricing: comparison.without,
        mismatches_by_kind: by_kind,
        mismatches,
        unusable_events,
    }
}

/// What Meta's statuses said about each message's conversation (lines that do not parse are
/// reported by [`rate`] already).
fn meta_conversations(lines: &[String]) -> HashMap<String, MetaConversation> {
    let mut conversations: HashMap<String, MetaConversation> = HashMap::new();
    for line in lines {
        let _unusable_reported_by_rate = parse_line(line.as_bytes(), &mut |e| {
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
    conversations
}

/// The comparison of a month's lines with what Meta said of them.
#[derive(Default)]
struct Comparison {
    conversations: HashMap<String, MetaConversation>,
    mismatches: Vec<Mismatch>,
    compared: u64,
    without: u64,
    /// Conversation partition: tarifa conversation → (message, Meta conversation id).
    by_tarifa: HashMap<String, Vec<(String, String)>>,
}

impl Comparison {
    fn line(&mut self, v: &MessageView<'_>) {
        let l = v.line;
        if l.pricing_type == PricingType::NotDelivered {
            return;
        }
        self.compared += 1;
        let Some(meta) = v.meta else {
            self.without += 1;
            return;
        };
        let tarifa_billable = tarifa_billable(l);
        let meta_billable = meta_billable(&meta);
        if let Some(mb) = meta_billable.filter(|mb| *mb != tarifa_billable) {
            let tarifa = format!("{} ({})", tarifa_billable, l.pricing_type);
            self.push(v, "billable", tarifa, format!("{mb}"));
        }
        let expected = match l.pricing_type {
            PricingType::FreeCustomerService => Some(MetaPricingType::FreeCustomerService),
            PricingType::FreeEntryPoint => Some(MetaPricingType::FreeEntryPoint),
            _ => None,
        };
        if let (Some(mt), Some(e)) = (meta.pricing_type, expected) {
            if e != mt && meta_billable == Some(false) {
                self.push(
                    v,
                    "pricing_type",
                    l.pricing_type.to_string(),
                    format!("{mt:?}"),
                );
            }
        }
        if let Some(mc) = meta
            .category
            .filter(|mc| *mc != l.category && tarifa_billable)
        {
            self.push(
                v,
                "category",
                l.category.as_str().into(),
                mc.as_str().into(),
            );
        }
        if let Some(model) = meta.model.filter(|m| *m != l.model) {
            self.push(
                v,
                "pricing_model",
                l.model.as_str().into(),
                model.as_str().into(),
            );
        }
        if l.model == PricingModel::Cbp {
            self.conversation(v);
        }
    }

    /// A conversation-based line: Meta's conversation origin, and its conversation id for the
    /// partition check.
    fn conversation(&mut self, v: &MessageView<'_>) {
        let l = v.line;
        let mc = self.conversations.get(v.id).cloned().unwrap_or_default();
        if let (Some(_), Some(origin)) = (&v.conversation, mc.origin) {
            if origin != l.category && origin != BilledCategory::ReferralConversion {
                let (tarifa, meta) = (l.category.as_str().into(), origin.as_str().into());
                self.push(v, "conversation_origin", tarifa, meta);
            }
        }
        if let (Some(conv), Some(id)) = (&v.conversation, mc.id) {
            self.by_tarifa
                .entry(conv.clone())
                .or_default()
                .push((v.id.to_string(), id));
        }
    }

    fn push(&mut self, v: &MessageView<'_>, kind: &'static str, tarifa: String, meta: String) {
        self.mismatches.push(Mismatch {
            message: v.id.to_string(),
            kind,
            tarifa,
            meta,
        });
    }
}

/// Whether Meta bills what tarifa rated as `l` (conversation-based: the conversation's messages
/// count as billable, as Meta's webhooks mark them).
fn tarifa_billable(l: &Line) -> bool {
    match l.model {
        PricingModel::Cbp => matches!(
            l.pricing_type,
            PricingType::Regular
                | PricingType::Unrated
                | PricingType::FreeTier
                | PricingType::InOpenConversation
        ),
        _ => l.charged(),
    }
}

/// Whether Meta's webhook says the message is billable.
fn meta_billable(meta: &MetaPricing) -> Option<bool> {
    match meta.pricing_type {
        Some(MetaPricingType::Regular) => Some(true),
        Some(MetaPricingType::FreeCustomerService) | Some(MetaPricingType::FreeEntryPoint) => {
            Some(false)
        }
        _ => meta.billable,
    }
}

/// One tarifa conversation should be one Meta conversation, and the other way round.
fn conversation_partition(by_tarifa: &HashMap<String, Vec<(String, String)>>) -> Vec<Mismatch> {
    let mut meta_to_tarifa: HashMap<&str, &str> = HashMap::new();
    let mut partition = Vec::new();
    let mismatch = |message: &str, kind, conv: &str, id: &str| Mismatch {
        message: message.to_string(),
        kind,
        tarifa: conv.to_string(),
        meta: id.to_string(),
    };
    for (conv, members) in by_tarifa {
        let first_id = &members[0].1;
        for (message, id) in members {
            if id != first_id {
                partition.push(mismatch(message, "conversation_split", conv, id));
            }
            match meta_to_tarifa.insert(id.as_str(), conv.as_str()) {
                Some(other) if other != conv => {
                    partition.push(mismatch(message, "conversation_merged", conv, id))
                }
                _ => {}
            }
        }
    }
    partition.sort_by(|a, b| (&a.message, a.kind).cmp(&(&b.message, b.kind)));
    partition
}

/// The wallet's live charges against the invoice's re-rating.
fn wallet_mismatches(
    resale: &Bill,
    business: &str,
    month: Month,
    charges: &[Charge],
) -> Vec<Mismatch> {
    let invoiced: HashMap<&str, Decimal> = month_lines(resale, business, month)
        .into_iter()
        .map(|v| (v.id, v.line.amount))
        .collect();
    charges
        .iter()
        .filter_map(|c| {
            let inv = *invoiced.get(c.message.as_str())?;
            (inv != c.amount).then(|| Mismatch {
                message: c.message.clone(),
                kind: "wallet_charge",
                tarifa: inv.normalize().to_string(),
                meta: format!("wallet charged {}", c.amount.normalize()),
            })
        })
        .collect()
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

    /// Problem 5: no `YYYY-MM` text panics (9999-12 did, in the calendar); every month read is
    /// in 2000-2099 and its bounds are instants in order.
    #[test]
    fn no_month_text_panics_and_only_2000_to_2099_is_read() {
        let calendar = tarifa_core::time::Calendar::new("Pacific/Kiritimati").unwrap();
        for y in (0..=9999).step_by(7).chain([1999, 2000, 2099, 2100, 9999]) {
            for m in 0..=13 {
                let text = format!("{y:04}-{m:02}");
                match parse_month(&text) {
                    None => assert!(!(2000..=2099).contains(&y) || !(1..=12).contains(&m)),
                    Some(first) => {
                        assert!((2000..=2099).contains(&y), "{text}");
                        let start = calendar.start_of(first);
                        let end = calendar.start_of(next_month(first));
                        assert!(start < end, "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn minor_units_follow_iso_4217() {
        assert_eq!(minor_units("USD"), 2);
        assert_eq!(minor_units("JPY"), 0);
        assert_eq!(minor_units("KWD"), 3);
    }
}
