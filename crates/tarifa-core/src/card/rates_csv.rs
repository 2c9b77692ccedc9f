//! The rates CSV in Meta's layout (RC-3): title row, note rows, a `Market,Currency,…` header
//! whose cells name [`RateColumn`]s, then one row per market. Turns the text into a
//! [`RateCard`] or a [`CardError`] naming the line and the cell.

use super::cells::{header_key, is_na, is_note, parse_amount};
use super::column::RateColumn;
use super::currency::CurrencyCheck;
use super::error::CardError;
use super::rate_card::RateCard;
use super::rows::Row;
use super::sheet::Sheet;
use super::title::{parse_title, Title};
use crate::market::Market;
use crate::time::LocalDate;

impl RateCard {
    /// Parses a rates CSV in Meta's layout (RC-3). The effective date must be in the title row.
    pub fn parse_csv(text: &str, source: &str) -> Result<RateCard, CardError> {
        RateCard::parse_csv_with_effective(text, source, None)
    }

    /// As [`RateCard::parse_csv`], with a fallback effective date for files whose title has none
    /// (RC-5: the date may come from the download page instead). The title's date wins.
    pub fn parse_csv_with_effective(
        text: &str,
        source: &str,
        effective: Option<LocalDate>,
    ) -> Result<RateCard, CardError> {
        parse_rates(text, source, effective)
    }
}

/// Reads a rates CSV; `default_effective` is used when the title has no date (RC-5). Behind
/// [`RateCard::parse_csv`] and [`RateCard::parse_csv_with_effective`].
pub(super) fn parse_rates(
    text: &str,
    source: &str,
    default_effective: Option<LocalDate>,
) -> Result<RateCard, CardError> {
    let sheet = Sheet::read(text, source)?;
    let (title, notes) = read_preamble(&sheet)?;
    let header = sheet.header("no header row starting with `Market,Currency,`")?;
    let layout = Layout::read(&sheet, header)?;
    let mut currency = CurrencyCheck::new(title.currency, false);
    let mut card = RateCard::new("", LocalDate(0), source);
    card.columns = layout.present;
    read_markets(&sheet, &layout, &mut currency, &mut card)?;
    if card.markets.is_empty() {
        return Err(sheet.error(0, "no market rows"));
    }
    (card.currency, card.effective, card.notes) = sheet.finish(
        currency,
        title.effective,
        default_effective,
        "no effective date in the title",
        notes,
    )?;
    Ok(card)
}

/// The rows before the header: the title first (unless the file starts with a note), then notes.
fn read_preamble(sheet: &Sheet) -> Result<(Title, Vec<String>), CardError> {
    let mut title = Title::default();
    let mut notes = Vec::new();
    for (i, row) in sheet.preamble().enumerate() {
        if i == 0 && !is_note(row.cell(0)) {
            title = parse_title(&row.joined()).map_err(|m| sheet.error(row.line, m))?;
        } else {
            notes.push(row.joined());
        }
    }
    Ok((title, notes))
}

/// What each header cell holds: the currency, a price column, or nothing.
struct Layout {
    currency_col: Option<usize>,
    /// By cell index; `None` for the market, the currency and empty cells.
    cols: Vec<Option<RateColumn>>,
    /// The price columns the header has, by [`RateColumn::index`].
    present: [bool; RateColumn::COUNT],
}

impl Layout {
    /// Maps the header's cells after the first: each names the currency or a price column once.
    fn read(sheet: &Sheet, header: &Row) -> Result<Layout, CardError> {
        let mut layout = Layout {
            currency_col: None,
            cols: vec![None; header.cells.len()],
            present: [false; RateColumn::COUNT],
        };
        for (i, raw) in header.cells.iter().enumerate().skip(1) {
            let cell = raw.trim();
            if cell.is_empty() {
                continue;
            }
            if header_key(cell) == "currency" {
                layout.currency_col = Some(i);
                continue;
            }
            let Some(col) = RateColumn::from_header(cell) else {
                return Err(sheet.error(header.line, format!("unknown column header {cell:?}")));
            };
            if layout.present[col.index()] {
                return Err(sheet.error(header.line, format!("duplicate column {cell:?}")));
            }
            layout.present[col.index()] = true;
            layout.cols[i] = Some(col);
        }
        if !layout.present.iter().any(|&p| p) {
            return Err(sheet.error(header.line, "header has no rate columns"));
        }
        Ok(layout)
    }
}

/// The market rows, one per market: its currency cell agreeing with the file's, then its rates.
fn read_markets(
    sheet: &Sheet,
    layout: &Layout,
    currency: &mut CurrencyCheck,
    card: &mut RateCard,
) -> Result<(), CardError> {
    // The line of each market's row, by `Market.0`; 0 while it has none.
    let mut first_line = vec![0usize; Market::COUNT];
    for row in sheet.data_rows() {
        let market = row_market(sheet, row, &mut first_line)?;
        card.markets.push(market);
        if let Some(c) = layout.currency_col {
            currency
                .check(row.cell(c))
                .map_err(|msg| sheet.error(row.line, msg))?;
        }
        read_rates(sheet, row, market, layout, currency, card)?;
    }
    Ok(())
}

