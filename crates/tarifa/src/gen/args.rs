//! The options of `tarifa gen`, and their checking: everything else in the generator may assume
//! a valid date range, at least one user and business, shares within 0–1 and ISO currencies.

use anyhow::{bail, Context, Result};
use clap::Args;
use std::path::PathBuf;
use tarifa_core::time::LocalDate;

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

/// The checked form of the options the world is built from.
pub(super) struct Checked {
    /// `--from`.
    pub first_day: LocalDate,
    /// Days from `--from` to `--to`, both included.
    pub days: u32,
    /// `--currency`, trimmed and upper-cased.
    pub currencies: Vec<String>,
}

/// The years a log may cover.
const YEARS: std::ops::RangeInclusive<i32> = 1970..=2100;

impl GenArgs {
    /// Checks the options, with an error that names the option at fault.
    pub(super) fn check(&self) -> Result<Checked> {
        let (first_day, days) = self.date_range()?;
        if self.users == 0 {
            bail!("--users must be at least 1");
        }
        if self.businesses == 0 || self.businesses > 100_000 {
            bail!("--businesses must be between 1 and 100000");
        }
        for (name, v) in [
            ("--webhook-fraction", self.webhook_fraction),
            ("--duplicates", self.duplicates),
        ] {
            if !(0.0..=1.0).contains(&v) {
                bail!("{name} must be between 0 and 1, got {v}");
            }
        }
        Ok(Checked {
            first_day,
            days,
            currencies: self.currencies()?,
        })
    }

    /// `--from` and the number of days up to `--to`.
    fn date_range(&self) -> Result<(LocalDate, u32)> {
        let from = LocalDate::parse(&self.from)
            .with_context(|| format!("--from {:?}: expected YYYY-MM-DD", self.from))?;
        let to = LocalDate::parse(&self.to)
            .with_context(|| format!("--to {:?}: expected YYYY-MM-DD", self.to))?;
        let year = |d: LocalDate| d.ymd_parts().0;
        if !YEARS.contains(&year(from)) || !YEARS.contains(&year(to)) {
            bail!("--from/--to must be between 1970 and 2100");
        }
        if to < from {
            bail!("--to {} is before --from {}", self.to, self.from);
        }
        let days = (to.0 - from.0 + 1) as u32;
        if days > 20 * 366 {
            bail!("--from..--to spans more than 20 years");
        }
        Ok((from, days))
    }

    fn currencies(&self) -> Result<Vec<String>> {
        let currencies: Vec<String> = self
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
        Ok(currencies)
    }
}
