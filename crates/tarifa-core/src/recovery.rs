//! Sales recovery ("Recuperador de Vendas"): the rules that decide whether, when and how
//! a recovery message goes to a customer who talked to the store's bot or left a cart without
//! buying, how a recovery coupon is judged at redemption, and how results are attributed.
//!
//! Pure: the service gathers the facts (orders, earlier sends, opt-outs, the last user message,
//! the coupon's current settings) and these functions decide. Every skipped send gets a
//! [`SkipReason`]; a send in quiet hours is deferred, not skipped (Zoho, chatwoot #10455).

use crate::time::{Calendar, Instant, DAY, HOUR, MINUTE};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The delay after the last interaction, in minutes, the seed allows.
pub const DELAY_MINUTES: std::ops::RangeInclusive<u32> = 5..=60;

/// What started a recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// The customer wrote to the store's WhatsApp bot and did not buy.
    Bot,
    /// The store reported a cart or checkout that was not completed.
    Cart,
}

impl Trigger {
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Bot => "bot",
            Trigger::Cart => "cart",
        }
    }

    pub fn parse(text: &str) -> Option<Trigger> {
        match text {
            "bot" => Some(Trigger::Bot),
            "cart" => Some(Trigger::Cart),
            _ => None,
        }
    }
}

/// Which coupon a recovery message carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "mode", rename_all = "snake_case", deny_unknown_fields)]
pub enum CouponChoice {
    /// No coupon.
    #[default]
    None,
    /// The same code for everyone (a coupon created in the store, referenced by its code).
    Fixed { code: String },
    /// A new single-use code per customer and message: `prefix` + 8 characters.
    Unique { prefix: String },
}

/// The approved marketing template used outside the customer service window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateChoice {
    pub name: String,
    #[serde(default = "default_language")]
    pub language: String,
    /// Body parameters, in order; each may use the message variables.
    #[serde(default)]
    pub params: Vec<String>,
}

fn default_language() -> String {
    "pt_BR".into()
}

/// At most `max` recovery messages per customer in any `days`-day period.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FrequencyCap {
    pub max: u32,
    pub days: u32,
}

/// Local times (`HH:MM`) between which nothing is sent; `from` > `to` spans midnight.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuietHours {
    pub from: String,
    pub to: String,
}

/// A store's recovery settings, as given (API or config file); [`RecoveryConfig::validate`] checks
/// them all and names every field that is wrong.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecoveryConfig {
    #[serde(default = "yes")]
    pub enabled: bool,
    /// The business phone number (Meta's phone number id) that sends recovery messages.
    pub phone: String,
    /// Minutes after the last interaction (5 to 60).
    pub delay_minutes: u32,
    /// What starts a recovery (default: both).
    #[serde(default = "both_triggers")]
    pub triggers: Vec<Trigger>,
    #[serde(default)]
    pub coupon: CouponChoice,
    /// The coupon expires this many hours after the message is sent (seed: "prazo de
    /// utilização"); `None`: it does not expire.
    #[serde(default)]
    pub coupon_expiry_hours: Option<u32>,
    /// Default: one message per customer per 7 days.
    #[serde(default = "default_cap")]
    pub frequency: FrequencyCap,
    /// No recovery message this many days after the customer used a recovery coupon (0: off).
    #[serde(default)]
    pub after_coupon_days: u32,
    #[serde(default)]
    pub quiet_hours: Option<QuietHours>,
    /// An order within this many hours after a recovery message counts as recovered by it
    /// (default 72), besides orders through its link or coupon.
    #[serde(default = "default_attribution")]
    pub attribution_hours: u32,
    /// The free-form text sent inside the customer service window (`None`: always the template).
    #[serde(default)]
    pub message: Option<String>,
    /// The marketing template sent outside the window (`None`: no recovery outside it).
    #[serde(default)]
    pub template: Option<TemplateChoice>,
    /// The recovery link; may use the variables (`{{coupon_code}}`, `{{recovery_id}}` …).
    #[serde(default)]
    pub link: Option<String>,
}

fn yes() -> bool {
    true
}
fn both_triggers() -> Vec<Trigger> {
    vec![Trigger::Bot, Trigger::Cart]
}
fn default_cap() -> FrequencyCap {
    FrequencyCap { max: 1, days: 7 }
}
fn default_attribution() -> u32 {
    72
}

