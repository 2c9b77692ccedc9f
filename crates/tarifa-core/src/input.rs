//! Input lines: tarifa's normalized events and Meta's raw Cloud API webhook bodies.
//!
//! One JSON object per line. A line with `"object": "whatsapp_business_account"` is a raw webhook
//! (it may carry several messages and statuses); any other line is a normalized event
//! (`"type": "inbound" | "outbound" | "status" | "template_category" | "account_update"`). Both
//! kinds may be mixed in one file. Parsing never panics: a bad line gives an [`InputError`] naming
//! the field.
//!
//! Every event a webhook yields has a normalized form, so that a service can store each one on its
//! own ([`to_json_line`] writes it, [`parse_line`] reads back an equal event):
//!
//! * `status` may carry what Meta's status webhook said: `business` and `phone` (with `recipient`
//!   they let the engine rate the message from the status alone, as for a webhook), `pricing`
//!   (Meta's object and names: `billable`, `pricing_model`, `category`, `type`), `conversation`
//!   `{"id", "origin": "<category>"}` and `errors` `[131050, …]` (the codes).
//! * `account_update` is `at`, `business`, Meta's `event` and, for the two events that matter to
//!   pricing, Meta's own object: `volume_tier_info` or `auth_international_rate_eligibility`.
//!
//! Unknown values of Meta's open vocabularies (a new `pricing.category`, `origin.type` or
//! `pricing_model`) are `None` in webhooks but errors in normalized lines, tarifa's own format.

use crate::category::{BilledCategory, MetaPricingType, PricingModel, TemplateCategory};
use crate::raw::{
    GroupRef, RawAgent, RawAuthIntl, RawEntry, RawExceptionCountry, RawGroup, RawLine,
    RawLineConversation, RawPricing, RawStatus, RawTemplate, RawValue, RawVolumeTier, Scalar,
    TemplateField,
};
use crate::time::{parse_instant, Instant};
use serde::de::IgnoredAny;
use std::borrow::Cow;
use std::fmt;

/// Client platform of an inbound message (C-9: only Android/iOS entry points qualify).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Platform {
    Unknown,
    Android,
    Ios,
    Web,
}

/// A message from a user to the business.
#[derive(Clone, Debug, PartialEq)]
pub struct Inbound<'a> {
    pub id: Cow<'a, str>,
    pub at: Instant,
    pub business: Cow<'a, str>,
    pub phone: Cow<'a, str>,
    pub user: Cow<'a, str>,
    /// Came through a click-to-WhatsApp ad or a Page call-to-action (`referral`).
    pub referral: bool,
    pub platform: Platform,
    /// For Groups API traffic: the group the message was written in (D-10).
    pub group: Option<Cow<'a, str>>,
    /// The text of a short message (at most [`SHORT_TEXT`] characters, such as an opt-out
    /// keyword: STOP, PARAR …). Longer texts are dropped: tarifa keeps no message content.
    pub text: Option<Cow<'a, str>>,
}

/// The longest inbound text kept (see [`Inbound::text`]).
pub const SHORT_TEXT: usize = 32;

/// `text` if it is short enough to keep.
fn short_text(text: Option<Cow<'_, str>>) -> Option<Cow<'_, str>> {
    text.filter(|t| !t.trim().is_empty() && t.chars().count() <= SHORT_TEXT)
}

/// A message from the business to a user (or a group).
#[derive(Clone, Debug, PartialEq)]
pub struct Outbound<'a> {
    pub id: Cow<'a, str>,
    pub at: Instant,
    pub business: Cow<'a, str>,
    pub phone: Cow<'a, str>,
    pub user: Cow<'a, str>,
    /// `None`: a non-template (free-form) message.
    pub template: Option<(Cow<'a, str>, TemplateCategory)>,
    /// Meta Business Agent reply and its token count (D-13, D-14).
    pub agent_tokens: Option<u64>,
    /// Groups API: the group and its members' numbers (D-10).
    pub group: Option<(Cow<'a, str>, Vec<Cow<'a, str>>)>,
}

/// Delivery state reported for a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeliveryStatus {
    Sent,
    Delivered,
    Read,
    Failed,
}

/// What Meta's webhook said about the price (kept for reconciliation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct MetaPricing {
    pub billable: Option<bool>,
    pub model: Option<PricingModel>,
    pub category: Option<BilledCategory>,
    pub pricing_type: Option<MetaPricingType>,
}

impl<'a> Outbound<'a> {
    /// A one-to-one message the business plans to send (to quote or hold its price): a template
    /// `(name, category)`, or a free-form message with `None`. The event [`parse_line`] reads from
    /// `{"type": "outbound", "id", "at", "business", "phone", "user", "template": {"name",
    /// "category"}}`, without writing the line.
    pub fn planned(
        id: &'a str,
        at: Instant,
        business: &'a str,
        phone: &'a str,
        user: &'a str,
        template: Option<(&'a str, TemplateCategory)>,
    ) -> Outbound<'a> {
        Outbound {
            id: Cow::Borrowed(id),
            at,
            business: Cow::Borrowed(business),
            phone: Cow::Borrowed(phone),
            user: phone_number(Cow::Borrowed(user)),
            template: template.map(|(name, category)| (Cow::Borrowed(name), category)),
            agent_tokens: None,
            group: None,
        }
    }
}

