//! Businesses and rule switches: the configuration a rating run needs besides rate cards.
//!
//! Deserialized from the `--config` TOML by the binary; here it is plain data. Every point where Meta's
//! documents leave room for doubt is a field of [`Rules`] with a documented default, so an operator can match
//! what Meta's invoices show.

use crate::market::{Country, MarketOptions};
use crate::time::{parse_instant, Calendar, Instant, LocalDate};
use rust_decimal::Decimal;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt;

/// A business (WABA) as written in the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusinessConfig {
    /// The WABA id; raw webhooks name it as `entry[].id`.
    pub id: String,
    /// The business portfolio that owns the WABA; volume tiers accrue per portfolio (V-1).
    pub portfolio: Option<String>,
    /// ISO 4217 billing currency of the WABA (1-4).
    pub currency: String,
    /// IANA time zone of the WABA; every pricing boundary is midnight here (1-3).
    pub timezone: String,
    /// ISO country of the primary business location (AI-1, AI-3).
    pub primary_country: Option<String>,
    /// Authentication-international eligibility (AI-2, AI-5).
    pub auth_international: Option<AuthInternationalConfig>,
    /// Resale price list this business is billed with (see `[[price_list]]`).
    pub price_list: Option<String>,
    /// What Meta's `pricing` in status webhooks is to this business's bill (E-1 … E-3); the
    /// `[rules]` default when absent.
    pub meta_pricing: Option<MetaPolicy>,
}

/// What Meta's own `pricing` object (and `conversation.origin`) in a status webhook is to a bill.
/// Meta sends no prices, but it does say whether it bills a message and as what: that is its
/// invoice speaking, so it is the best evidence of what the invoice will hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetaPolicy {
    /// Meta decides whether and as what a message is billed (where its pricing says so);
    /// tarifa supplies the amount from market, card and tier, and reports where its own rules
    /// would have decided otherwise.
    #[default]
    Follow,
    /// tarifa's rules decide; Meta's pricing is only compared, and disagreements reported.
    Verify,
}

impl MetaPolicy {
    pub fn as_str(self) -> &'static str {
        match self {
            MetaPolicy::Follow => "follow",
            MetaPolicy::Verify => "verify",
        }
    }
}

/// `auth_international_rate_eligibility` of a WABA: a general start time and per-country ones.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthInternationalConfig {
    /// `YYYY-MM-DD` (midnight in the WABA time zone) or an RFC 3339 instant / Unix seconds.
    pub start: String,
    #[serde(default)]
    pub exceptions: BTreeMap<String, String>,
}

/// How the conversation window of eras B and C starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStart {
    /// At the delivery of the opening message (B-2, C-2: Meta's documented rule).
    #[default]
    Delivered,
    /// At its `sent` status, which is what `expiration_timestamp` in webhooks is computed from
    /// (W-5).
    Sent,
}

/// Whose conversations are counted together: per WABA and business number (Meta's documents
/// describe both).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConversationScope {
    /// Conversations and windows are per business phone number × user (default: a user talks to
    /// a number).
    #[default]
    PhoneNumber,
    /// Per WABA × user: all numbers of a WABA share them.
    Business,
}

/// When "inside the customer service window" is judged (D-6).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WindowJudgedAt {
    /// At delivery, as Meta words it ("utility templates delivered within an open window").
    #[default]
    Delivery,
    /// At sending.
    Send,
}

/// Rule switches for the points Meta's documents leave open. Defaults follow what Meta's
/// invoices and worked examples show (see `docs/RATING.md`).
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rules {
    /// B-9: a failed free-form message outside the window opens a business-initiated conversation
    /// that is billed if the user replies within 24 h (360dialog's claim). Off: Meta's rule says a
    /// conversation opens on delivery.
    pub failed_free_form_opens_conversation: bool,
    /// B-7: from this date (WABA time zone) an era-B entry-point conversation lasts 72 h instead
    /// of 24 h.
    pub entry_point_72h_from: LocalDate,
    /// B-5, C-7: free conversations per WABA per month (Meta's figure is 1,000; change it only to
    /// model a hypothetical, e.g. "no free tier left" in a worked example).
    pub free_conversations_per_month: u32,
    /// D-19: free service messages per business phone number per month from 2026-10-01 (0 turns
    /// the disputed allowance off).
    pub free_service_messages_per_number: u32,
    /// B-2/C-2 vs W-5: what starts a conversation window.
    pub conversation_start: ConversationStart,
    /// See [`ConversationScope`].
    pub conversation_scope: ConversationScope,
    /// D-6.
    pub window_judged_at: WindowJudgedAt,
    /// C-9/D-5: raw webhooks do not say whether the user wrote from the Android/iOS app; when the
    /// platform is unknown, treat the entry point as qualifying.
    pub unknown_platform_qualifies_for_entry_point: bool,
    /// D-15/D-20: from 2026-10-01 service is charged at the market's utility rate; when a card has
    /// no Service column value, use its Utility rate (true) or report unrated (false).
    pub service_rate_falls_back_to_utility: bool,
    /// D-14: Meta Business Agent price per million tokens, by currency (Meta publishes US$2.00).
    pub agent_price_per_million_tokens: BTreeMap<String, Decimal>,
    /// E-1 … E-3: the default policy towards Meta's pricing in status webhooks (a business's
    /// own `meta_pricing` overrides it).
    pub meta_pricing: MetaPolicy,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            failed_free_form_opens_conversation: false,
            entry_point_72h_from: LocalDate::ymd(2023, 3, 1),
            free_conversations_per_month: 1_000,
            free_service_messages_per_number: 1_000,
            conversation_start: ConversationStart::Delivered,
            conversation_scope: ConversationScope::PhoneNumber,
            window_judged_at: WindowJudgedAt::Delivery,
            unknown_platform_qualifies_for_entry_point: true,
            service_rate_falls_back_to_utility: true,
            agent_price_per_million_tokens: BTreeMap::from([(
                "USD".to_string(),
                Decimal::new(200, 2),
            )]),
            meta_pricing: MetaPolicy::Follow,
        }
    }
}

