//! Quotes: what a planned message would cost now and whether it may be sent (customer service
//! window, opt-outs, Meta's US marketing pause, the wallet), and the reservations the service
//! makes for messages it sends itself (sales recovery).

use super::wallet::is_free_service;
use super::*;
use tarifa_core::ledger::Balance;

/// The answer to a quote.
#[derive(Clone, Debug, Serialize)]
pub struct Quote {
    pub allowed: bool,
    /// Why it may not be sent (empty when allowed).
    pub blocked_by: Vec<Block>,
    pub currency: String,
    /// Exact decimal text.
    pub amount: String,
    pub pricing_type: String,
    pub category: String,
    pub rule: String,
    pub explanation: String,
    /// Volume-tier band (1-based), when one applied.
    pub band: Option<u8>,
    pub customer_service_window_open: bool,
    pub wallet: Option<WalletView>,
}

#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Block {
    pub code: &'static str,
    pub message: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct WalletView {
    pub currency: String,
    pub posted: String,
    pub pending: String,
    pub available: String,
}

/// A planned message, for a quote.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Planned {
    pub business: String,
    pub phone: String,
    #[serde(deserialize_with = "crate::domain::phone::digits")]
    pub user: String,
    /// `None`: a free-form (non-template) message.
    pub template: Option<PlannedTemplate>,
    /// Unix seconds or RFC 3339; default now.
    pub at: Option<serde_json::Value>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlannedTemplate {
    #[serde(default)]
    pub name: String,
    pub category: String,
}

/// A message Meta would refuse to deliver costs nothing (1-2): the quote says so, rather than
/// the price it would have had (a free-form message outside the window is not `free_tier`).
fn undeliverable(priced: LivePrice, block: &Block) -> LivePrice {
    LivePrice {
        amount: Decimal::ZERO,
        pricing_type: PricingType::NotDelivered,
        rule: "1-2",
        explanation: format!(
            "not deliverable ({}): Meta would not deliver it, and an undelivered message is never charged (1-2)",
            block.code
        ),
        band: None,
        rate: None,
        charged: false,
        unrated: None,
        note: tarifa_core::bill::Note::None,
        ..priced
    }
}

fn is_us_number(user: &str) -> bool {
    matches!(
        tarifa_core::market::country_of(user),
        Ok(Some(c)) if c.as_str() == "US"
    )
}

impl Book {
    /// What a planned message would cost now and whether it may be sent.
    pub fn quote(&self, p: &Planned, at: Instant) -> Result<Quote, DomainError> {
        if !self.knows_business(&p.business) {
            return Err(DomainError::UnknownBusiness(p.business.clone()));
        }
        let category = planned_category(p)?;
        let key = ConversationKey::new(&p.business, &p.user);
        let id = "tarifa.quote";
        let outbound = Event::Outbound(planned_outbound(p, id, at, category)?);
        let extra = [outbound, Event::Status(Status::delivered(id, at))];
        let extra: Vec<&Event<'_>> = extra.iter().collect();
        let priced = self.rate(&key, &extra, id).map_err(DomainError::NotRated)?;
        let window = self.window_open(&key, at);
        let wallet = self.wallets.get(&p.business).map(|rules| {
            let account = wallet_account(&p.business);
            let balance = self.ledger.balance(&account.0).unwrap_or_default();
            (rules.clone(), balance)
        });
        let mut blocked_by = self.delivery_blocks(p, &key, category, window, at);
        let priced = match blocked_by.first() {
            Some(block) => undeliverable(priced, block),
            None => priced,
        };
        if let Some((rules, balance)) = &wallet {
            blocked_by.extend(wallet_blocks(rules, balance, &priced));
        }
        Ok(Quote {
            allowed: blocked_by.is_empty(),
            blocked_by,
            currency: priced.currency.clone(),
            amount: priced.amount.normalize().to_string(),
            pricing_type: priced.pricing_type.to_string(),
            category: priced.category.as_str().to_string(),
            rule: priced.rule.to_string(),
            explanation: priced.explanation.clone(),
            band: priced.band,
            customer_service_window_open: window,
            wallet: wallet.map(|(rules, b)| WalletView {
                currency: rules.currency,
                posted: amount_text(b.posted),
                pending: amount_text(b.pending),
                available: amount_text(b.available),
            }),
        })
    }

    /// What keeps Meta from delivering the planned message: no customer service window for a
    /// free-form message, a marketing opt-out, Meta's pause of marketing to US numbers.
    fn delivery_blocks(
        &self,
        p: &Planned,
        key: &ConversationKey,
        category: Option<TemplateCategory>,
        window: bool,
        at: Instant,
    ) -> Vec<Block> {
        let mut blocked_by = Vec::new();
        if category.is_none() && !window {
            blocked_by.push(Block {
                code: "customer_service_window_closed",
                message: "a free-form message needs a customer service window (a message from the user in the last 24 hours); send a template (Meta error 131047)".into(),
            });
        }
        let marketing = matches!(
            category,
            Some(TemplateCategory::Marketing) | Some(TemplateCategory::MarketingLite)
        );
        if marketing && self.optouts.contains(key) {
            blocked_by.push(Block {
                code: "marketing_opt_out",
                message: "the user stopped marketing messages (Meta error 131050)".into(),
            });
        }
        if marketing && at >= US_MARKETING_PAUSED_FROM && is_us_number(&p.user) {
            blocked_by.push(Block {
                code: "us_marketing_not_delivered",
                message:
                    "Meta does not deliver marketing templates to US (+1) numbers since 2025-04-01"
                        .into(),
            });
        }
        blocked_by
    }

