//! The rates CSV in Meta's layout (RC-3): title row, note rows, a `Market,Currency,…` header
//! whose cells name [`RateColumn`]s, then one row per market. Turns the text into a
//! [`RateCard`] or a [`CardError`] naming the line and the cell.

use super::cells::{header_key, is_market_header, is_na, is_note, parse_amount};
use super::column::RateColumn;
use super::currency::CurrencyCheck;
use super::error::CardError;
use super::rate_card::RateCard;
use super::rows::read_rows;
use super::title::{parse_title, Title};
use crate::market::Market;
use crate::time::LocalDate;

pub(super) fn parse_rates(
    text: &str,
    source: &str,
    default_effective: Option<LocalDate>,
) -> Result<RateCard, CardError> {
    let err = |line: usize, msg: String| CardError::new(source, line, msg);
    let rows = read_rows(text, source)?;

    // Preamble: title, notes, then the header row.
    let mut title: Option<Title> = None;
    let mut notes = Vec::new();
    let mut seen_preamble = false;
    let mut header_at = None;
    for (i, row) in rows.iter().enumerate() {
        if row.is_blank() {
            continue;
        }
        if is_market_header(row.cell(0)) {
            header_at = Some(i);
            break;
        }
        if !seen_preamble && !is_note(row.cell(0)) {
            title = Some(parse_title(&row.joined()).map_err(|m| err(row.line, m))?);
        } else {
            notes.push(row.joined());
        }
        seen_preamble = true;
    }
    let Some(header_at) = header_at else {
        return Err(err(
            0,
            "no header row starting with `Market,Currency,`".into(),
        ));
    };
    let header = &rows[header_at];

    // Header: map each cell to what it holds.
    let mut currency_col = None;
    let mut cols: Vec<Option<RateColumn>> = vec![None; header.cells.len()];
    let mut present = [false; RateColumn::COUNT];
    for (i, raw) in header.cells.iter().enumerate().skip(1) {
        let cell = raw.trim();
        if cell.is_empty() {
            continue;
        }
        if header_key(cell) == "currency" {
            currency_col = Some(i);
            continue;
        }
        let Some(col) = RateColumn::from_header(cell) else {
            return Err(err(header.line, format!("unknown column header {cell:?}")));
        };
        if present[col.index()] {
            return Err(err(header.line, format!("duplicate column {cell:?}")));
        }
        present[col.index()] = true;
        cols[i] = Some(col);
    }
    if !present.iter().any(|&p| p) {
        return Err(err(header.line, "header has no rate columns".into()));
    }

    let title_currency = title.as_ref().and_then(|t| t.currency.clone());
    let mut currency = CurrencyCheck::new(title_currency, false);
    let mut card = RateCard::new("", LocalDate(0), source);
    card.columns = present;
    let mut first_line = vec![0usize; Market::COUNT];

    for row in &rows[header_at + 1..] {
        if row.is_blank() {
            continue;
        }
        let name = row.cell(0);
        if is_note(name) {
            notes.push(row.joined());
            continue;
        }
        if name.is_empty() {
            return Err(err(row.line, "row without a market name".into()));
        }
        let market = Market::from_name(name)
            .ok_or_else(|| err(row.line, format!("unknown market {name:?}")))?;
        let m = market.0 as usize;
        if first_line[m] != 0 {
            return Err(err(
                row.line,
                format!(
                    "duplicate row for market {name:?} (first on line {})",
                    first_line[m]
                ),
            ));
        }
        first_line[m] = row.line;
        card.markets.push(market);
        if let Some(c) = currency_col {
            currency
                .check(row.cell(c))
                .map_err(|msg| err(row.line, msg))?;
        }
        for (i, raw) in row.cells.iter().enumerate().skip(1) {
            if Some(i) == currency_col {
                continue;
            }
            match cols.get(i).copied().flatten() {
                Some(col) => {
                    let what = || format!("{} for {}", col.name(), market);
                    let (rate, symbol) = parse_amount(raw)
                        .map_err(|msg| err(row.line, format!("{}: {msg}", what())))?;
                    if !symbol.is_empty() {
                        currency
                            .check(symbol)
                            .map_err(|msg| err(row.line, format!("{}: {msg}", what())))?;
                    }
                    card.rates[m][col.index()] = rate;
                }
                None if !is_na(raw.trim()) => {
                    return Err(err(
                        row.line,
                        format!("value {:?} in a column without a header", raw.trim()),
                    ));
                }
                None => {}
            }
        }
    }
    if card.markets.is_empty() {
        return Err(err(0, "no market rows".into()));
    }
    card.currency = currency.known.ok_or_else(|| {
        err(
            0,
            "no currency: no ISO code in the title and no currency cells".into(),
        )
    })?;
    card.effective = title
        .and_then(|t| t.effective)
        .or(default_effective)
        .ok_or_else(|| err(0, "no effective date in the title".into()))?;
    card.notes = notes;
    Ok(card)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::test_support::*;

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
