//! Rate cards: Meta's rates CSV (RC-3), volume-tiers CSV (RC-4, V-8) and the versioned
//! [`RateBook`] that picks the card in force on a date (RC-5).
//!
//! Everything here is pure: parsers take the file's text and a `source` label (usually the file
//! name) that is echoed in every [`CardError`] together with the 1-based CSV line.
//!
//! Amounts are [`Decimal`](rust_decimal::Decimal)s parsed exactly from the text (never through
//! `f64`).
//!
//! Hot-path lookups are cheap by construction: [`RateCard::rate`] is two array indexes,
//! [`TierCard::band_for`] a binary search over a handful of bands, and [`RateBook::rate_card`] a
//! scan over at most ~16 currencies followed by a binary search over that currency's versions.
//!
//! The modules, from the file's text to the book:
//! - `rows`: CSV records with their physical line numbers;
//! - `cells`: what one cell says (header keys, `n/a`, counts, amounts, percentages);
//! - `title` and `currency`: the title row's date and currency, and currency cells;
//! - `column`: the price columns and tiered categories a header names;
//! - `sheet`: the layout both files share (preamble, `Market` header, body) and its finish;
//! - `rates_csv` → `rate_card`, `tiers_csv` → `tier_card`: each file and the card it yields;
//! - `book`: the versions of both kinds of card, by currency and date.

mod book;
mod cells;
mod column;
mod currency;
mod error;
mod rate_card;
mod rates_csv;
mod rows;
mod sheet;
mod tier_card;
mod tiers_csv;
mod title;

#[cfg(test)]
mod tests;

pub use book::RateBook;
pub use column::{RateColumn, TierCategory};
pub use error::CardError;
pub use rate_card::RateCard;
pub use tier_card::{Band, BandKind, TierCard};
