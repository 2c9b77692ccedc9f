//! The layout both kinds of card file share: a preamble (title, notes, maybe group headers), a
//! column header whose first cell is `Market`, then body rows among which note rows may stand;
//! and the currency and effective date a file ends up with once all of it is read. Each parser
//! reads its own preamble, header and rows; cutting the file and finishing it are done here once.

use super::cells::{is_market_header, is_note};
use super::currency::CurrencyCheck;
use super::error::CardError;
use super::rows::{read_rows, Row};
use crate::time::LocalDate;

/// A card file's rows, cut at its column header.
pub(super) struct Sheet<'a> {
    /// The file name or label, for errors.
    source: &'a str,
    rows: Vec<Row>,
    /// Index of the header row: the first non-blank row whose first cell names the market.
    header_at: Option<usize>,
}

impl<'a> Sheet<'a> {
    /// Reads the CSV records and finds the column header.
    pub(super) fn read(text: &str, source: &'a str) -> Result<Sheet<'a>, CardError> {
        let rows = read_rows(text, source)?;
        let header_at = rows
            .iter()
            .position(|row| !row.is_blank() && is_market_header(row.cell(0)));
        Ok(Sheet {
            source,
            rows,
            header_at,
        })
    }

    /// An error at `line` of this file (0: the whole file).
    pub(super) fn error(&self, line: usize, message: impl Into<String>) -> CardError {
        CardError::new(self.source, line, message)
    }

    /// The non-blank rows before the header (every non-blank row if there is none).
    pub(super) fn preamble(&self) -> impl Iterator<Item = &Row> {
        let end = self.header_at.unwrap_or(self.rows.len());
        self.rows[..end].iter().filter(|row| !row.is_blank())
    }

    /// The column header; `missing` is the error's message when the file has none.
    pub(super) fn header(&self, missing: &str) -> Result<&Row, CardError> {
        self.header_at
            .map(|i| &self.rows[i])
            .ok_or_else(|| self.error(0, missing))
    }

    /// The non-blank rows after the header.
    fn body(&self) -> impl Iterator<Item = &Row> {
        let start = self.header_at.map_or(self.rows.len(), |i| i + 1);
        self.rows[start..].iter().filter(|row| !row.is_blank())
    }

    /// The body rows that carry values: neither blank nor notes.
    pub(super) fn data_rows(&self) -> impl Iterator<Item = &Row> {
        self.body().filter(|row| !is_note(row.cell(0)))
    }

    /// The note rows among the body rows, as text, in file order.
    fn body_notes(&self) -> impl Iterator<Item = String> + '_ {
        self.body()
            .filter(|row| is_note(row.cell(0)))
            .map(Row::joined)
    }

    /// What the card says about itself once every row is read: the currency the title or the
    /// cells gave; the title's date, else `default` (RC-5), `no_date` being the error's message
    /// when there is neither; the preamble's `notes` followed by the body's.
    pub(super) fn finish(
        &self,
        currency: CurrencyCheck,
        title_date: Option<LocalDate>,
        default: Option<LocalDate>,
        no_date: &str,
        mut notes: Vec<String>,
    ) -> Result<(String, LocalDate, Vec<String>), CardError> {
        let currency = currency.known.ok_or_else(|| {
            self.error(
                0,
                "no currency: no ISO code in the title and no currency cells",
            )
        })?;
        let effective = title_date
            .or(default)
            .ok_or_else(|| self.error(0, no_date))?;
        notes.extend(self.body_notes());
        Ok((currency, effective, notes))
    }
}
