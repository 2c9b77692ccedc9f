//! The live wallet converges to the batch bill. A message is settled at its first delivery with
//! what the book knows then; events that arrive later can change its price: its send record
//! (after the delivery webhook), Meta's `pricing` on a later status, a user message timestamped
//! before it that puts it in a window. Each such event re-prices the settled messages it
//! concerns, and a different price is corrected by a new ledger transfer (`adjust:{message}:{n}`),
//! never by editing an old one; the charge row and the monthly counters move with it, in the
//! same group commit.
//!
//! Bound: only messages the book still follows (its `history_days`) are re-priced; older ones
//! are left to invoices, which re-rate the month from the stored events.

use super::*;

/// 2025-07-01T00:00:00Z: per-message pricing (D-1) in UTC; a day of margin covers time zones.
const PER_MESSAGE_PRICING_FROM: Instant = 1_751_328_000;

impl Book {
    pub(super) fn is_settled(&self, message: &str) -> bool {
        self.messages.get(message).is_some_and(|m| m.settled)
    }

    pub(super) fn keep_charged(&mut self, message: &str, charged: Charged) {
        if let Some(m) = self.messages.get_mut(message) {
            m.charged = Some(Box::new(charged));
        }
    }

    /// Re-prices the settled messages whose price `event` may change: the message it is about
    /// when it carries evidence of its own (its send record, Meta's pricing or origin), and the
    /// key's settled messages after it in time (a user message or an earlier delivery that
    /// arrives late may put them in a window or an entry point, or in a conversation).
    pub(super) fn reprice_on_evidence(
        &mut self,
        event: &Event<'_>,
        key: Option<&ConversationKey>,
        now: Instant,
        w: &mut Effects,
    ) {
        let Some(key) = key else { return };
        let (own, since) = match event {
            Event::Outbound(o) if o.group.is_none() => (Some(&o.id), o.at.min(self.sent_at(&o.id))),
            Event::Status(s) => {
                // Its own evidence: Meta's pricing or origin, or a delivery earlier than the one
                // it was priced at.
                let earlier = self
                    .messages
                    .get(s.id.as_ref())
                    .and_then(|m| m.charged.as_ref())
                    .is_some_and(|c| {
                        matches!(s.status, DeliveryStatus::Delivered | DeliveryStatus::Read)
                            && s.at < c.at
                    });
                let evidence = self.new_meta_evidence(s) || earlier;
                // A status of a message settled before, with nothing new to say (a `read` after
                // the `delivered`), changes no price: in-order traffic re-prices nothing.
                if !evidence && self.is_settled(&s.id) {
                    return;
                }
                (evidence.then_some(&s.id), s.at.min(self.sent_at(&s.id)))
            }
            Event::Inbound(i) => (None, i.at),
            _ => return,
        };
        // Under per-message pricing, one business message changes another's price only through
        // an entry point (D-5): without one, a late send record or delivery concerns itself.
        let others_concerned = matches!(event, Event::Inbound(_))
            || since < PER_MESSAGE_PRICING_FROM + DAY
            || self.history.get(key).is_some_and(|h| h.entry_points);
        let mut concerned = if others_concerned {
            self.settled_after(key, since)
        } else {
            Vec::new()
        };
        if let Some(own) = own {
            if !concerned.iter().any(|c| c == own.as_ref()) {
                concerned.insert(0, own.to_string());
            }
        }
        for message in concerned {
            if self.is_settled(&message) {
                self.reprice(&message, now, w);
            }
        }
    }

    fn sent_at(&self, message: &str) -> Instant {
        self.messages.get(message).map_or(Instant::MAX, |m| m.at)
    }

    /// Whether status `s` says something about its message's pricing that its earlier statuses
    /// did not (and remembers it).
    fn new_meta_evidence(&mut self, s: &Status<'_>) -> bool {
        let Some(m) = self.messages.get_mut(s.id.as_ref()) else {
            return false;
        };
        let said = (s.pricing.or(m.seen.0), s.conversation_origin.or(m.seen.1));
        let new = said != m.seen;
        m.seen = said;
        new
    }