/// A status of an outbound message.
#[derive(Clone, Debug, PartialEq)]
pub struct Status<'a> {
    pub id: Cow<'a, str>,
    pub at: Instant,
    pub status: DeliveryStatus,
    /// For group messages: the member this status is about; for webhooks: `recipient_id`, or
    /// `recipient_participant_id` for a group's message. A phone number, as digits.
    pub recipient: Option<Cow<'a, str>>,
    /// Groups API: the group of the message (`recipient_id` with `recipient_type: "group"`).
    pub group: Option<Cow<'a, str>>,
    /// From webhooks: the WABA (entry id) and business phone number id.
    pub business: Option<Cow<'a, str>>,
    pub phone: Option<Cow<'a, str>>,
    pub pricing: Option<MetaPricing>,
    /// Meta's `conversation.id` (W-1, W-4: from v24.0 only inside an entry point window).
    pub conversation_id: Option<Cow<'a, str>>,
    /// Meta's `conversation.origin.type`; `None` when absent or not a known category.
    pub conversation_origin: Option<BilledCategory>,
    /// Meta's `errors[].code` (e.g. 131049, 131050: the user stopped marketing messages), kept
    /// so that the service can tell why a message failed; the rating only needs `Failed`.
    pub error_codes: Vec<u32>,
}

impl<'a> Status<'a> {
    /// Message `id` delivered at `at`, and nothing more (no recipient, business or pricing): what
    /// a service adds to price a message as if delivered.
    pub fn delivered(id: &'a str, at: Instant) -> Status<'a> {
        Status {
            id: Cow::Borrowed(id),
            at,
            status: DeliveryStatus::Delivered,
            recipient: None,
            group: None,
            business: None,
            phone: None,
            pricing: None,
            conversation_id: None,
            conversation_origin: None,
            error_codes: Vec::new(),
        }
    }
}

/// Meta re-categorised a template from `at` on (1-5, webhook `template_category_update`).
#[derive(Clone, Debug, PartialEq)]
pub struct TemplateCategoryChange<'a> {
    pub at: Instant,
    pub business: Cow<'a, str>,
    pub template: Cow<'a, str>,
    pub category: TemplateCategory,
}

/// Meta's `account_update` webhook. Rating does not use it (tiers are computed from the tier
/// card, V-7; eligibility comes from the config, AI-5), but the service shows it.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountUpdate<'a> {
    /// The WABA (entry id).
    pub business: Cow<'a, str>,
    /// The entry `time`.
    pub at: Instant,
    pub change: AccountChange<'a>,
}

/// `value.event` of an `account_update` webhook: `VOLUME_BASED_PRICING_TIER_UPDATE`.
pub const VOLUME_TIER_EVENT: &str = "VOLUME_BASED_PRICING_TIER_UPDATE";
/// `value.event` of an `account_update` webhook: `AUTH_INTL_PRICE_ELIGIBILITY_UPDATE`.
pub const AUTH_INTL_EVENT: &str = "AUTH_INTL_PRICE_ELIGIBILITY_UPDATE";

/// What an `account_update` says, by its `event`.
#[derive(Clone, Debug, PartialEq)]
pub enum AccountChange<'a> {
    /// [`VOLUME_TIER_EVENT`], from `value.volume_tier_info` (spec §9.2 (k)): Meta's volume tier
    /// of a category (as Meta writes it, e.g. `UTILITY`), e.g. `25000001:50000000`.
    VolumeTier {
        category: Cow<'a, str>,
        tier: Cow<'a, str>,
        /// `2025-11`
        effective_month: Option<Cow<'a, str>>,
        /// `India`
        region: Option<Cow<'a, str>>,
    },
    /// [`AUTH_INTL_EVENT`], from `value.auth_international_rate_eligibility` (spec §9.2 (l)):
    /// authentication-international rates apply from `start`, in the listed countries
    /// (country code, start) from their own start.
    AuthInternationalEligibility {
        start: Option<Instant>,
        exceptions: Vec<(Cow<'a, str>, Instant)>,
    },
    /// Any other `event`, by name (never one of the two above).
    Other(Cow<'a, str>),
}

impl AccountChange<'_> {
    /// The webhook's `event` name.
    pub fn event(&self) -> &str {
        match self {
            AccountChange::VolumeTier { .. } => VOLUME_TIER_EVENT,
            AccountChange::AuthInternationalEligibility { .. } => AUTH_INTL_EVENT,
            AccountChange::Other(name) => name,
        }
    }
}

