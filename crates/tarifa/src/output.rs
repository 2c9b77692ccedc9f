//! Printing a bill: a human table, one JSON document, or CSV.

use clap::ValueEnum;
use rust_decimal::Decimal;
use serde::Serialize;
use std::io::{self, Write};
use tarifa_core::bill::{Bill, ConversationView, MessageView};
use tarifa_core::time::{format_instant, Instant, Rfc3339};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Csv,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Table {
    Messages,
    Conversations,
    Totals,
    Breakdown,
}

/// An input line that could not be used.
pub struct Invalid {
    pub file: String,
    pub line: u64,
    pub message: String,
}

pub struct Report<'a> {
    pub bill: &'a Bill,
    pub invalid: &'a [Invalid],
    pub invalid_count: u64,
    pub summary: bool,
}

fn amount(d: Decimal) -> String {
    d.normalize().to_string()
}

/// A decimal written as a JSON string without trailing zeros, without allocating.
struct Exact(Decimal);

impl Serialize for Exact {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0.normalize())
    }
}

#[derive(Serialize)]
struct MetaJson {
    #[serde(skip_serializing_if = "Option::is_none")]
    billable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pricing_model: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<&'static str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pricing_type: Option<tarifa_core::category::MetaPricingType>,
}

#[derive(Serialize)]
struct MessageJson<'a> {
    id: &'a str,
    business: &'a str,
    phone: &'a str,
    user: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<&'a str>,
    market: Option<&'static str>,
    country: Option<&'a str>,
    sent_at: Rfc3339,
    delivered_at: Option<Rfc3339>,
    charged: bool,
    amount: Exact,
    currency: &'a str,
    category: &'static str,
    pricing_type: &'static str,
    pricing_model: &'static str,
    rule: &'static str,
    rate: Option<Exact>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tier_band: Option<u8>,
    conversation: Option<String>,
    why: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    meta: Option<MetaJson>,
    /// How Meta's pricing compared with the rules: agrees, differs, followed.
    #[serde(skip_serializing_if = "str::is_empty")]
    meta_check: &'static str,
}

fn message_json<'a>(bill: &'a Bill, v: &'a MessageView<'a>) -> MessageJson<'a> {
    let l = v.line;
    MessageJson {
        id: v.id,
        business: v.business,
        phone: v.phone,
        user: v.user,
        group: v.group,
        market: l.market.map(|m| m.name()),
        country: l.country.as_ref().map(|c| c.as_str()),
        sent_at: Rfc3339(v.sent_at),
        delivered_at: v.delivered_at.map(Rfc3339),
        charged: l.charged(),
        amount: Exact(l.amount),
        currency: v.currency,
        category: l.category.as_str(),
        pricing_type: l.pricing_type.as_str(),
        pricing_model: l.model.as_str(),
        rule: l.rule,
        rate: l.rate.map(Exact),
        tier_band: (l.band > 0).then_some(l.band),
        conversation: v.conversation.clone(),
        why: bill.explain(l),
        meta: v.meta.map(|m| MetaJson {
            billable: m.billable,
            pricing_model: m.model.map(|x| x.as_str()),
            category: m.category.map(|c| c.as_str()),
            pricing_type: m.pricing_type,
        }),
        meta_check: l.meta_check.as_str(),
    }
}

#[derive(Serialize)]
struct ConversationJson<'a> {
    id: String,
    business: &'a str,
    phone: &'a str,
    user: &'a str,
    category: &'static str,
    pricing_model: &'static str,
    opened_by: &'a str,
    opened_at: String,
    expires_at: String,
    charged: bool,
    amount: String,
}

fn conversation_json<'a>(c: &'a ConversationView<'a>) -> ConversationJson<'a> {
    ConversationJson {
        id: c.id.clone(),
        business: c.business,
        phone: c.phone,
        user: c.user,
        category: c.category.as_str(),
        pricing_model: c.model.as_str(),
        opened_by: c.opened_by,
        opened_at: format_instant(c.opened_at),
        expires_at: format_instant(c.expires_at),
        charged: c.charged,
        amount: amount(c.amount),
    }
}

#[derive(Serialize)]
struct InvalidJson<'a> {
    file: &'a str,
    line: u64,
    message: &'a str,
}

fn country_text(v: &MessageView<'_>) -> String {
    v.line
        .country
        .map(|c| c.as_str().to_string())
        .unwrap_or_default()
}