/// The market a row names; an error if it is unnamed, unknown or already had a row.
fn row_market(sheet: &Sheet, row: &Row, first_line: &mut [usize]) -> Result<Market, CardError> {
    let name = row.cell(0);
    if name.is_empty() {
        return Err(sheet.error(row.line, "row without a market name"));
    }
    let market = Market::from_name(name)
        .ok_or_else(|| sheet.error(row.line, format!("unknown market {name:?}")))?;
    let first = &mut first_line[market.0 as usize];
    if *first != 0 {
        return Err(sheet.error(
            row.line,
            format!("duplicate row for market {name:?} (first on line {first})"),
        ));
    }
    *first = row.line;
    Ok(market)
}

/// The rate cells of one market's row, each checked for a currency symbol that contradicts the
/// file's; a value under no column header is an error.
fn read_rates(
    sheet: &Sheet,
    row: &Row,
    market: Market,
    layout: &Layout,
    currency: &mut CurrencyCheck,
    card: &mut RateCard,
) -> Result<(), CardError> {
    for (i, raw) in row.cells.iter().enumerate().skip(1) {
        if Some(i) == layout.currency_col {
            continue;
        }
        match layout.cols.get(i).copied().flatten() {
            Some(col) => {
                let what =
                    |msg| sheet.error(row.line, format!("{} for {market}: {msg}", col.name()));
                let (rate, symbol) = parse_amount(raw).map_err(what)?;
                currency.check(symbol).map_err(what)?;
                card.rates[market.0 as usize][col.index()] = rate;
            }
            None if !is_na(raw.trim()) => {
                return Err(sheet.error(
                    row.line,
                    format!("value {:?} in a column without a header", raw.trim()),
                ));
            }
            None => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;

    /// RC-3: the U2 excerpt of Meta's USD card — title, note row, quoted header with an embedded
    /// newline, `$US` tokens, `n/a`, a blank line.
    #[test]
    fn rc3_parses_meta_layout() {
        let card = RateCard::parse_csv(U2_CARD, "usd.csv").unwrap();
        assert_eq!(card.currency, "USD");
        assert_eq!(card.effective, LocalDate::ymd(2023, 6, 1));
        assert_eq!(card.source, "usd.csv");
        assert_eq!(
            card.notes,
            vec!["Note: Authentication-International rate applies for Indonesia as of June 1, 2024, and India as of July 1, 2024"]
        );
        assert!(card.has_column(RateColumn::AuthenticationInternational));
        assert!(card.has_column(RateColumn::Service));
        assert!(!card.has_column(RateColumn::BusinessInitiated));
        let id = m("Indonesia");
        assert_eq!(
            card.rate(id, RateColumn::AuthenticationInternational),
            Some(d("0.1360"))
        );
        assert_eq!(card.rate(id, RateColumn::Service), Some(d("0.0190")));
        assert_eq!(
            card.rate(m("Malaysia"), RateColumn::AuthenticationInternational),
            None
        );
        assert_eq!(
            card.rate(Market::OTHER, RateColumn::Marketing),
            Some(d("0.0604"))
        );
        // Absent market, absent column.
        assert_eq!(card.rate(m("Germany"), RateColumn::Marketing), None);
        assert_eq!(card.rate(id, RateColumn::Template), None);
        let markets: Vec<Market> = card.markets().collect();
        assert_eq!(markets, vec![id, m("Malaysia"), Market::OTHER]);
        assert!(card.has_market(id) && !card.has_market(m("Germany")));
    }

    /// RC-3: errors carry the line and name what is wrong.
    #[test]
    fn rc3_errors() {
        // Unknown market, after a blank line and a multi-line header: physical line numbers.
        let text = U2_CARD.replace("Other,", "Atlantis,");
        let e = RateCard::parse_csv(&text, "usd.csv").unwrap_err();
        assert_eq!(e.line, 8, "{e}");
        assert!(e.message.contains("Atlantis"), "{e}");
        assert_eq!(e.to_string(), format!("usd.csv:8: {}", e.message));
        // Unknown column.
        let e =
            RateCard::parse_csv(&U2_CARD.replace("Service", "Servicing"), "usd.csv").unwrap_err();
        assert_eq!(e.line, 3);
        assert!(e.message.contains("Servicing"), "{e}");
        // Duplicate market.
        let text = format!("{U2_CARD}Malaysia,$US,1,1,1,n/a,1\n");
        let e = RateCard::parse_csv(&text, "usd.csv").unwrap_err();
        assert_eq!(e.line, 9);
        assert!(
            e.message.contains("duplicate") && e.message.contains("line 6"),
            "{e}"
        );
        // Value under an empty header cell.
        let e = card_with("Rates in USD, effective 2022-02-01", "Brazil,USD,1,1,7").unwrap_err();
        assert_eq!(e.line, 3);
        // No header at all.
        let e = RateCard::parse_csv("Cost per message in USD, effective 2025-07-01\n", "x")
            .unwrap_err();
        assert_eq!(e.line, 0);
    }
}