/// A configuration problem: the field and what is wrong with it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// The variables a message, template parameter or link may use.
pub const VARIABLES: &[&str] = &[
    "name",
    "cart",
    "cart_total",
    "cart_link",
    "coupon_code",
    "coupon_link",
    "coupon_expiry",
    "recovery_id",
];

/// Validated quiet hours, in minutes of the local day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quiet {
    pub from: u32,
    pub to: u32,
}

impl Quiet {
    /// Whether local minute `m` is inside the quiet period.
    pub fn contains(self, m: u32) -> bool {
        if self.from <= self.to {
            (self.from..self.to).contains(&m)
        } else {
            m >= self.from || m < self.to
        }
    }
}

fn parse_hhmm(text: &str) -> Option<u32> {
    let (h, m) = text.split_once(':')?;
    if h.len() != 2 || m.len() != 2 {
        return None;
    }
    let (h, m): (u32, u32) = (h.parse().ok()?, m.parse().ok()?);
    (h < 24 && m < 60).then_some(h * 60 + m)
}

impl RecoveryConfig {
    /// Every problem of the settings (empty: valid).
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: String| {
            errors.push(FieldError {
                field: field.into(),
                message,
            })
        };
        self.check_sending(&mut bad);
        self.check_coupon(&mut bad);
        self.check_limits(&mut bad);
        self.check_texts(&mut bad);
        errors
    }

    /// Who sends, when, on what.
    fn check_sending(&self, bad: &mut dyn FnMut(&str, String)) {
        if self.phone.trim().is_empty() {
            bad(
                "phone",
                "the phone number id that sends recovery messages is required".into(),
            );
        }
        if !DELAY_MINUTES.contains(&self.delay_minutes) {
            bad(
                "delay_minutes",
                format!(
                    "must be between 5 and 60 minutes after the last interaction, got {}",
                    self.delay_minutes
                ),
            );
        }
        if self.triggers.is_empty() {
            bad(
                "triggers",
                "name at least one trigger: \"bot\" or \"cart\"".into(),
            );
        }
    }

    /// The coupon and its expiry.
    fn check_coupon(&self, bad: &mut dyn FnMut(&str, String)) {
        match &self.coupon {
            CouponChoice::Fixed { code } if !valid_code(code) => bad(
                "coupon.code",
                format!("{code:?} is not a coupon code (1 to 40 letters, digits, - or _)"),
            ),
            CouponChoice::Unique { prefix } if prefix.len() > 20 || !is_code_text(prefix) => bad(
                "coupon.prefix",
                format!("{prefix:?}: at most 20 letters, digits, - or _"),
            ),
            _ => {}
        }
        if self.coupon_expiry_hours == Some(0) {
            bad(
                "coupon_expiry_hours",
                "must be at least 1 hour (leave it out for a coupon that does not expire)".into(),
            );
        }
    }

    /// How often, when not, and for how long results count.
    fn check_limits(&self, bad: &mut dyn FnMut(&str, String)) {
        if self.frequency.max == 0 || self.frequency.days == 0 {
            bad(
                "frequency",
                "max and days must both be at least 1 (e.g. {max = 1, days = 7})".into(),
            );
        }
        if let Some(q) = &self.quiet_hours {
            for (field, value) in [("quiet_hours.from", &q.from), ("quiet_hours.to", &q.to)] {
                if parse_hhmm(value).is_none() {
                    bad(field, format!("{value:?} is not a local time HH:MM"));
                }
            }
            if q.from == q.to {
                bad("quiet_hours", "from and to are equal".into());
            }
        }
        if self.attribution_hours == 0 || self.attribution_hours > 24 * 90 {
            bad(
                "attribution_hours",
                format!("must be between 1 and 2160, got {}", self.attribution_hours),
            );
        }
    }

    /// The message, the template and the link, and the variables they use.
    fn check_texts(&self, bad: &mut dyn FnMut(&str, String)) {
        if self.message.is_none() && self.template.is_none() {
            bad(
                "message",
                "give a free-form message (sent inside the customer service window), a template (outside it), or both".into(),
            );
        }
        if let Some(m) = &self.message {
            if m.trim().is_empty() {
                bad("message", "is empty".into());
            }
            check_variables("message", m, bad);
        }
        if let Some(t) = &self.template {
            if t.name.trim().is_empty() {
                bad("template.name", "is empty".into());
            }
            for (i, p) in t.params.iter().enumerate() {
                check_variables(&format!("template.params[{i}]"), p, bad);
            }
        }
        if let Some(l) = &self.link {
            check_variables("link", l, bad);
        }
        let uses_coupon = |t: &str| t.contains("{{coupon_");
        let texts = self
            .message
            .iter()
            .chain(self.template.iter().flat_map(|t| t.params.iter()))
            .chain(self.link.iter());
        if matches!(self.coupon, CouponChoice::None) && texts.clone().any(|t| uses_coupon(t)) {
            bad(
                "coupon",
                "the message uses {{coupon_…}} variables but no coupon is chosen".into(),
            );
        }
    }

    pub fn quiet(&self) -> Option<Quiet> {
        let q = self.quiet_hours.as_ref()?;
        Some(Quiet {
            from: parse_hhmm(&q.from)?,
            to: parse_hhmm(&q.to)?,
        })
    }

    pub fn delay(&self) -> i64 {
        self.delay_minutes as i64 * MINUTE
    }

    pub fn wants(&self, trigger: Trigger) -> bool {
        self.triggers.contains(&trigger)
    }
}

