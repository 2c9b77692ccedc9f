//! Generator time: an event's time is kept as `u32` seconds after the first midnight of the log
//! (events stay small, sessions fit any range of up to 20 years), and turned into core
//! [`Instant`]s and [`LocalDate`]s (UTC) only where a rule date or a rendered time needs them.

use tarifa_core::time::{self, Instant, LocalDate};

/// Seconds after the first midnight of the log.
pub(super) type Secs = u32;

/// Core's spans of time, as [`Secs`].
pub(super) const MINUTE: Secs = secs(time::MINUTE);
pub(super) const HOUR: Secs = secs(time::HOUR);
pub(super) const DAY: Secs = secs(time::DAY);

const fn secs(span: i64) -> Secs {
    assert!(span >= 0 && span <= u32::MAX as i64);
    span as Secs
}

/// The instant of [`Secs`] 0 and the end of the log.
pub(super) struct LogClock {
    /// `--from` 00:00 UTC.
    pub base: Instant,
    /// `--to` + 1 day: every event is before it.
    pub end: Secs,
}

impl LogClock {
    pub fn new(first_day: LocalDate, days: u32) -> LogClock {
        LogClock {
            base: midnight(first_day),
            end: days * DAY,
        }
    }

    pub fn instant(&self, t: Secs) -> Instant {
        self.base + Instant::from(t)
    }

    /// The UTC date of `t`.
    pub fn date(&self, t: Secs) -> LocalDate {
        LocalDate(self.instant(t).div_euclid(time::DAY) as i32)
    }

    /// Midnight (UTC) of `date` in seconds after [`Secs`] 0; negative before the log.
    pub fn since_base(&self, date: LocalDate) -> i64 {
        midnight(date) - self.base
    }
}

/// Midnight UTC of `date`.
pub(super) fn midnight(date: LocalDate) -> Instant {
    Instant::from(date.0) * time::DAY
}
