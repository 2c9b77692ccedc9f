//! What Meta's webhooks would say a message costs (spec §9.1 W-1 … W-3): the pricing model,
//! type, category and billability of an outbound message by era. Decoration only: tarifa rates
//! independently, and the generator writes this so that reconciliation has something to compare.

use super::clock::{LogClock, Secs};
use tarifa_core::category::{BilledCategory, MetaPricingType, PricingModel, TemplateCategory};
use tarifa_core::engine::Era;
use tarifa_core::time::LocalDate;

/// Service conversations free for everyone (C-8).
pub(super) const SERVICE_FREE_FROM: LocalDate = LocalDate::ymd(2024, 11, 1);
/// Meta Business Agent tokens charged (D-14).
pub(super) const AGENT_TOKENS_FROM: LocalDate = LocalDate::ymd(2026, 8, 1);
/// Service charged, in-window utility charged (D-15, D-16).
const SERVICE_CHARGED_FROM: LocalDate = LocalDate::ymd(2026, 10, 1);

/// The `pricing` object of a message's webhooks.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) struct PriceTag {
    pub model: PricingModel,
    pub kind: MetaPricingType,
    pub category: BilledCategory,
    pub billable: bool,
}

impl PriceTag {
    /// The tag of a message that has none (inbound messages).
    pub const NONE: PriceTag = PriceTag::new(
        PricingModel::Nbp,
        MetaPricingType::Regular,
        BilledCategory::Marketing,
        false,
    );

    pub const fn new(
        model: PricingModel,
        kind: MetaPricingType,
        category: BilledCategory,
        billable: bool,
    ) -> PriceTag {
        PriceTag {
            model,
            kind,
            category,
            billable,
        }
    }

    /// A conversation-based tag (eras B and C).
    pub const fn conversation(category: BilledCategory, billable: bool) -> PriceTag {
        PriceTag::new(
            PricingModel::Cbp,
            MetaPricingType::Regular,
            category,
            billable,
        )
    }

    fn per_message(kind: MetaPricingType, category: BilledCategory, billable: bool) -> PriceTag {
        PriceTag::new(PricingModel::Pmp, kind, category, billable)
    }
}

/// What an outbound message is, where it stands, for its price.
#[derive(Clone, Copy)]
pub(super) struct Situation {
    /// `None`: free-form.
    pub template: Option<TemplateCategory>,
    /// In the customer service window (1-6).
    pub in_service_window: bool,
    /// In an entry point window (D-5).
    pub in_entry_point_window: bool,
    /// An authentication template billed as authentication-international (AI-1).
    pub auth_international: bool,
}

/// The category a template (or free-form message) is billed as, outside era-B conversations.
pub(super) fn billed_category(s: &Situation) -> BilledCategory {
    match s.template {
        Some(TemplateCategory::Marketing | TemplateCategory::MarketingLite) => {
            BilledCategory::Marketing
        }
        Some(TemplateCategory::Utility) => BilledCategory::Utility,
        Some(TemplateCategory::Authentication) if s.auth_international => {
            BilledCategory::AuthenticationInternational
        }
        Some(TemplateCategory::Authentication) => BilledCategory::Authentication,
        None => BilledCategory::Service,
    }
}

/// Webhook pricing of an outbound sent at `t` (§9.1 W-1 … W-3, D-2, D-15, D-16). In eras B and
/// C the conversation ([`super::conversation`]) fills in the category and billability.
pub(super) fn price_tag(clock: &LogClock, t: Secs, s: &Situation) -> PriceTag {
    let category = billed_category(s);
    let date = clock.date(t);
    match Era::of(date) {
        Era::Notification if s.template.is_none() => PriceTag::new(
            PricingModel::Nbp,
            MetaPricingType::Regular,
            BilledCategory::UserInitiated,
            false,
        ),
        Era::Notification => PriceTag::new(
            PricingModel::Nbp,
            MetaPricingType::Regular,
            BilledCategory::BusinessInitiated,
            true,
        ),
        Era::InitiatedConversations | Era::CategoryConversations => {
            PriceTag::conversation(category, true)
        }
        Era::PerMessage => per_message(date, s, category),
    }
}

fn per_message(date: LocalDate, s: &Situation, category: BilledCategory) -> PriceTag {
    let service_like = s.template.is_none()
        || (s.template == Some(TemplateCategory::Utility) && s.in_service_window);
    if s.in_entry_point_window {
        PriceTag::per_message(MetaPricingType::FreeEntryPoint, category, false)
    } else if service_like && date < SERVICE_CHARGED_FROM {
        PriceTag::per_message(MetaPricingType::FreeCustomerService, category, false)
    } else {
        PriceTag::per_message(MetaPricingType::Regular, category, true)
    }
}
