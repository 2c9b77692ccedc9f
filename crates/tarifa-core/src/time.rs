//! Instants, local dates and WABA calendars.
//!
//! Every boundary in WhatsApp pricing (era switches, rate-card versions, monthly free tiers and
//! volume-tier resets) falls at midnight in the WABA's own time zone (rule 1-3). Instants are kept
//! as UTC seconds (`i64`); a [`Calendar`] turns an instant into the local date of one time zone in
//! O(1) from a precomputed table of local midnights, because the rating hot path asks this for
//! every message.

use jiff::civil::Date;
use jiff::tz::TimeZone;
use std::fmt;

/// Seconds since 1970-01-01T00:00:00Z.
pub type Instant = i64;

/// The years tarifa reads in its input (event times, months, periods, config dates): WhatsApp
/// Business pricing starts in 2018, and a year outside this range is a typo or a unit mistake
/// (milliseconds for seconds), never a message to rate.
pub const YEARS: std::ops::RangeInclusive<i32> = 2000..=2099;
/// 2000-01-01T00:00:00Z: the first instant of [`YEARS`].
pub const EARLIEST: Instant = LocalDate::ymd(2000, 1, 1).0 as i64 * DAY;
/// 2100-01-01T00:00:00Z: the first instant after [`YEARS`].
pub const END: Instant = LocalDate::ymd(2100, 1, 1).0 as i64 * DAY;

/// Whether `at` falls in [`YEARS`] (UTC).
pub fn in_range(at: Instant) -> bool {
    (EARLIEST..END).contains(&at)
}

pub const MINUTE: i64 = 60;
pub const HOUR: i64 = 3_600;
pub const DAY: i64 = 86_400;

/// A calendar date, as days since 1970-01-01 (proleptic Gregorian). Cheap to compare and copy.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LocalDate(pub i32);

impl LocalDate {
    /// Builds a date from its parts; `None` when the parts do not form a real date.
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<LocalDate> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(LocalDate(days_from_civil(year, month, day)))
    }

    /// `const` constructor for dates written in the source code (rule dates). Panics at compile
    /// time on an impossible date, so it is only for literals.
    pub const fn ymd(year: i32, month: u32, day: u32) -> LocalDate {
        LocalDate(days_from_civil(year, month, day))
    }

    pub fn ymd_parts(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// The month this date belongs to.
    pub fn month(self) -> Month {
        let (y, m, _) = self.ymd_parts();
        Month(y * 12 + (m as i32 - 1))
    }

    /// Parses `YYYY-MM-DD` (a year in [`YEARS`]).
    pub fn parse(text: &str) -> Option<LocalDate> {
        let b = text.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let y = parse_digits(&b[0..4])? as i32;
        let m = parse_digits(&b[5..7])?;
        let d = parse_digits(&b[8..10])?;
        LocalDate::from_ymd(y, m, d).filter(|_| YEARS.contains(&y))
    }

    pub fn to_jiff(self) -> Date {
        let (y, m, d) = self.ymd_parts();
        // Dates are built from checked parts; one beyond jiff's years (±9999) is clamped.
        Date::new(y.clamp(-9999, 9999) as i16, m as i8, d as i8).unwrap_or(if y < 0 {
            Date::MIN
        } else {
            Date::MAX
        })
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd_parts();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A calendar month, as `year * 12 + (month - 1)`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug)]
pub struct Month(pub i32);

impl fmt::Display for Month {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}",
            self.0.div_euclid(12),
            self.0.rem_euclid(12) + 1
        )
    }
}

fn parse_digits(b: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &c in b {
        if !c.is_ascii_digit() {
            return None;
        }
        v = v * 10 + (c - b'0') as u32;
    }
    Some(v)
}

const fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

const fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ => {
            if is_leap(y) {
                29
            } else {
                28
            }
        }
    }
}

/// Howard Hinnant's `days_from_civil`.
const fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u32;
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i32 - 719_468
}

/// Howard Hinnant's `civil_from_days`.
const fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u32;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe as i32 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Error for a time zone name jiff does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownTimeZone(pub String);

impl fmt::Display for UnknownTimeZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown time zone {:?} (use an IANA name such as America/Sao_Paulo)",
            self.0
        )
    }
}

/// Local dates of one time zone. The UTC offsets in force from 2015 to 2035 are kept as a short
/// list of transitions (two a year at most), so the date of an instant is a small binary search
/// that stays in the L1 cache, with a fallback to jiff outside those years.
#[derive(Clone)]
pub struct Calendar {
    tz: TimeZone,
    /// `(from, offset)`: from instant `from` on, local time is UTC + `offset` seconds.
    offsets: Vec<(Instant, i64)>,
}

impl fmt::Debug for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Calendar")
            .field("tz", &self.tz.iana_name())
            .finish()
    }
}

