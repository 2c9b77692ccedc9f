//! `tarifa`: one binary, several subcommands (`rate`, `gen`, …) over the pure `tarifa-core`.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// mimalloc instead of the system allocator: the service allocates and frees small objects on
/// every request from several threads (glibc's malloc and free were about a fifth of the
/// server's CPU under load, see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod gen;
mod lines;
mod load;
mod output;
mod rate;

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
    /// Run the service: Meta webhooks, events API, wallet, quotes, invoices, reconciliation.
    Serve(ServeArgs),
    /// Open-loop load generator for a running `tarifa serve` (webhooks or quotes).
    Load(load::LoadArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// The service config (TOML); see samples/serve.toml and docs/SERVICE.md.
    #[arg(long, default_value = "samples/serve.toml")]
    config: std::path::PathBuf,
    /// Log as JSON lines (default: human-readable).
    #[arg(long)]
    json_logs: bool,
}

fn serve(args: &ServeArgs) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TARIFA_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if args.json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    let config = tarifa_service::config::load(&args.config, &|k| std::env::var(k).ok())?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(tarifa_service::serve(config))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Gen(args) => gen::run(&args),
        Command::Rate(args) => rate::run(&args),
        Command::Serve(args) => serve(&args),
        Command::Load(args) => load::run(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tarifa: {e:#}");
            // 3: the bill was printed but holds unrated messages; 2: anything else went wrong.
            match e.downcast_ref::<rate::UnratedFound>() {
                Some(_) => ExitCode::from(3),
                None => ExitCode::from(2),
            }
        }
    }
}
