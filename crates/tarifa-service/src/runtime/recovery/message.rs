//! What a recovery message says: the coupon code it hands out (the store's fixed code, or a
//! single-use one made at send time) and its text or template parameters, with the variables
//! filled from the cart, the coupon and the recovery itself.

use super::ids::unique_code;
use crate::storage::recovery::CartRow;
use tarifa_core::recovery::{render, CouponChoice, RecoveryConfig, TemplateChoice};
use tarifa_core::time::{Calendar, Instant, HOUR};

/// A coupon code handed out with one message.
pub(super) struct IssuedCoupon {
    pub code: String,
    /// The coupon whose rules the code follows (the fixed code itself, or the unique prefix).
    pub coupon: String,
    pub single_use: bool,
}

/// The code for one message sent at `now`, and when it expires (only a code can expire).
pub(super) fn issue_coupon(
    config: &RecoveryConfig,
    now: Instant,
) -> (Option<IssuedCoupon>, Option<Instant>) {
    let code = match &config.coupon {
        CouponChoice::None => None,
        CouponChoice::Fixed { code } => Some(IssuedCoupon {
            code: code.clone(),
            coupon: code.clone(),
            single_use: false,
        }),
        CouponChoice::Unique { prefix } => Some(IssuedCoupon {
            code: unique_code(prefix),
            coupon: prefix.clone(),
            single_use: true,
        }),
    };
    let expires_at = config
        .coupon_expiry_hours
        .filter(|_| code.is_some())
        .map(|h| now + h as i64 * HOUR);
    (code, expires_at)
}

/// The values of a message's `{{variables}}` for one recovery.
pub(super) struct Variables<'a> {
    pub recovery: &'a str,
    pub cart: Option<&'a CartRow>,
    pub coupon: Option<&'a IssuedCoupon>,
    pub coupon_expires_at: Option<Instant>,
    pub calendar: &'a Calendar,
}

impl Variables<'_> {
    /// A variable's value; `coupon_link` is the rendered link, which cannot refer to itself.
    fn value(&self, name: &str, coupon_link: Option<&String>) -> Option<String> {
        let cart = self.cart;
        match name {
            "name" => cart.map(|c| c.name.clone()),
            "cart" => cart.map(|c| cart_summary(&c.items)),
            "cart_total" => cart.map(|c| format!("{} {}", c.total, c.currency)),
            "cart_link" => cart.map(|c| c.link.clone()),
            "coupon_code" => self.coupon.map(|c| c.code.clone()),
            "coupon_expiry" => self
                .coupon_expires_at
                .map(|t| local_time_text(self.calendar, t)),
            "recovery_id" => Some(self.recovery.to_string()),
            "coupon_link" => coupon_link.cloned(),
            _ => None,
        }
    }
}

/// The message as sent: the free-form text, or a template call written as `name(p1, p2)` for
/// the record with the template's name, language and rendered parameters.
pub(super) fn write_message(
    config: &RecoveryConfig,
    template: Option<TemplateChoice>,
    vars: &Variables,
) -> (String, Option<(String, String, Vec<String>)>) {
    let link = config
        .link
        .as_deref()
        .map(|l| render(l, &|name| vars.value(name, None)));
    let value = |name: &str| vars.value(name, link.as_ref());
    match template {
        None => (
            render(config.message.as_deref().unwrap_or_default(), &value),
            None,
        ),
        Some(t) => {
            let params: Vec<String> = t.params.iter().map(|p| render(p, &value)).collect();
            (
                format!("{}({})", t.name, params.join(", ")),
                Some((t.name, t.language, params)),
            )
        }
    }
}

/// "2× Camiseta, 1× Boné" from the cart's items.
fn cart_summary(items: &str) -> String {
    let items: Vec<serde_json::Value> = serde_json::from_str(items).unwrap_or_default();
    items
        .iter()
        .map(|i| {
            let name = i["name"].as_str().unwrap_or("?");
            match i["quantity"].as_u64() {
                Some(q) if q != 1 => format!("{q}× {name}"),
                _ => name.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `2026-11-21 15:30` in the store's time zone.
pub fn local_time_text(calendar: &Calendar, at: Instant) -> String {
    let (date, minute) = calendar.wall_clock(at);
    let (y, m, d) = date.ymd_parts();
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", minute / 60, minute % 60)
}
