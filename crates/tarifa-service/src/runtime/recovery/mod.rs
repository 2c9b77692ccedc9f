//! Sales recovery ("Recuperador de Vendas", seed 004) in the service: triggers from the store's
//! bot conversations (inbound messages already ingested) and from carts the store reports, a
//! scheduler that sends the due ones, coupons, and the results report. The rules themselves
//! (guards, quiet hours, coupon judgement, attribution) are pure, in `tarifa_core::recovery`.
//!
//! Sending is cost-aware and at most once: the writer quotes the message and holds its cost in
//! the wallet (a reservation), the recovery row is committed as `sending` with its coupon code,
//! then the message leaves through the [`Sender`], and the outbound event is recorded (its own
//! hold replaces the reservation; the delivery webhook captures it like any other message).

pub mod report;

use crate::domain::book::{Planned, PlannedTemplate, Quote};
use crate::domain::ingest::new_event;
use crate::runtime::writer::Command;
use crate::runtime::App;
use crate::storage::recovery::{RecoveryRow, RecoveryStore};
use anyhow::{anyhow, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::Arc;
use tarifa_core::input::{parse_line, Event};
use tarifa_core::recovery::{
    decide, render, Channel, CouponChoice, CouponRules, CustomerFacts, Decision, RecoveryConfig,
    SkipReason, Trigger,
};
use tarifa_core::time::{format_instant, Instant, DAY, HOUR, MINUTE};
use tokio::sync::oneshot;

/// A due recovery older than this is closed as `too_late` instead of sent (after a long outage
/// a "you left something in your cart" a day later is more annoying than useful).
pub const TOO_LATE_SECS: i64 = DAY;
/// How long a scheduler keeps the recoveries it claimed before another may take them.
pub const LEASE_SECS: i64 = 5 * MINUTE;
/// How long a reservation holds money if the send is never recorded (a crash in between).
pub const RESERVATION_SECS: i64 = HOUR;

/// `[recovery]` of `serve.toml`.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoverySection {
    /// How often the scheduler looks for due recoveries (seed 004: every 5 minutes).
    #[serde(default = "default_interval")]
    pub check_interval_minutes: u32,
    /// Run the scheduler's timer in this instance (`false`: passes only through
    /// `POST /v1/recovery/run`, e.g. from an external cron, or in tests on a simulated clock).
    #[serde(default = "yes")]
    pub scheduler: bool,
    /// `outbox` (record the messages, send nothing: demos and tests) or `meta` (Cloud API).
    #[serde(default)]
    pub sender: SenderKind,
    /// The Graph API base for `sender = "meta"`.
    #[serde(default = "default_graph")]
    pub graph_url: String,
    /// The Cloud API token (better: `TARIFA_META_ACCESS_TOKEN`).
    #[serde(default)]
    pub access_token: Option<String>,
    /// Inbound texts (case and surrounding spaces ignored) that stop recovery messages.
    #[serde(default = "default_stop_keywords")]
    pub stop_keywords: Vec<String>,
    /// Per store (business id): the settings the API can override.
    #[serde(default)]
    pub store: BTreeMap<String, RecoveryConfig>,
}

