//! What the card modules' tests share: `d` and `m` for short literals, sample files in Meta's
//! layouts, and the tests of the sample cards shipped in `data/rates/` (`shipped`).

use super::{CardError, RateCard};
use crate::market::Market;
use rust_decimal::Decimal;

mod shipped;

pub(super) fn d(s: &str) -> Decimal {
    Decimal::from_str_exact(s).unwrap()
}

pub(super) fn m(name: &str) -> Market {
    Market::from_name(name).unwrap()
}

pub(super) const U2_CARD: &str = "Cost per conversation in USD, effective June 1, 2023,,,,,,
\"Note: Authentication-International rate applies for Indonesia as of June 1, 2024, and India as of July 1, 2024\",,,,,,
Market,Currency,Marketing,Utility,Authentication,\"Authentication-
International\",Service
Indonesia,$US,0.0411,0.0200,0.0300,0.1360,0.0190
Malaysia,$US,0.0860,0.0200,0.0180,n/a,0.0220

Other,$US,0.0604,0.0338,0.0304,n/a,0.0145
";

pub(super) fn card_with(title: &str, rows: &str) -> Result<RateCard, CardError> {
    RateCard::parse_csv(
        &format!("{title}\nMarket,Currency,Marketing,Utility\n{rows}"),
        "t.csv",
    )
}

pub(super) const TIERS: &str = "Volume tiers for utility and authentication messages in GBP, effective July 1, 2025,,,,
https://example.invalid/pricing,,,
,,Utility,,,,,Authentication,,,,,Auth-Intl,,,,
,,Messages per month,,What we charge,,,Messages per month,,What we charge,,,Messages per month,,What we charge,,
\"Market
(per rate card)\",Currency,From,To,Rate type,Rate,vs. List rate,From,To,Rate type,Rate,vs. List rate,From,To,Rate type,Rate,vs. List rate
India,GBD,1,\"100,000\",List,0.0010,0%,1,\"100,000\",List,0.0010,0%,n/a,n/a,n/a,n/a,n/a
,,\"100,001\",500 000,Tier,0.00095,−5 %,\"100,001\",\"500,000\",Tier,0.00095,-5%,,,,,
India,GBD,\"500,001\",,Tier,0.0009,-10%,\"500,001\",∞,Tier,0.0009,-10%,,,,,
Brazil,GBP,1,and above,List,0.0050,0%,,,,,,1,\"1,000\",List,0.02,0%
,,,,,,,,,,,,\"1,001\",+,Tier,0.019,-5%
";