fn is_code_text(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn valid_code(s: &str) -> bool {
    !s.is_empty() && s.len() <= 40 && is_code_text(s)
}

fn check_variables(field: &str, text: &str, bad: &mut dyn FnMut(&str, String)) {
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            bad(field, "a {{ is not closed by }}".into());
            return;
        };
        let name = after[..end].trim();
        if !VARIABLES.contains(&name) {
            bad(
                field,
                format!(
                    "unknown variable {{{{{name}}}}}; known: {}",
                    VARIABLES.join(", ")
                ),
            );
        }
        rest = &after[end + 2..];
    }
}

/// Replaces `{{variable}}` with its value (unknown or absent variables become empty).
pub fn render(text: &str, value: &dyn Fn(&str) -> Option<String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        match after.find("}}") {
            Some(end) => {
                out.push_str(&value(after[..end].trim()).unwrap_or_default());
                rest = &after[end + 2..];
            }
            None => {
                out.push_str(&rest[start..]);
                rest = "";
            }
        }
    }
    out.push_str(rest);
    out
}

/// Why a recovery was not sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// The store turned recovery (or this trigger) off.
    Disabled,
    /// The customer ordered after the trigger.
    Purchased,
    /// The customer sent an opt-out keyword (STOP, PARAR, SAIR …).
    StopKeyword,
    /// The customer stopped marketing messages (Meta error 131050) and only a template was possible.
    MarketingOptOut,
    /// The per-customer frequency cap was reached.
    FrequencyCap,
    /// The customer used a recovery coupon recently.
    AfterCoupon,
    /// Outside the customer service window and no template configured.
    NoTemplate,
    /// Meta does not deliver marketing templates to +1 (US) numbers.
    UsMarketingNotDelivered,
    /// The wallet cannot cover the message.
    InsufficientFunds,
    /// The wallet is below the minimum balance for free service messages.
    MinBalanceForFreeService,
    /// Another block from the quote.
    QuoteBlocked,
    /// The message could not be sent (the sender refused it).
    SendFailed,
    /// The instance stopped while sending; not retried, so the customer never gets it twice.
    Interrupted,
    /// It fell due more than a day ago (the service was down): too late to be welcome.
    TooLate,
}

impl SkipReason {
    pub fn as_str(self) -> &'static str {
        match self {
            SkipReason::Disabled => "disabled",
            SkipReason::Purchased => "purchased",
            SkipReason::StopKeyword => "stop_keyword",
            SkipReason::MarketingOptOut => "marketing_opt_out",
            SkipReason::FrequencyCap => "frequency_cap",
            SkipReason::AfterCoupon => "after_coupon",
            SkipReason::NoTemplate => "no_template",
            SkipReason::UsMarketingNotDelivered => "us_marketing_not_delivered",
            SkipReason::InsufficientFunds => "insufficient_funds",
            SkipReason::MinBalanceForFreeService => "min_balance_for_free_service",
            SkipReason::QuoteBlocked => "quote_blocked",
            SkipReason::SendFailed => "send_failed",
            SkipReason::Interrupted => "interrupted",
            SkipReason::TooLate => "too_late",
        }
    }

    /// The reason for a block code of a quote.
    pub fn of_block(code: &str) -> SkipReason {
        match code {
            "marketing_opt_out" => SkipReason::MarketingOptOut,
            "us_marketing_not_delivered" => SkipReason::UsMarketingNotDelivered,
            "insufficient_funds" => SkipReason::InsufficientFunds,
            "min_balance_for_free_service" => SkipReason::MinBalanceForFreeService,
            "customer_service_window_closed" => SkipReason::NoTemplate,
            _ => SkipReason::QuoteBlocked,
        }
    }
}

