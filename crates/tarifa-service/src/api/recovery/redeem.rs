//! Coupon redemption at checkout. A code is judged by its coupon's rules as they are *now*
//! (a store that changes a coupon after codes went out changes them all), and spent once.

use super::{not_found, parse_json, when, Answer, ApiError, Refusal};
use crate::runtime::recovery::{effective_rules, rfc3339};
use crate::runtime::App;
use crate::storage::recovery::{CodeRow, RecoveryStore};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::sync::Arc;
use tarifa_core::recovery::{redeem, CouponRules, IssuedCode};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RedeemIn {
    business: String,
    /// The customer redeeming (single-use codes must be theirs).
    #[serde(default, deserialize_with = "crate::domain::phone::digits_opt")]
    user: Option<String>,
    order_total: Decimal,
    #[serde(default)]
    order_id: Option<String>,
    #[serde(default)]
    at: Option<Value>,
}

/// Judges a recovery coupon by its *current* settings and, if accepted, spends it.
pub(super) async fn post_redeem(
    State(app): State<Arc<App>>,
    Path(code): Path<String>,
    body: Bytes,
) -> Answer {
    let input: RedeemIn = parse_json(&body, "invalid_redemption")?;
    let at = when(input.at.as_ref(), "at", "invalid_redemption")?;
    let codes = app.recovery.store.codes(&code).await?;
    let issued = issued_to(codes, &input, &code)?;
    let rules = current_rules(&app, &input.business, &issued.coupon).await?;
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
            let order_id = input.order_id.as_deref();
            spend(&app.recovery.store, &issued, &rules, discount, at, order_id).await
        }
        Err(refusal) => Err(not_accepted(refusal, refusal.message())),
    }
}

/// The code as the store sent it; for a code sent to several customers (a fixed code), the
/// one sent to this customer.
fn issued_to(codes: Vec<CodeRow>, input: &RedeemIn, code: &str) -> Result<CodeRow, ApiError> {
    let mine: Vec<CodeRow> = codes
        .into_iter()
        .filter(|c| c.business == input.business)
        .collect();
    let theirs = mine
        .iter()
        .position(|c| input.user.as_deref() == Some(c.user.as_str()))
        .unwrap_or(0);
    mine.into_iter().nth(theirs).ok_or_else(|| {
        not_found(
            "unknown_code",
            format!(
                "{code:?} was not sent with a recovery message of store {:?}",
                input.business
            ),
        )
    })
}

/// The coupon's rules now, with the store's current expiry when the coupon sets none.
async fn current_rules(app: &App, business: &str, coupon: &str) -> Result<CouponRules, Refusal> {
    let Some(text) = app.recovery.store.coupon(business, coupon).await? else {
        return Err(ApiError(
            StatusCode::CONFLICT,
            "coupon_removed",
            format!("the coupon {coupon:?} behind this code no longer exists"),
        )
        .into());
    };
    let rules = serde_json::from_str::<CouponRules>(&text)
        .map_err(|e| anyhow::anyhow!("coupon rules unreadable: {e}"))?;
    let config = app.recovery.settings(business).await?.map(|(c, _)| c);
    Ok(effective_rules(rules, config.as_ref()))
}

/// Marks an accepted code as redeemed; a single-use code spent meanwhile is refused.
async fn spend(
    store: &RecoveryStore,
    issued: &CodeRow,
    rules: &CouponRules,
    discount: Decimal,
    at: i64,
    order_id: Option<&str>,
) -> Answer {
    if !store
        .mark_redeemed(&issued.code, &issued.recovery, at, order_id)
        .await?
    {
        let message = "this single-use code was used already";
        return Err(not_accepted("already_used", message));
    }
    Ok(Json(json!({
        "accepted": true,
        "code": issued.code,
        "discount": discount.normalize().to_string(),
        "recovery": issued.recovery,
        "expires_at": rules.expiry_hours.map(|h| rfc3339(issued.sent_at + h as i64 * 3600)),
    }))
    .into_response())
}

fn not_accepted(reason: impl Serialize, message: &str) -> Refusal {
    Refusal(
        (
            StatusCode::CONFLICT,
            Json(json!({"accepted": false, "reason": reason, "message": message})),
        )
            .into_response(),
    )
}
