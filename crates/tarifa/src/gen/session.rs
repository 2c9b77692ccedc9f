//! The scenarios of a session: a user writing in (sometimes from a Click-to-WhatsApp ad) and the
//! dialogue that follows, or a business sending a template (an OTP, a marketing push, an order
//! update) that the user may answer.

use super::catalog::{TemplateId, FREE_FORM, SHIPPING_UPDATE, TEXTS};
use super::clock::{Secs, DAY, HOUR, MINUTE};
use super::conversation::Session;
use super::event::{Ev, Kind, F_POST, F_REFERRAL};
use super::generator::Generator;
use super::pricing::AGENT_TOKENS_FROM;
use super::users::Device;
use tarifa_core::category::TemplateCategory::{self, Authentication, Marketing, Utility};

/// Categories of the templates that open business-initiated sessions.
const OPENING_CATEGORIES: &[(f64, TemplateCategory)] =
    &[(0.45, Marketing), (0.85, Utility), (1.0, Authentication)];

impl Generator<'_> {
    /// One session starting at `start`.
    pub fn session(&mut self, start: Secs) {
        self.sessions += 1;
        let user = self.pick_user();
        let mut s = Session::new(self.w, user);
        if self.rng.chance(0.48) {
            // User-initiated; ~10 % of all sessions come from a Click-to-WhatsApp ad.
            let referral = self.rng.chance(0.21);
            self.inbound(&mut s, start, referral);
            self.dialogue(&mut s, start);
        } else {
            self.business_initiated(&mut s, start);
        }
    }

    /// A template, maybe an answer and a dialogue, maybe an order update days later.
    fn business_initiated(&mut self, s: &mut Session, start: Secs) {
        let category = self.rng.pick(OPENING_CATEGORIES);
        let tmpl = self.pick_template(category);
        self.outbound(s, start, tmpl, 0);
        let mut t = start;
        let reply_p = match category {
            Authentication => {
                if self.rng.chance(0.08) {
                    // OTP resend.
                    t += self.rng.range(30, 120);
                    self.outbound(s, t, tmpl, 0);
                }
                0.03
            }
            Utility => 0.25,
            _ => 0.15,
        };
        if self.rng.chance(reply_p) {
            t += self.user_reply_delay();
            self.inbound(s, t, false);
            t = self.dialogue(s, t);
        }
        if category == Utility && self.rng.chance(0.2) {
            // Order flow: a shipping / delivery update one to three days later.
            let later = start + self.rng.range(DAY, 3 * DAY);
            let tmpl = SHIPPING_UPDATE + self.rng.below(2) as TemplateId;
            self.outbound(s, later.max(t + HOUR), tmpl, 0);
        }
    }

    /// Business replies and user answers after an inbound at `t`; returns the last time.
    fn dialogue(&mut self, s: &mut Session, mut t: Secs) -> Secs {
        let mut turns = 1;
        while turns < 6 && self.rng.chance(0.45) {
            turns += 1;
        }
        for turn in 0..turns {
            let agent = s.agent && self.rng.chance(0.6);
            t += if agent {
                self.rng.range(2, 15)
            } else {
                self.business_reply_delay()
            };
            let in_service_window = s.in_service_window(t);
            if s.entry_point_pending {
                s.open_entry_point_window(self.w, t, in_service_window);
            }
            if !in_service_window {
                self.re_engage(s, t);
                return t;
            }
            t = self.business_reply(s, t, agent);
            if turn + 1 < turns {
                t += self.user_reply_delay();
                self.inbound(s, t, false);
            }
        }
        self.entry_point_follow_up(s, t)
    }

    /// Window closed: the business re-engages with a template and the dialogue stops.
    fn re_engage(&mut self, s: &mut Session, t: Secs) {
        let category = self.rng.pick(&[(0.5, Utility), (1.0, Marketing)]);
        let tmpl = self.pick_template(category);
        self.outbound(s, t, tmpl, 0);
    }

    /// Within the window: one or two free-form messages (by Meta Business Agent when `agent`),
    /// or now and then a template; returns the last time.
    fn business_reply(&mut self, s: &mut Session, mut t: Secs, agent: bool) -> Secs {
        let r = self.rng.f64();
        if r < 0.85 {
            let messages = if self.rng.chance(0.3) { 2 } else { 1 };
            for j in 0..messages {
                if j > 0 {
                    t += self.rng.range(3, 60);
                }
                let tokens = if agent && self.w.clock.date(t) >= AGENT_TOKENS_FROM {
                    self.rng.range(15_000, 30_000) as u16
                } else {
                    0
                };
                self.outbound(s, t, FREE_FORM, tokens);
            }
        } else {
            let category = if r < 0.95 { Utility } else { Marketing };
            let tmpl = self.pick_template(category);
            self.outbound(s, t, tmpl, 0);
        }
        t
    }

    /// Free marketing follow-up inside the 72 h entry point window, outside the CSW; returns
    /// the last time.
    fn entry_point_follow_up(&mut self, s: &mut Session, t: Secs) -> Secs {
        let Some((window_start, window_end)) = s.entry_point_window else {
            return t;
        };
        if !self.rng.chance(0.35) {
            return t;
        }
        let when = (window_start + self.rng.range(24 * HOUR, 70 * HOUR)).max(t + MINUTE);
        if when >= window_end {
            return t;
        }
        let tmpl = self.pick_template(Marketing);
        self.outbound(s, when, tmpl, 0);
        when
    }

    /// A user message at `t`, from an ad or post when `referral`.
    pub fn inbound(&mut self, s: &mut Session, t: Secs, referral: bool) {
        let msg = self.next_msg();
        let mut ev = Ev::new(Kind::Inbound, msg, s.user, t);
        ev.extra = self.rng.below(TEXTS.len() as u64) as u16;
        if referral {
            ev.flags |= F_REFERRAL;
            if self.rng.chance(0.1) {
                ev.flags |= F_POST;
            }
            ev.extra |= (s.device as u16) << 8;
            s.entry_point_pending = s.device != Device::Web;
        }
        s.last_inbound = Some(t);
        self.push(ev);
    }
}
