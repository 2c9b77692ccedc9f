//! tarifa-core: the pure heart of tarifa.
//!
//! Everything here is deterministic and does no I/O: it takes text or values and returns values.
//! Rule ids (`B-3`, `C-10`, `D-15` …) are catalogued in `docs/RULES.md`; they appear on every
//! charge and in the docs and tests of the code that implements them.

pub mod card;
pub mod category;
pub mod collections;
pub mod config;
pub mod engine;
mod fast_json;
pub mod input;
pub mod ledger;
pub mod market;
mod raw;
pub mod recovery;
pub mod time;

/// The bill is the engine's output: it lives in [`engine::bill`].
pub use engine::bill;
