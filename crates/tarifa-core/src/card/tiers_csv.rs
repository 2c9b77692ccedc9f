//! The volume-tiers CSV in Meta's layout (RC-4): title, notes, a group header naming the
//! categories, a column header of five-wide `From, To, Rate type, Rate, vs. List rate` groups,
//! then band rows (a market's later bands may leave the market blank). Turns the text into a
//! [`TierCard`] or a [`CardError`] naming the line and the cell.

use super::cells::{
    header_key, is_na, is_note, is_open_end, parse_amount, parse_count, parse_percent,
};
use super::column::TierCategory;
use super::currency::CurrencyCheck;
use super::error::CardError;
use super::rows::Row;
use super::sheet::Sheet;
use super::tier_card::{validate_bands, Band, BandKind, TierCard};
use super::title::{parse_title, Title};
use crate::market::Market;
use crate::time::LocalDate;
use rust_decimal::Decimal;

impl TierCard {
    /// Parses a volume-tiers CSV in Meta's layout (RC-4). The effective date comes from the title
    /// row if it has one, else from `effective`, else it is an error.
    pub fn parse_csv(
        text: &str,
        source: &str,
        effective: Option<LocalDate>,
    ) -> Result<TierCard, CardError> {
        parse_tiers(text, source, effective)
    }
}

/// Reads a volume-tiers CSV; `default_effective` is used when the title has no date (RC-5).
/// Behind [`TierCard::parse_csv`].
pub(super) fn parse_tiers(
    text: &str,
    source: &str,
    default_effective: Option<LocalDate>,
) -> Result<TierCard, CardError> {
    let sheet = Sheet::read(text, source)?;
    let Preamble {
        title,
        notes,
        group_header,
    } = Preamble::read(&sheet)?;
    let header =
        sheet.header("no column header row starting with `Market (per rate card), Currency`")?;
    let groups = Groups::read(&sheet, header, group_header)?;
    let mut currency = CurrencyCheck::new(title.currency, true);
    let pending = read_band_rows(&sheet, &groups, &mut currency)?;
    let mut card = TierCard::new("", LocalDate(0), source);
    pending.validate_into(&sheet, &mut card)?;
    if card.markets.is_empty() {
        return Err(sheet.error(0, "no bands"));
    }
    (card.currency, card.effective, card.notes) = sheet.finish(
        currency,
        title.effective,
        default_effective,
        "no effective date in the title and none given",
        notes,
    )?;
    Ok(card)
}

/// The rows before the column header: the "volume tier" title, URL and notes, the group header
/// (`,,Utility,,,,,…`) and sub-headers (`,,Messages per month,,What we charge,…`).
struct Preamble<'a> {
    title: Title,
    notes: Vec<String>,
    /// The first row with an empty first cell that names a category from its third cell on.
    group_header: Option<&'a Row>,
}

