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
    Nothing,
}

pub type Loader = Arc<dyn Fn() -> futures_lite::BoxedBook + Send + Sync>;

/// Runs until every sender is dropped.
pub async fn run(
    mut rx: mpsc::Receiver<Command>,
    book: Arc<RwLock<Book>>,
    store: Store,
    max_group: usize,
    metrics: Arc<Metrics>,
    reload: Loader,
) {
    let mut group: Vec<Command> = Vec::with_capacity(max_group);
    while let Some(first) = rx.recv().await {
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
                _ => Vec::new(),
            })
            .collect();
        let existing = match store.existing_keys(&keys).await {
            Ok(e) => e,
            Err(e) => {
                fail_group(&mut group, &format!("storage: {e:#}"));
                continue;
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
        {
            let mut b = book.write().unwrap_or_else(|p| p.into_inner());
            let mut seen: HashSet<String> = HashSet::new();
            for command in group.drain(..) {
                pending.push(match command {
                    Command::Ingest { rows, reply } => {
                        let mut outcomes = Vec::with_capacity(rows.len());
                        for mut row in rows {
                            if existing.contains(&row.key) || seen.contains(&row.key) {
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
                });
            }
        }
        let stored = w.events.len();
        match store.commit(&w).await {
            Ok(()) => {
                metrics.record_group(stored as u64, started.elapsed());
                for p in pending {
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
                        Pending::Nothing => {}
                    }
                }
            }
            Err(e) => {
                let message = format!("storage: {e:#}");
                tracing::error!(error = %message, "group commit failed; rebuilding the book from the database");
                for p in pending {
                    match p {
                        Pending::Ingest(reply, _) => {
                            let _ = reply.send(Err(message.clone()));
                        }
                        Pending::DeadLetter(reply) => {
                            let _ = reply.send(Err(message.clone()));
                        }
                        Pending::TopUp(reply, _) => {
                            let _ = reply.send(Err(message.clone()));
                        }
                        Pending::Nothing => {}
                    }
                }
                loop {
                    match reload().await {
                        Ok(fresh) => {
                            *book.write().unwrap_or_else(|p| p.into_inner()) = fresh;
                            break;
                        }
                        Err(e) => {
                            tracing::error!(error = %format!("{e:#}"), "cannot rebuild the book; retrying");
                            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                        }
                    }
                }
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
