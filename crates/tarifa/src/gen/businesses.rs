//! Who sends: the businesses (WABAs) of the log, with their portfolios, currencies, time zones,
//! home countries, authentication-international eligibility and business phone numbers.

use super::auth_international::{variant_of, AuthIntlVariant};
use super::heads;
use super::random::Rng;
use tarifa_core::market::Country;

/// Where a business is: its time zone and home country (`None`: a global business).
pub(super) struct Profile {
    pub timezone: &'static str,
    pub primary: Option<Country>,
}

const fn profile(timezone: &'static str, primary: &[u8; 2]) -> Profile {
    Profile {
        timezone,
        primary: Some(Country::new(primary)),
    }
}

/// Given to businesses round-robin.
static PROFILES: &[Profile] = &[
    profile("America/Sao_Paulo", b"BR"),
    profile("Asia/Kolkata", b"IN"),
    profile("Asia/Jakarta", b"ID"),
    profile("Europe/Berlin", b"DE"),
    profile("America/Mexico_City", b"MX"),
    Profile {
        timezone: "UTC",
        primary: None,
    },
    profile("Africa/Lagos", b"NG"),
    profile("America/New_York", b"US"),
    profile("Europe/London", b"GB"),
    profile("Asia/Singapore", b"SG"),
    profile("America/Bogota", b"CO"),
    profile("Asia/Dubai", b"AE"),
];

pub(super) struct Business {
    pub id: String,
    pub portfolio: Option<String>,
    pub currency: String,
    pub profile: &'static Profile,
    pub auth_intl: Option<&'static AuthIntlVariant>,
    /// Uses Meta Business Agent for some replies from 2026-08-01 (D-13, D-14).
    pub agent: bool,
}

/// A business phone number, with the fixed heads of the lines that name it.
pub(super) struct Phone {
    /// Index of its business.
    pub business: u32,
    /// `","business":"waba-1","phone":"pn-1-1","user":"`
    pub norm: Vec<u8>,
    /// `{"object":…,"entry":[{"id":"waba-1","changes":[{"value":{…,"metadata":{…}},`
    pub hook: Vec<u8>,
}

/// The businesses and all their phones.
pub(super) struct Businesses {
    pub list: Vec<Business>,
    pub phones: Vec<Phone>,
    /// Per business: its first phone in `phones` and how many it has.
    pub phone_ranges: Vec<(u32, u32)>,
}

/// Business `n` (from 1) and its phones; portfolios are shared by neighbours as
/// [`Portfolios`] decides.
pub(super) fn businesses(count: u32, currencies: &[String], rng: &mut Rng) -> Businesses {
    let mut out = Businesses {
        list: Vec::with_capacity(count as usize),
        phones: Vec::new(),
        phone_ranges: Vec::new(),
    };
    let mut portfolios = Portfolios::default();
    for n in 1..=count {
        let id = format!("waba-{n}");
        let phone_count = rng.pick(&[(0.4, 1), (0.75, 2), (1.0, 3)]);
        out.phone_ranges
            .push((out.phones.len() as u32, phone_count));
        out.phones
            .extend((1..=phone_count).map(|k| phone(n, k, &id)));
        let index = n as usize - 1;
        out.list.push(Business {
            portfolio: portfolios.next(n),
            currency: currencies[index % currencies.len()].clone(),
            profile: &PROFILES[index % PROFILES.len()],
            auth_intl: variant_of(n),
            agent: n % 3 == 1,
            id,
        });
    }
    out
}

/// Phone `k` (from 1) of business `n`.
fn phone(n: u32, k: u32, waba: &str) -> Phone {
    let phone_id = format!("pn-{n}-{k}");
    let display = format!("1555{:07}", u64::from(n) * 10 + u64::from(k));
    Phone {
        business: n - 1,
        norm: heads::normalized(waba, &phone_id),
        hook: heads::webhook(waba, &phone_id, &display),
    }
}

/// Business portfolios: every fifth business has none, some share the previous one's.
#[derive(Default)]
struct Portfolios {
    count: u32,
    last: Option<String>,
}

impl Portfolios {
    fn next(&mut self, n: u32) -> Option<String> {
        let portfolio = if n.is_multiple_of(5) {
            None
        } else if n % 3 == 2 && self.last.is_some() {
            self.last.clone()
        } else {
            self.count += 1;
            Some(format!("bp-{}", self.count))
        };
        self.last.clone_from(&portfolio);
        portfolio
    }
}