/// One event of the input.
#[derive(Clone, Debug, PartialEq)]
pub enum Event<'a> {
    Inbound(Inbound<'a>),
    Outbound(Outbound<'a>),
    Status(Status<'a>),
    TemplateCategory(TemplateCategoryChange<'a>),
    AccountUpdate(AccountUpdate<'a>),
    /// A webhook the rating does not use (another `field`, a status such as `deleted`);
    /// counted, not an error.
    Ignored,
}

/// Why a line was rejected: the field and the problem (the caller adds file and line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputError {
    /// Event id, when the line got far enough to have one.
    pub event_id: Option<String>,
    pub message: String,
}

impl fmt::Display for InputError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.event_id {
            Some(id) => write!(f, "event {id:?}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

impl std::error::Error for InputError {}

/// The longest id, business, phone number id or user a line may hold (bytes). Meta's ids are
/// well under 100; a longer value is a mistake or an attack, and is refused, not stored.
pub const MAX_FIELD_LEN: usize = 256;

fn error(id: Option<&str>, message: impl Into<String>) -> InputError {
    InputError {
        // An error names its event, but never echoes a long id whole.
        event_id: id.map(|id| match id.char_indices().nth(64) {
            Some((cut, _)) => format!("{}…", &id[..cut]),
            None => id.to_string(),
        }),
        message: message.into(),
    }
}

fn instant(
    value: Option<Scalar<'_>>,
    field: impl fmt::Display,
    id: Option<&str>,
) -> Result<Instant, InputError> {
    let at = match value {
        None => return Err(error(id, format!("missing field `{field}`"))),
        Some(Scalar::Int(v)) => v,
        Some(Scalar::Str(s)) => parse_instant(&s).ok_or_else(|| {
            error(
                id,
                format!("field `{field}`: {s:?} is not an RFC 3339 time (years 2000-2099) or Unix seconds"),
            )
        })?,
    };
    if !crate::time::in_range(at) {
        return Err(error(
            id,
            format!("field `{field}`: {at} (Unix seconds) is outside the years 2000-2099"),
        ));
    }
    Ok(at)
}

/// An error code: an integer (Meta's form) or its decimal text.
fn error_code(
    value: Option<Scalar<'_>>,
    field: impl fmt::Display,
    id: Option<&str>,
) -> Result<u32, InputError> {
    let bad = |text: String| error(id, format!("field `{field}`: {text} is not an error code"));
    match value {
        None => Err(error(id, format!("missing field `{field}`"))),
        Some(Scalar::Int(v)) => u32::try_from(v).map_err(|_| bad(v.to_string())),
        Some(Scalar::Str(s)) => s.parse().map_err(|_| bad(format!("{s:?}"))),
    }
}

/// A billed category in a normalized line: unknown text is an error there (tarifa's own format
/// should not lose a typo), while webhooks map it to `None` (Meta adds categories).
fn billed_category(
    text: Option<Cow<'_, str>>,
    field: &str,
    id: Option<&str>,
) -> Result<Option<BilledCategory>, InputError> {
    text.map(|t| {
        BilledCategory::parse(&t).ok_or_else(|| {
            error(
                id,
                format!("field `{field}`: {t:?} is not a billed category"),
            )
        })
    })
    .transpose()
}

/// A normalized status's `pricing`; like [`billed_category`], an unknown model is an error.
/// `type` keeps Meta's open vocabulary (anything unknown is `Other`, written back `"other"`).
fn line_pricing(p: RawPricing<'_>, id: Option<&str>) -> Result<MetaPricing, InputError> {
    let model = p
        .pricing_model
        .map(|m| {
            PricingModel::parse(&m).ok_or_else(|| {
                error(
                    id,
                    format!("field `pricing.pricing_model`: {m:?} is not NBP, CBP or PMP"),
                )
            })
        })
        .transpose()?;
    Ok(MetaPricing {
        billable: p.billable,
        model,
        category: billed_category(p.category, "pricing.category", id)?,
        pricing_type: p.pricing_type.as_deref().map(MetaPricingType::parse),
    })
}

/// `field` names the field in errors; it is written only when there is one (callers pass
/// `format_args!` paths, so the happy path formats nothing).
fn required<'a>(
    value: Option<Cow<'a, str>>,
    field: impl fmt::Display,
    id: Option<&str>,
) -> Result<Cow<'a, str>, InputError> {
    match value {
        Some(v) if v.len() > MAX_FIELD_LEN => Err(error(
            id,
            format!(
                "field `{field}`: {} bytes, at most {MAX_FIELD_LEN}",
                v.len()
            ),
        )),
        Some(v) if !v.is_empty() => Ok(v),
        Some(_) => Err(error(id, format!("field `{field}` is empty"))),
        None => Err(error(id, format!("missing field `{field}`"))),
    }
}

fn delivery_status(text: &str, id: Option<&str>) -> Result<Option<DeliveryStatus>, InputError> {
    Ok(Some(match text {
        "sent" => DeliveryStatus::Sent,
        "delivered" => DeliveryStatus::Delivered,
        "read" | "played" => DeliveryStatus::Read,
        "failed" => DeliveryStatus::Failed,
        // Statuses that say nothing about delivery or price.
        "deleted" | "warning" | "accepted" | "pending" | "held_for_quality_assessment" => {
            return Ok(None)
        }
        other => {
            return Err(error(
                id,
                format!("field `status`: {other:?} is not one of sent, delivered, read, failed"),
            ))
        }
    }))
}

/// Parses one line and hands its events to `sink` in line order. On error nothing from the line
/// has been handed over: a webhook body is validated whole before any of its events is emitted.
pub fn parse_line<'a>(line: &'a [u8], sink: &mut impl FnMut(Event<'a>)) -> Result<(), InputError> {
    // Most lines are flat normalized events: a hand-written scanner fills the same `RawLine`
    // several times faster than serde; anything unusual falls back to serde, which also words
    // the errors.
    if let Some(raw) = crate::fast_json::scan(line) {
        sink(normalized(raw)?);
        return Ok(());
    }
    let raw: RawLine<'a> =
        serde_json::from_slice(line).map_err(|e| error(None, format!("invalid JSON: {e}")))?;
    if let Some(object) = &raw.object {
        if object != "whatsapp_business_account" {
            return Err(error(
                None,
                format!("field `object`: {object:?} is not \"whatsapp_business_account\""),
            ));
        }
        let mut events = Vec::new();
        webhook(raw.entry.unwrap_or_default(), &mut events)?;
        events.into_iter().for_each(sink);
        return Ok(());
    }
    sink(normalized(raw)?);
    Ok(())
}

pub(crate) fn normalized(raw: RawLine<'_>) -> Result<Event<'_>, InputError> {
    let id_owned = raw.id.clone();
    let id = id_owned.as_deref();
    let kind = raw.kind.as_deref().ok_or_else(|| {
        error(
            id,
            "missing field `type` (inbound, outbound, status, template_category, account_update) or `object`",
        )
    })?;
    match kind {
        "inbound" => normalized_inbound(raw, id),
        "outbound" => normalized_outbound(raw, id),
        "status" => normalized_status(raw, id),
        "template_category" => normalized_template_category(raw, id),
        "account_update" => Ok(Event::AccountUpdate(AccountUpdate {
            at: instant(raw.at, "at", id)?,
            business: required(raw.business, "business", id)?,
            change: account_change(
                required(raw.event, "event", id)?,
                raw.volume_tier_info,
                raw.auth_international_rate_eligibility,
                "",
            )?,
        })),
        other => Err(error(
            id,
            format!(
                "field `type`: {other:?} is not inbound, outbound, status, template_category or account_update"
            ),
        )),
    }
}

/// A user's phone number as tarifa keeps it: the digits alone, so that one user is one user
/// however the number is written. Meta writes digits (`from`, `recipient_id`, `wa_id`); people
/// and their tools write `+55 11 98765-0001` or `(650) 555-1234`. Text that is not a number in
/// such a notation (a business-scoped user id, a group id, a name) is kept as written: the market
/// lookup then says it is not a phone number.
pub fn phone_number(text: Cow<'_, str>) -> Cow<'_, str> {
    let notation = |c: char| matches!(c, '+' | ' ' | '-' | '(' | ')' | '.');
    let digits = text.chars().filter(char::is_ascii_digit).count();
    if digits == text.len() || digits == 0 {
        return text;
    }
    if text.chars().all(|c| c.is_ascii_digit() || notation(c)) {
        return Cow::Owned(text.chars().filter(char::is_ascii_digit).collect());
    }
    text
}

/// The `user` of a message: required, unless it is a group message (then "" when absent).
fn user_or_group<'a>(
    group: bool,
    user: Option<Cow<'a, str>>,
    id: Option<&str>,
) -> Result<Cow<'a, str>, InputError> {
    match (group, user) {
        (true, None) => Ok(Cow::Borrowed("")),
        (_, user) => required(user, "user", id).map(phone_number),
    }
}

fn normalized_inbound<'a>(raw: RawLine<'a>, id: Option<&str>) -> Result<Event<'a>, InputError> {
    let platform = match raw.platform.as_deref() {
        None => Platform::Unknown,
        Some("android") => Platform::Android,
        Some("ios") => Platform::Ios,
        Some("web") | Some("desktop") => Platform::Web,
        Some(other) => {
            return Err(error(
                id,
                format!("field `platform`: {other:?} is not android, ios or web"),
            ))
        }
    };
    let group = match raw.group {
        None => None,
        Some(GroupRef::Id(g)) => Some(g),
        Some(GroupRef::Full(g)) => Some(g.id),
    };
    let user = user_or_group(group.is_some(), raw.user, id)?;
    Ok(Event::Inbound(Inbound {
        at: instant(raw.at, "at", id)?,
        business: required(raw.business, "business", id)?,
        phone: required(raw.phone, "phone", id)?,
        user,
        referral: raw.referral.is_some(),
        platform,
        group,
        text: short_text(raw.text),
        id: required(raw.id, "id", None)?,
    }))
}

fn normalized_outbound<'a>(raw: RawLine<'a>, id: Option<&str>) -> Result<Event<'a>, InputError> {
    let template = match raw.template {
        None => None,
        Some(TemplateField::Name(_)) => {
            return Err(error(
                id,
                "field `template`: expected an object {\"name\", \"category\"}",
            ))
        }
        Some(TemplateField::Object(t)) => {
            let category = required(t.category, "template.category", id)?;
            let category = TemplateCategory::parse(&category).ok_or_else(|| {
                error(id, format!("field `template.category`: {category:?} is not marketing, utility or authentication"))
            })?;
            Some((t.name.unwrap_or(Cow::Borrowed("")), category))
        }
    };
    let agent_tokens = match raw.agent {
        None => None,
        Some(a) => Some(
            a.tokens
                .ok_or_else(|| error(id, "field `agent.tokens` is missing"))?,
        ),
    };
    if agent_tokens.is_some() && template.is_some() {
        return Err(error(
            id,
            "a Meta Business Agent message (`agent`) cannot be a template",
        ));
    }
    let group = match raw.group {
        None => None,
        Some(GroupRef::Id(_)) => {
            return Err(error(
                id,
                "field `group`: an outbound group message needs {\"id\", \"members\"}",
            ))
        }
        Some(GroupRef::Full(g)) => {
            if g.members.is_empty() {
                return Err(error(id, "field `group.members` is empty"));
            }
            Some((g.id, g.members.into_iter().map(phone_number).collect()))
        }
    };
    let user = user_or_group(group.is_some(), raw.user, id)?;
    Ok(Event::Outbound(Outbound {
        at: instant(raw.at, "at", id)?,
        business: required(raw.business, "business", id)?,
        phone: required(raw.phone, "phone", id)?,
        user,
        template,
        agent_tokens,
        group,
        id: required(raw.id, "id", None)?,
    }))
}

