//! The running service: it opens the store, rebuilds the book from it, and runs the tasks that
//! change or watch it: the single writer, the once-a-second tick (hold expiry, forgetting), the
//! delivery of low-balance alerts, and the sales-recovery scheduler. The HTTP API (`crate::api`)
//! talks to it through [`App`].

pub mod config;
pub mod https;
pub mod metrics;
pub mod recovery;
pub mod seen;
pub mod setup;
pub mod writer;

use crate::clock;
use crate::domain::book::{Book, WalletRules};
use crate::storage::{self, Store};
use anyhow::Result;
use config::ServeConfig;
use rust_decimal::Decimal;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tarifa_core::engine::{Prices, Setup};
use tarifa_core::ledger::{Amount, WalletPolicy};
use tarifa_core::time::DAY;
use tokio::sync::{mpsc, watch};

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
    for entry in store.ledger_ops().await? {
        book.replay_op(entry.at, &entry.op)?;
    }
    let now = clock::now();
    let since = now - (config.hold_days + config.history_days) * DAY;
    for (business, line) in store.events_since(since).await? {
        if let Err(e) = book.replay_event(&business, &line) {
            tracing::error!(%business, error = %e, "a stored event no longer parses; live prices are made without it");
        }
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

/// The background tasks of a launched service, and what to close when they are done.
pub struct Background {
    shutdown: StopHandle,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    writer: tokio::task::JoinHandle<()>,
    store: Store,
}

impl Background {
    /// What asks the service to stop: the background tasks, and the HTTP server watching
    /// [`StopHandle::stopping`].
    pub fn stop_handle(&self) -> StopHandle {
        self.shutdown.clone()
    }

    /// Waits for the tasks, lets the writer store its last group once `app` (the last holder of
    /// its queue, with the finished handlers) is dropped, and closes the store.
    pub async fn finish(self, app: Arc<App>) {
        for task in self.tasks {
            let _ = task.await;
        }
        drop(app);
        let _ = self.writer.await;
        self.store.close().await;
    }
}

/// Asks a launched service to stop.
#[derive(Clone)]
pub struct StopHandle(Arc<watch::Sender<bool>>);

impl StopHandle {
    pub fn request_stop(&self) {
        let _ = self.0.send(true);
    }

    /// A receiver that turns `true` when the service is asked to stop.
    pub fn stopping(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// Opens the store, rebuilds the state, and starts the background tasks; the HTTP API is
/// served over the returned [`App`] by `crate::api::server`.
pub async fn launch(config: ServeConfig) -> Result<(Arc<App>, Background)> {
    let (setup, file) = setup::load_with_file(&config.rating_config, Prices::Resale)?;
    let setup = Arc::new(setup);
    let wallets = wallet_rules(&config, &setup, &file)?;
    let store = Store::open(&config.database_url).await?;
    let book = open_book(&store, setup.clone(), wallets.clone(), &config).await?;
    let metrics = Arc::new(metrics::Metrics::default());
    let (tx, rx) = mpsc::channel(65_536);
    let loader = book_loader(&store, &setup, &wallets, &config);
    // Sized for twice the events stored so far; filled in the background (`load_seen_keys`).
    let seen = seen::SeenKeys::with_capacity(2 * store.last_event_seq().await?.max(0) as usize);
    tokio::spawn(writer::load_seen_keys(store.clone(), tx.downgrade()));
    let grouping = writer::Grouping {
        max_group: config.max_group,
        linger: config.linger,
    };
    let writer_task = tokio::spawn(writer::run(
        rx,
        book.clone(),
        store.clone(),
        grouping,
        metrics.clone(),
        loader,
        seen,
    ));
    let recovery = recovery_of(&config, &setup, &store)?;
    let alert_client = https::client(Duration::from_secs(10), config.ca_file.as_deref())?;
    let app = Arc::new(App {
        config,
        book,
        writer: tx,
        store: store.clone(),
        metrics,
        recovery,
    });
    let (shutdown, _) = watch::channel(false);
    let tasks = vec![
        tokio::spawn(tick(app.clone(), shutdown.subscribe())),
        tokio::spawn(deliver_alerts(
            app.clone(),
            alert_client,
            shutdown.subscribe(),
        )),
        tokio::spawn(run_recovery(app.clone(), shutdown.subscribe())),
    ];
    let background = Background {
        shutdown: StopHandle(Arc::new(shutdown)),
        tasks,
        writer: writer_task,
        store,
    };
    Ok((app, background))
}

/// The book rebuilt from the store, with the accounts of the config opened (and stored).
async fn open_book(
    store: &Store,
    setup: Arc<Setup>,
    wallets: HashMap<String, WalletRules>,
    config: &ServeConfig,
) -> Result<Arc<RwLock<Book>>> {
    let mut book = load_book(store, setup, wallets, config).await?;
    let mut opened = storage::Effects::default();
    for account in book.open_accounts(clock::now(), &mut opened)? {
        tracing::warn!(
            %account,
            "the wallet's floor or alert threshold changed in the config; the ledger keeps the rules it was opened with"
        );
    }
    store.commit(&opened).await?;
    Ok(Arc::new(RwLock::new(book)))
}

/// What the writer calls to rebuild the book from the database after a failed commit.
fn book_loader(
    store: &Store,
    setup: &Arc<Setup>,
    wallets: &HashMap<String, WalletRules>,
    config: &ServeConfig,
) -> writer::Loader {
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
}

/// The sales-recovery scheduler of this instance, with the sender the config names.
fn recovery_of(config: &ServeConfig, setup: &Setup, store: &Store) -> Result<recovery::Recovery> {
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
            client: https::client(Duration::from_secs(20), config.ca_file.as_deref())?,
        }),
    };
    let store = storage::recovery::RecoveryStore {
        store: store.clone(),
    };
    Ok(recovery::Recovery::new(
        store,
        sender,
        config.recovery.clone(),
    ))
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

/// The recovery scheduler: a pass every `check_interval_minutes` (5 by default), so a recovery
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
async fn deliver_alerts(app: Arc<App>, client: reqwest::Client, mut stop: watch::Receiver<bool>) {
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
