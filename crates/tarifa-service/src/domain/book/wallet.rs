//! The wallets' side of the book: accounts opened from the config, the hold of a message
//! recorded as sent, its capture or release when Meta reports it delivered or failed, top-ups,
//! expiry, and low-balance alerts. Every ledger request goes through `post`, which records it in
//! the effects.

use super::*;

/// Free because it is customer service (in a window, or the monthly service allowance).
pub(super) fn is_free_service(priced: &LivePrice) -> bool {
    matches!(
        priced.pricing_type,
        PricingType::FreeCustomerService | PricingType::FreeTier
    )
}

/// The largest single top-up, in the wallet's currency: a bound on what one request can move
/// (a typo of a few digits is refused, not credited).
pub const MAX_TOP_UP: u64 = 1_000_000_000;

impl Book {
    /// The ledger operations that open every configured account not opened yet; returns the
    /// accounts whose rules (floor, alert threshold) changed in the config since they were
    /// opened: the ledger keeps the rules it opened them with.
    pub fn open_accounts(&mut self, now: Instant, w: &mut Effects) -> anyhow::Result<Vec<String>> {
        let mut wanted = Vec::new();
        let mut changed = Vec::new();
        for (business, rules) in &self.wallets {
            for (id, kind) in [
                (wallet_account(business), AccountKind::Wallet(rules.policy)),
                (revenue_account(&rules.currency), AccountKind::Revenue),
                (funding_account(&rules.currency), AccountKind::Funding),
            ] {
                wanted.push(NewAccount {
                    id,
                    currency: rules.currency.clone(),
                    kind,
                });
            }
        }
        wanted.sort_by(|a, b| a.id.0.cmp(&b.id.0));
        wanted.dedup_by(|a, b| a.id == b.id);
        for account in wanted {
            match self.ledger.account(&account.id.0) {
                Some(existing) if existing.kind != account.kind => changed.push(account.id.0),
                Some(_) => {}
                None => {
                    self.ledger
                        .create_account(&account)
                        .map_err(|e| anyhow::anyhow!("account {}: {e:?}", account.id.0))?;
                    push_op(w, now, LedgerOp::CreateAccount(account));
                }
            }
        }
        Ok(changed)
    }

    /// The hold for a chargeable message recorded as sent, or the refusal (402).
    pub(super) fn hold(
        &mut self,
        row: &NewEvent,
        o: &Outbound<'_>,
        now: Instant,
        w: &mut Effects,
    ) -> Result<(), Outcome> {
        let Some(rules) = self.wallets.get(&row.business).cloned() else {
            return Ok(());
        };
        if !rules.prepaid {
            return Ok(());
        }
        let key = ConversationKey::new(&row.business, o.user.as_ref());
        let delivered = Event::Status(Status::delivered(&o.id, o.at));
        let priced = match self.rate(&key, &[&row.event, &delivered], &o.id) {
            Ok(priced) => priced,
            Err(e) => {
                w.anomalies.push(format!("no hold for {}: {e}", o.id));
                return Ok(());
            }
        };
        let wallet = wallet_account(&row.business);
        let balance = self.ledger.balance(&wallet.0).unwrap_or_default();
        if is_free_service(&priced)
            && !tarifa_core::ledger::may_use_free_service(
                &balance,
                rules.min_balance_for_free_service,
            )
        {
            return Err(Outcome::rejected(
                "min_balance_for_free_service",
                format!(
                    "free service messages need an available balance of at least {} {} (wallet has {})",
                    rules.min_balance_for_free_service.map(amount_text).unwrap_or_default(),
                    rules.currency,
                    amount_text(balance.available)
                ),
            ));
        }
        let amount = to_amount(priced.amount);
        if !amount.is_positive() {
            return Ok(());
        }
        let request = Request::Hold {
            id: MessageTransfers(&o.id).hold(),
            debit_account: wallet,
            credit_account: revenue_account(&rules.currency),
            amount,
            timeout: o.at.max(now) + self.hold_secs,
        };
        match self.post(&row.business, request, now, w) {
            Ok(_) => Ok(()),
            Err(LedgerError::InsufficientFunds {
                available,
                required,
                ..
            }) => Err(Outcome::rejected(
                "insufficient_funds",
                format!(
                    "the wallet cannot cover this message: it costs {} {}, {} is available",
                    amount_text(required),
                    rules.currency,
                    amount_text(available)
                ),
            )),
            Err(e) => Err(Outcome::rejected("ledger", error_text(&e))),
        }
    }