impl<'a> Preamble<'a> {
    fn read(sheet: &'a Sheet) -> Result<Preamble<'a>, CardError> {
        let mut title = None;
        let mut notes = Vec::new();
        let mut group_header = None;
        for row in sheet.preamble() {
            let joined = row.joined();
            // RC-4: the title is the first line and contains "volume tier"; accept it anywhere in
            // the preamble, and accept a first line worded otherwise (e.g. "Tier pricing in USD,
            // …").
            let first_text = notes.is_empty() && may_be_title(row.cell(0));
            if title.is_none()
                && (first_text || joined.to_ascii_lowercase().contains("volume tier"))
            {
                title = Some(parse_title(&joined).map_err(|m| sheet.error(row.line, m))?);
            } else if !row.cell(0).is_empty() {
                notes.push(joined);
            } else if group_header.is_none() && names_categories(row) {
                group_header = Some(row);
            }
        }
        Ok(Preamble {
            title: title.unwrap_or_default(),
            notes,
            group_header,
        })
    }
}

/// Whether the first cell of a preamble row may start a title: not empty, a note or a URL.
fn may_be_title(cell: &str) -> bool {
    !cell.is_empty() && !is_note(cell) && !cell.starts_with("http")
}

/// Whether a row names a tiered category from its third cell on (a group header).
fn names_categories(row: &Row) -> bool {
    row.cells
        .iter()
        .skip(2)
        .any(|c| TierCategory::from_header(c).is_some())
}

/// The headers of a column group, in order, with the keys ([`header_key`]) each may have.
const GROUP_COLUMNS: [(&str, &[&str]); 5] = [
    ("From", &["from"]),
    ("To", &["to"]),
    ("Rate type", &["ratetype", "type"]),
    ("Rate", &["rate"]),
    (
        "vs. List rate",
        &["vslistrate", "vslist", "discount", "vslistratediscount"],
    ),
];

/// How many columns a group spans.
const GROUP_WIDTH: usize = GROUP_COLUMNS.len();

/// The column groups of the header: `From, To, Rate type, Rate, vs. List rate` from column 2, one
/// per category.
struct Groups {
    /// The first column of each group and the category it prices.
    starts: Vec<(usize, TierCategory)>,
    /// The column after the last group; nothing may stand from there on.
    end: usize,
}

impl Groups {
    fn read(sheet: &Sheet, header: &Row, group_header: Option<&Row>) -> Result<Groups, CardError> {
        if header_key(header.cell(1)) != "currency" {
            return Err(sheet.error(
                header.line,
                format!(
                    "second header cell is {:?}, expected \"Currency\"",
                    header.cell(1)
                ),
            ));
        }
        let mut starts: Vec<(usize, TierCategory)> = Vec::new();
        let mut start = 2;
        while header_key(header.cell(start)) == "from" {
            check_group_columns(sheet, header, start)?;
            let category = group_category(sheet, header, group_header, start, starts.len())?;
            if starts.iter().any(|&(_, c)| c == category) {
                return Err(sheet.error(header.line, format!("two column groups for {category}")));
            }
            starts.push((start, category));
            start += GROUP_WIDTH;
        }
        if starts.is_empty() {
            return Err(sheet.error(
                header.line,
                format!(
                    "column 3 is {:?}, expected \"From\" (then To, Rate type, Rate, vs. List rate)",
                    header.cell(2)
                ),
            ));
        }
        if let Some((i, cell)) = stray_cell(header, start, str::is_empty) {
            return Err(sheet.error(header.line, format!("unexpected column {i} {cell:?}")));
        }
        Ok(Groups { starts, end: start })
    }
}

/// Checks that the header names the five columns of a group from `start` on.
fn check_group_columns(sheet: &Sheet, header: &Row, start: usize) -> Result<(), CardError> {
    for (k, (name, keys)) in GROUP_COLUMNS.iter().enumerate() {
        let cell = header.cell(start + k);
        if !keys.contains(&header_key(cell).as_str()) {
            return Err(sheet.error(
                header.line,
                format!("column {} is {cell:?}, expected {name:?}", start + k + 1),
            ));
        }
    }
    Ok(())
}

/// The category of the group at `start`, the `nth` of the header: named above it in the group
/// header, or without one, Utility, Authentication and Auth-Intl in that order.
fn group_category(
    sheet: &Sheet,
    header: &Row,
    group_header: Option<&Row>,
    start: usize,
    nth: usize,
) -> Result<TierCategory, CardError> {
    match group_header {
        Some(gh) => (start..start + GROUP_WIDTH)
            .find_map(|c| TierCategory::from_header(gh.cell(c)))
            .ok_or_else(|| {
                sheet.error(
                    gh.line,
                    format!(
                        "no category (Utility, Authentication, Auth-Intl) above column {}",
                        start + 1
                    ),
                )
            }),
        None => TierCategory::ALL.get(nth).copied().ok_or_else(|| {
            sheet.error(
                header.line,
                "more than three column groups and no group header",
            )
        }),
    }
}

/// The first cell of `row` from index `from` on that is not `blank` (trimmed), with its 1-based
/// column.
fn stray_cell(row: &Row, from: usize, blank: fn(&str) -> bool) -> Option<(usize, &str)> {
    row.cells
        .iter()
        .enumerate()
        .skip(from)
        .map(|(i, cell)| (i + 1, cell.trim()))
        .find(|&(_, cell)| !blank(cell))
}

/// Bands as read, with their lines, before validation.
struct Pending {
    /// By `Market.0`, then by [`TierCategory::index`].
    bands: Vec<[Vec<(Band, usize)>; TierCategory::COUNT]>,
    /// Markets with at least one band, in file order.
    markets: Vec<Market>,
}

impl Pending {
    fn push(&mut self, market: Market, category: TierCategory, band: Band, line: usize) {
        self.bands[market.0 as usize][category.index()].push((band, line));
        if !self.markets.contains(&market) {
            self.markets.push(market);
        }
    }

