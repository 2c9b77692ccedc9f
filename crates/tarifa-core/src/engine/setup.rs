//! What a rating run needs besides the events: businesses, rules, markets and prices.

use crate::card::RateBook;
use crate::config::{Business, Rules};
use crate::market::MarketOptions;
use rust_decimal::Decimal;

/// Everything a rating run needs besides the events.
#[derive(Clone, Debug)]
pub struct Setup {
    pub businesses: Vec<Business>,
    pub rules: Rules,
    pub markets: MarketOptions,
    /// Meta's rate and tier cards.
    pub book: RateBook,
    /// Resale price lists (a BSP's prices), by id.
    pub price_lists: Vec<PriceList>,
    /// Which prices the bill is in.
    pub prices: Prices,
}

impl Setup {
    /// This setup with every business under `policy` towards Meta's pricing (E-1, E-2):
    /// reconciliation compares the rules alone with what Meta said.
    pub fn with_meta_policy(mut self, policy: crate::config::MetaPolicy) -> Setup {
        self.rules.meta_pricing = policy;
        for b in &mut self.businesses {
            b.meta_pricing = None;
        }
        self
    }

    /// The cards a business is billed from, and the markup for prices that are not on cards:
    /// Meta's, or with `Prices::Resale` the business's price list (Meta's where it has none).
    pub fn prices_for(&self, business: &Business) -> (&RateBook, Decimal) {
        let list = match self.prices {
            Prices::Meta => None,
            Prices::Resale => business
                .price_list
                .as_ref()
                .and_then(|id| self.price_lists.iter().find(|p| &p.id == id)),
        };
        list.map_or((&self.book, Decimal::ONE), |p| (&p.book, p.markup))
    }
}

/// A resale price list, ready for rating.
#[derive(Clone, Debug)]
pub struct PriceList {
    pub id: String,
    pub book: RateBook,
    /// Applied to prices that are not on cards (Meta Business Agent tokens).
    pub markup: Decimal,
}

/// Which prices a bill is computed in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Prices {
    /// What Meta charges the business (or its BSP).
    #[default]
    Meta,
    /// What each business pays its BSP: its `price_list` (Meta's prices where it has none).
    Resale,
}
