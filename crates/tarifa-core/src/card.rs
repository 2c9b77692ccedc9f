//! Rate cards: Meta's rates CSV (RC-3), volume-tiers CSV (RC-4, V-8) and the versioned
//! [`RateBook`] that picks the card in force on a date (RC-5).
//!
//! Everything here is pure: parsers take the file's text and a `source` label (usually the file
//! name) that is echoed in every [`CardError`] together with the 1-based CSV line.
//!
//! Amounts are [`Decimal`]s parsed exactly from the text (never through `f64`).
//!
//! Hot-path lookups are cheap by construction: [`RateCard::rate`] is two array indexes,
//! [`TierCard::band_for`] a binary search over a handful of bands, and [`RateBook::rate_card`] a
//! scan over at most ~16 currencies followed by a binary search over that currency's versions.

use crate::market::Market;
use crate::time::LocalDate;
use rust_decimal::Decimal;
use std::fmt;

// ---------------------------------------------------------------------------------------------
// Columns and categories
// ---------------------------------------------------------------------------------------------

/// A price column of a rates CSV (RC-3). One card carries the columns of its era:
/// `Template` (era A), `BusinessInitiated`/`UserInitiated` (era B), `Marketing` … `Service`
/// (eras C and D), `MarketingLite` (MM Lite, where a card lists it).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum RateColumn {
    Template,
    BusinessInitiated,
    UserInitiated,
    Marketing,
    Utility,
    Authentication,
    AuthenticationInternational,
    Service,
    MarketingLite,
}

impl RateColumn {
    pub const COUNT: usize = 9;
    pub const ALL: [RateColumn; RateColumn::COUNT] = [
        RateColumn::Template,
        RateColumn::BusinessInitiated,
        RateColumn::UserInitiated,
        RateColumn::Marketing,
        RateColumn::Utility,
        RateColumn::Authentication,
        RateColumn::AuthenticationInternational,
        RateColumn::Service,
        RateColumn::MarketingLite,
    ];

    /// Position in [`RateColumn::ALL`]; the index used by the per-market rate arrays.
    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The header Meta writes for this column.
    pub const fn name(self) -> &'static str {
        match self {
            RateColumn::Template => "Template",
            RateColumn::BusinessInitiated => "Business-Initiated",
            RateColumn::UserInitiated => "User-Initiated",
            RateColumn::Marketing => "Marketing",
            RateColumn::Utility => "Utility",
            RateColumn::Authentication => "Authentication",
            RateColumn::AuthenticationInternational => "Authentication-International",
            RateColumn::Service => "Service",
            RateColumn::MarketingLite => "Marketing Lite",
        }
    }

    /// Recognises a header cell. Case, spaces, hyphens, line breaks and a parenthesised remark
    /// are ignored (`"Authentication-\nInternational"`, `"Business Initiated"`,
    /// `"Marketing (per message)"`); `Notification` is era A's name for `Template`.
    pub fn from_header(text: &str) -> Option<RateColumn> {
        let key = header_key(text);
        let mut k = key.as_str();
        for suffix in [
            "conversations",
            "conversation",
            "messages",
            "message",
            "rates",
            "rate",
        ] {
            if let Some(stripped) = k.strip_suffix(suffix) {
                if !stripped.is_empty() {
                    k = stripped;
                    break;
                }
            }
        }
        Some(match k {
            "template" | "templates" | "notification" | "notifications" | "hsm" => {
                RateColumn::Template
            }
            "businessinitiated" | "bic" | "bi" => RateColumn::BusinessInitiated,
            "userinitiated" | "uic" | "ui" => RateColumn::UserInitiated,
            "marketing" => RateColumn::Marketing,
            "utility" => RateColumn::Utility,
            "authentication" | "auth" => RateColumn::Authentication,
            "authenticationinternational"
            | "authenticationintl"
            | "authinternational"
            | "authintl" => RateColumn::AuthenticationInternational,
            "service" => RateColumn::Service,
            "marketinglite" | "marketingmessageslite" | "mmlite" => RateColumn::MarketingLite,
            _ => return None,
        })
    }
}

impl fmt::Display for RateColumn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The categories that have volume tiers (V-1, V-6): utility, authentication and
/// authentication-international (which shares authentication's counter but has its own bands).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Debug)]
pub enum TierCategory {
    Utility,
    Authentication,
    AuthenticationInternational,
}

impl TierCategory {
    pub const COUNT: usize = 3;
    pub const ALL: [TierCategory; TierCategory::COUNT] = [
        TierCategory::Utility,
        TierCategory::Authentication,
        TierCategory::AuthenticationInternational,
    ];

    #[inline]
    pub const fn index(self) -> usize {
        self as usize
    }

    pub const fn name(self) -> &'static str {
        self.column().name()
    }

    /// The rate-card column whose list rate the bands discount.
    pub const fn column(self) -> RateColumn {
        match self {
            TierCategory::Utility => RateColumn::Utility,
            TierCategory::Authentication => RateColumn::Authentication,
            TierCategory::AuthenticationInternational => RateColumn::AuthenticationInternational,
        }
    }

    pub const fn from_column(column: RateColumn) -> Option<TierCategory> {
        match column {
            RateColumn::Utility => Some(TierCategory::Utility),
            RateColumn::Authentication => Some(TierCategory::Authentication),
            RateColumn::AuthenticationInternational => {
                Some(TierCategory::AuthenticationInternational)
            }
            _ => None,
        }
    }

    /// Recognises a group header of the tiers CSV (`Utility`, `Authentication`, `Auth-Intl`).
    pub fn from_header(text: &str) -> Option<TierCategory> {
        RateColumn::from_header(text).and_then(TierCategory::from_column)
    }
}