fn normalized_status<'a>(raw: RawLine<'a>, id: Option<&str>) -> Result<Event<'a>, InputError> {
    let status_text = required(raw.status, "status", id)?;
    let Some(status) = delivery_status(&status_text, id)? else {
        return Ok(Event::Ignored);
    };
    let pricing = raw.pricing.map(|p| line_pricing(p, id)).transpose()?;
    let conversation = raw.conversation.unwrap_or_default();
    Ok(Event::Status(Status {
        at: instant(raw.at, "at", id)?,
        status,
        recipient: raw.recipient.map(phone_number),
        group: match raw.group {
            None => None,
            Some(GroupRef::Id(g)) => Some(g),
            Some(GroupRef::Full(g)) => Some(g.id),
        },
        // With business, phone and recipient, the engine rates the message from the
        // status alone, as it does for a webhook status.
        business: raw.business,
        phone: raw.phone,
        pricing,
        conversation_id: conversation.id,
        conversation_origin: billed_category(conversation.origin, "conversation.origin", id)?,
        error_codes: raw.errors.unwrap_or_default(),
        id: required(raw.id, "id", None)?,
    }))
}

fn normalized_template_category<'a>(
    raw: RawLine<'a>,
    id: Option<&str>,
) -> Result<Event<'a>, InputError> {
    let template = match raw.template {
        Some(TemplateField::Name(n)) if !n.is_empty() => n,
        Some(TemplateField::Object(RawTemplate { name: Some(n), .. })) if !n.is_empty() => n,
        _ => return Err(error(id, "missing field `template` (the template name)")),
    };
    let category = required(raw.category, "category", id)?;
    let category = TemplateCategory::parse(&category).ok_or_else(|| {
        error(
            id,
            format!("field `category`: {category:?} is not a template category"),
        )
    })?;
    Ok(Event::TemplateCategory(TemplateCategoryChange {
        at: instant(raw.at, "at", id)?,
        business: required(raw.business, "business", id)?,
        template,
        category,
    }))
}

