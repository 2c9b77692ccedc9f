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
pub static MARKETS: &[MarketInfo] = MARKET_LIST;

/// The table behind [`MARKETS`], as a `const` so that the compile-time market map below can look
/// markets up by country.
const MARKET_LIST: &[MarketInfo] = &[
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

// ---------------------------------------------------------------------------------------------
// Resolving a recipient number to (country, market) on a date (rule 1-1, MK-1 … MK-6)
// ---------------------------------------------------------------------------------------------

/// Where +1 countries that Meta's table does not list go (MK-4 ⚠).
///
/// Meta lists only Canada, the United States, the Dominican Republic, Jamaica and Puerto Rico under
/// +1. By rule 1-1 every other +1 country (Bahamas 242, Barbados 246, Trinidad 868, Bermuda 441,
/// Cayman 345, …) is **Other**; a plain `1 → North America` match (as some BSP tables do) puts them
/// in North America. Unresolved in the sources, hence an option.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NanpUnlisted {
    /// Rule 1-1 read literally: not listed → Other.
    #[default]
    Other,
    /// Follow the `1 → North America` prefix match.
    NorthAmerica,
}

/// Where Kazakh numbers (+7 6xx / 7xx) went before Kazakhstan became a market on 2026-10-01
/// (MK-5 ⚠). Meta lists Russia as `7` without a network prefix, so it is unclear whether Kazakh
/// numbers were rated as Russia or as Other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KazakhstanBefore2026 {
    /// Kazakhstan is not listed → Other (rule 1-1).
    #[default]
    Other,
    /// Kazakhstan shares +7 with Russia → Russia.
    Russia,
}

/// Choices for the unresolved points of the market map (MK-4, MK-5). The defaults follow rule 1-1
/// (anything Meta does not list is Other).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(default)]
pub struct MarketOptions {
    /// MK-4: +1 countries other than US, CA, DO, JM, PR.
    pub nanp_unlisted: NanpUnlisted,
    /// MK-5: Kazakhstan (+7 6xx/7xx) before 2026-10-01.
    pub kazakhstan_before_2026_10: KazakhstanBefore2026,
}

/// The recipient is not a phone number (e.g. a business-scoped user id such as
/// `US.13491208655302741918`), so it has no calling code and no market.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotAPhoneNumber;

impl fmt::Display for NotAPhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("recipient is not a phone number")
    }
}

impl std::error::Error for NotAPhoneNumber {}

/// Country of a recipient number (date-independent).
///
/// The number may carry a leading `+` and spaces, dashes, dots and parentheses; what is left must be
/// 7 to 15 digits (E.164 allows at most 15), else [`NotAPhoneNumber`]. The country is found as in
/// MK-3: for +1 the 3-digit area code (NANP countries, Canada vs United States), for +7 the network
/// prefix (6xx/7xx Kazakhstan, else Russia), otherwise a longest-prefix match over the 3-, 2- and
/// 1-digit ITU calling codes. Shared codes give their main country (+44 → GB, +39 → IT, …), which is
/// how Meta's table rates them. `Ok(None)` when the calling code is not a country's (unassigned,
/// international networks such as +800/+882, or a leading 0): such numbers are Other (rule 1-1).
///
/// No allocation: only the first four digits are kept.
pub fn country_of(number: &str) -> Result<Option<Country>, NotAPhoneNumber> {
    let mut head = [0u8; 4];
    let mut digits = 0usize;
    let mut plus = false;
    for &b in number.as_bytes() {
        match b {
            b'0'..=b'9' => {
                if digits < head.len() {
                    head[digits] = b - b'0';
                }
                digits += 1;
            }
            b'+' if digits == 0 && !plus => plus = true,
            b' ' | b'-' | b'.' | b'(' | b')' => {}
            _ => return Err(NotAPhoneNumber),
        }
    }
    if !(7..=15).contains(&digits) {
        return Err(NotAPhoneNumber);
    }
    Ok(country_of_head(head))
}

/// The country of a number from its first four digits.
fn country_of_head(head: [u8; 4]) -> Option<Country> {
    let code = match head[0] {
        // No calling code starts with 0.
        0 => return None,
        1 => {
            let area = head[1] as usize * 100 + head[2] as usize * 10 + head[3] as usize;
            return Some(Country(NANP_AREA_CODES[area]));
        }
        7 => {
            let kz = head[1] == 6 || head[1] == 7;
            return Some(Country::new(if kz { b"KZ" } else { b"RU" }));
        }
        d => d as usize,
    };
    let c2 = code * 10 + head[1] as usize;
    let c3 = c2 * 10 + head[2] as usize;
    // ITU codes are prefix-free, and 1-, 2- and 3-digit codes occupy disjoint index ranges
    // (1..=9, 10..=99, 100..=999), so one table serves all three lengths.
    [c3, c2, code]
        .into_iter()
        .map(|c| CALLING_CODES[c])
        .find(|c| *c != NONE)
        .map(Country)
}

/// Market of a country on a local date (MK-2 versioned map), applying the MK-4/MK-5 options.
///
/// `None` (unknown calling code) is Other (rule 1-1). Before 2022-02-01 the 2022 base list applies
/// too: tarifa keys the rates of the notification era by the same markets. One table lookup, one
/// date compare; no allocation.
pub fn market_of(country: Option<Country>, date: LocalDate, opts: &MarketOptions) -> Market {
    let Some(key) = country.and_then(country_key) else {
        return Market::OTHER;
    };
    let rule = &MARKET_RULES[key];
    let m = if date >= rule.from {
        rule.after
    } else {
        rule.before
    };
    match m {
        NANP_UNLISTED => match opts.nanp_unlisted {
            NanpUnlisted::Other => Market::OTHER,
            NanpUnlisted::NorthAmerica => Market::NORTH_AMERICA,
        },
        KAZAKHSTAN_BEFORE => match opts.kazakhstan_before_2026_10 {
            KazakhstanBefore2026::Other => Market::OTHER,
            KazakhstanBefore2026::Russia => Market(RUSSIA),
        },
        m => Market(m),
    }
}

