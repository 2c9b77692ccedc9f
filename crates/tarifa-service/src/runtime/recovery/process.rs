//! One due recovery, from decision to send. The store's rules decide whether it goes now, later
//! or not at all; a message that goes is quoted and its cost held in the wallet first, committed
//! as `sending` with its coupon code, and only then sent and recorded, so it leaves at most once.

use super::message::{issue_coupon, write_message, IssuedCoupon, Variables};
use super::sender::Outgoing;
use super::{Pass, Recovery, TOO_LATE_SECS};
use crate::domain::book::{Planned, PlannedTemplate, Quote};
use crate::runtime::App;
use crate::storage::recovery::RecoveryRow;
use anyhow::Result;
use tarifa_core::recovery::{
    decide, Channel, CustomerFacts, Decision, RecoveryConfig, SkipReason, TemplateChoice, Trigger,
};
use tarifa_core::time::{Calendar, Instant};

/// The recovery being processed, the pass's clock, and the wallet reservation of its cost.
struct Due<'a> {
    app: &'a App,
    row: &'a RecoveryRow,
    now: Instant,
    reservation: String,
}

/// What the store's rules say about a due recovery.
enum Next {
    Skip(SkipReason),
    Defer(Instant),
    Send(Box<Approved>),
}

/// A recovery the rules let through: the settings it was judged by, and how it is sent.
struct Approved {
    config: RecoveryConfig,
    calendar: Calendar,
    channel: Channel,
    template: Option<TemplateChoice>,
    planned: Planned,
}

/// The message as it will be committed and sent.
struct Draft {
    coupon: Option<IssuedCoupon>,
    coupon_expires_at: Option<Instant>,
    text: String,
    template: Option<(String, String, Vec<String>)>,
}

impl Recovery {
    pub(super) async fn process(
        &self,
        app: &App,
        r: &RecoveryRow,
        now: Instant,
        pass: &mut Pass,
    ) -> Result<()> {
        let due = Due {
            app,
            row: r,
            now,
            reservation: format!("rcv:{}", r.id),
        };
        let approved = match self.judge(&due).await? {
            Next::Skip(reason) => return self.skip(r, reason, now, pass).await,
            Next::Defer(at) => return self.defer(r, at, now, pass).await,
            Next::Send(approved) => approved,
        };
        let quote = self
            .reserve(app, &approved.planned, &due.reservation, now)
            .await?;
        if !quote.allowed {
            return self.skip(r, blocked_reason(&quote), now, pass).await;
        }
        let draft = self.compose(&due, &approved).await?;
        if !self.start_sending(&due, &approved, &draft, &quote).await? {
            return Ok(());
        }
        self.send_and_record(&due, &approved, draft, pass).await
    }

    /// Applies the store's current settings and the customer's facts to a due recovery.
    async fn judge(&self, due: &Due<'_>) -> Result<Next> {
        let (r, now) = (due.row, due.now);
        let Some((config, _)) = self.settings(&r.business).await? else {
            return Ok(Next::Skip(SkipReason::Disabled));
        };
        if now - r.due_at > TOO_LATE_SECS {
            return Ok(Next::Skip(SkipReason::TooLate));
        }
        let free_form = Planned {
            business: r.business.clone(),
            phone: config.phone.clone(),
            user: r.user.clone(),
            template: None,
            at: None,
        };
        let Some((calendar, window_open)) = calendar_and_window(due.app, &free_form, now) else {
            return Ok(Next::Skip(SkipReason::Disabled));
        };
        let facts = self.customer_facts(r, window_open, now).await?;
        let trigger = Trigger::parse(&r.trigger).unwrap_or(Trigger::Bot);
        let (channel, template) = match decide(&config, trigger, &facts, now, &calendar) {
            Decision::Skip(reason) => return Ok(Next::Skip(reason)),
            Decision::Defer(at) => return Ok(Next::Defer(at)),
            Decision::Send(Channel::FreeForm) => (Channel::FreeForm, None),
            // `decide` picks the template channel only when a template is configured.
            Decision::Send(Channel::Template) => match config.template.clone() {
                Some(t) => (Channel::Template, Some(t)),
                None => return Ok(Next::Skip(SkipReason::NoTemplate)),
            },
        };
        let planned = Planned {
            template: template.as_ref().map(|t| PlannedTemplate {
                name: t.name.clone(),
                category: "marketing".into(),
            }),
            ..free_form
        };
        Ok(Next::Send(Box::new(Approved {
            config,
            calendar,
            channel,
            template,
            planned,
        })))
    }