    /// Applies a request and stores it; signals a low balance.
    pub(super) fn post(
        &mut self,
        business: &str,
        request: Request,
        now: Instant,
        w: &mut Effects,
    ) -> Result<Applied, LedgerError> {
        let applied = self.ledger.apply(&request)?;
        if applied.status == tarifa_core::ledger::Status::Created {
            self.applied_at.insert(request.id().0.clone(), now);
            push_op(w, now, LedgerOp::Apply(request));
        }
        if applied.crossed_low_balance {
            self.alert(business, now, w);
        }
        Ok(applied)
    }

    pub(super) fn alert(&self, business: &str, now: Instant, w: &mut Effects) {
        let Some(rules) = self.wallets.get(business) else {
            return;
        };
        let Some(url) = &rules.alert_url else {
            return;
        };
        let balance = self
            .ledger
            .balance(&wallet_account(business).0)
            .unwrap_or_default();
        let payload = serde_json::json!({
            "type": "wallet.low_balance",
            "business": business,
            "currency": rules.currency,
            "available": amount_text(balance.available),
            "threshold": rules.policy.low_balance_threshold.map(amount_text),
            "at": now,
        });
        w.alerts.push(Alert {
            business: business.to_string(),
            url: url.clone(),
            payload: payload.to_string(),
            first_attempt_at: now,
        });
    }

    pub(super) fn settle_delivered(
        &mut self,
        message: &str,
        key: &ConversationKey,
        now: Instant,
        w: &mut Effects,
    ) {
        let priced = match self.rate(key, &[], message) {
            Ok(priced) => priced,
            // A status of a message no outbound record or status describes: nothing to settle.
            Err(LiveError::NotFound { .. }) => return,
            Err(e) => {
                w.anomalies
                    .push(format!("delivery of {message} not priced: {e}"));
                return;
            }
        };
        let business = key.business.clone();
        let currency = priced.currency.clone();
        let amount = to_amount(priced.amount);
        let (captured, uncollected) = self.collect(&business, message, amount, &currency, now, w);
        for k in &priced.counted {
            *self.counts.entry(k.clone()).or_default() += 1;
        }
        self.mark_settled(message);
        self.keep_charged(
            message,
            Charged {
                amount,
                uncollected,
                pricing_type: priced.pricing_type,
                at: priced.at,
                counted: priced.counted.clone(),
            },
        );
        w.charges.push(Charge {
            message: message.to_string(),
            business,
            at: priced.at,
            pricing_type: priced.pricing_type,
            category: priced.category.as_str().to_string(),
            rule: priced.rule.to_string(),
            amount: priced.amount,
            currency,
            captured,
            uncollected,
            counters: priced.counted,
        });
    }

