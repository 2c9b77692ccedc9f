//! Tests of the sample cards shipped in `data/rates/`: every file parses and carries the spec's
//! figures (RC-5, §10.4).

use super::{d, m};
use crate::card::{BandKind, RateBook, RateCard, RateColumn, TierCard, TierCategory};
use crate::market::Market;
use crate::time::LocalDate;
use rust_decimal::Decimal;

const SHIPPED_RATES: [(&str, &str); 8] = [
    (
        "usd-2022-02-01.csv",
        include_str!("../../../../../data/rates/usd-2022-02-01.csv"),
    ),
    (
        "usd-2023-06-01.csv",
        include_str!("../../../../../data/rates/usd-2023-06-01.csv"),
    ),
    (
        "usd-2024-07-01-india-indonesia-excerpt.csv",
        include_str!("../../../../../data/rates/usd-2024-07-01-india-indonesia-excerpt.csv"),
    ),
    (
        "inr-2025-07-01.csv",
        include_str!("../../../../../data/rates/inr-2025-07-01.csv"),
    ),
    (
        "inr-2026-01-01.csv",
        include_str!("../../../../../data/rates/inr-2026-01-01.csv"),
    ),
    (
        "inr-2026-10-01.csv",
        include_str!("../../../../../data/rates/inr-2026-10-01.csv"),
    ),
    (
        "eur-2026-07-01.csv",
        include_str!("../../../../../data/rates/eur-2026-07-01.csv"),
    ),
    (
        "aed-2026-10-01-excerpt.csv",
        include_str!("../../../../../data/rates/aed-2026-10-01-excerpt.csv"),
    ),
];
const SHIPPED_TIERS: &str =
    include_str!("../../../../../data/rates/eur-tiers-2026-07-01-illustrative.csv");

