//! `tarifa`: one binary, several subcommands (`rate`, `gen`, …) over the pure `tarifa-core`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

mod gen;
mod lines;
mod output;
mod rate;
mod setup;

#[derive(Parser)]
#[command(
    name = "tarifa",
    version,
    about = "Exact WhatsApp Business Platform pricing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Generate a synthetic, deterministic traffic log (JSON Lines) and a matching config.
    Gen(gen::GenArgs),
    /// Rate a JSON Lines log of events and/or raw webhooks and print the bill.
    Rate(rate::RateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) => gen::run(&args),
        Command::Rate(args) => rate::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarifa: {e:#}");
            ExitCode::from(2)
        }
    }
}
