//! The recovery API (under `/v1`, bearer auth): per-store settings, coupons, carts, orders,
//! redemption, the recoveries and their reasons, the results report, and a "run now" pass.
//!
//! Handlers answer `Result<Response, Refusal>`, so that a bad request, an unknown store or a
//! storage failure ends a handler with `?` and the same error body everywhere.

mod commerce;
mod redeem;
mod results;
mod settings;

use super::{bad_request, unavailable, ApiError};
use crate::runtime::recovery::instant_of;
use crate::runtime::App;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tarifa_core::recovery::FieldError;
use tarifa_core::time::Calendar;

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/stores/{business}/recovery",
            get(settings::get_settings)
                .put(settings::put_settings)
                .delete(settings::delete_settings),
        )
        .route(
            "/v1/stores/{business}/recovery/report",
            get(results::get_report),
        )
        .route(
            "/v1/stores/{business}/recoveries",
            get(results::get_recoveries),
        )
        .route(
            "/v1/stores/{business}/coupons/{coupon}",
            put(settings::put_coupon).get(settings::get_coupon),
        )
        .route("/v1/carts", post(commerce::post_cart))
        .route("/v1/orders", post(commerce::post_order))
        .route("/v1/coupons/{code}/redeem", post(redeem::post_redeem))
        .route("/v1/recovery/run", post(results::post_run))
}

/// The error response a handler stopped at.
struct Refusal(Response);

/// What a handler answers.
type Answer = Result<Response, Refusal>;

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        self.0
    }
}

impl From<ApiError> for Refusal {
    fn from(e: ApiError) -> Self {
        Refusal(e.into_response())
    }
}

/// Storage failures answer 503 (and are logged).
impl From<anyhow::Error> for Refusal {
    fn from(e: anyhow::Error) -> Self {
        Refusal(unavailable(format!("{e:#}")).into_response())
    }
}

fn not_found(code: &'static str, message: String) -> ApiError {
    ApiError(StatusCode::NOT_FOUND, code, message)
}

fn invalid(code: &'static str, errors: Vec<FieldError>) -> Refusal {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    Refusal(
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({"error": {"code": code, "message": message, "fields": errors}})),
        )
            .into_response(),
    )
}

/// The store's calendar and wallet currency; 404 for a store not in the rating config.
fn calendar_of(app: &App, business: &str) -> Result<(Calendar, String), ApiError> {
    let book = app.book.read().unwrap_or_else(|p| p.into_inner());
    book.setup()
        .businesses
        .iter()
        .find(|b| b.id == business)
        .map(|b| (b.calendar.clone(), b.currency.clone()))
        .ok_or_else(|| {
            not_found(
                "unknown_business",
                format!("business {business:?} is not in the config"),
            )
        })
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8], code: &'static str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(code, e.to_string()))
}

/// A WhatsApp number: 6 to 15 digits, country code first, no `+`.
fn user_ok(user: &str) -> bool {
    (6..=15).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit())
}

/// An optional instant of a request body (default now).
fn when(v: Option<&Value>, field: &str, code: &'static str) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(crate::clock::now()),
        Some(v) => instant_of(v).ok_or_else(|| {
            bad_request(
                code,
                format!("{field}: {v} is not RFC 3339 or Unix seconds in the years 2000-2099"),
            )
        }),
    }
}