    /// Validates every market × category's bands ([`validate_bands`]) into `card`.
    fn validate_into(mut self, sheet: &Sheet, card: &mut TierCard) -> Result<(), CardError> {
        for &market in &self.markets {
            let m = market.0 as usize;
            for category in TierCategory::ALL {
                let bands = std::mem::take(&mut self.bands[m][category.index()]);
                card.bands[m][category.index()] = validate_bands(bands, market, category)
                    .map_err(|(line, msg)| sheet.error(line, msg))?;
            }
        }
        card.markets = self.markets;
        Ok(())
    }
}

/// The band rows: a market (or blank, continuing the previous row's market), its currency, then
/// one band or none per column group.
fn read_band_rows(
    sheet: &Sheet,
    groups: &Groups,
    currency: &mut CurrencyCheck,
) -> Result<Pending, CardError> {
    let mut pending = Pending {
        bands: vec![Default::default(); Market::COUNT],
        markets: Vec::new(),
    };
    let mut current: Option<Market> = None;
    for row in sheet.data_rows() {
        let name = row.cell(0);
        let market = if name.is_empty() {
            current
                .ok_or_else(|| sheet.error(row.line, "continuation row before any market row"))?
        } else {
            Market::from_name(name)
                .ok_or_else(|| sheet.error(row.line, format!("unknown market {name:?}")))?
        };
        current = Some(market);
        currency
            .check(row.cell(1))
            .map_err(|msg| sheet.error(row.line, msg))?;
        read_bands(sheet, row, market, groups, currency, &mut pending)?;
    }
    Ok(pending)
}

/// The bands of one row, a group's cells all `n/a` meaning no band; a value right of the last
/// group is an error.
fn read_bands(
    sheet: &Sheet,
    row: &Row,
    market: Market,
    groups: &Groups,
    currency: &mut CurrencyCheck,
    pending: &mut Pending,
) -> Result<(), CardError> {
    for &(c, category) in &groups.starts {
        let cells: [&str; GROUP_WIDTH] = std::array::from_fn(|k| row.cell(c + k));
        if cells.iter().all(|s| is_na(s)) {
            continue;
        }
        let what = |msg| sheet.error(row.line, format!("{category} band for {market}: {msg}"));
        let (band, symbol) = parse_band(cells).map_err(what)?;
        currency.check(symbol).map_err(what)?;
        pending.push(market, category, band, row.line);
    }
    if let Some((i, cell)) = stray_cell(row, groups.end, is_na) {
        return Err(sheet.error(
            row.line,
            format!("value {cell:?} in column {i} without a header"),
        ));
    }
    Ok(())
}

/// Parses the five cells `From, To, Rate type, Rate, vs. List rate` of one band.
/// Also returns the currency symbol written before the rate, if any.
fn parse_band(cells: [&str; GROUP_WIDTH]) -> Result<(Band, &str), String> {
    let [from_s, to_s, kind_s, rate_s, disc_s] = cells;
    // `10,000,001+` in From means "and above".
    let (from_s, plus) = match from_s.strip_suffix('+') {
        Some(f) => (f.trim_end(), true),
        None => (from_s, false),
    };
    if is_na(from_s) {
        return Err("no From".into());
    }
    let from = parse_count(from_s).ok_or_else(|| format!("From {from_s:?} is not a count"))?;
    let to = if is_open_end(to_s) {
        None
    } else if plus {
        return Err(format!("From {from_s:?}+ with To {to_s:?}"));
    } else {
        Some(parse_count(to_s).ok_or_else(|| format!("To {to_s:?} is not a count"))?)
    };
    let (rate, symbol) = parse_amount(rate_s)?;
    let rate = rate.ok_or("no rate")?;
    let discount = parse_percent(disc_s)?;
    let kind = band_kind(kind_s, discount)?;
    Ok((
        Band {
            from,
            to,
            kind,
            rate,
            discount,
        },
        symbol,
    ))
}

/// A `Rate type` cell: `List` or `Tier`; when blank, a band with a discount is a tier band.
fn band_kind(cell: &str, discount: Option<Decimal>) -> Result<BandKind, String> {
    let k = header_key(cell);
    if k.contains("tier") {
        Ok(BandKind::Tier)
    } else if k.contains("list") {
        Ok(BandKind::List)
    } else if k.is_empty() || is_na(cell) {
        match discount {
            Some(d) if !d.is_zero() => Ok(BandKind::Tier),
            _ => Ok(BandKind::List),
        }
    } else {
        Err(format!("rate type {cell:?} (expected List or Tier)"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::tests::*;

    /// RC-4 / V-8: Meta's tiers layout — title with currency and date, quoted multi-line header,
    /// thousands separators (quoted commas and spaces), continuation rows (blank and repeated
    /// market), open-ended last bands (blank, `∞`, `and above`, `+`), Unicode minus, `GBD` typo.
    #[test]
    fn rc4_parses_tier_csv() {
        let tc = TierCard::parse_csv(TIERS, "gbp-tiers.csv", None).unwrap();
        assert_eq!(tc.currency, "GBP");
        assert_eq!(tc.effective, LocalDate::ymd(2025, 7, 1));
        assert_eq!(tc.notes, vec!["https://example.invalid/pricing"]);
        let india = tc.bands(m("India"), TierCategory::Utility);
        assert_eq!(india.len(), 3);
        assert_eq!(
            india[0],
            Band {
                from: 1,
                to: Some(100_000),
                kind: BandKind::List,
                rate: d("0.0010"),
                discount: Some(Decimal::ZERO)
            }
        );
        assert_eq!(
            india[1],
            Band {
                from: 100_001,
                to: Some(500_000),
                kind: BandKind::Tier,
                rate: d("0.00095"),
                discount: Some(d("-0.05"))
            }
        );
        assert_eq!(
            (india[2].from, india[2].to, india[2].discount),
            (500_001, None, Some(d("-0.10")))
        );
        let auth = tc.bands(m("India"), TierCategory::Authentication);
        assert_eq!(auth.len(), 3);
        assert_eq!(auth[2].to, None);
        assert!(tc
            .bands(m("India"), TierCategory::AuthenticationInternational)
            .is_empty());
        assert_eq!(tc.bands(m("Brazil"), TierCategory::Utility).len(), 1);
        assert!(tc
            .bands(m("Brazil"), TierCategory::Authentication)
            .is_empty());
        let ai = tc.bands(m("Brazil"), TierCategory::AuthenticationInternational);
        assert_eq!(
            (ai[1].from, ai[1].to, ai[1].rate),
            (1_001, None, d("0.019"))
        );
        assert!(tc.bands(m("Germany"), TierCategory::Utility).is_empty());
        assert_eq!(
            tc.markets().collect::<Vec<_>>(),
            vec![m("India"), m("Brazil")]
        );

        // Without a date in the title, the argument is used; without either, an error.
        let undated = TIERS.replace(", effective July 1, 2025", "");
        assert!(TierCard::parse_csv(&undated, "t", None).is_err());
        let tc = TierCard::parse_csv(&undated, "t", Some(LocalDate::ymd(2025, 10, 1))).unwrap();
        assert_eq!(tc.effective, LocalDate::ymd(2025, 10, 1));

        // A real contradiction of the title currency is still an error.
        let e =
            TierCard::parse_csv(&TIERS.replace("Brazil,GBP", "Brazil,EUR"), "t", None).unwrap_err();
        assert_eq!(e.line, 10, "{e}");
    }
}
