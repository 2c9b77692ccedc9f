//! The single writer: every change to the book goes through one task that takes commands from a
//! queue, applies a whole group of them in memory, stores the group in one transaction (group
//! commit) and only then answers. One commit per group, not per event, is what makes durable
//! acknowledgement fast (a commit costs a fixed fsync however many events it holds); one writer is what makes the
//! ledger's checks (no wallet below its floor) hold without database locks.
//!
//! If a commit fails, nobody in the group gets a positive answer and the book is rebuilt from the
//! database, so memory never keeps an effect the database does not have.

use crate::domain::book::{Book, Outcome};
use crate::domain::effects::{DeadLetter, Effects, NewEvent};
use crate::runtime::metrics::Metrics;
use crate::runtime::seen::SeenKeys;
use crate::storage::Store;
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::sync::atomic::Ordering::{Relaxed, Release};
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

/// A change asked of the book.
pub enum Command {
    /// New events; answered per row.
    Ingest {
        rows: Vec<NewEvent>,
        reply: oneshot::Sender<Result<Vec<Outcome>, String>>,
    },
    /// A webhook body that was signed but could not be read: kept for inspection.
    DeadLetter {
        source: String,
        reason: String,
        body: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    TopUp {
        business: String,
        id: String,
        amount: Decimal,
        reply: oneshot::Sender<Result<TopUpAnswer, String>>,
    },
    /// Release holds whose timeout passed.
    Expire,
    /// Quote a message the service sends itself and hold its cost (see [`Book::reserve`]).
    Reserve {
        planned: crate::domain::book::Planned,
        /// When the message is sent (the scheduler's clock).
        at: i64,
        reservation: String,
        timeout_secs: i64,
        reply: oneshot::Sender<Result<crate::domain::book::Quote, String>>,
    },
    /// The reserved message was sent: record it (see [`Book::record_reserved`]).
    RecordReserved {
        reservation: String,
        row: NewEvent,
        reply: oneshot::Sender<Result<Outcome, String>>,
    },
    /// The reserved message was not sent.
    CancelReservation {
        business: String,
        reservation: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
    /// Stored keys read by the loader of the filter of stored keys (see [`load_seen_keys`]).
    KnownKeys(Vec<String>),
    /// The loader has read every key stored before the writer started: from now on a key the
    /// filter has not seen is new without asking the database.
    KnownKeysComplete,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct TopUpAnswer {
    /// `created`, or `exists` for a retry.
    pub status: &'static str,
    pub transfer: String,
}

/// What a command is waiting for once its group is stored.
enum Pending {
    Ingest(oneshot::Sender<Result<Vec<Outcome>, String>>, Vec<Outcome>),
    DeadLetter(oneshot::Sender<Result<(), String>>),
    TopUp(
        oneshot::Sender<Result<TopUpAnswer, String>>,
        Result<TopUpAnswer, String>,
    ),
    Reserve(
        oneshot::Sender<Result<crate::domain::book::Quote, String>>,
        Box<Result<crate::domain::book::Quote, String>>,
    ),
    Recorded(oneshot::Sender<Result<Outcome, String>>, Outcome),
    Cancelled(oneshot::Sender<Result<(), String>>),
    Nothing,
}

pub type Loader = Arc<dyn Fn() -> futures_lite::BoxedBook + Send + Sync>;

/// A group being filled: applied to the book, not stored yet.
struct Open {
    w: Effects,
    pending: Vec<Pending>,
    /// Idempotency keys of its stored events (later copies are duplicates).
    keys: HashSet<String>,
    commands: usize,
    started: Option<std::time::Instant>,
}

impl Open {
    fn new() -> Open {
        Open {
            w: Effects::default(),
            pending: Vec::new(),
            keys: HashSet::new(),
            commands: 0,
            started: None,
        }
    }
}

/// A group whose transaction is being committed.
struct InFlight {
    commit: tokio::task::JoinHandle<Result<(), String>>,
    pending: Vec<Pending>,
    /// Idempotency keys of its events: stored once the commit returns, so later commands must
    /// treat them as stored already (the database does not show them yet).
    keys: HashSet<String>,
    stored: u64,
    started: std::time::Instant,
}

fn start_commit(store: &Store, metrics: &Arc<Metrics>, open: Open) -> InFlight {
    let Open {
        mut w,
        pending,
        keys,
        started,
        ..
    } = open;
    let stored = w.events.len() as u64;
    for anomaly in w.anomalies.drain(..) {
        metrics.ledger_anomalies.fetch_add(1, Relaxed);
        tracing::error!(%anomaly, "a money operation the book expected to apply was refused");
    }
    let (store, metrics) = (store.clone(), metrics.clone());
    InFlight {
        commit: tokio::spawn(async move {
            let started = std::time::Instant::now();
            let done = store
                .commit(&w)
                .await
                .map_err(|e| format!("storage: {e:#}"));
            metrics.transaction_seconds.observe(started.elapsed());
            done
        }),
        pending,
        keys,
        stored,
        started: started.unwrap_or_else(std::time::Instant::now),
    }
}

/// When a group is committed.
#[derive(Clone, Copy, Debug)]
pub struct Grouping {
    /// Most commands in one group (one transaction).
    pub max_group: usize,
    /// Under load, how long a group waits for more commands once its first one is applied
    /// (`ingest.linger_ms`): a commit costs a fixed amount of CPU and disk (the pages it writes,
    /// the fsync) whatever its size, so fewer, larger commits leave more of both to the
    /// requests. A command that arrives alone (the last group held one command) is committed
    /// at once, so a quiet service answers without the wait.
    pub linger: std::time::Duration,
}

impl Grouping {
    /// Whether a group of `commands`, whose first command was applied `age` ago, is to be
    /// committed now (when no other commit is in flight), the last group having held
    /// `last_group` commands.
    pub fn due(&self, commands: usize, age: std::time::Duration, last_group: usize) -> bool {
        commands >= self.max_group || last_group <= 1 || age >= self.linger
    }
}

/// Runs until every sender is dropped.
///
/// At most one group is being committed (by a task of its own) while the next one fills (and,
/// under load, lingers: see [`Grouping`]): every
/// command that arrives meanwhile is checked for duplicates and applied to the book at once, so
/// the work of applying overlaps the commit, and the next group holds everything that came
/// during it (the slower the commit, the larger the group). When the commit returns, its
/// commands are answered and the open group's commit starts: commits stay in order, and a
/// command is answered only after the commit that stored it. If a commit fails, the open group
/// was applied on top of effects the database does not have: the book is rebuilt from the
/// database, and then both groups get the error, as for a single failed group (so a client that
/// was refused never reads the effects of its refused command afterwards).
pub async fn run(
    rx: mpsc::Receiver<Command>,
    book: Arc<RwLock<Book>>,
    store: Store,
    grouping: Grouping,
    metrics: Arc<Metrics>,
    reload: Loader,
    seen: SeenKeys,
) {
    Writer {
        rx,
        book,
        store,
        grouping,
        metrics,
        reload,
        seen,
        seen_complete: false,
        open: Open::new(),
        in_flight: None,
        closed: false,
        last_group: 0,
    }
    .run()
    .await
}

/// The writer's state between commands.
struct Writer {
    rx: mpsc::Receiver<Command>,
    book: Arc<RwLock<Book>>,
    store: Store,
    grouping: Grouping,
    metrics: Arc<Metrics>,
    reload: Loader,
    seen: SeenKeys,
    /// Until the loader has read every key stored before the start, the filter is incomplete
    /// and every key is looked up in the database.
    seen_complete: bool,
    open: Open,
    in_flight: Option<InFlight>,
    /// Every sender is gone: commit what is open and stop.
    closed: bool,
    /// Commands in the last group committed: more than one means commands are arriving
    /// together, and a group that waits a little gathers more of them.
    last_group: usize,
}

/// What the database said about a batch before it is applied.
struct LookedUp {
    /// Keys of the batch's events that are stored already (retries).
    existing: HashSet<String>,
    /// The business of messages only the database knows (statuses without one).
    owners: Vec<(String, String)>,
}

impl Writer {
    async fn run(mut self) {
        let mut batch: Vec<Command> = Vec::with_capacity(self.grouping.max_group);
        loop {
            self.commit_if_due();
            if self.in_flight.is_none() && self.closed {
                break;
            }
            let Some(first) = self.next_command().await else {
                continue;
            };
            batch.push(first);
            while self.open.commands + batch.len() < self.grouping.max_group {
                match self.rx.try_recv() {
                    Ok(c) => batch.push(c),
                    Err(_) => break,
                }
            }
            self.take(&mut batch).await;
        }
    }

    /// Starts the open group's commit when none is in flight and the group is due.
    fn commit_if_due(&mut self) {
        let age = self.open.started.map(|s| s.elapsed()).unwrap_or_default();
        let due = self.closed || self.grouping.due(self.open.commands, age, self.last_group);
        if self.in_flight.is_none() && self.open.commands > 0 && due {
            self.last_group = self.open.commands;
            let open = std::mem::replace(&mut self.open, Open::new());
            self.in_flight = Some(start_commit(&self.store, &self.metrics, open));
        }
    }

    /// The next command, or `None` when something else happened first (the commit in flight
    /// returned, the open group's wait ended, or the queue closed).
    async fn next_command(&mut self) -> Option<Command> {
        let command = match self.in_flight.as_mut() {
            None if self.open.commands > 0 => {
                // Lingering (not due yet): more commands, or the end of the wait.
                let started = self.open.started.unwrap_or_else(std::time::Instant::now);
                let deadline = started + self.grouping.linger;
                tokio::select! {
                    c = self.rx.recv() => c,
                    _ = tokio::time::sleep_until(deadline.into()) => return None,
                }
            }
            None => self.rx.recv().await,
            Some(f) => {
                let room = self.open.commands < self.grouping.max_group && !self.closed;
                tokio::select! {
                    biased;
                    done = &mut f.commit => {
                        self.committed(joined(done)).await;
                        return None;
                    }
                    c = self.rx.recv(), if room => c,
                }
            }
        };
        if command.is_none() {
            self.closed = true;
        }
        command
    }

    /// The commit in flight returned: its commands are answered, or, if it failed, the book is
    /// rebuilt and both it and the open group (applied on top of it) are refused.
    async fn committed(&mut self, done: Result<(), String>) {
        let f = self.in_flight.take().expect("a group is in flight");
        if let Err((message, mut failed)) = finish(f, done, &self.metrics) {
            let open = std::mem::replace(&mut self.open, Open::new());
            failed.extend(open.pending);
            rebuild(&self.book, &self.reload, &message, failed).await;
        }
    }

    /// Whether an event of this key is stored already or waits in a group not committed yet.
    fn stored_before(&self, key: &str) -> bool {
        self.open.keys.contains(key)
            || self
                .in_flight
                .as_ref()
                .is_some_and(|f| f.keys.contains(key))
    }

    /// Applies a batch of commands into the open group; if the database cannot answer what the
    /// batch needs from it, the whole batch is refused and nothing of it applied.
    async fn take(&mut self, batch: &mut Vec<Command>) {
        let applying = std::time::Instant::now();
        self.open.started.get_or_insert(applying);
        let looked_up = match self.look_up(batch).await {
            Ok(l) => l,
            Err(e) => {
                fail_group(batch, &format!("storage: {e:#}"));
                return;
            }
        };
        self.open.commands += batch.len();
        let now = crate::clock::now();
        let book = self.book.clone();
        let mut book = book.write().unwrap_or_else(|p| p.into_inner());
        for command in batch.drain(..) {
            let pending = self.apply(command, &mut book, &looked_up, now);
            self.open.pending.push(pending);
        }
        drop(book);
        self.metrics
            .seen_keys
            .store(self.seen.len() as u64, Relaxed);
        self.metrics.apply_seconds.observe(applying.elapsed());
    }

    /// The keys of the batch stored already (only keys the filter of stored keys may contain
    /// are asked about), and the owners of messages only the database knows.
    async fn look_up(&self, batch: &[Command]) -> anyhow::Result<LookedUp> {
        let keys: Vec<(&str, &str)> = batch
            .iter()
            .flat_map(|c| match c {
                Command::Ingest { rows, .. } => rows.iter().map(NewEvent::lookup).collect(),
                Command::RecordReserved { row, .. } => vec![row.lookup()],
                _ => Vec::new(),
            })
            .filter(|(k, _)| {
                !self.stored_before(k) && (!self.seen_complete || self.seen.may_contain(k))
            })
            .collect();
        let mut existing = HashSet::new();
        if !keys.is_empty() {
            self.metrics.key_lookups.fetch_add(1, Relaxed);
            self.metrics
                .key_lookup_keys
                .fetch_add(keys.len() as u64, Relaxed);
            existing = self.store.existing_keys(&keys).await?;
        }
        let unknown = self.messages_without_business(batch);
        let mut owners = Vec::new();
        if !unknown.is_empty() {
            let refs: Vec<&str> = unknown.iter().map(String::as_str).collect();
            owners = self.store.businesses_of(&refs).await?;
        }
        Ok(LookedUp { existing, owners })
    }

    /// Statuses of the batch whose message (and so business) only the database knows.
    fn messages_without_business(&self, batch: &[Command]) -> Vec<String> {
        let book = self.book.read().unwrap_or_else(|p| p.into_inner());
        batch
            .iter()
            .flat_map(|c| match c {
                Command::Ingest { rows, .. } => rows
                    .iter()
                    .filter(|r| r.business.is_empty() && book.business_of(&r.message).is_none())
                    .map(|r| r.message.clone())
                    .collect(),
                _ => Vec::new(),
            })
            .collect()
    }

    /// Applies one command to the book into the open group; returns what its answer waits for.
    fn apply(&mut self, command: Command, b: &mut Book, looked_up: &LookedUp, now: i64) -> Pending {
        let w = &mut self.open.w;
        match command {
            Command::Ingest { rows, reply } => {
                let outcomes = rows
                    .into_iter()
                    .map(|row| self.ingest(row, b, looked_up, now, None))
                    .collect();
                Pending::Ingest(reply, outcomes)
            }
            Command::DeadLetter {
                source,
                reason,
                body,
                reply,
            } => {
                w.dead_letters.push(DeadLetter {
                    received_at: now,
                    source,
                    reason,
                    body,
                });
                Pending::DeadLetter(reply)
            }
            Command::TopUp {
                business,
                id,
                amount,
                reply,
            } => Pending::TopUp(reply, top_up(b, &business, &id, amount, now, w)),
            Command::Expire => expire_and_forget(b, now, w),
            Command::Reserve {
                planned,
                at,
                reservation,
                timeout_secs,
                reply,
            } => {
                let answer = b.reserve(&planned, &reservation, at, now, timeout_secs, w);
                let answer = answer.map_err(|e| e.to_string());
                Pending::Reserve(reply, Box::new(answer))
            }
            Command::RecordReserved {
                reservation,
                row,
                reply,
            } => {
                let outcome = self.ingest(row, b, looked_up, now, Some(&reservation));
                Pending::Recorded(reply, outcome)
            }
            Command::CancelReservation {
                business,
                reservation,
                reply,
            } => {
                b.cancel_reservation(&business, &reservation, now, w);
                Pending::Cancelled(reply)
            }
            Command::KnownKeys(keys) => {
                keys.iter().for_each(|k| self.seen.insert(k));
                Pending::Nothing
            }
            Command::KnownKeysComplete => {
                self.seen_is_complete();
                Pending::Nothing
            }
        }
    }

    /// The loader has fed the filter every key stored before the start.
    fn seen_is_complete(&mut self) {
        self.seen_complete = true;
        // The count first: whoever reads "complete" reads the full count too.
        let metrics = &self.metrics;
        metrics.seen_keys.store(self.seen.len() as u64, Relaxed);
        metrics.seen_keys_complete.store(1, Release);
    }

    /// Applies one new event (the record of a reserved message when `reservation` is given),
    /// unless it is a duplicate; a status without a business gets its message's.
    fn ingest(
        &mut self,
        mut row: NewEvent,
        b: &mut Book,
        looked_up: &LookedUp,
        now: i64,
        reservation: Option<&str>,
    ) -> Outcome {
        let key = row.key.as_str().to_string();
        if looked_up.existing.contains(&key) || self.stored_before(&key) {
            return Outcome::Duplicate;
        }
        if row.business.is_empty() {
            row.business = b
                .business_of(&row.message)
                .map(str::to_string)
                .or_else(|| {
                    let owner = looked_up.owners.iter().find(|(m, _)| *m == row.message);
                    owner.map(|(_, business)| business.clone())
                })
                .unwrap_or_default();
        }
        let w = &mut self.open.w;
        let outcome = match reservation {
            Some(reservation) => b.record_reserved(reservation, row, now, w),
            None => b.apply_event(row, now, w),
        };
        if outcome == Outcome::Stored {
            self.seen.insert(&key);
            self.open.keys.insert(key);
        }
        outcome
    }
}

/// The tick: holds past their timeout are released, and what left the window forgotten.
fn expire_and_forget(b: &mut Book, now: i64, w: &mut Effects) -> Pending {
    b.expire(now, w);
    b.trim_some(now, crate::domain::book::FORGET_PER_TICK);
    Pending::Nothing
}

/// A top-up, as the answer the API gives.
fn top_up(
    b: &mut Book,
    business: &str,
    id: &str,
    amount: Decimal,
    now: i64,
    w: &mut Effects,
) -> Result<TopUpAnswer, String> {
    let applied = b.top_up(business, id, amount, now, w);
    applied.map_err(|e| e.to_string()).map(|a| TopUpAnswer {
        status: match a.status {
            tarifa_core::ledger::Status::Created => "created",
            tarifa_core::ledger::Status::Exists => "exists",
        },
        transfer: a.transfer.id.0,
    })
}

/// A commit task's result (a panic in it is a failed commit).
fn joined(r: Result<Result<(), String>, tokio::task::JoinError>) -> Result<(), String> {
    r.unwrap_or_else(|e| Err(format!("storage: the commit task failed: {e}")))
}

/// Answers a group whose commit returned; on failure, answers nobody and returns the message
/// and the group's commands (the caller rebuilds the book, then refuses them).
fn finish(
    f: InFlight,
    done: Result<(), String>,
    metrics: &Metrics,
) -> Result<(), (String, Vec<Pending>)> {
    match done {
        Ok(()) => {
            metrics.record_group(f.stored, f.started.elapsed());
            for p in f.pending {
                match p {
                    Pending::Ingest(reply, outcomes) => {
                        let _ = reply.send(Ok(outcomes));
                    }
                    Pending::DeadLetter(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                    Pending::TopUp(reply, answer) => {
                        let _ = reply.send(answer);
                    }
                    Pending::Reserve(reply, answer) => {
                        let _ = reply.send(*answer);
                    }
                    Pending::Recorded(reply, outcome) => {
                        let _ = reply.send(Ok(outcome));
                    }
                    Pending::Cancelled(reply) => {
                        let _ = reply.send(Ok(()));
                    }
                    Pending::Nothing => {}
                }
            }
            Ok(())
        }
        Err(message) => {
            tracing::error!(error = %message, "group commit failed; rebuilding the book from the database");
            Err((message, f.pending))
        }
    }
}

/// Answers a command with a refusal (a client that went away is not an error).
trait Refuse {
    fn refuse(self, message: &str);
}

impl<T> Refuse for oneshot::Sender<Result<T, String>> {
    fn refuse(self, message: &str) {
        let _gone = self.send(Err(message.to_string()));
    }
}

fn fail_pending(pending: Vec<Pending>, message: &str) {
    for p in pending {
        match p {
            Pending::Ingest(reply, _) => reply.refuse(message),
            Pending::DeadLetter(reply) => reply.refuse(message),
            Pending::TopUp(reply, _) => reply.refuse(message),
            Pending::Reserve(reply, _) => reply.refuse(message),
            Pending::Recorded(reply, _) => reply.refuse(message),
            Pending::Cancelled(reply) => reply.refuse(message),
            Pending::Nothing => {}
        }
    }
}

/// Replaces the book with one rebuilt from the database (after a failed commit), then refuses
/// `failed`, the commands whose effects the book lost: a refused client that reads the book
/// next (a wallet, a quote) does not see them. If the database cannot be read, they are refused
/// at once (not kept waiting through an outage) and the rebuild is retried.
async fn rebuild(book: &RwLock<Book>, reload: &Loader, message: &str, failed: Vec<Pending>) {
    tracing::error!(error = %message, "rebuilding the book from the database");
    let mut failed = Some(failed);
    loop {
        match reload().await {
            Ok(fresh) => {
                *book.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                break;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot rebuild the book; retrying");
                if let Some(failed) = failed.take() {
                    fail_pending(failed, message);
                }
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
    if let Some(failed) = failed {
        fail_pending(failed, message);
    }
}

fn fail_group(group: &mut Vec<Command>, message: &str) {
    for c in group.drain(..) {
        match c {
            Command::Ingest { reply, .. } => reply.refuse(message),
            Command::DeadLetter { reply, .. } => reply.refuse(message),
            Command::TopUp { reply, .. } => reply.refuse(message),
            Command::Reserve { reply, .. } => reply.refuse(message),
            Command::RecordReserved { reply, .. } => reply.refuse(message),
            Command::CancelReservation { reply, .. } => reply.refuse(message),
            Command::Expire | Command::KnownKeys(_) | Command::KnownKeysComplete => {}
        }
    }
}

/// Reads every stored key, page by page, and hands them to the writer, then says it is done: the
/// writer starts at once (looking every key up in the database) instead of waiting for a scan
/// that grows with the store. Keys the writer stores meanwhile it adds itself, so when
/// [`Command::KnownKeysComplete`] arrives the filter holds every stored key. A failed read is
/// retried; the writer stays correct (and slower) until the scan is done. It holds the writer's
/// queue weakly, so a shutdown does not wait for the scan.
pub async fn load_seen_keys(store: Store, writer: mpsc::WeakSender<Command>) {
    let send = |command: Command| {
        let writer = writer.upgrade();
        async move {
            match writer {
                Some(w) => w.send(command).await.is_ok(),
                None => false,
            }
        }
    };
    const PAGE: i64 = 50_000;
    let mut after = 0;
    loop {
        match store.keys_after(after, PAGE).await {
            Ok((keys, last)) => {
                let last_page = (keys.len() as i64) < PAGE;
                after = last;
                if !send(Command::KnownKeys(keys)).await {
                    return;
                }
                if last_page {
                    send(Command::KnownKeysComplete).await;
                    tracing::info!("filter of stored event keys complete");
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reading stored keys failed; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
    }
}

/// Boxed future types for the reload callback.
pub mod futures_lite {
    use crate::domain::book::Book;
    use std::future::Future;
    use std::pin::Pin;
    pub type BoxedBook = Pin<Box<dyn Future<Output = anyhow::Result<Book>> + Send>>;
}

#[cfg(test)]
mod tests {
    use super::Grouping;
    use std::time::Duration;

    const GROUPING: Grouping = Grouping {
        max_group: 100,
        linger: Duration::from_millis(3),
    };

    #[test]
    fn a_lone_command_is_committed_at_once() {
        assert!(GROUPING.due(1, Duration::ZERO, 0));
        assert!(GROUPING.due(1, Duration::ZERO, 1));
    }

    #[test]
    fn under_load_a_group_lingers_until_full_or_old_enough() {
        assert!(!GROUPING.due(5, Duration::from_millis(1), 40));
        assert!(GROUPING.due(5, Duration::from_millis(3), 40));
        assert!(GROUPING.due(100, Duration::ZERO, 40));
    }

    #[test]
    fn no_linger_commits_at_once() {
        let at_once = Grouping {
            linger: Duration::ZERO,
            ..GROUPING
        };
        assert!(at_once.due(5, Duration::ZERO, 40));
    }
}
