//! Who writes: the users (WhatsApp numbers), drawn once. A user belongs to one business phone
//! (businesses have Zipf-like sizes), lives in a market (often the business's home country) and
//! has a device and a name. Kept as flat arrays so that a million users cost a few megabytes.

use super::businesses::Business;
use super::catalog::NAMES;
use super::numbering::{plan_heads, PlanHeads, PLANS};
use super::random::Rng;

/// The app a user writes from (Click-to-WhatsApp entry points need Android or iOS, D-5).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Device {
    Android,
    Ios,
    Web,
}

impl Device {
    pub const ALL: [Device; 3] = [Device::Android, Device::Ios, Device::Web];

    pub fn as_str(self) -> &'static str {
        match self {
            Device::Android => "android",
            Device::Ios => "ios",
            Device::Web => "web",
        }
    }
}

/// Every user, by index.
pub(super) struct Users {
    pub number: Vec<u64>,
    /// Index into the world's phones.
    pub phone: Vec<u32>,
    pub device: Vec<Device>,
    /// Index into [`NAMES`].
    pub name: Vec<u8>,
    /// Index into [`PLANS`]: the user's country.
    pub plan: Vec<u8>,
}

/// How a business's users are spread over markets: 65 % from its home country, if it has one.
const HOME_SHARE: f64 = 0.65;

impl Users {
    /// `count` users of `businesses`, whose phones are `phone_ranges` (first, count).
    pub fn draw(
        count: u32,
        businesses: &[Business],
        phone_ranges: &[(u32, u32)],
        rng: &mut Rng,
    ) -> Users {
        let n = count as usize;
        let mut users = Users {
            number: Vec::with_capacity(n),
            phone: Vec::with_capacity(n),
            device: Vec::with_capacity(n),
            name: Vec::with_capacity(n),
            plan: Vec::with_capacity(n),
        };
        let sizes = Cumulative::new((1..=businesses.len()).map(|b| 1.0 / (b as f64).powf(1.1)));
        let markets = Markets::new(businesses);
        for _ in 0..n {
            let business = sizes
                .find(rng.f64() * sizes.total)
                .min(businesses.len() - 1);
            let plan = markets.draw(business, rng);
            users.number.push(markets.heads[plan].draw(rng));
            users.phone.push(draw_phone(phone_ranges[business], rng));
            users.device.push(rng.pick(&[
                (0.70, Device::Android),
                (0.93, Device::Ios),
                (1.0, Device::Web),
            ]));
            users.name.push(rng.below(NAMES.len() as u64) as u8);
            users.plan.push(plan as u8);
        }
        users
    }
}

/// One of a business's phones: the first one for 60 % of its users.
fn draw_phone((first, count): (u32, u32), rng: &mut Rng) -> u32 {
    let k = if count == 1 || rng.chance(0.6) {
        0
    } else {
        1 + rng.below(u64::from(count - 1)) as u32
    };
    first + k
}

/// Cumulative weights, to draw an index in proportion to its weight.
struct Cumulative {
    sums: Vec<f64>,
    total: f64,
}

impl Cumulative {
    fn new(weights: impl Iterator<Item = f64>) -> Cumulative {
        let mut total = 0.0;
        let sums = weights
            .map(|w| {
                total += w;
                total
            })
            .collect();
        Cumulative { sums, total }
    }

    /// The index whose weight covers `x` (`0 <= x < total`).
    fn find(&self, x: f64) -> usize {
        self.sums.partition_point(|&c| c <= x)
    }
}

/// The markets users are drawn from: worldwide by weight, or a business's home plans.
struct Markets {
    heads: Vec<PlanHeads>,
    /// Running sums of the plans' weights (‰ of global traffic).
    weight_sums: Vec<u64>,
    total_weight: u64,
    /// Per business: the plans of its home country.
    home_plans: Vec<Vec<usize>>,
}

impl Markets {
    fn new(businesses: &[Business]) -> Markets {
        let mut total_weight = 0u64;
        let weight_sums = PLANS
            .iter()
            .map(|p| {
                total_weight += u64::from(p.weight);
                total_weight
            })
            .collect();
        let home_plans = businesses
            .iter()
            .map(|b| {
                b.profile.primary.map_or_else(Vec::new, |country| {
                    (0..PLANS.len())
                        .filter(|&i| PLANS[i].country == country)
                        .collect()
                })
            })
            .collect();
        Markets {
            heads: plan_heads(),
            weight_sums,
            total_weight,
            home_plans,
        }
    }

    /// The plan of a new user of `business`.
    fn draw(&self, business: usize, rng: &mut Rng) -> usize {
        let home = &self.home_plans[business];
        if !home.is_empty() && rng.chance(HOME_SHARE) {
            home[rng.below(home.len() as u64) as usize]
        } else {
            let x = rng.below(self.total_weight);
            self.weight_sums.partition_point(|&c| c <= x)
        }
    }
}
