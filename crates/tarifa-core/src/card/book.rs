//! [`RateBook`]: every loaded version of both kinds of card, by currency and effective date
//! (RC-5), answering "which card is in force on this date" and building resale copies.

use super::error::CardError;
use super::rate_card::RateCard;
use super::tier_card::TierCard;
use crate::time::LocalDate;
use rust_decimal::Decimal;

/// What the book needs of a card: its key (currency, effective date), its source for errors and
/// resale labels, and a scaled copy.
trait Versioned: Clone {
    fn currency(&self) -> &str;
    fn effective(&self) -> LocalDate;
    fn source(&self) -> &str;
    fn scaled_by(&self, factor: Decimal, source: &str) -> Self;
}

/// Both kinds of card carry the same public `currency`, `effective` and `source` fields and a
/// `scaled` method, so they are versioned alike.
macro_rules! impl_versioned {
    ($($card:ty),+) => {$(
        impl Versioned for $card {
            fn currency(&self) -> &str {
                &self.currency
            }
            fn effective(&self) -> LocalDate {
                self.effective
            }
            fn source(&self) -> &str {
                &self.source
            }
            fn scaled_by(&self, factor: Decimal, source: &str) -> Self {
                self.scaled(factor, source)
            }
        }
    )+};
}

impl_versioned!(RateCard, TierCard);

/// All versions of one kind of card, per currency (few currencies: a Vec scanned linearly),
/// each currency's versions sorted by effective date.
#[derive(Debug, Clone)]
struct Versions<T> {
    by_currency: Vec<(String, Vec<T>)>,
}

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Versions {
            by_currency: Vec::new(),
        }
    }
}

impl<T: Versioned> Versions<T> {
    fn add(&mut self, card: T, kind: &str) -> Result<(), CardError> {
        let cur = card.currency().to_ascii_uppercase();
        let pos = match self
            .by_currency
            .binary_search_by(|(c, _)| c.as_str().cmp(&cur))
        {
            Ok(p) => p,
            Err(p) => {
                self.by_currency.insert(p, (cur.clone(), Vec::new()));
                p
            }
        };
        let cards = &mut self.by_currency[pos].1;
        match cards.binary_search_by_key(&card.effective(), |c| c.effective()) {
            Ok(i) => Err(CardError::new(
                card.source(),
                0,
                format!(
                    "duplicate {kind} version {cur} effective {} (already loaded from {})",
                    card.effective(),
                    cards[i].source()
                ),
            )),
            Err(i) => {
                cards.insert(i, card);
                Ok(())
            }
        }
    }

    #[inline]
    fn versions(&self, currency: &str) -> &[T] {
        self.by_currency
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(currency))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    #[inline]
    fn at(&self, currency: &str, date: LocalDate) -> Option<&T> {
        let cards = self.versions(currency);
        let n = cards.partition_point(|c| c.effective() <= date);
        n.checked_sub(1).map(|i| &cards[i])
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_currency.iter().flat_map(|(_, v)| v.iter())
    }

    fn scaled(&self, factor: Decimal, label: &str) -> Versions<T> {
        Versions {
            by_currency: self
                .by_currency
                .iter()
                .map(|(c, cards)| {
                    let cards = cards
                        .iter()
                        .map(|card| {
                            card.scaled_by(
                                factor,
                                &format!("{label} ({} × {factor})", card.source()),
                            )
                        })
                        .collect();
                    (c.clone(), cards)
                })
                .collect(),
        }
    }
}

/// Every rate-card and tier-card version loaded, keyed by (currency, effective date) (RC-5).
#[derive(Debug, Clone, Default)]
pub struct RateBook {
    rates: Versions<RateCard>,
    tiers: Versions<TierCard>,
}

impl RateBook {
    pub fn new() -> Self {
        RateBook::default()
    }

    /// Adds a rates-CSV version; error if one with the same (currency, effective) is loaded.
    /// Excerpts ([`RateCard::is_excerpt`]) are accepted: skipping them is the loader's choice.
    pub fn add_rate_card(&mut self, card: RateCard) -> Result<(), CardError> {
        self.rates.add(card, "rate card")
    }

    /// Adds a volume-tiers version; error if one with the same (currency, effective) is loaded.
    pub fn add_tier_card(&mut self, card: TierCard) -> Result<(), CardError> {
        self.tiers.add(card, "tier card")
    }

    /// The rate card in force on `date` (a WABA-local date): the latest with effective <= date.
    /// `None` before the first version or for an unknown currency.
    #[inline]
    pub fn rate_card(&self, currency: &str, date: LocalDate) -> Option<&RateCard> {
        self.rates.at(currency, date)
    }

    /// The tier card in force on `date`, as [`RateBook::rate_card`].
    #[inline]
    pub fn tier_card(&self, currency: &str, date: LocalDate) -> Option<&TierCard> {
        self.tiers.at(currency, date)
    }

