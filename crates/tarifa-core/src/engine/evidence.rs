//! Step 3b: Meta's own `pricing` of a delivered message as evidence (E-1, E-2).
//!
//! Meta's webhooks carry no prices, but they do say whether Meta bills a message and in which
//! category: that is Meta's invoice speaking. Under the `follow` policy (the default) Meta decides
//! whether and as what a one-to-one message is billed, and tarifa still supplies the amount from
//! market, card and tier; under `verify` tarifa's rules decide and the line only records whether
//! Meta agreed. Either way every line says how the two compared ([`MetaCheck`]).
//!
//! Following Meta changes the message it speaks of, not the windows and conversations tarifa
//! inferred for the messages around it. Undelivered messages are never charged, whatever Meta's
//! `sent` status said; group messages (charged per member) keep the rules.

use super::conversations::{Decision, Outcome};
use super::records::{Counter, MetaCheck, OutboundRec};
use super::Rater;
use crate::card::RateColumn;
use crate::category::{BilledCategory, MetaPricingType, PricingModel, PricingType};
use crate::config::MetaPolicy;
use crate::input::MetaPricing;

/// What a party says of a delivered message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Verdict {
    /// Billed (in this category, when said).
    Billed(Option<BilledCategory>),
    Free(PricingType),
    Unknown,
}

/// Weighs Meta's evidence for every decision, in place.
pub(crate) fn weigh(rater: &Rater, decisions: &mut [Decision]) {
    let setup = &rater.setup;
    for d in decisions {
        let m = &rater.outbound[d.msg as usize];
        let Some(meta) = m.meta else { continue };
        if d.outcome == Outcome::Free(PricingType::NotDelivered) {
            continue;
        }
        let business = &setup.businesses[m.business as usize];
        let policy = business.meta_pricing.unwrap_or(setup.rules.meta_pricing);
        *d = weigh_one(*d, m, meta, policy);
    }
}

fn weigh_one(d: Decision, m: &OutboundRec, meta: MetaPricing, policy: MetaPolicy) -> Decision {
    let said = meta_verdict(meta);
    let ruled = rules_verdict(&d);
    if said == Verdict::Unknown {
        return d;
    }
    if agree(said, ruled) {
        return Decision {
            meta_check: MetaCheck::Agrees,
            ..d
        };
    }
    let differs = Decision {
        meta_check: MetaCheck::Differs,
        ..d
    };
    // Group messages are charged per member: Meta's one verdict for the message is not theirs.
    if policy == MetaPolicy::Verify
        || m.members_len > 0
        || d.category == BilledCategory::MetaBusinessAgent
    {
        return differs;
    }
    let model = meta.model.unwrap_or(d.model);
    follow(d, said, model).unwrap_or(differs)
}

/// E-1 (per-message pricing): Meta's verdict, priced by tarifa. E-2 (conversation eras): only
/// Meta's "not billable" is followed; what a conversation costs stays with the rules.
fn follow(d: Decision, said: Verdict, model: PricingModel) -> Option<Decision> {
    let overruled = MetaCheck::Followed { overruled: d.rule };
    let (outcome, category, rule) = match (said, model) {
        (Verdict::Free(p), PricingModel::Pmp) => (Outcome::Free(p), d.category, "E-1"),
        (Verdict::Free(p), _) => (Outcome::Free(p), d.category, "E-2"),
        (Verdict::Billed(Some(c)), PricingModel::Pmp) => {
            let (column, counter) = per_message_column(c)?;
            (Outcome::Chargeable(column, counter), c, "E-1")
        }
        _ => return None,
    };
    Some(Decision {
        outcome,
        category,
        rule,
        meta_check: overruled,
        ..d
    })
}

/// The rate column and counter of a category Meta bills per message (the same as D-3, D-15).
fn per_message_column(c: BilledCategory) -> Option<(RateColumn, Counter)> {
    Some(match c {
        BilledCategory::Marketing | BilledCategory::MarketingLite => {
            (RateColumn::Marketing, Counter::None)
        }
        BilledCategory::Utility => (RateColumn::Utility, Counter::UtilityTiers),
        BilledCategory::Authentication | BilledCategory::AuthenticationInternational => {
            (RateColumn::Authentication, Counter::AuthenticationTiers)
        }
        BilledCategory::Service => (RateColumn::Service, Counter::FreeServiceMessages),
        _ => return None,
    })
}

/// Meta's verdict: `type` first (W-3: `billable` is to be retired), else `billable`.
fn meta_verdict(p: MetaPricing) -> Verdict {
    match p.pricing_type {
        Some(MetaPricingType::Regular) => Verdict::Billed(p.category),
        Some(MetaPricingType::FreeCustomerService) => {
            Verdict::Free(PricingType::FreeCustomerService)
        }
        Some(MetaPricingType::FreeEntryPoint) => Verdict::Free(PricingType::FreeEntryPoint),
        Some(MetaPricingType::Other) | None => match p.billable {
            Some(true) => Verdict::Billed(p.category),
            Some(false) => Verdict::Free(free_type(p)),
            None => Verdict::Unknown,
        },
    }
}

/// Why Meta says a message without `type` is free: an entry point (the documented case of
/// conversation pricing), or customer service for a service category.
fn free_type(p: MetaPricing) -> PricingType {
    let per_message = p.model == Some(PricingModel::Pmp);
    match p.category {
        Some(BilledCategory::Service) => PricingType::FreeCustomerService,
        Some(BilledCategory::Utility) if per_message => PricingType::FreeCustomerService,
        _ => PricingType::FreeEntryPoint,
    }
}

/// The rules' verdict. A message inside an open conversation belongs to a billed conversation,
/// which is how Meta reports it (`billable: true`), unless that conversation is an entry point.
fn rules_verdict(d: &Decision) -> Verdict {
    match d.outcome {
        Outcome::Chargeable(..) | Outcome::Free(PricingType::InOpenConversation) => {
            Verdict::Billed(Some(d.category))
        }
        Outcome::Free(p) => Verdict::Free(p),
        Outcome::Undecided => Verdict::Unknown,
    }
}

fn agree(said: Verdict, ruled: Verdict) -> bool {
    match (said, ruled) {
        (Verdict::Billed(None), Verdict::Billed(_)) => true,
        (Verdict::Billed(Some(a)), Verdict::Billed(Some(b))) => same_category(a, b),
        (Verdict::Free(a), Verdict::Free(b)) => a == b,
        _ => false,
    }
}

/// Authentication and its international rate are one category to compare: the rate is tarifa's.
fn same_category(a: BilledCategory, b: BilledCategory) -> bool {
    let fold = |c| match c {
        BilledCategory::AuthenticationInternational => BilledCategory::Authentication,
        c => c,
    };
    fold(a) == fold(b)
}
