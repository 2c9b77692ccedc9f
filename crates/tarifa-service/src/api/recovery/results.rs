//! What recovery did: the recoveries with their states and reasons, the results report for a
//! period of the store's local dates, and a scheduler pass on demand.

use super::{bad_request, calendar_of, Answer, ApiError};
use crate::runtime::recovery::report;
use crate::runtime::App;
use axum::extract::{Path, Query, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use std::collections::HashMap;
use std::sync::Arc;
use tarifa_core::time::{Calendar, LocalDate, DAY};

/// `[from, to)` as instants, and the local dates as written.
type Period = ((i64, i64), (String, String));

/// `from`/`to` local dates (inclusive) in the store's time zone; default: this month so far.
fn period(calendar: &Calendar, q: &HashMap<String, String>) -> Result<Period, ApiError> {
    let today = calendar.date(crate::clock::now());
    let parse = |name: &str, default: LocalDate| -> Result<LocalDate, ApiError> {
        match q.get(name) {
            None => Ok(default),
            Some(t) => LocalDate::parse(t).ok_or_else(|| {
                bad_request("invalid_period", format!("{name}: {t:?} is not YYYY-MM-DD"))
            }),
        }
    };
    let (y, m, _) = today.ymd_parts();
    let first = LocalDate::ymd(y, m, 1);
    let from = parse("from", first)?;
    let to = parse("to", today)?;
    if to.0 < from.0 {
        return Err(bad_request("invalid_period", "to is before from"));
    }
    let start = calendar.start_of(from);
    let end = calendar.start_of(LocalDate(to.0 + 1));
    Ok((
        (start, end.max(start + DAY / 24)),
        (format!("{from}"), format!("{to}")),
    ))
}

pub(super) async fn get_recoveries(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let (calendar, _) = calendar_of(&app, &business)?;
    let ((from, to), _) = period(&calendar, &q)?;
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(500i64)
        .clamp(1, 10_000);
    let state = q.get("state").map(String::as_str);
    let mut rows = app
        .recovery
        .store
        .list(&business, from, to, state, limit)
        .await?;
    if let Some(user) = q.get("user") {
        let user = tarifa_core::input::phone_number(user.into());
        rows.retain(|r| r.user == user);
    }
    Ok(Json(json!({"business": business, "recoveries": rows})).into_response())
}

pub(super) async fn get_report(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Answer {
    let (calendar, currency) = calendar_of(&app, &business)?;
    let (range, texts) = period(&calendar, &q)?;
    let hours = app.recovery.attribution_hours(&business).await?;
    let store = &app.recovery.store;
    let report = report::build(store, &business, &currency, range, texts, hours).await?;
    Ok(Json(report).into_response())
}

/// Runs one scheduler pass now (what the timer does every `check_interval_minutes`).
pub(super) async fn post_run(State(app): State<Arc<App>>) -> Answer {
    let pass = app.recovery.tick(&app, crate::clock::now()).await?;
    Ok(Json(pass).into_response())
}
