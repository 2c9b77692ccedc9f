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

impl Book {
    pub(super) fn is_settled(&self, message: &str) -> bool {
        self.messages.get(message).is_some_and(|m| m.settled)
    }

    pub(super) fn keep_charged(&mut self, message: &str, charged: Charged) {
        if let Some(m) = self.messages.get_mut(message) {
            m.charged = Some(Box::new(charged));
        }
    }

    /// Re-prices the settled messages whose price `event` may change.
    pub(super) fn reprice_on_evidence(
        &mut self,
        event: &Event<'_>,
        key: Option<&ConversationKey>,
        now: Instant,
        w: &mut Effects,
    ) {
        let concerned = match event {
            Event::Outbound(o) if o.group.is_none() => vec![o.id.to_string()],
            Event::Status(s) if s.pricing.is_some() || s.conversation_origin.is_some() => {
                vec![s.id.to_string()]
            }
            Event::Inbound(i) => key.map_or_else(Vec::new, |k| self.settled_after(k, i.at)),
            _ => Vec::new(),
        };
        for message in concerned {
            if self.is_settled(&message) {
                self.reprice(&message, now, w);
            }
        }
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
            return;
        }
        let uncollected = self.adjust(&key.business, message, &was, amount, now, w);
        let now_charged = Charged {
            amount,
            uncollected,
            pricing_type: priced.pricing_type,
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
