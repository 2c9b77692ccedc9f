//! The single writer: every change to the book goes through one task that takes commands from a
//! queue, applies a whole group of them in memory, stores the group in one transaction (group
//! commit) and only then answers. One commit per group, not per event, is what makes durable
//! acknowledgement fast (see `shared/docs/ENGINEERING.md` §2); one writer is what makes the
//! ledger's checks (no wallet below its floor) hold without database locks.
//!
//! If a commit fails, nobody in the group gets a positive answer and the book is rebuilt from the
//! database, so memory never keeps an effect the database does not have.

use crate::book::{Book, Outcome};
use crate::metrics::Metrics;
use crate::store::{EventRow, Store, WriteSet};
use rust_decimal::Decimal;
use std::collections::HashSet;
use std::sync::{Arc, RwLock};
use tokio::sync::{mpsc, oneshot};

/// A change asked of the book.
pub enum Command {
    /// New events; answered per row.
    Ingest {
        rows: Vec<EventRow>,
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
        planned: crate::book::Planned,
        /// When the message is sent (the scheduler's clock).
        at: i64,
        reservation: String,
        timeout_secs: i64,
        reply: oneshot::Sender<Result<crate::book::Quote, String>>,
    },
    /// The reserved message was sent: record it (see [`Book::record_reserved`]).
    RecordReserved {
        reservation: String,
        row: EventRow,
        reply: oneshot::Sender<Result<Outcome, String>>,
    },
    /// The reserved message was not sent.
    CancelReservation {
        business: String,
        reservation: String,
        reply: oneshot::Sender<Result<(), String>>,
    },
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
        oneshot::Sender<Result<crate::book::Quote, String>>,
        Box<Result<crate::book::Quote, String>>,
    ),
    Recorded(oneshot::Sender<Result<Outcome, String>>, Outcome),
    Cancelled(oneshot::Sender<Result<(), String>>),
    Nothing,
}

pub type Loader = Arc<dyn Fn() -> futures_lite::BoxedBook + Send + Sync>;

/// A group whose transaction is being committed while the next group is applied.
struct InFlight {
    commit: tokio::task::JoinHandle<Result<(), String>>,
    pending: Vec<Pending>,
    /// Idempotency keys of its events: stored once the commit returns, so the next group must
    /// treat them as stored already (the database does not show them yet).
    keys: HashSet<String>,
    stored: u64,
    started: std::time::Instant,
}

