//! `tarifa serve`: the rating engine as the service a BSP or a store runs between its app and
//! Meta. Webhooks and the business's own records come in over HTTP and are stored durably before
//! they are acknowledged; a prepaid wallet holds the price of each chargeable message when it is
//! sent and settles it when Meta's delivery webhook arrives; quotes, invoices and reconciliation
//! read the same rules as `tarifa rate`.
//!
//! The code map and invariants are in `docs/ARCHITECTURE.md`; the API in `docs/SERVICE.md` and in
//! the OpenAPI document served at `/openapi.json`.

pub mod book;
pub mod clock;
pub mod config;
pub mod http;
pub mod ingest;
pub mod metrics;
pub mod recovery;
pub mod report;
pub mod seen;
pub mod setup;
pub mod signature;
pub mod store;
pub mod writer;

use anyhow::{Context, Result};
use book::{Book, LedgerOp, WalletRules};
use config::ServeConfig;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use store::Store;
use tarifa_core::engine::{Prices, Setup};
use tarifa_core::ledger::{Amount, WalletPolicy};
use tarifa_core::time::DAY;
use tokio::sync::{mpsc, watch};

/// The OpenAPI document of the HTTP API.
pub const OPENAPI: &str = include_str!("openapi.json");

/// What the handlers share.
pub struct App {
    pub config: ServeConfig,
    pub book: Arc<RwLock<Book>>,
    pub writer: mpsc::Sender<writer::Command>,
    pub store: Store,
    pub metrics: Arc<metrics::Metrics>,
    /// This instance's recovery scheduler.
    pub recovery: recovery::Recovery,
}

/// The wallet rules of every business: the service config over the price list's defaults.
fn wallet_rules(
    config: &ServeConfig,
    setup: &Setup,
    file: &tarifa_core::config::ConfigFile,
) -> Result<HashMap<String, WalletRules>> {
    let amount = |d: Decimal, what: &str| {
        Amount::from_decimal(d).map_err(|e| anyhow::anyhow!("{what}: {e}"))
    };
    let mut out = HashMap::new();
    for b in &setup.businesses {
        let w = config.wallets.get(&b.id).cloned().unwrap_or_default();
        let list_min = b
            .price_list
            .as_ref()
            .and_then(|id| file.price_list.iter().find(|p| &p.id == id))
            .and_then(|p| p.min_balance_for_free_service);
        let min = w.min_balance_for_free_service.or(list_min);
        out.insert(
            b.id.clone(),
            WalletRules {
                prepaid: w.prepaid.unwrap_or(true),
                currency: b.currency.clone(),
                policy: WalletPolicy {
                    floor: amount(w.floor.unwrap_or_default(), "floor")?,
                    low_balance_threshold: w
                        .low_balance_threshold
                        .map(|t| amount(t, "low_balance_threshold"))
                        .transpose()?,
                },
                min_balance_for_free_service: min
                    .map(|m| amount(m, "min_balance_for_free_service"))
                    .transpose()?,
                alert_url: w.alert_url.clone(),
            },
        );
    }
    for name in config.wallets.keys() {
        if !setup.businesses.iter().any(|b| &b.id == name) {
            anyhow::bail!("wallet.business {name:?} is not a business of the rating config");
        }
    }
    Ok(out)
}

/// Rebuilds the book from the database: the ledger by replaying its operations, the recent
/// history, the charges (settled messages and monthly counters) and the opt-outs.
pub async fn load_book(
    store: &Store,
    setup: Arc<Setup>,
    wallets: HashMap<String, WalletRules>,
    config: &ServeConfig,
) -> Result<Book> {
    let mut book = Book::new(setup, wallets, config.hold_days, config.history_days);
    for (at, op) in store.ledger_ops().await? {
        let op: LedgerOp =
            serde_json::from_str(&op).context("a stored ledger operation is unreadable")?;
        book.replay_op(at, &op)?;
    }
    let now = clock::now();
    let since = now - (config.hold_days + config.history_days) * DAY;
    for (business, line) in store.events_since(since).await? {
        book.replay_event(&business, &line);
    }
    for charge in store.charges_since(now - 62 * DAY).await? {
        book.replay_charge(&charge);
    }
    for (business, user) in store.optouts().await? {
        book.replay_optout(business, user);
    }
    book.trim(now);
    Ok(book)
}

/// A running service.
pub struct Running {
    pub addr: SocketAddr,
    pub app: Arc<App>,
    shutdown: watch::Sender<bool>,
    server: tokio::task::JoinHandle<Result<()>>,
}

impl Running {
    /// Stops accepting, finishes the requests in flight, and waits for the writer's last group.
    pub async fn stop(self) -> Result<()> {
        let Running {
            app,
            shutdown,
            server,
            ..
        } = self;
        // The writer ends when the last sender (held by `App`) is gone.
        drop(app);
        let _ = shutdown.send(true);
        server.await.context("the server task failed")?
    }
}