    /// The settled messages of `key` sent at or after `at` (a user message that came late may
    /// put them in a window), oldest first. The history is in time order, so a user message
    /// that arrives in order costs one look at the newest event.
    fn settled_after(&self, key: &ConversationKey, at: Instant) -> Vec<String> {
        let Some(history) = self.history.get(key) else {
            return Vec::new();
        };
        let mut found: Vec<(Instant, String)> = Vec::new();
        for h in history.events.iter().rev().take_while(|h| h.at >= at) {
            let id = match &*h.event {
                Event::Outbound(o) => &o.id,
                Event::Status(s) => &s.id,
                _ => continue,
            };
            if self.is_settled(id) && !found.iter().any(|(_, f)| f == id.as_ref()) {
                found.push((h.at, id.to_string()));
            }
        }
        found.sort();
        found.into_iter().map(|(_, id)| id).collect()
    }

    /// Prices a settled message again with all the book knows now; a different price (or
    /// other counters) is corrected.
    fn reprice(&mut self, message: &str, now: Instant, w: &mut Effects) {
        let Some((key, was)) = self
            .messages
            .get(message)
            .and_then(|m| Some((m.key.clone(), (**m.charged.as_ref()?).clone())))
        else {
            return;
        };
        // Priced as if for the first time: its own counters out of the base.
        self.count(&was.counted, -1);
        let priced = match self.rate(&key, &[], message) {
            Ok(priced) => priced,
            Err(e) => {
                self.count(&was.counted, 1);
                w.anomalies
                    .push(format!("re-pricing of {message} failed: {e}"));
                return;
            }
        };
        self.count(&priced.counted, 1);
        let amount = to_amount(priced.amount);
        if amount == was.amount
            && priced.pricing_type == was.pricing_type
            && priced.counted == was.counted
        {
            if let Some(c) = self
                .messages
                .get_mut(message)
                .and_then(|m| m.charged.as_mut())
            {
                c.at = priced.at;
            }
            return;
        }
        let uncollected = self.adjust(&key.business, message, &was, amount, now, w);
        let now_charged = Charged {
            amount,
            uncollected,
            pricing_type: priced.pricing_type,
            at: priced.at,
            counted: priced.counted.clone(),
        };
        self.keep_charged(message, now_charged);
        w.correct_charge(Charge {
            message: message.to_string(),
            business: key.business.clone(),
            at: priced.at,
            pricing_type: priced.pricing_type,
            category: priced.category.as_str().to_string(),
            rule: priced.rule.to_string(),
            amount: priced.amount,
            currency: priced.currency.clone(),
            captured: Amount(amount.0 - uncollected.0),
            uncollected,
            counters: priced.counted,
        });
    }

    fn count(&mut self, keys: &[CounterKey], by: i64) {
        for k in keys {
            let n = self.counts.entry(k.clone()).or_default();
            *n = n.saturating_add_signed(by);
        }
    }