/// The change an `account_update` names by `event`, from its object as Meta writes it (webhooks
/// and normalized lines share the shape); `here` prefixes field paths in errors.
fn account_change<'a>(
    event: Cow<'a, str>,
    volume: Option<RawVolumeTier<'a>>,
    auth: Option<RawAuthIntl<'a>>,
    here: &str,
) -> Result<AccountChange<'a>, InputError> {
    let missing = |field: &str| error(None, format!("missing field `{here}{field}`"));
    match event.as_ref() {
        VOLUME_TIER_EVENT => {
            let v = volume.ok_or_else(|| missing("volume_tier_info"))?;
            let field = |name: &str| format!("{here}volume_tier_info.{name}");
            Ok(AccountChange::VolumeTier {
                category: required(v.pricing_category, field("pricing_category"), None)?,
                tier: required(v.tier, field("tier"), None)?,
                effective_month: v.effective_month,
                region: v.region,
            })
        }
        AUTH_INTL_EVENT => {
            let a = auth.ok_or_else(|| missing("auth_international_rate_eligibility"))?;
            let path = format!("{here}auth_international_rate_eligibility");
            let start = match a.start_time {
                None => None,
                t => Some(instant(t, format!("{path}.start_time"), None)?),
            };
            let exceptions = a
                .exception_countries
                .into_iter()
                .enumerate()
                .map(|(i, c)| {
                    let field = |name: &str| format!("{path}.exception_countries[{i}].{name}");
                    Ok((
                        required(c.country_code, field("country_code"), None)?,
                        instant(c.start_time, field("start_time"), None)?,
                    ))
                })
                .collect::<Result<Vec<_>, InputError>>()?;
            Ok(AccountChange::AuthInternationalEligibility { start, exceptions })
        }
        _ => Ok(AccountChange::Other(event)),
    }
}

/// `entry[e].changes[c]` in a webhook body, for error messages: written only when one is.
#[derive(Clone, Copy)]
struct ChangeAt {
    entry: usize,
    change: usize,
}

impl fmt::Display for ChangeAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "entry[{}].changes[{}]", self.entry, self.change)
    }
}

fn webhook<'a>(entries: Vec<RawEntry<'a>>, out: &mut Vec<Event<'a>>) -> Result<(), InputError> {
    for (e, entry) in entries.into_iter().enumerate() {
        let business = required(entry.id, format_args!("entry[{e}].id"), None)?;
        for (c, change) in entry.changes.into_iter().enumerate() {
            let here = ChangeAt {
                entry: e,
                change: c,
            };
            let Some(value) = change.value else {
                return Err(error(None, format!("missing field `{here}.value`")));
            };
            // `entry[e].time`, required by the changes that have no time of their own.
            let entry_time = || {
                entry
                    .time
                    .ok_or_else(|| error(None, format!("missing field `entry[{e}].time`")))
            };
            let event = match change.field.as_deref() {
                Some("messages") => {
                    webhook_messages(value, &business, here, out)?;
                    continue;
                }
                Some("template_category_update") => {
                    webhook_template_category(value, business.clone(), entry_time()?, here)?
                }
                Some("account_update") => {
                    let at = entry_time()?;
                    let event = required(value.event, format!("{here}.value.event"), None)?;
                    Event::AccountUpdate(AccountUpdate {
                        business: business.clone(),
                        at,
                        change: account_change(
                            event,
                            value.volume_tier_info,
                            value.auth_international_rate_eligibility,
                            &format!("{here}.value."),
                        )?,
                    })
                }
                _ => Event::Ignored,
            };
            out.push(event);
        }
    }
    Ok(())
}

/// A `template_category_update` change.
fn webhook_template_category<'a>(
    value: RawValue<'a>,
    business: Cow<'a, str>,
    at: Instant,
    here: ChangeAt,
) -> Result<Event<'a>, InputError> {
    let template = required(
        value.message_template_name,
        format!("{here}.value.message_template_name"),
        None,
    )?;
    let category = required(
        value.new_category,
        format!("{here}.value.new_category"),
        None,
    )?;
    let category = TemplateCategory::parse(&category).ok_or_else(|| {
        error(
            None,
            format!("field `{here}.value.new_category`: {category:?} is not a template category"),
        )
    })?;
    Ok(Event::TemplateCategory(TemplateCategoryChange {
        at,
        business,
        template,
        category,
    }))
}