/// A resale price list: a markup over Meta's cards, or a full set of cards of its own.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceListConfig {
    pub id: String,
    /// Multiplier over Meta's rates (Pancake: 1.2).
    pub markup: Option<Decimal>,
    /// Cards of its own, in Meta's layout.
    #[serde(default)]
    pub rate_card: Vec<CardFile>,
    #[serde(default)]
    pub tier_card: Vec<CardFile>,
    /// Minimum wallet balance required to use free service (e.g. 5 USD at Pancake); used by
    /// the wallet, kept here so one file describes the price list.
    pub min_balance_for_free_service: Option<Decimal>,
}

/// A card file reference; relative paths are relative to the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CardFile {
    pub file: String,
    /// For a tier CSV without a date in its title row.
    pub effective: Option<String>,
}

/// The whole config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub business: Vec<BusinessConfig>,
    #[serde(default)]
    pub rules: Rules,
    #[serde(default)]
    pub markets: MarketOptions,
    #[serde(default)]
    pub rate_card: Vec<CardFile>,
    #[serde(default)]
    pub tier_card: Vec<CardFile>,
    #[serde(default)]
    pub price_list: Vec<PriceListConfig>,
}

/// A business ready for rating: names resolved, time zone loaded.
#[derive(Clone, Debug)]
pub struct Business {
    pub id: String,
    pub portfolio: String,
    pub currency: String,
    pub calendar: Calendar,
    pub primary_country: Option<Country>,
    pub auth_international: Option<AuthInternational>,
    pub price_list: Option<String>,
    /// The business's own policy towards Meta's pricing; `None`: the `[rules]` default.
    pub meta_pricing: Option<MetaPolicy>,
}

/// Resolved authentication-international eligibility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthInternational {
    pub start: Instant,
    pub exceptions: Vec<(Country, Instant)>,
}

impl AuthInternational {
    /// AI-1/AI-3: is an authentication message to `country`, delivered at `at`, billed at the
    /// authentication-international rate (given the market has one)?
    pub fn applies(&self, country: Country, primary: Option<Country>, at: Instant) -> bool {
        if primary == Some(country) {
            return false;
        }
        let start = self
            .exceptions
            .iter()
            .find(|(c, _)| *c == country)
            .map_or(self.start, |(_, s)| *s);
        at >= start
    }
}

/// A configuration error: which business, which field, what is wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

impl BusinessConfig {
    pub fn resolve(&self) -> Result<Business, ConfigError> {
        let err = |field: &str, msg: String| {
            ConfigError(format!("business {:?}: {field}: {msg}", self.id))
        };
        if self.id.is_empty() {
            return Err(ConfigError("business with an empty id".into()));
        }
        let currency = self.currency.trim().to_ascii_uppercase();
        if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(err(
                "currency",
                format!("{:?} is not an ISO 4217 code", self.currency),
            ));
        }
        let calendar = Calendar::new(&self.timezone).map_err(|e| err("timezone", e.to_string()))?;
        let primary_country = match &self.primary_country {
            None => None,
            Some(c) => Some(Country::parse(c).ok_or_else(|| {
                err(
                    "primary_country",
                    format!("{c:?} is not an ISO country code"),
                )
            })?),
        };
        let auth_international = match &self.auth_international {
            None => None,
            Some(ai) => {
                let start = parse_start(&ai.start, &calendar).ok_or_else(|| {
                    err(
                        "auth_international.start",
                        format!("{:?} is not a date or instant", ai.start),
                    )
                })?;
                let mut exceptions = Vec::new();
                for (country, when) in &ai.exceptions {
                    let c = Country::parse(country).ok_or_else(|| {
                        err(
                            "auth_international.exceptions",
                            format!("{country:?} is not an ISO country code"),
                        )
                    })?;
                    let at = parse_start(when, &calendar).ok_or_else(|| {
                        err(
                            "auth_international.exceptions",
                            format!("{when:?} is not a date or instant"),
                        )
                    })?;
                    exceptions.push((c, at));
                }
                Some(AuthInternational { start, exceptions })
            }
        };
        Ok(Business {
            id: self.id.clone(),
            portfolio: self.portfolio.clone().unwrap_or_else(|| self.id.clone()),
            currency,
            calendar,
            primary_country,
            auth_international,
            price_list: self.price_list.clone(),
            meta_pricing: self.meta_pricing,
        })
    }
}

/// A date means local midnight in the WABA's time zone; otherwise an instant.
fn parse_start(text: &str, calendar: &Calendar) -> Option<Instant> {
    match LocalDate::parse(text) {
        Some(d) => Some(calendar.start_of(d)),
        None => parse_instant(text),
    }
}

impl<'de> Deserialize<'de> for LocalDate {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        LocalDate::parse(&text)
            .ok_or_else(|| serde::de::Error::custom(format!("{text:?} is not a YYYY-MM-DD date")))
    }
}
