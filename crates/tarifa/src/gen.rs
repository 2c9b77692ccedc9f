//! `tarifa gen`: realistic synthetic WhatsApp Business Platform traffic, deterministic from a seed.
//!
//! The output is tarifa's input contract, JSON Lines: normalized `inbound` / `outbound` / `status`
//! events, mixed (`--webhook-fraction`) with raw Cloud API webhook bodies for statuses and inbound
//! messages (spec §9.2). `--config-out` writes the matching business config TOML.
//!
//! How it stays fast and streaming (memory does not grow with `--events`):
//! * per-user state arrays (number, business phone, device, name) are built once;
//! * *sessions* (a user writing in, or a business sending a template and maybe getting an answer)
//!   are generated one at a time. A session's start time follows the share of `--events` produced
//!   so far, warped by a day-of-week / hour-of-day intensity curve, so the log always spans
//!   `--from ..= --to` whatever the event count;
//! * a session's events go into a time-ordered [`Queue`] (a small heap plus 10-minute buckets)
//!   and are written once no later session can precede them: the output is in time order and
//!   only the events in flight are held (event rate × session length: ~46 MB peak RSS for
//!   100 M events and 1 M users);
//! * lines are rendered by hand into byte buffers (no serde on the hot path); our own PRNG
//!   (xoshiro256**, seeded by SplitMix64) makes the output byte-identical for the same arguments.
//!
//! Realism follows the spec: customer service windows (1-6: free-form only within 24 h of the
//! user's last message), Click-to-WhatsApp entry points (D-5: free entry point window of 72 h from
//! the first reply when the user came from Android/iOS), markets and number formats (§8 MK-1),
//! status sequences and webhook pricing objects by era (§9.1: NBP before 2022-02-01, CBP until
//! 2025-06-30, PMP after; pricing on `sent` and on one of `delivered`/`read`), Meta Business Agent
//! replies with token counts from 2026-08-01 (D-14). The webhook pricing is decoration: tarifa
//! rates independently.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::collections::BinaryHeap;
use std::fmt::Write as _;
use std::io::Write;
use std::path::{Component, Path, PathBuf};
use std::time::Instant as WallClock;

/// Arguments of `tarifa gen`.
#[derive(Args, Debug, Clone)]
pub struct GenArgs {
    /// Number of lines (events) to write; the log stops exactly there, possibly mid-session.
    #[arg(long, default_value_t = 10_000)]
    pub events: u64,
    /// Number of distinct users (WhatsApp numbers).
    #[arg(long, default_value_t = 1_000)]
    pub users: u32,
    /// Number of businesses (WABAs), with Zipf-like sizes.
    #[arg(long, default_value_t = 3)]
    pub businesses: u32,
    /// Seed: the same arguments give byte-identical output.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// First day of traffic (YYYY-MM-DD, UTC).
    #[arg(long, default_value = "2026-07-01")]
    pub from: String,
    /// Last day of traffic, inclusive (YYYY-MM-DD, UTC).
    #[arg(long, default_value = "2026-09-30")]
    pub to: String,
    /// Share (0–1) of statuses and inbound messages written as raw Cloud API webhook bodies.
    #[arg(long, default_value_t = 0.0)]
    pub webhook_fraction: f64,
    /// Shuffle lines within a sliding window of this many events (late / out-of-order webhooks).
    #[arg(long, default_value_t = 0)]
    pub shuffle_window: usize,
    /// Share (0–1) of events written twice (webhook retries), a few seconds to minutes later.
    #[arg(long, default_value_t = 0.0)]
    pub duplicates: f64,
    /// Output file, `-` for stdout.
    #[arg(long, default_value = "-")]
    pub output: PathBuf,
    /// Also write the matching business config (TOML) here.
    #[arg(long)]
    pub config_out: Option<PathBuf>,
    /// Billing currencies, given to businesses round-robin (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', default_value = "USD")]
    pub currency: Vec<String>,
    /// Directory of Meta rate-card CSVs referenced from the written config.
    #[arg(long, default_value = "data/rates")]
    pub rates_dir: PathBuf,
}

impl Default for GenArgs {
    fn default() -> Self {
        GenArgs {
            events: 10_000,
            users: 1_000,
            businesses: 3,
            seed: 1,
            from: "2026-07-01".into(),
            to: "2026-09-30".into(),
            webhook_fraction: 0.0,
            shuffle_window: 0,
            duplicates: 0.0,
            output: PathBuf::from("-"),
            config_out: None,
            currency: vec!["USD".into()],
            rates_dir: PathBuf::from("data/rates"),
        }
    }
}

/// What a generation run produced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenStats {
    pub lines: u64,
    pub bytes: u64,
    pub sessions: u64,
}

/// `tarifa gen`: write the log (and the config), then a one-line summary on stderr.
pub fn run(args: &GenArgs) -> Result<()> {
    let clock = WallClock::now();
    let world = World::new(args)?;
    if let Some(path) = &args.config_out {
        let text = config_toml(args, &world, path)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let stats = if args.output.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut lock = stdout.lock();
        generate_world(args, &world, &mut lock)?
    } else {
        let mut file = std::fs::File::create(&args.output)
            .with_context(|| format!("creating {}", args.output.display()))?;
        generate_world(args, &world, &mut file)?
    };
    let secs = clock.elapsed().as_secs_f64();
    eprintln!(
        "tarifa gen: {} events, {} users, {} businesses, {} bytes, {:.2} s ({:.2} M events/s, {} sessions)",
        stats.lines,
        args.users,
        args.businesses,
        stats.bytes,
        secs,
        stats.lines as f64 / secs.max(1e-9) / 1e6,
        stats.sessions,
    );
    Ok(())
}

/// Generate the log described by `args` into `out` (no config, no summary).
#[cfg_attr(not(test), allow(dead_code))]
pub fn generate(args: &GenArgs, out: &mut dyn Write) -> Result<GenStats> {
    let world = World::new(args)?;
    generate_world(args, &world, out)
}

fn generate_world(args: &GenArgs, world: &World, out: &mut dyn Write) -> Result<GenStats> {
    let mut gen = Gen::new(world, args.seed);
    let mut sink = Sink::new(out, args.shuffle_window, args.seed);
    let mut render = Render::default();
    let mut line = Vec::with_capacity(2048);
    let target = args.events;
    let mut produced = 0u64;
    let mut next_start = gen.next_start(0, target);
    while produced < target {
        let generate = match gen.heap.peek() {
            None => true,
            Some(top) => gen.generated < target && top.time() > next_start,
        };
        if generate {
            gen.session(next_start);
            next_start = gen.next_start(next_start, target);
            continue;
        }
        let ev = gen.heap.pop().expect("peeked");
        line.clear();
        render.event(world, &ev, &mut line);
        sink.push(&line)?;
        produced += 1;
    }
    sink.finish()?;
    Ok(GenStats {
        lines: produced,
        bytes: sink.bytes,
        sessions: gen.sessions,
    })
}

// ---------------------------------------------------------------------------------------------
// Randomness