    /// Quotes a message the service itself is about to send at `at` (a recovery message) and, when it
    /// may be sent and costs something, holds that cost under `reservation` until the send is
    /// recorded ([`Book::record_reserved`]) or given up ([`Book::cancel_reservation`]). The hold
    /// times out after `timeout_secs`, so a crash between the two never keeps money held.
    pub fn reserve(
        &mut self,
        planned: &Planned,
        reservation: &str,
        at: Instant,
        now: Instant,
        timeout_secs: i64,
        w: &mut Effects,
    ) -> Result<Quote, DomainError> {
        let quote = self.quote(planned, at)?;
        if !quote.allowed {
            return Ok(quote);
        }
        let Some(rules) = self.wallets.get(&planned.business).cloned() else {
            return Ok(quote);
        };
        let amount: Decimal = (quote.amount.parse())
            .map_err(|_| DomainError::Invalid(format!("unreadable quote {:?}", quote.amount)))?;
        let amount = to_amount(amount);
        if !rules.prepaid || !amount.is_positive() {
            return Ok(quote);
        }
        let request = Request::Hold {
            id: MessageTransfers(reservation).hold(),
            debit_account: wallet_account(&planned.business),
            credit_account: revenue_account(&rules.currency),
            amount,
            timeout: now + timeout_secs,
        };
        match self.post(&planned.business, request, now, w) {
            Ok(_) => Ok(quote),
            Err(LedgerError::InsufficientFunds { .. }) => Ok(Quote {
                allowed: false,
                blocked_by: vec![Block {
                    code: "insufficient_funds",
                    message: "the wallet cannot cover this message".into(),
                }],
                ..quote
            }),
            Err(e) => Err(DomainError::Ledger(e)),
        }
    }

    /// Lets go of a reservation (the message was not sent).
    pub fn cancel_reservation(
        &mut self,
        business: &str,
        reservation: &str,
        now: Instant,
        w: &mut Effects,
    ) {
        self.release_hold(business, &MessageTransfers(reservation), now, w);
    }

    /// Records a reserved message as sent: the reservation is released and the outbound event
    /// applied in the same step, so its own hold takes the money the reservation kept.
    pub fn record_reserved(
        &mut self,
        reservation: &str,
        row: NewEvent,
        now: Instant,
        w: &mut Effects,
    ) -> Outcome {
        let business = row.business.clone();
        self.cancel_reservation(&business, reservation, now, w);
        self.apply_event(row, now, w)
    }
}

/// The planned template's category (`None`: a free-form message).
fn planned_category(p: &Planned) -> Result<Option<TemplateCategory>, DomainError> {
    let Some(t) = &p.template else {
        return Ok(None);
    };
    TemplateCategory::parse(&t.category)
        .map(Some)
        .ok_or_else(|| {
            DomainError::Invalid(format!(
                "template.category {:?} is not marketing, utility or authentication",
                t.category
            ))
        })
}

/// The planned message as the outbound record it would be, under the id `id`.
fn planned_outbound<'a>(
    p: &'a Planned,
    id: &'a str,
    at: Instant,
    category: Option<TemplateCategory>,
) -> Result<Outbound<'a>, DomainError> {
    for (field, value) in [("phone", &p.phone), ("user", &p.user)] {
        if value.is_empty() {
            return Err(DomainError::Invalid(format!("field `{field}` is empty")));
        }
    }
    let template = (p.template.as_ref())
        .zip(category)
        .map(|(t, c)| (t.name.as_str(), c));
    Ok(Outbound::planned(
        id,
        at,
        &p.business,
        &p.phone,
        &p.user,
        template,
    ))
}

/// What a prepaid wallet says against the planned message: not enough money, or not enough for
/// the free service tier.
fn wallet_blocks(rules: &WalletRules, balance: &Balance, priced: &LivePrice) -> Vec<Block> {
    let mut blocked_by = Vec::new();
    if !rules.prepaid {
        return blocked_by;
    }
    let cost = to_amount(priced.amount);
    if cost.is_positive() && balance.available.0 - cost.0 < rules.policy.floor.0 {
        blocked_by.push(Block {
            code: "insufficient_funds",
            message: format!(
                "costs {} {}, the wallet has {} available",
                amount_text(cost),
                rules.currency,
                amount_text(balance.available)
            ),
        });
    }
    let min_balance = rules.min_balance_for_free_service;
    if is_free_service(priced) && !tarifa_core::ledger::may_use_free_service(balance, min_balance) {
        blocked_by.push(Block {
            code: "min_balance_for_free_service",
            message: format!(
                "free service messages need an available balance of at least {} {}",
                min_balance.map(amount_text).unwrap_or_default(),
                rules.currency
            ),
        });
    }
    blocked_by
}