    /// What the rules need to know about the customer, read right before deciding.
    async fn customer_facts(
        &self,
        r: &RecoveryRow,
        window_open: bool,
        now: Instant,
    ) -> Result<CustomerFacts> {
        let (stop_keyword, marketing_opt_out) = self.store.opt_outs(&r.business, &r.user).await?;
        Ok(CustomerFacts {
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
        })
    }

    /// The coupon code and the text of the message, with the cart the recovery is about.
    async fn compose(&self, due: &Due<'_>, approved: &Approved) -> Result<Draft> {
        let r = due.row;
        let (coupon, coupon_expires_at) = issue_coupon(&approved.config, due.now);
        let cart = match &r.cart_id {
            Some(id) => self.store.cart(&r.business, id).await?,
            None => None,
        };
        let variables = Variables {
            recovery: &r.id,
            cart: cart.as_ref(),
            coupon: coupon.as_ref(),
            coupon_expires_at,
            calendar: &approved.calendar,
        };
        let (text, template) =
            write_message(&approved.config, approved.template.clone(), &variables);
        Ok(Draft {
            coupon,
            coupon_expires_at,
            text,
            template,
        })
    }

    /// Commits the recovery as `sending` with its message and code. `false` (or an error):
    /// it was not this scheduler's to send any more, and the reservation is cancelled.
    async fn start_sending(
        &self,
        due: &Due<'_>,
        approved: &Approved,
        draft: &Draft,
        quote: &Quote,
    ) -> Result<bool> {
        let code = draft
            .coupon
            .as_ref()
            .map(|c| (c.code.as_str(), c.coupon.as_str(), c.single_use));
        let started = self
            .store
            .start_sending(
                due.row,
                &self.owner,
                approved.channel.as_str(),
                &draft.text,
                code,
                draft.coupon_expires_at,
                &quote.amount,
                &quote.currency,
                due.now,
            )
            .await;
        if !matches!(started, Ok(true)) {
            self.cancel(due.app, &due.row.business, &due.reservation)
                .await?;
        }
        started
    }

    /// Sends the message and records it as sent, or cancels the reservation and skips it.
    async fn send_and_record(
        &self,
        due: &Due<'_>,
        approved: &Approved,
        draft: Draft,
        pass: &mut Pass,
    ) -> Result<()> {
        let r = due.row;
        let outgoing = Outgoing {
            recovery: r.id.clone(),
            phone: approved.config.phone.clone(),
            to: r.user.clone(),
            channel: approved.channel,
            text: draft.text,
            template: draft.template,
        };
        match self.sender.send(&outgoing).await {
            Ok(message_id) => {
                let (app, reservation) = (due.app, &due.reservation);
                self.record(
                    app,
                    reservation,
                    &outgoing,
                    &approved.planned,
                    &message_id,
                    due.now,
                )
                .await?;
                self.store
                    .sent(&r.id, &self.owner, &message_id, due.now)
                    .await?;
                pass.sent += 1;
            }
            Err(e) => {
                tracing::warn!(recovery = %r.id, error = %format!("{e:#}"), "recovery message not sent");
                self.cancel(due.app, &r.business, &due.reservation).await?;
                self.skip(r, SkipReason::SendFailed, due.now, pass).await?;
            }
        }
        Ok(())
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

    async fn defer(
        &self,
        r: &RecoveryRow,
        at: Instant,
        now: Instant,
        pass: &mut Pass,
    ) -> Result<()> {
        self.store.defer(&r.id, &self.owner, at, now).await?;
        pass.deferred += 1;
        Ok(())
    }
}

/// The store's calendar, and whether the customer service window is open now (`None`: the
/// store is not in the rating config).
fn calendar_and_window(app: &App, free_form: &Planned, now: Instant) -> Option<(Calendar, bool)> {
    let book = app.book.read().unwrap_or_else(|p| p.into_inner());
    let business = book
        .setup()
        .businesses
        .iter()
        .find(|b| b.id == free_form.business)?;
    let window = book
        .quote(free_form, now)
        .is_ok_and(|q| q.customer_service_window_open);
    Some((business.calendar.clone(), window))
}

/// Why the wallet refused the quoted message.
fn blocked_reason(quote: &Quote) -> SkipReason {
    quote
        .blocked_by
        .first()
        .map_or(SkipReason::QuoteBlocked, |b| SkipReason::of_block(b.code))
}
