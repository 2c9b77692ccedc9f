//! [`TierCard`]: one version of Meta's volume tiers for one currency (V-3, V-8): per market and
//! tiered category, contiguous [`Band`]s from message 1, so that the band of the n-th message is
//! a binary search. The bands' invariant is checked here, for the parser and for
//! [`TierCard::set_bands`] alike.

use super::column::TierCategory;
use super::error::CardError;
use crate::market::Market;
use crate::time::LocalDate;
use rust_decimal::Decimal;

/// Whether a band is charged at the list rate or at a discounted tier rate.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub enum BandKind {
    List,
    Tier,
}

/// One volume band: the messages `from..=to` of the month (1-based) are charged at `rate`
/// (marginally, V-3).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Band {
    pub from: u64,
    /// `None` = no upper bound (only the last band).
    pub to: Option<u64>,
    pub kind: BandKind,
    pub rate: Decimal,
    /// Discount vs list rate as a fraction (`-0.05` for −5 %), if the file gives it.
    pub discount: Option<Decimal>,
}

impl Band {
    /// Whether the `nth` message of the month falls in this band.
    #[inline]
    pub fn contains(&self, nth: u64) -> bool {
        nth >= self.from && self.to.is_none_or(|t| nth <= t)
    }
}

type TierRow = [Vec<Band>; TierCategory::COUNT];

/// One version of Meta's volume-tiers CSV for one currency (RC-4, V-8).
#[derive(Debug, Clone, PartialEq)]
pub struct TierCard {
    pub currency: String,
    pub effective: LocalDate,
    pub source: String,
    /// Note rows (the URL line, remarks), in order.
    pub notes: Vec<String>,
    /// Indexed by `Market.0`, then by [`TierCategory::index`]; bands sorted and contiguous.
    pub(super) bands: Vec<TierRow>,
    pub(super) markets: Vec<Market>,
}

impl TierCard {
    /// An empty tier card, to be filled with [`TierCard::set_bands`].
    pub fn new(currency: &str, effective: LocalDate, source: &str) -> TierCard {
        TierCard {
            currency: currency.to_ascii_uppercase(),
            effective,
            source: source.to_owned(),
            notes: Vec::new(),
            bands: vec![Default::default(); Market::COUNT],
            markets: Vec::new(),
        }
    }

    /// Replaces the bands of one market × category after checking them as the parser does
    /// (start at 1, contiguous, only the last open-ended). The error's line is 0.
    pub fn set_bands(
        &mut self,
        market: Market,
        category: TierCategory,
        bands: Vec<Band>,
    ) -> Result<(), CardError> {
        let m = market.0 as usize;
        assert!(m < Market::COUNT, "market index out of range");
        let bands = bands.into_iter().map(|band| (band, 0)).collect();
        let bands = validate_bands(bands, market, category)
            .map_err(|(line, msg)| CardError::new(&self.source, line, msg))?;
        if !self.markets.contains(&market) {
            self.markets.push(market);
        }
        self.bands[m][category.index()] = bands;
        Ok(())
    }

    /// The bands of one market × category, sorted by `from`; empty if the card has none.
    #[inline]
    pub fn bands(&self, market: Market, category: TierCategory) -> &[Band] {
        match self.bands.get(market.0 as usize) {
            Some(row) => &row[category.index()],
            None => &[],
        }
    }

    /// The band that the `nth` charged message of the month (1-based; 0 is read as 1) falls in
    /// (V-3: the rate of that band applies to that message). `None` if the card has no bands for
    /// the market × category or the last band ends before `nth`.
    #[inline]
    pub fn band_for(&self, market: Market, category: TierCategory, nth: u64) -> Option<&Band> {
        let bands = self.bands(market, category);
        let n = nth.max(1);
        let i = bands.partition_point(|b| b.to.is_some_and(|t| t < n));
        bands.get(i).filter(|b| b.from <= n)
    }