/// [`country_of`] then [`market_of`]: the (country, market) of a recipient number on a local date.
pub fn resolve(
    number: &str,
    date: LocalDate,
    opts: &MarketOptions,
) -> Result<(Option<Country>, Market), NotAPhoneNumber> {
    let country = country_of(number)?;
    Ok((country, market_of(country, date, opts)))
}

// --- Calling codes ---------------------------------------------------------------------------

/// "No country" in the code tables.
const NONE: [u8; 2] = [0, 0];

/// ITU-T E.164 country codes of countries and territories (1 and 7 are resolved by prefix, see
/// [`country_of`]). Shared codes list their main country; non-geographic codes (800, 808, 870,
/// 878, 881, 882, 883, 888, 979, 991) and spare codes are absent, so they resolve to no country.
#[rustfmt::skip]
const ITU_CODES: &[(u16, [u8; 2])] = &[
    // Zone 2: Africa and some Atlantic islands.
    (20, *b"EG"), (211, *b"SS"), (212, *b"MA"), (213, *b"DZ"), (216, *b"TN"), (218, *b"LY"),
    (220, *b"GM"), (221, *b"SN"), (222, *b"MR"), (223, *b"ML"), (224, *b"GN"), (225, *b"CI"),
    (226, *b"BF"), (227, *b"NE"), (228, *b"TG"), (229, *b"BJ"), (230, *b"MU"), (231, *b"LR"),
    (232, *b"SL"), (233, *b"GH"), (234, *b"NG"), (235, *b"TD"), (236, *b"CF"), (237, *b"CM"),
    (238, *b"CV"), (239, *b"ST"), (240, *b"GQ"), (241, *b"GA"), (242, *b"CG"), (243, *b"CD"),
    (244, *b"AO"), (245, *b"GW"), (246, *b"IO"), (247, *b"SH"), (248, *b"SC"), (249, *b"SD"),
    (250, *b"RW"), (251, *b"ET"), (252, *b"SO"), (253, *b"DJ"), (254, *b"KE"), (255, *b"TZ"),
    (256, *b"UG"), (257, *b"BI"), (258, *b"MZ"), (260, *b"ZM"), (261, *b"MG"), (262, *b"RE"),
    (263, *b"ZW"), (264, *b"NA"), (265, *b"MW"), (266, *b"LS"), (267, *b"BW"), (268, *b"SZ"),
    (269, *b"KM"), (27, *b"ZA"), (290, *b"SH"), (291, *b"ER"), (297, *b"AW"), (298, *b"FO"),
    (299, *b"GL"),
    // Zones 3 and 4: Europe.
    (30, *b"GR"), (31, *b"NL"), (32, *b"BE"), (33, *b"FR"), (34, *b"ES"), (350, *b"GI"),
    (351, *b"PT"), (352, *b"LU"), (353, *b"IE"), (354, *b"IS"), (355, *b"AL"), (356, *b"MT"),
    (357, *b"CY"), (358, *b"FI"), (359, *b"BG"), (36, *b"HU"), (370, *b"LT"), (371, *b"LV"),
    (372, *b"EE"), (373, *b"MD"), (374, *b"AM"), (375, *b"BY"), (376, *b"AD"), (377, *b"MC"),
    (378, *b"SM"), (379, *b"VA"), (380, *b"UA"), (381, *b"RS"), (382, *b"ME"), (383, *b"XK"),
    (385, *b"HR"), (386, *b"SI"), (387, *b"BA"), (389, *b"MK"), (39, *b"IT"), (40, *b"RO"),
    (41, *b"CH"), (420, *b"CZ"), (421, *b"SK"), (423, *b"LI"), (43, *b"AT"), (44, *b"GB"),
    (45, *b"DK"), (46, *b"SE"), (47, *b"NO"), (48, *b"PL"), (49, *b"DE"),
    // Zone 5: Central and South America.
    (500, *b"FK"), (501, *b"BZ"), (502, *b"GT"), (503, *b"SV"), (504, *b"HN"), (505, *b"NI"),
    (506, *b"CR"), (507, *b"PA"), (508, *b"PM"), (509, *b"HT"), (51, *b"PE"), (52, *b"MX"),
    (53, *b"CU"), (54, *b"AR"), (55, *b"BR"), (56, *b"CL"), (57, *b"CO"), (58, *b"VE"),
    (590, *b"GP"), (591, *b"BO"), (592, *b"GY"), (593, *b"EC"), (594, *b"GF"), (595, *b"PY"),
    (596, *b"MQ"), (597, *b"SR"), (598, *b"UY"), (599, *b"CW"),
    // Zone 6: South-East Asia and Oceania.
    (60, *b"MY"), (61, *b"AU"), (62, *b"ID"), (63, *b"PH"), (64, *b"NZ"), (65, *b"SG"),
    (66, *b"TH"), (670, *b"TL"), (672, *b"NF"), (673, *b"BN"), (674, *b"NR"), (675, *b"PG"),
    (676, *b"TO"), (677, *b"SB"), (678, *b"VU"), (679, *b"FJ"), (680, *b"PW"), (681, *b"WF"),
    (682, *b"CK"), (683, *b"NU"), (685, *b"WS"), (686, *b"KI"), (687, *b"NC"), (688, *b"TV"),
    (689, *b"PF"), (690, *b"TK"), (691, *b"FM"), (692, *b"MH"),
    // Zone 8: East Asia.
    (81, *b"JP"), (82, *b"KR"), (84, *b"VN"), (850, *b"KP"), (852, *b"HK"), (853, *b"MO"),
    (855, *b"KH"), (856, *b"LA"), (86, *b"CN"), (880, *b"BD"), (886, *b"TW"),
    // Zone 9: West, Central and South Asia, Middle East.
    (90, *b"TR"), (91, *b"IN"), (92, *b"PK"), (93, *b"AF"), (94, *b"LK"), (95, *b"MM"),
    (960, *b"MV"), (961, *b"LB"), (962, *b"JO"), (963, *b"SY"), (964, *b"IQ"), (965, *b"KW"),
    (966, *b"SA"), (967, *b"YE"), (968, *b"OM"), (970, *b"PS"), (971, *b"AE"), (972, *b"IL"),
    (973, *b"BH"), (974, *b"QA"), (975, *b"BT"), (976, *b"MN"), (977, *b"NP"), (98, *b"IR"),
    (992, *b"TJ"), (993, *b"TM"), (994, *b"AZ"), (995, *b"GE"), (996, *b"KG"), (998, *b"UZ"),
];