impl Calendar {
    /// 2015-01-01T00:00:00Z and 2036-01-01T00:00:00Z: the years covered by the table.
    const FIRST: Instant = LocalDate::ymd(2015, 1, 1).0 as i64 * DAY;
    const LAST: Instant = LocalDate::ymd(2036, 1, 1).0 as i64 * DAY;

    pub fn new(name: &str) -> Result<Calendar, UnknownTimeZone> {
        let tz = TimeZone::get(name).map_err(|_| UnknownTimeZone(name.to_string()))?;
        Ok(Calendar::from_tz(tz))
    }

    pub fn utc() -> Calendar {
        Calendar::from_tz(TimeZone::UTC)
    }

    fn from_tz(tz: TimeZone) -> Calendar {
        let first = jiff::Timestamp::from_second(Self::FIRST).expect("2015 is a valid timestamp");
        let mut offsets = vec![(Self::FIRST, tz.to_offset(first).seconds() as i64)];
        for t in tz.following(first) {
            let at = t.timestamp().as_second();
            if at >= Self::LAST {
                break;
            }
            offsets.push((at, t.offset().seconds() as i64));
        }
        Calendar { tz, offsets }
    }

    pub fn name(&self) -> &str {
        self.tz.iana_name().unwrap_or("UTC")
    }

    /// The local date of `at` in this time zone.
    #[inline]
    pub fn date(&self, at: Instant) -> LocalDate {
        if !(Self::FIRST..Self::LAST).contains(&at) {
            return self.date_slow(at);
        }
        let i = self.offsets.partition_point(|&(from, _)| from <= at) - 1;
        LocalDate((at + self.offsets[i].1).div_euclid(DAY) as i32)
    }

    fn date_slow(&self, at: Instant) -> LocalDate {
        let ts = jiff::Timestamp::from_second(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let d = ts.to_zoned(self.tz.clone()).date();
        LocalDate::ymd(d.year() as i32, d.month() as u32, d.day() as u32)
    }

    /// The UTC instant at which local `date` begins (midnight, or the first instant of the day
    /// when a DST gap swallows midnight).
    pub fn start_of(&self, date: LocalDate) -> Instant {
        start_of_day(&self.tz, date)
    }

    /// The local wall-clock time of `at`: its date and the minute of that day (0..1440).
    pub fn wall_clock(&self, at: Instant) -> (LocalDate, u32) {
        let ts = jiff::Timestamp::from_second(at).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let z = ts.to_zoned(self.tz.clone());
        let d = z.date();
        (
            LocalDate::ymd(d.year() as i32, d.month() as u32, d.day() as u32),
            z.hour() as u32 * 60 + z.minute() as u32,
        )
    }

    /// The instant of local `date` at `minute` of the day (a time a DST gap skips is moved
    /// forward, as clocks do).
    pub fn at_wall_clock(&self, date: LocalDate, minute: u32) -> Instant {
        let t = jiff::civil::Time::new((minute / 60 % 24) as i8, (minute % 60) as i8, 0, 0)
            .unwrap_or(jiff::civil::Time::midnight());
        date.to_jiff()
            .to_datetime(t)
            .to_zoned(self.tz.clone())
            .map(|z| z.timestamp().as_second())
            .unwrap_or_else(|_| self.start_of(date) + minute as i64 * MINUTE)
    }
}

fn start_of_day(tz: &TimeZone, date: LocalDate) -> Instant {
    date.to_jiff()
        .to_zoned(tz.clone())
        .map(|z| {
            z.start_of_day()
                .map(|s| s.timestamp().as_second())
                .unwrap_or(0)
        })
        .unwrap_or(0)
}

/// Parses an instant: an RFC 3339 string (`2023-06-01T10:00:00Z`, `…+03:00`, fractions are
/// truncated to the second) or a decimal string of Unix seconds, as Meta's webhooks write them.
pub fn parse_instant(text: &str) -> Option<Instant> {
    let b = text.as_bytes();
    if !b.is_empty() && b.len() <= 12 && b.iter().all(u8::is_ascii_digit) {
        return parse_digits_i64(b);
    }
    parse_rfc3339(b)
}

fn parse_digits_i64(b: &[u8]) -> Option<i64> {
    let mut v = 0i64;
    for &c in b {
        v = v.checked_mul(10)?.checked_add((c - b'0') as i64)?;
    }
    Some(v)
}

fn parse_rfc3339(b: &[u8]) -> Option<Instant> {
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || !matches!(b[10], b'T' | b't' | b' ') {
        return None;
    }
    if b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = parse_digits(&b[0..4])? as i32;
    if !YEARS.contains(&year) {
        return None;
    }
    let date = LocalDate::from_ymd(year, parse_digits(&b[5..7])?, parse_digits(&b[8..10])?)?;
    let (h, mi, s) = (
        parse_digits(&b[11..13])?,
        parse_digits(&b[14..16])?,
        parse_digits(&b[17..19])?,
    );
    if h > 23 || mi > 59 || s > 60 {
        return None;
    }
    let mut rest = &b[19..];
    if rest.first() == Some(&b'.') {
        let digits = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return None;
        }
        rest = &rest[1 + digits..];
    }
    let offset = match rest {
        [b'Z'] | [b'z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let oh = parse_digits(&[*h1, *h2])? as i64;
            let om = parse_digits(&[*m1, *m2])? as i64;
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * HOUR + om * MINUTE;
            if *sign == b'-' {
                -o
            } else {
                o
            }
        }
        _ => return None,
    };
    Some(date.0 as i64 * DAY + h as i64 * HOUR + mi as i64 * MINUTE + s.min(59) as i64 - offset)
}

