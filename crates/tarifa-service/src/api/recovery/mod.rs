//! The recovery API (under `/v1`, bearer auth): per-store settings, coupons, carts, orders,
//! redemption, the recoveries and their reasons, the results report, and a "run now" pass.

use super::{bad_request, unavailable, ApiError};
use crate::runtime::recovery::{effective_rules, instant_of};
use crate::runtime::App;
use crate::storage::recovery::{CartRow, OrderRow};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::Arc;
use tarifa_core::recovery::{
    redeem, CouponChoice, CouponRules, FieldError, IssuedCode, RecoveryConfig,
};
use tarifa_core::time::{Calendar, LocalDate, DAY};

pub fn routes() -> Router<Arc<App>> {
    Router::new()
        .route(
            "/v1/stores/{business}/recovery",
            get(get_settings).put(put_settings).delete(delete_settings),
        )
        .route("/v1/stores/{business}/recovery/report", get(get_report))
        .route("/v1/stores/{business}/recoveries", get(get_recoveries))
        .route(
            "/v1/stores/{business}/coupons/{coupon}",
            put(put_coupon).get(get_coupon),
        )
        .route("/v1/carts", post(post_cart))
        .route("/v1/orders", post(post_order))
        .route("/v1/coupons/{code}/redeem", post(post_redeem))
        .route("/v1/recovery/run", post(post_run))
}

fn storage(e: anyhow::Error) -> Response {
    unavailable(format!("{e:#}")).into_response()
}

fn invalid(code: &'static str, errors: Vec<FieldError>) -> Response {
    let message = errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ");
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(json!({"error": {"code": code, "message": message, "fields": errors}})),
    )
        .into_response()
}

fn calendar_of(app: &App, business: &str) -> Result<(Calendar, String), ApiError> {
    let book = app.book.read().unwrap_or_else(|p| p.into_inner());
    book.setup()
        .businesses
        .iter()
        .find(|b| b.id == business)
        .map(|b| (b.calendar.clone(), b.currency.clone()))
        .ok_or_else(|| {
            ApiError(
                StatusCode::NOT_FOUND,
                "unknown_business",
                format!("business {business:?} is not in the config"),
            )
        })
}

fn parse_json<'a, T: Deserialize<'a>>(body: &'a [u8], code: &'static str) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| bad_request(code, e.to_string()))
}

// ---- settings ------------------------------------------------------------------------------

async fn get_settings(State(app): State<Arc<App>>, Path(business): Path<String>) -> Response {
    if let Err(r) = calendar_of(&app, &business) {
        return r.into_response();
    }
    match app.recovery.settings(&business).await {
        Ok(Some((config, source))) => Json(json!({"source": source, "settings": config})).into_response(),
        Ok(None) => ApiError(
            StatusCode::NOT_FOUND,
            "recovery_not_configured",
            format!("store {business:?} has no recovery settings (PUT them here or add [recovery.store.{business}] to the config)"),
        )
        .into_response(),
        Err(e) => storage(e),
    }
}

async fn put_settings(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = calendar_of(&app, &business) {
        return r.into_response();
    }
    let config: RecoveryConfig = match parse_json(&body, "invalid_settings") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let mut errors = config.validate();
    let coupon = match &config.coupon {
        CouponChoice::None => None,
        CouponChoice::Fixed { code } => Some(("coupon.code", code)),
        CouponChoice::Unique { prefix } => Some(("coupon.prefix", prefix)),
    };
    if let Some((field, id)) = coupon {
        match app.recovery.store.coupon(&business, id).await {
            Ok(Some(_)) => {}
            Ok(None) => errors.push(FieldError {
                field: field.into(),
                message: format!(
                    "no coupon {id:?}: create it first with PUT /v1/stores/{business}/coupons/{id}"
                ),
            }),
            Err(e) => return storage(e),
        }
    }
    if !errors.is_empty() {
        return invalid("invalid_settings", errors);
    }
    let text = serde_json::to_string(&config).unwrap_or_default();
    match app
        .recovery
        .store
        .put_settings(&business, &text, crate::clock::now())
        .await
    {
        Ok(()) => Json(json!({"source": "api", "settings": config})).into_response(),
        Err(e) => storage(e),
    }
}

