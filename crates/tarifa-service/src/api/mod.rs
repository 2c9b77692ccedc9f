//! The HTTP edge: Meta's webhook endpoint, the `/v1` API, and operations endpoints.
//!
//! Error policy: a client mistake is a 4xx with `{"error": {"code", "message"}}` naming what is
//! wrong (field, event index, event id); a storage failure is a 503 (nothing was acknowledged,
//! so the client or Meta retries). Handlers never panic on input.

pub mod recovery;
pub mod server;
pub mod signature;

use crate::domain::book::{Outcome, Planned};
use crate::domain::ingest::new_event;
use crate::runtime::writer::{Command, TopUpAnswer};
use crate::runtime::App;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use tarifa_core::input::parse_line;
use tarifa_core::time::DAY;
use tokio::sync::oneshot;

/// The OpenAPI document of the HTTP API.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router(app: Arc<App>) -> Router {
    let v1 = Router::new()
        .route("/v1/events", post(post_events))
        .route("/v1/quote", post(post_quote))
        .route("/v1/wallets/{business}", get(get_wallet))
        .route("/v1/wallets/{business}/topups", post(post_topup))
        .route("/v1/wallets/{business}/transactions", get(get_transactions))
        .route("/v1/invoices/{business}/{month}", get(get_invoice))
        .route(
            "/v1/reconciliation/{business}/{month}",
            get(get_reconciliation),
        )
        .merge(recovery::routes())
        .route_layer(middleware::from_fn_with_state(app.clone(), bearer_auth));
    Router::new()
        .route(
            "/webhooks/meta",
            get(verify_subscription).post(post_webhook),
        )
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .merge(v1)
        .layer(DefaultBodyLimit::max(app.config.body_limit_bytes))
        .with_state(app)
}

/// An API error.
pub struct ApiError(pub StatusCode, pub &'static str, pub String);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.0,
            Json(json!({"error": {"code": self.1, "message": self.2}})),
        )
            .into_response()
    }
}

pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError(StatusCode::BAD_REQUEST, code, message.into())
}

pub(crate) fn unavailable(message: String) -> ApiError {
    tracing::error!(error = %message, "request failed on storage");
    ApiError(
        StatusCode::SERVICE_UNAVAILABLE,
        "storage_unavailable",
        "the event store is unavailable; nothing was stored, retry later".into(),
    )
}

