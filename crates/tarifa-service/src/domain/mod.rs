//! The service's domain: what the wallets hold, what a message costs live, what a quote says,
//! what an invoice and a reconciliation contain. Pure: it imports only `tarifa-core`, reads no
//! clock (every operation is given `now`) and does no I/O; each change returns its effects
//! ([`effects::Effects`]) for storage to write.

pub mod book;
pub mod effects;
pub mod error;
pub mod ids;
pub mod ingest;
pub mod phone;
pub mod report;