    /// Markets with at least one band, in file order.
    pub fn markets(&self) -> impl Iterator<Item = Market> + '_ {
        self.markets.iter().copied()
    }

    /// The same card with every band rate multiplied by `factor` (discounts unchanged).
    pub fn scaled(&self, factor: Decimal, source: &str) -> TierCard {
        let mut card = self.clone();
        card.source = source.to_owned();
        for row in &mut card.bands {
            for bands in row.iter_mut() {
                for b in bands {
                    b.rate = (b.rate * factor).normalize();
                }
            }
        }
        card
    }
}

/// Sorts one market × category's bands and checks that they start at 1 (0 is read as 1), are
/// contiguous (`next.from == prev.to + 1`) and that only the last is open-ended. Each band comes
/// with its line, and an error with the line to blame.
pub(super) fn validate_bands(
    mut pairs: Vec<(Band, usize)>,
    market: Market,
    category: TierCategory,
) -> Result<Vec<Band>, (usize, String)> {
    pairs.sort_by_key(|(b, _)| b.from);
    let what = format!("{category} bands for {market}");
    let mut out: Vec<Band> = Vec::with_capacity(pairs.len());
    let mut prev_line = 0;
    for (mut band, line) in pairs {
        if out.is_empty() {
            band.from = band.from.max(1);
            if band.from != 1 {
                return Err((line, format!("{what} start at {}, not 1", band.from)));
            }
        }
        if let Some(to) = band.to {
            if to < band.from {
                return Err((
                    line,
                    format!("{what}: band {}–{to} ends before it starts", band.from),
                ));
            }
        }
        if let Some(prev) = out.last() {
            check_follows(prev, prev_line, &band, line, &what)?;
        }
        prev_line = line;
        out.push(band);
    }
    Ok(out)
}

