//! The volume-tiers CSV in Meta's layout (RC-4): title, notes, a group header naming the
//! categories, a column header of five-wide `From, To, Rate type, Rate, vs. List rate` groups,
//! then band rows (a market's later bands may leave the market blank). Turns the text into a
//! [`TierCard`] or a [`CardError`] naming the line and the cell.

use super::cells::{
    header_key, is_market_header, is_na, is_note, is_open_end, parse_amount, parse_count,
    parse_percent,
};
use super::column::TierCategory;
use super::currency::CurrencyCheck;
use super::error::CardError;
use super::rows::{read_rows, Row};
use super::tier_card::{validate_bands, Band, BandKind, TierCard};
use super::title::{parse_title, Title};
use crate::market::Market;
use crate::time::LocalDate;

pub(super) fn parse_tiers(
    text: &str,
    source: &str,
    default_effective: Option<LocalDate>,
) -> Result<TierCard, CardError> {
    let err = |line: usize, msg: String| CardError::new(source, line, msg);
    let rows = read_rows(text, source)?;

    // Preamble: the "volume tier" title, URL/notes, the group header (`,,Utility,,,,,…`),
    // sub-headers (`,,Messages per month,,What we charge,…`), then the column header.
    let mut title: Option<Title> = None;
    let mut notes = Vec::new();
    let mut group_header: Option<&Row> = None;
    let mut header_at = None;
    for (i, row) in rows.iter().enumerate() {
        if row.is_blank() {
            continue;
        }
        if is_market_header(row.cell(0)) {
            header_at = Some(i);
            break;
        }
        let joined = row.joined();
        let first_text = title.is_none()
            && notes.is_empty()
            && !row.cell(0).is_empty()
            && !is_note(row.cell(0))
            && !row.cell(0).starts_with("http");
        // RC-4: the title is the first line and contains "volume tier"; accept it anywhere in the
        // preamble, and accept a first line worded otherwise (e.g. "Tier pricing in USD, …").
        if title.is_none() && (first_text || joined.to_ascii_lowercase().contains("volume tier")) {
            title = Some(parse_title(&joined).map_err(|m| err(row.line, m))?);
        } else if !row.cell(0).is_empty() {
            notes.push(joined);
        } else if group_header.is_none()
            && row
                .cells
                .iter()
                .skip(2)
                .any(|c| TierCategory::from_header(c).is_some())
        {
            group_header = Some(row);
        }
    }
    let Some(header_at) = header_at else {
        return Err(err(
            0,
            "no column header row starting with `Market (per rate card), Currency`".into(),
        ));
    };
    let header = &rows[header_at];
    if header_key(header.cell(1)) != "currency" {
        return Err(err(
            header.line,
            format!(
                "second header cell is {:?}, expected \"Currency\"",
                header.cell(1)
            ),
        ));
    }

    // Column groups: `From, To, Rate type, Rate, vs. List rate` from column 2, five wide.
    const EXPECTED: [(&str, &[&str]); 5] = [
        ("From", &["from"]),
        ("To", &["to"]),
        ("Rate type", &["ratetype", "type"]),
        ("Rate", &["rate"]),
        (
            "vs. List rate",
            &["vslistrate", "vslist", "discount", "vslistratediscount"],
        ),
    ];
    let mut groups: Vec<(usize, TierCategory)> = Vec::new();
    let mut start = 2;
    while header_key(header.cell(start)) == "from" {
        for (k, (name, keys)) in EXPECTED.iter().enumerate() {
            let cell = header.cell(start + k);
            if !keys.contains(&header_key(cell).as_str()) {
                return Err(err(
                    header.line,
                    format!("column {} is {cell:?}, expected {name:?}", start + k + 1),
                ));
            }
        }
        let g = groups.len();
        let category = match group_header {
            Some(gh) => (start..start + 5)
                .find_map(|c| TierCategory::from_header(gh.cell(c)))
                .ok_or_else(|| {
                    err(
                        gh.line,
                        format!(
                            "no category (Utility, Authentication, Auth-Intl) above column {}",
                            start + 1
                        ),
                    )
                })?,
            None => *TierCategory::ALL.get(g).ok_or_else(|| {
                err(
                    header.line,
                    "more than three column groups and no group header".into(),
                )
            })?,
        };
        if groups.iter().any(|&(_, c)| c == category) {
            return Err(err(
                header.line,
                format!("two column groups for {category}"),
            ));
        }
        groups.push((start, category));
        start += 5;
    }
    if groups.is_empty() {
        return Err(err(
            header.line,
            format!(
                "column 3 is {:?}, expected \"From\" (then To, Rate type, Rate, vs. List rate)",
                header.cell(2)
            ),
        ));
    }
    for (i, cell) in header.cells.iter().enumerate().skip(start) {
        if !cell.trim().is_empty() {
            return Err(err(
                header.line,
                format!("unexpected column {} {:?}", i + 1, cell.trim()),
            ));
        }
    }

    let title_currency = title.as_ref().and_then(|t| t.currency.clone());
    let mut currency = CurrencyCheck::new(title_currency, true);
    // Bands as read, with their lines, before validation.
    let mut pending: Vec<[(Vec<Band>, Vec<usize>); TierCategory::COUNT]> =
        vec![Default::default(); Market::COUNT];
    let mut markets: Vec<Market> = Vec::new();
    let mut current: Option<Market> = None;

    for row in &rows[header_at + 1..] {
        if row.is_blank() {
            continue;
        }
        let name = row.cell(0);
        if is_note(name) {
            notes.push(row.joined());
            continue;
        }
        let market = if name.is_empty() {
            current.ok_or_else(|| err(row.line, "continuation row before any market row".into()))?
        } else {
            Market::from_name(name)
                .ok_or_else(|| err(row.line, format!("unknown market {name:?}")))?
        };
        current = Some(market);
        currency
            .check(row.cell(1))
            .map_err(|msg| err(row.line, msg))?;
        for &(c, category) in &groups {
            let cells: [&str; 5] = std::array::from_fn(|k| row.cell(c + k));
            if cells.iter().all(|s| is_na(s)) {
                continue;
            }
            let what = |msg| err(row.line, format!("{category} band for {market}: {msg}"));
            let (band, symbol) = parse_band(cells).map_err(what)?;
            if !symbol.is_empty() {
                currency.check(symbol).map_err(what)?;
            }
            let slot = &mut pending[market.0 as usize][category.index()];
            slot.0.push(band);
            slot.1.push(row.line);
            if !markets.contains(&market) {
                markets.push(market);
            }
        }
        for (i, cell) in row.cells.iter().enumerate().skip(start) {
            if !is_na(cell.trim()) {
                return Err(err(
                    row.line,
                    format!(
                        "value {:?} in column {} without a header",
                        cell.trim(),
                        i + 1
                    ),
                ));
            }
        }
    }

    let mut card = TierCard::new("", LocalDate(0), source);
    for &market in &markets {
        for category in TierCategory::ALL {
            let (bands, lines) = std::mem::take(&mut pending[market.0 as usize][category.index()]);
            card.bands[market.0 as usize][category.index()] =
                validate_bands(bands, lines, market, category).map_err(|(l, m)| err(l, m))?;
        }
    }
    if markets.is_empty() {
        return Err(err(0, "no bands".into()));
    }
    card.markets = markets;
    card.currency = currency.known.ok_or_else(|| {
        err(
            0,
            "no currency: no ISO code in the title and no currency cells".into(),
        )
    })?;
    card.effective = title
        .and_then(|t| t.effective)
        .or(default_effective)
        .ok_or_else(|| err(0, "no effective date in the title and none given".into()))?;
    card.notes = notes;
    Ok(card)
}

/// Parses the five cells `From, To, Rate type, Rate, vs. List rate` of one band.
/// Also returns the currency symbol written before the rate, if any.
fn parse_band(cells: [&str; 5]) -> Result<(Band, &str), String> {
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
    let k = header_key(kind_s);
    let kind = if k.contains("tier") {
        BandKind::Tier
    } else if k.contains("list") {
        BandKind::List
    } else if k.is_empty() || is_na(kind_s) {
        match discount {
            Some(d) if !d.is_zero() => BandKind::Tier,
            _ => BandKind::List,
        }
    } else {
        return Err(format!("rate type {kind_s:?} (expected List or Tier)"));
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::card::test_support::*;
    use rust_decimal::Decimal;

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