/// Runs until every sender is dropped.
///
/// Two groups overlap: while group N is being committed (by a task of its own, on its own
/// connection), group N+1 is read from the queue, checked for duplicates and applied to the
/// book; N+1's transaction starts only after N's has returned, so commits stay in order, and
/// each group is answered only after its own commit. If N's commit fails, N+1 was applied on
/// top of effects the database does not have: both groups get the error and the book is rebuilt
/// from the database, as for a single failed group.
pub async fn run(
    mut rx: mpsc::Receiver<Command>,
    book: Arc<RwLock<Book>>,
    store: Store,
    max_group: usize,
    metrics: Arc<Metrics>,
    reload: Loader,
) {
    let mut group: Vec<Command> = Vec::with_capacity(max_group);
    let mut in_flight: Option<InFlight> = None;
    loop {
        let first = match in_flight.as_mut() {
            None => rx.recv().await,
            Some(f) => {
                tokio::select! {
                    biased;
                    done = &mut f.commit => {
                        let f = in_flight.take().expect("a group is in flight");
                        if let Err(message) = finish(f, joined(done), &metrics) {
                            rebuild(&book, &reload, &message).await;
                        }
                        continue;
                    }
                    c = rx.recv() => c,
                }
            }
        };
        let Some(first) = first else { break };
        group.push(first);
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(c) => group.push(c),
                Err(_) => break,
            }
        }
        let started = std::time::Instant::now();
        let now = crate::clock::now();
        // Which events are stored already (a retry from Meta or from the business).
        let keys: Vec<&str> = group
            .iter()
            .flat_map(|c| match c {
                Command::Ingest { rows, .. } => rows.iter().map(|r| r.key.as_str()).collect(),
                Command::RecordReserved { row, .. } => vec![row.key.as_str()],
                _ => Vec::new(),
            })
            .collect();
        let existing = if keys.is_empty() {
            HashSet::new()
        } else {
            match store.existing_keys(&keys).await {
                Ok(e) => e,
                Err(e) => {
                    fail_group(&mut group, &format!("storage: {e:#}"));
                    continue;
                }
            }
        };
        // Statuses whose message (and so business) only the database knows.
        let unknown: Vec<String> = {
            let b = book.read().unwrap_or_else(|p| p.into_inner());
            group
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

        let mut w = WriteSet::default();
        let mut pending = Vec::with_capacity(group.len());
        // Stored by this group (and so duplicates later in it).
        let mut seen: HashSet<String> = HashSet::new();
        {
            let mut b = book.write().unwrap_or_else(|p| p.into_inner());
            let stored_before = |key: &str| {
                existing.contains(key) || in_flight.as_ref().is_some_and(|f| f.keys.contains(key))
            };
            for command in group.drain(..) {
                pending.push(match command {
                    Command::Ingest { rows, reply } => {
                        let mut outcomes = Vec::with_capacity(rows.len());
                        for mut row in rows {
                            if stored_before(&row.key) || seen.contains(&row.key) {
                                outcomes.push(Outcome::Duplicate);
                                continue;
                            }
                            let key = row.key.clone();
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
                            let outcome = b.apply_event(row, now, &mut w);
                            if outcome == Outcome::Stored {
                                seen.insert(key);
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
                        w.dead_letters.push((now, source, reason, body));
                        Pending::DeadLetter(reply)
                    }
                    Command::TopUp {
                        business,
                        id,
                        amount,
                        reply,
                    } => {
                        let answer =
                            b.top_up(&business, &id, amount, now, &mut w)
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
                        b.expire(now, &mut w);
                        b.trim(now);
                        Pending::Nothing
                    }
                    Command::Reserve {
                        planned,
                        at,
                        reservation,
                        timeout_secs,
                        reply,
                    } => {
                        let answer =
                            b.reserve(&planned, &reservation, at, now, timeout_secs, &mut w);
                        Pending::Reserve(reply, Box::new(answer))
                    }
                    Command::RecordReserved {
                        reservation,
                        row,
                        reply,
                    } => {
                        let outcome = if stored_before(&row.key) || seen.contains(&row.key) {
                            Outcome::Duplicate
                        } else {
                            let key = row.key.clone();
                            let outcome = b.record_reserved(&reservation, row, now, &mut w);
                            if outcome == Outcome::Stored {
                                seen.insert(key);
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
                        b.cancel_reservation(&business, &reservation, now, &mut w);
                        Pending::Cancelled(reply)
                    }
                });
            }
        }
        // Commits are in order: the previous group's must have returned before this one starts.
        if let Some(mut f) = in_flight.take() {
            let done = joined((&mut f.commit).await);
            if let Err(message) = finish(f, done, &metrics) {
                fail_pending(pending, &message);
                rebuild(&book, &reload, &message).await;
                continue;
            }
        }
        let stored = w.events.len() as u64;
        let store = store.clone();
        in_flight = Some(InFlight {
            commit: tokio::spawn(async move {
                store
                    .commit(&w)
                    .await
                    .map_err(|e| format!("storage: {e:#}"))
            }),
            pending,
            keys: seen,
            stored,
            started,
        });
    }
    if let Some(mut f) = in_flight.take() {
        let done = joined((&mut f.commit).await);
        if let Err(message) = finish(f, done, &metrics) {
            tracing::error!(error = %message, "the last group commit failed");
        }
    }
}

/// A commit task's result (a panic in it is a failed commit).
fn joined(r: Result<Result<(), String>, tokio::task::JoinError>) -> Result<(), String> {
    r.unwrap_or_else(|e| Err(format!("storage: the commit task failed: {e}")))
}

/// Answers a group whose commit returned; on failure, returns the message (the caller rebuilds
/// the book).
fn finish(f: InFlight, done: Result<(), String>, metrics: &Metrics) -> Result<(), String> {
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
            fail_pending(f.pending, &message);
            Err(message)
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

/// Replaces the book with one rebuilt from the database (after a failed commit).
async fn rebuild(book: &RwLock<Book>, reload: &Loader, message: &str) {
    tracing::error!(error = %message, "rebuilding the book from the database");
    loop {
        match reload().await {
            Ok(fresh) => {
                *book.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                return;
            }
            Err(e) => {
                tracing::error!(error = %format!("{e:#}"), "cannot rebuild the book; retrying");
                tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            }
        }
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
            Command::Expire => {}
        }
    }
}

/// Boxed future types for the reload callback.
pub mod futures_lite {
    use crate::book::Book;
    use std::future::Future;
    use std::pin::Pin;
    pub type BoxedBook = Pin<Box<dyn Future<Output = anyhow::Result<Book>> + Send>>;
}
