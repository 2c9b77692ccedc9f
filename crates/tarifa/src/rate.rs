//! `tarifa rate`: read JSON Lines, rate, print the bill.

use crate::lines::LineReader;
use crate::output::{self, Format, Invalid, Table};
use anyhow::{bail, Context, Result};
use clap::{Args, ValueEnum};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use tarifa_core::engine::{Prices, Rater};
use tarifa_core::input::parse_line;

#[derive(Args)]
pub struct RateArgs {
    /// JSON Lines files of events and/or raw webhooks (`-` for standard input).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Business and rate-card configuration (TOML).
    #[arg(long)]
    pub config: PathBuf,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// With `--format csv`: which table to print.
    #[arg(long, value_enum, default_value_t = Table::Messages)]
    pub table: Table,
    /// Count invalid lines, report them at the end, and rate the rest.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Bill in Meta's prices or in each business's resale price list.
    #[arg(long, value_enum, default_value_t = PricesArg::Meta)]
    pub prices: PricesArg,
    /// Only parse the input (for measuring parsing alone).
    #[arg(long)]
    pub parse_only: bool,
    /// Print only totals (no message and conversation lists).
    #[arg(long)]
    pub summary: bool,
    /// Print how long each step took (to standard error).
    #[arg(long)]
    pub timings: bool,
    /// Exit with status 3 (after printing the bill) when any message is unrated, so that a
    /// pipeline stops on a bill that is missing prices.
    #[arg(long)]
    pub fail_on_unrated: bool,
}

/// The bill held unrated messages and `--fail-on-unrated` was given (exit status 3).
#[derive(Debug)]
pub struct UnratedFound(pub u64);

impl std::fmt::Display for UnratedFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} unrated message(s) (--fail-on-unrated): see the lines with pricing_type \"unrated\" and their reason",
            self.0
        )
    }
}

impl std::error::Error for UnratedFound {}

/// Step timings for `--timings`, from the start of the run.
struct Timer {
    on: bool,
    start: std::time::Instant,
}

impl Timer {
    fn new(on: bool) -> Timer {
        Timer {
            on,
            start: std::time::Instant::now(),
        }
    }

    fn lap(&mut self, step: &str) {
        if self.on {
            eprintln!(
                "timing: {step:<8} done at {:>8.3} s",
                self.start.elapsed().as_secs_f64()
            );
        }
    }
}

#[derive(Clone, Copy, ValueEnum)]
pub enum PricesArg {
    Meta,
    Resale,
}

/// How many invalid lines to keep the text of.
const KEEP_INVALID: usize = 100;

pub fn run(args: &RateArgs) -> Result<()> {
    let prices = match args.prices {
        PricesArg::Meta => Prices::Meta,
        PricesArg::Resale => Prices::Resale,
    };
    let mut timer = Timer::new(args.timings);
    let setup = tarifa_service::setup::load(&args.config, prices)?;
    timer.lap("setup");
    let mut rater = Rater::new(setup);
    if !args.parse_only {
        rater.reserve(expected_lines(&args.files));
    }
    let mut input = Input::default();
    for file in &args.files {
        input.read_file(args, file, &mut rater)?;
    }
    if args.parse_only {
        eprintln!(
            "parsed {} lines, {} invalid",
            input.lines_read, input.invalid_count
        );
        return Ok(());
    }
    timer.lap("read");
    let bill = rater.finish_with_progress(&mut |step| timer.lap(step));
    let report = output::Report {
        bill: &bill,
        invalid: &input.invalid,
        invalid_count: input.invalid_count,
        summary: args.summary,
    };
    print_bill(args, &report)?;
    timer.lap("output");
    input.report_invalid();
    let unrated: u64 = bill.totals().iter().map(|t| t.unrated_messages).sum();
    if args.fail_on_unrated && unrated > 0 {
        return Err(UnratedFound(unrated).into());
    }
    Ok(())
}

/// About how many lines `files` hold: lines are about 100–250 bytes, and reserving for the
/// smaller size errs on the generous side.
fn expected_lines(files: &[PathBuf]) -> usize {
    let bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
    (bytes / 100) as usize
}

/// What the input files held, apart from the events the rater took.
#[derive(Default)]
struct Input {
    /// The first [`KEEP_INVALID`] invalid lines.
    invalid: Vec<Invalid>,
    invalid_count: u64,
    lines_read: u64,
}

impl Input {
    /// Parses (or rates) every non-blank line of `file`.
    fn read_file(&mut self, args: &RateArgs, file: &Path, rater: &mut Rater) -> Result<()> {
        let name = file.display().to_string();
        let reader: Box<dyn Read> = if name == "-" {
            Box::new(std::io::stdin().lock())
        } else {
            Box::new(std::fs::File::open(file).with_context(|| format!("cannot open {name}"))?)
        };
        let mut reader = LineReader::new(reader);
        let mut number = 0u64;
        while let Some(line) = reader
            .next_line()
            .with_context(|| format!("cannot read {name}"))?
        {
            number += 1;
            let line = line.trim_ascii();
            if line.is_empty() {
                continue;
            }
            self.lines_read += 1;
            let result = if args.parse_only {
                parse_line(line, &mut |_| {})
            } else {
                rater.push_line(line)
            };
            if let Err(e) = result {
                if !args.skip_invalid {
                    bail!("{name}:{number}: {e}\n(use --skip-invalid to rate the valid lines and report the rest)");
                }
                self.note_invalid(&name, number, e.to_string());
            }
        }
        Ok(())
    }

    fn note_invalid(&mut self, file: &str, line: u64, message: String) {
        self.invalid_count += 1;
        if self.invalid.len() < KEEP_INVALID {
            self.invalid.push(Invalid {
                file: file.to_string(),
                line,
                message,
            });
        }
    }

    /// The skipped lines, on standard error.
    fn report_invalid(&self) {
        if self.invalid_count == 0 {
            return;
        }
        eprintln!("{} invalid line(s) skipped:", self.invalid_count);
        for i in &self.invalid {
            eprintln!("  {}:{}: {}", i.file, i.line, i.message);
        }
        if self.invalid_count as usize > self.invalid.len() {
            eprintln!(
                "  … and {} more",
                self.invalid_count as usize - self.invalid.len()
            );
        }
    }
}

/// The bill on standard output, in `--format`.
fn print_bill(args: &RateArgs, report: &output::Report<'_>) -> Result<()> {
    let stdout = std::io::stdout();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
    match args.format {
        Format::Table => output::table(report, &mut out)?,
        Format::Json => output::json(report, &mut out)?,
        Format::Csv => output::csv(report, args.table, &mut out)?,
    }
    out.flush()?;
    Ok(())
}