/// Formats an instant as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn format_instant(at: Instant) -> String {
    Rfc3339(at).to_string()
}

/// An instant that displays as `YYYY-MM-DDTHH:MM:SSZ`, without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rfc3339(pub Instant);

impl fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let day = LocalDate(self.0.div_euclid(DAY) as i32);
        let secs = self.0.rem_euclid(DAY);
        write!(
            f,
            "{day}T{:02}:{:02}:{:02}Z",
            secs / HOUR,
            secs % HOUR / MINUTE,
            secs % MINUTE
        )
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_round_trip() {
        for d in -800_000..800_000 {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
        assert_eq!(LocalDate::ymd(1970, 1, 1).0, 0);
        assert_eq!(LocalDate::ymd(2023, 6, 1).to_string(), "2023-06-01");
        assert_eq!(
            LocalDate::parse("2024-02-29"),
            Some(LocalDate::ymd(2024, 2, 29))
        );
        assert_eq!(LocalDate::parse("2023-02-29"), None);
        assert_eq!(LocalDate::ymd(2025, 7, 1).month().to_string(), "2025-07");
    }

    #[test]
    fn parses_rfc3339_and_unix_seconds() {
        assert_eq!(parse_instant("1750030073"), Some(1_750_030_073));
        assert_eq!(parse_instant("2023-06-01T10:00:00Z"), Some(1_685_613_600));
        assert_eq!(
            parse_instant("2023-06-01T13:00:00+03:00"),
            Some(1_685_613_600)
        );
        assert_eq!(
            parse_instant("2023-06-01T10:00:00.987Z"),
            Some(1_685_613_600)
        );
        assert_eq!(parse_instant("2023-06-01 10:00:00Z"), Some(1_685_613_600));
        for bad in [
            "",
            "2023-06-01",
            "2023-13-01T10:00:00Z",
            "2023-06-01T10:00:00",
            "x",
            "2023-06-01T25:00:00Z",
        ] {
            assert_eq!(parse_instant(bad), None, "{bad}");
        }
        assert_eq!(format_instant(1_685_613_600), "2023-06-01T10:00:00Z");
    }

    /// Rule 1-3: the date of an instant is its date at the WABA's local midnight.
    #[test]
    fn rule_1_3_local_dates_follow_the_waba_time_zone() {
        let sp = Calendar::new("America/Sao_Paulo").unwrap();
        // 2025-07-01T02:00Z is still 2025-06-30 23:00 in São Paulo (UTC-3).
        let at = parse_instant("2025-07-01T02:00:00Z").unwrap();
        assert_eq!(sp.date(at), LocalDate::ymd(2025, 6, 30));
        assert_eq!(sp.date(at + HOUR), LocalDate::ymd(2025, 7, 1));
        assert_eq!(sp.start_of(LocalDate::ymd(2025, 7, 1)), at + HOUR);
        // A day that starts at 01:00 because of a DST gap (São Paulo, 2018-11-04).
        assert_eq!(
            sp.start_of(LocalDate::ymd(2018, 11, 4)),
            parse_instant("2018-11-04T03:00:00Z").unwrap()
        );
        let utc = Calendar::utc();
        assert_eq!(utc.date(at), LocalDate::ymd(2025, 7, 1));
        // A table lookup agrees with jiff everywhere, including across DST changes.
        for name in [
            "America/New_York",
            "America/Sao_Paulo",
            "Asia/Kolkata",
            "Australia/Lord_Howe",
            "Pacific/Apia",
        ] {
            let cal = Calendar::new(name).unwrap();
            let mut t = parse_instant("2016-01-01T00:00:00Z").unwrap();
            while t < parse_instant("2027-12-31T00:00:00Z").unwrap() {
                assert_eq!(cal.date(t), cal.date_slow(t), "{name} {t}");
                t += 4_799;
            }
        }
        assert!(Calendar::new("Mars/Olympus").is_err());
    }
}
