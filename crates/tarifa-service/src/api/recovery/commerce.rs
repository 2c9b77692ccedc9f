//! What the store reports of its shop: carts (each a possible cart trigger) and orders (which
//! end the customer's open recoveries and count towards the results).

use super::{bad_request, calendar_of, parse_json, user_ok, when, Answer};
use crate::runtime::recovery::report;
use crate::runtime::App;
use crate::storage::recovery::{CartRow, OrderRow};
use axum::body::Bytes;
use axum::extract::State;
use axum::response::IntoResponse;
use axum::Json;
use rust_decimal::Decimal;
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CartIn {
    business: String,
    cart_id: String,
    /// The customer's WhatsApp number.
    #[serde(deserialize_with = "crate::domain::phone::digits")]
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

pub(super) async fn post_cart(State(app): State<Arc<App>>, body: Bytes) -> Answer {
    let cart: CartIn = parse_json(&body, "invalid_cart")?;
    calendar_of(&app, &cart.business)?;
    check_cart(&cart)?;
    let at = when(cart.updated_at.as_ref(), "updated_at", "invalid_cart")?;
    let row = cart_row(cart, at);
    app.recovery.store.put_cart(&row).await?;
    let now = crate::clock::now();
    let bought = app
        .recovery
        .store
        .bought_since(&row.business, &row.user, at)
        .await?;
    let scheduled = !bought
        && app
            .recovery
            .cart_trigger(&row.business, &row.user, &row.cart_id, at, now)
            .await?;
    Ok(Json(json!({"cart_id": row.cart_id, "recovery_scheduled": scheduled})).into_response())
}

fn check_cart(cart: &CartIn) -> Result<(), super::ApiError> {
    if !user_ok(&cart.user) {
        return Err(bad_request(
            "invalid_cart",
            format!(
                "user: {:?} is not a WhatsApp number (digits with country code, no +)",
                cart.user
            ),
        ));
    }
    if cart.cart_id.is_empty() || cart.total < Decimal::ZERO {
        return Err(bad_request(
            "invalid_cart",
            "cart_id must be set and total must not be negative",
        ));
    }
    Ok(())
}

fn cart_row(cart: CartIn, updated_at: i64) -> CartRow {
    CartRow {
        business: cart.business,
        cart_id: cart.cart_id,
        user: cart.user,
        name: cart.name,
        items: serde_json::to_string(&cart.items).unwrap_or_else(|_| "[]".into()),
        total: cart.total.normalize().to_string(),
        currency: cart.currency,
        link: cart.link,
        updated_at,
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderIn {
    business: String,
    order_id: String,
    #[serde(deserialize_with = "crate::domain::phone::digits")]
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

pub(super) async fn post_order(State(app): State<Arc<App>>, body: Bytes) -> Answer {
    let order: OrderIn = parse_json(&body, "invalid_order")?;
    calendar_of(&app, &order.business)?;
    if !user_ok(&order.user) || order.order_id.is_empty() || order.total < Decimal::ZERO {
        return Err(bad_request(
            "invalid_order",
            "order_id must be set, user must be a WhatsApp number and total must not be negative",
        )
        .into());
    }
    let at = when(order.at.as_ref(), "at", "invalid_order")?;
    let row = order_row(order, at);
    let store = &app.recovery.store;
    let created = store.put_order(&row).await?;
    let closed = if created {
        settle_order(&app, &row).await?
    } else {
        0
    };
    Ok(Json(json!({
        "order_id": row.order_id,
        "status": if created { "stored" } else { "duplicate" },
        "recoveries_closed": closed,
    }))
    .into_response())
}

fn order_row(order: OrderIn, at: i64) -> OrderRow {
    OrderRow {
        business: order.business,
        order_id: order.order_id,
        user: order.user,
        at,
        total: order.total.normalize().to_string(),
        currency: order.currency,
        coupon: order.coupon.filter(|c| !c.is_empty()),
        recovery: order.recovery.filter(|r| !r.is_empty()),
        cart_id: order.cart_id,
    }
}

/// What a new order ends: the customer's open recoveries (the scheduler checks again anyway),
/// the sent recovery it wins back (now `recovered`), and the recovery code used at checkout,
/// which counts as used (for the post-coupon period). Returns how many recoveries it closed.
async fn settle_order(app: &App, row: &OrderRow) -> anyhow::Result<u64> {
    let store = &app.recovery.store;
    let now = crate::clock::now();
    let hours = app.recovery.attribution_hours(&row.business).await?;
    let closed = store
        .close_open(&row.business, &row.user, "purchased", now)
        .await?
        + report::mark_won_back(store, row, hours, now).await?;
    let Some(code) = &row.coupon else {
        return Ok(closed);
    };
    let codes = store.codes(code).await?;
    let unused = codes
        .iter()
        .find(|c| c.business == row.business && c.user == row.user && c.redeemed_at.is_none());
    if let Some(c) = unused {
        store
            .mark_redeemed(&c.code, &c.recovery, row.at, Some(&row.order_id))
            .await?;
    }
    Ok(closed)
}