    /// Takes a delivered message's price from its wallet: the hold's capture (the hold is
    /// released when the message turned out free), and a direct charge of what the hold did not
    /// cover; what the wallet could not cover (a postpaid business, or a prepaid one whose
    /// wallet fell short) is uncollected. Returns (captured, uncollected).
    fn collect(
        &mut self,
        business: &str,
        message: &str,
        amount: Amount,
        currency: &str,
        now: Instant,
        w: &mut Effects,
    ) -> (Amount, Amount) {
        let transfers = MessageTransfers(message);
        let mut captured = Amount::ZERO;
        if let Some(hold) = self.open_hold(&transfers).map(|t| t.amount) {
            if amount.is_positive() {
                let take = if amount.0 <= hold.0 { amount } else { hold };
                let capture = Request::Capture {
                    id: transfers.capture(),
                    pending_id: transfers.hold(),
                    amount: take,
                };
                match self.post(business, capture, now, w) {
                    Ok(_) => captured = take,
                    Err(e) => w.anomalies.push(format!(
                        "capture of {} refused: {}",
                        transfers.hold().0,
                        error_text(&e)
                    )),
                }
            } else {
                self.release_hold(business, &transfers, now, w);
            }
        }
        let rest = Amount(amount.0 - captured.0);
        let prepaid = self.wallets.get(business).is_some_and(|r| r.prepaid);
        if !rest.is_positive() {
            return (captured, Amount::ZERO);
        }
        if !prepaid {
            return (captured, rest);
        }
        let charge = Request::Post {
            id: transfers.charge(),
            debit_account: wallet_account(business),
            credit_account: revenue_account(currency),
            amount: rest,
        };
        match self.post(business, charge, now, w) {
            Ok(_) => (amount, Amount::ZERO),
            Err(_) => (captured, rest),
        }
    }

    pub(super) fn settle_failed(&mut self, message: &str, now: Instant, w: &mut Effects) {
        let Some(business) = self.business_of(message).map(str::to_string) else {
            return;
        };
        self.release_hold(&business, &MessageTransfers(message), now, w);
    }

    /// The hold of a message (or reservation) while it is open (not captured, released or
    /// expired).
    pub(super) fn open_hold(
        &self,
        transfers: &MessageTransfers<'_>,
    ) -> Option<&tarifa_core::ledger::Transfer> {
        let hold = transfers.hold();
        self.ledger
            .transfer(&hold.0)
            .filter(|_| self.ledger.resolution(&hold.0).is_none())
    }

    /// Releases the hold of a message (or reservation) if it is open. The ledger refuses a
    /// release only if the hold is not open, which was just checked: should it refuse anyway,
    /// nothing was applied and the refusal goes into `w.anomalies` for the writer to report.
    pub(super) fn release_hold(
        &mut self,
        business: &str,
        transfers: &MessageTransfers<'_>,
        now: Instant,
        w: &mut Effects,
    ) {
        if self.open_hold(transfers).is_none() {
            return;
        }
        let release = Request::Release {
            id: transfers.release(),
            pending_id: transfers.hold(),
        };
        if let Err(e) = self.post(business, release, now, w) {
            w.anomalies.push(format!(
                "release of {} refused: {}",
                transfers.hold().0,
                error_text(&e)
            ));
        }
    }

    /// Releases holds whose delivery never came (Meta's 30 days).
    pub fn expire(&mut self, now: Instant, w: &mut Effects) {
        let expired = self.ledger.expire(now);
        if !expired.is_empty() {
            for t in &expired {
                self.applied_at.insert(t.id.0.clone(), now);
            }
            push_op(w, now, LedgerOp::Expire(now));
        }
    }

    /// A top-up: funding → wallet, idempotent by `id`.
    pub fn top_up(
        &mut self,
        business: &str,
        id: &str,
        amount: Decimal,
        now: Instant,
        w: &mut Effects,
    ) -> Result<Applied, DomainError> {
        let rules = self
            .wallets
            .get(business)
            .cloned()
            .ok_or_else(|| DomainError::NoWallet(business.to_string()))?;
        if !rules.prepaid {
            return Err(DomainError::Invalid(format!(
                "business {business:?} is postpaid (invoiced, no prepaid wallet): it takes no top-ups"
            )));
        }
        if amount <= Decimal::ZERO || amount > Decimal::from(MAX_TOP_UP) || amount.scale() > 6 {
            return Err(DomainError::Invalid(format!(
                "amount: a top-up is more than 0 and at most {MAX_TOP_UP}, with at most 6 decimals"
            )));
        }
        let amount = Amount::from_decimal_non_negative(amount)
            .map_err(|e| DomainError::Invalid(format!("amount: {e}")))?;
        let request = Request::Post {
            id: top_up(id),
            debit_account: funding_account(&rules.currency),
            credit_account: wallet_account(business),
            amount,
        };
        Ok(self.post(business, request, now, w)?)
    }
}