/// Checks that `band` (on `line`) continues `prev` (on `prev_line`): `prev` has an end and `band`
/// starts right after it. `what` names the market × category.
fn check_follows(
    prev: &Band,
    prev_line: usize,
    band: &Band,
    line: usize,
    what: &str,
) -> Result<(), (usize, String)> {
    let Some(to) = prev.to else {
        return Err((
            prev_line,
            format!(
                "{what}: only the last band may be open-ended (from {})",
                prev.from
            ),
        ));
    };
    // In u128: a band may end at u64::MAX.
    let expected = u128::from(to) + 1;
    if u128::from(band.from) != expected {
        return Err((
            line,
            format!(
                "{what} are not contiguous: band starts at {}, expected {expected}",
                band.from
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;
    use crate::card::RateBook;

    /// A list band at 0.01.
    fn band(from: u64, to: Option<u64>) -> Band {
        Band {
            from,
            to,
            kind: BandKind::List,
            rate: d("0.01"),
            discount: None,
        }
    }

    /// V-3: the band of the n-th charged message, at the boundaries.
    #[test]
    fn v3_band_for_boundaries() {
        let tc = TierCard::parse_csv(TIERS, "t", None).unwrap();
        let india = m("India");
        let cat = TierCategory::Utility;
        let from = |n| tc.band_for(india, cat, n).map(|b| b.from);
        assert_eq!(from(1), Some(1));
        assert_eq!(from(0), Some(1));
        assert_eq!(from(100_000), Some(1));
        assert_eq!(from(100_001), Some(100_001));
        assert_eq!(from(500_000), Some(100_001));
        assert_eq!(from(500_001), Some(500_001));
        assert_eq!(from(u64::MAX), Some(500_001));
        assert_eq!(tc.band_for(india, cat, 100_001).unwrap().rate, d("0.00095"));
        // Closed last band: nothing beyond it.
        let br = m("Brazil");
        assert_eq!(
            tc.band_for(br, TierCategory::AuthenticationInternational, 1_000)
                .unwrap()
                .from,
            1
        );
        assert_eq!(
            tc.band_for(br, TierCategory::AuthenticationInternational, 5_000)
                .unwrap()
                .from,
            1_001
        );
        assert!(tc.band_for(br, TierCategory::Authentication, 1).is_none());
        assert!(tc.band_for(m("Germany"), cat, 1).is_none());
    }

    /// RC-4: bands must start at 1, be contiguous, and only the last may be open-ended.
    #[test]
    fn rc4_band_validation() {
        let gap = TIERS.replacen("\"100,001\",500 000", "\"100,002\",500 000", 1);
        let e = TierCard::parse_csv(&gap, "t.csv", None).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(
            e.message.contains("contiguous") && e.message.contains("India"),
            "{e}"
        );

        let late_start = TIERS.replacen("India,GBD,1,", "India,GBD,2,", 1);
        let e = TierCard::parse_csv(&late_start, "t.csv", None).unwrap_err();
        assert_eq!(e.line, 7, "{e}");

        let open_middle = TIERS.replacen("\"100,001\",500 000", "\"100,001\",", 1);
        let e = TierCard::parse_csv(&open_middle, "t.csv", None).unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("open-ended"), "{e}");

        // 0 is read as 1.
        let zero = TIERS.replacen("India,GBD,1,", "India,GBD,0,", 1);
        let tc = TierCard::parse_csv(&zero, "t.csv", None).unwrap();
        assert_eq!(tc.bands(m("India"), TierCategory::Utility)[0].from, 1);

        let e = TierCard::parse_csv(&TIERS.replacen("India,", "Atlantis,", 1), "t.csv", None)
            .unwrap_err();
        assert_eq!(e.line, 7);
        assert!(e.message.contains("Atlantis"));

        let bad_header = TIERS.replacen("Rate type", "Kind", 1);
        let e = TierCard::parse_csv(&bad_header, "t.csv", None).unwrap_err();
        assert_eq!(e.line, 5);
        assert!(e.message.contains("Kind"), "{e}");

        // set_bands applies the same checks.
        let mut tc = TierCard::new("EUR", LocalDate::ymd(2026, 7, 1), "synthetic");
        assert!(tc
            .set_bands(
                m("Peru"),
                TierCategory::Utility,
                vec![band(1, Some(10)), band(12, None)]
            )
            .is_err());
        tc.set_bands(
            m("Peru"),
            TierCategory::Utility,
            vec![band(11, None), band(1, Some(10))],
        )
        .unwrap();
        assert_eq!(
            tc.band_for(m("Peru"), TierCategory::Utility, 11)
                .unwrap()
                .from,
            11
        );
    }

    /// A band may end at the largest count; one after it cannot follow it, and saying so does
    /// not overflow.
    #[test]
    fn band_ending_at_u64_max() {
        let mut tc = TierCard::new("EUR", LocalDate::ymd(2026, 7, 1), "synthetic");
        let peru = m("Peru");
        tc.set_bands(peru, TierCategory::Utility, vec![band(1, Some(u64::MAX))])
            .unwrap();
        assert_eq!(
            tc.band_for(peru, TierCategory::Utility, u64::MAX)
                .unwrap()
                .from,
            1
        );
        let e = tc
            .set_bands(
                peru,
                TierCategory::Utility,
                vec![band(1, Some(u64::MAX)), band(5, None)],
            )
            .unwrap_err();
        assert!(e.message.contains("expected 18446744073709551616"), "{e}");
    }

    /// Tier rates scale exactly; tier cards are versioned like rate cards (RC-5).
    #[test]
    fn tiers_scaled_and_versioned() {
        let tc = TierCard::parse_csv(TIERS, "t", None).unwrap();
        let resale = tc.scaled(d("1.2"), "resale");
        let b = &resale.bands(m("India"), TierCategory::Utility)[1];
        assert_eq!((b.rate, b.discount), (d("0.00114"), Some(d("-0.05"))));
        let mut book = RateBook::new();
        book.add_tier_card(tc.clone()).unwrap();
        assert!(book.add_tier_card(tc).is_err());
        assert!(book.tier_card("GBP", LocalDate::ymd(2025, 6, 30)).is_none());
        assert!(book.tier_card("GBP", LocalDate::ymd(2025, 7, 1)).is_some());
        assert_eq!(book.currencies().collect::<Vec<_>>(), vec!["GBP"]);
    }
}