    /// Moves the difference between the old and the new price: a further charge from the wallet
    /// (what it cannot cover stays uncollected), or a refund (what was uncollected is forgiven
    /// first, the rest goes back to the wallet). Returns the new uncollected part.
    fn adjust(
        &mut self,
        business: &str,
        message: &str,
        was: &Charged,
        amount: Amount,
        now: Instant,
        w: &mut Effects,
    ) -> Amount {
        let Some(rules) = self.wallets.get(business).cloned() else {
            return Amount(amount.0.max(0));
        };
        let delta = amount.0 - was.amount.0;
        let (wallet, revenue) = (wallet_account(business), revenue_account(&rules.currency));
        let (request_amount, debit, credit, uncollected) = if delta > 0 {
            (delta, wallet, revenue, was.uncollected.0)
        } else {
            let forgiven = (-delta).min(was.uncollected.0);
            (
                -delta - forgiven,
                revenue,
                wallet,
                was.uncollected.0 - forgiven,
            )
        };
        if request_amount == 0 {
            return Amount(uncollected);
        }
        if !rules.prepaid {
            return Amount(uncollected + delta.max(0));
        }
        let transfers = MessageTransfers(message);
        let id = (1..)
            .map(|n| transfers.adjustment(n))
            .find(|id| self.ledger.transfer(&id.0).is_none())
            .unwrap_or_else(|| transfers.adjustment(u32::MAX));
        let request = Request::Post {
            id,
            debit_account: debit,
            credit_account: credit,
            amount: Amount(request_amount),
        };
        match self.post(business, request, now, w) {
            Ok(_) => Amount(uncollected),
            // The wallet cannot pay more: the rest is owed, as Meta will bill it anyway.
            Err(_) if delta > 0 => Amount(uncollected + delta),
            Err(e) => {
                w.anomalies
                    .push(format!("refund of {message} refused: {}", error_text(&e)));
                Amount(uncollected)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ingest::new_event;
    use proptest::prelude::*;
    use std::collections::BTreeMap;
    use std::path::Path;
    use tarifa_core::engine::Rater;

    const BUSINESS: &str = "waba-eu";

    fn book() -> Book {
        let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../samples/config.toml");
        let setup =
            crate::runtime::setup::load(&config, Default::default()).expect("sample config");
        let rules = WalletRules {
            prepaid: true,
            currency: "EUR".into(),
            policy: Default::default(),
            min_balance_for_free_service: None,
            alert_url: None,
        };
        let wallets = HashMap::from([(BUSINESS.to_string(), rules)]);
        let mut book = Book::new(Arc::new(setup), wallets, 30, 5);
        let mut w = Effects::default();
        book.open_accounts(0, &mut w).unwrap();
        book.top_up(BUSINESS, "t", Decimal::from(1000), 0, &mut w)
            .unwrap();
        book
    }

    /// One message's history: its recipient, kind, whether its send record exists, how it ended
    /// and Meta's pricing on a delivered status (category, type).
    #[derive(Clone, Debug)]
    struct Story {
        user: u8,
        minute: u16,
        template: Option<&'static str>,
        recorded: bool,
        outcome: u8,
        pricing: Option<(&'static str, &'static str)>,
    }

    fn story() -> impl Strategy<Value = Story> {
        let template = prop::option::of(prop::sample::select(vec![
            "marketing",
            "utility",
            "authentication",
        ]));
        let pricing = prop::option::of((
            prop::sample::select(vec!["marketing", "utility", "service", "authentication"]),
            prop::sample::select(vec!["regular", "free_customer_service", "free_entry_point"]),
        ));
        (0..2u8, 0..4000u16, template, any::<bool>(), 0..4u8, pricing).prop_map(
            |(user, minute, template, recorded, outcome, pricing)| Story {
                user,
                minute,
                template,
                recorded,
                outcome,
                pricing,
            },
        )
    }

    fn number(user: u8) -> String {
        format!("346000000{user:02}")
    }

    /// The lines of a history: every message's send record and statuses, and user messages.
    fn lines(start: Instant, stories: &[Story], inbound: &[(u8, u16, bool)]) -> Vec<String> {
        let at = |minute: u16| start + i64::from(minute) * 60;
        let mut out = Vec::new();
        for (i, s) in stories.iter().enumerate() {
            let (id, user, t) = (format!("wamid.{i}"), number(s.user), at(s.minute));
            if s.recorded {
                let template = s.template.map_or(String::new(), |c| {
                    format!(r#","template":{{"name":"t","category":"{c}"}}"#)
                });
                out.push(format!(r#"{{"type":"outbound","id":"{id}","at":{t},"business":"{BUSINESS}","phone":"pn-1","user":"{user}"{template}}}"#));
            }
            let status = |status: &str, dt: i64, pricing: &str| {
                format!(
                    r#"{{"type":"status","id":"{id}","at":{},"status":"{status}","business":"{BUSINESS}","phone":"pn-1","recipient":"{user}"{pricing}}}"#,
                    t + dt
                )
            };
            out.push(status("sent", 1, ""));
            let pricing = s.pricing.map_or(String::new(), |(c, ty)| {
                format!(r#","pricing":{{"pricing_model":"PMP","category":"{c}","type":"{ty}"}}"#)
            });
            match s.outcome {
                0 => out.push(status("failed", 2, "")),
                1 => out.push(status("delivered", 2, &pricing)),
                2 => {
                    out.push(status("delivered", 2, ""));
                    out.push(status("read", 30, &pricing));
                }
                _ => {}
            }
        }
        for (k, &(user, minute, referral)) in inbound.iter().enumerate() {
            let referral = if referral {
                r#","referral":{"source_type":"ad"}"#
            } else {
                ""
            };
            out.push(format!(r#"{{"type":"inbound","id":"in.{k}","at":{},"business":"{BUSINESS}","phone":"pn-1","user":"{}"{referral}}}"#, at(minute), number(user)));
        }
        out
    }

    /// Each message's amount in the batch bill, in ledger units.
    fn batch(setup: &Arc<Setup>, lines: &[String]) -> BTreeMap<String, Amount> {
        let mut rater = Rater::new(setup.clone());
        for l in lines {
            rater.push_line(l.as_bytes()).unwrap();
        }
        let bill = rater.finish();
        let mut out: BTreeMap<String, Decimal> = BTreeMap::new();
        for v in bill.messages() {
            *out.entry(v.id.to_string()).or_default() += v.line.amount;
        }
        out.into_iter().map(|(id, a)| (id, to_amount(a))).collect()
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the order the events arrive in (and their duplicates), once all have
        /// arrived every message's charge is its batch price and the wallet paid exactly their
        /// sum; the ledger stays balanced after every event.
        #[test]
        fn live_charges_converge_to_the_batch_bill(
            stories in prop::collection::vec(story(), 1..7),
            inbound in prop::collection::vec((0..2u8, 0..4000u16, any::<bool>()), 0..5),
            late_era in any::<bool>(),
            order in prop::collection::vec(any::<u32>(), 60),
            repeats in prop::collection::vec(any::<u8>(), 0..8),
        ) {
            // 2026-07-15 (service free) or 2026-10-05 (service charged), 09:00 in Madrid.
            let start: Instant = if late_era { 1_791_190_800 } else { 1_784_098_800 };
            let all = lines(start, &stories, &inbound);
            let mut arrival: Vec<(u32, &String)> =
                all.iter().enumerate().map(|(i, l)| (order[i % order.len()] ^ i as u32, l)).collect();
            arrival.sort();
            let mut arrival: Vec<&String> = arrival.into_iter().map(|(_, l)| l).collect();
            for r in &repeats {
                arrival.push(arrival[usize::from(*r) % arrival.len()]);
            }
            let mut book = book();
            let now = start + 4100 * 60;
            let mut seen = std::collections::HashSet::new();
            for line in arrival {
                let mut events = Vec::new();
                parse_line(line.as_bytes(), &mut |e| events.push(e.into_owned())).unwrap();
                for e in events {
                    let row = new_event(e, now).unwrap();
                    if !seen.insert(row.key.clone()) {
                        continue;
                    }
                    let mut w = Effects::default();
                    let outcome = book.apply_event(row, now, &mut w);
                    prop_assert_eq!(outcome, Outcome::Stored);
                    prop_assert!(w.anomalies.is_empty(), "{:?}", w.anomalies);
                    let t = book.ledger.totals("EUR");
                    prop_assert_eq!(t.debits_posted, t.credits_posted, "posted transfers balance");
                    prop_assert_eq!(t.debits_pending, t.credits_pending, "pending ones too");
                    let wallet = book.ledger.balance(&wallet_account(BUSINESS).0).unwrap();
                    prop_assert!(wallet.available.0 >= 0, "no wallet below its floor");
                }
            }
            let expected = batch(&book.setup, &all);
            let mut paid = 0i128;
            for (id, want) in &expected {
                let live = book.messages.get(id.as_str())
                    .and_then(|m| m.charged.as_ref().map(|c| c.amount))
                    .unwrap_or(Amount::ZERO);
                prop_assert_eq!(live, *want, "message {}", id);
                paid += want.0;
            }
            let balance = book.ledger.balance(&wallet_account(BUSINESS).0).unwrap();
            prop_assert_eq!(balance.posted.0, 1000 * 1_000_000 - paid);
        }
    }
}