/// Canadian area codes (geographic, plus the non-geographic 600). They matter beyond the market:
/// Meta does not deliver marketing templates to US numbers, but does to Canadian ones.
const CANADA_AREA_CODES: &[u16] = &[
    204, 226, 236, 249, 250, 257, 263, 289, 306, 343, 354, 365, 367, 368, 382, 387, 403, 416, 418,
    428, 431, 437, 438, 450, 460, 468, 474, 506, 514, 519, 548, 579, 581, 584, 587, 600, 604, 613,
    639, 647, 672, 683, 705, 709, 742, 753, 778, 780, 782, 807, 819, 825, 867, 873, 879, 902, 905,
    942,
];

/// NANP area codes of countries and territories other than the US and Canada. DO, JM and PR are
/// listed by Meta under Rest of Latin America (MK-1); the others are not listed at all (MK-4).
#[rustfmt::skip]
const OTHER_NANP_AREA_CODES: &[(u16, [u8; 2])] = &[
    (809, *b"DO"), (829, *b"DO"), (849, *b"DO"), (658, *b"JM"), (876, *b"JM"), (787, *b"PR"),
    (939, *b"PR"), (242, *b"BS"), (246, *b"BB"), (264, *b"AI"), (268, *b"AG"), (284, *b"VG"),
    (340, *b"VI"), (345, *b"KY"), (441, *b"BM"), (473, *b"GD"), (649, *b"TC"), (664, *b"MS"),
    (670, *b"MP"), (671, *b"GU"), (684, *b"AS"), (721, *b"SX"), (758, *b"LC"), (767, *b"DM"),
    (784, *b"VC"), (868, *b"TT"), (869, *b"KN"),
];

/// Calling code (1 to 3 digits, used as the index) → country, `NONE` when unassigned.
static CALLING_CODES: [[u8; 2]; 1000] = {
    let mut t = [NONE; 1000];
    let mut i = 0;
    while i < ITU_CODES.len() {
        let (code, country) = ITU_CODES[i];
        assert!(t[code as usize][0] == 0, "calling code listed twice");
        t[code as usize] = country;
        i += 1;
    }
    // The lookup relies on the codes being prefix-free, and on +1 and +7 being left to the
    // prefix rules.
    let mut code = 1;
    while code < 1000 {
        if t[code][0] != 0 {
            let mut prefix = code / 10;
            while prefix > 0 {
                assert!(t[prefix][0] == 0, "calling codes are not prefix-free");
                prefix /= 10;
            }
            let mut first = code;
            while first >= 10 {
                first /= 10;
            }
            assert!(first != 1 && first != 7, "+1 and +7 are resolved by prefix");
        }
        code += 1;
    }
    t
};

/// NANP area code → country; the United States unless listed otherwise.
static NANP_AREA_CODES: [[u8; 2]; 1000] = {
    let mut t = [*b"US"; 1000];
    let mut i = 0;
    while i < CANADA_AREA_CODES.len() {
        t[CANADA_AREA_CODES[i] as usize] = *b"CA";
        i += 1;
    }
    let mut i = 0;
    while i < OTHER_NANP_AREA_CODES.len() {
        let (area, country) = OTHER_NANP_AREA_CODES[i];
        assert!(t[area as usize][0] == b'U', "NANP area code listed twice");
        t[area as usize] = country;
        i += 1;
    }
    t
};

// --- Market map (MK-1, MK-2) -----------------------------------------------------------------

/// Placeholder markets resolved by [`MarketOptions`] (MK-4, MK-5); never exposed.
const NANP_UNLISTED: u8 = 254;
const KAZAKHSTAN_BEFORE: u8 = 255;

/// Dates of the MK-2 map changes (local dates: rule 1-3).
const ZIMBABWE_JOINS_AFRICA: LocalDate = LocalDate::ymd(2025, 10, 1);
const STANDALONE_2026_07: LocalDate = LocalDate::ymd(2026, 7, 1);
const STANDALONE_2026_10: LocalDate = LocalDate::ymd(2026, 10, 1);
/// "Always": a rule whose `before` is never used.
const ALWAYS: LocalDate = LocalDate(i32::MIN);

/// Standalone markets of the 2022 base list (MK-2).
const BASE_STANDALONE: &[[u8; 2]] = &[
    *b"AR", *b"BR", *b"CL", *b"CO", *b"EG", *b"FR", *b"DE", *b"IN", *b"ID", *b"IL", *b"IT", *b"MY",
    *b"MX", *b"NL", *b"NG", *b"PK", *b"PE", *b"RU", *b"SA", *b"ZA", *b"ES", *b"TR", *b"AE", *b"GB",
];