/// One JSON document: `messages`, `conversations`, `totals`, `breakdown`, `input`.
pub fn json(r: &Report<'_>, out: &mut impl Write) -> io::Result<()> {
    let bill = r.bill;
    out.write_all(b"{\"messages\":[")?;
    if !r.summary {
        json_items(out, bill.messages(), |out, v| {
            serde_json::to_writer(out, &message_json(bill, v))
        })?;
    }
    out.write_all(b"\n],\"conversations\":[")?;
    if !r.summary {
        json_items(out, bill.conversation_views(), |out, c| {
            serde_json::to_writer(out, &conversation_json(c))
        })?;
    }
    out.write_all(b"\n],\"totals\":")?;
    serde_json::to_writer_pretty(&mut *out, &bill.totals())?;
    out.write_all(b",\"breakdown\":")?;
    serde_json::to_writer_pretty(&mut *out, &bill.breakdown())?;
    out.write_all(b",\"input\":")?;
    let invalid: Vec<InvalidJson<'_>> = r
        .invalid
        .iter()
        .map(|i| InvalidJson {
            file: &i.file,
            line: i.line,
            message: &i.message,
        })
        .collect();
    let input = serde_json::json!({
        "stats": bill.stats,
        "invalid_lines": r.invalid_count,
        "invalid": invalid,
    });
    serde_json::to_writer_pretty(&mut *out, &input)?;
    out.write_all(b"}\n")
}

/// The items of a JSON array, one a line, each written by `write`.
fn json_items<W: Write, T>(
    out: &mut W,
    items: impl Iterator<Item = T>,
    write: impl Fn(&mut W, &T) -> serde_json::Result<()>,
) -> io::Result<()> {
    for (i, item) in items.enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(b"\n")?;
        write(&mut *out, &item)?;
    }
    Ok(())
}

fn csv_field(s: &str) -> std::borrow::Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\"")).into()
    } else {
        s.into()
    }
}

fn csv_row(out: &mut impl Write, fields: &[&str]) -> io::Result<()> {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(csv_field(f).as_bytes())?;
    }
    out.write_all(b"\n")
}

fn opt_time(t: Option<Instant>) -> String {
    t.map(format_instant).unwrap_or_default()
}

/// CSV of one table.
pub fn csv(r: &Report<'_>, table: Table, out: &mut impl Write) -> io::Result<()> {
    match table {
        Table::Messages => csv_messages(r.bill, out),
        Table::Conversations => csv_conversations(r.bill, out),
        Table::Totals => csv_totals(r.bill, out),
        Table::Breakdown => csv_breakdown(r.bill, out),
    }
}