fn shipped() -> Vec<RateCard> {
    SHIPPED_RATES
        .iter()
        .map(|(name, text)| RateCard::parse_csv(text, name).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

/// RC-5 / §10.4: every shipped sample file parses, says where its numbers come from, and
/// carries the spec's figures.
#[test]
fn rc5_shipped_files_match_spec() {
    let cards = shipped();
    for c in &cards {
        assert!(
            c.notes.iter().any(|n| n.contains("Source:")),
            "{} has no source note",
            c.source
        );
        // The file name carries the currency and effective date.
        let lower = c.currency.to_ascii_lowercase();
        assert!(
            c.source.starts_with(&format!("{lower}-{}", c.effective)),
            "{}",
            c.source
        );
        assert_eq!(c.is_excerpt(), c.source.contains("excerpt"), "{}", c.source);
    }
    let get = |i: usize, market: &str, col| cards[i].rate(m(market), col);
    use RateColumn::*;
    // Era B (BIC/UIC), 15 markets.
    assert_eq!(cards[0].markets().count(), 15);
    assert_eq!(get(0, "Germany", BusinessInitiated), Some(d("0.1365")));
    assert_eq!(get(0, "Germany", UserInitiated), Some(d("0.0819")));
    assert_eq!(
        get(0, "Rest of C&E Europe", BusinessInitiated),
        Some(d("0.0835"))
    );
    assert_eq!(cards[0].effective, LocalDate::ymd(2022, 2, 1));
    // Era C, 12 markets.
    assert_eq!(cards[1].markets().count(), 12);
    assert_eq!(
        get(1, "Indonesia", AuthenticationInternational),
        Some(d("0.1360"))
    );
    assert_eq!(get(1, "Germany", AuthenticationInternational), None);
    assert_eq!(get(1, "Other", Service), Some(d("0.0145")));
    assert_eq!(get(1, "France", Marketing), Some(d("0.1432")));
    // 2024 excerpt.
    assert_eq!(
        get(2, "India", AuthenticationInternational),
        Some(d("0.028"))
    );
    assert_eq!(get(2, "India", Marketing), Some(d("0.0107")));
    assert_eq!(cards[2].markets().count(), 2);
    // INR.
    assert_eq!(get(3, "India", Marketing), Some(d("0.7846")));
    assert_eq!(get(3, "India", AuthenticationInternational), Some(d("2.3")));
    assert_eq!(get(3, "India", Service), None);
    assert_eq!(get(4, "India", Marketing), Some(d("0.8631")));
    assert_eq!(get(4, "India", AuthenticationInternational), None);
    assert_eq!(
        get(5, "India", AuthenticationInternational),
        Some(d("2.4971"))
    );
    assert_eq!(get(5, "India", Service), Some(d("0.1150")));
    // EUR 2026-07-01: 38 markets, utility = authentication everywhere, no service.
    let eur = &cards[6];
    assert_eq!((eur.currency.as_str(), eur.markets().count()), ("EUR", 38));
    assert_eq!(get(6, "Brazil", Marketing), Some(d("0.0518")));
    assert_eq!(get(6, "Other", Utility), Some(d("0.0064")));
    assert_eq!(
        get(6, "UAE", AuthenticationInternational),
        Some(d("0.0421"))
    );
    assert_eq!(get(6, "Rest of APAC", Utility), Some(d("0.0094")));
    for mk in eur.markets() {
        assert_eq!(eur.rate(mk, Utility), eur.rate(mk, Authentication), "{mk}");
        assert_eq!(eur.rate(mk, Service), None, "{mk}");
        assert!(eur.rate(mk, Marketing).is_some(), "{mk}");
    }
    // AED 2026-10-01: service = utility.
    assert_eq!(
        get(7, "Bangladesh", AuthenticationInternational),
        Some(d("0.3526"))
    );
    for mk in cards[7].markets() {
        assert_eq!(
            cards[7].rate(mk, Service),
            cards[7].rate(mk, Utility),
            "{mk}"
        );
    }

    // A book of the full and partial cards (excerpts left out) picks versions by date.
    let mut book = RateBook::new();
    for c in cards.iter().filter(|c| !c.is_excerpt()) {
        book.add_rate_card(c.clone()).unwrap();
    }
    let src = |cur, y, mo, da| {
        book.rate_card(cur, LocalDate::ymd(y, mo, da))
            .map(|c| c.source.clone())
    };
    assert_eq!(src("USD", 2022, 1, 31), None);
    assert_eq!(
        src("USD", 2023, 5, 31).as_deref(),
        Some("usd-2022-02-01.csv")
    );
    assert_eq!(
        src("USD", 2024, 7, 1).as_deref(),
        Some("usd-2023-06-01.csv")
    );
    assert_eq!(
        src("INR", 2026, 9, 30).as_deref(),
        Some("inr-2026-01-01.csv")
    );
    assert_eq!(
        src("INR", 2026, 10, 1).as_deref(),
        Some("inr-2026-10-01.csv")
    );
    assert_eq!(
        book.currencies().collect::<Vec<_>>(),
        vec!["EUR", "INR", "USD"]
    );
}

/// RC-4 / V-8: the illustrative EUR tier file — six markets, six bands each, list rate from
/// the EUR card and tier rate = list × (1 + discount) exactly; its notes say it is
/// illustrative.
#[test]
fn rc4_shipped_illustrative_tiers() {
    let tc = TierCard::parse_csv(SHIPPED_TIERS, "eur-tiers-2026-07-01-illustrative.csv", None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        (tc.currency.as_str(), tc.effective),
        ("EUR", LocalDate::ymd(2026, 7, 1))
    );
    assert!(tc.notes.iter().any(|n| n.contains("ILLUSTRATIVE")));
    let eur = RateCard::parse_csv(SHIPPED_RATES[6].1, "eur").unwrap();
    let markets: Vec<Market> = tc.markets().collect();
    assert_eq!(markets.len(), 6);
    let mut with_intl = 0;
    for &mk in &markets {
        for cat in TierCategory::ALL {
            let bands = tc.bands(mk, cat);
            let Some(list) = eur.rate(mk, cat.column()) else {
                assert!(bands.is_empty(), "{mk} {cat}");
                continue;
            };
            with_intl += usize::from(cat == TierCategory::AuthenticationInternational);
            assert_eq!(bands.len(), 6, "{mk} {cat}");
            assert_eq!((bands[0].kind, bands[0].rate), (BandKind::List, list));
            for b in bands {
                let disc = b.discount.unwrap();
                assert_eq!(
                    b.rate,
                    (list * (Decimal::ONE + disc)).round_dp(6),
                    "{mk} {cat} {}",
                    b.from
                );
            }
            let steps: Vec<(u64, Option<u64>)> = bands.iter().map(|b| (b.from, b.to)).collect();
            assert_eq!(steps[5], (10_000_001, None));
            assert_eq!(
                tc.band_for(mk, cat, 100_001).unwrap().discount,
                Some(d("-0.05"))
            );
            assert_eq!(
                tc.band_for(mk, cat, 10_000_001).unwrap().discount,
                Some(d("-0.25"))
            );
        }
    }
    assert_eq!(with_intl, 2); // India and Indonesia
    let india = tc
        .band_for(m("India"), TierCategory::Utility, 100_000)
        .unwrap();
    assert_eq!(india.rate, d("0.0012"));
}