/// How a recovery message goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A free-form message inside the customer service window.
    FreeForm,
    /// The store's marketing template.
    Template,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::FreeForm => "free_form",
            Channel::Template => "template",
        }
    }
}

/// What the service knows about the customer when a recovery falls due.
#[derive(Clone, Debug, Default)]
pub struct CustomerFacts {
    /// An order at or after the trigger's first interaction.
    pub bought_since_trigger: bool,
    pub stop_keyword: bool,
    /// Meta error 131050 seen for this user.
    pub marketing_opt_out: bool,
    /// When earlier recovery messages were sent to this customer.
    pub sent_at: Vec<Instant>,
    /// When the customer last used a recovery coupon.
    pub coupon_used_at: Option<Instant>,
    /// The customer's last message to the business.
    pub last_inbound: Option<Instant>,
    /// The number is a +1 US number.
    pub us_number: bool,
}

/// The decision for a due recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Send(Channel),
    Skip(SkipReason),
    /// Quiet hours: look again at this instant.
    Defer(Instant),
}

/// Decides a recovery that fell due, at `now`, in the store's calendar. The order of the checks
/// is the order a store owner reads the reasons in: disabled, bought, asked to stop, cooldown
/// after a coupon, frequency cap, quiet hours, then the channel (window open: free-form; else
/// the marketing template, subject to the opt-out and the US rule).
pub fn decide(
    config: &RecoveryConfig,
    trigger: Trigger,
    facts: &CustomerFacts,
    now: Instant,
    calendar: &Calendar,
) -> Decision {
    if !config.enabled || !config.wants(trigger) {
        return Decision::Skip(SkipReason::Disabled);
    }
    if facts.bought_since_trigger {
        return Decision::Skip(SkipReason::Purchased);
    }
    if facts.stop_keyword {
        return Decision::Skip(SkipReason::StopKeyword);
    }
    if config.after_coupon_days > 0 {
        if let Some(used) = facts.coupon_used_at {
            if now - used < config.after_coupon_days as i64 * DAY {
                return Decision::Skip(SkipReason::AfterCoupon);
            }
        }
    }
    let period = config.frequency.days as i64 * DAY;
    let recent = facts
        .sent_at
        .iter()
        .filter(|&&t| t <= now && now - t < period)
        .count();
    if recent >= config.frequency.max as usize {
        return Decision::Skip(SkipReason::FrequencyCap);
    }
    if let Some(next) = config.quiet().and_then(|q| end_of_quiet(q, now, calendar)) {
        return Decision::Defer(next);
    }
    let window_open = facts
        .last_inbound
        .is_some_and(|t| t <= now && now - t < DAY);
    if window_open && config.message.is_some() {
        return Decision::Send(Channel::FreeForm);
    }
    if config.template.is_none() {
        return Decision::Skip(SkipReason::NoTemplate);
    }
    if facts.us_number {
        return Decision::Skip(SkipReason::UsMarketingNotDelivered);
    }
    if facts.marketing_opt_out {
        return Decision::Skip(SkipReason::MarketingOptOut);
    }
    Decision::Send(Channel::Template)
}

/// When `now` is inside the quiet hours, the first instant after them; else `None`.
pub fn end_of_quiet(q: Quiet, now: Instant, calendar: &Calendar) -> Option<Instant> {
    let (date, minute) = calendar.wall_clock(now);
    if !q.contains(minute) {
        return None;
    }
    // The quiet period ends at `to` today, or tomorrow when it spans midnight and has not.
    let end_date = if q.from > q.to && minute >= q.from {
        crate::time::LocalDate(date.0 + 1)
    } else {
        date
    };
    Some(calendar.at_wall_clock(end_date, q.to).max(now + 1))
}