/// Inbound message types that are not the user writing to the business, so they open no
/// customer service window and start no recovery. Meta opens the window "when a customer
/// messages you" (its pricing and messaging documentation); these are notices about the chat,
/// not messages: `system` (the user changed their number, their identity key changed), `revoke`
/// (the user deleted an earlier message) and `edit` (the user edited one; the earlier message
/// already opened its window). Newer API versions send edits and deletions as `unsupported`
/// with that `unsupported.type`, which counts the same. Every other type opens a window: `text`,
/// media, `location`, `contacts`, `interactive`, `button`, `reaction`, `order`, and
/// `unsupported` content of another kind (a poll: the user did write).
pub const NOT_USER_MESSAGES: [&str; 3] = ["system", "revoke", "edit"];

fn is_user_message(msg: &crate::raw::RawMessage<'_>) -> bool {
    let kind = match (msg.kind.as_deref(), &msg.unsupported) {
        (Some("unsupported"), Some(u)) => u.kind.as_deref(),
        (kind, _) => kind,
    };
    !kind.is_some_and(|k| NOT_USER_MESSAGES.contains(&k))
}

/// A `messages` change: its inbound messages, then its statuses.
#[allow(clippy::ptr_arg)] // `&Cow`: each event clones it, borrowed text stays borrowed.
fn webhook_messages<'a>(
    value: RawValue<'a>,
    business: &Cow<'a, str>,
    here: ChangeAt,
    out: &mut Vec<Event<'a>>,
) -> Result<(), InputError> {
    // Required non-empty like every id: a stored event must parse back (`to_json_line`).
    let phone = required(
        value.metadata.and_then(|m| m.phone_number_id),
        format_args!("{here}.value.metadata.phone_number_id"),
        None,
    )?;
    for (m, msg) in value.messages.into_iter().enumerate() {
        if !is_user_message(&msg) {
            out.push(Event::Ignored);
            continue;
        }
        let id = required(msg.id, format_args!("{here}.value.messages[{m}].id"), None)?;
        let at = instant(
            msg.timestamp,
            format_args!("{here}.value.messages[{m}].timestamp"),
            Some(&id),
        )?;
        let user = phone_number(required(
            msg.from,
            format_args!("{here}.value.messages[{m}].from"),
            Some(&id),
        )?);
        out.push(Event::Inbound(Inbound {
            id,
            at,
            business: business.clone(),
            phone: phone.clone(),
            user,
            referral: msg.referral.is_some(),
            platform: Platform::Unknown,
            group: msg.group_id,
            text: short_text(
                msg.text
                    .and_then(|t| t.body)
                    .or_else(|| msg.button.and_then(|b| b.text)),
            ),
        }));
    }
    for (s, st) in value.statuses.into_iter().enumerate() {
        let here = format_args!("{here}.value.statuses[{s}]");
        out.push(webhook_status(st, business, &phone, here)?);
    }
    Ok(())
}

/// One status of a `messages` change; `here` is its path, for errors.
fn webhook_status<'a>(
    st: RawStatus<'a>,
    business: &Cow<'a, str>,
    phone: &Cow<'a, str>,
    here: fmt::Arguments<'_>,
) -> Result<Event<'a>, InputError> {
    let id = required(st.id, format_args!("{here}.id"), None)?;
    let status_text = required(st.status, format_args!("{here}.status"), Some(&id))?;
    let Some(status) = delivery_status(&status_text, Some(&id))? else {
        return Ok(Event::Ignored);
    };
    let at = instant(st.timestamp, format_args!("{here}.timestamp"), Some(&id))?;
    // Meta adds values over time: an unknown model or category is `None`, not an error.
    let pricing = st.pricing.map(|p| MetaPricing {
        billable: p.billable,
        model: p.pricing_model.as_deref().and_then(PricingModel::parse),
        category: p.category.as_deref().and_then(BilledCategory::parse),
        pricing_type: p.pricing_type.as_deref().map(MetaPricingType::parse),
    });
    let (conversation_id, conversation_origin) = match st.conversation {
        None => (None, None),
        Some(c) => (
            c.id,
            c.origin
                .and_then(|o| o.kind)
                .as_deref()
                .and_then(BilledCategory::parse),
        ),
    };
    let error_codes = st
        .errors
        .into_iter()
        .enumerate()
        .map(|(k, e)| error_code(e.code, format_args!("{here}.errors[{k}].code"), Some(&id)))
        .collect::<Result<Vec<u32>, InputError>>()?;
    // Groups API: the status names the group; the participant it is about is the recipient.
    let (recipient, group) = match st.recipient_type.as_deref() {
        Some("group") => (st.recipient_participant_id, st.recipient_id),
        _ => (st.recipient_id, None),
    };
    Ok(Event::Status(Status {
        id,
        at,
        status,
        recipient: recipient.map(phone_number),
        group,
        business: Some(business.clone()),
        phone: Some(phone.clone()),
        pricing,
        conversation_id,
        conversation_origin,
        error_codes,
    }))
}

// ---------------------------------------------------------------------------------------------
// Writing normalized lines
// ---------------------------------------------------------------------------------------------

fn lent(text: &str) -> Cow<'_, str> {
    Cow::Borrowed(text)
}

fn lent_opt<'e>(text: &'e Option<Cow<'_, str>>) -> Option<Cow<'e, str>> {
    text.as_deref().map(Cow::Borrowed)
}

/// A group message may have no user (read as ""): the field is left out then.
fn user_of(user: &str, group: bool) -> Option<Cow<'_, str>> {
    (!user.is_empty() || !group).then(|| lent(user))
}