/// Members of the regions in the 2022 base list: MK-1's lists plus the countries that left them
/// on 2026-07-01 (HK, SG, HU, PL, RO, QA). Zimbabwe is listed under Africa in MK-1 but only joined
/// on 2025-10-01 (handled in [`MARKET_RULES`]).
const NORTH_AMERICA_MEMBERS: &[[u8; 2]] = &[*b"US", *b"CA"];
const REST_OF_AFRICA_MEMBERS: &[[u8; 2]] = &[
    *b"DZ", *b"AO", *b"BJ", *b"BW", *b"BF", *b"BI", *b"CM", *b"TD", *b"CG", *b"ER", *b"ET", *b"GA",
    *b"GM", *b"GH", *b"GW", *b"CI", *b"KE", *b"LS", *b"LR", *b"LY", *b"MG", *b"MW", *b"ML", *b"MR",
    *b"MA", *b"MZ", *b"NA", *b"NE", *b"RW", *b"SN", *b"SL", *b"SO", *b"SS", *b"SD", *b"SZ", *b"TZ",
    *b"TG", *b"TN", *b"UG", *b"ZM",
];
const REST_OF_ASIA_PACIFIC_MEMBERS: &[[u8; 2]] = &[
    *b"AF", *b"AU", *b"BD", *b"KH", *b"CN", *b"JP", *b"LA", *b"MN", *b"NP", *b"NZ", *b"PG", *b"PH",
    *b"LK", *b"TW", *b"TJ", *b"TH", *b"TM", *b"UZ", *b"VN", *b"HK", *b"SG",
];
const REST_OF_CEE_MEMBERS: &[[u8; 2]] = &[
    *b"AL", *b"AM", *b"AZ", *b"BY", *b"BG", *b"HR", *b"CZ", *b"GE", *b"GR", *b"LV", *b"LT", *b"MD",
    *b"MK", *b"RS", *b"SK", *b"SI", *b"UA", *b"HU", *b"PL", *b"RO",
];
const REST_OF_WESTERN_EUROPE_MEMBERS: &[[u8; 2]] = &[
    *b"AT", *b"BE", *b"DK", *b"FI", *b"IE", *b"NO", *b"PT", *b"SE", *b"CH",
];
const REST_OF_LATIN_AMERICA_MEMBERS: &[[u8; 2]] = &[
    *b"BO", *b"CR", *b"DO", *b"EC", *b"SV", *b"GT", *b"HT", *b"HN", *b"JM", *b"NI", *b"PA", *b"PY",
    *b"PR", *b"UY", *b"VE",
];
const REST_OF_MIDDLE_EAST_MEMBERS: &[[u8; 2]] = &[
    *b"BH", *b"IQ", *b"JO", *b"KW", *b"LB", *b"OM", *b"YE", *b"QA",
];

/// Countries that leave their region for a market of their own (MK-2).
const BECOME_STANDALONE: &[([u8; 2], LocalDate)] = &[
    (*b"HK", STANDALONE_2026_07),
    (*b"HU", STANDALONE_2026_07),
    (*b"PL", STANDALONE_2026_07),
    (*b"QA", STANDALONE_2026_07),
    (*b"RO", STANDALONE_2026_07),
    (*b"SG", STANDALONE_2026_07),
    (*b"BD", STANDALONE_2026_10),
    (*b"IQ", STANDALONE_2026_10),
    (*b"KW", STANDALONE_2026_10),
    (*b"MA", STANDALONE_2026_10),
    (*b"NP", STANDALONE_2026_10),
    (*b"OM", STANDALONE_2026_10),
    (*b"LK", STANDALONE_2026_10),
    (*b"UA", STANDALONE_2026_10),
];

/// +1 countries Meta does not list (MK-4): every NANP country except US, CA, DO, JM, PR.
const NANP_UNLISTED_MEMBERS: &[[u8; 2]] = &[
    *b"BS", *b"BB", *b"AI", *b"AG", *b"VG", *b"VI", *b"KY", *b"BM", *b"GD", *b"TC", *b"MS", *b"MP",
    *b"GU", *b"AS", *b"SX", *b"LC", *b"DM", *b"VC", *b"TT", *b"KN",
];

const RUSSIA: u8 = standalone(*b"RU");

/// The market of one country: `before` until `from` (exclusive), `after` from then on. Markets are
/// indices into [`MARKETS`] or one of the option placeholders.
#[derive(Clone, Copy)]
struct MarketRule {
    before: u8,
    after: u8,
    from: LocalDate,
}

impl MarketRule {
    const fn fixed(market: u8) -> MarketRule {
        MarketRule {
            before: market,
            after: market,
            from: ALWAYS,
        }
    }
}

/// Index of a country in the rule table: `AA` … `ZZ` → 0 … 675.
const fn country_key(country: Country) -> Option<usize> {
    let a = country.0[0].wrapping_sub(b'A');
    let b = country.0[1].wrapping_sub(b'A');
    if a < 26 && b < 26 {
        Some(a as usize * 26 + b as usize)
    } else {
        None
    }
}

const fn key(code: [u8; 2]) -> usize {
    match country_key(Country(code)) {
        Some(k) => k,
        None => panic!("not an ISO country code"),
    }
}

/// Index in [`MARKETS`] of a country's own market; fails the build if there is none.
const fn standalone(code: [u8; 2]) -> u8 {
    let mut i = 0;
    while i < MARKET_LIST.len() {
        if let Some(c) = MARKET_LIST[i].country {
            if c.0[0] == code[0] && c.0[1] == code[1] {
                return i as u8;
            }
        }
        i += 1;
    }
    panic!("country has no market of its own")
}

const fn set_fixed(mut t: [MarketRule; 676], members: &[[u8; 2]], market: u8) -> [MarketRule; 676] {
    let mut i = 0;
    while i < members.len() {
        let k = key(members[i]);
        assert!(t[k].after == Market::OTHER.0, "country in two markets");
        t[k] = MarketRule::fixed(market);
        i += 1;
    }
    t
}