async fn delete_settings(State(app): State<Arc<App>>, Path(business): Path<String>) -> Response {
    match app.recovery.store.delete_settings(&business).await {
        Ok(removed) => Json(json!({"removed": removed})).into_response(),
        Err(e) => storage(e),
    }
}

// ---- coupons -------------------------------------------------------------------------------

async fn put_coupon(
    State(app): State<Arc<App>>,
    Path((business, coupon)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    if let Err(r) = calendar_of(&app, &business) {
        return r.into_response();
    }
    let rules: CouponRules = match parse_json(&body, "invalid_coupon") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let mut errors = rules.validate();
    if coupon.is_empty()
        || coupon.len() > 40
        || !coupon
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        errors.push(FieldError {
            field: "coupon".into(),
            message: format!("{coupon:?}: 1 to 40 letters, digits, - or _"),
        });
    }
    if !errors.is_empty() {
        return invalid("invalid_coupon", errors);
    }
    let text = serde_json::to_string(&rules).unwrap_or_default();
    match app
        .recovery
        .store
        .put_coupon(&business, &coupon, &text, crate::clock::now())
        .await
    {
        Ok(()) => Json(json!({"coupon": coupon, "rules": rules})).into_response(),
        Err(e) => storage(e),
    }
}

async fn get_coupon(
    State(app): State<Arc<App>>,
    Path((business, coupon)): Path<(String, String)>,
) -> Response {
    match app.recovery.store.coupon(&business, &coupon).await {
        Ok(Some(text)) => {
            let rules: Value = serde_json::from_str(&text).unwrap_or_default();
            Json(json!({"coupon": coupon, "rules": rules})).into_response()
        }
        Ok(None) => ApiError(
            StatusCode::NOT_FOUND,
            "unknown_coupon",
            format!("store {business:?} has no coupon {coupon:?}"),
        )
        .into_response(),
        Err(e) => storage(e),
    }
}

// ---- carts and orders ----------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CartIn {
    business: String,
    cart_id: String,
    /// The customer's WhatsApp number.
    user: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    items: Vec<CartItem>,
    total: Decimal,
    currency: String,
    #[serde(default)]
    link: String,
    /// Last change of the cart (default now).
    #[serde(default)]
    updated_at: Option<Value>,
}

#[derive(Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
struct CartItem {
    name: String,
    #[serde(default = "one")]
    quantity: u32,
    #[serde(default)]
    price: Option<Decimal>,
}

fn one() -> u32 {
    1
}

fn user_ok(user: &str) -> bool {
    (6..=15).contains(&user.len()) && user.bytes().all(|b| b.is_ascii_digit())
}

fn when(v: Option<&Value>, field: &str, code: &'static str) -> Result<i64, ApiError> {
    match v {
        None | Some(Value::Null) => Ok(crate::clock::now()),
        Some(v) => instant_of(v).ok_or_else(|| {
            bad_request(
                code,
                format!("{field}: {v} is not RFC 3339 or Unix seconds"),
            )
        }),
    }
}