/// A coupon's settings now (the store may change them after codes went out; the new
/// settings are the ones that apply).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CouponRules {
    #[serde(default = "yes")]
    pub active: bool,
    /// Percent off the order (0–100), or …
    #[serde(default)]
    pub percent_off: Option<Decimal>,
    /// … a fixed amount off, in the order's currency.
    #[serde(default)]
    pub amount_off: Option<Decimal>,
    /// The order must be at least this much.
    #[serde(default)]
    pub min_order_total: Option<Decimal>,
    /// Hours after the message was sent; `None`: no expiry.
    #[serde(default)]
    pub expiry_hours: Option<u32>,
}

impl CouponRules {
    pub fn validate(&self) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.into(),
                message: message.into(),
            })
        };
        match (self.percent_off, self.amount_off) {
            (Some(_), Some(_)) => bad("percent_off", "give percent_off or amount_off, not both"),
            (None, None) => bad("percent_off", "give percent_off or amount_off"),
            (Some(p), None) if p <= Decimal::ZERO || p > Decimal::ONE_HUNDRED => {
                bad("percent_off", "must be more than 0 and at most 100")
            }
            (None, Some(a)) if a <= Decimal::ZERO => bad("amount_off", "must be positive"),
            _ => {}
        }
        if self.min_order_total.is_some_and(|m| m < Decimal::ZERO) {
            bad("min_order_total", "must not be negative");
        }
        if self.expiry_hours == Some(0) {
            bad(
                "expiry_hours",
                "must be at least 1 (leave it out for no expiry)",
            );
        }
        errors
    }
}

/// A code that was handed out with a recovery message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedCode {
    pub code: String,
    /// The customer it was sent to.
    pub user: String,
    pub sent_at: Instant,
    /// Single-use codes (unique per customer) are spent by their first redemption.
    pub single_use: bool,
    pub redeemed: bool,
}

/// Why a redemption is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    Inactive,
    Expired,
    AlreadyUsed,
    OtherCustomer,
    BelowMinimum,
}

impl Refusal {
    pub fn message(self) -> &'static str {
        match self {
            Refusal::Inactive => "the coupon is turned off",
            Refusal::Expired => "the coupon expired",
            Refusal::AlreadyUsed => "this single-use code was used already",
            Refusal::OtherCustomer => "this code was sent to another customer",
            Refusal::BelowMinimum => "the order is below the coupon's minimum",
        }
    }
}

/// Judges a redemption by the coupon's *current* rules; returns the discount.
pub fn redeem(
    rules: &CouponRules,
    issued: &IssuedCode,
    user: Option<&str>,
    order_total: Decimal,
    at: Instant,
) -> Result<Decimal, Refusal> {
    if !rules.active {
        return Err(Refusal::Inactive);
    }
    if let Some(h) = rules.expiry_hours {
        if at >= issued.sent_at + h as i64 * HOUR {
            return Err(Refusal::Expired);
        }
    }
    if issued.single_use {
        if issued.redeemed {
            return Err(Refusal::AlreadyUsed);
        }
        if user.is_some_and(|u| u != issued.user) {
            return Err(Refusal::OtherCustomer);
        }
    }
    if rules.min_order_total.is_some_and(|m| order_total < m) {
        return Err(Refusal::BelowMinimum);
    }
    let discount = match (rules.percent_off, rules.amount_off) {
        // Half away from zero, as shops and tills round a discount.
        (Some(p), _) => (order_total * p / Decimal::ONE_HUNDRED)
            .round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero),
        (None, Some(a)) => a.min(order_total),
        (None, None) => Decimal::ZERO,
    };
    Ok(discount)
}

/// A sent recovery message, for attribution.
#[derive(Clone, Debug)]
pub struct SentRecovery {
    pub id: String,
    pub user: String,
    pub sent_at: Instant,
    pub coupon_code: Option<String>,
}

/// An order reported by the store.
#[derive(Clone, Debug)]
pub struct Order {
    pub id: String,
    pub user: String,
    pub at: Instant,
    pub total: Decimal,
    pub coupon: Option<String>,
    /// The recovery id carried by the recovery link, when the store passes it on.
    pub recovery: Option<String>,
}

