//! `tarifa serve`: the rating engine as the service a BSP or a store runs between its app and
//! Meta. Webhooks and the business's own records come in over HTTP and are stored durably before
//! they are acknowledged; a prepaid wallet holds the price of each chargeable message when it is
//! sent and settles it when Meta's delivery webhook arrives; quotes, invoices and reconciliation
//! read the same rules as `tarifa rate`.
//!
//! Four layers, each depending only on those after it (checked by the `tidy` crate's tests):
//!
//! * [`api`]: HTTP routes, authentication, request and answer shapes;
//! * [`runtime`]: the tasks of a running service (the single writer, schedulers) and its config;
//! * [`storage`]: SQLite and PostgreSQL: migrations, the stored formats, queries;
//! * [`domain`]: the book (wallets, live prices, quotes), invoices; pure, on `tarifa-core` only.
//!
//! The code map and invariants are in `docs/ARCHITECTURE.md`; the API in `docs/SERVICE.md` and in
//! the OpenAPI document served at `/openapi.json`.

pub mod api;
pub mod clock;
pub mod domain;
pub mod runtime;
pub mod storage;

pub use api::server::{serve, start, Running};
pub use runtime::{config, setup, App};