async fn bearer_auth(State(app): State<Arc<App>>, request: Request, next: Next) -> Response {
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    let ok = given.is_some_and(|g| {
        app.config
            .api_tokens
            .iter()
            .any(|t| constant_time_eq(t.as_bytes(), g.as_bytes()))
    });
    if ok {
        next.run(request).await
    } else {
        ApiError(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or unknown bearer token (Authorization: Bearer <token>)".into(),
        )
        .into_response()
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn send<T>(
    app: &App,
    command: Command,
    rx: oneshot::Receiver<Result<T, String>>,
) -> Result<T, ApiError> {
    app.writer
        .send(command)
        .await
        .map_err(|_| unavailable("the writer has stopped".into()))?;
    rx.await
        .map_err(|_| unavailable("the writer has stopped".into()))?
        .map_err(unavailable)
}

// ---------------------------------------------------------------------------------------------
// Meta webhooks
// ---------------------------------------------------------------------------------------------

async fn verify_subscription(
    State(app): State<Arc<App>>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let mode = q.get("hub.mode").map(String::as_str);
    let token = q.get("hub.verify_token").map(String::as_str);
    match (mode, token, q.get("hub.challenge")) {
        (Some("subscribe"), Some(t), Some(challenge))
            if constant_time_eq(t.as_bytes(), app.config.verify_token.as_bytes()) =>
        {
            (StatusCode::OK, challenge.clone()).into_response()
        }
        _ => ApiError(
            StatusCode::FORBIDDEN,
            "verification_failed",
            "hub.mode must be subscribe and hub.verify_token must match".into(),
        )
        .into_response(),
    }
}

async fn post_webhook(State(app): State<Arc<App>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let signature = headers
        .get("x-hub-signature-256")
        .and_then(|v| v.to_str().ok());
    if !crate::api::signature::verify(app.config.app_secret.as_bytes(), &body, signature) {
        app.metrics.webhooks_bad_signature.fetch_add(1, Relaxed);
        return ApiError(
            StatusCode::UNAUTHORIZED,
            "bad_signature",
            "X-Hub-Signature-256 is missing or does not match the body".into(),
        )
        .into_response();
    }
    let now = crate::clock::now();
    let mut rows = Vec::new();
    let parsed = parse_line(&body, &mut |e| rows.extend(new_event(e, now)));
    let result = match parsed {
        Ok(()) if rows.is_empty() => Ok(()),
        Ok(()) => {
            let (reply, rx) = oneshot::channel();
            send(&app, Command::Ingest { rows, reply }, rx)
                .await
                .map(|outcomes| {
                    count_outcomes(&app, &outcomes);
                })
        }
        Err(e) => {
            // Signed by Meta but unreadable: acknowledging it stops Meta's retries, so keep it.
            app.metrics.webhooks_dead_lettered.fetch_add(1, Relaxed);
            tracing::warn!(reason = %e, "webhook body kept as a dead letter");
            let (reply, rx) = oneshot::channel();
            send(
                &app,
                Command::DeadLetter {
                    source: "meta_webhook".into(),
                    reason: e.to_string(),
                    body: String::from_utf8_lossy(&body).into_owned(),
                    reply,
                },
                rx,
            )
            .await
        }
    };
    match result {
        Ok(()) => {
            app.metrics.webhooks_accepted.fetch_add(1, Relaxed);
            app.metrics.webhook_ack_seconds.observe(started.elapsed());
            StatusCode::OK.into_response()
        }
        Err(e) => e.into_response(),
    }
}

fn count_outcomes(app: &App, outcomes: &[Outcome]) {
    for o in outcomes {
        let c = match o {
            Outcome::Stored => &app.metrics.events_stored,
            Outcome::Duplicate => &app.metrics.events_duplicate,
            Outcome::Rejected { .. } => &app.metrics.events_rejected,
        };
        c.fetch_add(1, Relaxed);
    }
}

// ---------------------------------------------------------------------------------------------
// /v1/events
// ---------------------------------------------------------------------------------------------

async fn post_events(State(app): State<Arc<App>>, body: Bytes) -> Response {
    match events(&app, &body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn events(app: &App, body: &[u8]) -> Result<Response, ApiError> {
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| bad_request("invalid_json", format!("the body is not JSON: {e}")))?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut o) => match o.remove("events") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(bad_request(
                    "invalid_body",
                    "expected a JSON array of events or {\"events\": [...]}",
                ))
            }
        },
        _ => {
            return Err(bad_request(
                "invalid_body",
                "expected a JSON array of events or {\"events\": [...]}",
            ))
        }
    };
    if items.len() > app.config.max_batch_events {
        return Err(bad_request(
            "batch_too_large",
            format!(
                "{} events; at most {} per request",
                items.len(),
                app.config.max_batch_events
            ),
        ));
    }
    let now = crate::clock::now();
    // Per item: its rows (a webhook object may hold several events), or why it was rejected.
    let (per_item, rows) = rows_of_items(app, &items, now);
    let outcomes = if rows.is_empty() {
        Vec::new()
    } else {
        let (reply, rx) = oneshot::channel();
        send(app, Command::Ingest { rows, reply }, rx).await?
    };
    Ok(answer(app, &items, per_item, &outcomes))
}

type ItemRows = Vec<Result<Vec<usize>, Outcome>>;

