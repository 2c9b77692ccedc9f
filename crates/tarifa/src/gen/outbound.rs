//! A business message and what follows it: its price as Meta's webhooks would tell it, then its
//! statuses: sent, then delivered (~93 %) / failed (~5 %) / nothing (~2 %), and read.

use super::catalog::{category_of, TemplateId, FREE_FORM};
use super::clock::{Secs, DAY, HOUR, MINUTE};
use super::conversation::Session;
use super::event::{Ev, Kind, F_PRICING};
use super::generator::Generator;
use super::pricing::{price_tag, Situation};
use tarifa_core::category::{PricingModel, TemplateCategory};

/// Below this draw a message fails, from it up to [`DELIVERED_FROM`] it gets no status after
/// `sent`.
const FAILED_BELOW: f64 = 0.05;
const DELIVERED_FROM: f64 = 0.07;

/// From `sent` to `failed`.
const FAILURE_DELAYS: &[(f64, (Secs, Secs))] = &[(0.9, (0, 20)), (1.0, (MINUTE, HOUR))];
/// From `sent` to `delivered`.
const DELIVERY_DELAYS: &[(f64, (Secs, Secs))] = &[
    (0.80, (0, 4)),
    (0.95, (5, 30 * MINUTE)),
    (1.0, (30 * MINUTE, 12 * HOUR)),
];
/// From `delivered` to `read`.
const READ_DELAYS: &[(f64, (Secs, Secs))] = &[
    (0.35, (2, MINUTE)),
    (0.65, (MINUTE, HOUR)),
    (0.90, (HOUR, 12 * HOUR)),
    (1.0, (12 * HOUR, 2 * DAY)),
];

impl Generator<'_> {
    /// A message of the business at `t`: template `tmpl` or free-form (with Meta Business Agent
    /// `tokens`, 0 if none), and its statuses.
    pub fn outbound(&mut self, s: &mut Session, t: Secs, tmpl: TemplateId, tokens: u16) {
        let msg = self.next_msg();
        let situation = self.situation(s, t, tmpl);
        let price = price_tag(&self.w.clock, t, &situation);
        // The delivery outcome is drawn first: only a delivered message opens a conversation
        // (B-2, C-2).
        let outcome = self.rng.f64();
        let delivered = outcome >= DELIVERED_FROM;
        let (price, conv) = match price.model {
            PricingModel::Cbp => {
                s.conversation(self.w, t, price.category, tmpl == FREE_FORM, delivered)
            }
            PricingModel::Pmp if situation.in_entry_point_window => {
                (price, s.entry_point_start(t).unwrap_or(t))
            }
            _ => (price, t),
        };
        let mut ev = Ev::new(Kind::Outbound, msg, s.user, t);
        ev.tmpl = tmpl;
        ev.price = price;
        ev.conv = conv;
        ev.extra = tokens;
        self.push(ev);
        self.statuses(ev, outcome, situation.template);
    }

    fn situation(&self, s: &Session, t: Secs, tmpl: TemplateId) -> Situation {
        let template = category_of(tmpl);
        Situation {
            template,
            in_service_window: s.in_service_window(t),
            in_entry_point_window: s.in_entry_point_window(t),
            auth_international: template == Some(TemplateCategory::Authentication)
                && self.auth_international(s.user, t),
        }
    }

    /// An authentication template to `user` at `t` is billed as authentication-international.
    fn auth_international(&self, user: u32, t: Secs) -> bool {
        let w = self.w;
        let business = w.phone_of(user).business as usize;
        let plan = w.users.plan[user as usize] as usize;
        i64::from(t) >= w.auth_intl_from[business][plan]
    }

    /// The statuses of `message`, by the delivery `outcome` drawn for it.
    fn statuses(&mut self, message: Ev, outcome: f64, template: Option<TemplateCategory>) {
        let mut sent = message;
        sent.extra = 0;
        sent.kind = Kind::Sent;
        sent.at = message.at + self.rng.range(1, 3);
        sent.flags = F_PRICING;
        self.push(sent);
        if outcome < FAILED_BELOW {
            self.failed(sent, template);
        } else if outcome >= DELIVERED_FROM {
            self.delivered_and_read(sent);
        }
    }

    fn failed(&mut self, sent: Ev, template: Option<TemplateCategory>) {
        let mut failed = sent;
        failed.kind = Kind::Failed;
        failed.flags = 0;
        // Marketing is mostly held back for ecosystem engagement (131049).
        let held_back = template == Some(TemplateCategory::Marketing) && self.rng.chance(0.7);
        failed.extra = u16::from(!held_back);
        failed.at = sent.at + self.rng.banded(FAILURE_DELAYS);
        self.push(failed);
    }

    /// `delivered` (3 % of the time missing) and `read` (60 %, or always when `delivered` is
    /// missing); the first of them carries the pricing.
    fn delivered_and_read(&mut self, sent: Ev) {
        let delivered_at = sent.at + self.rng.banded(DELIVERY_DELAYS);
        let has_delivered = self.rng.chance(0.97);
        let read = !has_delivered || self.rng.chance(0.6);
        let mut status = sent;
        if has_delivered {
            status.kind = Kind::Delivered;
            status.at = delivered_at;
            status.flags = F_PRICING;
            self.push(status);
        }
        if read {
            status.kind = Kind::Read;
            status.at = delivered_at + self.rng.banded(READ_DELAYS);
            status.flags = if has_delivered { 0 } else { F_PRICING };
            self.push(status);
        }
    }
}
