//! The writer's part of a send: the reservation that holds a message's quoted cost, its
//! cancellation when the message does not leave, and the outbound event that replaces it.

use super::sender::Outgoing;
use super::{Recovery, RESERVATION_SECS};
use crate::domain::book::{Outcome, Planned, Quote};
use crate::domain::ingest::new_event;
use crate::runtime::writer::Command;
use crate::runtime::App;
use anyhow::{anyhow, Result};
use tarifa_core::input::parse_line;
use tarifa_core::time::Instant;
use tokio::sync::oneshot;

impl Recovery {
    /// Quotes `planned` and holds its cost under `reservation`.
    pub(super) async fn reserve(
        &self,
        app: &App,
        planned: &Planned,
        reservation: &str,
        at: Instant,
    ) -> Result<Quote> {
        ask(app, |reply| Command::Reserve {
            planned: planned.clone(),
            at,
            reservation: reservation.to_string(),
            timeout_secs: RESERVATION_SECS,
            reply,
        })
        .await
    }

    pub(super) async fn cancel(&self, app: &App, business: &str, reservation: &str) -> Result<()> {
        ask(app, |reply| Command::CancelReservation {
            business: business.to_string(),
            reservation: reservation.to_string(),
            reply,
        })
        .await
    }

    /// Records the sent message as the business's outbound event (its hold replaces the
    /// reservation; Meta's delivery webhook settles it).
    pub(super) async fn record(
        &self,
        app: &App,
        reservation: &str,
        m: &Outgoing,
        planned: &Planned,
        message_id: &str,
        now: Instant,
    ) -> Result<()> {
        let row = outbound_event(m, planned, message_id, now)?;
        let outcome = ask(app, |reply| Command::RecordReserved {
            reservation: reservation.to_string(),
            row,
            reply,
        })
        .await?;
        if let Outcome::Rejected { code, message } = outcome {
            tracing::warn!(%message_id, %code, %message, "a sent recovery message could not be recorded in the wallet");
        }
        Ok(())
    }
}

/// The sent message as an outbound event, read the way an event line from the API is.
fn outbound_event(
    m: &Outgoing,
    planned: &Planned,
    message_id: &str,
    now: Instant,
) -> Result<crate::domain::effects::NewEvent> {
    let mut line = serde_json::json!({
        "type": "outbound", "id": message_id, "at": now, "business": planned.business,
        "phone": m.phone, "user": m.to,
    });
    if let Some(t) = &planned.template {
        line["template"] = serde_json::json!({"name": t.name, "category": t.category});
    }
    let line = line.to_string();
    let mut events = Vec::new();
    parse_line(line.as_bytes(), &mut |e| events.push(e)).map_err(|e| anyhow!("{e}"))?;
    events
        .into_iter()
        .next()
        .and_then(|e| new_event(e, crate::clock::now()))
        .ok_or_else(|| anyhow!("the sent message could not be recorded"))
}

/// Sends a command to the writer and waits for its answer (given after the commit).
async fn ask<T>(
    app: &App,
    command: impl FnOnce(oneshot::Sender<Result<T, String>>) -> Command,
) -> Result<T> {
    let (reply, answer) = oneshot::channel();
    app.writer
        .send(command(reply))
        .await
        .map_err(|_| anyhow!("the writer stopped"))?;
    answer
        .await
        .map_err(|_| anyhow!("the writer stopped"))?
        .map_err(|e| anyhow!(e))
}