fn bool_text(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

fn csv_messages(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    csv_row(
        out,
        &[
            "id",
            "business",
            "phone",
            "user",
            "group",
            "market",
            "country",
            "sent_at",
            "delivered_at",
            "charged",
            "amount",
            "currency",
            "category",
            "pricing_type",
            "pricing_model",
            "rule",
            "rate",
            "tier_band",
            "conversation",
            "why",
            "meta_check",
        ],
    )?;
    for v in bill.messages() {
        let l = v.line;
        csv_row(
            out,
            &[
                v.id,
                v.business,
                v.phone,
                v.user,
                v.group.unwrap_or(""),
                l.market.map_or("", |m| m.name()),
                &country_text(&v),
                &format_instant(v.sent_at),
                &opt_time(v.delivered_at),
                bool_text(l.charged()),
                &amount(l.amount),
                v.currency,
                l.category.as_str(),
                l.pricing_type.as_str(),
                l.model.as_str(),
                l.rule,
                &l.rate.map(amount).unwrap_or_default(),
                &if l.band > 0 {
                    l.band.to_string()
                } else {
                    String::new()
                },
                v.conversation.as_deref().unwrap_or(""),
                &bill.explain(l),
                l.meta_check.as_str(),
            ],
        )?;
    }
    Ok(())
}

fn csv_conversations(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    csv_row(
        out,
        &[
            "id",
            "business",
            "phone",
            "user",
            "category",
            "pricing_model",
            "opened_by",
            "opened_at",
            "expires_at",
            "charged",
            "amount",
        ],
    )?;
    for c in bill.conversation_views() {
        csv_row(
            out,
            &[
                &c.id,
                c.business,
                c.phone,
                c.user,
                c.category.as_str(),
                c.model.as_str(),
                c.opened_by,
                &format_instant(c.opened_at),
                &format_instant(c.expires_at),
                bool_text(c.charged),
                &amount(c.amount),
            ],
        )?;
    }
    Ok(())
}

fn csv_totals(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    csv_row(
        out,
        &[
            "business",
            "currency",
            "amount",
            "messages",
            "charged_messages",
            "unrated_messages",
            "conversations_opened",
            "meta_differs",
            "meta_followed",
        ],
    )?;
    for t in bill.totals() {
        csv_row(
            out,
            &[
                &t.business,
                &t.currency,
                &amount(t.amount),
                &t.messages.to_string(),
                &t.charged_messages.to_string(),
                &t.unrated_messages.to_string(),
                &t.conversations_opened.to_string(),
                &t.meta_differs.to_string(),
                &t.meta_followed.to_string(),
            ],
        )?;
    }
    Ok(())
}

fn csv_breakdown(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    csv_row(
        out,
        &[
            "business",
            "currency",
            "market",
            "category",
            "amount",
            "messages",
            "charged_messages",
            "unrated_messages",
        ],
    )?;
    for b in bill.breakdown() {
        csv_row(
            out,
            &[
                &b.business,
                &b.currency,
                &b.market,
                &b.category,
                &amount(b.amount),
                &b.messages.to_string(),
                &b.charged_messages.to_string(),
                &b.unrated_messages.to_string(),
            ],
        )?;
    }
    Ok(())
}

/// Column widths of a text table; a negative width aligns right.
struct Columns(&'static [i32]);

impl Columns {
    fn row(&self, out: &mut impl Write, cells: &[&str]) -> io::Result<()> {
        for (i, (cell, &w)) in cells.iter().zip(self.0).enumerate() {
            if i > 0 {
                out.write_all(b" ")?;
            }
            let width = w.unsigned_abs() as usize;
            if w < 0 {
                write!(out, "{cell:>width$}")?;
            } else {
                write!(out, "{cell:<width$}")?;
            }
        }
        // A last cell beyond the widths (the explanation) is written as is.
        for cell in cells.iter().skip(self.0.len()) {
            write!(out, "  {cell}")?;
        }
        out.write_all(b"\n")
    }
}

/// The human table: messages with the reason for each price, conversations, totals.
pub fn table(r: &Report<'_>, out: &mut impl Write) -> io::Result<()> {
    let bill = r.bill;
    if !r.summary {
        table_messages(bill, out)?;
        table_conversations(bill, out)?;
    }
    table_breakdown(bill, out)?;
    table_totals(bill, out)?;
    let s = &bill.stats;
    writeln!(
        out,
        "\ninput: {} events ({} inbound, {} outbound, {} statuses), {} duplicate, {} orphan statuses, {} invalid lines",
        s.events,
        s.inbound,
        s.outbound,
        s.statuses,
        s.duplicate_inbound + s.duplicate_outbound,
        s.orphan_statuses,
        r.invalid_count
    )?;
    Ok(())
}

fn table_messages(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    let cols = Columns(&[24, 10, 15, 22, 28, 22, -12, 4]);
    writeln!(out, "MESSAGES")?;
    cols.row(
        out,
        &[
            "id", "business", "user", "market", "category", "pricing", "amount", "cur", "why",
        ],
    )?;
    for v in bill.messages() {
        let l = v.line;
        cols.row(
            out,
            &[
                v.id,
                v.business,
                v.user,
                l.market.map_or("-", |m| m.name()),
                l.category.as_str(),
                l.pricing_type.as_str(),
                &amount(l.amount),
                v.currency,
                &bill.explain(l),
            ],
        )?;
    }
    writeln!(out)
}

fn table_conversations(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    let cols = Columns(&[30, 10, 15, 20, 5, 20, 20, -10]);
    writeln!(out, "CONVERSATIONS AND ENTRY-POINT WINDOWS")?;
    cols.row(
        out,
        &[
            "id", "business", "user", "category", "model", "opened", "expires", "amount",
        ],
    )?;
    for c in bill.conversation_views() {
        cols.row(
            out,
            &[
                &c.id,
                c.business,
                c.user,
                c.category.as_str(),
                c.model.as_str(),
                &format_instant(c.opened_at),
                &format_instant(c.expires_at),
                &amount(c.amount),
            ],
        )?;
    }
    writeln!(out)
}

fn table_breakdown(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    let cols = Columns(&[10, 4, 32, 28, -9, -8, -8, -14]);
    writeln!(out, "BY MARKET AND CATEGORY")?;
    cols.row(
        out,
        &[
            "business", "cur", "market", "category", "messages", "charged", "unrated", "amount",
        ],
    )?;
    for b in bill.breakdown() {
        cols.row(
            out,
            &[
                &b.business,
                &b.currency,
                &b.market,
                &b.category,
                &b.messages.to_string(),
                &b.charged_messages.to_string(),
                &b.unrated_messages.to_string(),
                &amount(b.amount),
            ],
        )?;
    }
    writeln!(out)
}

fn table_totals(bill: &Bill, out: &mut impl Write) -> io::Result<()> {
    let cols = Columns(&[10, 4, -9, -8, -8, -13, -14]);
    writeln!(out, "TOTALS")?;
    cols.row(
        out,
        &[
            "business",
            "cur",
            "messages",
            "charged",
            "unrated",
            "conversations",
            "amount",
        ],
    )?;
    for t in bill.totals() {
        cols.row(
            out,
            &[
                &t.business,
                &t.currency,
                &t.messages.to_string(),
                &t.charged_messages.to_string(),
                &t.unrated_messages.to_string(),
                &t.conversations_opened.to_string(),
                &amount(t.amount),
            ],
        )?;
    }
    Ok(())
}