/// The versioned market map (MK-1, MK-2), indexed by [`country_key`]; countries not listed are
/// Other (rule 1-1). Built at compile time so that [`market_of`] is one lookup and one compare.
static MARKET_RULES: [MarketRule; 676] = {
    let mut t = [MarketRule::fixed(Market::OTHER.0); 676];
    let mut i = 0;
    while i < BASE_STANDALONE.len() {
        t = set_fixed(t, &[BASE_STANDALONE[i]], standalone(BASE_STANDALONE[i]));
        i += 1;
    }
    // MK-6: the United States and Canada are one market.
    t = set_fixed(t, NORTH_AMERICA_MEMBERS, Market::NORTH_AMERICA.0);
    t = set_fixed(t, REST_OF_AFRICA_MEMBERS, Market::REST_OF_AFRICA.0);
    t = set_fixed(
        t,
        REST_OF_ASIA_PACIFIC_MEMBERS,
        Market::REST_OF_ASIA_PACIFIC.0,
    );
    t = set_fixed(t, REST_OF_CEE_MEMBERS, Market::REST_OF_CEE.0);
    t = set_fixed(
        t,
        REST_OF_WESTERN_EUROPE_MEMBERS,
        Market::REST_OF_WESTERN_EUROPE.0,
    );
    t = set_fixed(
        t,
        REST_OF_LATIN_AMERICA_MEMBERS,
        Market::REST_OF_LATIN_AMERICA.0,
    );
    t = set_fixed(
        t,
        REST_OF_MIDDLE_EAST_MEMBERS,
        Market::REST_OF_MIDDLE_EAST.0,
    );
    t = set_fixed(t, NANP_UNLISTED_MEMBERS, NANP_UNLISTED);
    let mut i = 0;
    while i < BECOME_STANDALONE.len() {
        let (code, from) = BECOME_STANDALONE[i];
        let k = key(code);
        assert!(t[k].after != Market::OTHER.0, "leaves no region");
        t[k] = MarketRule {
            before: t[k].after,
            after: standalone(code),
            from,
        };
        i += 1;
    }
    // Zimbabwe: Other → Rest of Africa on 2025-10-01.
    t[key(*b"ZW")] = MarketRule {
        before: Market::OTHER.0,
        after: Market::REST_OF_AFRICA.0,
        from: ZIMBABWE_JOINS_AFRICA,
    };
    // Kazakhstan: Other or Russia (MK-5 option) → Kazakhstan on 2026-10-01.
    t[key(*b"KZ")] = MarketRule {
        before: KAZAKHSTAN_BEFORE,
        after: standalone(*b"KZ"),
        from: STANDALONE_2026_10,
    };
    t
};

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: MarketOptions = MarketOptions {
        nanp_unlisted: NanpUnlisted::Other,
        kazakhstan_before_2026_10: KazakhstanBefore2026::Other,
    };
    /// The date of the MK-1 copy (2026-09-11): after the 2026-07-01 changes, before 2026-10-01.
    const MK1_DATE: LocalDate = LocalDate::ymd(2026, 9, 11);

    fn d(text: &str) -> LocalDate {
        LocalDate::parse(text).unwrap()
    }

    fn market(name: &str) -> Market {
        Market::from_name(name).unwrap_or_else(|| panic!("no market {name}"))
    }

    /// A plausible number starting with `prefix` (calling code, plus area code for +1).
    fn number(prefix: &str) -> String {
        let filler = if prefix.starts_with('1') {
            "5550123"
        } else {
            "21234567"
        };
        format!("+{prefix}{filler}")
    }

    fn check(prefix: &str, iso: &str, market_name: &str, date: LocalDate, opts: &MarketOptions) {
        let n = number(prefix);
        let (country, m) = resolve(&n, date, opts).unwrap();
        assert_eq!(
            country,
            Some(Country::parse(iso).unwrap()),
            "country of {n}"
        );
        assert_eq!(m, market(market_name), "market of {n} ({iso}) on {date}");
    }

    /// MK-1 as of the 2026-09-11 copy: (prefix, ISO country, market).
    const MK1: &[(&str, &str, &str)] = &[
        ("54", "AR", "Argentina"),
        ("55", "BR", "Brazil"),
        ("56", "CL", "Chile"),
        ("57", "CO", "Colombia"),
        ("20", "EG", "Egypt"),
        ("33", "FR", "France"),
        ("49", "DE", "Germany"),
        ("852", "HK", "Hong Kong"),
        ("36", "HU", "Hungary"),
        ("91", "IN", "India"),
        ("62", "ID", "Indonesia"),
        ("972", "IL", "Israel"),
        ("39", "IT", "Italy"),
        ("60", "MY", "Malaysia"),
        ("52", "MX", "Mexico"),
        ("31", "NL", "Netherlands"),
        ("234", "NG", "Nigeria"),
        ("92", "PK", "Pakistan"),
        ("51", "PE", "Peru"),
        ("48", "PL", "Poland"),
        ("974", "QA", "Qatar"),
        ("40", "RO", "Romania"),
        ("7495", "RU", "Russia"),
        ("7912", "RU", "Russia"),
        ("966", "SA", "Saudi Arabia"),
        ("65", "SG", "Singapore"),
        ("27", "ZA", "South Africa"),
        ("34", "ES", "Spain"),
        ("90", "TR", "Turkey"),
        ("971", "AE", "United Arab Emirates"),
        ("44", "GB", "United Kingdom"),
        // North America (MK-6).
        ("1212", "US", "North America"),
        ("1416", "CA", "North America"),
        // Rest of Africa.
        ("213", "DZ", "Rest of Africa"),
        ("244", "AO", "Rest of Africa"),
        ("229", "BJ", "Rest of Africa"),
        ("267", "BW", "Rest of Africa"),
        ("226", "BF", "Rest of Africa"),
        ("257", "BI", "Rest of Africa"),
        ("237", "CM", "Rest of Africa"),
        ("235", "TD", "Rest of Africa"),
        ("242", "CG", "Rest of Africa"),
        ("291", "ER", "Rest of Africa"),
        ("251", "ET", "Rest of Africa"),
        ("241", "GA", "Rest of Africa"),
        ("220", "GM", "Rest of Africa"),
        ("233", "GH", "Rest of Africa"),
        ("245", "GW", "Rest of Africa"),
        ("225", "CI", "Rest of Africa"),
        ("254", "KE", "Rest of Africa"),
        ("266", "LS", "Rest of Africa"),
        ("231", "LR", "Rest of Africa"),
        ("218", "LY", "Rest of Africa"),
        ("261", "MG", "Rest of Africa"),
        ("265", "MW", "Rest of Africa"),
        ("223", "ML", "Rest of Africa"),
        ("222", "MR", "Rest of Africa"),
        ("212", "MA", "Rest of Africa"),
        ("258", "MZ", "Rest of Africa"),
        ("264", "NA", "Rest of Africa"),
        ("227", "NE", "Rest of Africa"),
        ("250", "RW", "Rest of Africa"),
        ("221", "SN", "Rest of Africa"),
        ("232", "SL", "Rest of Africa"),
        ("252", "SO", "Rest of Africa"),
        ("211", "SS", "Rest of Africa"),
        ("249", "SD", "Rest of Africa"),
        ("268", "SZ", "Rest of Africa"),
        ("255", "TZ", "Rest of Africa"),
        ("228", "TG", "Rest of Africa"),
        ("216", "TN", "Rest of Africa"),
        ("256", "UG", "Rest of Africa"),
        ("260", "ZM", "Rest of Africa"),
        ("263", "ZW", "Rest of Africa"),
        // Rest of Asia Pacific.
        ("93", "AF", "Rest of Asia Pacific"),
        ("61", "AU", "Rest of Asia Pacific"),
        ("880", "BD", "Rest of Asia Pacific"),
        ("855", "KH", "Rest of Asia Pacific"),
        ("86", "CN", "Rest of Asia Pacific"),
        ("81", "JP", "Rest of Asia Pacific"),
        ("856", "LA", "Rest of Asia Pacific"),
        ("976", "MN", "Rest of Asia Pacific"),
        ("977", "NP", "Rest of Asia Pacific"),
        ("64", "NZ", "Rest of Asia Pacific"),
        ("675", "PG", "Rest of Asia Pacific"),
        ("63", "PH", "Rest of Asia Pacific"),
        ("94", "LK", "Rest of Asia Pacific"),
        ("886", "TW", "Rest of Asia Pacific"),
        ("992", "TJ", "Rest of Asia Pacific"),
        ("66", "TH", "Rest of Asia Pacific"),
        ("993", "TM", "Rest of Asia Pacific"),
        ("998", "UZ", "Rest of Asia Pacific"),
        ("84", "VN", "Rest of Asia Pacific"),
        // Rest of Central & Eastern Europe.
        ("355", "AL", "Rest of Central & Eastern Europe"),
        ("374", "AM", "Rest of Central & Eastern Europe"),
        ("994", "AZ", "Rest of Central & Eastern Europe"),
        ("375", "BY", "Rest of Central & Eastern Europe"),
        ("359", "BG", "Rest of Central & Eastern Europe"),
        ("385", "HR", "Rest of Central & Eastern Europe"),
        ("420", "CZ", "Rest of Central & Eastern Europe"),
        ("995", "GE", "Rest of Central & Eastern Europe"),
        ("30", "GR", "Rest of Central & Eastern Europe"),
        ("371", "LV", "Rest of Central & Eastern Europe"),
        ("370", "LT", "Rest of Central & Eastern Europe"),
        ("373", "MD", "Rest of Central & Eastern Europe"),
        ("389", "MK", "Rest of Central & Eastern Europe"),
        ("381", "RS", "Rest of Central & Eastern Europe"),
        ("421", "SK", "Rest of Central & Eastern Europe"),
        ("386", "SI", "Rest of Central & Eastern Europe"),
        ("380", "UA", "Rest of Central & Eastern Europe"),
        // Rest of Western Europe.
        ("43", "AT", "Rest of Western Europe"),
        ("32", "BE", "Rest of Western Europe"),
        ("45", "DK", "Rest of Western Europe"),
        ("358", "FI", "Rest of Western Europe"),
        ("353", "IE", "Rest of Western Europe"),
        ("47", "NO", "Rest of Western Europe"),
        ("351", "PT", "Rest of Western Europe"),
        ("46", "SE", "Rest of Western Europe"),
        ("41", "CH", "Rest of Western Europe"),
        // Rest of Latin America, including the three listed NANP countries.
        ("591", "BO", "Rest of Latin America"),
        ("506", "CR", "Rest of Latin America"),
        ("1809", "DO", "Rest of Latin America"),
        ("1829", "DO", "Rest of Latin America"),
        ("1849", "DO", "Rest of Latin America"),
        ("593", "EC", "Rest of Latin America"),
        ("503", "SV", "Rest of Latin America"),
        ("502", "GT", "Rest of Latin America"),
        ("509", "HT", "Rest of Latin America"),
        ("504", "HN", "Rest of Latin America"),
        ("1658", "JM", "Rest of Latin America"),
        ("1876", "JM", "Rest of Latin America"),
        ("505", "NI", "Rest of Latin America"),
        ("507", "PA", "Rest of Latin America"),
        ("595", "PY", "Rest of Latin America"),
        ("1787", "PR", "Rest of Latin America"),
        ("1939", "PR", "Rest of Latin America"),
        ("598", "UY", "Rest of Latin America"),
        ("58", "VE", "Rest of Latin America"),
        // Rest of Middle East.
        ("973", "BH", "Rest of Middle East"),
        ("964", "IQ", "Rest of Middle East"),
        ("962", "JO", "Rest of Middle East"),
        ("965", "KW", "Rest of Middle East"),
        ("961", "LB", "Rest of Middle East"),
        ("968", "OM", "Rest of Middle East"),
        ("967", "YE", "Rest of Middle East"),
    ];

    #[test]
    fn mk_1_every_listed_code_resolves_to_its_market_on_2026_09_11() {
        for &(prefix, iso, name) in MK1 {
            check(prefix, iso, name, MK1_DATE, &DEFAULT);
        }
    }

    #[test]
    fn mk_1_unlisted_countries_keep_their_country_and_are_other() {
        for (prefix, iso) in [
            ("82", "KR"),
            ("95", "MM"),
            ("98", "IR"),
            ("53", "CU"),
            ("354", "IS"),
            ("352", "LU"),
            ("243", "CD"),
            ("230", "MU"),
            ("599", "CW"),
            ("970", "PS"),
        ] {
            check(prefix, iso, "Other", MK1_DATE, &DEFAULT);
        }
    }

    #[test]
    fn mk_1_every_market_has_a_country_on_2026_10_01() {
        let mut seen = [false; Market::COUNT];
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let m = market_of(Some(Country([a, b])), d("2026-10-01"), &DEFAULT);
                seen[m.0 as usize] = true;
            }
        }
        let missing: Vec<_> = Market::all().filter(|m| !seen[m.0 as usize]).collect();
        assert!(missing.is_empty(), "markets without a country: {missing:?}");
    }

    #[test]
    fn mk_1_single_country_markets_resolve_to_themselves_from_2026_10_01() {
        for m in Market::all() {
            if let Some(c) = m.info().country {
                assert_eq!(market_of(Some(c), d("2026-10-01"), &DEFAULT), m);
                assert_eq!(Market::of_country(c), Some(m));
            }
        }
    }

    #[test]
    fn mk_1_from_name_finds_every_market_and_alias() {
        for m in Market::all() {
            assert_eq!(Market::from_name(m.name()), Some(m), "{}", m.name());
            assert_eq!(Market::from_name(&m.name().to_uppercase()), Some(m));
            for alias in m.info().aliases {
                assert_eq!(Market::from_name(alias), Some(m), "{alias}");
            }
        }
        assert_eq!(
            Market::from_name("Rest of Central and Eastern Europe"),
            Some(Market::REST_OF_CEE)
        );
        assert_eq!(Market::from_name("Atlantis"), None);
        assert_eq!(Market::all().count(), MARKETS.len());
    }

    #[test]
    fn mk_2_july_2026_countries_become_standalone() {
        for (prefix, iso, region, own) in [
            ("48", "PL", "Rest of Central & Eastern Europe", "Poland"),
            ("36", "HU", "Rest of Central & Eastern Europe", "Hungary"),
            ("40", "RO", "Rest of Central & Eastern Europe", "Romania"),
            ("852", "HK", "Rest of Asia Pacific", "Hong Kong"),
            ("65", "SG", "Rest of Asia Pacific", "Singapore"),
            ("974", "QA", "Rest of Middle East", "Qatar"),
        ] {
            check(prefix, iso, region, d("2022-02-01"), &DEFAULT);
            check(prefix, iso, region, d("2026-06-30"), &DEFAULT);
            check(prefix, iso, own, d("2026-07-01"), &DEFAULT);
            check(prefix, iso, own, d("2027-01-01"), &DEFAULT);
        }
    }

    #[test]
    fn mk_2_zimbabwe_joins_rest_of_africa_on_2025_10_01() {
        check("263", "ZW", "Other", d("2022-02-01"), &DEFAULT);
        check("263", "ZW", "Other", d("2025-09-30"), &DEFAULT);
        check("263", "ZW", "Rest of Africa", d("2025-10-01"), &DEFAULT);
        check("263", "ZW", "Rest of Africa", d("2026-10-01"), &DEFAULT);
    }

    #[test]
    fn mk_2_october_2026_countries_become_standalone() {
        for (prefix, iso, region, own) in [
            ("880", "BD", "Rest of Asia Pacific", "Bangladesh"),
            ("977", "NP", "Rest of Asia Pacific", "Nepal"),
            ("94", "LK", "Rest of Asia Pacific", "Sri Lanka"),
            ("964", "IQ", "Rest of Middle East", "Iraq"),
            ("965", "KW", "Rest of Middle East", "Kuwait"),
            ("968", "OM", "Rest of Middle East", "Oman"),
            ("212", "MA", "Rest of Africa", "Morocco"),
            ("380", "UA", "Rest of Central & Eastern Europe", "Ukraine"),
        ] {
            check(prefix, iso, region, d("2022-02-01"), &DEFAULT);
            check(prefix, iso, region, d("2026-09-30"), &DEFAULT);
            check(prefix, iso, own, d("2026-10-01"), &DEFAULT);
        }
    }

    #[test]
    fn mk_2_dates_before_2022_use_the_base_list() {
        check(
            "48",
            "PL",
            "Rest of Central & Eastern Europe",
            d("2021-06-01"),
            &DEFAULT,
        );
        check("55", "BR", "Brazil", d("2019-01-01"), &DEFAULT);
        check("263", "ZW", "Other", d("2020-01-01"), &DEFAULT);
    }

    #[test]
    fn mk_2_base_list_has_24_countries_and_the_regions() {
        let date = d("2022-02-01");
        let mut seen = [false; Market::COUNT];
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                seen[market_of(Some(Country([a, b])), date, &DEFAULT).0 as usize] = true;
            }
        }
        let seen: Vec<_> = Market::all().filter(|m| seen[m.0 as usize]).collect();
        // 24 countries, North America, the six "Rest of" regions (MK-2 says seven, but Meta's
        // cards have six: Africa, Asia Pacific, C&E Europe, Latin America, Middle East, W. Europe)
        // and Other.
        assert_eq!(seen.len(), 24 + 1 + 6 + 1, "{seen:?}");
        assert!(seen
            .iter()
            .all(|m| m.0 < 24 || m.0 >= Market::NORTH_AMERICA.0));
    }

    #[test]
    fn mk_3_nanp_area_codes() {
        check("1809", "DO", "Rest of Latin America", MK1_DATE, &DEFAULT);
        check("1212", "US", "North America", MK1_DATE, &DEFAULT);
        check("1800", "US", "North America", MK1_DATE, &DEFAULT);
        for area in CANADA_AREA_CODES {
            check(
                &format!("1{area}"),
                "CA",
                "North America",
                MK1_DATE,
                &DEFAULT,
            );
        }
    }

    #[test]
    fn mk_3_plus_7_splits_russia_and_kazakhstan_by_prefix() {
        assert_eq!(
            country_of("+7 495 123 45 67"),
            Ok(Some(Country::new(b"RU")))
        );
        assert_eq!(
            country_of("+7 912 123 45 67"),
            Ok(Some(Country::new(b"RU")))
        );
        assert_eq!(
            country_of("+7 701 123 45 67"),
            Ok(Some(Country::new(b"KZ")))
        );
        assert_eq!(
            country_of("+7 601 123 45 67"),
            Ok(Some(Country::new(b"KZ")))
        );
        assert_eq!(
            country_of("+7 727 123 45 67"),
            Ok(Some(Country::new(b"KZ")))
        );
    }

    #[test]
    fn mk_3_number_formatting_is_stripped() {
        let (c, m) = resolve("+55 11 98765-4321", MK1_DATE, &DEFAULT).unwrap();
        assert_eq!((c, m), (Some(Country::new(b"BR")), market("Brazil")));
        for text in [
            "5511987654321",
            "+5511987654321",
            "55 (11) 98765.4321",
            " +55-11-98765-4321 ",
        ] {
            assert_eq!(country_of(text), Ok(Some(Country::new(b"BR"))), "{text}");
        }
        assert_eq!(
            country_of("+1 (416) 555-0123"),
            Ok(Some(Country::new(b"CA")))
        );
    }

    #[test]
    fn mk_3_non_numbers_are_rejected() {
        for text in [
            "US.13491208655302741918",
            "",
            "+",
            "123456",
            "1234567890123456",
            "++5511987654321",
            "55+11987654321",
            "5511987654321x",
            "５５11987654321",
        ] {
            assert_eq!(country_of(text), Err(NotAPhoneNumber), "{text:?}");
            assert_eq!(resolve(text, MK1_DATE, &DEFAULT), Err(NotAPhoneNumber));
        }
        assert!(country_of("1234567").is_ok());
        assert!(country_of("123456789012345").is_ok());
        assert_eq!(
            NotAPhoneNumber.to_string(),
            "recipient is not a phone number"
        );
    }

    #[test]
    fn mk_4_unlisted_nanp_countries_are_other_by_default() {
        let na = MarketOptions {
            nanp_unlisted: NanpUnlisted::NorthAmerica,
            ..DEFAULT
        };
        for &(area, iso) in OTHER_NANP_AREA_CODES {
            if matches!(&iso, b"DO" | b"JM" | b"PR") {
                continue;
            }
            let iso = std::str::from_utf8(&iso).unwrap();
            check(&format!("1{area}"), iso, "Other", MK1_DATE, &DEFAULT);
            check(&format!("1{area}"), iso, "North America", MK1_DATE, &na);
        }
        check("1242", "BS", "Other", MK1_DATE, &DEFAULT);
        check("1242", "BS", "North America", MK1_DATE, &na);
        // The option does not touch the listed NANP countries.
        check("1809", "DO", "Rest of Latin America", MK1_DATE, &na);
        check("1212", "US", "North America", MK1_DATE, &na);
    }

    #[test]
    fn mk_5_kazakhstan_before_and_after_2026_10_01() {
        let ru = MarketOptions {
            kazakhstan_before_2026_10: KazakhstanBefore2026::Russia,
            ..DEFAULT
        };
        check("7701", "KZ", "Other", d("2026-09-30"), &DEFAULT);
        check("7701", "KZ", "Russia", d("2026-09-30"), &ru);
        check("7701", "KZ", "Other", d("2022-02-01"), &DEFAULT);
        check("7701", "KZ", "Russia", d("2022-02-01"), &ru);
        check("7701", "KZ", "Kazakhstan", d("2026-10-01"), &DEFAULT);
        check("7701", "KZ", "Kazakhstan", d("2026-10-01"), &ru);
        check("7495", "RU", "Russia", d("2026-10-01"), &ru);
    }

    #[test]
    fn mk_5_options_deserialize_with_defaults() {
        let opts: MarketOptions = serde_json::from_str("{}").unwrap();
        assert_eq!(opts, DEFAULT);
        let opts: MarketOptions = serde_json::from_str(
            r#"{"nanp_unlisted": "north_america", "kazakhstan_before_2026_10": "russia"}"#,
        )
        .unwrap();
        assert_eq!(opts.nanp_unlisted, NanpUnlisted::NorthAmerica);
        assert_eq!(opts.kazakhstan_before_2026_10, KazakhstanBefore2026::Russia);
    }

    #[test]
    fn mk_6_us_and_canada_are_both_north_america() {
        for date in ["2022-02-01", "2025-07-01", "2026-10-01"] {
            check("1212", "US", "North America", d(date), &DEFAULT);
            check("1416", "CA", "North America", d(date), &DEFAULT);
        }
        assert_ne!(country_of("12125550123"), country_of("14165550123"));
    }

    #[test]
    fn rule_1_1_unknown_codes_are_other() {
        for text in [
            "+999 123 4567",
            "+800 1234 5678",
            "+882 1234 5678",
            "0044 20 7946 0958",
        ] {
            assert_eq!(
                resolve(text, MK1_DATE, &DEFAULT),
                Ok((None, Market::OTHER)),
                "{text}"
            );
        }
        assert_eq!(market_of(None, MK1_DATE, &DEFAULT), Market::OTHER);
        assert_eq!(
            market_of(Some(Country(*b"!!")), MK1_DATE, &DEFAULT),
            Market::OTHER
        );
    }

    #[test]
    fn rule_1_1_every_itu_code_resolves_to_its_country() {
        for &(code, iso) in ITU_CODES {
            let n = format!("{code}21234567");
            assert_eq!(country_of(&n), Ok(Some(Country(iso))), "{n}");
        }
    }
}