/// How an order was tied to a recovery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    Link,
    Coupon,
    Window,
}

/// Ties orders to the recovery messages that won them back: through the recovery link first,
/// then the coupon code (for the customer it was sent to), then the latest message to the same
/// customer within `window_secs` before the order. Each order counts once and each recovery at
/// most once (its first attributed order).
pub fn attribute(
    sent: &[SentRecovery],
    orders: &[Order],
    window_secs: i64,
) -> Vec<(usize, usize, Attribution)> {
    let mut taken = vec![false; sent.len()];
    let mut out = Vec::new();
    let mut orders_by_time: Vec<usize> = (0..orders.len()).collect();
    orders_by_time.sort_by_key(|&i| (orders[i].at, orders[i].id.clone()));
    for oi in orders_by_time {
        let o = &orders[oi];
        let by_link = o
            .recovery
            .as_ref()
            .and_then(|r| sent.iter().position(|s| &s.id == r))
            .filter(|&si| !taken[si] && sent[si].sent_at <= o.at);
        let by_coupon = || {
            let code = o.coupon.as_ref()?;
            sent.iter()
                .enumerate()
                .filter(|(si, s)| {
                    !taken[*si]
                        && s.user == o.user
                        && s.sent_at <= o.at
                        && s.coupon_code.as_ref() == Some(code)
                })
                .max_by_key(|(_, s)| s.sent_at)
                .map(|(si, _)| si)
        };
        let by_window = || {
            sent.iter()
                .enumerate()
                .filter(|(si, s)| {
                    !taken[*si]
                        && s.user == o.user
                        && s.sent_at <= o.at
                        && o.at - s.sent_at < window_secs
                })
                .max_by_key(|(_, s)| s.sent_at)
                .map(|(si, _)| si)
        };
        let found = by_link
            .map(|si| (si, Attribution::Link))
            .or_else(|| by_coupon().map(|si| (si, Attribution::Coupon)))
            .or_else(|| by_window().map(|si| (si, Attribution::Window)));
        if let Some((si, how)) = found {
            taken[si] = true;
            out.push((si, oi, how));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{parse_instant, LocalDate};

    fn config() -> RecoveryConfig {
        RecoveryConfig {
            enabled: true,
            phone: "pn-1".into(),
            delay_minutes: 30,
            triggers: both_triggers(),
            coupon: CouponChoice::Unique {
                prefix: "VOLTA".into(),
            },
            coupon_expiry_hours: Some(24),
            frequency: default_cap(),
            after_coupon_days: 30,
            quiet_hours: Some(QuietHours {
                from: "21:00".into(),
                to: "09:00".into(),
            }),
            attribution_hours: 72,
            message: Some("Oi {{name}}, use {{coupon_code}} até {{coupon_expiry}}".into()),
            template: Some(TemplateChoice {
                name: "recupera".into(),
                language: "pt_BR".into(),
                params: vec!["{{name}}".into(), "{{coupon_code}}".into()],
            }),
            link: Some("https://loja.example/c?cupom={{coupon_code}}".into()),
        }
    }

    fn at(text: &str) -> Instant {
        parse_instant(text).unwrap()
    }

    fn sp() -> Calendar {
        Calendar::new("America/Sao_Paulo").unwrap()
    }

    #[test]
    fn delay_outside_5_to_60_minutes_is_rejected_by_name() {
        for bad in [0, 4, 61, 120] {
            let c = RecoveryConfig {
                delay_minutes: bad,
                ..config()
            };
            let e = c.validate();
            assert_eq!(e.len(), 1, "{e:?}");
            assert_eq!(e[0].field, "delay_minutes");
            assert!(e[0].message.contains("between 5 and 60"));
        }
        for good in [5, 60] {
            let c = RecoveryConfig {
                delay_minutes: good,
                ..config()
            };
            assert!(c.validate().is_empty());
        }
    }

    #[test]
    fn unknown_variables_and_bad_times_are_named() {
        let c = RecoveryConfig {
            message: Some("hi {{nome}}".into()),
            quiet_hours: Some(QuietHours {
                from: "25:00".into(),
                to: "9".into(),
            }),
            coupon: CouponChoice::None,
            link: None,
            template: None,
            ..config()
        };
        let fields: Vec<String> = c.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            vec!["quiet_hours.from", "quiet_hours.to", "message"],
            "{:?}",
            c.validate()
        );
        let c = RecoveryConfig {
            coupon: CouponChoice::None,
            ..config()
        };
        assert_eq!(c.validate()[0].field, "coupon");
    }

    #[test]
    fn render_fills_known_variables() {
        let text = render("Oi {{ name }}, {{coupon_code}}!{{x}}", &|v| match v {
            "name" => Some("Ana".into()),
            "coupon_code" => Some("VOLTA1".into()),
            _ => None,
        });
        assert_eq!(text, "Oi Ana, VOLTA1!");
    }

    #[test]
    fn checks_run_in_order_and_pick_the_channel() {
        let c = config();
        let now = at("2026-11-20T15:00:00Z"); // 12:00 in São Paulo
        let open = CustomerFacts {
            last_inbound: Some(now - 40 * MINUTE),
            ..Default::default()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &open, now, &sp()),
            Decision::Send(Channel::FreeForm)
        );
        let closed = CustomerFacts::default();
        assert_eq!(
            decide(&c, Trigger::Cart, &closed, now, &sp()),
            Decision::Send(Channel::Template)
        );
        let us = CustomerFacts {
            us_number: true,
            ..Default::default()
        };
        assert_eq!(
            decide(&c, Trigger::Cart, &us, now, &sp()),
            Decision::Skip(SkipReason::UsMarketingNotDelivered)
        );
        // The opt-out blocks the template but not free-form inside the window.
        let opted = CustomerFacts {
            marketing_opt_out: true,
            ..open.clone()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &opted, now, &sp()),
            Decision::Send(Channel::FreeForm)
        );
        let opted_closed = CustomerFacts {
            marketing_opt_out: true,
            ..Default::default()
        };
        assert_eq!(
            decide(&c, Trigger::Cart, &opted_closed, now, &sp()),
            Decision::Skip(SkipReason::MarketingOptOut)
        );
        let bought = CustomerFacts {
            bought_since_trigger: true,
            stop_keyword: true,
            ..Default::default()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &bought, now, &sp()),
            Decision::Skip(SkipReason::Purchased)
        );
        let stop = CustomerFacts {
            stop_keyword: true,
            ..open.clone()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &stop, now, &sp()),
            Decision::Skip(SkipReason::StopKeyword)
        );
        let capped = CustomerFacts {
            sent_at: vec![now - 6 * DAY],
            ..open.clone()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &capped, now, &sp()),
            Decision::Skip(SkipReason::FrequencyCap)
        );
        let cap_over = CustomerFacts {
            sent_at: vec![now - 7 * DAY],
            ..open.clone()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &cap_over, now, &sp()),
            Decision::Send(Channel::FreeForm)
        );
        let coupon = CustomerFacts {
            coupon_used_at: Some(now - 29 * DAY),
            ..open.clone()
        };
        assert_eq!(
            decide(&c, Trigger::Bot, &coupon, now, &sp()),
            Decision::Skip(SkipReason::AfterCoupon)
        );
        let off = RecoveryConfig {
            triggers: vec![Trigger::Bot],
            ..c.clone()
        };
        assert_eq!(
            decide(&off, Trigger::Cart, &open, now, &sp()),
            Decision::Skip(SkipReason::Disabled)
        );
    }

    #[test]
    fn quiet_hours_defer_to_the_local_morning() {
        let c = config();
        // 23:30 in São Paulo (UTC−3) → 09:00 the next local day.
        let late = at("2026-11-21T02:30:00Z");
        assert_eq!(
            decide(&c, Trigger::Cart, &CustomerFacts::default(), late, &sp()),
            Decision::Defer(at("2026-11-21T12:00:00Z"))
        );
        // 06:00 local → 09:00 the same day.
        let early = at("2026-11-21T09:00:00Z");
        assert_eq!(
            end_of_quiet(c.quiet().unwrap(), early, &sp()),
            Some(at("2026-11-21T12:00:00Z"))
        );
        // 09:00 sharp is allowed; 20:59 too.
        assert_eq!(
            end_of_quiet(c.quiet().unwrap(), at("2026-11-21T12:00:00Z"), &sp()),
            None
        );
        assert_eq!(
            end_of_quiet(c.quiet().unwrap(), at("2026-11-21T23:59:00Z"), &sp()),
            None
        );
        // A quiet period within one day (13:00–14:00).
        let q = Quiet {
            from: 13 * 60,
            to: 14 * 60,
        };
        assert_eq!(
            end_of_quiet(q, at("2026-11-21T16:10:00Z"), &sp()),
            Some(at("2026-11-21T17:00:00Z"))
        );
        let (d, m) = sp().wall_clock(at("2026-11-21T16:10:00Z"));
        assert_eq!((d, m), (LocalDate::ymd(2026, 11, 21), 13 * 60 + 10));
    }

    #[test]
    fn coupons_are_judged_by_their_current_rules() {
        let sent = at("2026-11-20T15:00:00Z");
        let code = IssuedCode {
            code: "VOLTA12345678".into(),
            user: "5511999990001".into(),
            sent_at: sent,
            single_use: true,
            redeemed: false,
        };
        let mut rules = CouponRules {
            active: true,
            percent_off: Some(Decimal::TEN),
            amount_off: None,
            min_order_total: None,
            expiry_hours: Some(24),
        };
        assert!(rules.validate().is_empty());
        let total = Decimal::new(15990, 2);
        let user = Some("5511999990001");
        assert_eq!(
            redeem(&rules, &code, user, total, sent + 23 * HOUR),
            Ok(Decimal::new(1599, 2))
        );
        assert_eq!(
            redeem(&rules, &code, user, total, sent + 24 * HOUR),
            Err(Refusal::Expired)
        );
        // The store lengthens the coupon after it was sent: the new rule applies.
        rules.expiry_hours = Some(48);
        assert!(redeem(&rules, &code, user, total, sent + 25 * HOUR).is_ok());
        rules.min_order_total = Some(Decimal::from(200));
        assert_eq!(
            redeem(&rules, &code, user, total, sent + HOUR),
            Err(Refusal::BelowMinimum)
        );
        rules.min_order_total = None;
        assert_eq!(
            redeem(&rules, &code, Some("5511000000000"), total, sent + HOUR),
            Err(Refusal::OtherCustomer)
        );
        let used = IssuedCode {
            redeemed: true,
            ..code.clone()
        };
        assert_eq!(
            redeem(&rules, &used, user, total, sent + HOUR),
            Err(Refusal::AlreadyUsed)
        );
        rules.active = false;
        assert_eq!(
            redeem(&rules, &code, user, total, sent + HOUR),
            Err(Refusal::Inactive)
        );
    }

    #[test]
    fn attribution_prefers_link_then_coupon_then_window_and_counts_once() {
        let t0 = at("2026-11-20T15:00:00Z");
        let sent = vec![
            SentRecovery {
                id: "r1".into(),
                user: "a".into(),
                sent_at: t0,
                coupon_code: Some("C1".into()),
            },
            SentRecovery {
                id: "r2".into(),
                user: "b".into(),
                sent_at: t0,
                coupon_code: None,
            },
            SentRecovery {
                id: "r3".into(),
                user: "c".into(),
                sent_at: t0,
                coupon_code: None,
            },
        ];
        let order =
            |id: &str, user: &str, dt: i64, coupon: Option<&str>, rec: Option<&str>| Order {
                id: id.into(),
                user: user.into(),
                at: t0 + dt,
                total: Decimal::from(100),
                coupon: coupon.map(Into::into),
                recovery: rec.map(Into::into),
            };
        let orders = vec![
            order("o1", "a", HOUR, Some("C1"), None),
            order("o2", "a", 2 * HOUR, Some("C1"), None), // r1 already won: not counted twice
            order("o3", "b", 71 * HOUR, None, None),      // inside 72 h
            order("o4", "c", 73 * HOUR, None, None),      // outside the window
            order("o5", "z", 5 * HOUR, None, Some("r3")), // through r3's link
            order("o6", "c", -HOUR, None, None),          // before the message
        ];
        let got = attribute(&sent, &orders, 72 * HOUR);
        let names: Vec<(&str, &str, Attribution)> = got
            .iter()
            .map(|&(s, o, how)| (sent[s].id.as_str(), orders[o].id.as_str(), how))
            .collect();
        assert_eq!(
            names,
            vec![
                ("r1", "o1", Attribution::Coupon),
                ("r3", "o5", Attribution::Link),
                ("r2", "o3", Attribution::Window),
            ]
        );
    }
}
