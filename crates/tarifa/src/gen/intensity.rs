//! When traffic happens: the log's progress is warped onto calendar time by a day-of-week and
//! hour-of-day intensity curve with a slow growth, so that sessions bunch where real traffic does
//! while the log always spans `--from ..= --to`.

use super::clock::{Secs, DAY, HOUR};
use tarifa_core::time::LocalDate;

/// Maps progress `p ∈ [0, 1)` through the log to a time, with more traffic on weekdays, in the
/// (UTC) afternoon, and a slow growth over the range.
pub(super) struct Warp {
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
    pub(super) fn new(first_day: LocalDate, days: usize) -> Warp {
        let mut day_cum = Vec::with_capacity(days + 1);
        let mut acc = 0.0;
        day_cum.push(acc);
        for i in 0..days {
            // 1970-01-01 was a Thursday; 0 = Sunday.
            let dow = (i64::from(first_day.0) + i as i64 + 4).rem_euclid(7);
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
    pub(super) fn at(&self, p: f64) -> Secs {
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