/// SplitMix64 finalizer: a bijection of `u64`, used for hashing and id scrambling.
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn unit(h: u64) -> f64 {
    (h >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

/// xoshiro256** seeded through SplitMix64.
#[derive(Clone)]
struct Rng {
    s: [u64; 4],
}

impl Rng {
    fn new(seed: u64) -> Rng {
        let mut state = seed;
        let mut s = [0u64; 4];
        for x in &mut s {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            *x = mix64(state);
        }
        Rng { s }
    }

    fn next_u64(&mut self) -> u64 {
        let result = self.s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = self.s[1] << 17;
        self.s[2] ^= self.s[0];
        self.s[3] ^= self.s[1];
        self.s[1] ^= self.s[2];
        self.s[0] ^= self.s[3];
        self.s[2] ^= t;
        self.s[3] = self.s[3].rotate_left(45);
        result
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        ((self.next_u64() as u128 * n as u128) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u32, hi: u32) -> u32 {
        lo + self.below(u64::from(hi - lo) + 1) as u32
    }

    fn f64(&mut self) -> f64 {
        unit(self.next_u64())
    }

    fn chance(&mut self, p: f64) -> bool {
        self.f64() < p
    }
}

// ---------------------------------------------------------------------------------------------
// Calendar

const DAY: u32 = 86_400;
const HOUR: u32 = 3_600;
const MINUTE: u32 = 60;

fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = i64::from((m + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// `YYYY-MM-DD` → days since 1970-01-01.
fn parse_date(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        b[r].iter().try_fold(0u32, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
        })
    };
    let (y, m, d) = (i64::from(num(0..4)?), num(5..7)?, num(8..10)?);
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let days = days_from_civil(y, m, d);
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

fn unix_of(y: i64, m: u32, d: u32) -> i64 {
    days_from_civil(y, m, d) * i64::from(DAY)
}

/// Maps progress `p ∈ [0, 1)` through the log to a time, with more traffic on weekdays, in the
/// (UTC) afternoon, and a slow growth over the range.
struct Warp {
    /// Cumulative day weights, `days + 1` entries.
    day_cum: Vec<f64>,
    hour_cum: [f64; 25],
}

/// Global traffic by UTC hour (Brazil, Europe, Africa daytime and India evening dominate).
const HOUR_WEIGHTS: [f64; 24] = [
    0.45, 0.35, 0.28, 0.25, 0.28, 0.38, 0.55, 0.72, 0.86, 0.97, 1.06, 1.14, 1.22, 1.30, 1.36, 1.38,
    1.34, 1.28, 1.20, 1.10, 0.98, 0.85, 0.70, 0.56,
];

impl Warp {
    fn new(first_day: i64, days: usize) -> Warp {
        let mut day_cum = Vec::with_capacity(days + 1);
        let mut acc = 0.0;
        day_cum.push(acc);
        for i in 0..days {
            // 1970-01-01 was a Thursday; 0 = Sunday.
            let dow = (first_day + i as i64 + 4).rem_euclid(7);
            let week = match dow {
                0 => 0.72,
                6 => 0.82,
                _ => 1.0,
            };
            let growth = 1.0 + 0.25 * (i as f64 / days as f64);
            acc += week * growth;
            day_cum.push(acc);
        }
        let mut hour_cum = [0.0; 25];
        for h in 0..24 {
            hour_cum[h + 1] = hour_cum[h] + HOUR_WEIGHTS[h];
        }
        Warp { day_cum, hour_cum }
    }

    /// Seconds from the start of the first day.
    fn at(&self, p: f64) -> u32 {
        let days = self.day_cum.len() - 1;
        let x = p.clamp(0.0, 1.0) * self.day_cum[days];
        let d = (self.day_cum.partition_point(|&c| c <= x).max(1) - 1).min(days - 1);
        let width = self.day_cum[d + 1] - self.day_cum[d];
        let f = ((x - self.day_cum[d]) / width).clamp(0.0, 1.0);
        let y = f * self.hour_cum[24];
        let h = (self.hour_cum.partition_point(|&c| c <= y).max(1) - 1).min(23);
        let fh = ((y - self.hour_cum[h]) / HOUR_WEIGHTS[h]).clamp(0.0, 0.999_999);
        d as u32 * DAY + h as u32 * HOUR + (fh * f64::from(HOUR)) as u32
    }
}

// ---------------------------------------------------------------------------------------------
// Markets and numbers (spec §8 MK-1)

/// A numbering plan to draw users from: calling code, mobile prefixes (national), national
/// significant number length, weight (‰ of global traffic).
struct Plan {
    iso: &'static str,
    weight: u32,
    cc: &'static str,
    prefixes: &'static [&'static str],
    nsn: u8,
}

const fn plan(
    iso: &'static str,
    weight: u32,
    cc: &'static str,
    prefixes: &'static [&'static str],
    nsn: u8,
) -> Plan {
    Plan {
        iso,
        weight,
        cc,
        prefixes,
        nsn,
    }
}

#[rustfmt::skip]
static PLANS: &[Plan] = &[
    // Large standalone markets.
    plan("BR", 210, "55", &["119", "219", "319", "419", "519", "619", "719", "819", "859", "929", "279", "479", "489", "629", "169", "119"], 11),
    plan("IN", 170, "91", &["98", "99", "97", "96", "95", "94", "93", "91", "90", "88", "87", "86", "85", "80", "79", "78", "77", "76", "75", "74", "73", "70", "63", "62"], 10),
    plan("ID", 85, "62", &["811", "812", "813", "821", "822", "823", "852", "853", "856", "857", "858", "877", "878", "881", "895", "896", "897", "898"], 11),
    plan("MX", 30, "52", &["155", "133", "181", "1222", "1664", "1998"], 11),
    plan("MX", 40, "52", &["55", "33", "81", "222", "664", "998", "477", "442"], 10),
    plan("US", 70, "1", &["212", "213", "305", "312", "347", "404", "415", "469", "512", "617", "646", "702", "713", "786", "818", "917", "929", "954", "416", "514", "604"], 10),
    plan("DO", 12, "1", &["809", "829", "849"], 10),
    plan("PR", 4, "1", &["787", "939"], 10),
    plan("JM", 3, "1", &["876", "658"], 10),
    plan("BS", 1, "1", &["242"], 10),
    plan("DE", 30, "49", &["151", "152", "157", "159", "160", "162", "170", "171", "172", "173", "174", "175", "176", "177", "178", "179"], 11),
    plan("GB", 30, "44", &["7"], 10),
    plan("NG", 40, "234", &["703", "706", "803", "806", "810", "813", "814", "816", "903", "906", "701", "802", "808", "708", "812", "902", "907", "901", "705", "805", "807", "815", "811", "905"], 10),
    // Other standalone countries.
    plan("AR", 14, "54", &["911", "9351", "9341", "9261"], 11),
    plan("CO", 14, "57", &["30", "31", "32", "35"], 10),
    plan("CL", 6, "56", &["9"], 9),
    plan("PE", 6, "51", &["9"], 9),
    plan("ES", 8, "34", &["6", "7"], 9),
    plan("IT", 10, "39", &["3"], 10),
    plan("FR", 7, "33", &["6", "7"], 9),
    plan("NL", 3, "31", &["6"], 9),
    plan("EG", 12, "20", &["10", "11", "12", "15"], 10),
    plan("TR", 8, "90", &["5"], 10),
    plan("PK", 10, "92", &["3"], 10),
    plan("SA", 8, "966", &["5"], 9),
    plan("AE", 6, "971", &["5"], 9),
    plan("ZA", 10, "27", &["6", "7", "8"], 9),
    plan("MY", 7, "60", &["1"], 10),
    plan("IL", 3, "972", &["5"], 9),
    plan("RU", 5, "7", &["9"], 10),
    plan("HK", 2, "852", &["5", "6", "9"], 8),
    plan("SG", 3, "65", &["8", "9"], 8),
    plan("PL", 3, "48", &["5", "6", "7", "8"], 9),
    plan("RO", 2, "40", &["7"], 9),
    plan("HU", 1, "36", &["20", "30", "70"], 9),
    plan("QA", 1, "974", &["3", "5", "6", "7"], 8),
    // Rest of Africa.
    plan("KE", 8, "254", &["7", "1"], 9),
    plan("GH", 6, "233", &["2", "5"], 9),
    plan("TZ", 4, "255", &["6", "7"], 9),
    plan("UG", 3, "256", &["7"], 9),
    plan("CI", 4, "225", &["07", "05", "01"], 10),
    plan("SN", 3, "221", &["7"], 9),
    plan("CM", 3, "237", &["6"], 9),
    plan("ET", 3, "251", &["9"], 9),
    plan("MA", 4, "212", &["6", "7"], 9),
    plan("DZ", 3, "213", &["5", "6", "7"], 9),
    plan("ZW", 2, "263", &["7"], 9),
    plan("ZM", 2, "260", &["9", "7"], 9),
    plan("AO", 2, "244", &["9"], 9),
    plan("MZ", 2, "258", &["8"], 9),
    // Rest of Asia Pacific.
    plan("PH", 12, "63", &["9"], 10),
    plan("VN", 6, "84", &["3", "9", "7", "8"], 9),
    plan("TH", 5, "66", &["8", "9", "6"], 9),
    plan("BD", 6, "880", &["1"], 10),
    plan("LK", 3, "94", &["7"], 9),
    plan("NP", 3, "977", &["98"], 10),
    plan("AU", 4, "61", &["4"], 9),
    plan("NZ", 1, "64", &["2"], 9),
    plan("JP", 2, "81", &["90", "80", "70"], 10),
    plan("CN", 2, "86", &["13", "15", "18"], 11),
    plan("TW", 1, "886", &["9"], 9),
    plan("KH", 1, "855", &["1", "9", "7"], 9),
    // Rest of Latin America.
    plan("EC", 5, "593", &["9"], 9),
    plan("GT", 4, "502", &["3", "4", "5"], 8),
    plan("SV", 2, "503", &["7"], 8),
    plan("HN", 2, "504", &["3", "9"], 8),
    plan("BO", 3, "591", &["6", "7"], 8),
    plan("PY", 3, "595", &["9"], 9),
    plan("UY", 2, "598", &["9"], 8),
    plan("VE", 4, "58", &["41"], 10),
    plan("PA", 1, "507", &["6"], 8),
    plan("CR", 2, "506", &["8", "6"], 8),
    // Rest of Middle East.
    plan("JO", 4, "962", &["7"], 9),
    plan("KW", 3, "965", &["5", "6", "9"], 8),
    plan("BH", 1, "973", &["3"], 8),
    plan("OM", 2, "968", &["9"], 8),
    plan("IQ", 4, "964", &["7"], 10),
    plan("LB", 1, "961", &["3", "7"], 8),
    // Rest of Central & Eastern Europe.
    plan("UA", 4, "380", &["50", "67", "93"], 9),
    plan("CZ", 2, "420", &["6", "7"], 9),
    plan("GR", 2, "30", &["69"], 10),
    plan("RS", 1, "381", &["6"], 9),
    plan("BG", 1, "359", &["8"], 9),
    // Rest of Western Europe.
    plan("PT", 4, "351", &["9"], 9),
    plan("CH", 2, "41", &["7"], 9),
    plan("AT", 1, "43", &["6"], 10),
    plan("BE", 2, "32", &["4"], 9),
    plan("SE", 1, "46", &["7"], 9),
    plan("IE", 1, "353", &["8"], 9),
    // Other (not listed by Meta), and the ambiguous +7 Kazakhstan.
    plan("KR", 3, "82", &["10"], 10),
    plan("MM", 2, "95", &["9"], 10),
    plan("MU", 1, "230", &["5"], 8),
    plan("MV", 1, "960", &["7", "9"], 7),
    plan("IS", 1, "354", &["6", "7", "8"], 7),
    plan("KZ", 2, "7", &["70", "77"], 10),
];

/// Pre-parsed `calling code + prefix` heads of one plan.
struct PlanHeads {
    heads: Vec<(u64, u8)>,
}

fn plan_heads() -> Vec<PlanHeads> {
    PLANS
        .iter()
        .map(|p| PlanHeads {
            heads: p
                .prefixes
                .iter()
                .map(|pre| {
                    let digits = format!("{}{}", p.cc, pre);
                    let head = digits.parse::<u64>().expect("digits");
                    (head, p.nsn - pre.len() as u8)
                })
                .collect(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Businesses

struct Profile {
    timezone: &'static str,
    primary: Option<&'static str>,
}

#[rustfmt::skip]
static PROFILES: &[Profile] = &[
    Profile { timezone: "America/Sao_Paulo", primary: Some("BR") },
    Profile { timezone: "Asia/Kolkata", primary: Some("IN") },
    Profile { timezone: "Asia/Jakarta", primary: Some("ID") },
    Profile { timezone: "Europe/Berlin", primary: Some("DE") },
    Profile { timezone: "America/Mexico_City", primary: Some("MX") },
    Profile { timezone: "UTC", primary: None },
    Profile { timezone: "Africa/Lagos", primary: Some("NG") },
    Profile { timezone: "America/New_York", primary: Some("US") },
    Profile { timezone: "Europe/London", primary: Some("GB") },
    Profile { timezone: "Asia/Singapore", primary: Some("SG") },
    Profile { timezone: "America/Bogota", primary: Some("CO") },
    Profile { timezone: "Asia/Dubai", primary: Some("AE") },
];

/// Auth-international eligibility variants (spec §7 AI-4 dates): start, per-country exceptions.
type AuthIntl = (&'static str, &'static [(&'static str, &'static str)]);
static AUTH_INTL: &[AuthIntl] = &[
    ("2024-06-01", &[("IN", "2024-07-01")]),
    ("2025-02-01", &[]),
    ("2025-03-15", &[("ID", "2025-04-01"), ("EG", "2025-04-15")]),
];

struct Business {
    id: String,
    portfolio: Option<String>,
    currency: String,
    profile: &'static Profile,
    auth_intl: Option<&'static AuthIntl>,
    /// Uses Meta Business Agent for some replies from 2026-08-01 (D-13, D-14).
    agent: bool,
}

struct Phone {
    business: u32,
    /// `","business":"waba-1","phone":"pn-1-1","user":"`
    norm: Vec<u8>,
    /// `{"object":…,"entry":[{"id":"waba-1","changes":[{"value":{…,"metadata":{…}},`
    hook: Vec<u8>,
}

const HOOK_TAIL: &[u8] = b"},\"field\":\"messages\"}]}]}\n";

// ---------------------------------------------------------------------------------------------
// Templates, texts

const CAT_FREE: u8 = 0;
const CAT_MKT: u8 = 1;
const CAT_UTIL: u8 = 2;
const CAT_AUTH: u8 = 3;

static TEMPLATES: &[(&str, u8)] = &[
    ("summer_sale", CAT_MKT),
    ("weekly_deals", CAT_MKT),
    ("abandoned_cart", CAT_MKT),
    ("new_arrivals", CAT_MKT),
    ("loyalty_points", CAT_MKT),
    ("win_back_offer", CAT_MKT),
    ("order_confirmation", CAT_UTIL),
    ("shipping_update", CAT_UTIL),
    ("delivery_eta", CAT_UTIL),
    ("payment_reminder", CAT_UTIL),
    ("appointment_reminder", CAT_UTIL),
    ("account_alert", CAT_UTIL),
    ("otp_login", CAT_AUTH),
    ("verify_phone", CAT_AUTH),
    ("password_reset_code", CAT_AUTH),
];

fn template_range(cat: u8) -> (usize, usize) {
    match cat {
        CAT_MKT => (0, 6),
        CAT_UTIL => (6, 12),
        _ => (12, 15),
    }
}

fn category_name(cat: u8) -> &'static str {
    match cat {
        CAT_MKT => "marketing",
        CAT_UTIL => "utility",
        _ => "authentication",
    }
}

static NAMES: &[&str] = &[
    "Ana",
    "João",
    "Mariana",
    "Lucas",
    "Priya",
    "Rahul",
    "Ananya",
    "Arjun",
    "Siti",
    "Budi",
    "Dewi",
    "María",
    "José",
    "Guadalupe",
    "Emma",
    "Lukas",
    "Chinedu",
    "Amina",
    "Olivia",
    "Noah",
    "Fatima",
    "Wei",
    "Thao",
    "Carlos",
    "Aisha",
    "Kwame",
    "Sofia",
    "Mehmet",
    "Nadia",
    "Juan",
];

static TEXTS: &[&str] = &[
    "hi",
    "Hello",
    "Olá, tudo bem?",
    "Is my order shipped?",
    "I want to know the price",
    "Namaste",
    "Halo kak, masih ada stok?",
    "Hola, ¿tienen envío a domicilio?",
    "Thanks!",
    "ok",
    "Can I change my delivery address?",
    "When do you open?",
    "👍",
    "Quero saber do meu pedido",
    "Guten Tag, ich habe eine Frage",
    "How do I reset my password?",
];

static HEADLINES: &[&str] = &[
    "Free shipping this week",
    "Get 20% off your first order",
    "Book a test drive",
    "Chat with us on WhatsApp",
    "New collection is here",
];

const ERR_131049: &str = "This message was not delivered to maintain healthy ecosystem engagement.";
const ERR_131026: &str = "Message undeliverable";

// ---------------------------------------------------------------------------------------------
// The world: immutable setup shared by generation and rendering

/// Pricing tag of an outbound message, as written in webhook `pricing` (decoration only).
/// bits 0–1 model, 2–3 type, 4–6 category, 7 billable.
const MODEL_NBP: u8 = 0;
const MODEL_CBP: u8 = 1;
const MODEL_PMP: u8 = 2;
const TYPE_REGULAR: u8 = 0;
const TYPE_FREE_CS: u8 = 1;
const TYPE_FREE_EP: u8 = 2;
const PC_MARKETING: u8 = 0;
const PC_UTILITY: u8 = 1;
const PC_AUTHENTICATION: u8 = 2;
const PC_SERVICE: u8 = 3;
const PC_REFERRAL: u8 = 4;
const PC_USER_INITIATED: u8 = 5;
const PC_BUSINESS_INITIATED: u8 = 6;
const PC_AUTH_INTL: u8 = 7;

static PC_NAMES: [&str; 8] = [
    "marketing",
    "utility",
    "authentication",
    "service",
    "referral_conversion",
    "user_initiated",
    "business_initiated",
    "authentication_international",
];

/// Countries with an authentication-international rate and the date it exists (spec §7 AI-4).
static AUTH_INTL_COUNTRIES: &[(&str, (i64, u32, u32))] = &[
    ("ID", (2024, 6, 1)),
    ("IN", (2024, 7, 1)),
    ("EG", (2025, 2, 1)),
    ("MY", (2025, 2, 1)),
    ("NG", (2025, 2, 1)),
    ("PK", (2025, 2, 1)),
    ("SA", (2025, 2, 1)),
    ("ZA", (2025, 2, 1)),
    ("AE", (2025, 2, 1)),
    ("BD", (2026, 10, 1)),
    ("IQ", (2026, 10, 1)),
    ("NP", (2026, 10, 1)),
    ("LK", (2026, 10, 1)),
    ("KZ", (2026, 10, 1)),
    ("KW", (2026, 10, 1)),
    ("MA", (2026, 10, 1)),
    ("OM", (2026, 10, 1)),
    ("UA", (2026, 10, 1)),
];

fn tag(model: u8, ty: u8, cat: u8, billable: bool) -> u8 {
    model | ty << 2 | cat << 4 | u8::from(billable) << 7
}

struct World {
    /// Unix seconds of `--from` 00:00 UTC; event times are seconds after it.
    base: i64,
    /// `--to` + 1 day, relative: every event is before it.
    end: u32,
    businesses: Vec<Business>,
    phones: Vec<Phone>,
    user_number: Vec<u64>,
    user_phone: Vec<u32>,
    user_device: Vec<u8>,
    user_name: Vec<u8>,
    /// Index into [`PLANS`]: the user's country.
    user_plan: Vec<u8>,
    /// Per business and plan: from when (relative seconds) an authentication template to that
    /// country is billed as authentication-international (AI-1); `i64::MAX` = never.
    auth_intl_from: Vec<Vec<i64>>,
    user_pick_heavy: f64,
    warp: Warp,
    /// Era thresholds, relative seconds (may be negative).
    cbp_start: i64,
    cat_start: i64,
    pmp_start: i64,
    agent_start: i64,
    oct_2026: i64,
    fep_72h: i64,
    free_service: i64,
    id_key: u64,
    hook_key: u64,
    dup_key: u64,
    conv_key: u64,
    webhook_fraction: f64,
    duplicates: f64,
}

const DEV_ANDROID: u8 = 0;
const DEV_IOS: u8 = 1;
const DEV_WEB: u8 = 2;
static DEVICE_NAMES: [&str; 3] = ["android", "ios", "web"];

impl World {
    fn new(args: &GenArgs) -> Result<World> {
        let from = parse_date(&args.from)
            .with_context(|| format!("--from {:?}: expected YYYY-MM-DD", args.from))?;
        let to = parse_date(&args.to)
            .with_context(|| format!("--to {:?}: expected YYYY-MM-DD", args.to))?;
        let (y0, ..) = civil_from_days(from);
        let (y1, ..) = civil_from_days(to);
        if !(1970..=2100).contains(&y0) || !(1970..=2100).contains(&y1) {
            bail!("--from/--to must be between 1970 and 2100");
        }
        if to < from {
            bail!("--to {} is before --from {}", args.to, args.from);
        }
        let days = (to - from + 1) as usize;
        if days > 20 * 366 {
            bail!("--from..--to spans more than 20 years");
        }
        if args.users == 0 {
            bail!("--users must be at least 1");
        }
        if args.businesses == 0 || args.businesses > 100_000 {
            bail!("--businesses must be between 1 and 100000");
        }
        for (name, v) in [
            ("--webhook-fraction", args.webhook_fraction),
            ("--duplicates", args.duplicates),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be between 0 and 1, got {v}");
            }
        }
        let currencies: Vec<String> = args
            .currency
            .iter()
            .map(|c| c.trim().to_ascii_uppercase())
            .filter(|c| !c.is_empty())
            .collect();
        if currencies.is_empty() {
            bail!("--currency: at least one currency is needed");
        }
        if let Some(bad) = currencies
            .iter()
            .find(|c| c.len() != 3 || !c.bytes().all(|b| b.is_ascii_alphabetic()))
        {
            bail!("--currency {bad:?}: expected an ISO 4217 code such as USD");
        }

        let base = from * i64::from(DAY);
        let seed = args.seed;
        let mut rng = Rng::new(seed ^ 0x05EE_D0FB_051E_55AA);

        // Businesses and their phone numbers.
        let mut businesses = Vec::with_capacity(args.businesses as usize);
        let mut phones = Vec::new();
        let mut biz_phones: Vec<(u32, u32)> = Vec::new(); // first phone, count
        let mut portfolio_count = 0u32;
        let mut last_portfolio: Option<String> = None;
        for b in 1..=args.businesses {
            let profile = &PROFILES[(b as usize - 1) % PROFILES.len()];
            let portfolio = if b % 5 == 0 {
                None
            } else if b % 3 == 2 && last_portfolio.is_some() {
                last_portfolio.clone()
            } else {
                portfolio_count += 1;
                Some(format!("bp-{portfolio_count}"))
            };
            last_portfolio.clone_from(&portfolio);
            let auth_intl = (b % 2 == 1).then(|| &AUTH_INTL[(b as usize / 2) % AUTH_INTL.len()]);
            let id = format!("waba-{b}");
            let r = rng.f64();
            let nphones = if r < 0.4 {
                1
            } else if r < 0.75 {
                2
            } else {
                3
            };
            biz_phones.push((phones.len() as u32, nphones));
            for k in 1..=nphones {
                let pid = format!("pn-{b}-{k}");
                let display = format!("1555{:07}", u64::from(b) * 10 + u64::from(k));
                let norm = format!("\",\"business\":\"{id}\",\"phone\":\"{pid}\",\"user\":\"");
                let hook = format!(
                    "{{\"object\":\"whatsapp_business_account\",\"entry\":[{{\"id\":\"{id}\",\"changes\":[{{\"value\":{{\"messaging_product\":\"whatsapp\",\"metadata\":{{\"display_phone_number\":\"{display}\",\"phone_number_id\":\"{pid}\"}},"
                );
                phones.push(Phone {
                    business: b - 1,
                    norm: norm.into_bytes(),
                    hook: hook.into_bytes(),
                });
            }
            businesses.push(Business {
                id,
                portfolio,
                currency: currencies[(b as usize - 1) % currencies.len()].clone(),
                profile,
                auth_intl,
                agent: b % 3 == 1,
            });
        }

        // Zipf-like business sizes.
        let mut biz_cum = Vec::with_capacity(businesses.len());
        let mut acc = 0.0;
        for b in 0..businesses.len() {
            acc += 1.0 / ((b + 1) as f64).powf(1.1);
            biz_cum.push(acc);
        }
        // Market weights.
        let heads = plan_heads();
        let mut plan_cum = Vec::with_capacity(PLANS.len());
        let mut total = 0u64;
        for p in PLANS {
            total += u64::from(p.weight);
            plan_cum.push(total);
        }
        let home_plans: Vec<Vec<usize>> = businesses
            .iter()
            .map(|b| {
                b.profile.primary.map_or_else(Vec::new, |iso| {
                    (0..PLANS.len()).filter(|&i| PLANS[i].iso == iso).collect()
                })
            })
            .collect();

        let n = args.users as usize;
        let mut user_number = Vec::with_capacity(n);
        let mut user_phone = Vec::with_capacity(n);
        let mut user_device = Vec::with_capacity(n);
        let mut user_name = Vec::with_capacity(n);
        let mut user_plan = Vec::with_capacity(n);
        for _ in 0..n {
            let x = rng.f64() * acc;
            let b = biz_cum
                .partition_point(|&c| c <= x)
                .min(businesses.len() - 1);
            let home = &home_plans[b];
            let plan = if !home.is_empty() && rng.chance(0.65) {
                home[rng.below(home.len() as u64) as usize]
            } else {
                let x = rng.below(total);
                plan_cum.partition_point(|&c| c <= x)
            };
            let hs = &heads[plan].heads;
            let (head, rest) = hs[rng.below(hs.len() as u64) as usize];
            let mut number = head;
            for _ in 0..rest {
                number = number * 10 + rng.below(10);
            }
            user_number.push(number);
            let (first, count) = biz_phones[b];
            let k = if count == 1 || rng.chance(0.6) {
                0
            } else {
                1 + rng.below(u64::from(count - 1)) as u32
            };
            user_phone.push(first + k);
            let r = rng.f64();
            user_device.push(if r < 0.70 {
                DEV_ANDROID
            } else if r < 0.93 {
                DEV_IOS
            } else {
                DEV_WEB
            });
            user_name.push(rng.below(NAMES.len() as u64) as u8);
            user_plan.push(plan as u8);
        }

        let rel = |y, m, d| unix_of(y, m, d) - base;
        let auth_intl_from = businesses
            .iter()
            .map(|b| {
                PLANS
                    .iter()
                    .map(|p| {
                        let Some((start, exceptions)) = b.auth_intl else {
                            return i64::MAX;
                        };
                        let Some((_, (y, m, d))) =
                            AUTH_INTL_COUNTRIES.iter().find(|(c, _)| *c == p.iso)
                        else {
                            return i64::MAX;
                        };
                        if b.profile.primary == Some(p.iso) {
                            return i64::MAX; // AI-3: domestic rate at home.
                        }
                        let own = exceptions
                            .iter()
                            .find(|(c, _)| *c == p.iso)
                            .map_or(*start, |(_, date)| date);
                        let own = parse_date(own).expect("static date") * i64::from(DAY) - base;
                        own.max(rel(*y, *m, *d))
                    })
                    .collect()
            })
            .collect();
        let key = mix64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x7A41_F1A0);
        Ok(World {
            base,
            end: days as u32 * DAY,
            businesses,
            phones,
            user_number,
            user_phone,
            user_device,
            user_name,
            user_plan,
            auth_intl_from,
            user_pick_heavy: 0.3,
            warp: Warp::new(from, days),
            cbp_start: rel(2022, 2, 1),
            cat_start: rel(2023, 6, 1),
            pmp_start: rel(2025, 7, 1),
            agent_start: rel(2026, 8, 1),
            oct_2026: rel(2026, 10, 1),
            fep_72h: rel(2023, 3, 1),
            free_service: rel(2024, 11, 1),
            id_key: key,
            hook_key: mix64(key ^ 1),
            dup_key: mix64(key ^ 2),
            conv_key: mix64(key ^ 3),
            webhook_fraction: args.webhook_fraction,
            duplicates: args.duplicates,
        })
    }

    /// Webhook pricing of an outbound sent at `t` (§9.1 W-1 … W-3, D-2, D-15, D-16).
    fn price_tag(&self, t: u32, cat: u8, in_csw: bool, in_fep: bool, auth_intl: bool) -> u8 {
        let t = i64::from(t);
        let template_pc = match cat {
            CAT_MKT => PC_MARKETING,
            CAT_UTIL => PC_UTILITY,
            CAT_AUTH if auth_intl => PC_AUTH_INTL,
            CAT_AUTH => PC_AUTHENTICATION,
            _ => PC_SERVICE,
        };
        if t < self.cbp_start {
            return if cat == CAT_FREE {
                tag(MODEL_NBP, TYPE_REGULAR, PC_USER_INITIATED, false)
            } else {
                tag(MODEL_NBP, TYPE_REGULAR, PC_BUSINESS_INITIATED, true)
            };
        }
        if t < self.pmp_start {
            // Conversations: see `Gen::conversation`, which fills in category and billable.
            return tag(MODEL_CBP, TYPE_REGULAR, template_pc, true);
        }
        let charged_in_window = t >= self.oct_2026;
        if in_fep {
            tag(MODEL_PMP, TYPE_FREE_EP, template_pc, false)
        } else if cat == CAT_FREE || (cat == CAT_UTIL && in_csw) {
            if charged_in_window {
                tag(MODEL_PMP, TYPE_REGULAR, template_pc, true)
            } else {
                tag(MODEL_PMP, TYPE_FREE_CS, template_pc, false)
            }
        } else {
            tag(MODEL_PMP, TYPE_REGULAR, template_pc, true)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Events and generation

const K_IN: u8 = 0;
const K_OUT: u8 = 1;
const K_SENT: u8 = 2;
const K_DELIVERED: u8 = 3;
const K_READ: u8 = 4;
const K_FAILED: u8 = 5;

const F_HOOK: u8 = 1;
/// This status carries the `pricing` (and `conversation`) object in webhook form.
const F_PRICING: u8 = 2;
const F_REFERRAL: u8 = 4;
const F_POST: u8 = 8;
const F_DUP: u8 = 16;

const TIME_SHIFT: u32 = 34;
const SEQ_MASK: u64 = (1 << TIME_SHIFT) - 1;

#[derive(Clone, Copy)]
struct Ev {
    /// Emission order: time (bits 34..) then generation sequence.
    key: u64,
    /// Message counter (the id is derived from it); statuses carry their message's.
    msg: u64,
    user: u32,
    /// Event time, seconds after `World::base`.
    at: u32,
    /// Conversation (CBP) or entry-point window (PMP) start, for webhook decoration.
    conv: u32,
    kind: u8,
    /// Template index + 1; 0 = free-form.
    tmpl: u8,
    price: u8,
    flags: u8,
    /// Agent tokens (outbound), error variant (failed), text index (inbound), device (inbound).
    extra: u16,
}

impl Ev {
    fn time(&self) -> u32 {
        (self.key >> TIME_SHIFT) as u32
    }
}

impl PartialEq for Ev {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}
impl Eq for Ev {}
impl PartialOrd for Ev {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ev {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest event first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other.key.cmp(&self.key)
    }
}

/// Bucket width of [`Queue`]: events due later than the current bucket wait in plain vectors.
const BUCKET: u32 = 600;

/// A time-ordered queue: a small binary heap for events due before `boundary`, and one vector
/// per later 10-minute bucket. Pops in exactly the order of one big heap, but the heap stays
/// small (cache-resident) even when hundreds of thousands of events are in flight.
struct Queue {
    near: BinaryHeap<Ev>,
    far: std::collections::VecDeque<Vec<Ev>>,
    far_len: usize,
    /// Start of the first bucket of `far`; every event in `near` is due before it.
    boundary: u32,
}

impl Queue {
    fn new() -> Queue {
        Queue {
            near: BinaryHeap::with_capacity(1 << 12),
            far: std::collections::VecDeque::new(),
            far_len: 0,
            boundary: 0,
        }
    }

    fn push(&mut self, ev: Ev) {
        let t = ev.time();
        if self.near.is_empty() && self.far_len == 0 && t >= self.boundary {
            // Idle: jump over the gap instead of walking empty buckets.
            self.far.clear();
            self.boundary = (t / BUCKET + 1) * BUCKET;
        }
        if t < self.boundary {
            self.near.push(ev);
            return;
        }
        let i = ((t - self.boundary) / BUCKET) as usize;
        if self.far.len() <= i {
            self.far.resize_with(i + 1, Vec::new);
        }
        self.far[i].push(ev);
        self.far_len += 1;
    }

    /// The next event, moving buckets into the heap as time advances.
    fn peek(&mut self) -> Option<&Ev> {
        while self.near.is_empty() && self.far_len > 0 {
            // Buckets are fresh vectors: recycling them would let every one grow to the
            // largest bucket's capacity.
            let bucket = self.far.pop_front().expect("far_len > 0");
            self.boundary += BUCKET;
            self.far_len -= bucket.len();
            self.near.extend(bucket);
        }
        self.near.peek()
    }

    fn pop(&mut self) -> Option<Ev> {
        self.peek()?;
        self.near.pop()
    }
}

/// Per-session state: the customer service window and entry point window as seen by this
/// session (rule 1-6, D-5).
struct Sess {
    user: u32,
    device: u8,
    agent: bool,
    last_in: Option<u32>,
    fep: Option<(u32, u32)>,
    fep_pending: bool,
    /// Open conversations (eras B and C) as (start, category): marketing, utility,
    /// authentication, service, and era B's single user/business-initiated one.
    conv: [(u32, u8); 5],
}

const NO_CONV: (u32, u8) = (u32::MAX, 0);

struct Gen<'w> {
    w: &'w World,
    rng: Rng,
    heap: Queue,
    seq: u64,
    msg: u64,
    generated: u64,
    sessions: u64,
}

impl<'w> Gen<'w> {
    fn new(w: &'w World, seed: u64) -> Gen<'w> {
        Gen {
            w,
            rng: Rng::new(seed),
            heap: Queue::new(),
            seq: 0,
            msg: 0,
            generated: 0,
            sessions: 0,
        }
    }

    /// Start of the next session: progress through the log (events generated / target),
    /// jittered by about one session, warped to calendar time; never before `prev`.
    fn next_start(&mut self, prev: u32, target: u64) -> u32 {
        let avg = if self.sessions == 0 {
            8.0
        } else {
            self.generated as f64 / self.sessions as f64
        };
        let v = self.generated as f64 + (self.rng.f64() - 0.5) * avg;
        let p = v / target.max(1) as f64;
        self.w.warp.at(p).min(self.w.end - 1).max(prev)
    }

    fn push(&mut self, mut ev: Ev) {
        if ev.at >= self.w.end {
            return;
        }
        let salt = ev.msg.wrapping_mul(8) | u64::from(ev.kind);
        if ev.kind != K_OUT && unit(mix64(salt ^ self.w.hook_key)) < self.w.webhook_fraction {
            ev.flags |= F_HOOK;
        }
        ev.key = (u64::from(ev.at) << TIME_SHIFT) | (self.seq & SEQ_MASK);
        self.seq += 1;
        self.generated += 1;
        self.heap.push(ev);
        if self.w.duplicates > 0.0 {
            let h = mix64(salt ^ self.w.dup_key);
            if unit(h) < self.w.duplicates {
                // A retry: same bytes, delivered 1 s … 10 min later.
                let delay = 1 + (h & 0xffff) as u32 % 600;
                let mut dup = ev;
                dup.flags |= F_DUP;
                dup.key = (u64::from(ev.at + delay) << TIME_SHIFT) | (self.seq & SEQ_MASK);
                self.seq += 1;
                self.generated += 1;
                self.heap.push(dup);
            }
        }
    }

    fn pick_user(&mut self) -> u32 {
        let n = self.w.user_number.len() as u64;
        if self.rng.chance(self.w.user_pick_heavy) {
            // Heavy users: low indices (density ∝ 1/√i).
            let u = self.rng.f64();
            ((u * u) * n as f64) as u32
        } else {
            self.rng.below(n) as u32
        }
    }

    fn pick_template(&mut self, cat: u8) -> u8 {
        let (lo, hi) = template_range(cat);
        let n = (hi - lo) as u64;
        let i = self.rng.below(n).min(self.rng.below(n));
        (lo as u64 + i + 1) as u8
    }

    fn session(&mut self, start: u32) {
        self.sessions += 1;
        let user = self.pick_user();
        let phone = self.w.user_phone[user as usize];
        let business = self.w.phones[phone as usize].business;
        let mut s = Sess {
            user,
            device: self.w.user_device[user as usize],
            agent: self.w.businesses[business as usize].agent,
            last_in: None,
            fep: None,
            fep_pending: false,
            conv: [NO_CONV; 5],
        };
        if self.rng.chance(0.48) {
            // User-initiated; ~10 % of all sessions come from a Click-to-WhatsApp ad.
            let referral = self.rng.chance(0.21);
            self.inbound(&mut s, start, referral);
            self.dialogue(&mut s, start);
            return;
        }
        // Business-initiated: a template.
        let r = self.rng.f64();
        let cat = if r < 0.45 {
            CAT_MKT
        } else if r < 0.85 {
            CAT_UTIL
        } else {
            CAT_AUTH
        };
        let tmpl = self.pick_template(cat);
        self.outbound(&mut s, start, tmpl, 0);
        let mut t = start;
        let reply_p = match cat {
            CAT_AUTH => {
                if self.rng.chance(0.08) {
                    // OTP resend.
                    t += self.rng.range(30, 120);
                    self.outbound(&mut s, t, tmpl, 0);
                }
                0.03
            }
            CAT_UTIL => 0.25,
            _ => 0.15,
        };
        if self.rng.chance(reply_p) {
            t += self.user_reply_delay();
            self.inbound(&mut s, t, false);
            t = self.dialogue(&mut s, t);
        }
        if cat == CAT_UTIL && self.rng.chance(0.2) {
            // Order flow: a shipping / delivery update one to three days later.
            let later = start + self.rng.range(DAY, 3 * DAY);
            let tmpl = 8 + self.rng.below(2) as u8; // shipping_update or delivery_eta
            self.outbound(&mut s, later.max(t + HOUR), tmpl, 0);
        }
    }

    /// Business replies and user answers after an inbound at `t`; returns the last time.
    fn dialogue(&mut self, s: &mut Sess, mut t: u32) -> u32 {
        let mut turns = 1;
        while turns < 6 && self.rng.chance(0.45) {
            turns += 1;
        }
        for turn in 0..turns {
            let agent = s.agent && self.rng.chance(0.6);
            t += if agent {
                self.rng.range(2, 15)
            } else {
                self.business_reply_delay()
            };
            let in_csw = s.last_in.is_some_and(|li| t < li + DAY);
            if s.fep_pending {
                s.fep_pending = false;
                if in_csw {
                    // B-7: 24 h entry point conversations before 2023-03-01, then 72 h.
                    let len = if i64::from(t) < self.w.fep_72h {
                        DAY
                    } else {
                        3 * DAY
                    };
                    s.fep = Some((t, t + len));
                    // C-10: an entry point conversation closes the others.
                    s.conv = [NO_CONV; 5];
                }
            }
            if !in_csw {
                // Window closed: re-engage with a template and stop.
                let cat = if self.rng.chance(0.5) {
                    CAT_UTIL
                } else {
                    CAT_MKT
                };
                let tmpl = self.pick_template(cat);
                self.outbound(s, t, tmpl, 0);
                return t;
            }
            let r = self.rng.f64();
            if r < 0.85 {
                let k = if self.rng.chance(0.3) { 2 } else { 1 };
                for j in 0..k {
                    if j > 0 {
                        t += self.rng.range(3, 60);
                    }
                    let tokens = if agent && i64::from(t) >= self.w.agent_start {
                        self.rng.range(15_000, 30_000) as u16
                    } else {
                        0
                    };
                    self.outbound(s, t, 0, tokens);
                }
            } else {
                let cat = if r < 0.95 { CAT_UTIL } else { CAT_MKT };
                let tmpl = self.pick_template(cat);
                self.outbound(s, t, tmpl, 0);
            }
            if turn + 1 < turns {
                t += self.user_reply_delay();
                self.inbound(s, t, false);
            }
        }
        if let Some((fs, fe)) = s.fep {
            if self.rng.chance(0.35) {
                // Free marketing follow-up inside the 72 h entry point window, outside the CSW.
                let when = (fs + self.rng.range(24 * HOUR, 70 * HOUR)).max(t + MINUTE);
                if when < fe {
                    let tmpl = self.pick_template(CAT_MKT);
                    self.outbound(s, when, tmpl, 0);
                    t = when;
                }
            }
        }
        t
    }

    fn user_reply_delay(&mut self) -> u32 {
        let r = self.rng.f64();
        if r < 0.60 {
            self.rng.range(10, 10 * MINUTE)
        } else if r < 0.85 {
            self.rng.range(10 * MINUTE, 3 * HOUR)
        } else if r < 0.95 {
            self.rng.range(3 * HOUR, DAY - 1)
        } else {
            self.rng.range(DAY, 2 * DAY)
        }
    }

    fn business_reply_delay(&mut self) -> u32 {
        let r = self.rng.f64();
        if r < 0.55 {
            self.rng.range(5, 5 * MINUTE)
        } else if r < 0.80 {
            self.rng.range(5 * MINUTE, 2 * HOUR)
        } else if r < 0.96 {
            self.rng.range(2 * HOUR, 23 * HOUR)
        } else {
            self.rng.range(DAY, 3 * DAY)
        }
    }

    fn next_msg(&mut self) -> u64 {
        self.msg += 1;
        self.msg
    }

    fn blank(&self, s: &Sess, kind: u8, at: u32, msg: u64) -> Ev {
        Ev {
            key: 0,
            msg,
            user: s.user,
            at,
            conv: 0,
            kind,
            tmpl: 0,
            price: 0,
            flags: 0,
            extra: 0,
        }
    }

    /// The conversation an outbound of eras B/C belongs to, opening one if needed: its pricing
    /// tag and start (B-3, B-4, B-6, C-2 … C-5, C-8, C-10; judged at send time).
    fn conversation(
        &self,
        s: &mut Sess,
        t: u32,
        template_pc: u8,
        free_form: bool,
        in_csw: bool,
        delivered: bool,
    ) -> (u8, u32) {
        if let Some((fs, fe)) = s.fep {
            if t >= fs && t < fe {
                return (tag(MODEL_CBP, TYPE_REGULAR, PC_REFERRAL, false), fs);
            }
        }
        let open = |c: (u32, u8)| c.0 <= t && t - c.0 < DAY;
        let billable =
            |pc: u8, start: u32| !(pc == PC_SERVICE && i64::from(start) >= self.w.free_service);
        if i64::from(t) < self.w.cat_start {
            let c = s.conv[4];
            if open(c) {
                return (tag(MODEL_CBP, TYPE_REGULAR, c.1, true), c.0);
            }
            let pc = if in_csw {
                PC_USER_INITIATED
            } else {
                PC_BUSINESS_INITIATED
            };
            if delivered {
                s.conv[4] = (t, pc);
            }
            return (tag(MODEL_CBP, TYPE_REGULAR, pc, true), t);
        }
        let slot = match template_pc {
            _ if free_form => 3,
            PC_MARKETING => 0,
            PC_UTILITY => 1,
            _ => 2,
        };
        let current = if free_form {
            // C-3: any open conversation carries a free-form message.
            (0..4)
                .filter(|&i| open(s.conv[i]))
                .max_by_key(|&i| s.conv[i].0)
                .map(|i| s.conv[i])
        } else {
            Some(s.conv[slot]).filter(|&c| open(c))
        };
        let (start, pc) = current.unwrap_or_else(|| {
            let c = (t, if free_form { PC_SERVICE } else { template_pc });
            if delivered {
                s.conv[slot] = c;
            }
            c
        });
        (tag(MODEL_CBP, TYPE_REGULAR, pc, billable(pc, start)), start)
    }

    fn inbound(&mut self, s: &mut Sess, t: u32, referral: bool) {
        let msg = self.next_msg();
        let mut ev = self.blank(s, K_IN, t, msg);
        ev.extra = self.rng.below(TEXTS.len() as u64) as u16;
        if referral {
            ev.flags |= F_REFERRAL;
            if self.rng.chance(0.1) {
                ev.flags |= F_POST;
            }
            ev.extra |= u16::from(s.device) << 8;
            s.fep_pending = s.device != DEV_WEB;
        }
        s.last_in = Some(t);
        self.push(ev);
    }

    fn outbound(&mut self, s: &mut Sess, t: u32, tmpl: u8, tokens: u16) {
        let msg = self.next_msg();
        let cat = if tmpl == 0 {
            CAT_FREE
        } else {
            TEMPLATES[tmpl as usize - 1].1
        };
        let in_csw = s.last_in.is_some_and(|li| t < li + DAY);
        let in_fep = s.fep.is_some_and(|(a, b)| t >= a && t < b);
        let auth_intl = cat == CAT_AUTH && {
            let user = s.user as usize;
            let business = self.w.phones[self.w.user_phone[user] as usize].business as usize;
            i64::from(t) >= self.w.auth_intl_from[business][self.w.user_plan[user] as usize]
        };
        let price = self.w.price_tag(t, cat, in_csw, in_fep, auth_intl);
        // The delivery outcome is drawn first: only a delivered message opens a conversation
        // (B-2, C-2).
        let outcome = self.rng.f64();
        let delivered = outcome >= 0.07;
        let (price, conv) = match price & 3 {
            MODEL_CBP => {
                let free_form = cat == CAT_FREE;
                self.conversation(s, t, price >> 4 & 7, free_form, in_csw, delivered)
            }
            MODEL_PMP if in_fep => (price, s.fep.map_or(t, |(a, _)| a)),
            _ => (price, t),
        };
        let mut ev = self.blank(s, K_OUT, t, msg);
        ev.tmpl = tmpl;
        ev.price = price;
        ev.conv = conv;
        ev.extra = tokens;
        self.push(ev);

        // Statuses: sent, then delivered (~93 %) / failed (~5 %) / nothing (~2 %); read.
        let sent = t + self.rng.range(1, 3);
        let mut st = ev;
        st.extra = 0;
        st.kind = K_SENT;
        st.at = sent;
        st.flags = F_PRICING;
        self.push(st);
        if outcome < 0.05 {
            st.kind = K_FAILED;
            st.flags = 0;
            st.extra = u16::from(!(cat == CAT_MKT && self.rng.chance(0.7)));
            st.at = sent
                + if self.rng.chance(0.9) {
                    self.rng.range(0, 20)
                } else {
                    self.rng.range(MINUTE, HOUR)
                };
            self.push(st);
        } else if delivered {
            let r = self.rng.f64();
            let delivered = sent
                + if r < 0.80 {
                    self.rng.range(0, 4)
                } else if r < 0.95 {
                    self.rng.range(5, 30 * MINUTE)
                } else {
                    self.rng.range(30 * MINUTE, 12 * HOUR)
                };
            let has_delivered = self.rng.chance(0.97);
            let read = !has_delivered || self.rng.chance(0.6);
            if has_delivered {
                st.kind = K_DELIVERED;
                st.at = delivered;
                st.flags = F_PRICING;
                self.push(st);
            }
            if read {
                let r = self.rng.f64();
                st.kind = K_READ;
                st.at = delivered
                    + if r < 0.35 {
                        self.rng.range(2, MINUTE)
                    } else if r < 0.65 {
                        self.rng.range(MINUTE, HOUR)
                    } else if r < 0.90 {
                        self.rng.range(HOUR, 12 * HOUR)
                    } else {
                        self.rng.range(12 * HOUR, 2 * DAY)
                    };
                st.flags = if has_delivered { 0 } else { F_PRICING };
                self.push(st);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Rendering

static DIGIT_PAIRS: &[u8; 200] = b"0001020304050607080910111213141516171819\
2021222324252627282930313233343536373839\
4041424344454647484950515253545556575859\
6061626364656667686970717273747576777879\
8081828384858687888990919293949596979899";

fn put_u64(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    while v >= 100 {
        let d = (v % 100) as usize * 2;
        v /= 100;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    }
    if v >= 10 {
        let d = v as usize * 2;
        i -= 2;
        buf[i..i + 2].copy_from_slice(&DIGIT_PAIRS[d..d + 2]);
    } else {
        i -= 1;
        buf[i] = b'0' + v as u8;
    }
    out.extend_from_slice(&buf[i..]);
}

fn put_pair(out: &mut Vec<u8>, v: u32) {
    let d = v as usize * 2;
    out.extend_from_slice(&DIGIT_PAIRS[d..d + 2]);
}

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const HEX: &[u8; 16] = b"0123456789abcdef";

fn put_base32(out: &mut Vec<u8>, v: u64, chars: usize) {
    for i in (0..chars).rev() {
        out.push(BASE32[(v >> (5 * i) & 31) as usize]);
    }
}

fn put_hex(out: &mut Vec<u8>, v: u64) {
    for i in (0..16).rev() {
        out.push(HEX[(v >> (4 * i) & 15) as usize]);
    }
}

#[derive(Default)]
struct Render {
    day: i64,
    date: [u8; 11],
    has_day: bool,
}

impl Render {
    /// `2026-07-01T10:00:00Z`
    fn iso(&mut self, out: &mut Vec<u8>, unix: i64) {
        let day = unix.div_euclid(i64::from(DAY));
        if !self.has_day || day != self.day {
            let (y, m, d) = civil_from_days(day);
            let y = y as u32;
            self.date = *b"0000-00-00T";
            let dp = |v: u32| &DIGIT_PAIRS[v as usize * 2..v as usize * 2 + 2];
            self.date[0..2].copy_from_slice(dp(y / 100));
            self.date[2..4].copy_from_slice(dp(y % 100));
            self.date[5..7].copy_from_slice(dp(m));
            self.date[8..10].copy_from_slice(dp(d));
            self.day = day;
            self.has_day = true;
        }
        out.extend_from_slice(&self.date);
        let sod = unix.rem_euclid(i64::from(DAY)) as u32;
        put_pair(out, sod / HOUR);
        out.push(b':');
        put_pair(out, sod / MINUTE % 60);
        out.push(b':');
        put_pair(out, sod % 60);
        out.push(b'Z');
    }

    fn id(w: &World, out: &mut Vec<u8>, msg: u64) {
        out.extend_from_slice(b"wamid.HBgM");
        put_base32(out, mix64(msg ^ w.id_key), 13);
    }

    fn event(&mut self, w: &World, ev: &Ev, out: &mut Vec<u8>) {
        let unix = w.base + i64::from(ev.at);
        let user = ev.user as usize;
        let phone = &w.phones[w.user_phone[user] as usize];
        let number = w.user_number[user];
        let hook = ev.flags & F_HOOK != 0;
        match ev.kind {
            K_IN if hook => {
                out.extend_from_slice(&phone.hook);
                out.extend_from_slice(b"\"contacts\":[{\"profile\":{\"name\":\"");
                out.extend_from_slice(NAMES[w.user_name[user] as usize].as_bytes());
                out.extend_from_slice(b"\"},\"wa_id\":\"");
                put_u64(out, number);
                out.extend_from_slice(b"\"}],\"messages\":[{");
                if ev.flags & F_REFERRAL != 0 {
                    let h = mix64(ev.msg ^ w.conv_key);
                    out.extend_from_slice(b"\"referral\":{\"source_url\":\"https://fb.me/");
                    put_base32(out, h, 9);
                    out.extend_from_slice(b"\",\"source_id\":\"1202");
                    put_u64(out, 10_000_000_000 + h % 90_000_000_000);
                    out.extend_from_slice(b"\",\"source_type\":\"");
                    out.extend_from_slice(if ev.flags & F_POST != 0 {
                        b"post"
                    } else {
                        b"ad"
                    });
                    out.extend_from_slice(b"\",\"headline\":\"");
                    out.extend_from_slice(
                        HEADLINES[(h >> 40) as usize % HEADLINES.len()].as_bytes(),
                    );
                    out.extend_from_slice(
                        b"\",\"body\":\"Tap to chat with us on WhatsApp\",\"media_type\":\"image\",\"image_url\":\"https://scontent.xx.fbcdn.net/v/t45.1600-4/",
                    );
                    put_hex(out, h);
                    out.extend_from_slice(b".jpg\",\"ctwa_clid\":\"");
                    put_base32(out, mix64(h), 13);
                    put_base32(out, mix64(h ^ 1), 13);
                    out.extend_from_slice(b"\"},");
                }
                out.extend_from_slice(b"\"from\":\"");
                put_u64(out, number);
                out.extend_from_slice(b"\",\"id\":\"");
                Self::id(w, out, ev.msg);
                out.extend_from_slice(b"\",\"timestamp\":\"");
                put_u64(out, unix as u64);
                out.extend_from_slice(b"\",\"type\":\"text\",\"text\":{\"body\":\"");
                out.extend_from_slice(TEXTS[(ev.extra & 0xff) as usize].as_bytes());
                out.extend_from_slice(b"\"}}]");
                out.extend_from_slice(HOOK_TAIL);
            }
            K_IN | K_OUT => {
                out.extend_from_slice(if ev.kind == K_IN {
                    b"{\"type\":\"inbound\",\"id\":\""
                } else {
                    b"{\"type\":\"outbound\",\"id\":\""
                });
                Self::id(w, out, ev.msg);
                out.extend_from_slice(b"\",\"at\":\"");
                self.iso(out, unix);
                out.extend_from_slice(&phone.norm);
                put_u64(out, number);
                out.push(b'"');
                if ev.kind == K_IN {
                    if ev.flags & F_REFERRAL != 0 {
                        out.extend_from_slice(if ev.flags & F_POST != 0 {
                            b",\"referral\":{\"source_type\":\"post\"},\"platform\":\""
                        } else {
                            b",\"referral\":{\"source_type\":\"ad\"},\"platform\":\""
                        });
                        out.extend_from_slice(DEVICE_NAMES[(ev.extra >> 8) as usize].as_bytes());
                        out.push(b'"');
                    }
                } else if ev.tmpl != 0 {
                    let (name, cat) = TEMPLATES[ev.tmpl as usize - 1];
                    out.extend_from_slice(b",\"template\":{\"name\":\"");
                    out.extend_from_slice(name.as_bytes());
                    out.extend_from_slice(b"\",\"category\":\"");
                    out.extend_from_slice(category_name(cat).as_bytes());
                    out.extend_from_slice(b"\"}");
                } else if ev.extra != 0 {
                    out.extend_from_slice(b",\"agent\":{\"tokens\":");
                    put_u64(out, u64::from(ev.extra));
                    out.push(b'}');
                }
                out.extend_from_slice(b"}\n");
            }
            _ if hook => self.status_hook(w, ev, phone, number, unix, out),
            _ => {
                out.extend_from_slice(b"{\"type\":\"status\",\"id\":\"");
                Self::id(w, out, ev.msg);
                out.extend_from_slice(b"\",\"at\":\"");
                self.iso(out, unix);
                out.extend_from_slice(b"\",\"status\":\"");
                out.extend_from_slice(status_name(ev.kind).as_bytes());
                out.push(b'"');
                if ev.kind == K_FAILED {
                    // Normalized statuses carry Meta's error codes as `errors` (input.rs).
                    let (code, _) = error_of(ev);
                    out.extend_from_slice(b",\"errors\":[");
                    put_u64(out, code);
                    out.push(b']');
                }
                out.extend_from_slice(b"}\n");
            }
        }
    }

    fn status_hook(
        &mut self,
        w: &World,
        ev: &Ev,
        phone: &Phone,
        number: u64,
        unix: i64,
        out: &mut Vec<u8>,
    ) {
        out.extend_from_slice(&phone.hook);
        out.extend_from_slice(b"\"statuses\":[{\"id\":\"");
        Self::id(w, out, ev.msg);
        out.extend_from_slice(b"\",\"status\":\"");
        out.extend_from_slice(status_name(ev.kind).as_bytes());
        out.extend_from_slice(b"\",\"timestamp\":\"");
        put_u64(out, unix as u64);
        out.extend_from_slice(b"\",\"recipient_id\":\"");
        put_u64(out, number);
        out.push(b'"');
        if ev.kind == K_FAILED {
            let (code, title) = error_of(ev);
            out.extend_from_slice(b",\"errors\":[{\"code\":");
            put_u64(out, code);
            out.extend_from_slice(b",\"title\":\"");
            out.extend_from_slice(title.as_bytes());
            out.extend_from_slice(b"\",\"message\":\"");
            out.extend_from_slice(title.as_bytes());
            out.extend_from_slice(b"\",\"error_data\":{\"details\":\"");
            out.extend_from_slice(if code == 131_049 {
                b"In order to maintain a healthy ecosystem engagement, the message failed to be delivered." as &[u8]
            } else {
                b"Message Undeliverable." as &[u8]
            });
            out.extend_from_slice(b"\"},\"href\":\"/documentation/business-messaging/whatsapp/support/error-codes\"}]");
        } else if ev.flags & F_PRICING != 0 {
            let model = ev.price & 3;
            let ty = ev.price >> 2 & 3;
            let pc = (ev.price >> 4 & 7) as usize;
            let billable = ev.price & 0x80 != 0;
            if model == MODEL_CBP || (model == MODEL_PMP && ty == TYPE_FREE_EP) {
                let base = w.base + i64::from(ev.conv);
                out.extend_from_slice(b",\"conversation\":{\"id\":\"");
                let c = w.conv_key ^ u64::from(ev.user) << 32 ^ u64::from(ev.conv);
                put_hex(out, mix64(c));
                put_hex(out, mix64(c ^ pc as u64));
                out.push(b'"');
                if ev.kind == K_SENT {
                    let fep_72h = (model == MODEL_PMP || pc as u8 == PC_REFERRAL)
                        && i64::from(ev.conv) >= w.fep_72h;
                    let window = if fep_72h { 3 * DAY } else { DAY };
                    let exp = base + i64::from(window);
                    let exp = (exp + 59).div_euclid(60) * 60;
                    out.extend_from_slice(b",\"expiration_timestamp\":\"");
                    put_u64(out, exp as u64);
                    out.push(b'"');
                }
                out.extend_from_slice(b",\"origin\":{\"type\":\"");
                out.extend_from_slice(if model == MODEL_PMP {
                    b"referral_conversion" // the conversation of an entry point window
                } else {
                    PC_NAMES[pc].as_bytes()
                });
                out.extend_from_slice(b"\"}}");
            }
            out.extend_from_slice(if billable {
                b",\"pricing\":{\"billable\":true,\"pricing_model\":\"" as &[u8]
            } else {
                b",\"pricing\":{\"billable\":false,\"pricing_model\":\"" as &[u8]
            });
            out.extend_from_slice(match model {
                MODEL_NBP => b"NBP\"",
                MODEL_CBP => b"CBP\"",
                _ => b"PMP\"",
            });
            if model == MODEL_PMP {
                out.extend_from_slice(match ty {
                    TYPE_REGULAR => b",\"type\":\"regular\"" as &[u8],
                    TYPE_FREE_CS => b",\"type\":\"free_customer_service\"",
                    _ => b",\"type\":\"free_entry_point\"",
                });
            }
            out.extend_from_slice(b",\"category\":\"");
            out.extend_from_slice(PC_NAMES[pc].as_bytes());
            out.extend_from_slice(b"\"}");
        }
        out.extend_from_slice(b"}]");
        out.extend_from_slice(HOOK_TAIL);
    }
}

fn status_name(kind: u8) -> &'static str {
    match kind {
        K_SENT => "sent",
        K_DELIVERED => "delivered",
        K_READ => "read",
        _ => "failed",
    }
}

fn error_of(ev: &Ev) -> (u64, &'static str) {
    if ev.extra == 0 {
        (131_049, ERR_131049)
    } else {
        (131_026, ERR_131026)
    }
}

// ---------------------------------------------------------------------------------------------
// Output: buffered, optionally shuffled within a sliding window

struct Sink<'o> {
    out: &'o mut dyn Write,
    buf: Vec<u8>,
    window: Vec<Vec<u8>>,
    cap: usize,
    rng: Rng,
    bytes: u64,
}

const FLUSH_AT: usize = 1 << 18;

impl<'o> Sink<'o> {
    fn new(out: &'o mut dyn Write, cap: usize, seed: u64) -> Sink<'o> {
        Sink {
            out,
            buf: Vec::with_capacity(FLUSH_AT + 4096),
            window: Vec::new(),
            cap,
            rng: Rng::new(seed ^ 0x5AFF_1E00_0000_0001),
            bytes: 0,
        }
    }

    fn write(&mut self, line: &[u8]) -> Result<()> {
        self.buf.extend_from_slice(line);
        self.bytes += line.len() as u64;
        if self.buf.len() >= FLUSH_AT {
            self.out.write_all(&self.buf).context("writing output")?;
            self.buf.clear();
        }
        Ok(())
    }

    fn push(&mut self, line: &[u8]) -> Result<()> {
        if self.cap <= 1 {
            return self.write(line);
        }
        if self.window.len() < self.cap {
            self.window.push(line.to_vec());
            return Ok(());
        }
        let j = self.rng.below(self.cap as u64) as usize;
        let mut slot = std::mem::take(&mut self.window[j]);
        self.write(&slot)?;
        slot.clear();
        slot.extend_from_slice(line);
        self.window[j] = slot;
        Ok(())
    }

    fn finish(&mut self) -> Result<()> {
        while !self.window.is_empty() {
            let j = self.rng.below(self.window.len() as u64) as usize;
            let slot = self.window.swap_remove(j);
            self.write(&slot)?;
        }
        self.out.write_all(&self.buf).context("writing output")?;
        self.buf.clear();
        self.out.flush().context("writing output")?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Config TOML

fn toml_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04X}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `target` relative to the directory `base` (both absolute); `None` if they share nothing but
/// the root (`/tmp/c.toml` → `/work/data/rates`: an absolute path is clearer than `../../work/…`).
fn relative_path(target: &Path, base: &Path) -> Option<PathBuf> {
    let t: Vec<Component> = target.components().collect();
    let b: Vec<Component> = base.components().collect();
    let common = t.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let root = t
        .iter()
        .take_while(|c| !matches!(c, Component::Normal(_)))
        .count();
    if common <= root {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in common..b.len() {
        rel.push("..");
    }
    for c in &t[common..] {
        rel.push(c);
    }
    if rel.as_os_str().is_empty() {
        rel.push(".");
    }
    Some(rel)
}

fn absolute(path: &Path) -> PathBuf {
    path.canonicalize()
        .or_else(|_| std::path::absolute(path))
        .unwrap_or_else(|_| path.to_path_buf())
}

/// Rate-card CSVs of `dir` (sorted): `(file name, is a tier card)`; none if the dir is missing.
fn card_files(dir: &Path) -> Vec<(String, bool)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(String, bool)> = entries
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_file())
        .filter_map(|e| e.file_name().to_str().map(str::to_owned))
        .filter(|name| name.to_ascii_lowercase().ends_with(".csv") && !name.contains("excerpt"))
        .map(|name| {
            let tiers = name.contains("tiers");
            (name, tiers)
        })
        .collect();
    files.sort();
    files
}

fn config_toml(args: &GenArgs, world: &World, config_path: &Path) -> Result<String> {
    let mut s = String::new();
    let _ = writeln!(
        s,
        "# Businesses of a synthetic log: tarifa gen --seed {} --businesses {} --users {} --from {} --to {}",
        args.seed, args.businesses, args.users, args.from, args.to
    );
    for b in &world.businesses {
        s.push_str("\n[[business]]\n");
        let _ = writeln!(s, "id = {}", toml_str(&b.id));
        if let Some(p) = &b.portfolio {
            let _ = writeln!(s, "portfolio = {}", toml_str(p));
        }
        let _ = writeln!(s, "currency = {}", toml_str(&b.currency));
        let _ = writeln!(s, "timezone = {}", toml_str(b.profile.timezone));
        if let Some(c) = b.profile.primary {
            let _ = writeln!(s, "primary_country = {}", toml_str(c));
        }
        if let Some((start, exceptions)) = b.auth_intl {
            s.push_str("[business.auth_international]\n");
            let _ = writeln!(s, "start = {}", toml_str(start));
            let ex: Vec<String> = exceptions
                .iter()
                .filter(|(c, _)| Some(*c) != b.profile.primary)
                .map(|(c, d)| format!("{c} = {}", toml_str(d)))
                .collect();
            if !ex.is_empty() {
                let _ = writeln!(s, "exceptions = {{ {} }}", ex.join(", "));
            }
        }
    }
    let files = card_files(&args.rates_dir);
    if !files.is_empty() {
        let rates = absolute(&args.rates_dir);
        let parent = match config_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let config_dir = absolute(&parent);
        for tiers in [false, true] {
            for (name, _) in files.iter().filter(|(_, t)| *t == tiers) {
                let target = rates.join(name);
                let path = relative_path(&target, &config_dir).unwrap_or(target);
                let text = path.to_string_lossy().replace('\\', "/");
                s.push_str(if tiers {
                    "\n[[tier_card]]\n"
                } else {
                    "\n[[rate_card]]\n"
                });
                let _ = writeln!(s, "file = {}", toml_str(&text));
            }
        }
    }
    Ok(s)
}

// ---------------------------------------------------------------------------------------------

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::{HashMap, HashSet};

    fn args(events: u64) -> GenArgs {
        GenArgs {
            events,
            ..GenArgs::default()
        }
    }

    fn gen_bytes(a: &GenArgs) -> Vec<u8> {
        let mut out = Vec::new();
        let stats = generate(a, &mut out).unwrap();
        assert_eq!(stats.lines, a.events);
        assert_eq!(stats.bytes, out.len() as u64);
        out
    }

    fn lines(bytes: &[u8]) -> Vec<&str> {
        std::str::from_utf8(bytes).unwrap().lines().collect()
    }

    fn unix_of_date(s: &str) -> i64 {
        parse_date(s).unwrap() * 86_400
    }

    /// Parses an ISO `…Z` instant to Unix seconds.
    fn iso_unix(s: &str) -> i64 {
        assert_eq!(s.len(), 20, "{s}");
        assert!(s.ends_with('Z') && &s[10..11] == "T", "{s}");
        let day = parse_date(&s[..10]).unwrap_or_else(|| panic!("{s}"));
        let h: i64 = s[11..13].parse().unwrap();
        let m: i64 = s[14..16].parse().unwrap();
        let sec: i64 = s[17..19].parse().unwrap();
        assert!(h < 24 && m < 60 && sec < 60, "{s}");
        day * 86_400 + h * 3600 + m * 60 + sec
    }

    /// One parsed line, whatever its form.
    #[derive(Debug)]
    struct Line {
        kind: String, // inbound | outbound | sent | delivered | read | failed
        id: String,
        at: i64,
        hook: bool,
        user: String,
        business: Option<String>,
        phone: Option<String>,
        v: Value,
    }

    fn str_of<'a>(v: &'a Value, key: &str) -> &'a str {
        v.get(key)
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("missing string {key} in {v}"))
    }

    fn check_number(n: &str) {
        assert!(n.bytes().all(|b| b.is_ascii_digit()), "{n}");
        assert!((9..=15).contains(&n.len()), "{n}");
        assert_ne!(&n[..1], "0", "{n}");
    }

    fn parse_line(text: &str) -> Line {
        let v: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {text}"));
        assert!(!text.contains('\n'));
        if v.get("object").is_some() {
            return parse_hook(v);
        }
        let ty = str_of(&v, "type").to_string();
        let id = str_of(&v, "id").to_string();
        assert!(id.starts_with("wamid."), "{id}");
        let at = iso_unix(str_of(&v, "at"));
        let obj = v.as_object().unwrap();
        match ty.as_str() {
            "inbound" | "outbound" => {
                let business = str_of(&v, "business").to_string();
                let phone = str_of(&v, "phone").to_string();
                let user = str_of(&v, "user").to_string();
                check_number(&user);
                assert!(
                    phone.starts_with(&format!("pn-{}-", &business[5..])),
                    "{text}"
                );
                let allowed: &[&str] = if ty == "inbound" {
                    &[
                        "type", "id", "at", "business", "phone", "user", "referral", "platform",
                    ]
                } else {
                    &[
                        "type", "id", "at", "business", "phone", "user", "template", "agent",
                    ]
                };
                for k in obj.keys() {
                    assert!(allowed.contains(&k.as_str()), "unexpected {k}: {text}");
                }
                if let Some(r) = v.get("referral") {
                    assert!(matches!(str_of(r, "source_type"), "ad" | "post"));
                    assert!(matches!(str_of(&v, "platform"), "android" | "ios" | "web"));
                }
                if let Some(t) = v.get("template") {
                    assert!(!str_of(t, "name").is_empty());
                    assert!(matches!(
                        str_of(t, "category"),
                        "marketing" | "utility" | "authentication"
                    ));
                    assert!(v.get("agent").is_none());
                }
                if let Some(a) = v.get("agent") {
                    let tokens = a["tokens"].as_u64().unwrap();
                    assert!((15_000..=30_000).contains(&tokens));
                    assert!(at >= unix_of_date("2026-08-01"), "{text}");
                }
                Line {
                    kind: ty,
                    id,
                    at,
                    hook: false,
                    user,
                    business: Some(business),
                    phone: Some(phone),
                    v,
                }
            }
            "status" => {
                let status = str_of(&v, "status").to_string();
                assert!(matches!(
                    status.as_str(),
                    "sent" | "delivered" | "read" | "failed"
                ));
                for k in obj.keys() {
                    assert!(
                        ["type", "id", "at", "status", "errors"].contains(&k.as_str()),
                        "{text}"
                    );
                }
                if status == "failed" {
                    let codes = v["errors"].as_array().unwrap();
                    assert_eq!(codes.len(), 1, "{text}");
                    let code = codes[0].as_u64().unwrap();
                    assert!(code == 131_049 || code == 131_026);
                    // The parser reads the code back (it ignored the old `error` object).
                    let mut parsed = Vec::new();
                    tarifa_core::input::parse_line(text.as_bytes(), &mut |e| {
                        parsed.push(e.into_owned())
                    })
                    .unwrap();
                    match &parsed[..] {
                        [tarifa_core::input::Event::Status(s)] => {
                            assert_eq!(s.error_codes, [code as u32], "{text}")
                        }
                        other => panic!("{text}: {other:?}"),
                    }
                } else {
                    assert!(v.get("errors").is_none());
                }
                Line {
                    kind: status,
                    id,
                    at,
                    hook: false,
                    user: String::new(),
                    business: None,
                    phone: None,
                    v,
                }
            }
            other => panic!("unknown type {other}: {text}"),
        }
    }

    fn parse_hook(v: Value) -> Line {
        assert_eq!(v["object"], "whatsapp_business_account");
        let entries = v["entry"].as_array().unwrap();
        assert_eq!(entries.len(), 1);
        let business = str_of(&entries[0], "id").to_string();
        assert!(business.starts_with("waba-"));
        let changes = entries[0]["changes"].as_array().unwrap();
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0]["field"], "messages");
        let value = &changes[0]["value"];
        assert_eq!(value["messaging_product"], "whatsapp");
        let phone = str_of(&value["metadata"], "phone_number_id").to_string();
        assert!(phone.starts_with(&format!("pn-{}-", &business[5..])));
        check_number(str_of(&value["metadata"], "display_phone_number"));
        if let Some(statuses) = value.get("statuses") {
            let st = &statuses.as_array().unwrap()[0];
            let status = str_of(st, "status").to_string();
            let at: i64 = str_of(st, "timestamp").parse().unwrap();
            let user = str_of(st, "recipient_id").to_string();
            check_number(&user);
            if status == "failed" {
                let code = st["errors"][0]["code"].as_u64().unwrap();
                assert!(code == 131_049 || code == 131_026);
                assert!(st.get("pricing").is_none());
            }
            if let Some(p) = st.get("pricing") {
                let model = str_of(p, "pricing_model");
                assert!(matches!(model, "NBP" | "CBP" | "PMP"));
                assert!(p["billable"].is_boolean());
                assert!(!str_of(p, "category").is_empty());
                if model == "PMP" {
                    assert!(matches!(
                        str_of(p, "type"),
                        "regular" | "free_customer_service" | "free_entry_point"
                    ));
                }
                if let Some(c) = st.get("conversation") {
                    assert_eq!(str_of(c, "id").len(), 32);
                    assert!(!str_of(&c["origin"], "type").is_empty());
                    assert_eq!(c.get("expiration_timestamp").is_some(), status == "sent");
                    if let Some(e) = c.get("expiration_timestamp") {
                        let e: i64 = e.as_str().unwrap().parse().unwrap();
                        assert_eq!(e % 60, 0);
                        assert!(e > at);
                    }
                }
            } else {
                assert!(st.get("conversation").is_none());
            }
            Line {
                kind: status,
                id: str_of(st, "id").to_string(),
                at,
                hook: true,
                user,
                business: Some(business),
                phone: Some(phone),
                v,
            }
        } else {
            let m = &value["messages"].as_array().unwrap()[0];
            let user = str_of(m, "from").to_string();
            check_number(&user);
            assert_eq!(value["contacts"][0]["wa_id"], user.as_str());
            assert!(!str_of(&value["contacts"][0]["profile"], "name").is_empty());
            assert_eq!(m["type"], "text");
            assert!(!str_of(&m["text"], "body").is_empty());
            if let Some(r) = m.get("referral") {
                for k in [
                    "source_url",
                    "source_id",
                    "source_type",
                    "headline",
                    "ctwa_clid",
                ] {
                    assert!(!str_of(r, k).is_empty());
                }
            }
            Line {
                kind: "inbound".into(),
                id: str_of(m, "id").to_string(),
                at: str_of(m, "timestamp").parse().unwrap(),
                hook: true,
                user,
                business: Some(business),
                phone: Some(phone),
                v,
            }
        }
    }

    fn parse_all(bytes: &[u8]) -> Vec<Line> {
        lines(bytes).into_iter().map(parse_line).collect()
    }

    #[test]
    fn dates() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2024-02-29"), Some(19_782));
        assert_eq!(parse_date("2023-02-29"), None);
        assert_eq!(parse_date("2023-13-01"), None);
        assert_eq!(parse_date("2023-1-01"), None);
        for d in [0, 10_000, 19_782, 20_635, 21_000, -400] {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        let mut r = Render::default();
        let mut out = Vec::new();
        r.iso(&mut out, 1_750_030_073);
        assert_eq!(out, b"2025-06-15T23:27:53Z");
        assert_eq!(iso_unix("2025-06-15T23:27:53Z"), 1_750_030_073);
    }

    #[test]
    fn numbers_render() {
        for v in [0u64, 7, 10, 99, 100, 12_345, 5_511_987_654_321, u64::MAX] {
            let mut out = Vec::new();
            put_u64(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), v.to_string());
        }
    }

    #[test]
    fn warp_is_monotone_and_in_range() {
        let w = Warp::new(parse_date("2026-07-01").unwrap(), 92);
        let mut prev = 0;
        for i in 0..=10_000 {
            let t = w.at(i as f64 / 10_000.0);
            assert!(t >= prev && t < 92 * DAY, "{i} {t}");
            prev = t;
        }
        assert!(w.at(0.999_999) > 91 * DAY);
    }

    #[test]
    fn deterministic() {
        let a = GenArgs {
            events: 3_000,
            webhook_fraction: 0.3,
            duplicates: 0.02,
            shuffle_window: 16,
            ..GenArgs::default()
        };
        let x = gen_bytes(&a);
        assert_eq!(x, gen_bytes(&a));
        let y = gen_bytes(&GenArgs {
            seed: 2,
            ..a.clone()
        });
        assert_ne!(x, y);
    }

    #[test]
    fn exactly_n_lines() {
        for n in [0u64, 1, 2, 7, 100, 1_234] {
            for (w, d) in [(0usize, 0.0), (50, 0.1), (5_000, 0.5)] {
                let a = GenArgs {
                    events: n,
                    shuffle_window: w,
                    duplicates: d,
                    ..GenArgs::default()
                };
                let out = gen_bytes(&a);
                assert_eq!(lines(&out).len() as u64, n, "n={n} w={w} d={d}");
                assert!(out.is_empty() || out.ends_with(b"\n"));
            }
        }
    }

    #[test]
    fn lines_are_valid_and_consistent() {
        let a = GenArgs {
            events: 20_000,
            users: 500,
            businesses: 7,
            ..GenArgs::default()
        };
        let out = gen_bytes(&a);
        let parsed = parse_all(&out);
        let (lo, hi) = (unix_of_date("2026-07-01"), unix_of_date("2026-10-01"));
        let mut outbound: HashMap<String, (i64, String)> = HashMap::new();
        let mut message_ids = HashSet::new();
        let mut user_home: HashMap<String, (String, String)> = HashMap::new();
        let mut prev_at = lo;
        for l in &parsed {
            assert!(l.at >= lo && l.at < hi, "{l:?}");
            assert!(l.at >= prev_at, "not in time order: {l:?}");
            prev_at = l.at;
            match l.kind.as_str() {
                "inbound" | "outbound" => {
                    assert!(message_ids.insert(l.id.clone()), "duplicate id {}", l.id);
                    let home = (l.business.clone().unwrap(), l.phone.clone().unwrap());
                    let known = user_home
                        .entry(l.user.clone())
                        .or_insert_with(|| home.clone());
                    assert_eq!(*known, home, "a user belongs to one business phone");
                    if l.kind == "outbound" {
                        outbound.insert(l.id.clone(), (l.at, l.user.clone()));
                    }
                }
                _ => {
                    let (sent_at, _) = outbound
                        .get(&l.id)
                        .unwrap_or_else(|| panic!("status before its message: {l:?}"));
                    assert!(l.at > *sent_at);
                }
            }
        }
        assert!(user_home.len() > 200, "{}", user_home.len());
        let businesses: HashSet<_> = user_home.values().map(|h| h.0.clone()).collect();
        assert!(businesses.len() >= 5, "{businesses:?}");
    }

    /// A generated failed status (normalized) is read by the parser with its error code, as
    /// `errors` (input.rs), the way `tarifa serve` and `tarifa rate` read it.
    #[test]
    fn failed_statuses_parse_with_their_error_code() {
        let a = GenArgs {
            events: 20_000,
            ..GenArgs::default()
        };
        let out = gen_bytes(&a);
        let mut failed = 0;
        for line in lines(&out) {
            let mut events = Vec::new();
            tarifa_core::input::parse_line(line.as_bytes(), &mut |e| events.push(e.into_owned()))
                .unwrap();
            for e in events {
                if let tarifa_core::input::Event::Status(s) = e {
                    if s.status == tarifa_core::input::DeliveryStatus::Failed
                        && s.business.is_none()
                    {
                        failed += 1;
                        assert!(
                            s.error_codes == [131_049] || s.error_codes == [131_026],
                            "{}: {:?}",
                            line,
                            s.error_codes
                        );
                    }
                }
            }
        }
        assert!(failed > 10, "{failed} failed statuses");
    }

    /// Per outbound, the statuses follow the promised shares.
    #[test]
    fn realistic_shares() {
        let a = GenArgs {
            events: 200_000,
            users: 20_000,
            businesses: 5,
            ..GenArgs::default()
        };
        let out = gen_bytes(&a);
        let parsed = parse_all(&out);
        let mut per_msg: HashMap<&str, Vec<&str>> = HashMap::new();
        let mut count: HashMap<&str, usize> = HashMap::new();
        let mut categories: HashMap<String, usize> = HashMap::new();
        let mut free_form = 0usize;
        let mut agent = 0usize;
        let mut referral = 0usize;
        let mut calling: HashSet<String> = HashSet::new();
        for l in &parsed {
            *count.entry(l.kind.as_str()).or_default() += 1;
            match l.kind.as_str() {
                "outbound" => {
                    per_msg.insert(&l.id, Vec::new());
                    if let Some(t) = l.v.get("template") {
                        *categories.entry(str_of(t, "category").into()).or_default() += 1;
                    } else {
                        free_form += 1;
                    }
                    agent += usize::from(l.v.get("agent").is_some());
                    calling.insert(l.user[..2].to_string());
                }
                "inbound" => referral += usize::from(l.v.get("referral").is_some()),
                _ => per_msg.get_mut(l.id.as_str()).unwrap().push(&l.kind),
            }
        }
        // Only messages whose statuses are complete (not cut at the end).
        let msgs: Vec<&Vec<&str>> = per_msg.values().collect();
        let n = msgs.len() as f64;
        let share =
            |f: &dyn Fn(&Vec<&str>) -> bool| msgs.iter().filter(|m| f(m)).count() as f64 / n;
        let sent = share(&|m| m.contains(&"sent"));
        let delivered = share(&|m| m.contains(&"delivered"));
        let failed = share(&|m| m.contains(&"failed"));
        let read = share(&|m| m.contains(&"read"));
        let read_only = share(&|m| m.contains(&"read") && !m.contains(&"delivered"));
        assert!(sent > 0.99, "sent {sent}");
        assert!((0.86..0.93).contains(&delivered), "delivered {delivered}");
        assert!((0.04..0.06).contains(&failed), "failed {failed}");
        assert!((0.52..0.62).contains(&read), "read {read}");
        assert!(
            (0.02..0.04).contains(&read_only),
            "read without delivered {read_only}"
        );
        let templates: usize = categories.values().sum();
        assert!(free_form > templates / 2, "{free_form} {categories:?}");
        assert!(categories["marketing"] > categories["authentication"]);
        assert!(categories["utility"] > categories["authentication"]);
        assert!(agent > 0 && agent < free_form / 2, "{agent} {free_form}");
        let inbound = count["inbound"] as f64;
        let r = referral as f64 / inbound;
        assert!((0.05..0.3).contains(&r), "referral share {r}");
        assert!(calling.len() > 20, "{calling:?}");
    }

    #[test]
    fn markets_are_mixed() {
        let a = GenArgs {
            users: 50_000,
            businesses: 6,
            ..GenArgs::default()
        };
        let w = World::new(&a).unwrap();
        let starts = |p: &str| {
            w.user_number
                .iter()
                .filter(|n| n.to_string().starts_with(p))
                .count() as f64
                / w.user_number.len() as f64
        };
        assert!(starts("55") > 0.15, "Brazil {}", starts("55"));
        assert!(starts("91") > 0.12, "India");
        assert!(starts("62") > 0.05, "Indonesia");
        assert!(
            starts("1809") + starts("1829") + starts("1849") > 0.002,
            "DR"
        );
        assert!(starts("234") > 0.01, "Nigeria");
        assert!(starts("254") > 0.001, "Kenya");
        assert!(starts("63") > 0.003, "Philippines");
        assert!(starts("82") > 0.0005, "Korea (Other)");
        for n in &w.user_number {
            let s = n.to_string();
            assert!(
                (10..=15).contains(&s.len()) || s.starts_with("960") || s.starts_with("354"),
                "{s}"
            );
        }
        // Brazil numbers: 55 + 2-digit area + 9 + 8 digits.
        let br = w
            .user_number
            .iter()
            .find(|n| n.to_string().starts_with("55"))
            .unwrap();
        assert_eq!(br.to_string().len(), 13);
        assert_eq!(&br.to_string()[4..5], "9");
    }

    #[test]
    fn duplicates_and_shuffle() {
        let base = GenArgs {
            events: 10_000,
            ..GenArgs::default()
        };
        let plain = gen_bytes(&base);
        let plain_lines = lines(&plain);
        let uniq: HashSet<&str> = plain_lines.iter().copied().collect();
        assert_eq!(uniq.len(), plain_lines.len(), "no duplicates by default");

        let dup = gen_bytes(&GenArgs {
            duplicates: 0.1,
            ..base.clone()
        });
        let dup_lines = lines(&dup);
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for l in &dup_lines {
            *seen.entry(l).or_default() += 1;
        }
        let twice = seen.values().filter(|&&c| c == 2).count() as f64;
        assert!(seen.values().all(|&c| c <= 2));
        let share = twice / seen.len() as f64;
        assert!((0.07..0.13).contains(&share), "duplicate share {share}");
        parse_all(&dup);

        // A shuffle permutes exactly the lines of the unshuffled log, each moved at most
        // `window` lines earlier.
        let window = 64;
        let shuffled = gen_bytes(&GenArgs {
            shuffle_window: window,
            ..base.clone()
        });
        let sh_lines = lines(&shuffled);
        assert_ne!(sh_lines, plain_lines);
        let mut a = sh_lines.clone();
        let mut b = plain_lines.clone();
        a.sort_unstable();
        b.sort_unstable();
        assert_eq!(a, b);
        let pos: HashMap<&str, usize> = plain_lines
            .iter()
            .enumerate()
            .map(|(i, l)| (*l, i))
            .collect();
        let mut moved = 0;
        for (i, l) in sh_lines.iter().enumerate() {
            let orig = pos[l];
            assert!(i + window >= orig, "line moved too early: {orig} → {i}");
            moved += usize::from(i != orig);
        }
        assert!(moved > sh_lines.len() / 2);
    }

    #[test]
    fn webhook_fraction() {
        let base = GenArgs {
            events: 8_000,
            ..GenArgs::default()
        };
        let plain = parse_all(&gen_bytes(&base));
        assert!(plain.iter().all(|l| !l.hook));
        let all = parse_all(&gen_bytes(&GenArgs {
            webhook_fraction: 1.0,
            ..base.clone()
        }));
        let half = parse_all(&gen_bytes(&GenArgs {
            webhook_fraction: 0.5,
            ..base.clone()
        }));
        // Same traffic, different encoding.
        assert_eq!(plain.len(), all.len());
        let mut users: HashMap<String, String> = HashMap::new();
        for (p, (a, h)) in plain.iter().zip(all.iter().zip(&half)) {
            assert_eq!((&p.kind, &p.id, p.at), (&a.kind, &a.id, a.at));
            assert_eq!((&p.kind, &p.id, p.at), (&h.kind, &h.id, h.at));
            assert_eq!(a.hook, p.kind != "outbound");
            if p.kind == "outbound" {
                users.insert(p.id.clone(), p.user.clone());
            } else if p.kind == "inbound" {
                assert_eq!(p.user, a.user);
                assert_eq!(p.business, a.business);
                assert_eq!(p.phone, a.phone);
                assert_eq!(
                    p.v.get("referral").is_some(),
                    a.v["entry"][0]["changes"][0]["value"]["messages"][0]
                        .get("referral")
                        .is_some()
                );
            } else if let Some(u) = users.get(&a.id) {
                assert_eq!(*u, a.user, "recipient_id is the outbound's user");
            }
        }
        let eligible = half.iter().filter(|l| l.kind != "outbound").count() as f64;
        let hooks = half.iter().filter(|l| l.hook).count() as f64;
        let share = hooks / eligible;
        assert!((0.45..0.55).contains(&share), "webhook share {share}");
        // PMP era pricing on `sent` and on exactly one of delivered/read.
        let mut pricing: HashMap<String, usize> = HashMap::new();
        for l in &all {
            if l.kind == "outbound" {
                continue;
            }
            let st = &l.v["entry"][0]["changes"][0]["value"]["statuses"][0];
            if let Some(p) = st.get("pricing") {
                assert_eq!(p["pricing_model"], "PMP");
                *pricing.entry(l.id.clone()).or_default() += 1;
                if l.kind == "sent" {
                    assert_eq!(*pricing.get(&l.id).unwrap(), 1);
                }
            }
        }
        assert!(pricing.values().all(|&c| c <= 2));
        assert!(pricing.values().filter(|&&c| c == 2).count() > pricing.len() / 2);
    }

    fn models(from: &str, to: &str) -> HashSet<(String, String)> {
        let a = GenArgs {
            events: 6_000,
            from: from.into(),
            to: to.into(),
            webhook_fraction: 1.0,
            ..GenArgs::default()
        };
        let parsed = parse_all(&gen_bytes(&a));
        let (lo, hi) = (unix_of_date(from), unix_of_date(to) + 86_400);
        let mut out = HashSet::new();
        for l in &parsed {
            assert!(l.at >= lo && l.at < hi, "{l:?}");
            if l.kind == "outbound" {
                continue;
            }
            let value = &l.v["entry"][0]["changes"][0]["value"];
            if let Some(p) = value.get("statuses").and_then(|s| s[0].get("pricing")) {
                out.insert((
                    str_of(p, "pricing_model").to_string(),
                    str_of(p, "category").to_string(),
                ));
            }
        }
        out
    }

    #[test]
    fn eras() {
        let nbp = models("2021-03-01", "2021-05-31");
        assert!(nbp.iter().all(|(m, _)| m == "NBP"), "{nbp:?}");
        let b = models("2022-06-01", "2022-12-31");
        assert!(b.iter().all(|(m, _)| m == "CBP"));
        assert!(b.contains(&("CBP".into(), "user_initiated".into())));
        assert!(b.contains(&("CBP".into(), "business_initiated".into())));
        assert!(
            b.contains(&("CBP".into(), "referral_conversion".into())),
            "{b:?}"
        );
        let c = models("2024-01-01", "2024-03-31");
        for cat in ["marketing", "utility", "authentication", "service"] {
            assert!(c.contains(&("CBP".into(), cat.into())), "{cat} {c:?}");
        }
        let d = models("2025-06-25", "2025-07-05");
        assert!(d.contains(&("CBP".into(), "marketing".into())));
        assert!(d.contains(&("PMP".into(), "marketing".into())));
        let e = models("2026-10-01", "2026-12-31");
        assert!(e.contains(&("PMP".into(), "service".into())));
    }

    #[test]
    fn auth_international_dates() {
        let w = World::new(&args(1)).unwrap();
        let plan = |iso: &str| PLANS.iter().position(|p| p.iso == iso).unwrap();
        let rel = |d: &str| unix_of_date(d) - w.base;
        // waba-1: BR, start 2024-06-01, IN from 2024-07-01.
        assert_eq!(w.auth_intl_from[0][plan("IN")], rel("2024-07-01"));
        assert_eq!(w.auth_intl_from[0][plan("ID")], rel("2024-06-01"));
        assert_eq!(w.auth_intl_from[0][plan("NG")], rel("2025-02-01"));
        assert_eq!(w.auth_intl_from[0][plan("BD")], rel("2026-10-01"));
        assert_eq!(w.auth_intl_from[0][plan("BR")], i64::MAX);
        assert_eq!(w.auth_intl_from[0][plan("DE")], i64::MAX);
        // waba-2: not eligible.
        assert!(w.auth_intl_from[1].iter().all(|&t| t == i64::MAX));
        // waba-3: ID, start 2025-02-01; never at home (AI-3).
        assert_eq!(w.auth_intl_from[2][plan("ID")], i64::MAX);
        assert_eq!(w.auth_intl_from[2][plan("IN")], rel("2025-02-01"));

        let a = GenArgs {
            events: 60_000,
            users: 5_000,
            from: "2025-03-01".into(),
            to: "2025-08-31".into(),
            webhook_fraction: 1.0,
            ..GenArgs::default()
        };
        let mut intl = 0;
        for l in parse_all(&gen_bytes(&a)) {
            let value = &l.v["entry"][0]["changes"][0]["value"];
            let Some(p) = value.get("statuses").and_then(|s| s[0].get("pricing")) else {
                continue;
            };
            if p["category"] == "authentication_international" {
                intl += 1;
                assert!(
                    ["91", "62", "20", "60", "234", "92", "966", "27", "971"]
                        .iter()
                        .any(|c| l.user.starts_with(c)),
                    "{}",
                    l.user
                );
            }
        }
        assert!(intl > 0);
    }

    #[test]
    fn long_and_short_ranges() {
        for (from, to, n) in [
            ("2021-01-01", "2027-12-31", 30_000u64),
            ("2025-07-01", "2025-07-01", 5_000),
        ] {
            let a = GenArgs {
                events: n,
                from: from.into(),
                to: to.into(),
                webhook_fraction: 0.2,
                ..GenArgs::default()
            };
            let parsed = parse_all(&gen_bytes(&a));
            let (lo, hi) = (unix_of_date(from), unix_of_date(to) + 86_400);
            assert!(parsed.iter().all(|l| l.at >= lo && l.at < hi));
            // The log spans the range.
            let first = parsed.iter().map(|l| l.at).min().unwrap();
            let last = parsed.iter().map(|l| l.at).max().unwrap();
            let span = (hi - lo) as f64;
            assert!(((first - lo) as f64) < span * 0.01, "{from}: starts late");
            assert!(((hi - last) as f64) < span * 0.05, "{to}: ends early");
            // No agent replies before 2026-08-01.
            assert!(parsed
                .iter()
                .all(|l| l.v.get("agent").is_none() || l.at >= unix_of_date("2026-08-01")));
        }
    }

    #[test]
    fn rejects_bad_arguments() {
        let bad = [
            GenArgs {
                from: "2026-02-30".into(),
                ..args(1)
            },
            GenArgs {
                from: "2026-09-01".into(),
                to: "2026-08-01".into(),
                ..args(1)
            },
            GenArgs {
                users: 0,
                ..args(1)
            },
            GenArgs {
                businesses: 0,
                ..args(1)
            },
            GenArgs {
                webhook_fraction: 1.5,
                ..args(1)
            },
            GenArgs {
                duplicates: -0.1,
                ..args(1)
            },
            GenArgs {
                currency: vec!["US".into()],
                ..args(1)
            },
        ];
        for a in &bad {
            assert!(generate(a, &mut Vec::new()).is_err(), "{a:?}");
        }
    }

    #[test]
    fn tiny_worlds() {
        // One user, one business: sessions overlap but everything stays valid.
        let a = GenArgs {
            events: 2_000,
            users: 1,
            businesses: 1,
            duplicates: 0.05,
            webhook_fraction: 0.5,
            ..GenArgs::default()
        };
        let parsed = parse_all(&gen_bytes(&a));
        let users: HashSet<&str> = parsed
            .iter()
            .filter(|l| !l.user.is_empty())
            .map(|l| l.user.as_str())
            .collect();
        assert_eq!(users.len(), 1);
    }

    #[test]
    fn relative_paths() {
        let rel = |t: &str, b: &str| relative_path(Path::new(t), Path::new(b)).unwrap();
        assert_eq!(
            rel("/w/data/rates/a.csv", "/w/configs"),
            Path::new("../data/rates/a.csv")
        );
        assert_eq!(
            rel("/w/data/rates/a.csv", "/w"),
            Path::new("data/rates/a.csv")
        );
        assert_eq!(rel("/w/a.csv", "/w/x/y"), Path::new("../../a.csv"));
        assert_eq!(rel("/w", "/w"), Path::new("."));
        assert_eq!(
            relative_path(Path::new("/work/a.csv"), Path::new("/tmp")),
            None
        );
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("tarifa-gen-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn config_toml_lists_businesses_and_cards() {
        let dir = temp_dir("config");
        let rates = dir.join("data").join("rates");
        std::fs::create_dir_all(&rates).unwrap();
        for f in [
            "usd-2023-06-01.csv",
            "eur-tiers-2026-07-01-illustrative.csv",
            "usd-2025-07-01.csv",
            "usd-excerpt-2024.csv",
            "README.md",
        ] {
            std::fs::write(rates.join(f), "x").unwrap();
        }
        let configs = dir.join("configs");
        std::fs::create_dir_all(&configs).unwrap();
        let a = GenArgs {
            businesses: 8,
            currency: vec!["USD".into(), "brl".into(), "EUR".into()],
            rates_dir: rates.clone(),
            ..GenArgs::default()
        };
        let world = World::new(&a).unwrap();
        let text = config_toml(&a, &world, &configs.join("gen.toml")).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        let biz = v["business"].as_array().unwrap();
        assert_eq!(biz.len(), 8);
        let ids: Vec<&str> = biz.iter().map(|b| b["id"].as_str().unwrap()).collect();
        assert_eq!(ids[0], "waba-1");
        assert_eq!(ids[7], "waba-8");
        let currencies: Vec<&str> = biz
            .iter()
            .map(|b| b["currency"].as_str().unwrap())
            .collect();
        assert_eq!(&currencies[..4], ["USD", "BRL", "EUR", "USD"]);
        let tzs: HashSet<&str> = biz
            .iter()
            .map(|b| b["timezone"].as_str().unwrap())
            .collect();
        assert!(tzs.contains("America/Sao_Paulo") && tzs.contains("UTC") && tzs.len() >= 6);
        let portfolios: Vec<Option<&str>> = biz
            .iter()
            .map(|b| b.get("portfolio").and_then(|p| p.as_str()))
            .collect();
        assert_eq!(
            portfolios[0], portfolios[1],
            "some businesses share a portfolio"
        );
        assert!(portfolios.iter().any(Option::is_none));
        for b in biz {
            let keys: Vec<&str> = b.as_table().unwrap().keys().map(String::as_str).collect();
            for k in keys {
                assert!([
                    "id",
                    "portfolio",
                    "currency",
                    "timezone",
                    "primary_country",
                    "auth_international"
                ]
                .contains(&k));
            }
            if let Some(ai) = b.get("auth_international") {
                assert!(parse_date(ai["start"].as_str().unwrap()).is_some());
            }
        }
        assert!(biz[0].get("auth_international").is_some());
        let cards: Vec<&str> = v["rate_card"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["file"].as_str().unwrap())
            .collect();
        assert_eq!(
            cards,
            [
                "../data/rates/usd-2023-06-01.csv",
                "../data/rates/usd-2025-07-01.csv"
            ]
        );
        let tiers: Vec<&str> = v["tier_card"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["file"].as_str().unwrap())
            .collect();
        assert_eq!(
            tiers,
            ["../data/rates/eur-tiers-2026-07-01-illustrative.csv"]
        );

        // A missing rates dir: no card lines.
        let a = GenArgs {
            rates_dir: dir.join("nope"),
            ..a
        };
        let text = config_toml(&a, &world, &configs.join("gen.toml")).unwrap();
        let v: toml::Value = toml::from_str(&text).unwrap();
        assert!(v.get("rate_card").is_none() && v.get("tier_card").is_none());
        let _ = std::fs::remove_dir_all(&dir);
    }

    mod props {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(24))]
            #[test]
            fn any_small_run_is_valid(
                events in 0u64..400,
                users in 1u32..60,
                businesses in 1u32..6,
                seed in any::<u64>(),
                window in 0usize..40,
                dups in 0.0f64..0.3,
                hooks in 0.0f64..1.0,
                start in 0i64..2_400,
                len in 0i64..120,
            ) {
                let from = civil_from_days(parse_date("2021-01-01").unwrap() + start);
                let to = civil_from_days(parse_date("2021-01-01").unwrap() + start + len);
                let fmt = |(y, m, d): (i64, u32, u32)| format!("{y:04}-{m:02}-{d:02}");
                let a = GenArgs {
                    events, users, businesses, seed,
                    shuffle_window: window, duplicates: dups, webhook_fraction: hooks,
                    from: fmt(from), to: fmt(to),
                    ..GenArgs::default()
                };
                let out = gen_bytes(&a);
                let parsed = parse_all(&out);
                prop_assert_eq!(parsed.len() as u64, events);
                let lo = unix_of_date(&a.from);
                let hi = unix_of_date(&a.to) + 86_400;
                for l in &parsed {
                    prop_assert!(l.at >= lo && l.at < hi);
                }
            }
        }
    }
}
