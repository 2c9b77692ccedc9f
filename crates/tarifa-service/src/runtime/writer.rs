//! The single writer: every change to the book goes through one task that takes commands from a
//! queue, applies a whole group of them in memory, stores the group in one transaction (group
//! commit) and only then answers. One commit per group, not per event, is what makes durable
//! acknowledgement fast (see `shared/docs/ENGINEERING.md` §2); one writer is what makes the
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
    mut rx: mpsc::Receiver<Command>,
    book: Arc<RwLock<Book>>,
    store: Store,
    grouping: Grouping,
    metrics: Arc<Metrics>,
    reload: Loader,
    mut seen: SeenKeys,
) {
    // Until the loader has read every key stored before the start, the filter is incomplete and
    // every key is looked up in the database.
    let mut seen_complete = false;
    let Grouping { max_group, linger } = grouping;
    let mut batch: Vec<Command> = Vec::with_capacity(max_group);
    let mut open = Open::new();
    let mut in_flight: Option<InFlight> = None;
    let mut closed = false;
    // Commands in the last group committed: more than one means commands are arriving together,
    // and a group that waits a little gathers more of them.
    let mut last_group = 0;
    loop {
        let due = || {
            let age = open.started.map(|s| s.elapsed()).unwrap_or_default();
            closed || grouping.due(open.commands, age, last_group)
        };
        if in_flight.is_none() && open.commands > 0 && due() {
            last_group = open.commands;
            in_flight = Some(start_commit(
                &store,
                &metrics,
                std::mem::replace(&mut open, Open::new()),
            ));
        }
        let first = match in_flight.as_mut() {
            None if closed => break,
            None if open.commands > 0 => {
                // Lingering (not due yet): more commands, or the end of the wait.
                let deadline = open.started.unwrap_or_else(std::time::Instant::now) + linger;
                tokio::select! {
                    c = rx.recv() => c,
                    _ = tokio::time::sleep_until(deadline.into()) => continue,
                }
            }
            None => rx.recv().await,
            Some(f) => {
                let room = open.commands < max_group && !closed;
                tokio::select! {
                    biased;
                    done = &mut f.commit => {
                        let f = in_flight.take().expect("a group is in flight");
                        if let Err((message, mut failed)) = finish(f, joined(done), &metrics) {
                            failed.append(&mut std::mem::replace(&mut open, Open::new()).pending);
                            rebuild(&book, &reload, &message, failed).await;
                        }
                        continue;
                    }
                    c = rx.recv(), if room => c,
                }
            }
        };
        let Some(first) = first else {
            closed = true;
            continue;
        };
        batch.push(first);
        while open.commands + batch.len() < max_group {
            match rx.try_recv() {
                Ok(c) => batch.push(c),
                Err(_) => break,
            }
        }
        let applying = std::time::Instant::now();
        open.started.get_or_insert(applying);
        open.commands += batch.len();
        let stored_before = |key: &str| {
            open.keys.contains(key) || in_flight.as_ref().is_some_and(|f| f.keys.contains(key))
        };
        // Which events are stored already (a retry from Meta or from the business): only keys
        // that the filter of stored keys may contain are looked up.
        let keys: Vec<(&str, &str)> = batch
            .iter()
            .flat_map(|c| match c {
                Command::Ingest { rows, .. } => rows.iter().map(NewEvent::lookup).collect(),
                Command::RecordReserved { row, .. } => vec![row.lookup()],
                _ => Vec::new(),
            })
            .filter(|(k, _)| !stored_before(k) && (!seen_complete || seen.may_contain(k)))
            .collect();
        let existing = if keys.is_empty() {
            HashSet::new()
        } else {
            metrics.key_lookups.fetch_add(1, Relaxed);
            metrics
                .key_lookup_keys
                .fetch_add(keys.len() as u64, Relaxed);
            match store.existing_keys(&keys).await {
                Ok(e) => e,
                Err(e) => {
                    open.commands -= batch.len();
                    fail_group(&mut batch, &format!("storage: {e:#}"));
                    continue;
                }
            }
        };
        // Statuses whose message (and so business) only the database knows.
        let unknown: Vec<String> = {
            let b = book.read().unwrap_or_else(|p| p.into_inner());
            batch
                .iter()
                .flat_map(|c| match c {
                    Command::Ingest { rows, .. } => rows
                        .iter()
                        .filter(|r| r.business.is_empty() && b.business_of(&r.message).is_none())
                        .map(|r| r.message.clone())
                        .collect(),
                    _ => Vec::new(),
                })
                .collect()
        };
        let owners = if unknown.is_empty() {
            Vec::new()
        } else {
            let refs: Vec<&str> = unknown.iter().map(String::as_str).collect();
            store.businesses_of(&refs).await.unwrap_or_default()
        };
        drop(keys);

        let now = crate::clock::now();
        let mut b = book.write().unwrap_or_else(|p| p.into_inner());
        let w = &mut open.w;
        for command in batch.drain(..) {
            open.pending.push(match command {
                Command::Ingest { rows, reply } => {
                    let mut outcomes = Vec::with_capacity(rows.len());
                    for mut row in rows {
                        let key = row.key.as_str();
                        let duplicate = existing.contains(key)
                            || open.keys.contains(key)
                            || in_flight.as_ref().is_some_and(|f| f.keys.contains(key));
                        if duplicate {
                            outcomes.push(Outcome::Duplicate);
                            continue;
                        }
                        let key = row.key.as_str().to_string();
                        if row.business.is_empty() {
                            row.business = b
                                .business_of(&row.message)
                                .map(str::to_string)
                                .or_else(|| {
                                    owners
                                        .iter()
                                        .find(|(m, _)| *m == row.message)
                                        .map(|(_, b)| b.clone())
                                })
                                .unwrap_or_default();
                        }
                        let outcome = b.apply_event(row, now, w);
                        if outcome == Outcome::Stored {
                            seen.insert(key.as_str());
                            open.keys.insert(key.as_str().to_string());
                        }
                        outcomes.push(outcome);
                    }
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
                } => {
                    let answer = b
                        .top_up(&business, &id, amount, now, w)
                        .map(|a| TopUpAnswer {
                            status: match a.status {
                                tarifa_core::ledger::Status::Created => "created",
                                tarifa_core::ledger::Status::Exists => "exists",
                            },
                            transfer: a.transfer.id.0,
                        });
                    Pending::TopUp(reply, answer)
                }
                Command::Expire => {
                    b.expire(now, w);
                    b.trim_some(now, crate::domain::book::FORGET_PER_TICK);
                    Pending::Nothing
                }
                Command::Reserve {
                    planned,
                    at,
                    reservation,
                    timeout_secs,
                    reply,
                } => {
                    let answer = b.reserve(&planned, &reservation, at, now, timeout_secs, w);
                    Pending::Reserve(reply, Box::new(answer))
                }
                Command::RecordReserved {
                    reservation,
                    row,
                    reply,
                } => {
                    let duplicate = existing.contains(row.key.as_str())
                        || open.keys.contains(row.key.as_str())
                        || in_flight
                            .as_ref()
                            .is_some_and(|f| f.keys.contains(row.key.as_str()));
                    let outcome = if duplicate {
                        Outcome::Duplicate
                    } else {
                        let key = row.key.clone();
                        let outcome = b.record_reserved(&reservation, row, now, w);
                        if outcome == Outcome::Stored {
                            seen.insert(key.as_str());
                            open.keys.insert(key.as_str().to_string());
                        }
                        outcome
                    };
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
                    keys.iter().for_each(|k| seen.insert(k));
                    Pending::Nothing
                }
                Command::KnownKeysComplete => {
                    seen_complete = true;
                    // The count first: whoever reads "complete" reads the full count too.
                    metrics.seen_keys.store(seen.len() as u64, Relaxed);
                    metrics.seen_keys_complete.store(1, Release);
                    Pending::Nothing
                }
            });
        }
        drop(b);
        metrics.seen_keys.store(seen.len() as u64, Relaxed);
        metrics.apply_seconds.observe(applying.elapsed());
    }
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

fn fail_pending(pending: Vec<Pending>, message: &str) {
    for p in pending {
        match p {
            Pending::Ingest(reply, _) => {
                let _ = reply.send(Err(message.to_string()));
            }
            Pending::DeadLetter(reply) => {
                let _ = reply.send(Err(message.to_string()));
            }
            Pending::TopUp(reply, _) => {
                let _ = reply.send(Err(message.to_string()));
            }
            Pending::Reserve(reply, _) => {
                let _ = reply.send(Err(message.to_string()));
            }
            Pending::Recorded(reply, _) => {
                let _ = reply.send(Err(message.to_string()));
            }
            Pending::Cancelled(reply) => {
                let _ = reply.send(Err(message.to_string()));
            }
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
            Command::Ingest { reply, .. } => {
                let _ = reply.send(Err(message.to_string()));
            }
            Command::DeadLetter { reply, .. } => {
                let _ = reply.send(Err(message.to_string()));
            }
            Command::TopUp { reply, .. } => {
                let _ = reply.send(Err(message.to_string()));
            }
            Command::Reserve { reply, .. } => {
                let _ = reply.send(Err(message.to_string()));
            }
            Command::RecordReserved { reply, .. } => {
                let _ = reply.send(Err(message.to_string()));
            }
            Command::CancelReservation { reply, .. } => {
                let _ = reply.send(Err(message.to_string()));
            }
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
