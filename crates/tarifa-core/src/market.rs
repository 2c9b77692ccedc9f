//! Markets: where a recipient number is rated (rules 1-1, MK-1 … MK-6).
//!
//! Meta prices a message by the recipient's *market*: a country with its own rates, or a regional
//! group ("Rest of Africa", "North America", …), or "Other". The market comes from the calling code
//! plus, for +1 and +7, the network prefix, and the map changes over time (MK-2), so resolution
//! always takes the date.

use crate::time::LocalDate;
use std::fmt;

/// ISO 3166-1 alpha-2 country code, e.g. `*b"BR"`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Country(pub [u8; 2]);

impl Country {
    pub const fn new(code: &[u8; 2]) -> Country {
        Country(*code)
    }

    pub fn parse(text: &str) -> Option<Country> {
        let b = text.as_bytes();
        if b.len() == 2 && b.iter().all(u8::is_ascii_alphabetic) {
            Some(Country([
                b[0].to_ascii_uppercase(),
                b[1].to_ascii_uppercase(),
            ]))
        } else {
            None
        }
    }

    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Country {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One of Meta's pricing markets, as an index into [`MARKETS`].
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Market(pub u8);

/// Static description of a market.
pub struct MarketInfo {
    /// The name Meta's rate cards use.
    pub name: &'static str,
    /// Other spellings seen in Meta's CSVs and BSP tables.
    pub aliases: &'static [&'static str],
    /// The country, for a single-country market.
    pub country: Option<Country>,
}

const fn country(name: &'static str, code: &[u8; 2]) -> MarketInfo {
    MarketInfo {
        name,
        aliases: &[],
        country: Some(Country::new(code)),
    }
}

const fn region(name: &'static str, aliases: &'static [&'static str]) -> MarketInfo {
    MarketInfo {
        name,
        aliases,
        country: None,
    }
}

/// Every market that has existed since 2022 (47 in Meta's 2026-10-01 cards).
pub static MARKETS: &[MarketInfo] = &[
    country("Argentina", b"AR"),
    country("Brazil", b"BR"),
    country("Chile", b"CL"),
    country("Colombia", b"CO"),
    country("Egypt", b"EG"),
    country("France", b"FR"),
    country("Germany", b"DE"),
    country("India", b"IN"),
    country("Indonesia", b"ID"),
    country("Israel", b"IL"),
    country("Italy", b"IT"),
    country("Malaysia", b"MY"),
    country("Mexico", b"MX"),
    country("Netherlands", b"NL"),
    country("Nigeria", b"NG"),
    country("Pakistan", b"PK"),
    country("Peru", b"PE"),
    country("Russia", b"RU"),
    country("Saudi Arabia", b"SA"),
    country("South Africa", b"ZA"),
    country("Spain", b"ES"),
    country("Turkey", b"TR"),
    MarketInfo {
        name: "United Arab Emirates",
        aliases: &["UAE"],
        country: Some(Country::new(b"AE")),
    },
    MarketInfo {
        name: "United Kingdom",
        aliases: &["UK"],
        country: Some(Country::new(b"GB")),
    },
    // Standalone from 2026-07-01 (MK-2).
    country("Hong Kong", b"HK"),
    country("Hungary", b"HU"),
    country("Poland", b"PL"),
    country("Qatar", b"QA"),
    country("Romania", b"RO"),
    country("Singapore", b"SG"),
    // Standalone from 2026-10-01 (MK-2).
    country("Bangladesh", b"BD"),
    country("Iraq", b"IQ"),
    country("Kazakhstan", b"KZ"),
    country("Kuwait", b"KW"),
    country("Morocco", b"MA"),
    country("Nepal", b"NP"),
    country("Oman", b"OM"),
    country("Sri Lanka", b"LK"),
    country("Ukraine", b"UA"),
    region("North America", &[]),
    region("Rest of Africa", &[]),
    region(
        "Rest of Asia Pacific",
        &["Rest of APAC", "Rest of Asia-Pacific"],
    ),
    region(
        "Rest of Central & Eastern Europe",
        &[
            "Rest of C&E Europe",
            "Rest of CEE",
            "Rest of Central and Eastern Europe",
        ],
    ),
    region("Rest of Latin America", &["Rest of LatAm", "Rest of LATAM"]),
    region("Rest of Middle East", &[]),
    region("Rest of Western Europe", &[]),
    region("Other", &[]),
];

fn normalize(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric() || *c == '&')
        .flat_map(char::to_lowercase)
        .collect::<String>()
        .replace("and", "&")
}

impl Market {
    pub const NORTH_AMERICA: Market = Market(39);
    pub const REST_OF_AFRICA: Market = Market(40);
    pub const REST_OF_ASIA_PACIFIC: Market = Market(41);
    pub const REST_OF_CEE: Market = Market(42);
    pub const REST_OF_LATIN_AMERICA: Market = Market(43);
    pub const REST_OF_MIDDLE_EAST: Market = Market(44);
    pub const REST_OF_WESTERN_EUROPE: Market = Market(45);
    pub const OTHER: Market = Market(46);
    pub const COUNT: usize = 47;

    pub fn info(self) -> &'static MarketInfo {
        &MARKETS[self.0 as usize]
    }

    pub fn name(self) -> &'static str {
        self.info().name
    }

    /// Finds a market by the name in a rate card (case, spaces and punctuation ignored; aliases
    /// such as "UAE" and "Rest of APAC" accepted).
    pub fn from_name(name: &str) -> Option<Market> {
        let wanted = normalize(name);
        MARKETS
            .iter()
            .position(|m| {
                normalize(m.name) == wanted || m.aliases.iter().any(|a| normalize(a) == wanted)
            })
            .map(|i| Market(i as u8))
    }

    /// The single-country market of `country`, if one exists in the table (whether or not it is
    /// standalone on a given date: see [`resolve`]).
    pub fn of_country(country: Country) -> Option<Market> {
        MARKETS
            .iter()
            .position(|m| m.country == Some(country))
            .map(|i| Market(i as u8))
    }

    pub fn all() -> impl Iterator<Item = Market> {
        (0..Self::COUNT as u8).map(Market)
    }
}

impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl fmt::Debug for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[allow(dead_code)]
const _DATE_CHECK: LocalDate = LocalDate::ymd(2026, 10, 1);