/// Opens the store, rebuilds the state, and starts serving (returns once listening).
pub async fn start(config: ServeConfig) -> Result<Running> {
    let (setup, file) = setup::load_with_file(&config.rating_config, Prices::Resale)?;
    let setup = Arc::new(setup);
    let wallets = wallet_rules(&config, &setup, &file)?;
    let store = Store::open(&config.database_url).await?;
    let mut book = load_book(&store, setup.clone(), wallets.clone(), &config).await?;
    let mut opened = store::WriteSet::default();
    book.open_accounts(clock::now(), &mut opened)?;
    store.commit(&opened).await?;
    let book = Arc::new(RwLock::new(book));
    let metrics = Arc::new(metrics::Metrics::default());
    let (tx, rx) = mpsc::channel(65_536);
    let reload: writer::Loader = {
        let (store, setup, wallets, config) = (
            store.clone(),
            setup.clone(),
            wallets.clone(),
            config.clone(),
        );
        Arc::new(move || {
            let (store, setup, wallets, config) = (
                store.clone(),
                setup.clone(),
                wallets.clone(),
                config.clone(),
            );
            Box::pin(async move { load_book(&store, setup, wallets, &config).await })
        })
    };
    // Sized for twice the events stored so far; filled in the background (`load_seen_keys`).
    let seen = seen::SeenKeys::with_capacity(2 * store.last_event_seq().await?.max(0) as usize);
    tokio::spawn(writer::load_seen_keys(store.clone(), tx.downgrade()));
    let writer_task = tokio::spawn(writer::run(
        rx,
        book.clone(),
        store.clone(),
        writer::Grouping {
            max_group: config.max_group,
            linger: config.linger,
        },
        metrics.clone(),
        reload,
        seen,
    ));
    for business in config.recovery.store.keys() {
        if !setup.businesses.iter().any(|b| &b.id == business) {
            anyhow::bail!("recovery.store.{business}: not a business of the rating config");
        }
    }
    let sender: Arc<dyn recovery::Sender> = match config.recovery.sender {
        recovery::SenderKind::Outbox => Arc::new(recovery::Outbox),
        recovery::SenderKind::Meta => Arc::new(recovery::CloudApi {
            graph_url: config.recovery.graph_url.clone(),
            token: config.recovery.access_token.clone().unwrap_or_default(),
            client: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(20))
                .build()
                .unwrap_or_default(),
        }),
    };
    let recovery = recovery::Recovery::new(
        recovery::store::RecoveryStore {
            store: store.clone(),
        },
        sender,
        config.recovery.clone(),
    );
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let addr = listener.local_addr()?;
    let app = Arc::new(App {
        config,
        book,
        writer: tx,
        store: store.clone(),
        metrics,
        recovery,
    });
    let (shutdown, mut stop) = watch::channel(false);
    let ticker = tokio::spawn(tick(app.clone(), shutdown.subscribe()));
    let alerts = tokio::spawn(deliver_alerts(app.clone(), shutdown.subscribe()));
    let recoveries = tokio::spawn(run_recovery(app.clone(), shutdown.subscribe()));
    let router = http::router(app.clone());
    let server = tokio::spawn({
        let app = app.clone();
        async move {
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stop.wait_for(|s| *s).await;
                })
                .await
                .context("the HTTP server failed")?;
            let _ = ticker.await;
            let _ = alerts.await;
            let _ = recoveries.await;
            // Every handler is done: dropping the last sender lets the writer finish its group.
            drop(app);
            let _ = writer_task.await;
            store.close().await;
            Ok(())
        }
    });
    tracing::info!(%addr, "tarifa serve is listening");
    Ok(Running {
        addr,
        app,
        shutdown,
        server,
    })
}

/// Every second: release expired holds, forget old history. Both visit only what is due (the
/// ledger's timeouts and the book's schedule), so a short period costs nothing when nothing is
/// due, and spreads the forgetting of a busy day into small steps instead of a pause a minute.
async fn tick(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = every.tick() => { let _ = app.writer.send(writer::Command::Expire).await; }
            _ = stop.changed() => return,
        }
    }
}

/// The recovery scheduler: a pass every `check_interval_minutes` (seed 004: 5), so a recovery
/// leaves between its due time and one interval later.
async fn run_recovery(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let period =
        std::time::Duration::from_secs(app.config.recovery.check_interval_minutes as u64 * 60);
    if !app.config.recovery.scheduler {
        return;
    }
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        if let Err(e) = app.recovery.tick(&app, clock::now()).await {
            tracing::warn!(error = %format!("{e:#}"), "recovery pass failed; retried at the next interval");
        }
    }
}

/// Delivers low-balance alerts (outgoing webhooks) with retries: after 2, 4, 8 … seconds (at most
/// about 68 minutes apart), up to 12 attempts; each attempt and its outcome is stored.
async fn deliver_alerts(app: Arc<App>, mut stop: watch::Receiver<bool>) {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut every = tokio::time::interval(std::time::Duration::from_millis(500));
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = stop.changed() => return,
        }
        let now = clock::now();
        let Ok(due) = app.store.due_alerts(now, 50).await else {
            continue;
        };
        for alert in due {
            let result = client
                .post(&alert.url)
                .header("content-type", "application/json")
                .body(alert.payload.clone())
                .send()
                .await;
            let attempts = alert.attempts + 1;
            let (state, next, error) = match result {
                Ok(r) if r.status().is_success() => ("delivered", now, String::new()),
                Ok(r) => (
                    "pending",
                    now + (1 << attempts.min(12)),
                    format!("HTTP {}", r.status()),
                ),
                Err(e) => ("pending", now + (1 << attempts.min(12)), e.to_string()),
            };
            let state = if state == "pending" && attempts >= 12 {
                "abandoned"
            } else {
                state
            };
            let _ = app
                .store
                .alert_attempted(alert.seq, state, attempts, next, &error)
                .await;
        }
    }
}

/// Runs until SIGINT or SIGTERM, then shuts down gracefully.
pub async fn serve(config: ServeConfig) -> Result<()> {
    let running = start(config).await?;
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    ctrl_c.await?;
    tracing::info!("shutting down: finishing the requests in flight");
    running.stop().await
}