impl fmt::Display for TierCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

// ---------------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------------

/// A rate-card file that cannot be used, with the place to look.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardError {
    /// The file name or label given to the parser.
    pub source: String,
    /// 1-based CSV line (the first physical line of a multi-line record); 0 for the whole file.
    pub line: usize,
    pub message: String,
}

impl CardError {
    pub fn new(source: &str, line: usize, message: impl Into<String>) -> CardError {
        CardError {
            source: source.to_owned(),
            line,
            message: message.into(),
        }
    }
}

impl fmt::Display for CardError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.source, self.line, self.message)
    }
}

impl std::error::Error for CardError {}

// ---------------------------------------------------------------------------------------------
// Rate card (RC-3)
// ---------------------------------------------------------------------------------------------

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
    rates: Vec<RateRow>,
    /// Markets that have a row, in file order.
    markets: Vec<Market>,
    /// Columns present in the header.
    columns: [bool; RateColumn::COUNT],
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

fn parse_rates(
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

// ---------------------------------------------------------------------------------------------
// Volume tiers (RC-4, V-3, V-8)
// ---------------------------------------------------------------------------------------------

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
    bands: Vec<TierRow>,
    markets: Vec<Market>,
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
        let lines = vec![0; bands.len()];
        let bands = validate_bands(bands, lines, market, category)
            .map_err(|(line, msg)| CardError::new(&self.source, line, msg))?;
        if !self.markets.contains(&market) {
            self.markets.push(market);
        }
        self.bands[m][category.index()] = bands;
        Ok(())
    }

    /// Parses a volume-tiers CSV in Meta's layout (RC-4). The effective date comes from the title
    /// row if it has one, else from `effective`, else it is an error.
    pub fn parse_csv(
        text: &str,
        source: &str,
        effective: Option<LocalDate>,
    ) -> Result<TierCard, CardError> {
        parse_tiers(text, source, effective)
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

fn parse_tiers(
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

/// Sorts one market × category's bands and checks that they start at 1 (0 is read as 1), are
/// contiguous (`next.from == prev.to + 1`) and that only the last is open-ended.
fn validate_bands(
    bands: Vec<Band>,
    lines: Vec<usize>,
    market: Market,
    category: TierCategory,
) -> Result<Vec<Band>, (usize, String)> {
    let mut pairs: Vec<(Band, usize)> = bands.into_iter().zip(lines).collect();
    pairs.sort_by_key(|(b, _)| b.from);
    let what = format!("{category} bands for {market}");
    let mut out: Vec<Band> = Vec::with_capacity(pairs.len());
    let mut prev_line = 0;
    for (i, (mut band, line)) in pairs.into_iter().enumerate() {
        if i == 0 {
            if band.from == 0 {
                band.from = 1;
            }
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
            match prev.to {
                None => {
                    return Err((
                        prev_line,
                        format!(
                            "{what}: only the last band may be open-ended (from {})",
                            prev.from
                        ),
                    ))
                }
                Some(t) if band.from != t + 1 => {
                    return Err((
                        line,
                        format!(
                            "{what} are not contiguous: band starts at {}, expected {}",
                            band.from,
                            t + 1
                        ),
                    ))
                }
                Some(_) => {}
            }
        }
        prev_line = line;
        out.push(band);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Rate book (RC-5)
// ---------------------------------------------------------------------------------------------

trait Versioned: Clone {
    fn currency(&self) -> &str;
    fn effective(&self) -> LocalDate;
    fn source(&self) -> &str;
    fn scaled_by(&self, factor: Decimal, source: &str) -> Self;
}

impl Versioned for RateCard {
    fn currency(&self) -> &str {
        &self.currency
    }
    fn effective(&self) -> LocalDate {
        self.effective
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn scaled_by(&self, factor: Decimal, source: &str) -> Self {
        self.scaled(factor, source)
    }
}

impl Versioned for TierCard {
    fn currency(&self) -> &str {
        &self.currency
    }
    fn effective(&self) -> LocalDate {
        self.effective
    }
    fn source(&self) -> &str {
        &self.source
    }
    fn scaled_by(&self, factor: Decimal, source: &str) -> Self {
        self.scaled(factor, source)
    }
}

/// All versions of one kind of card, per currency (few currencies: a Vec scanned linearly),
/// each currency's versions sorted by effective date.
#[derive(Debug, Clone)]
struct Versions<T> {
    by_currency: Vec<(String, Vec<T>)>,
}

impl<T> Default for Versions<T> {
    fn default() -> Self {
        Versions {
            by_currency: Vec::new(),
        }
    }
}

impl<T: Versioned> Versions<T> {
    fn add(&mut self, card: T, kind: &str) -> Result<(), CardError> {
        let cur = card.currency().to_ascii_uppercase();
        let pos = match self
            .by_currency
            .binary_search_by(|(c, _)| c.as_str().cmp(&cur))
        {
            Ok(p) => p,
            Err(p) => {
                self.by_currency.insert(p, (cur.clone(), Vec::new()));
                p
            }
        };
        let cards = &mut self.by_currency[pos].1;
        match cards.binary_search_by_key(&card.effective(), |c| c.effective()) {
            Ok(i) => Err(CardError::new(
                card.source(),
                0,
                format!(
                    "duplicate {kind} version {cur} effective {} (already loaded from {})",
                    card.effective(),
                    cards[i].source()
                ),
            )),
            Err(i) => {
                cards.insert(i, card);
                Ok(())
            }
        }
    }

    #[inline]
    fn versions(&self, currency: &str) -> &[T] {
        self.by_currency
            .iter()
            .find(|(c, _)| c.eq_ignore_ascii_case(currency))
            .map_or(&[], |(_, v)| v.as_slice())
    }

    #[inline]
    fn at(&self, currency: &str, date: LocalDate) -> Option<&T> {
        let cards = self.versions(currency);
        let n = cards.partition_point(|c| c.effective() <= date);
        n.checked_sub(1).map(|i| &cards[i])
    }

    fn iter(&self) -> impl Iterator<Item = &T> {
        self.by_currency.iter().flat_map(|(_, v)| v.iter())
    }

    fn scaled(&self, factor: Decimal, label: &str) -> Versions<T> {
        Versions {
            by_currency: self
                .by_currency
                .iter()
                .map(|(c, cards)| {
                    let cards = cards
                        .iter()
                        .map(|card| {
                            card.scaled_by(
                                factor,
                                &format!("{label} ({} × {factor})", card.source()),
                            )
                        })
                        .collect();
                    (c.clone(), cards)
                })
                .collect(),
        }
    }
}

/// Every rate-card and tier-card version loaded, keyed by (currency, effective date) (RC-5).
#[derive(Debug, Clone, Default)]
pub struct RateBook {
    rates: Versions<RateCard>,
    tiers: Versions<TierCard>,
}

impl RateBook {
    pub fn new() -> Self {
        RateBook::default()
    }

    /// Adds a rates-CSV version; error if one with the same (currency, effective) is loaded.
    /// Excerpts ([`RateCard::is_excerpt`]) are accepted: skipping them is the loader's choice.
    pub fn add_rate_card(&mut self, card: RateCard) -> Result<(), CardError> {
        self.rates.add(card, "rate card")
    }

    /// Adds a volume-tiers version; error if one with the same (currency, effective) is loaded.
    pub fn add_tier_card(&mut self, card: TierCard) -> Result<(), CardError> {
        self.tiers.add(card, "tier card")
    }

    /// The rate card in force on `date` (a WABA-local date): the latest with effective <= date.
    /// `None` before the first version or for an unknown currency.
    #[inline]
    pub fn rate_card(&self, currency: &str, date: LocalDate) -> Option<&RateCard> {
        self.rates.at(currency, date)
    }

    /// The tier card in force on `date`, as [`RateBook::rate_card`].
    #[inline]
    pub fn tier_card(&self, currency: &str, date: LocalDate) -> Option<&TierCard> {
        self.tiers.at(currency, date)
    }

    /// A currency's rate-card versions, oldest first.
    pub fn rate_card_versions(&self, currency: &str) -> &[RateCard] {
        self.rates.versions(currency)
    }

    /// A currency's tier-card versions, oldest first.
    pub fn tier_card_versions(&self, currency: &str) -> &[TierCard] {
        self.tiers.versions(currency)
    }

    /// Currencies with a rate card or a tier card, sorted, each once.
    pub fn currencies(&self) -> impl Iterator<Item = &str> + '_ {
        let mut all: Vec<&str> = self
            .rates
            .by_currency
            .iter()
            .map(|(c, _)| c.as_str())
            .collect();
        all.extend(self.tiers.by_currency.iter().map(|(c, _)| c.as_str()));
        all.sort_unstable();
        all.dedup();
        all.into_iter()
    }

    /// Every rate card, by currency then effective date.
    pub fn rate_cards(&self) -> impl Iterator<Item = &RateCard> {
        self.rates.iter()
    }

    /// Every tier card, by currency then effective date.
    pub fn tier_cards(&self) -> impl Iterator<Item = &TierCard> {
        self.tiers.iter()
    }

    /// A resale price list: every rate of every card × `factor` (e.g. a BSP's 20 % mark-up);
    /// sources become `"{label} ({source} × {factor})"`.
    pub fn scaled(&self, factor: Decimal, label: &str) -> RateBook {
        RateBook {
            rates: self.rates.scaled(factor, label),
            tiers: self.tiers.scaled(factor, label),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// CSV rows and cells
// ---------------------------------------------------------------------------------------------

struct Row {
    /// 1-based line where the record starts.
    line: usize,
    cells: Vec<String>,
}

impl Row {
    /// Cell `i`, trimmed; `""` past the end.
    fn cell(&self, i: usize) -> &str {
        self.cells.get(i).map_or("", |c| c.trim())
    }

    fn is_blank(&self) -> bool {
        self.cells.iter().all(|c| c.trim().is_empty())
    }

    /// The row as one text: unquoted titles and notes are split at their commas by the CSV
    /// reader, so join the cells back and drop the trailing empty ones.
    fn joined(&self) -> String {
        let end = self
            .cells
            .iter()
            .rposition(|c| !c.trim().is_empty())
            .map_or(0, |i| i + 1);
        self.cells[..end].join(",").trim().to_owned()
    }
}

/// Reads every record (quoted cells may span lines); ragged rows are fine.
fn read_rows(text: &str, source: &str) -> Result<Vec<Row>, CardError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    // `csv::Position::line` does not count the blank lines the reader skips, so lines are
    // counted from the byte offset instead (offsets only grow: one pass over the text).
    let bytes = text.as_bytes();
    let mut counted_to = 0usize;
    let mut line = 1usize;
    let mut line_at = |pos: Option<&csv::Position>| -> usize {
        let Some(pos) = pos else { return 0 };
        let mut at = (pos.byte() as usize).min(bytes.len());
        while at < bytes.len() && matches!(bytes[at], b'\r' | b'\n') {
            at += 1;
        }
        if at >= counted_to {
            line += bytes[counted_to..at]
                .iter()
                .filter(|&&b| b == b'\n')
                .count();
            counted_to = at;
        }
        line
    };
    let mut rows = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        match reader.read_record(&mut record) {
            Ok(true) => rows.push(Row {
                line: line_at(record.position()),
                cells: record.iter().map(str::to_owned).collect(),
            }),
            Ok(false) => return Ok(rows),
            Err(e) => {
                let line = line_at(e.position());
                return Err(CardError::new(source, line, format!("CSV: {e}")));
            }
        }
    }
}

/// Lower-case alphanumerics of a header cell, without a parenthesised remark:
/// `"Market\n(per rate card)"` → `"market"`, `"Authentication-\nInternational"` →
/// `"authenticationinternational"`, `"vs. List rate"` → `"vslistrate"`.
fn header_key(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut depth = 0u32;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            c if depth == 0 && c.is_alphanumeric() => out.extend(c.to_lowercase()),
            _ => {}
        }
    }
    out
}

fn is_market_header(cell: &str) -> bool {
    matches!(header_key(cell).as_str(), "market" | "markets" | "country")
}

/// Note rows: `Note…`, `Notes:`, footnotes marked `*` or `†`.
fn is_note(cell: &str) -> bool {
    cell.get(..4)
        .is_some_and(|p| p.eq_ignore_ascii_case("note"))
        || cell.starts_with('*')
        || cell.starts_with('†')
}

/// Cells meaning "no value".
fn is_na(t: &str) -> bool {
    t.is_empty()
        || ["n/a", "na", "n.a.", "-", "--", "–", "—", "none"]
            .iter()
            .any(|s| t.eq_ignore_ascii_case(s))
}

/// Cells meaning "no upper bound" in a band's `To`.
fn is_open_end(t: &str) -> bool {
    is_na(t)
        || [
            "∞",
            "+",
            "+∞",
            "and above",
            "and more",
            "or more",
            "above",
            "no limit",
            "unlimited",
        ]
        .iter()
        .any(|s| t.eq_ignore_ascii_case(s))
}

/// A message count, with optional thousands separators (`1,000,001`, `1 000 001`).
fn parse_count(t: &str) -> Option<u64> {
    let digits: String = t
        .chars()
        .filter(|c| !(c.is_whitespace() || matches!(c, ',' | '_' | '\'' | '’')))
        .collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// A rate cell: `n/a`-like → `None`; otherwise a non-negative decimal, optionally preceded by a
/// currency symbol (`$0.0411`, `₹ 0.1150`, `Rp 1,169.20`) and with `,` thousands separators.
/// Parsed exactly.
/// Also returns the symbol (`""` if none), for the caller to check against the card's currency.
fn parse_amount(cell: &str) -> Result<(Option<Decimal>, &str), String> {
    let t = cell.trim();
    if is_na(t) {
        return Ok((None, ""));
    }
    let start = t
        .find(|c: char| c.is_ascii_digit() || c == '.')
        .ok_or_else(|| format!("{t:?} is not a number"))?;
    let prefix = t[..start].trim();
    if prefix.contains(['-', '−']) {
        return Err(format!("negative rate {t:?}"));
    }
    if !prefix.is_empty() && currency_token(prefix).is_none() {
        return Err(format!("{t:?} is not a number"));
    }
    let body: String = t[start..].chars().filter(|c| !c.is_whitespace()).collect();
    let body = strip_thousands(&body).ok_or_else(|| format!("{t:?} is not a number"))?;
    Decimal::from_str_exact(&body)
        .map(|d| (Some(d), prefix))
        .map_err(|_| format!("{t:?} is not a number"))
}

/// Removes `,` thousands separators if they are well placed (`1,169.20`); `None` otherwise
/// (`0,0411` is rejected rather than guessed).
fn strip_thousands(body: &str) -> Option<String> {
    if !body.contains(',') {
        return Some(body.to_owned());
    }
    let (int, frac) = body.split_once('.').unwrap_or((body, ""));
    if frac.contains(',') {
        return None;
    }
    let mut groups = int.split(',');
    let first = groups.next()?;
    if first.is_empty() || first.len() > 3 {
        return None;
    }
    let mut out = first.to_owned();
    for g in groups {
        if g.len() != 3 {
            return None;
        }
        out.push_str(g);
    }
    if !frac.is_empty() || body.contains('.') {
        out.push('.');
        out.push_str(frac);
    }
    Some(out)
}

/// `0%`, `-5%`, `−5 %` (Unicode minus), `-5` → `Some(-0.05)` etc.; blank/`n/a` → `None`.
/// The number is always read as a percentage.
fn parse_percent(cell: &str) -> Result<Option<Decimal>, String> {
    let t = cell.trim();
    if is_na(t) {
        return Ok(None);
    }
    let s: String = t
        .chars()
        .filter(|c| !c.is_whitespace())
        .map(|c| match c {
            '−' | '–' | '‒' | '—' | '﹣' | '－' => '-',
            c => c,
        })
        .collect();
    let s = s.strip_suffix('%').unwrap_or(&s);
    let s = s.strip_prefix('+').unwrap_or(s);
    let pct =
        Decimal::from_str_exact(s).map_err(|_| format!("discount {t:?} is not a percentage"))?;
    pct.checked_div(Decimal::ONE_HUNDRED)
        .map(|d| Some(d.normalize()))
        .ok_or_else(|| format!("discount {t:?} is out of range"))
}

// ---------------------------------------------------------------------------------------------
// Titles, dates and currencies
// ---------------------------------------------------------------------------------------------

struct Title {
    currency: Option<String>,
    effective: Option<LocalDate>,
}

/// Reads `Cost per conversation in USD, effective June 1, 2023` and the variants `effective
/// 1 July 2026`, `effective 2026-07-01`, `effective from …`. A title that says "effective" but
/// whose date cannot be read is an error.
fn parse_title(text: &str) -> Result<Title, String> {
    let lower = text.to_ascii_lowercase();
    let effective = match lower.find("effective") {
        Some(p) => Some(
            parse_title_date(&text[p + "effective".len()..])
                .ok_or_else(|| format!("cannot read the effective date in the title {text:?}"))?,
        ),
        None => None,
    };
    Ok(Title {
        currency: title_currency(text),
        effective,
    })
}

fn parse_title_date(rest: &str) -> Option<LocalDate> {
    let tokens: Vec<&str> = rest
        .split(|c: char| c.is_whitespace() || c == ',')
        .map(|t| t.trim_matches(|c: char| matches!(c, '.' | ':' | '(' | ')' | ';')))
        .filter(|t| !t.is_empty())
        .skip_while(|t| {
            ["from", "as", "of", "on", "date"]
                .iter()
                .any(|w| t.eq_ignore_ascii_case(w))
        })
        .take(3)
        .collect();
    let first = *tokens.first()?;
    if let Some(d) = LocalDate::parse(first) {
        return Some(d);
    }
    let [a, b, c] = tokens[..] else {
        return None;
    };
    let year: i32 = c.parse().ok()?;
    if let Some(month) = month_number(a) {
        LocalDate::from_ymd(year, month, day_number(b)?)
    } else {
        LocalDate::from_ymd(year, month_number(b)?, day_number(a)?)
    }
}

fn month_number(word: &str) -> Option<u32> {
    const MONTHS: [&str; 12] = [
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ];
    let w = word.to_ascii_lowercase();
    if w.len() < 3 {
        return None;
    }
    MONTHS
        .iter()
        .position(|m| m.starts_with(&w))
        .map(|i| i as u32 + 1)
}

/// `1`, `01`, `1st`, `22nd`.
fn day_number(word: &str) -> Option<u32> {
    let digits = word.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    if digits.is_empty() || digits.len() > 2 {
        return None;
    }
    digits.parse().ok()
}

/// The ISO code of a title: the currency after "in" (`… in USD, …`, `… in $US …`), else any
/// known ISO code written in capitals.
fn title_currency(text: &str) -> Option<String> {
    let words: Vec<&str> = text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | '(' | ')' | ':' | ';'))
        .filter(|w| !w.is_empty())
        .collect();
    for pair in words.windows(2) {
        if pair[0].eq_ignore_ascii_case("in") {
            if let Some(CurrencyToken::Iso(c)) = currency_token(pair[1]) {
                if KNOWN_CURRENCIES.contains(&c.as_str()) {
                    return Some(c);
                }
            }
        }
    }
    words
        .iter()
        .find(|w| w.len() == 3 && KNOWN_CURRENCIES.contains(w))
        .map(|w| (*w).to_owned())
}

/// Meta's 16 billing currencies (RC-2) and other ISO 4217 codes a price list may use. Used to
/// find the code in a title and to tell a typo from a contradiction in tier files.
const KNOWN_CURRENCIES: &[&str] = &[
    "USD", "AED", "ARS", "AUD", "BRL", "CLP", "COP", "EUR", "GBP", "IDR", "INR", "MXN", "MYR",
    "PEN", "SAR", "SGD", "BDT", "BHD", "BOB", "CAD", "CHF", "CNY", "CRC", "CZK", "DKK", "DOP",
    "EGP", "GHS", "GTQ", "HKD", "HUF", "ILS", "IQD", "JOD", "JPY", "KES", "KRW", "KWD", "KZT",
    "LKR", "MAD", "NGN", "NOK", "NPR", "NZD", "OMR", "PAB", "PHP", "PKR", "PLN", "PYG", "QAR",
    "RON", "RUB", "SEK", "THB", "TND", "TRY", "TWD", "UAH", "UYU", "VES", "VND", "ZAR",
];

/// Currencies written with a bare `$` sign.
const DOLLAR_CURRENCIES: &[&str] = &["USD", "AUD", "MXN", "ARS", "CLP", "COP", "SGD"];

#[derive(Debug, Clone, PartialEq, Eq)]
enum CurrencyToken {
    Iso(String),
    /// A bare `$`: one of [`DOLLAR_CURRENCIES`].
    Dollar,
}

/// Reads a currency cell (`$US`, `USD`, `€`, `£`, `₹`, `Rp`, `A$`, …).
fn currency_token(token: &str) -> Option<CurrencyToken> {
    let t: String = token.chars().filter(|c| !c.is_whitespace()).collect();
    let upper = t.to_uppercase();
    let iso = match upper.as_str() {
        "$" => return Some(CurrencyToken::Dollar),
        "$US" | "US$" | "U$S" | "USD$" => "USD",
        "€" => "EUR",
        "£" => "GBP",
        // Meta typo seen in a GBP volume-tiers CSV (R6 `tier_loader.py`); tolerated everywhere.
        "GBD" => "GBP",
        "₹" => "INR",
        "RP" | "RP." => "IDR",
        "A$" | "AU$" => "AUD",
        "R$" => "BRL",
        "MX$" | "MEX$" => "MXN",
        "S/" | "S/." => "PEN",
        "RM" => "MYR",
        "S$" => "SGD",
        "AR$" => "ARS",
        "CLP$" => "CLP",
        "COL$" => "COP",
        "د.إ" => "AED",
        "ر.س" => "SAR",
        s if s.len() == 3 && s.bytes().all(|b| b.is_ascii_uppercase()) => s,
        _ => return None,
    };
    Some(CurrencyToken::Iso(iso.to_owned()))
}

/// Reconciles the currency cells of a file with its title (RC-3): the title's ISO code is
/// authoritative and a cell that contradicts it is an error; without one, the first cell decides
/// and later cells must agree.
struct CurrencyCheck {
    known: Option<String>,
    from_title: bool,
    /// Tier files: when the title gives the currency, a cell that is not a recognisable currency
    /// (a typo other than the known `GBD`) is ignored — the title wins (RC-4).
    tolerant: bool,
}

impl CurrencyCheck {
    fn new(title: Option<String>, tolerant: bool) -> CurrencyCheck {
        CurrencyCheck {
            from_title: title.is_some(),
            known: title,
            tolerant,
        }
    }

    fn check(&mut self, cell: &str) -> Result<(), String> {
        if cell.is_empty() {
            return Ok(());
        }
        let tolerate = self.tolerant && self.from_title;
        let whose = if self.from_title {
            "the title's"
        } else {
            "the earlier rows'"
        };
        match (currency_token(cell), &self.known) {
            (None, _) if tolerate => Ok(()),
            (None, _) => Err(format!("unrecognised currency {cell:?}")),
            (Some(CurrencyToken::Dollar), Some(k)) if DOLLAR_CURRENCIES.contains(&k.as_str()) => {
                Ok(())
            }
            (Some(CurrencyToken::Dollar), Some(k)) => {
                Err(format!("currency {cell:?} contradicts {whose} {k}"))
            }
            (Some(CurrencyToken::Dollar), None) => Err(format!(
                "currency {cell:?} is ambiguous and the title has no ISO code"
            )),
            (Some(CurrencyToken::Iso(c)), Some(k)) if &c == k => Ok(()),
            (Some(CurrencyToken::Iso(c)), Some(_))
                if tolerate && !KNOWN_CURRENCIES.contains(&c.as_str()) =>
            {
                Ok(())
            }
            (Some(CurrencyToken::Iso(c)), Some(k)) => {
                Err(format!("currency {cell:?} ({c}) contradicts {whose} {k}"))
            }
            (Some(CurrencyToken::Iso(c)), None) => {
                self.known = Some(c);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::from_str_exact(s).unwrap()
    }

    fn m(name: &str) -> Market {
        Market::from_name(name).unwrap()
    }

    const U2_CARD: &str = "Cost per conversation in USD, effective June 1, 2023,,,,,,
\"Note: Authentication-International rate applies for Indonesia as of June 1, 2024, and India as of July 1, 2024\",,,,,,
Market,Currency,Marketing,Utility,Authentication,\"Authentication-
International\",Service
Indonesia,$US,0.0411,0.0200,0.0300,0.1360,0.0190
Malaysia,$US,0.0860,0.0200,0.0180,n/a,0.0220

Other,$US,0.0604,0.0338,0.0304,n/a,0.0145
";

    fn card_with(title: &str, rows: &str) -> Result<RateCard, CardError> {
        RateCard::parse_csv(
            &format!("{title}\nMarket,Currency,Marketing,Utility\n{rows}"),
            "t.csv",
        )
    }

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

    /// RC-3: title variants and the date/currency read from them.
    #[test]
    fn rc3_title_date_formats() {
        let cases = [
            (
                "Cost per conversation in USD, effective June 1, 2023,,,,,,",
                "USD",
                (2023, 6, 1),
            ),
            (
                "Cost per message in EUR, effective July 1, 2026",
                "EUR",
                (2026, 7, 1),
            ),
            (
                "Cost per message in EUR, effective 1 July 2026",
                "EUR",
                (2026, 7, 1),
            ),
            (
                "Cost per message in AED, effective 2026-10-01",
                "AED",
                (2026, 10, 1),
            ),
            (
                "\"Cost per message in INR, effective from Jan 1st, 2026\"",
                "INR",
                (2026, 1, 1),
            ),
            (
                "Rates in GBP (effective Sept. 30, 2024)",
                "GBP",
                (2024, 9, 30),
            ),
        ];
        for (title, cur, (y, mo, da)) in cases {
            let card = card_with(title, "Brazil,,0.0625,0.0350").unwrap();
            assert_eq!(card.currency, cur, "{title}");
            assert_eq!(card.effective, LocalDate::ymd(y, mo, da), "{title}");
        }
        // "effective" with an unreadable date is an error on the title line.
        let e = card_with("Cost per message in EUR, effective soon", "Brazil,,1,1").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("effective date"), "{e}");
        // No date anywhere: error unless the caller supplies one (RC-5).
        let text = "Cost per message in EUR\nMarket,Currency,Marketing\nBrazil,EUR,0.0518\n";
        let e = RateCard::parse_csv(text, "t.csv").unwrap_err();
        assert_eq!((e.line, e.message.contains("effective")), (0, true));
        let card =
            RateCard::parse_csv_with_effective(text, "t.csv", Some(LocalDate::ymd(2026, 7, 1)))
                .unwrap();
        assert_eq!(card.effective, LocalDate::ymd(2026, 7, 1));
    }

    /// RC-3: currency tokens; the title's ISO code wins, a contradicting token is an error.
    #[test]
    fn rc3_currency_tokens() {
        // `$US` with no ISO code in the title: derived from the token.
        let card = card_with("Rates, effective 2022-02-01", "Brazil,$US,0.05,0.03").unwrap();
        assert_eq!(card.currency, "USD");
        for (title, token, iso) in [
            ("Rates, effective 2026-07-01", "€", "EUR"),
            ("Rates, effective 2026-07-01", "£", "GBP"),
            ("Rates, effective 2026-07-01", "₹", "INR"),
            ("Rates, effective 2026-07-01", "Rp", "IDR"),
            ("Rates, effective 2026-07-01", "A$", "AUD"),
            ("Rates in AUD, effective 2026-07-01", "$", "AUD"),
            ("Rates in GBP, effective 2026-07-01", "GBD", "GBP"),
        ] {
            let card = card_with(title, &format!("Brazil,{token},0.05,0.03")).unwrap();
            assert_eq!(card.currency, iso, "{token}");
        }
        // Contradiction with the title, with its line.
        let e = card_with(
            "Cost per message in EUR, effective July 1, 2026",
            "Brazil,EUR,0.05,0.03\nIndia,$US,0.01,0.001",
        )
        .unwrap_err();
        assert_eq!(e.line, 4, "{e}");
        assert!(e.message.contains("contradicts"), "{e}");
        // Contradiction between rows when the title has no code.
        let e = card_with(
            "Rates, effective 2026-07-01",
            "Brazil,€,0.05,0.03\nIndia,£,0.01,0.001",
        )
        .unwrap_err();
        assert_eq!(e.line, 4);
        // A bare `$` cannot name the currency alone.
        assert!(card_with("Rates, effective 2026-07-01", "Brazil,$,0.05,0.03").is_err());
        // No code anywhere.
        let e = card_with("Rates, effective 2026-07-01", "Brazil,,0.05,0.03").unwrap_err();
        assert!(e.message.contains("no currency"), "{e}");
    }

    /// RC-3: values are exact decimals; n/a spellings; symbols and separators.
    #[test]
    fn rc3_values() {
        let card = card_with(
            "Rates in IDR, effective 2022-02-01",
            "Germany,Rp,\"Rp 1,948.66\", 1169.20 \nBrazil,IDR,n/a,NA\nIndia,IDR,-,\nMexico,IDR,—,N/A",
        )
        .unwrap();
        assert_eq!(
            card.rate(m("Germany"), RateColumn::Marketing),
            Some(d("1948.66"))
        );
        assert_eq!(
            card.rate(m("Germany"), RateColumn::Utility),
            Some(d("1169.20"))
        );
        for name in ["Brazil", "India", "Mexico"] {
            assert_eq!(card.rate(m(name), RateColumn::Marketing), None);
            assert_eq!(card.rate(m(name), RateColumn::Utility), None);
        }
        // The exact decimal, not a float round-trip.
        let card = card_with(
            "Rates in USD, effective 2022-02-01",
            "Brazil,USD,$0.1,0.0000001",
        )
        .unwrap();
        assert_eq!(
            card.rate(m("Brazil"), RateColumn::Marketing)
                .unwrap()
                .to_string(),
            "0.1"
        );
        assert_eq!(
            card.rate(m("Brazil"), RateColumn::Utility),
            Some(d("0.0000001"))
        );
        for bad in ["abc", "0,0411", "-0.01", "1.2.3", "EUR 0.1"] {
            let e = card_with(
                "Rates in USD, effective 2022-02-01",
                &format!("Brazil,USD,\"{bad}\",1"),
            )
            .unwrap_err();
            assert_eq!(e.line, 3, "{bad}: {e}");
            assert!(e.message.contains("Marketing for Brazil"), "{e}");
        }
    }

    /// RC-3: header variants of every era.
    #[test]
    fn rc3_header_variants() {
        let text = "Cost per conversation in USD, effective February 1, 2022
Market,Currency,Business Initiated,\"User-
Initiated\"
Germany,$US,0.1365,0.0819
";
        let card = RateCard::parse_csv(text, "b.csv").unwrap();
        assert_eq!(
            card.rate(m("Germany"), RateColumn::BusinessInitiated),
            Some(d("0.1365"))
        );
        assert_eq!(
            card.rate(m("Germany"), RateColumn::UserInitiated),
            Some(d("0.0819"))
        );
        let cols: Vec<RateColumn> = card.columns().collect();
        assert_eq!(
            cols,
            vec![RateColumn::BusinessInitiated, RateColumn::UserInitiated]
        );
        for (h, c) in [
            ("Notification", RateColumn::Template),
            ("Template", RateColumn::Template),
            ("Business-Initiated", RateColumn::BusinessInitiated),
            ("MARKETING LITE", RateColumn::MarketingLite),
            ("Marketing (per message)", RateColumn::Marketing),
            ("Auth-Intl", RateColumn::AuthenticationInternational),
            (
                "authentication_international",
                RateColumn::AuthenticationInternational,
            ),
        ] {
            assert_eq!(RateColumn::from_header(h), Some(c), "{h}");
        }
        for c in RateColumn::ALL {
            assert_eq!(RateColumn::from_header(c.name()), Some(c));
        }
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

    fn usd_card(y: i32, mo: u32, rate: &str) -> RateCard {
        let mut c = RateCard::new("USD", LocalDate::ymd(y, mo, 1), &format!("usd-{y}-{mo}"));
        c.set_rate(m("Brazil"), RateColumn::Marketing, Some(d(rate)));
        c
    }

    /// RC-5: versions keyed by (currency, effective); the card in force is the latest effective
    /// on or before the date; none before the first.
    #[test]
    fn rc5_rate_book_versions() {
        let mut book = RateBook::new();
        book.add_rate_card(usd_card(2023, 6, "0.0625")).unwrap();
        book.add_rate_card(usd_card(2022, 2, "0.0500")).unwrap();
        book.add_rate_card(usd_card(2025, 7, "0.0625")).unwrap();
        let mut eur = RateCard::new("eur", LocalDate::ymd(2026, 7, 1), "eur");
        eur.set_rate(m("Brazil"), RateColumn::Marketing, Some(d("0.0518")));
        book.add_rate_card(eur).unwrap();

        let at = |cur: &str, y, mo, da| {
            book.rate_card(cur, LocalDate::ymd(y, mo, da))
                .map(|c| c.source.as_str())
        };
        assert_eq!(at("USD", 2022, 1, 31), None);
        assert_eq!(at("USD", 2022, 2, 1), Some("usd-2022-2"));
        assert_eq!(at("USD", 2023, 5, 31), Some("usd-2022-2"));
        assert_eq!(at("USD", 2023, 6, 1), Some("usd-2023-6"));
        assert_eq!(at("USD", 2025, 6, 30), Some("usd-2023-6"));
        assert_eq!(at("usd", 2030, 1, 1), Some("usd-2025-7"));
        assert_eq!(at("EUR", 2026, 6, 30), None);
        assert_eq!(at("EUR", 2026, 7, 1), Some("eur"));
        assert_eq!(at("GBP", 2026, 7, 1), None);
        assert_eq!(book.currencies().collect::<Vec<_>>(), vec!["EUR", "USD"]);
        assert_eq!(book.rate_cards().count(), 4);
        let versions: Vec<LocalDate> = book
            .rate_card_versions("USD")
            .iter()
            .map(|c| c.effective)
            .collect();
        assert_eq!(
            versions,
            vec![
                LocalDate::ymd(2022, 2, 1),
                LocalDate::ymd(2023, 6, 1),
                LocalDate::ymd(2025, 7, 1)
            ]
        );

        // Duplicate version.
        let e = book.add_rate_card(usd_card(2023, 6, "0.07")).unwrap_err();
        assert!(
            e.message.contains("duplicate") && e.message.contains("usd-2023-6"),
            "{e}"
        );
        assert_eq!(book.rate_cards().count(), 4);

        // Resale book.
        let resale = book.scaled(d("1.2"), "Pancake");
        let c = resale.rate_card("USD", LocalDate::ymd(2023, 7, 1)).unwrap();
        assert_eq!(c.rate(m("Brazil"), RateColumn::Marketing), Some(d("0.075")));
        assert_eq!(c.source, "Pancake (usd-2023-6 × 1.2)");
    }

    const TIERS: &str = "Volume tiers for utility and authentication messages in GBP, effective July 1, 2025,,,,
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
        let band = |from, to| Band {
            from,
            to,
            kind: BandKind::List,
            rate: d("0.01"),
            discount: None,
        };
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

    const SHIPPED_RATES: [(&str, &str); 8] = [
        (
            "usd-2022-02-01.csv",
            include_str!("../../../data/rates/usd-2022-02-01.csv"),
        ),
        (
            "usd-2023-06-01.csv",
            include_str!("../../../data/rates/usd-2023-06-01.csv"),
        ),
        (
            "usd-2024-07-01-india-indonesia-excerpt.csv",
            include_str!("../../../data/rates/usd-2024-07-01-india-indonesia-excerpt.csv"),
        ),
        (
            "inr-2025-07-01.csv",
            include_str!("../../../data/rates/inr-2025-07-01.csv"),
        ),
        (
            "inr-2026-01-01.csv",
            include_str!("../../../data/rates/inr-2026-01-01.csv"),
        ),
        (
            "inr-2026-10-01.csv",
            include_str!("../../../data/rates/inr-2026-10-01.csv"),
        ),
        (
            "eur-2026-07-01.csv",
            include_str!("../../../data/rates/eur-2026-07-01.csv"),
        ),
        (
            "aed-2026-10-01-excerpt.csv",
            include_str!("../../../data/rates/aed-2026-10-01-excerpt.csv"),
        ),
    ];
    const SHIPPED_TIERS: &str =
        include_str!("../../../data/rates/eur-tiers-2026-07-01-illustrative.csv");

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
}