/// Parses and checks each item of a batch: its rows, or why it is rejected.
fn rows_of_items(
    app: &App,
    items: &[Value],
    now: i64,
) -> (ItemRows, Vec<crate::storage::NewEvent>) {
    let mut per_item: ItemRows = Vec::with_capacity(items.len());
    let mut rows = Vec::new();
    let book = app.book.read().unwrap_or_else(|p| p.into_inner());
    for item in items {
        let text = item.to_string();
        let mut mine = Vec::new();
        let mut events = Vec::new();
        let parsed = parse_line(text.as_bytes(), &mut |e| events.push(e));
        let checked = parsed.and_then(|()| {
            for e in events.drain(..) {
                if let Some(row) = new_event(e, now) {
                    if !row.business.is_empty() && !book.knows_business(&row.business) {
                        return Err(tarifa_core::input::InputError {
                            event_id: (!row.message.is_empty()).then(|| row.message.clone()),
                            message: format!(
                                "business {:?} is not in the config (add a [[business]] with id = {:?})",
                                row.business, row.business
                            ),
                        });
                    }
                    mine.push(row);
                }
            }
            Ok(())
        });
        match checked {
            Ok(()) => {
                let start = rows.len();
                rows.extend(mine);
                per_item.push(Ok((start..rows.len()).collect()));
            }
            Err(e) => per_item.push(Err(Outcome::Rejected {
                code: "invalid_event".into(),
                message: e.to_string(),
            })),
        }
    }
    (per_item, rows)
}

/// The batch's answer: per item what happened, and the status of the whole.
fn answer(app: &App, items: &[Value], per_item: ItemRows, outcomes: &[Outcome]) -> Response {
    count_outcomes(app, outcomes);
    let mut results = Vec::with_capacity(items.len());
    let (mut stored, mut duplicate, mut rejected, mut funds) = (0, 0, 0, 0);
    for (index, item) in per_item.into_iter().enumerate() {
        // The item's id as sent, but never a long one whole (the limit is the core's).
        let id = match items[index].get("id") {
            Some(Value::String(s)) if s.len() > tarifa_core::input::MAX_FIELD_LEN => {
                let cut = s.char_indices().nth(64).map_or(s.len(), |(i, _)| i);
                json!(format!("{}…", &s[..cut]))
            }
            Some(v) => v.clone(),
            None => Value::Null,
        };
        let outcome = match item {
            Err(o) => o,
            Ok(indices) if indices.is_empty() => Outcome::Stored,
            // A webhook object with several events: the first refusal, else stored if any was.
            Ok(indices) => {
                let mine: Vec<&Outcome> = indices.iter().map(|&i| &outcomes[i]).collect();
                mine.iter()
                    .find(|o| matches!(o, Outcome::Rejected { .. }))
                    .or_else(|| mine.iter().find(|o| **o == &Outcome::Stored))
                    .map_or(Outcome::Duplicate, |o| (*o).clone())
            }
        };
        match &outcome {
            Outcome::Stored => stored += 1,
            Outcome::Duplicate => duplicate += 1,
            Outcome::Rejected { code, .. } => {
                rejected += 1;
                funds += matches!(
                    code.as_str(),
                    "insufficient_funds" | "min_balance_for_free_service"
                ) as usize;
            }
        }
        let mut r = serde_json::to_value(&outcome).unwrap_or(Value::Null);
        r["index"] = json!(index);
        r["id"] = id;
        results.push(r);
    }
    // 200 when nothing was refused; 402 when every event was refused for money; 422 when every
    // event was refused; 207 for a mix (each result says what happened to its event).
    let status = if rejected == 0 {
        StatusCode::OK
    } else if stored + duplicate == 0 && funds == rejected {
        StatusCode::PAYMENT_REQUIRED
    } else if stored + duplicate == 0 {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::MULTI_STATUS
    };
    (
        status,
        Json(json!({
            "stored": stored, "duplicate": duplicate, "rejected": rejected, "results": results,
        })),
    )
        .into_response()
}

// ---------------------------------------------------------------------------------------------
// /v1/quote
// ---------------------------------------------------------------------------------------------

