//! A store's recovery settings and its coupons. Settings that name a coupon are refused until
//! the coupon exists, so a message never hands out a code nobody can redeem.

use super::{calendar_of, invalid, not_found, parse_json, Answer};
use crate::runtime::App;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::sync::Arc;
use tarifa_core::recovery::{CouponChoice, CouponRules, FieldError, RecoveryConfig};

pub(super) async fn get_settings(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
) -> Answer {
    calendar_of(&app, &business)?;
    match app.recovery.settings(&business).await? {
        Some((config, source)) => Ok(Json(json!({"source": source, "settings": config})).into_response()),
        None => Err(not_found(
            "recovery_not_configured",
            format!("store {business:?} has no recovery settings (PUT them here or add [recovery.store.{business}] to the config)"),
        )
        .into()),
    }
}

pub(super) async fn put_settings(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
    body: Bytes,
) -> Answer {
    calendar_of(&app, &business)?;
    let config: RecoveryConfig = parse_json(&body, "invalid_settings")?;
    let mut errors = config.validate();
    errors.extend(missing_coupon(&app, &business, &config.coupon).await?);
    if !errors.is_empty() {
        return Err(invalid("invalid_settings", errors));
    }
    let text = serde_json::to_string(&config).unwrap_or_default();
    app.recovery
        .store
        .put_settings(&business, &text, crate::clock::now())
        .await?;
    Ok(Json(json!({"source": "api", "settings": config})).into_response())
}

/// The error for settings that refer to a coupon the store has not created.
async fn missing_coupon(
    app: &App,
    business: &str,
    choice: &CouponChoice,
) -> anyhow::Result<Option<FieldError>> {
    let (field, id) = match choice {
        CouponChoice::None => return Ok(None),
        CouponChoice::Fixed { code } => ("coupon.code", code),
        CouponChoice::Unique { prefix } => ("coupon.prefix", prefix),
    };
    if app.recovery.store.coupon(business, id).await?.is_some() {
        return Ok(None);
    }
    Ok(Some(FieldError {
        field: field.into(),
        message: format!(
            "no coupon {id:?}: create it first with PUT /v1/stores/{business}/coupons/{id}"
        ),
    }))
}

pub(super) async fn delete_settings(
    State(app): State<Arc<App>>,
    Path(business): Path<String>,
) -> Answer {
    let removed = app.recovery.store.delete_settings(&business).await?;
    Ok(Json(json!({"removed": removed})).into_response())
}

pub(super) async fn put_coupon(
    State(app): State<Arc<App>>,
    Path((business, coupon)): Path<(String, String)>,
    body: Bytes,
) -> Answer {
    calendar_of(&app, &business)?;
    let rules: CouponRules = parse_json(&body, "invalid_coupon")?;
    let mut errors = rules.validate();
    errors.extend(bad_coupon_name(&coupon));
    if !errors.is_empty() {
        return Err(invalid("invalid_coupon", errors));
    }
    let text = serde_json::to_string(&rules).unwrap_or_default();
    app.recovery
        .store
        .put_coupon(&business, &coupon, &text, crate::clock::now())
        .await?;
    Ok(Json(json!({"coupon": coupon, "rules": rules})).into_response())
}

/// Coupon names are 1 to 40 letters, digits, `-` or `_` (they appear in links and codes).
fn bad_coupon_name(coupon: &str) -> Option<FieldError> {
    let fine = !coupon.is_empty()
        && coupon.len() <= 40
        && coupon
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (!fine).then(|| FieldError {
        field: "coupon".into(),
        message: format!("{coupon:?}: 1 to 40 letters, digits, - or _"),
    })
}

pub(super) async fn get_coupon(
    State(app): State<Arc<App>>,
    Path((business, coupon)): Path<(String, String)>,
) -> Answer {
    let Some(text) = app.recovery.store.coupon(&business, &coupon).await? else {
        let message = format!("store {business:?} has no coupon {coupon:?}");
        return Err(not_found("unknown_coupon", message).into());
    };
    let rules: Value = serde_json::from_str(&text).unwrap_or_default();
    Ok(Json(json!({"coupon": coupon, "rules": rules})).into_response())
}
