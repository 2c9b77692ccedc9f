//! From parsed events to new events to store: each gets an idempotency key ([`EventKey`]) and a
//! self-contained normalized line (so a webhook body carrying ten statuses becomes ten events,
//! each of which `tarifa rate` can read back).

use super::effects::{EventKind, NewEvent};
use super::ids::EventKey;
use std::sync::Arc;
use tarifa_core::input::{to_json_line, Event};
use tarifa_core::time::Instant;

/// The new event of one parsed event, or `None` for events that carry nothing to keep
/// (`Ignored`).
pub fn new_event(event: Event<'_>, received_at: Instant) -> Option<NewEvent> {
    let line = to_json_line(&event)?;
    let (key, business, kind, message, at) = match &event {
        Event::Inbound(e) => (
            EventKey::inbound(&e.id),
            e.business.to_string(),
            EventKind::Inbound,
            String::new(),
            e.at,
        ),
        Event::Outbound(e) => (
            EventKey::outbound(&e.id),
            e.business.to_string(),
            EventKind::Outbound,
            e.id.to_string(),
            e.at,
        ),
        Event::Status(s) => (
            EventKey::status(&s.id, s.status, s.recipient.as_deref().unwrap_or("")),
            s.business.as_deref().unwrap_or("").to_string(),
            EventKind::Status,
            s.id.to_string(),
            s.at,
        ),
        Event::TemplateCategory(e) => (
            EventKey::template_category(&e.business, &e.template, e.at, e.category.as_str()),
            e.business.to_string(),
            EventKind::TemplateCategory,
            String::new(),
            e.at,
        ),
        Event::AccountUpdate(e) => (
            EventKey::account_update(&e.business, e.at, &line),
            e.business.to_string(),
            EventKind::AccountUpdate,
            String::new(),
            e.at,
        ),
        Event::Ignored => return None,
    };
    Some(NewEvent {
        key,
        business,
        kind,
        message,
        at,
        received_at,
        line,
        event: Arc::new(event.into_owned()),
    })
}