async fn post_cart(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let cart: CartIn = match parse_json(&body, "invalid_cart") {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = calendar_of(&app, &cart.business) {
        return r.into_response();
    }
    if !user_ok(&cart.user) {
        return bad_request(
            "invalid_cart",
            format!(
                "user: {:?} is not a WhatsApp number (digits with country code, no +)",
                cart.user
            ),
        )
        .into_response();
    }
    if cart.cart_id.is_empty() || cart.total < Decimal::ZERO {
        return bad_request(
            "invalid_cart",
            "cart_id must be set and total must not be negative",
        )
        .into_response();
    }
    let at = match when(cart.updated_at.as_ref(), "updated_at", "invalid_cart") {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let row = CartRow {
        business: cart.business.clone(),
        cart_id: cart.cart_id.clone(),
        user: cart.user.clone(),
        name: cart.name,
        items: serde_json::to_string(&cart.items).unwrap_or_else(|_| "[]".into()),
        total: cart.total.normalize().to_string(),
        currency: cart.currency,
        link: cart.link,
        updated_at: at,
    };
    if let Err(e) = app.recovery.store.put_cart(&row).await {
        return storage(e);
    }
    let now = crate::clock::now();
    let bought = match app
        .recovery
        .store
        .bought_since(&row.business, &row.user, at)
        .await
    {
        Ok(b) => b,
        Err(e) => return storage(e),
    };
    let scheduled = if bought {
        false
    } else {
        match app
            .recovery
            .cart_trigger(&row.business, &row.user, &row.cart_id, at, now)
            .await
        {
            Ok(s) => s,
            Err(e) => return storage(e),
        }
    };
    Json(json!({"cart_id": row.cart_id, "recovery_scheduled": scheduled})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderIn {
    business: String,
    order_id: String,
    user: String,
    total: Decimal,
    currency: String,
    #[serde(default)]
    at: Option<Value>,
    /// The coupon code used, if any.
    #[serde(default)]
    coupon: Option<String>,
    /// The recovery id from the recovery link (`{{recovery_id}}`), if the store passes it on.
    #[serde(default)]
    recovery: Option<String>,
    #[serde(default)]
    cart_id: Option<String>,
}

async fn post_order(State(app): State<Arc<App>>, body: Bytes) -> Response {
    let order: OrderIn = match parse_json(&body, "invalid_order") {
        Ok(o) => o,
        Err(r) => return r.into_response(),
    };
    if let Err(r) = calendar_of(&app, &order.business) {
        return r.into_response();
    }
    if !user_ok(&order.user) || order.order_id.is_empty() || order.total < Decimal::ZERO {
        return bad_request(
            "invalid_order",
            "order_id must be set, user must be a WhatsApp number and total must not be negative",
        )
        .into_response();
    }
    let at = match when(order.at.as_ref(), "at", "invalid_order") {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let row = OrderRow {
        business: order.business,
        order_id: order.order_id,
        user: order.user,
        at,
        total: order.total.normalize().to_string(),
        currency: order.currency,
        coupon: order.coupon.filter(|c| !c.is_empty()),
        recovery: order.recovery.filter(|r| !r.is_empty()),
        cart_id: order.cart_id,
    };
    let store = &app.recovery.store;
    let created = match store.put_order(&row).await {
        Ok(c) => c,
        Err(e) => return storage(e),
    };
    let now = crate::clock::now();
    let mut closed = 0;
    if created {
        // The purchase ends the customer's open recovery; the scheduler checks again anyway.
        match store
            .close_open(&row.business, &row.user, "purchased", now)
            .await
        {
            Ok(n) => closed = n,
            Err(e) => return storage(e),
        }
        // A recovery code used at checkout counts as used (for the post-coupon period).
        if let Some(code) = &row.coupon {
            match store.codes(code).await {
                Ok(codes) => {
                    if let Some(c) = codes.iter().find(|c| {
                        c.business == row.business && c.user == row.user && c.redeemed_at.is_none()
                    }) {
                        if let Err(e) = store
                            .mark_redeemed(&c.code, &c.recovery, row.at, Some(&row.order_id))
                            .await
                        {
                            return storage(e);
                        }
                    }
                }
                Err(e) => return storage(e),
            }
        }
    }
    Json(json!({
        "order_id": row.order_id,
        "status": if created { "stored" } else { "duplicate" },
        "recoveries_closed": closed,
    }))
    .into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemIn {
    business: String,
    /// The customer redeeming (single-use codes must be theirs).
    #[serde(default)]
    user: Option<String>,
    order_total: Decimal,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    at: Option<Value>,
}

/// Judges a recovery coupon by its *current* settings (seed 004) and, if accepted, spends it.
async fn post_redeem(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Response {
    let input: RedeemIn = match parse_json(&body, "invalid_redemption") {
        Ok(r) => r,
        Err(r) => return r.into_response(),
    };
    let at = match when(input.at.as_ref(), "at", "invalid_redemption") {
        Ok(t) => t,
        Err(r) => return r.into_response(),
    };
    let store = &app.recovery.store;
    let codes = match store.codes(&code).await {
        Ok(c) => c,
        Err(e) => return storage(e),
    };
    let mine: Vec<_> = codes
        .into_iter()
        .filter(|c| c.business == input.business)
        .collect();
    // For a code sent to several customers (a fixed code), the one sent to this customer.
    let Some(issued) = mine
        .iter()
        .find(|c| input.user.as_deref() == Some(c.user.as_str()))
        .or_else(|| mine.first())
    else {
        return ApiError(
            StatusCode::NOT_FOUND,
            "unknown_code",
            format!(
                "{code:?} was not sent with a recovery message of store {:?}",
                input.business
            ),
        )
        .into_response();
    };
    let rules = match store.coupon(&input.business, &issued.coupon).await {
        Ok(Some(text)) => match serde_json::from_str::<CouponRules>(&text) {
            Ok(r) => r,
            Err(e) => return storage(anyhow::anyhow!("coupon rules unreadable: {e}")),
        },
        Ok(None) => {
            return ApiError(
                StatusCode::CONFLICT,
                "coupon_removed",
                format!(
                    "the coupon {:?} behind this code no longer exists",
                    issued.coupon
                ),
            )
            .into_response()
        }
        Err(e) => return storage(e),
    };
    let config = match app.recovery.settings(&input.business).await {
        Ok(c) => c.map(|(c, _)| c),
        Err(e) => return storage(e),
    };
    let rules = effective_rules(rules, config.as_ref());
    let judged = IssuedCode {
        code: issued.code.clone(),
        user: issued.user.clone(),
        sent_at: issued.sent_at,
        single_use: issued.single_use,
        redeemed: issued.redeemed_at.is_some(),
    };
    match redeem(
        &rules,
        &judged,
        input.user.as_deref(),
        input.order_total,
        at,
    ) {
        Ok(discount) => {
            match store
                .mark_redeemed(&issued.code, &issued.recovery, at, input.order_id.as_deref())
                .await
            {
                Ok(true) => {}
                Ok(false) => {
                    return (
                        StatusCode::CONFLICT,
                        Json(json!({"accepted": false, "reason": "already_used", "message": "this single-use code was used already"})),
                    )
                        .into_response()
                }
                Err(e) => return storage(e),
            }
            Json(json!({
                "accepted": true,
                "code": issued.code,
                "discount": discount.normalize().to_string(),
                "recovery": issued.recovery,
                "expires_at": rules.expiry_hours.map(|h| crate::runtime::recovery::rfc3339(issued.sent_at + h as i64 * 3600)),
            }))
            .into_response()
        }
        Err(refusal) => (
            StatusCode::CONFLICT,
            Json(json!({"accepted": false, "reason": refusal, "message": refusal.message()})),
        )
            .into_response(),
    }
}

// ---- recoveries, report, run ---------------------------------------------------------------

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

async fn get_recoveries(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (calendar, _) = match calendar_of(&app, &business) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let ((from, to), _) = match period(&calendar, &q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let limit = q
        .get("limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(500i64)
        .clamp(1, 10_000);
    match app
        .recovery
        .store
        .list(
            &business,
            from,
            to,
            q.get("state").map(String::as_str),
            limit,
        )
        .await
    {
        Ok(mut rows) => {
            if let Some(user) = q.get("user") {
                rows.retain(|r| &r.user == user);
            }
            Json(json!({"business": business, "recoveries": rows})).into_response()
        }
        Err(e) => storage(e),
    }
}

async fn get_report(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let (calendar, currency) = match calendar_of(&app, &business) {
        Ok(c) => c,
        Err(r) => return r.into_response(),
    };
    let (range, texts) = match period(&calendar, &q) {
        Ok(p) => p,
        Err(r) => return r.into_response(),
    };
    let hours = match app.recovery.settings(&business).await {
        Ok(c) => c.map_or(72, |(c, _)| c.attribution_hours),
        Err(e) => return storage(e),
    };
    match crate::runtime::recovery::report::build(
        &app.recovery.store,
        &business,
        &currency,
        range,
        texts,
        hours,
    )
    .await
    {
        Ok(r) => Json(r).into_response(),
        Err(e) => storage(e),
    }
}

/// Runs one scheduler pass now (what the timer does every `check_interval_minutes`).
async fn post_run(State(app): State<Arc<App>>) -> Response {
    match app.recovery.tick(&app, crate::clock::now()).await {
        Ok(pass) => Json(pass).into_response(),
        Err(e) => storage(e),
    }
}