    /// A currency's rate-card versions, oldest first.
    pub fn rate_card_versions(&self, currency: &str) -> &[RateCard] {
        self.rates.versions(currency)
    }

    /// A currency's tier-card versions, oldest first.
    pub fn tier_card_versions(&self, currency: &str) -> &[TierCard] {
        self.tiers.versions(currency)
    }

    /// Currencies with a rate card or a tier card, sorted, each once.
    pub fn currencies(&self) -> impl Iterator<Item = &str> + '_ {
        let mut all: Vec<&str> = self
            .rates
            .by_currency
            .iter()
            .map(|(c, _)| c.as_str())
            .collect();
        all.extend(self.tiers.by_currency.iter().map(|(c, _)| c.as_str()));
        all.sort_unstable();
        all.dedup();
        all.into_iter()
    }

    /// Every rate card, by currency then effective date.
    pub fn rate_cards(&self) -> impl Iterator<Item = &RateCard> {
        self.rates.iter()
    }

    /// Every tier card, by currency then effective date.
    pub fn tier_cards(&self) -> impl Iterator<Item = &TierCard> {
        self.tiers.iter()
    }

    /// A resale price list: every rate of every card × `factor` (e.g. a BSP's 20 % mark-up);
    /// sources become `"{label} ({source} × {factor})"`.
    pub fn scaled(&self, factor: Decimal, label: &str) -> RateBook {
        RateBook {
            rates: self.rates.scaled(factor, label),
            tiers: self.tiers.scaled(factor, label),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;
    use crate::card::RateColumn;

    fn usd_card(y: i32, mo: u32, rate: &str) -> RateCard {
        let mut c = RateCard::new("USD", LocalDate::ymd(y, mo, 1), &format!("usd-{y}-{mo}"));
        c.set_rate(m("Brazil"), RateColumn::Marketing, Some(d(rate)));
        c
    }

    /// RC-5: versions keyed by (currency, effective); the card in force is the latest effective
    /// on or before the date; none before the first.
    #[test]
    fn rc5_rate_book_versions() {
        let mut book = RateBook::new();
        book.add_rate_card(usd_card(2023, 6, "0.0625")).unwrap();
        book.add_rate_card(usd_card(2022, 2, "0.0500")).unwrap();
        book.add_rate_card(usd_card(2025, 7, "0.0625")).unwrap();
        let mut eur = RateCard::new("eur", LocalDate::ymd(2026, 7, 1), "eur");
        eur.set_rate(m("Brazil"), RateColumn::Marketing, Some(d("0.0518")));
        book.add_rate_card(eur).unwrap();

        let at = |cur: &str, y, mo, da| {
            book.rate_card(cur, LocalDate::ymd(y, mo, da))
                .map(|c| c.source.as_str())
        };
        assert_eq!(at("USD", 2022, 1, 31), None);
        assert_eq!(at("USD", 2022, 2, 1), Some("usd-2022-2"));
        assert_eq!(at("USD", 2023, 5, 31), Some("usd-2022-2"));
        assert_eq!(at("USD", 2023, 6, 1), Some("usd-2023-6"));
        assert_eq!(at("USD", 2025, 6, 30), Some("usd-2023-6"));
        assert_eq!(at("usd", 2030, 1, 1), Some("usd-2025-7"));
        assert_eq!(at("EUR", 2026, 6, 30), None);
        assert_eq!(at("EUR", 2026, 7, 1), Some("eur"));
        assert_eq!(at("GBP", 2026, 7, 1), None);
        assert_eq!(book.currencies().collect::<Vec<_>>(), vec!["EUR", "USD"]);
        assert_eq!(book.rate_cards().count(), 4);
        let versions: Vec<LocalDate> = book
            .rate_card_versions("USD")
            .iter()
            .map(|c| c.effective)
            .collect();
        assert_eq!(
            versions,
            vec![
                LocalDate::ymd(2022, 2, 1),
                LocalDate::ymd(2023, 6, 1),
                LocalDate::ymd(2025, 7, 1)
            ]
        );

        // Duplicate version.
        let e = book.add_rate_card(usd_card(2023, 6, "0.07")).unwrap_err();
        assert!(
            e.message.contains("duplicate") && e.message.contains("usd-2023-6"),
            "{e}"
        );
        assert_eq!(book.rate_cards().count(), 4);

        // Resale book.
        let resale = book.scaled(d("1.2"), "Pancake");
        let c = resale.rate_card("USD", LocalDate::ymd(2023, 7, 1)).unwrap();
        assert_eq!(c.rate(m("Brazil"), RateColumn::Marketing), Some(d("0.075")));
        assert_eq!(c.source, "Pancake (usd-2023-6 × 1.2)");
    }
}
