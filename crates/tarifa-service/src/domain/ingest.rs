//! From parsed events to stored rows: each event gets an idempotency key and a self-contained
//! normalized line (so a webhook body carrying ten statuses becomes ten rows, each of which
//! `tarifa rate` can read back).

use crate::domain::effects::EventRow;
use tarifa_core::input::{to_json_line, DeliveryStatus, Event};

/// The row of one event, or `None` for events that carry nothing to keep (`Ignored`).
pub fn row_of(event: Event<'_>, received_at: i64) -> Option<EventRow> {
    let line = to_json_line(&event)?;
    let (key, business, kind, message, at) = match &event {
        Event::Inbound(e) => (
            format!("in:{}", e.id),
            e.business.to_string(),
            "inbound",
            String::new(),
            e.at,
        ),
        Event::Outbound(e) => (
            format!("out:{}", e.id),
            e.business.to_string(),
            "outbound",
            e.id.to_string(),
            e.at,
        ),
        Event::Status(s) => {
            let status = match s.status {
                DeliveryStatus::Sent => "sent",
                DeliveryStatus::Delivered => "delivered",
                DeliveryStatus::Read => "read",
                DeliveryStatus::Failed => "failed",
            };
            (
                format!(
                    "st:{}:{status}:{}",
                    s.id,
                    s.recipient.as_deref().unwrap_or("")
                ),
                s.business.as_deref().unwrap_or("").to_string(),
                "status",
                s.id.to_string(),
                s.at,
            )
        }
        Event::TemplateCategory(e) => (
            format!(
                "tc:{}:{}:{}:{}",
                e.business,
                e.template,
                e.at,
                e.category.as_str()
            ),
            e.business.to_string(),
            "template_category",
            String::new(),
            e.at,
        ),
        Event::AccountUpdate(e) => (
            format!(
                "au:{}:{}:{:016x}",
                e.business,
                e.at,
                xxhash_rust::xxh3::xxh3_64(line.as_bytes())
            ),
            e.business.to_string(),
            "account_update",
            String::new(),
            e.at,
        ),
        Event::Ignored => return None,
    };
    Some(EventRow {
        key,
        business,
        kind,
        message,
        at,
        received_at,
        line,
        event: std::sync::Arc::new(event.into_owned()),
    })
}