impl Default for RecoverySection {
    fn default() -> Self {
        RecoverySection {
            check_interval_minutes: default_interval(),
            scheduler: true,
            sender: SenderKind::default(),
            graph_url: default_graph(),
            access_token: None,
            stop_keywords: default_stop_keywords(),
            store: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum SenderKind {
    #[default]
    Outbox,
    Meta,
}

fn yes() -> bool {
    true
}
fn default_interval() -> u32 {
    5
}
fn default_graph() -> String {
    "https://graph.facebook.com/v23.0".into()
}
fn default_stop_keywords() -> Vec<String> {
    [
        "STOP",
        "PARAR",
        "SAIR",
        "CANCELAR",
        "DESCADASTRAR",
        "BAJA",
        "UNSUBSCRIBE",
    ]
    .map(String::from)
    .to_vec()
}

impl RecoverySection {
    /// Checks the section; errors name `recovery.store.<business>.<field>`.
    pub fn validate(&self) -> Result<()> {
        if !(1..=60).contains(&self.check_interval_minutes) {
            anyhow::bail!("recovery.check_interval_minutes must be between 1 and 60");
        }
        for (business, config) in &self.store {
            if let Some(e) = config.validate().first() {
                anyhow::bail!("recovery.store.{business}.{e}");
            }
        }
        Ok(())
    }
}

/// A recovery message to send.
#[derive(Clone, Debug, Serialize)]
pub struct Outgoing {
    pub recovery: String,
    /// The business phone number id.
    pub phone: String,
    pub to: String,
    pub channel: Channel,
    /// Free-form text, or the template's rendered parameters.
    pub text: String,
    pub template: Option<(String, String, Vec<String>)>,
}

/// Where recovery messages go. Returns Meta's message id (wamid).
pub trait Sender: Send + Sync {
    fn send<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send + 'a>>;
}

/// Sends nothing: the message is kept in the recovery's record (samples, demos, tests).
pub struct Outbox;

impl Sender for Outbox {
    fn send<'a>(
        &'a self,
        message: &'a Outgoing,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send + 'a>> {
        Box::pin(async move { Ok(format!("wamid.outbox.{}", message.recovery)) })
    }
}

/// Meta's Cloud API: `POST {graph}/{phone-number-id}/messages`.
pub struct CloudApi {
    pub graph_url: String,
    pub token: String,
    pub client: reqwest::Client,
}

impl Sender for CloudApi {
    fn send<'a>(
        &'a self,
        m: &'a Outgoing,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<String>> + Send + 'a>> {
        Box::pin(async move {
            let body = match &m.template {
                Some((name, language, params)) => serde_json::json!({
                    "messaging_product": "whatsapp", "to": m.to, "type": "template",
                    "biz_opaque_callback_data": m.recovery,
                    "template": {"name": name, "language": {"code": language}, "components": [{
                        "type": "body",
                        "parameters": params.iter().map(|p| serde_json::json!({"type": "text", "text": p})).collect::<Vec<_>>()
                    }]}
                }),
                None => serde_json::json!({
                    "messaging_product": "whatsapp", "to": m.to, "type": "text",
                    "biz_opaque_callback_data": m.recovery,
                    "text": {"body": m.text}
                }),
            };
            let url = format!(
                "{}/{}/messages",
                self.graph_url.trim_end_matches('/'),
                m.phone
            );
            let response = self
                .client
                .post(&url)
                .bearer_auth(&self.token)
                .json(&body)
                .send()
                .await
                .with_context(|| format!("POST {url}"))?;
            let status = response.status();
            let answer: serde_json::Value = response.json().await.unwrap_or_default();
            if !status.is_success() {
                return Err(anyhow!("Cloud API answered {status}: {answer}"));
            }
            answer["messages"][0]["id"]
                .as_str()
                .map(String::from)
                .ok_or_else(|| anyhow!("Cloud API answer without messages[0].id: {answer}"))
        })
    }
}

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

/// A short random id (lowercase base32, 16 characters).
pub fn random_id() -> String {
    random_text(16, b"abcdefghijklmnopqrstuvwxyz234567")
}

fn random_text(n: usize, alphabet: &[u8]) -> String {
    let mut bytes = vec![0u8; n];
    // Without an entropy source, ids fall back to the clock and a counter (still unique here).
    if getrandom::fill(&mut bytes).is_err() {
        static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let seed = xxhash_rust::xxh3::xxh3_64(
            &[
                crate::clock::now().to_le_bytes(),
                COUNTER
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    .to_le_bytes(),
            ]
            .concat(),
        );
        for (i, b) in bytes.iter_mut().enumerate() {
            *b = (seed >> ((i % 8) * 8)) as u8 ^ i as u8;
        }
    }
    bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect()
}

/// A unique single-use coupon code: the prefix and 8 characters without look-alikes.
pub fn unique_code(prefix: &str) -> String {
    format!(
        "{prefix}{}",
        random_text(8, b"ABCDEFGHJKLMNPQRSTUVWXYZ23456789")
    )
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

    fn is_stop(&self, text: &str) -> bool {
        let t = text.trim();
        self.section
            .stop_keywords
            .iter()
            .any(|k| k.eq_ignore_ascii_case(t))
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
        if !config.enabled
            || !config.wants(Trigger::Cart)
            || at + config.delay() < now - TOO_LATE_SECS
        {
            return Ok(false);
        }
        self.store
            .trigger(
                &random_id(),
                business,
                user,
                Trigger::Cart.as_str(),
                Some(cart_id),
                at,
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

    /// Reads the inbound messages stored since the last pass.
    async fn intake(&self, now: Instant, pass: &mut Pass) -> Result<()> {
        // Each store's settings, read once per pass (not once per message).
        let mut stores: std::collections::HashMap<String, Option<RecoveryConfig>> =
            std::collections::HashMap::new();
        loop {
            let cursor = self.store.cursor().await?;
            let batch = self.store.inbound_after(cursor, 500).await?;
            let Some(last) = batch.last().map(|b| b.0) else {
                return Ok(());
            };
            for (_, business, line) in &batch {
                let mut events = Vec::new();
                if parse_line(line.as_bytes(), &mut |e| events.push(e)).is_err() {
                    continue;
                }
                for e in events {
                    let Event::Inbound(i) = e else { continue };
                    if i.group.is_some() {
                        continue;
                    }
                    if i.text.as_deref().is_some_and(|t| self.is_stop(t)) {
                        self.store.put_stop(business, &i.user, i.at).await?;
                        self.store
                            .close_open(business, &i.user, SkipReason::StopKeyword.as_str(), now)
                            .await?;
                        pass.stops += 1;
                        continue;
                    }
                    if !stores.contains_key(business) {
                        let found = self.settings(business).await?.map(|(c, _)| c);
                        stores.insert(business.clone(), found);
                    }
                    let Some(Some(config)) = stores.get(business) else {
                        continue;
                    };
                    if !config.enabled
                        || !config.wants(Trigger::Bot)
                        || i.at + config.delay() < now - TOO_LATE_SECS
                    {
                        continue;
                    }
                    self.store
                        .trigger(
                            &random_id(),
                            business,
                            &i.user,
                            Trigger::Bot.as_str(),
                            None,
                            i.at,
                            config.delay(),
                            now,
                        )
                        .await?;
                    pass.triggers += 1;
                }
            }
            self.store.advance_cursor(last).await?;
        }
    }

    async fn skip(
        &self,
        r: &RecoveryRow,
        reason: SkipReason,
        now: Instant,
        pass: &mut Pass,
    ) -> Result<()> {
        self.store
            .skip(&r.id, &self.owner, reason.as_str(), now)
            .await?;
        pass.skipped += 1;
        Ok(())
    }

    async fn process(
        &self,
        app: &App,
        r: &RecoveryRow,
        now: Instant,
        pass: &mut Pass,
    ) -> Result<()> {
        let Some((config, _)) = self.settings(&r.business).await? else {
            return self.skip(r, SkipReason::Disabled, now, pass).await;
        };
        if now - r.due_at > TOO_LATE_SECS {
            return self.skip(r, SkipReason::TooLate, now, pass).await;
        }
        let free_form = Planned {
            business: r.business.clone(),
            phone: config.phone.clone(),
            user: r.user.clone(),
            template: None,
            at: None,
        };
        // The store's calendar, and whether the customer service window is open now.
        let looked_up = {
            let book = app.book.read().unwrap_or_else(|p| p.into_inner());
            book.setup()
                .businesses
                .iter()
                .find(|b| b.id == r.business)
                .map(|b| b.calendar.clone())
                .map(|calendar| {
                    let window = book
                        .quote(&free_form, now)
                        .is_ok_and(|q| q.customer_service_window_open);
                    (calendar, window)
                })
        };
        let Some((calendar, window_open)) = looked_up else {
            return self.skip(r, SkipReason::Disabled, now, pass).await;
        };
        let trigger = Trigger::parse(&r.trigger).unwrap_or(Trigger::Bot);
        let (stop_keyword, marketing_opt_out) = self.store.opt_outs(&r.business, &r.user).await?;
        let facts = CustomerFacts {
            bought_since_trigger: self
                .store
                .bought_since(&r.business, &r.user, r.started_at)
                .await?,
            stop_keyword,
            marketing_opt_out,
            sent_at: self.store.sent_to(&r.business, &r.user).await?,
            coupon_used_at: self.store.last_coupon_use(&r.business, &r.user).await?,
            // The window is open exactly when a user message is less than 24 h old.
            last_inbound: window_open.then_some(now),
            us_number: matches!(
                tarifa_core::market::country_of(&r.user),
                Ok(Some(c)) if c.as_str() == "US"
            ),
        };
        let (channel, template) = match decide(&config, trigger, &facts, now, &calendar) {
            Decision::Skip(reason) => return self.skip(r, reason, now, pass).await,
            Decision::Defer(at) => {
                self.store.defer(&r.id, &self.owner, at, now).await?;
                pass.deferred += 1;
                return Ok(());
            }
            Decision::Send(Channel::FreeForm) => (Channel::FreeForm, None),
            // `decide` picks the template channel only when a template is configured.
            Decision::Send(Channel::Template) => match config.template.clone() {
                Some(t) => (Channel::Template, Some(t)),
                None => return self.skip(r, SkipReason::NoTemplate, now, pass).await,
            },
        };
        let planned = Planned {
            template: (channel == Channel::Template).then(|| PlannedTemplate {
                name: config
                    .template
                    .as_ref()
                    .map(|t| t.name.clone())
                    .unwrap_or_default(),
                category: "marketing".into(),
            }),
            ..free_form
        };
        let reservation = format!("rcv:{}", r.id);
        let quote = self.reserve(app, &planned, &reservation, now).await?;
        if !quote.allowed {
            let reason = quote
                .blocked_by
                .first()
                .map_or(SkipReason::QuoteBlocked, |b| SkipReason::of_block(b.code));
            return self.skip(r, reason, now, pass).await;
        }
        let (code, expires_at) = match &config.coupon {
            CouponChoice::None => (None, None),
            CouponChoice::Fixed { code } => (
                Some((code.clone(), code.clone(), false)),
                config.coupon_expiry_hours,
            ),
            CouponChoice::Unique { prefix } => (
                Some((unique_code(prefix), prefix.clone(), true)),
                config.coupon_expiry_hours,
            ),
        };
        let expires_at = expires_at
            .filter(|_| code.is_some())
            .map(|h| now + h as i64 * HOUR);
        let cart = match &r.cart_id {
            Some(id) => self.store.cart(&r.business, id).await?,
            None => None,
        };
        let value = |name: &str| -> Option<String> {
            match name {
                "name" => cart.as_ref().map(|c| c.name.clone()),
                "cart" => cart.as_ref().map(|c| cart_summary(&c.items)),
                "cart_total" => cart.as_ref().map(|c| format!("{} {}", c.total, c.currency)),
                "cart_link" => cart.as_ref().map(|c| c.link.clone()),
                "coupon_code" => code.as_ref().map(|c| c.0.clone()),
                "coupon_expiry" => expires_at.map(|t| local_time_text(&calendar, t)),
                "recovery_id" => Some(r.id.clone()),
                _ => None,
            }
        };
        let link = config.link.as_deref().map(|l| render(l, &value));
        let value = |name: &str| match name {
            "coupon_link" => link.clone(),
            other => value(other),
        };
        let (text, template) = match template {
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
        };
        let started = self
            .store
            .start_sending(
                r,
                &self.owner,
                channel.as_str(),
                &text,
                code.as_ref()
                    .map(|(c, coupon, single)| (c.as_str(), coupon.as_str(), *single)),
                expires_at,
                &quote.amount,
                &quote.currency,
                now,
            )
            .await;
        match started {
            Ok(true) => {}
            Ok(false) => {
                self.cancel(app, &r.business, &reservation).await?;
                return Ok(());
            }
            Err(e) => {
                self.cancel(app, &r.business, &reservation).await?;
                return Err(e);
            }
        }
        let outgoing = Outgoing {
            recovery: r.id.clone(),
            phone: config.phone.clone(),
            to: r.user.clone(),
            channel,
            text,
            template,
        };
        match self.sender.send(&outgoing).await {
            Ok(message_id) => {
                self.record(app, &reservation, &outgoing, &planned, &message_id, now)
                    .await?;
                self.store
                    .sent(&r.id, &self.owner, &message_id, now)
                    .await?;
                pass.sent += 1;
            }
            Err(e) => {
                tracing::warn!(recovery = %r.id, error = %format!("{e:#}"), "recovery message not sent");
                self.cancel(app, &r.business, &reservation).await?;
                self.skip(r, SkipReason::SendFailed, now, pass).await?;
            }
        }
        Ok(())
    }

    async fn reserve(
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

    async fn cancel(&self, app: &App, business: &str, reservation: &str) -> Result<()> {
        ask(app, |reply| Command::CancelReservation {
            business: business.to_string(),
            reservation: reservation.to_string(),
            reply,
        })
        .await
    }

    /// Records the sent message as the business's outbound event (its hold replaces the
    /// reservation; Meta's delivery webhook settles it).
    async fn record(
        &self,
        app: &App,
        reservation: &str,
        m: &Outgoing,
        planned: &Planned,
        message_id: &str,
        now: Instant,
    ) -> Result<()> {
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
        let row = events
            .into_iter()
            .next()
            .and_then(|e| new_event(e, crate::clock::now()))
            .ok_or_else(|| anyhow!("the sent message could not be recorded"))?;
        let outcome = ask(app, |reply| Command::RecordReserved {
            reservation: reservation.to_string(),
            row,
            reply,
        })
        .await?;
        if let crate::domain::book::Outcome::Rejected { code, message } = outcome {
            tracing::warn!(%message_id, %code, %message, "a sent recovery message could not be recorded in the wallet");
        }
        Ok(())
    }
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
pub fn local_time_text(calendar: &tarifa_core::time::Calendar, at: Instant) -> String {
    let (date, minute) = calendar.wall_clock(at);
    let (y, m, d) = date.ymd_parts();
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}", minute / 60, minute % 60)
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
pub fn instant_of(v: &serde_json::Value) -> Option<Instant> {
    match v {
        serde_json::Value::Number(n) => n.as_i64(),
        serde_json::Value::String(s) => tarifa_core::time::parse_instant(s),
        _ => None,
    }
}

pub fn rfc3339(at: Instant) -> String {
    format_instant(at)
}
