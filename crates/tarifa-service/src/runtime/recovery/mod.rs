//! Sales recovery ("Recuperador de Vendas") in the service: triggers from the store's bot
//! conversations (inbound messages already ingested) and from carts the store reports, a
//! scheduler that sends the due ones, coupons, and the results report. The rules themselves
//! (guards, quiet hours, coupon judgement, attribution) are pure, in `tarifa_core::recovery`.
//!
//! Sending is cost-aware and at most once: the writer quotes the message and holds its cost in
//! the wallet (a reservation), the recovery row is committed as `sending` with its coupon code,
//! then the message leaves through the [`Sender`], and the outbound event is recorded (its own
//! hold replaces the reservation; the delivery webhook captures it like any other message).

mod ids;
mod intake;
mod message;
mod process;
pub mod report;
mod section;
mod sender;
mod wallet;

pub use ids::{random_id, unique_code};
pub use message::local_time_text;
pub use section::{RecoverySection, SenderKind};
pub use sender::{CloudApi, Outbox, Outgoing, Sender};

use crate::runtime::App;
use crate::storage::recovery::RecoveryStore;
use anyhow::{Context, Result};
use serde::Serialize;
use std::sync::Arc;
use tarifa_core::recovery::{CouponRules, RecoveryConfig, Trigger};
use tarifa_core::time::{format_instant, Instant, DAY, HOUR, MINUTE};

/// A due recovery older than this is closed as `too_late` instead of sent (after a long outage
/// a "you left something in your cart" a day later is more annoying than useful).
pub const TOO_LATE_SECS: i64 = DAY;
/// How long a scheduler keeps the recoveries it claimed before another may take them.
pub const LEASE_SECS: i64 = 5 * MINUTE;
/// How long a reservation holds money if the send is never recorded (a crash in between).
pub const RESERVATION_SECS: i64 = HOUR;

/// What one scheduler pass did.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Pass {
    pub triggers: u64,
    pub stops: u64,
    pub sent: u64,
    pub skipped: u64,
    pub deferred: u64,
}

/// One scheduler instance: its identity (for leases), the store, where messages go, and the
/// file settings (the API's stored settings override them per store).
pub struct Recovery {
    pub owner: String,
    pub store: RecoveryStore,
    pub sender: Arc<dyn Sender>,
    pub section: RecoverySection,
}

/// A customer's interaction that may start (or move) their recovery.
struct Start<'a> {
    business: &'a str,
    user: &'a str,
    trigger: Trigger,
    cart_id: Option<&'a str>,
    at: Instant,
}

impl Recovery {
    pub fn new(store: RecoveryStore, sender: Arc<dyn Sender>, section: RecoverySection) -> Self {
        Recovery {
            owner: format!("sched-{}", random_id()),
            store,
            sender,
            section,
        }
    }

    /// The store's settings: the API's, else the config file's, else none (recovery off).
    /// How long after a recovery message an order still counts as won back by it (72 h unless
    /// the business's settings say otherwise).
    pub async fn attribution_hours(&self, business: &str) -> Result<u32> {
        Ok(self
            .settings(business)
            .await?
            .map_or(72, |(c, _)| c.attribution_hours))
    }

    pub async fn settings(&self, business: &str) -> Result<Option<(RecoveryConfig, &'static str)>> {
        if let Some(text) = self.store.settings(business).await? {
            let config: RecoveryConfig =
                serde_json::from_str(&text).context("stored recovery settings are unreadable")?;
            return Ok(Some((config, "api")));
        }
        Ok(self
            .section
            .store
            .get(business)
            .cloned()
            .map(|c| (c, "file")))
    }

    /// Registers a cart (or its update) as a trigger.
    pub async fn cart_trigger(
        &self,
        business: &str,
        user: &str,
        cart_id: &str,
        at: Instant,
        now: Instant,
    ) -> Result<bool> {
        let Some((config, _)) = self.settings(business).await? else {
            return Ok(false);
        };
        let start = Start {
            business,
            user,
            trigger: Trigger::Cart,
            cart_id: Some(cart_id),
            at,
        };
        self.schedule(&config, start, now).await
    }

    /// Schedules the customer's recovery for `start` if the store wants that trigger and it is
    /// not already too late; `true` when scheduled.
    async fn schedule(
        &self,
        config: &RecoveryConfig,
        start: Start<'_>,
        now: Instant,
    ) -> Result<bool> {
        if !config.enabled
            || !config.wants(start.trigger)
            || start.at + config.delay() < now - TOO_LATE_SECS
        {
            return Ok(false);
        }
        self.store
            .trigger(
                &random_id(),
                start.business,
                start.user,
                start.trigger.as_str(),
                start.cart_id,
                start.at,
                config.delay(),
                now,
            )
            .await?;
        Ok(true)
    }

    /// One pass at `now`: new bot conversations become triggers, stale leases come back, due
    /// recoveries are decided and sent. Tests call it with a simulated clock.
    pub async fn tick(&self, app: &App, now: Instant) -> Result<Pass> {
        let mut pass = Pass::default();
        self.intake(now, &mut pass).await?;
        self.store.recover_leases(now).await?;
        loop {
            let due = self
                .store
                .claim(&self.owner, now, now + LEASE_SECS, 64)
                .await?;
            if due.is_empty() {
                break;
            }
            for r in due {
                if let Err(e) = self.process(app, &r, now, &mut pass).await {
                    tracing::warn!(recovery = %r.id, error = %format!("{e:#}"), "recovery not processed; it goes back to the queue when its lease ends");
                    return Err(e);
                }
            }
        }
        Ok(pass)
    }
}

/// The coupon rules that apply at redemption: the coupon's own, with the expiry of the store's
/// current recovery settings when the coupon sets none.
pub fn effective_rules(mut rules: CouponRules, config: Option<&RecoveryConfig>) -> CouponRules {
    if rules.expiry_hours.is_none() {
        rules.expiry_hours = config.and_then(|c| c.coupon_expiry_hours);
    }
    rules
}

/// Unix seconds or RFC 3339, for request bodies.
/// An instant of a request body (Unix seconds or RFC 3339), in the years tarifa reads
/// (2000-2099); `None` otherwise.
pub fn instant_of(v: &serde_json::Value) -> Option<Instant> {
    let at = match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => tarifa_core::time::parse_instant(s),
        _ => None,
    }?;
    tarifa_core::time::in_range(at).then_some(at)
}

pub fn rfc3339(at: Instant) -> String {
    format_instant(at)
}