/// An event as one normalized JSON line (no newline) that [`parse_line`] reads back as an equal
/// event: the service stores each event of a webhook this way, on its own. `at` is written in
/// Unix seconds. `None` only for [`Event::Ignored`], which holds nothing to keep.
///
/// Only events [`parse_line`] can produce are guaranteed to read back: e.g. an empty required
/// field, or an [`AccountChange::Other`] named like a known event, would not.
pub fn to_json_line(event: &Event<'_>) -> Option<String> {
    let raw = match event {
        Event::Inbound(e) => inbound_line(e),
        Event::Outbound(e) => outbound_line(e),
        Event::Status(e) => status_line(e),
        Event::TemplateCategory(e) => RawLine {
            kind: kind("template_category"),
            at: Some(Scalar::Int(e.at)),
            business: Some(lent(&e.business)),
            template: Some(TemplateField::Name(lent(&e.template))),
            category: Some(lent(e.category.as_str())),
            ..RawLine::default()
        },
        Event::AccountUpdate(e) => account_update_line(e),
        Event::Ignored => return None,
    };
    // Strings, integers and booleans under string keys: serializing cannot fail.
    Some(serde_json::to_string(&raw).expect("a normalized line always serializes"))
}

/// A fixed word (a line kind or a vocabulary value), as a field.
fn kind(k: &'static str) -> Option<Cow<'static, str>> {
    Some(Cow::Borrowed(k))
}

fn inbound_line<'e>(e: &'e Inbound<'_>) -> RawLine<'e> {
    RawLine {
        kind: kind("inbound"),
        id: Some(lent(&e.id)),
        at: Some(Scalar::Int(e.at)),
        business: Some(lent(&e.business)),
        phone: Some(lent(&e.phone)),
        user: user_of(&e.user, e.group.is_some()),
        referral: e.referral.then_some(IgnoredAny),
        platform: match e.platform {
            Platform::Unknown => None,
            Platform::Android => kind("android"),
            Platform::Ios => kind("ios"),
            Platform::Web => kind("web"),
        },
        group: e.group.as_deref().map(|g| GroupRef::Id(lent(g))),
        text: e.text.as_deref().map(lent),
        ..RawLine::default()
    }
}

fn outbound_line<'e>(e: &'e Outbound<'_>) -> RawLine<'e> {
    RawLine {
        kind: kind("outbound"),
        id: Some(lent(&e.id)),
        at: Some(Scalar::Int(e.at)),
        business: Some(lent(&e.business)),
        phone: Some(lent(&e.phone)),
        user: user_of(&e.user, e.group.is_some()),
        template: e.template.as_ref().map(|(name, category)| {
            TemplateField::Object(RawTemplate {
                name: Some(lent(name)),
                category: Some(lent(category.as_str())),
            })
        }),
        agent: e.agent_tokens.map(|tokens| RawAgent {
            tokens: Some(tokens),
        }),
        group: e.group.as_ref().map(|(id, members)| {
            GroupRef::Full(RawGroup {
                id: lent(id),
                members: members.iter().map(|m| lent(m)).collect(),
            })
        }),
        ..RawLine::default()
    }
}

fn status_line<'e>(e: &'e Status<'_>) -> RawLine<'e> {
    RawLine {
        kind: kind("status"),
        id: Some(lent(&e.id)),
        at: Some(Scalar::Int(e.at)),
        status: kind(match e.status {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
        }),
        recipient: lent_opt(&e.recipient),
        group: e.group.as_deref().map(|g| GroupRef::Id(lent(g))),
        business: lent_opt(&e.business),
        phone: lent_opt(&e.phone),
        pricing: e.pricing.map(|p| RawPricing {
            billable: p.billable,
            pricing_model: p.model.map(|m| lent(m.as_str())),
            category: p.category.map(|c| lent(c.as_str())),
            pricing_type: p.pricing_type.map(|t| lent(t.as_str())),
        }),
        conversation: (e.conversation_id.is_some() || e.conversation_origin.is_some()).then(|| {
            RawLineConversation {
                id: lent_opt(&e.conversation_id),
                origin: e.conversation_origin.map(|c| lent(c.as_str())),
            }
        }),
        errors: (!e.error_codes.is_empty()).then(|| e.error_codes.clone()),
        ..RawLine::default()
    }
}

fn account_update_line<'e>(e: &'e AccountUpdate<'_>) -> RawLine<'e> {
    let mut raw = RawLine {
        kind: kind("account_update"),
        at: Some(Scalar::Int(e.at)),
        business: Some(lent(&e.business)),
        event: Some(lent(e.change.event())),
        ..RawLine::default()
    };
    match &e.change {
        AccountChange::VolumeTier {
            category,
            tier,
            effective_month,
            region,
        } => {
            raw.volume_tier_info = Some(RawVolumeTier {
                pricing_category: Some(lent(category)),
                tier: Some(lent(tier)),
                effective_month: lent_opt(effective_month),
                region: lent_opt(region),
            })
        }
        AccountChange::AuthInternationalEligibility { start, exceptions } => {
            raw.auth_international_rate_eligibility = Some(RawAuthIntl {
                start_time: start.map(Scalar::Int),
                exception_countries: exceptions
                    .iter()
                    .map(|(country, at)| RawExceptionCountry {
                        country_code: Some(lent(country)),
                        start_time: Some(Scalar::Int(*at)),
                    })
                    .collect(),
            })
        }
        AccountChange::Other(_) => {}
    }
    raw
}

fn own(s: Cow<'_, str>) -> Cow<'static, str> {
    Cow::Owned(s.into_owned())
}

fn own_opt(s: Option<Cow<'_, str>>) -> Option<Cow<'static, str>> {
    s.map(own)
}

impl Event<'_> {
    /// The same event, owning its text (a service keeps events after their line is gone).
    pub fn into_owned(self) -> Event<'static> {
        match self {
            Event::Inbound(e) => Event::Inbound(Inbound {
                id: own(e.id),
                at: e.at,
                business: own(e.business),
                phone: own(e.phone),
                user: own(e.user),
                referral: e.referral,
                platform: e.platform,
                group: own_opt(e.group),
                text: own_opt(e.text),
            }),
            Event::Outbound(e) => Event::Outbound(Outbound {
                id: own(e.id),
                at: e.at,
                business: own(e.business),
                phone: own(e.phone),
                user: own(e.user),
                template: e.template.map(|(name, category)| (own(name), category)),
                agent_tokens: e.agent_tokens,
                group: e
                    .group
                    .map(|(id, members)| (own(id), members.into_iter().map(own).collect())),
            }),
            Event::Status(e) => Event::Status(Status {
                id: own(e.id),
                at: e.at,
                status: e.status,
                recipient: own_opt(e.recipient),
                group: own_opt(e.group),
                business: own_opt(e.business),
                phone: own_opt(e.phone),
                pricing: e.pricing,
                conversation_id: own_opt(e.conversation_id),
                conversation_origin: e.conversation_origin,
                error_codes: e.error_codes,
            }),
            Event::TemplateCategory(e) => Event::TemplateCategory(TemplateCategoryChange {
                at: e.at,
                business: own(e.business),
                template: own(e.template),
                category: e.category,
            }),
            Event::AccountUpdate(e) => Event::AccountUpdate(AccountUpdate {
                business: own(e.business),
                at: e.at,
                change: e.change.into_owned(),
            }),
            Event::Ignored => Event::Ignored,
        }
    }
}

impl AccountChange<'_> {
    /// The same change, owning its text.
    pub fn into_owned(self) -> AccountChange<'static> {
        match self {
            AccountChange::VolumeTier {
                category,
                tier,
                effective_month,
                region,
            } => AccountChange::VolumeTier {
                category: own(category),
                tier: own(tier),
                effective_month: own_opt(effective_month),
                region: own_opt(region),
            },
            AccountChange::AuthInternationalEligibility { start, exceptions } => {
                AccountChange::AuthInternationalEligibility {
                    start,
                    exceptions: exceptions.into_iter().map(|(c, at)| (own(c), at)).collect(),
                }
            }
            AccountChange::Other(name) => AccountChange::Other(own(name)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalized;
    use crate::fast_json::scan;
    use crate::raw::RawLine;

    /// A normalized status with every optional field is read by the scanner (not handed to
    /// serde) and gives the event serde gives: no field is skipped as unknown.
    #[test]
    fn status_with_every_field_scans_like_serde() {
        let line = br#"{"type":"status","id":"m1","at":1754298005,"status":"failed","recipient":"16505551234","business":"waba-1","phone":"pn-1","pricing":{"billable":false,"pricing_model":"PMP","category":"marketing","type":"regular"},"conversation":{"id":"c1","origin":"marketing"},"errors":[131050,130472]}"#;
        let fast = scan(line).expect("the scanner reads it");
        let slow: RawLine<'_> = serde_json::from_slice(line).expect("valid JSON");
        let (fast, slow) = (normalized(fast), normalized(slow));
        assert_eq!(fast, slow);
        let text = format!("{fast:?}");
        for needle in [
            "waba-1",
            "pn-1",
            "Pmp",
            "c1",
            "131050",
            "130472",
            "billable: Some(false)",
        ] {
            assert!(text.contains(needle), "{needle} missing from {text}");
        }
        // Shapes serde rejects or reads differently are left to serde.
        for bad in [
            r#"{"errors":[-1]}"#,
            r#"{"errors":[4294967296]}"#,
            r#"{"errors":[1.0]}"#,
            r#"{"at":-0}"#,
            r#"{"pricing":{"billable":1}}"#,
            r#"{"pricing":{"type":"a","type":"b"}}"#,
            r#"{"conversation":{"origin":{"type":"marketing"}}}"#,
            r#"{"event":"PARTNER_ADDED"}"#,
        ] {
            assert!(scan(bad.as_bytes()).is_none(), "{bad}");
        }
    }

    /// `Outbound::planned` and `Status::delivered` are the events the equivalent lines parse to.
    #[test]
    fn planned_events_are_what_their_lines_parse_to() {
        use super::{parse_line, DeliveryStatus, Event, Outbound, Status, TemplateCategory};
        let parse = |line: &str| {
            let mut events = Vec::new();
            parse_line(line.as_bytes(), &mut |e| events.push(e.into_owned())).unwrap();
            events
        };
        let planned = Outbound::planned(
            "q1",
            1_754_298_000,
            "waba-1",
            "pn-1",
            "16505551234",
            Some(("promo", TemplateCategory::Utility)),
        );
        assert_eq!(
            parse(
                r#"{"type":"outbound","id":"q1","at":1754298000,"business":"waba-1","phone":"pn-1","user":"16505551234","template":{"name":"promo","category":"utility"}}"#
            ),
            vec![Event::Outbound(planned)]
        );
        let free = Outbound::planned("q2", 1_754_298_000, "waba-1", "pn-1", "16505551234", None);
        assert_eq!(
            parse(
                r#"{"type":"outbound","id":"q2","at":1754298000,"business":"waba-1","phone":"pn-1","user":"16505551234"}"#
            ),
            vec![Event::Outbound(free)]
        );
        let delivered = Status::delivered("q1", 1_754_298_005);
        assert_eq!(delivered.status, DeliveryStatus::Delivered);
        assert_eq!(
            parse(r#"{"type":"status","id":"q1","at":1754298005,"status":"delivered"}"#),
            vec![Event::Status(delivered)]
        );
    }
}
