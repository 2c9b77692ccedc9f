//! Authentication-international (spec §7 AI-1 … AI-4): which businesses are eligible from when,
//! which countries have the rate from when, and so from when an authentication template of a
//! business to a country is billed as authentication-international.

use super::clock::LogClock;
use super::numbering::PLANS;
use tarifa_core::market::Country;
use tarifa_core::time::LocalDate;

/// A business's eligibility: its start date and per-country exceptions (AI-4).
pub(super) struct AuthIntlVariant {
    pub start: LocalDate,
    pub exceptions: &'static [(Country, LocalDate)],
}

/// The eligibility variants, given to every other business.
static VARIANTS: &[AuthIntlVariant] = &[
    AuthIntlVariant {
        start: LocalDate::ymd(2024, 6, 1),
        exceptions: &[(Country::new(b"IN"), LocalDate::ymd(2024, 7, 1))],
    },
    AuthIntlVariant {
        start: LocalDate::ymd(2025, 2, 1),
        exceptions: &[],
    },
    AuthIntlVariant {
        start: LocalDate::ymd(2025, 3, 15),
        exceptions: &[
            (Country::new(b"ID"), LocalDate::ymd(2025, 4, 1)),
            (Country::new(b"EG"), LocalDate::ymd(2025, 4, 15)),
        ],
    },
];

/// Countries with an authentication-international rate and the date it exists (spec §7 AI-4).
static RATED_COUNTRIES: &[(Country, LocalDate)] = &[
    (Country::new(b"ID"), LocalDate::ymd(2024, 6, 1)),
    (Country::new(b"IN"), LocalDate::ymd(2024, 7, 1)),
    (Country::new(b"EG"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"MY"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"NG"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"PK"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"SA"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"ZA"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"AE"), LocalDate::ymd(2025, 2, 1)),
    (Country::new(b"BD"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"IQ"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"NP"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"LK"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"KZ"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"KW"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"MA"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"OM"), LocalDate::ymd(2026, 10, 1)),
    (Country::new(b"UA"), LocalDate::ymd(2026, 10, 1)),
];

/// The eligibility of business `n` (from 1): odd businesses are eligible.
pub(super) fn variant_of(n: u32) -> Option<&'static AuthIntlVariant> {
    (n % 2 == 1).then(|| &VARIANTS[(n as usize / 2) % VARIANTS.len()])
}

/// Never billed as authentication-international.
pub(super) const NEVER: i64 = i64::MAX;

/// Per business and plan of [`PLANS`]: from when (seconds after the log's start) an
/// authentication template to that plan's country is billed as authentication-international
/// (AI-1), or [`NEVER`].
/// Each business is given as its variant and its home country.
pub(super) fn billed_from<'a>(
    businesses: impl Iterator<Item = (Option<&'a AuthIntlVariant>, Option<Country>)>,
    clock: &LogClock,
) -> Vec<Vec<i64>> {
    businesses
        .map(|(variant, home)| {
            PLANS
                .iter()
                .map(|p| first_day(variant, home, p.country).map_or(NEVER, |d| clock.since_base(d)))
                .collect()
        })
        .collect()
}

/// The first day a business of `variant` at `home` is billed authentication-international to
/// `country`.
fn first_day(
    variant: Option<&AuthIntlVariant>,
    home: Option<Country>,
    country: Country,
) -> Option<LocalDate> {
    let variant = variant?;
    let (_, rated_from) = RATED_COUNTRIES.iter().find(|(c, _)| *c == country)?;
    if home == Some(country) {
        return None; // AI-3: domestic rate at home.
    }
    let eligible_from = variant
        .exceptions
        .iter()
        .find(|(c, _)| *c == country)
        .map_or(variant.start, |(_, date)| *date);
    Some(eligible_from.max(*rated_from))
}
