//! The world: the immutable setup that generation and rendering share (clock, businesses and
//! their phones, users, authentication-international dates, traffic curve, hashing keys).

use super::args::GenArgs;
use super::auth_international::billed_from;
use super::businesses::{businesses, Business, Businesses, Phone};
use super::clock::LogClock;
use super::intensity::Warp;
use super::random::{mix64, Rng};
use super::users::Users;
use anyhow::Result;
use tarifa_core::config::Rules;
use tarifa_core::time::LocalDate;

pub(super) struct World {
    pub clock: LogClock,
    pub businesses: Vec<Business>,
    pub phones: Vec<Phone>,
    pub users: Users,
    /// Per business and plan: from when (seconds after the log's start) an authentication
    /// template to that country is billed as authentication-international (AI-1);
    /// [`super::auth_international::NEVER`] = never.
    pub auth_intl_from: Vec<Vec<i64>>,
    pub warp: Warp,
    /// B-7: entry point conversations last 72 h instead of 24 h from this date.
    pub entry_point_72h_from: LocalDate,
    pub keys: Keys,
    pub webhook_fraction: f64,
    pub duplicates: f64,
}

/// Hashing keys derived from the seed, one per use, so that the uses do not correlate.
pub(super) struct Keys {
    /// Message ids.
    pub id: u64,
    /// Which events are written as webhooks.
    pub hook: u64,
    /// Which events are written twice.
    pub dup: u64,
    /// Conversation ids and referral details.
    pub conv: u64,
}

impl Keys {
    fn new(seed: u64) -> Keys {
        let id = mix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x7A41_F1A0);
        Keys {
            id,
            hook: mix64(id ^ 1),
            dup: mix64(id ^ 2),
            conv: mix64(id ^ 3),
        }
    }
}

impl World {
    pub fn new(args: &GenArgs) -> Result<World> {
        let checked = args.check()?;
        let clock = LogClock::new(checked.first_day, checked.days);
        let mut rng = Rng::new(args.seed ^ 0x05EE_D0FB_051E_55AA);
        let Businesses {
            list: businesses,
            phones,
            phone_ranges,
        } = businesses(args.businesses, &checked.currencies, &mut rng);
        let users = Users::draw(args.users, &businesses, &phone_ranges, &mut rng);
        Ok(World {
            auth_intl_from: billed_from(
                businesses.iter().map(|b| (b.auth_intl, b.profile.primary)),
                &clock,
            ),
            warp: Warp::new(checked.first_day, checked.days as usize),
            clock,
            businesses,
            phones,
            users,
            entry_point_72h_from: Rules::default().entry_point_72h_from,
            keys: Keys::new(args.seed),
            webhook_fraction: args.webhook_fraction,
            duplicates: args.duplicates,
        })
    }

    /// The business phone of `user`.
    pub fn phone_of(&self, user: u32) -> &Phone {
        &self.phones[self.users.phone[user as usize] as usize]
    }
}
