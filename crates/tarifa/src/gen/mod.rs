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
//! * a session's events go into a time-ordered [`queue::Queue`] (a small heap plus 10-minute buckets)
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
//!
//! Modules: [`args`] (options), [`world`] (the setup: [`clock`], [`businesses`], [`users`] and
//! their [`numbering`], [`auth_international`], the [`intensity`] curve), [`generator`] (state
//! and shared draws) with the scenarios of a [`session`], [`outbound`] messages and their
//! statuses, the windows and [`conversation`]s, their [`pricing`]; then [`event`]s through the
//! [`queue`], written by [`render`] or [`webhook`] (with [`digits`]) into the [`sink`]; and the
//! [`config`] TOML. [`random`] and [`catalog`] serve them all.

mod args;
mod auth_international;
mod businesses;
mod catalog;
mod clock;
mod config;
mod conversation;
mod digits;
mod event;
mod generator;
mod heads;
mod intensity;
mod message_id;
mod numbering;
mod outbound;
mod pricing;
mod queue;
mod random;
mod render;
mod session;
mod sink;
mod users;
mod webhook;
mod world;

pub use args::GenArgs;
pub(crate) use random::mix64;

use anyhow::{Context, Result};
use generator::Generator;
use render::Render;
use sink::Sink;
use std::io::Write;
use std::time::Instant as WallClock;
use world::World;

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
        let text = config::config_toml(args, &world, path)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    let stats = if args.output.as_os_str() == "-" {
        generate_world(args, &world, &mut std::io::stdout().lock())?
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

/// Exactly `--events` lines of `world`'s traffic into `out`.
fn generate_world(args: &GenArgs, world: &World, out: &mut dyn Write) -> Result<GenStats> {
    let mut generator = Generator::new(world, args.seed, args.events);
    let mut sink = Sink::new(out, args.shuffle_window, args.seed);
    let mut render = Render::default();
    let mut line = Vec::with_capacity(2048);
    for _ in 0..args.events {
        let ev = generator.next_event();
        line.clear();
        render.event(world, &ev, &mut line);
        sink.push(&line)?;
    }
    sink.finish()?;
    Ok(GenStats {
        lines: args.events,
        bytes: sink.bytes,
        sessions: generator.sessions,
    })
}

#[cfg(test)]
mod tests;