async fn post_quote(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let started = std::time::Instant::now();
    let planned: Planned = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return bad_request("invalid_quote", format!("{e}")).into_response(),
    };
    let at = match &planned.at {
        None => crate::clock::now(),
        Some(v) => match crate::runtime::recovery::instant_of(v) {
            Some(at) => at,
            None => {
                return bad_request(
                    "invalid_quote",
                    "at: expected Unix seconds or an RFC 3339 time in the years 2000-2099",
                )
                .into_response()
            }
        },
    };
    let answer = app
        .book
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .quote(&planned, at);
    app.metrics.quotes.fetch_add(1, Relaxed);
    app.metrics.quote_seconds.observe(started.elapsed());
    match answer {
        Ok(q) => Json(q).into_response(),
        Err(e) => bad_request("invalid_quote", e.to_string()).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Wallets
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TopUp {
    /// Idempotency key of the top-up (a payment id).
    id: String,
    /// Decimal text or number, in the wallet's currency: digits, an optional `.` and decimals;
    /// no sign, no exponent.
    amount: Value,
}

/// `12.50` or `"12.50"`, nothing else (`+5`, `1e3`, `-2` are refused).
fn plain_decimal(v: &Value) -> Option<rust_decimal::Decimal> {
    let text = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (whole, fraction) = text.split_once('.').unwrap_or((&text, "0"));
    let digits = |s: &str| !s.is_empty() && s.len() <= 20 && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(whole) || !digits(fraction) {
        return None;
    }
    text.parse().ok()
}

async fn post_topup(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    body: Bytes,
) -> Response {
    let t: TopUp = match serde_json::from_slice(&body) {
        Ok(t) => t,
        Err(e) => return bad_request("invalid_topup", format!("{e}")).into_response(),
    };
    let Some(amount) = plain_decimal(&t.amount) else {
        return bad_request(
            "invalid_topup",
            "amount: a decimal like \"12.50\" (digits, an optional point; no sign or exponent)",
        )
        .into_response();
    };
    if t.id.is_empty() || t.id.len() > 128 {
        return bad_request("invalid_topup", "id: 1 to 128 characters").into_response();
    }
    let (reply, rx) = oneshot::channel::<Result<TopUpAnswer, String>>();
    let command = Command::TopUp {
        business: business.clone(),
        id: t.id,
        amount,
        reply,
    };
    if app.writer.send(command).await.is_err() {
        return unavailable("the writer has stopped".into()).into_response();
    }
    match rx.await {
        Ok(Ok(answer)) => {
            let code = if answer.status == "created" {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            (code, Json(json!({"status": answer.status, "transfer": answer.transfer, "wallet": wallet_json(&app, &business)}))).into_response()
        }
        Ok(Err(e)) if e.starts_with("storage") => unavailable(e).into_response(),
        Ok(Err(e)) => {
            ApiError(StatusCode::UNPROCESSABLE_ENTITY, "topup_refused", e).into_response()
        }
        Err(_) => unavailable("the writer has stopped".into()).into_response(),
    }
}

fn wallet_json(app: &App, business: &str) -> Option<Value> {
    let book = app.book.read().unwrap_or_else(|p| p.into_inner());
    let rules = book.wallet_rules(business)?;
    let id = crate::domain::ids::wallet_account(business).0;
    let balance = book.ledger.balance(&id).ok()?;
    let holds: Vec<Value> = book
        .ledger
        .pending_holds(&id)
        .unwrap_or_default()
        .into_iter()
        .map(|t| {
            json!({
                "transfer": t.id.0,
                "amount": crate::domain::book::amount_text(t.amount),
                "expires_at": match t.kind { tarifa_core::ledger::TransferKind::Pending { timeout } => timeout, _ => 0 },
            })
        })
        .collect();
    Some(json!({
        "business": business,
        "currency": rules.currency,
        "prepaid": rules.prepaid,
        "posted": crate::domain::book::amount_text(balance.posted),
        "pending": crate::domain::book::amount_text(balance.pending),
        "available": crate::domain::book::amount_text(balance.available),
        "floor": crate::domain::book::amount_text(rules.policy.floor),
        "low_balance_threshold": rules.policy.low_balance_threshold.map(crate::domain::book::amount_text),
        "holds": holds,
    }))
}

async fn get_wallet(State(app): State<Arc<App>>, Path(business): Path<String>) -> Response {
    match wallet_json(&app, &business) {
        Some(w) => Json(w).into_response(),
        None => ApiError(
            StatusCode::NOT_FOUND,
            "unknown_wallet",
            format!("business {business:?} has no wallet"),
        )
        .into_response(),
    }
}

async fn get_transactions(State(app): State<Arc<App>>, Path(business): Path<String>) -> Response {
    let book = app.book.read().unwrap_or_else(|p| p.into_inner());
    let id = crate::domain::ids::wallet_account(&business).0;
    let Ok(history) = book.ledger.history(&id) else {
        return ApiError(
            StatusCode::NOT_FOUND,
            "unknown_wallet",
            format!("business {business:?} has no wallet"),
        )
        .into_response();
    };
    let items: Vec<Value> = history
        .map(|t| {
            let direction = if t.credit_account.0 == id {
                "credit"
            } else {
                "debit"
            };
            json!({
                "transfer": t.id.0,
                "at": book.applied_at(&t.id.0),
                "kind": serde_json::to_value(&t.kind).unwrap_or(Value::Null),
                "direction": direction,
                "amount": crate::domain::book::amount_text(t.amount),
                "debit_account": t.debit_account.0,
                "credit_account": t.credit_account.0,
            })
        })
        .collect();
    Json(json!({"business": business, "transactions": items})).into_response()
}

// ---------------------------------------------------------------------------------------------
// Invoices and reconciliation
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct Format {
    format: Option<String>,
}

/// The stored events a month's rating needs, and the month's first day.
async fn month_events(
    app: &App,
    business: &str,
    month: &str,
) -> Result<(tarifa_core::time::LocalDate, Vec<String>, i64, i64), ApiError> {
    let first = crate::domain::report::parse_month(month)
        .ok_or_else(|| bad_request("invalid_month", format!("{month:?} is not YYYY-MM")))?;
    let calendar = {
        let book = app.book.read().unwrap_or_else(|p| p.into_inner());
        book.setup()
            .businesses
            .iter()
            .find(|b| b.id == business)
            .map(|b| b.calendar.clone())
    }
    .ok_or_else(|| {
        ApiError(
            StatusCode::NOT_FOUND,
            "unknown_business",
            format!("business {business:?} is not in the config"),
        )
    })?;
    let start = calendar.start_of(first);
    let end = calendar.start_of(crate::domain::report::next_month(first));
    // Late deliveries (up to the hold lifetime) and windows opened before the month.
    let from = start - (app.config.hold_days + app.config.history_days) * DAY;
    let lines = app
        .store
        .business_events(business, from, end)
        .await
        .map_err(|e| unavailable(format!("{e:#}")))?;
    Ok((first, lines, start, end))
}

async fn get_invoice(
    State(app): State<Arc<App>>,
    Path((business, month)): Path<(String, String)>,
    Query(f): Query<Format>,
) -> Response {
    let (first, lines, _, _) = match month_events(&app, &business, &month).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let setup = app
        .book
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .setup()
        .clone();
    let Some(inv) = tokio::task::spawn_blocking(move || {
        crate::domain::report::invoice(&setup, &business, first, &lines)
    })
    .await
    .ok()
    .flatten() else {
        return ApiError(
            StatusCode::NOT_FOUND,
            "unknown_business",
            "no such business".into(),
        )
        .into_response();
    };
    match f.format.as_deref() {
        Some("csv") => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            crate::domain::report::invoice_csv(&inv),
        )
            .into_response(),
        None | Some("json") => Json(inv).into_response(),
        Some(other) => {
            bad_request("invalid_format", format!("format {other:?}: json or csv")).into_response()
        }
    }
}

async fn get_reconciliation(
    State(app): State<Arc<App>>,
    Path((business, month)): Path<(String, String)>,
) -> Response {
    let (first, lines, start, end) = match month_events(&app, &business, &month).await {
        Ok(x) => x,
        Err(e) => return e.into_response(),
    };
    let charges = match app.store.business_charges(&business, start, end).await {
        Ok(c) => c,
        Err(e) => return unavailable(format!("{e:#}")).into_response(),
    };
    let setup = app
        .book
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .setup()
        .clone();
    match tokio::task::spawn_blocking(move || {
        crate::domain::report::reconcile(&setup, &business, first, &lines, &charges)
    })
    .await
    {
        Ok(r) => Json(r).into_response(),
        Err(_) => unavailable("reconciliation failed".into()).into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------

async fn healthz(State(app): State<Arc<App>>) -> Response {
    match app.store.ping().await {
        Ok(()) => Json(json!({"status": "ok"})).into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "database": format!("{e:#}")})),
        )
            .into_response(),
    }
}

async fn metrics(State(app): State<Arc<App>>) -> Response {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render() + &crate::runtime::metrics::render_store(&app.store),
    )
        .into_response()
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}
