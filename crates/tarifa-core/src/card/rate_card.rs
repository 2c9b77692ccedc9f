//! [`RateCard`]: one version of Meta's rates for one currency, as a table indexed by market and
//! column so that a lookup on the hot path is two array indexes. Reading it from CSV is
//! [`super::rates_csv`]'s job; writing it back and scaling it for resale are here.

use super::column::RateColumn;
use crate::market::Market;
use crate::time::LocalDate;
use rust_decimal::Decimal;

type RateRow = [Option<Decimal>; RateColumn::COUNT];

/// One version of Meta's rates CSV for one currency (RC-3, RC-5).
#[derive(Debug, Clone, PartialEq)]
pub struct RateCard {
    /// ISO 4217, upper case (`"USD"`).
    pub currency: String,
    /// First day the card is in force (00:00 in the WABA's time zone).
    pub effective: LocalDate,
    /// File name or label.
    pub source: String,
    /// Note rows of the file, in order (e.g. Meta's auth-international note, tarifa's source notes).
    pub notes: Vec<String>,
    /// Indexed by `Market.0`, then by [`RateColumn::index`]; always `Market::COUNT` long.
    pub(super) rates: Vec<RateRow>,
    /// Markets that have a row, in file order.
    pub(super) markets: Vec<Market>,
    /// Columns present in the header.
    pub(super) columns: [bool; RateColumn::COUNT],
}

impl RateCard {
    /// An empty card, to be filled with [`RateCard::set_rate`] (tests, synthetic cards).
    pub fn new(currency: &str, effective: LocalDate, source: &str) -> RateCard {
        RateCard {
            currency: currency.to_ascii_uppercase(),
            effective,
            source: source.to_owned(),
            notes: Vec::new(),
            rates: vec![[None; RateColumn::COUNT]; Market::COUNT],
            markets: Vec::new(),
            columns: [false; RateColumn::COUNT],
        }
    }

    /// Sets one cell; adds the market row and the column if they were absent.
    pub fn set_rate(&mut self, market: Market, column: RateColumn, rate: Option<Decimal>) {
        let m = market.0 as usize;
        assert!(m < Market::COUNT, "market index out of range");
        if !self.markets.contains(&market) {
            self.markets.push(market);
        }
        self.columns[column.index()] = true;
        self.rates[m][column.index()] = rate;
    }

    /// The rate of `column` for `market`; `None` when the card has `n/a` there, lacks the column
    /// or has no row for the market. O(1).
    #[inline]
    pub fn rate(&self, market: Market, column: RateColumn) -> Option<Decimal> {
        self.rates.get(market.0 as usize)?[column.index()]
    }

    /// Whether the header has this column.
    pub fn has_column(&self, column: RateColumn) -> bool {
        self.columns[column.index()]
    }

    /// The columns of the header, in [`RateColumn`] order.
    pub fn columns(&self) -> impl Iterator<Item = RateColumn> + '_ {
        RateColumn::ALL
            .into_iter()
            .filter(|c| self.columns[c.index()])
    }

    /// Whether the card has a row for `market` (even if all its cells are `n/a`).
    pub fn has_market(&self, market: Market) -> bool {
        self.markets.contains(&market)
    }

    /// Markets with a row, in file order.
    pub fn markets(&self) -> impl Iterator<Item = Market> + '_ {
        self.markets.iter().copied()
    }

    /// Whether a note row calls this file an excerpt (tarifa's convention for partial sample
    /// files that must not be loaded as a full card version, because they would shadow every other
    /// market's rate from their effective date).
    pub fn is_excerpt(&self) -> bool {
        self.notes
            .iter()
            .any(|n| n.to_ascii_lowercase().contains("excerpt"))
    }

    /// The same card with every rate multiplied by `factor` (a BSP resale mark-up, e.g. × 1.2),
    /// exactly, trailing zeros removed. Panics only if a product overflows `Decimal` (> 7.9e28).
    pub fn scaled(&self, factor: Decimal, source: &str) -> RateCard {
        let mut card = self.clone();
        card.source = source.to_owned();
        for row in &mut card.rates {
            for cell in row.iter_mut() {
                *cell = cell.map(|r| (r * factor).normalize());
            }
        }
        card
    }

    /// Writes the card back in Meta's layout; [`RateCard::parse_csv`] reads it back unchanged
    /// (except `source`).
    pub fn to_csv(&self) -> String {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .from_writer(Vec::new());
        let columns: Vec<RateColumn> = self.columns().collect();
        let write = |w: &mut csv::Writer<Vec<u8>>, cells: &[String]| {
            w.write_record(cells).expect("writing to a Vec cannot fail");
        };
        write(
            &mut w,
            &[format!(
                "Rates in {}, effective {}",
                self.currency, self.effective
            )],
        );
        for note in &self.notes {
            write(&mut w, std::slice::from_ref(note));
        }
        let mut header = vec!["Market".to_owned(), "Currency".to_owned()];
        header.extend(columns.iter().map(|c| c.name().to_owned()));
        write(&mut w, &header);
        for &m in &self.markets {
            let mut row = vec![m.name().to_owned(), self.currency.clone()];
            row.extend(columns.iter().map(|&c| match self.rate(m, c) {
                Some(r) => r.to_string(),
                None => "n/a".to_owned(),
            }));
            write(&mut w, &row);
        }
        let bytes = w.into_inner().expect("writing to a Vec cannot fail");
        String::from_utf8(bytes).expect("the CSV writer emits the UTF-8 it was given")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;

    /// RC-3: `to_csv` writes Meta's layout back and parses to the same card.
    #[test]
    fn rc3_to_csv_round_trip() {
        let card = RateCard::parse_csv(U2_CARD, "usd.csv").unwrap();
        let again = RateCard::parse_csv(&card.to_csv(), "usd.csv").unwrap();
        assert_eq!(again, card);
    }

    /// Resale mark-up: rates × factor, exactly.
    #[test]
    fn scaled_multiplies_exactly() {
        let card = card_with(
            "Rates in USD, effective 2023-06-01",
            "Brazil,USD,0.0625,n/a",
        )
        .unwrap();
        let resale = card.scaled(d("1.2"), "pancake");
        assert_eq!(
            resale.rate(m("Brazil"), RateColumn::Marketing),
            Some(d("0.075"))
        );
        assert_eq!(
            resale
                .rate(m("Brazil"), RateColumn::Marketing)
                .unwrap()
                .to_string(),
            "0.075"
        );
        assert_eq!(resale.rate(m("Brazil"), RateColumn::Utility), None);
        assert_eq!(resale.source, "pancake");
        assert_eq!(
            (resale.currency.as_str(), resale.effective),
            ("USD", card.effective)
        );
    }
}
