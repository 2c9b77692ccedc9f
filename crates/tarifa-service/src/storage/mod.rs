//! Durable storage: SQLite (the default, a file) or PostgreSQL, through one `sqlx::Any` pool.
//!
//! Values are portable on purpose: integers (instants as Unix seconds, sequence numbers), text
//! (ids, decimal amounts written as strings, JSON). Each dialect has its own migration list;
//! placeholders are written per dialect (`?` for SQLite, `$n` for PostgreSQL).
//!
//! The write path is one transaction per group of commands ([`Store::commit`]): the events, the
//! ledger operations, the charges and the alerts they caused are stored together or not at all,
//! so an acknowledged event always has its effects and an unacknowledged one has none. A group's
//! rows travel in a fixed number of parameters, whatever the group's size, so the statement text
//! never changes (prepared once) and a group costs one trip to the database: on SQLite one JSON
//! array per table, read by `INSERT … SELECT … FROM jsonb_each(?)`s inside `BEGIN … COMMIT`;
//! on PostgreSQL one typed array per column (native driver, binary protocol), read by one
//! data-modifying `WITH` over `unnest`.
//!
//! Events are found by key and by message, and charges by message, through b-tree indexes of
//! 64-bit hashes of the ids on PostgreSQL (see `POSTGRES_HASHED_LOOKUPS`) and through FTS5
//! indexes on SQLite, whose write-ahead log would otherwise write a page for every random key
//! (see `SQLITE_LOOKUP_INDEXES`). Neither keeps a unique index of ids: the writer makes keys
//! unique.

pub mod recovery;

use anyhow::{Context, Result};
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{AssertSqlSafe, Row};
use std::collections::HashSet;

pub use crate::domain::effects::{ChargeRow, EventRow, WriteSet};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A database.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: sqlx::AnyPool,
    /// For the writer's look-ups by key (duplicates, owners of messages): on PostgreSQL its own
    /// connections, which plan each statement with its parameters (a generic plan cached while
    /// `events` was empty, a sequential scan, would stay in use as the table grows) and never
    /// compile one to machine code (a look-up of a few index entries takes well under a
    /// millisecond; the planner, which expects 100 ids in a JSON list, would start LLVM for
    /// 200 ms); the same pool as `pool` on SQLite.
    lookups: sqlx::AnyPool,
    /// The group commits' own connection (see [`Committer`]).
    commits: Committer,
    /// SQLite: what the background checkpointer did (see [`checkpoint_in_background`]).
    wal_checkpoints: std::sync::Arc<WalCheckpoints>,
    pub dialect: Dialect,
}

/// SQLite's background checkpoints, for `/metrics`.
#[derive(Debug, Default)]
struct WalCheckpoints {
    /// Checkpoints run.
    pub runs: std::sync::atomic::AtomicU64,
    /// Frames in the write-ahead log at the last one.
    pub wal_frames: std::sync::atomic::AtomicU64,
}

/// SQLite: how often the background checkpointer copies new WAL frames into the database.
const SQLITE_CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(20);

/// SQLite: the committing connection's settings (see [`Committer`]). `wal_autocheckpoint` is the
/// WAL size (in frames, one page each) at which it runs a checkpoint itself, after which the WAL
/// starts over: 10,000 frames, 40 MiB. The background checkpointer has usually copied all but
/// the last few milliseconds of them by then, so the commit that runs it pays for little.
const SQLITE_COMMIT_SETUP: &str = "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 10000";

/// PostgreSQL: the committing connection's settings (see [`Committer`]). `backend_flush_after`:
/// the backend that commits the groups is also the one that evicts the buffers they dirtied
/// (about 28 MB/s of table pages at 20,000 events/s), and by default it leaves them in the
/// kernel's page cache, which writes them out once they are 30 s old (`vm.dirty_expire_centisecs`),
/// 300–400 MB in one second, while every commit's WAL flush waits behind that on the same disk:
/// the slow seconds of `BENCHMARKS.md` (session 10). Asking the kernel to write each 2 MB it
/// evicts (PostgreSQL's `sync_file_range`, the most it allows) keeps the page cache's share small
/// and the writes steady. A setting of this session only; the server's own stays as it is.
const POSTGRES_COMMIT_SETUP: &str = "SET backend_flush_after = '2MB'";

/// The connection that group commits go through: one of their own, apart from the readers'.
#[derive(Clone)]
enum Committer {
    /// SQLite: one connection, the only one that writes events, whose statement journals stay
    /// in memory (`temp_store = MEMORY`). A group's `INSERT … SELECT`s call functions, so
    /// SQLite keeps a copy of every page each of them changes, to undo that statement alone;
    /// past 64 KiB it wrote those copies to a temporary file: a third of the server's disk
    /// writes at 15,000 events/s, since ids such as Meta's wamids put every event's index entry
    /// on a page of its own.
    Sqlite {
        commits: sqlx::AnyPool,
        /// The background checkpointer's connection.
        checkpoints: sqlx::AnyPool,
    },
    /// PostgreSQL, on the native driver, so each table's rows travel as typed arrays in the
    /// binary protocol (see [`Store::commit_postgres`]).
    Postgres(sqlx::PgPool),
}

/// An outgoing webhook waiting for delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AlertRow {
    pub seq: i64,
    pub business: String,
    pub url: String,
    pub payload: String,
    pub attempts: i64,
    pub next_at: i64,
}

const SQLITE: &[&str] = &[
    "CREATE TABLE events (seq INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT NOT NULL UNIQUE, \
     business TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL, \
     received_at BIGINT NOT NULL, line TEXT NOT NULL)",
    "CREATE INDEX events_business_at ON events (business, at)",
    "CREATE INDEX events_message ON events (message)",
    "CREATE TABLE dead_letters (seq INTEGER PRIMARY KEY AUTOINCREMENT, received_at BIGINT NOT NULL, \
     source TEXT NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE ledger_ops (seq INTEGER PRIMARY KEY AUTOINCREMENT, at BIGINT NOT NULL, op TEXT NOT NULL)",
    "CREATE TABLE charges (message TEXT PRIMARY KEY, business TEXT NOT NULL, at BIGINT NOT NULL, \
     pricing_type TEXT NOT NULL, category TEXT NOT NULL, rule TEXT NOT NULL, amount TEXT NOT NULL, \
     currency TEXT NOT NULL, captured TEXT NOT NULL, uncollected TEXT NOT NULL, counters TEXT NOT NULL)",
    "CREATE INDEX charges_business_at ON charges (business, at)",
    "CREATE TABLE optouts (business TEXT NOT NULL, user_id TEXT NOT NULL, at BIGINT NOT NULL, \
     PRIMARY KEY (business, user_id))",
    "CREATE TABLE alerts (seq INTEGER PRIMARY KEY AUTOINCREMENT, business TEXT NOT NULL, url TEXT NOT NULL, \
     payload TEXT NOT NULL, attempts BIGINT NOT NULL, next_at BIGINT NOT NULL, state TEXT NOT NULL, \
     last_error TEXT NOT NULL)",
];

const POSTGRES: &[&str] = &[
    "CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE, \
     business TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL, \
     received_at BIGINT NOT NULL, line TEXT NOT NULL)",
    "CREATE INDEX events_business_at ON events (business, at)",
    "CREATE INDEX events_message ON events (message)",
    "CREATE TABLE dead_letters (seq BIGSERIAL PRIMARY KEY, received_at BIGINT NOT NULL, \
     source TEXT NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL)",
    "CREATE TABLE ledger_ops (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, op TEXT NOT NULL)",
    "CREATE TABLE charges (message TEXT PRIMARY KEY, business TEXT NOT NULL, at BIGINT NOT NULL, \
     pricing_type TEXT NOT NULL, category TEXT NOT NULL, rule TEXT NOT NULL, amount TEXT NOT NULL, \
     currency TEXT NOT NULL, captured TEXT NOT NULL, uncollected TEXT NOT NULL, counters TEXT NOT NULL)",
    "CREATE INDEX charges_business_at ON charges (business, at)",
    "CREATE TABLE optouts (business TEXT NOT NULL, user_id TEXT NOT NULL, at BIGINT NOT NULL, \
     PRIMARY KEY (business, user_id))",
    "CREATE TABLE alerts (seq BIGSERIAL PRIMARY KEY, business TEXT NOT NULL, url TEXT NOT NULL, \
     payload TEXT NOT NULL, attempts BIGINT NOT NULL, next_at BIGINT NOT NULL, state TEXT NOT NULL, \
     last_error TEXT NOT NULL)",
];

/// PostgreSQL: identifiers (keys, message ids, business ids) compare byte by byte. With the
/// database's collation (often `en_US.UTF-8` or, before PostgreSQL 17, a libc `C.UTF-8`), every
/// comparison in these random-key indexes goes through the locale's `strcoll`. SQLite compares
/// bytes already (`BINARY`).
const POSTGRES_BYTEWISE_KEYS: &[&str] = &[
    "ALTER TABLE events ALTER COLUMN key TYPE TEXT COLLATE \"C\", \
     ALTER COLUMN business TYPE TEXT COLLATE \"C\", ALTER COLUMN message TYPE TEXT COLLATE \"C\"",
    "ALTER TABLE charges ALTER COLUMN message TYPE TEXT COLLATE \"C\", \
     ALTER COLUMN business TYPE TEXT COLLATE \"C\"",
];

/// Both backends: a message's events were found through the unique index of keys instead (on
/// PostgreSQL until [`POSTGRES_HASHED_LOOKUPS`]); every event was inserted into this index too,
/// at a random place.
const DROP_EVENTS_MESSAGE_INDEX: &[&str] = &["DROP INDEX IF EXISTS events_message"];

/// SQLite: events and charges are found by key and by message through full-text indexes
/// (FTS5, contentless) instead of b-tree indexes, and `events.key` and `charges.message` lose
/// their `UNIQUE` (both tables are rebuilt; `seq` keeps every row's number).
///
/// Why: SQLite's write-ahead log holds whole pages, and keys such as Meta's wamids are random, so
/// each event put its key on a 4 KiB page of its own, and each charge its message on another:
/// about 8 KiB written to the log per delivered message, and again by the checkpoint. An FTS5
/// index is a log-structured merge tree kept in SQLite's own tables: a commit writes its new
/// entries as one small sorted segment, and segments are merged in the background of later
/// commits, so an entry costs tens of bytes, not a page.
///
/// Each row has one document whose rowid is the row's `seq`, of tokens (see [`lookup_token`])
/// for its key (events) and its message id (events with a message, and charges): 64-bit hashes
/// in hexadecimal, so any id is exactly one short token of the `ascii` tokenizer, whatever its
/// characters, case or length. Look-ups verify the row's own column, so a match (or a rare hash
/// collision) stands for the exact id only. The rows stored before this migration get their
/// documents from [`Store::index_stored_rows`] (SQL has no such hash).
///
/// Idempotency stays exact without `UNIQUE`: the writer is the one that stores events, and it
/// stores a key only after proving it new (its filter of stored keys, a look-up of the maybes,
/// and the keys of the groups in flight: `writer::run`), as it must anyway, since a duplicate
/// must not reach the book either. A charge is written once per message by the book (a settled
/// message is never priced again, and its ledger transfers have ids of their own). PostgreSQL's
/// log holds row changes, so it kept both unique indexes, until they outgrew its buffers (see
/// [`POSTGRES_HASHED_LOOKUPS`]).
const SQLITE_LOOKUP_INDEXES: &[&str] = &[
    "CREATE TABLE events_v4 (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, business TEXT NOT NULL, \
     kind TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL, received_at BIGINT NOT NULL, \
     line TEXT NOT NULL)",
    "INSERT INTO events_v4 (seq, key, business, kind, message, at, received_at, line) \
     SELECT seq, key, business, kind, message, at, received_at, line FROM events ORDER BY seq",
    "DROP TABLE events",
    "ALTER TABLE events_v4 RENAME TO events",
    "CREATE INDEX events_business_at ON events (business, at)",
    "CREATE VIRTUAL TABLE event_lookup USING fts5 (tokens, content = '', columnsize = 0, \
     detail = none, tokenize = 'ascii')",
    "CREATE TABLE charges_v4 (seq INTEGER PRIMARY KEY, message TEXT NOT NULL, \
     business TEXT NOT NULL, at BIGINT NOT NULL, pricing_type TEXT NOT NULL, \
     category TEXT NOT NULL, rule TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL, \
     captured TEXT NOT NULL, uncollected TEXT NOT NULL, counters TEXT NOT NULL)",
    "INSERT INTO charges_v4 (message, business, at, pricing_type, category, rule, amount, \
     currency, captured, uncollected, counters) \
     SELECT message, business, at, pricing_type, category, rule, amount, currency, captured, \
     uncollected, counters FROM charges ORDER BY rowid",
    "DROP TABLE charges",
    "ALTER TABLE charges_v4 RENAME TO charges",
    "CREATE INDEX charges_business_at ON charges (business, at)",
    "CREATE VIRTUAL TABLE charge_lookup USING fts5 (tokens, content = '', columnsize = 0, \
     detail = none, tokenize = 'ascii')",
];

/// The look-up token of an id: `prefix` (`k`: an event's key, `m`: a message id) and the
/// id's 64-bit XXH3 hash in hexadecimal (17 characters whatever the id).
pub(crate) fn lookup_token(prefix: char, id: &str) -> String {
    format!("{prefix}{:016x}", xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
}

/// The document of an event in `event_lookup`: its key's token, and its message's if it has one.
fn event_document(key: &str, message: &str) -> String {
    let mut document = lookup_token('k', key);
    if !message.is_empty() {
        document.push(' ');
        document.push_str(&lookup_token('m', message));
    }
    document
}

/// The full-text query that matches the documents of any of `ids` under `prefix` (`k`: keys,
/// `m`: messages) in an [`SQLITE_LOOKUP_INDEXES`] table: `kHASH OR kHASH …`.
pub(crate) fn lookup_query(prefix: char, ids: &[&str]) -> String {
    let tokens: Vec<String> = ids.iter().map(|id| lookup_token(prefix, id)).collect();
    tokens.join(" OR ")
}

/// SQLite: which keys of a JSON list (`?2`) are stored, through the documents of their tokens
/// (`?1`, see [`lookup_query`]).
const SQLITE_EXISTING_KEYS: &str = "SELECT key FROM events WHERE seq IN \
     (SELECT rowid FROM event_lookup WHERE event_lookup MATCH ?) \
     AND key IN (SELECT value FROM json_each(?))";

/// SQLite: the events that know the business of messages of a JSON list (`?2`), through the
/// documents of their tokens (`?1`), oldest first, each with whether it is the outbound record.
const SQLITE_BUSINESSES_OF: &str = "SELECT message, business, key = 'out:' || message \
     FROM events WHERE seq IN (SELECT rowid FROM event_lookup WHERE event_lookup MATCH ?) \
     AND message IN (SELECT value FROM json_each(?)) AND business <> '' ORDER BY seq";

/// PostgreSQL: the 64-bit hash an event is found by: of its message id (outbound records and
/// statuses), else of its key (see [`POSTGRES_HASHED_LOOKUPS`]). A macro, so that the index and
/// the queries that must match it are built from one text.
macro_rules! pg_event_lookup {
    ($table:literal) => {
        concat!(
            "hashtextextended(CASE WHEN ",
            $table,
            "message = '' THEN ",
            $table,
            "key ELSE ",
            $table,
            "message END, 0)"
        )
    };
}

/// PostgreSQL: which events of a JSON list of `[key, message]` pairs (`$1`) are stored, through
/// the entries of their hashes in `events_lookup`, then the rows' own keys.
///
/// One correlated subquery per pair, each a search of the index whatever the statistics: as a
/// join, PostgreSQL, with no statistics of the hashes yet (a new database, before its first
/// `ANALYZE`), expected 0.5 % of `events` per hash, hashed the pairs and scanned `events`
/// (200 ms at a million events). A `LIMIT 1` inside would invite the same: a scan expected to
/// stop early. Counting the few events of a hash has no such plan.
const POSTGRES_EXISTING_KEYS: &str = concat!(
    "SELECT q.pair->>0 FROM json_array_elements($1::json) AS q(pair) \
     WHERE (SELECT count(*) FROM events e WHERE ",
    pg_event_lookup!("e."),
    " = hashtextextended(CASE WHEN q.pair->>1 = '' THEN q.pair->>0 ELSE q.pair->>1 END, 0) \
     AND e.key = q.pair->>0) > 0"
);

/// Both backends: the start reads the events and charges of the last weeks (`at >= …`, see
/// `load_book`) through an index of their own instead of a scan of everything ever stored.
/// Live events and charges are timed about now, so their entries go to the index's right edge.
const AT_INDEXES: &[&str] = &[
    "CREATE INDEX events_at ON events (at)",
    "CREATE INDEX charges_at ON charges (at)",
];

/// PostgreSQL: events are found through one b-tree index of [`pg_event_lookup`] (the message's
/// hash for records and statuses, so a message's events share one entry), and charges through
/// one of their message's hash, instead of unique indexes of the ids; `events.key` and
/// `charges.message` lose their unique constraints, as on SQLite, and for the same reason
/// idempotency stays exact (see [`SQLITE_LOOKUP_INDEXES`]). Look-ups compare the row's own id
/// after the hash, so a rare collision matches nothing it should not.
///
/// Why: ids such as Meta's wamids are random, so each event put its key, and each charge its
/// message, at a random place of an index of 60 to 100 byte texts, compared byte by byte and
/// checked twice for `ON CONFLICT`. Past about 20 s of a 20,000 events/s load those indexes
/// outgrew PostgreSQL's default `shared_buffers` (128 MB), and the committing backend wrote out
/// 7,000 to 18,000 dirty buffers a second to make room (`BENCHMARKS.md`, session 10). An entry
/// of a hash takes 20 bytes, and `hashtextextended` is PostgreSQL's own (that of hash
/// partitioning), so rows stored before this migration are indexed by it too.
const POSTGRES_HASHED_LOOKUPS: &[&str] = &[
    "ALTER TABLE events DROP CONSTRAINT IF EXISTS events_key_key",
    concat!(
        "CREATE INDEX events_lookup ON events (",
        pg_event_lookup!(""),
        ")"
    ),
    "ALTER TABLE charges DROP CONSTRAINT IF EXISTS charges_pkey",
    "CREATE INDEX charges_lookup ON charges (hashtextextended(message, 0))",
];

/// The SQLite migration that adds [`SQLITE_LOOKUP_INDEXES`].
const SQLITE_LOOKUP_VERSION: i64 = 4;

/// Ids per full-text query of a look-up (the `OR` of their tokens).
pub(crate) const LOOKUP_CHUNK: usize = 500;

/// Each migration is one version: all its statements run in one transaction.
fn migrations(dialect: Dialect) -> Vec<(i64, &'static [&'static str])> {
    match dialect {
        Dialect::Sqlite => vec![
            (1, SQLITE),
            (2, recovery::SQLITE),
            (3, DROP_EVENTS_MESSAGE_INDEX),
            (SQLITE_LOOKUP_VERSION, SQLITE_LOOKUP_INDEXES),
            (5, AT_INDEXES),
        ],
        Dialect::Postgres => vec![
            (1, POSTGRES),
            (2, recovery::POSTGRES),
            (3, POSTGRES_BYTEWISE_KEYS),
            (4, DROP_EVENTS_MESSAGE_INDEX),
            (5, AT_INDEXES),
            (6, POSTGRES_HASHED_LOOKUPS),
        ],
    }
}

/// SQLite: a group's rows as one JSON array per table (events, ledger operations, charges,
/// opt-outs, alerts, dead letters), each row an array of its column values in the order of the
/// tables' `INSERT`s (events and charges end with their look-up documents): six arrays
/// whatever the group's size, so the statement is prepared once.
fn group_json(w: &WriteSet) -> Result<[String; 6]> {
    let json = |v: serde_json::Result<String>| v.context("serializing a group");
    let events = json(serde_json::to_string(
        &w.events
            .iter()
            .map(|e| {
                (
                    &e.key,
                    &e.business,
                    e.kind,
                    &e.message,
                    e.at,
                    e.received_at,
                    &e.line,
                    event_document(&e.key, &e.message),
                )
            })
            .collect::<Vec<_>>(),
    ))?;
    let charges = json(serde_json::to_string(
        &w.charges
            .iter()
            .map(|c| {
                (
                    &c.message,
                    &c.business,
                    c.at,
                    &c.pricing_type,
                    &c.category,
                    &c.rule,
                    &c.amount,
                    &c.currency,
                    &c.captured,
                    &c.uncollected,
                    &c.counters,
                    lookup_token('m', &c.message),
                )
            })
            .collect::<Vec<_>>(),
    ))?;
    Ok([
        events,
        json(serde_json::to_string(&w.ledger_ops))?,
        charges,
        json(serde_json::to_string(&w.optouts))?,
        json(serde_json::to_string(&w.alerts))?,
        json(serde_json::to_string(&w.dead_letters))?,
    ])
}

impl Store {
    /// Connects and runs the migrations that are not applied yet.
    pub async fn open(url: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let dialect = if url.starts_with("sqlite:") {
            Dialect::Sqlite
        } else {
            Dialect::Postgres
        };
        let url = match dialect {
            Dialect::Sqlite if !url.contains('?') => format!("{url}?mode=rwc"),
            _ => url.to_string(),
        };
        let pool = connect(
            &url,
            match dialect {
                Dialect::Sqlite => 4,
                Dialect::Postgres => 8,
            },
            None,
        )
        .await?;
        let lookups = match dialect {
            Dialect::Sqlite => pool.clone(),
            Dialect::Postgres => {
                connect(
                    &url,
                    2,
                    Some("SET plan_cache_mode = force_custom_plan; SET jit = off"),
                )
                .await?
            }
        };
        let commits = match dialect {
            Dialect::Sqlite => Committer::Sqlite {
                commits: connect(&url, 1, Some(SQLITE_COMMIT_SETUP)).await?,
                checkpoints: connect(&url, 1, None).await?,
            },
            Dialect::Postgres => Committer::Postgres(
                sqlx::postgres::PgPoolOptions::new()
                    .test_before_acquire(false)
                    .max_connections(2)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            sqlx::raw_sql(POSTGRES_COMMIT_SETUP).execute(conn).await?;
                            Ok(())
                        })
                    })
                    .connect(&url)
                    .await
                    .with_context(|| format!("cannot open the database {}", redact(&url)))?,
            ),
        };
        let wal_checkpoints = std::sync::Arc::new(WalCheckpoints::default());
        if let Committer::Sqlite { checkpoints, .. } = &commits {
            tokio::spawn(checkpoint_in_background(
                checkpoints.clone(),
                wal_checkpoints.clone(),
            ));
        }
        let store = Store {
            pool,
            lookups,
            commits,
            wal_checkpoints,
            dialect,
        };
        if dialect == Dialect::Sqlite {
            // WAL: readers (invoices, quotes' lookups) never block the writer. `synchronous` is
            // FULL by default: a commit is on disk when it returns.
            sqlx::raw_sql("PRAGMA journal_mode=WAL")
                .execute(&store.pool)
                .await?;
        }
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<()> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tarifa_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        for (version, statements) in migrations(self.dialect) {
            let mut tx = self.pool.begin().await?;
            let done = sqlx::query(AssertSqlSafe(format!(
                "SELECT version FROM tarifa_migrations WHERE version = {version}"
            )))
            .fetch_optional(&mut *tx)
            .await?;
            if done.is_some() {
                continue;
            }
            for s in statements {
                sqlx::raw_sql(AssertSqlSafe(*s))
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("migration {version}: {s}"))?;
            }
            if self.dialect == Dialect::Sqlite && version == SQLITE_LOOKUP_VERSION {
                Self::index_stored_rows(&mut tx)
                    .await
                    .with_context(|| format!("migration {version}: look-up documents"))?;
            }
            sqlx::query(AssertSqlSafe(format!(
                "INSERT INTO tarifa_migrations (version, applied_at) VALUES ({version}, {})",
                crate::clock::now()
            )))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
        }
        Ok(())
    }

    /// SQLite, migration 4: the look-up documents of the events and charges stored before it
    /// (see [`SQLITE_LOOKUP_INDEXES`]), a page of rows at a time, in the migration's transaction.
    async fn index_stored_rows(tx: &mut sqlx::Transaction<'_, sqlx::Any>) -> Result<()> {
        const PAGE: i64 = 10_000;
        /// A charge's document: its message's token.
        fn charge_document(_key: &str, message: &str) -> String {
            lookup_token('m', message)
        }
        type Document = fn(&str, &str) -> String;
        let tables: [(&str, &str, &str, Document); 2] = [
            ("events", "key", "event_lookup", event_document),
            ("charges", "''", "charge_lookup", charge_document),
        ];
        for (table, key, index, document) in tables {
            let mut after = 0_i64;
            loop {
                let rows = sqlx::query(AssertSqlSafe(format!(
                    "SELECT seq, {key}, message FROM {table} WHERE seq > ? ORDER BY seq LIMIT ?"
                )))
                .bind(after)
                .bind(PAGE)
                .fetch_all(&mut **tx)
                .await?;
                let mut documents = Vec::with_capacity(rows.len());
                for row in &rows {
                    let (seq, key, message): (i64, String, String) =
                        (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
                    after = seq;
                    documents.push((seq, document(&key, &message)));
                }
                sqlx::query(AssertSqlSafe(format!(
                    "INSERT INTO {index} (rowid, tokens) \
                     SELECT value->>0, value->>1 FROM json_each(?)"
                )))
                .bind(serde_json::to_string(&documents)?)
                .execute(&mut **tx)
                .await?;
                if (rows.len() as i64) < PAGE {
                    break;
                }
            }
        }
        Ok(())
    }

    /// `SELECT 1`, for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// A JSON array of `items`, bound as one parameter and read back as rows by
    /// [`Store::json_rows`]: one statement text whatever the number of items, so it stays
    /// prepared.
    fn json_list(items: &[&str]) -> String {
        serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
    }

    /// `SELECT` of the text values of the JSON array parameter `n`.
    fn json_rows(&self, n: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => "SELECT value FROM json_each(?)".into(),
            Dialect::Postgres => format!("SELECT json_array_elements_text(${n}::json) AS value"),
        }
    }

    /// Up to `page` stored idempotency keys of the events after sequence number `after`, in
    /// sequence order, with the last one's number (read along the primary key, so a page costs
    /// the same however many came before it).
    pub async fn keys_after(&self, after: i64, page: i64) -> Result<(Vec<String>, i64)> {
        let sql = format!(
            "SELECT seq, key FROM events WHERE seq > {} ORDER BY seq LIMIT {}",
            self.param(1),
            self.param(2)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(after)
            .bind(page)
            .fetch_all(&self.lookups)
            .await?;
        let mut last = after;
        let mut keys = Vec::with_capacity(rows.len());
        for row in &rows {
            last = row.try_get(0)?;
            keys.push(row.try_get::<String, _>(1)?);
        }
        Ok((keys, last))
    }

    /// The highest event sequence number: at least the number of stored events, read from the
    /// primary key at once (a `COUNT(*)` would scan).
    pub async fn last_event_seq(&self) -> Result<i64> {
        let row = sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM events")
            .fetch_one(&self.lookups)
            .await?;
        Ok(row.try_get(0)?)
    }

    /// Which of `events` (each its key and its message id, empty when it has none) are stored
    /// already, by key.
    pub async fn existing_keys(&self, events: &[(&str, &str)]) -> Result<HashSet<String>> {
        let mut found = HashSet::new();
        for chunk in events.chunks(LOOKUP_CHUNK) {
            let query = match self.dialect {
                // The documents of the keys' tokens, then the rows' own keys.
                Dialect::Sqlite => {
                    let keys: Vec<&str> = chunk.iter().map(|(key, _)| *key).collect();
                    sqlx::query(SQLITE_EXISTING_KEYS)
                        .bind(lookup_query('k', &keys))
                        .bind(Self::json_list(&keys))
                }
                // The entries of the events' hashes, then the rows' own keys.
                Dialect::Postgres => sqlx::query(POSTGRES_EXISTING_KEYS)
                    .bind(serde_json::to_string(chunk).context("serializing keys")?),
            };
            for row in query.fetch_all(&self.lookups).await? {
                found.insert(row.try_get::<String, _>(0)?);
            }
        }
        Ok(found)
    }

    /// The business of each message among `messages` that has a stored outbound record or a
    /// status that knows its business (the outbound record's, when both do).
    pub async fn businesses_of(&self, messages: &[&str]) -> Result<Vec<(String, String)>> {
        let mut messages = messages.to_vec();
        messages.sort_unstable();
        messages.dedup();
        let mut owners = Vec::new();
        for chunk in messages.chunks(LOOKUP_CHUNK) {
            match self.dialect {
                Dialect::Sqlite => owners.extend(self.sqlite_businesses_of(chunk).await?),
                Dialect::Postgres => {
                    let rows = sqlx::query(AssertSqlSafe(self.businesses_of_sql()))
                        .bind(Self::json_list(chunk))
                        .fetch_all(&self.lookups)
                        .await?;
                    for row in &rows {
                        if let Some(business) = row.try_get::<Option<String>, _>(1)? {
                            owners.push((row.try_get(0)?, business));
                        }
                    }
                }
            }
        }
        Ok(owners)
    }

    /// SQLite: the events of the messages' tokens (see [`SQLITE_LOOKUP_INDEXES`]), then, per
    /// message, the business of its outbound record or else of its first status that knows it.
    async fn sqlite_businesses_of(&self, messages: &[&str]) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(SQLITE_BUSINESSES_OF)
            .bind(lookup_query('m', messages))
            .bind(Self::json_list(messages))
            .fetch_all(&self.lookups)
            .await?;
        let mut owners: std::collections::BTreeMap<String, (String, bool)> = Default::default();
        for row in &rows {
            let (message, business, outbound): (String, String, bool) = (
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get::<i64, _>(2)? != 0,
            );
            let owner = owners
                .entry(message)
                .or_insert((business.clone(), outbound));
            if outbound && !owner.1 {
                *owner = (business, true);
            }
        }
        Ok(owners.into_iter().map(|(m, (b, _))| (m, b)).collect())
    }

    /// PostgreSQL: the statement of [`Store::businesses_of`] (the JSON list of ids is its one
    /// parameter): per id, the events of its hash's entry in `events_lookup`, the outbound
    /// record's business first, else the first status's that knows it. A correlated subquery
    /// keeps it on the index, one search per id (see [`POSTGRES_EXISTING_KEYS`]); its order
    /// cannot be read from any index, so no scan can stop early.
    fn businesses_of_sql(&self) -> String {
        format!(
            "SELECT m.value, (SELECT business FROM events \
               WHERE {} = hashtextextended(m.value, 0) AND message = m.value \
               AND business <> '' ORDER BY key = 'out:' || m.value DESC, seq LIMIT 1) \
             FROM ({}) AS m",
            pg_event_lookup!(""),
            self.json_rows(1)
        )
    }

    /// Writes one group in one transaction.
    pub async fn commit(&self, w: &WriteSet) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let pool = match &self.commits {
            Committer::Postgres(pool) => return Self::commit_postgres(pool, w).await,
            Committer::Sqlite { commits, .. } => commits,
        };
        // SQLite: the same JSON arrays, one statement per table in one query (one trip to the
        // connection's thread, one prepared text), inside one transaction. `jsonb_each` hands
        // each row over as a parsed (JSONB) array, so `->>` does not parse it again per column.
        // Events and charges are numbered here (the next numbers, in the group's order: the
        // only writer numbers them), so that each row's look-up document has its number (see
        // [`SQLITE_LOOKUP_INDEXES`]); their arrays are bound twice, once per statement (in a
        // query of several statements, sqlx takes the slots below a `?NNN` for positional
        // arguments, and the statements after it find theirs unbound).
        const SQL: &str = "\
            INSERT INTO event_lookup (rowid, tokens) \
              SELECT (SELECT coalesce(max(seq), 0) FROM events) + 1 + jsonb_each.key, \
                value->>7 \
              FROM jsonb_each(?); \
            INSERT INTO events (seq, key, business, kind, message, at, received_at, line) \
              SELECT (SELECT coalesce(max(seq), 0) FROM events) + 1 + jsonb_each.key, \
                value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6 \
              FROM jsonb_each(?) WHERE true ORDER BY jsonb_each.key; \
            INSERT INTO ledger_ops (at, op) \
              SELECT value->>0, value->>1 FROM jsonb_each(?) WHERE true ORDER BY jsonb_each.key; \
            INSERT INTO charge_lookup (rowid, tokens) \
              SELECT (SELECT coalesce(max(seq), 0) FROM charges) + 1 + jsonb_each.key, \
                value->>11 \
              FROM jsonb_each(?); \
            INSERT INTO charges (seq, message, business, at, pricing_type, category, rule, amount, \
                currency, captured, uncollected, counters) \
              SELECT (SELECT coalesce(max(seq), 0) FROM charges) + 1 + jsonb_each.key, \
                value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
                value->>7, value->>8, value->>9, value->>10 \
              FROM jsonb_each(?) WHERE true ORDER BY jsonb_each.key; \
            INSERT INTO optouts (business, user_id, at) \
              SELECT value->>0, value->>1, value->>2 FROM jsonb_each(?) WHERE true \
              ORDER BY jsonb_each.key ON CONFLICT (business, user_id) DO NOTHING; \
            INSERT INTO alerts (business, url, payload, attempts, next_at, state, last_error) \
              SELECT value->>0, value->>1, value->>2, 0, value->>3, 'pending', '' \
              FROM jsonb_each(?) WHERE true ORDER BY jsonb_each.key; \
            INSERT INTO dead_letters (received_at, source, reason, body) \
              SELECT value->>0, value->>1, value->>2, value->>3 \
              FROM jsonb_each(?) WHERE true ORDER BY jsonb_each.key";
        let [events, ledger_ops, charges, optouts, alerts, dead_letters] = group_json(w)?;
        let mut tx = pool.begin().await?;
        sqlx::query(SQL)
            .bind(events.clone())
            .bind(events)
            .bind(ledger_ops)
            .bind(charges.clone())
            .bind(charges)
            .bind(optouts)
            .bind(alerts)
            .bind(dead_letters)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL: the whole group as one statement (one round trip, one implicit transaction,
    /// committed with the server's `synchronous_commit` before it returns). Each column is one
    /// typed array parameter in the binary protocol (31 parameters whatever the group's size, so
    /// the statement is prepared once; no JSON to write, escape or parse on either side), turned
    /// back into rows by `unnest … WITH ORDINALITY` and inserted by a data-modifying `WITH` in
    /// their order, so ledger operations get their sequence numbers in the order applied.
    async fn commit_postgres(pool: &sqlx::PgPool, w: &WriteSet) -> Result<()> {
        const SQL: &str = "WITH \
            ev AS (INSERT INTO events (key, business, kind, message, at, received_at, line) \
              SELECT a, b, c, d, e, f, g FROM unnest($1::text[], $2::text[], $3::text[], \
                $4::text[], $5::int8[], $6::int8[], $7::text[]) WITH ORDINALITY AS t(a, b, c, d, e, f, g, n) \
              ORDER BY n), \
            lo AS (INSERT INTO ledger_ops (at, op) \
              SELECT a, b FROM unnest($8::int8[], $9::text[]) WITH ORDINALITY AS t(a, b, n) ORDER BY n), \
            ch AS (INSERT INTO charges (message, business, at, pricing_type, category, rule, \
                amount, currency, captured, uncollected, counters) \
              SELECT a, b, c, d, e, f, g, h, i, j, k FROM unnest($10::text[], $11::text[], \
                $12::int8[], $13::text[], $14::text[], $15::text[], $16::text[], $17::text[], \
                $18::text[], $19::text[], $20::text[]) WITH ORDINALITY AS t(a, b, c, d, e, f, g, h, i, j, k, n) \
              ORDER BY n), \
            oo AS (INSERT INTO optouts (business, user_id, at) \
              SELECT a, b, c FROM unnest($21::text[], $22::text[], $23::int8[]) WITH ORDINALITY AS t(a, b, c, n) \
              ORDER BY n ON CONFLICT (business, user_id) DO NOTHING), \
            al AS (INSERT INTO alerts (business, url, payload, attempts, next_at, state, last_error) \
              SELECT a, b, c, 0, d, 'pending', '' FROM unnest($24::text[], $25::text[], \
                $26::text[], $27::int8[]) WITH ORDINALITY AS t(a, b, c, d, n) ORDER BY n), \
            dl AS (INSERT INTO dead_letters (received_at, source, reason, body) \
              SELECT a, b, c, d FROM unnest($28::int8[], $29::text[], $30::text[], $31::text[]) \
                WITH ORDINALITY AS t(a, b, c, d, n) ORDER BY n) \
            SELECT 1";
        /// One column of `rows`, as the array bound to its parameter.
        fn column<'a, T: 'a, V: 'a>(rows: &'a [T], f: impl Fn(&'a T) -> V) -> Vec<V> {
            rows.iter().map(f).collect()
        }
        let (ev, ch) = (&w.events, &w.charges);
        sqlx::query(SQL)
            .bind(column(ev, |e| e.key.as_str()))
            .bind(column(ev, |e| e.business.as_str()))
            .bind(column(ev, |e| e.kind))
            .bind(column(ev, |e| e.message.as_str()))
            .bind(column(ev, |e| e.at))
            .bind(column(ev, |e| e.received_at))
            .bind(column(ev, |e| e.line.as_str()))
            .bind(column(&w.ledger_ops, |o| o.0))
            .bind(column(&w.ledger_ops, |o| o.1.as_str()))
            .bind(column(ch, |c| c.message.as_str()))
            .bind(column(ch, |c| c.business.as_str()))
            .bind(column(ch, |c| c.at))
            .bind(column(ch, |c| c.pricing_type.as_str()))
            .bind(column(ch, |c| c.category.as_str()))
            .bind(column(ch, |c| c.rule.as_str()))
            .bind(column(ch, |c| c.amount.as_str()))
            .bind(column(ch, |c| c.currency.as_str()))
            .bind(column(ch, |c| c.captured.as_str()))
            .bind(column(ch, |c| c.uncollected.as_str()))
            .bind(column(ch, |c| c.counters.as_str()))
            .bind(column(&w.optouts, |o| o.0.as_str()))
            .bind(column(&w.optouts, |o| o.1.as_str()))
            .bind(column(&w.optouts, |o| o.2))
            .bind(column(&w.alerts, |a| a.0.as_str()))
            .bind(column(&w.alerts, |a| a.1.as_str()))
            .bind(column(&w.alerts, |a| a.2.as_str()))
            .bind(column(&w.alerts, |a| a.3))
            .bind(column(&w.dead_letters, |d| d.0))
            .bind(column(&w.dead_letters, |d| d.1.as_str()))
            .bind(column(&w.dead_letters, |d| d.2.as_str()))
            .bind(column(&w.dead_letters, |d| d.3.as_str()))
            .execute(pool)
            .await?;
        Ok(())
    }

    /// Every ledger operation, in the order applied.
    pub async fn ledger_ops(&self) -> Result<Vec<(i64, String)>> {
        let rows = sqlx::query("SELECT at, op FROM ledger_ops ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// The statement of [`Store::events_since`] (read through the index `events_at`).
    fn events_since_sql(&self) -> String {
        format!(
            "SELECT seq, business, line FROM events WHERE at >= {}",
            self.param(1)
        )
    }

    /// The statement of [`Store::charges_since`] (read through the index `charges_at`).
    fn charges_since_sql(&self) -> String {
        format!(
            "SELECT message, business, at, pricing_type, category, rule, amount, currency, captured, uncollected, counters FROM charges WHERE at >= {}",
            self.param(1)
        )
    }

    /// Events at or after `since`, in arrival order: (business, line).
    pub async fn events_since(&self, since: i64) -> Result<Vec<(String, String)>> {
        // Sorted here, not by `ORDER BY seq`: with it, SQLite would rather scan the whole table
        // in `seq` order than read the index of `at` and sort.
        let rows = sqlx::query(AssertSqlSafe(self.events_since_sql()))
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        let mut events = rows
            .iter()
            .map(|r| Ok((r.try_get::<i64, _>(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect::<Result<Vec<(i64, String, String)>>>()?;
        events.sort_unstable_by_key(|e| e.0);
        Ok(events.into_iter().map(|(_, b, l)| (b, l)).collect())
    }

    /// The event lines of a business with `from <= at < to`, in arrival order.
    pub async fn business_events(&self, business: &str, from: i64, to: i64) -> Result<Vec<String>> {
        let sql = format!(
            "SELECT line FROM events WHERE business = {} AND at >= {} AND at < {} ORDER BY seq",
            self.param(1),
            self.param(2),
            self.param(3)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn param(&self, n: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => "?".into(),
            Dialect::Postgres => format!("${n}"),
        }
    }

    /// Charges priced at or after `since`.
    pub async fn charges_since(&self, since: i64) -> Result<Vec<ChargeRow>> {
        let rows = sqlx::query(AssertSqlSafe(self.charges_since_sql()))
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(charge_row).collect()
    }

    /// The priced messages of a business with `from <= at < to`.
    pub async fn business_charges(
        &self,
        business: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<ChargeRow>> {
        let sql = format!(
            "SELECT message, business, at, pricing_type, category, rule, amount, currency, captured, uncollected, counters FROM charges WHERE business = {} AND at >= {} AND at < {}",
            self.param(1),
            self.param(2),
            self.param(3)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(charge_row).collect()
    }

    pub async fn optouts(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query("SELECT business, user_id FROM optouts")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Counts, for tests and `/metrics`: (events, dead letters, ledger operations, charges).
    pub async fn counts(&self) -> Result<(i64, i64, i64, i64)> {
        let row = sqlx::query(
            "SELECT (SELECT COUNT(*) FROM events), (SELECT COUNT(*) FROM dead_letters), \
             (SELECT COUNT(*) FROM ledger_ops), (SELECT COUNT(*) FROM charges)",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
        ))
    }

    /// Alerts due for a delivery attempt.
    pub async fn due_alerts(&self, now: i64, limit: i64) -> Result<Vec<AlertRow>> {
        let sql = format!(
            "SELECT seq, business, url, payload, attempts, next_at FROM alerts WHERE state = 'pending' AND next_at <= {} ORDER BY seq LIMIT {}",
            self.param(1),
            self.param(2)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(AlertRow {
                    seq: r.try_get(0)?,
                    business: r.try_get(1)?,
                    url: r.try_get(2)?,
                    payload: r.try_get(3)?,
                    attempts: r.try_get(4)?,
                    next_at: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Records a delivery attempt of an alert: `state` is `pending` (retry at `next_at`),
    /// `delivered` or `abandoned`.
    pub async fn alert_attempted(
        &self,
        seq: i64,
        state: &str,
        attempts: i64,
        next_at: i64,
        error: &str,
    ) -> Result<()> {
        let sql = format!(
            "UPDATE alerts SET state = {}, attempts = {}, next_at = {}, last_error = {} WHERE seq = {}",
            self.param(1),
            self.param(2),
            self.param(3),
            self.param(4),
            self.param(5)
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(state)
            .bind(attempts)
            .bind(next_at)
            .bind(error)
            .bind(seq)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Alerts of a business: (state, attempts, payload).
    pub async fn alerts_of(&self, business: &str) -> Result<Vec<(String, i64, String)>> {
        let sql = format!(
            "SELECT state, attempts, payload FROM alerts WHERE business = {} ORDER BY seq",
            self.param(1)
        );
        let rows = sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
            .collect()
    }

    /// SQLite's background checkpoints so far and the frames in the write-ahead log at the
    /// last one; `None` on PostgreSQL.
    pub fn wal_checkpoints(&self) -> Option<(u64, u64)> {
        use std::sync::atomic::Ordering::Relaxed;
        (self.dialect == Dialect::Sqlite).then(|| {
            (
                self.wal_checkpoints.runs.load(Relaxed),
                self.wal_checkpoints.wal_frames.load(Relaxed),
            )
        })
    }

    pub async fn close(&self) {
        match &self.commits {
            Committer::Sqlite {
                commits,
                checkpoints,
            } => {
                checkpoints.close().await;
                commits.close().await;
            }
            Committer::Postgres(pool) => pool.close().await,
        }
        self.lookups.close().await;
        self.pool.close().await;
    }
}

/// A pool of at most `max` connections to `url`, each running `setup` (SQL) when it opens.
async fn connect(url: &str, max: u32, setup: Option<&'static str>) -> Result<sqlx::AnyPool> {
    let mut options = AnyPoolOptions::new()
        // No ping before each use (a round trip per group commit): a broken connection fails
        // the statement instead, which fails the group like any storage error.
        .test_before_acquire(false)
        .max_connections(max);
    if let Some(sql) = setup {
        options = options.after_connect(move |conn, _| {
            Box::pin(async move {
                sqlx::raw_sql(sql).execute(conn).await?;
                Ok(())
            })
        });
    }
    options
        .connect(url)
        .await
        .with_context(|| format!("cannot open the database {}", redact(url)))
}

/// SQLite: copies the WAL's new frames into the database every [`SQLITE_CHECKPOINT_EVERY`]
/// (`PASSIVE`: it never waits for, nor blocks, the commits), until its connection is closed.
///
/// Left to the committing connection alone, checkpoints run inside a commit, on the one thread
/// that writes: a commit waits while a thousand pages are copied and fsynced, and every group
/// behind it waits too. Done here, on a connection and thread of their own, the copying overlaps
/// the commits: at 20,000 events/s with Meta-shaped ids, the writer kept up with about 19,400
/// events/s instead of 15,200. The WAL still starts over when it reaches
/// 10,000 frames ([`SQLITE_COMMIT_SETUP`]).
async fn checkpoint_in_background(pool: sqlx::AnyPool, stats: std::sync::Arc<WalCheckpoints>) {
    use std::sync::atomic::Ordering::Relaxed;
    while !pool.is_closed() {
        tokio::time::sleep(SQLITE_CHECKPOINT_EVERY).await;
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .fetch_one(&pool)
            .await
        {
            Ok(row) => {
                stats.runs.fetch_add(1, Relaxed);
                let frames = row.try_get::<i64, _>(1).unwrap_or(0);
                stats.wal_frames.store(frames.max(0) as u64, Relaxed);
            }
            Err(_) if pool.is_closed() => break,
            Err(e) => tracing::warn!(error = %e, "background WAL checkpoint failed"),
        }
    }
}

fn charge_row(r: &AnyRow) -> Result<ChargeRow> {
    Ok(ChargeRow {
        message: r.try_get(0)?,
        business: r.try_get(1)?,
        at: r.try_get(2)?,
        pricing_type: r.try_get(3)?,
        category: r.try_get(4)?,
        rule: r.try_get(5)?,
        amount: r.try_get(6)?,
        currency: r.try_get(7)?,
        captured: r.try_get(8)?,
        uncollected: r.try_get(9)?,
        counters: r.try_get(10)?,
    })
}

/// A database URL without its password, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A statement on the `Any` driver, with the parameters bound so far.
    type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>;

    /// A new empty directory of this test process, named after `name`.
    fn empty_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A new PostgreSQL database named after `name` and this process, and the administrative
    /// URL to drop it with; `None` (and a printed note) when `TARIFA_TEST_DATABASE_URL` is unset.
    async fn fresh_postgres(name: &str) -> Option<(String, String, String)> {
        use sqlx::Connection;
        let Some(admin) = std::env::var("TARIFA_TEST_DATABASE_URL")
            .ok()
            .filter(|u| !u.is_empty())
        else {
            eprintln!("PostgreSQL test skipped: TARIFA_TEST_DATABASE_URL is not set");
            return None;
        };
        sqlx::any::install_default_drivers();
        let name = format!("tarifa_test_{name}_{}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
        for sql in [
            format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            format!("CREATE DATABASE {name}"),
        ] {
            sqlx::raw_sql(AssertSqlSafe(sql))
                .execute(&mut conn)
                .await
                .unwrap();
        }
        let url = format!("{}/{name}", &admin[..admin.rfind('/').unwrap()]);
        Some((admin, url, name))
    }

    /// Drops a database of [`fresh_postgres`].
    async fn drop_postgres(admin: &str, name: &str) {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(admin).await.unwrap();
        sqlx::raw_sql(AssertSqlSafe(format!("DROP DATABASE {name} WITH (FORCE)")))
            .execute(&mut conn)
            .await
            .unwrap();
    }

    /// PostgreSQL: the group commits' connection asks the kernel to write what it evicts as it
    /// goes (see [`POSTGRES_COMMIT_SETUP`]).
    #[tokio::test]
    async fn postgres_commits_flush_what_they_evict() {
        let Some((admin, url, name)) = fresh_postgres("flush").await else {
            return;
        };
        let store = Store::open(&url).await.unwrap();
        let Committer::Postgres(commits) = &store.commits else {
            panic!("a PostgreSQL store commits through the native driver");
        };
        let committer: String = sqlx::query_scalar("SHOW backend_flush_after")
            .fetch_one(commits)
            .await
            .unwrap();
        assert_eq!(committer, "2MB");
        store.close().await;
        drop_postgres(&admin, &name).await;
    }

    /// PostgreSQL: a database of the schema before the hashed look-ups (unique indexes of keys
    /// and of charged messages) keeps its events and charges, loses those unique indexes, and
    /// finds what it stored by key and by message afterwards; each look-up goes through the hash
    /// indexes, never a scan of the table, once the tables hold 50,000 rows.
    #[tokio::test]
    async fn postgres_migration_to_hashed_lookups_keeps_and_finds_what_was_stored() {
        use sqlx::Connection;
        let Some((admin, url, name)) = fresh_postgres("hashed").await else {
            return;
        };
        {
            let mut old = sqlx::PgConnection::connect(&url).await.unwrap();
            let mut script = String::from(
                "CREATE TABLE tarifa_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL);",
            );
            for (version, statements) in migrations(Dialect::Postgres) {
                if version >= 6 {
                    break;
                }
                for s in statements {
                    script.push_str(s);
                    script.push(';');
                }
                script.push_str(&format!(
                    "INSERT INTO tarifa_migrations VALUES ({version}, 0);"
                ));
            }
            script.push_str(
                "INSERT INTO events (key, business, kind, message, at, received_at, line) VALUES \
                 ('out:wamid.Ab+/=', 'shop', 'outbound', 'wamid.Ab+/=', 1, 1, '{}'), \
                 ('st:wamid.Ab+/=:sent:34', '', 'status', 'wamid.Ab+/=', 2, 2, '{}'), \
                 ('st:wamid.Cd:read:34', 'shop2', 'status', 'wamid.Cd', 2, 2, '{}'), \
                 ('in:é 1', 'shop', 'inbound', '', 3, 3, '{}'); \
                 INSERT INTO charges VALUES ('wamid.Ab+/=', 'shop', 1, 'regular', 'marketing', \
                 'D-3', '0.0702', 'EUR', '0.0702', '0', '[]')",
            );
            sqlx::raw_sql(AssertSqlSafe(script))
                .execute(&mut old)
                .await
                .unwrap();
        }
        let store = Store::open(&url).await.unwrap();
        let found = store
            .existing_keys(&[
                ("out:wamid.Ab+/=", "wamid.Ab+/="),
                ("st:wamid.Ab+/=:sent:34", "wamid.Ab+/="),
                ("st:wamid.Ab+/=:read:34", "wamid.Ab+/="),
                ("in:é 1", ""),
                ("in:é 2", ""),
            ])
            .await
            .unwrap();
        let mut found: Vec<String> = found.into_iter().collect();
        found.sort();
        assert_eq!(
            found,
            ["in:é 1", "out:wamid.Ab+/=", "st:wamid.Ab+/=:sent:34"]
        );
        let mut owners = store
            .businesses_of(&["wamid.Ab+/=", "wamid.Cd", "wamid.ab+/=", ""])
            .await
            .unwrap();
        owners.sort();
        assert_eq!(
            owners,
            [
                ("wamid.Ab+/=".to_string(), "shop".to_string()),
                ("wamid.Cd".to_string(), "shop2".to_string())
            ]
        );
        let recoveries = crate::storage::recovery::RecoveryStore {
            store: store.clone(),
        };
        assert_eq!(
            recoveries
                .charged(&["wamid.Ab+/=", "wamid.Ab+/=", "wamid.ab+/="])
                .await
                .unwrap(),
            [("wamid.Ab+/=".to_string(), "0.0702".to_string())]
        );

        let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
        let indexes: Vec<String> = sqlx::query_scalar(
            "SELECT indexname::text FROM pg_indexes WHERE tablename IN ('events', 'charges') \
             ORDER BY indexname",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        assert_eq!(
            indexes,
            [
                "charges_at",
                "charges_business_at",
                "charges_lookup",
                "events_at",
                "events_business_at",
                "events_lookup",
                "events_pkey"
            ]
        );
        // Enough rows for a scan to look costly, first without statistics of them (a new
        // database), then with.
        sqlx::raw_sql(
            "INSERT INTO events (key, business, kind, message, at, received_at, line) \
             SELECT 'st:m' || i || ':sent:1', 'shop', 'status', 'm' || i, i, i, '{}' \
             FROM generate_series(1, 50000) AS i; \
             INSERT INTO charges (message, business, at, pricing_type, category, rule, amount, \
               currency, captured, uncollected, counters) \
             SELECT 'm' || i, 'shop', i, 'regular', 'marketing', 'D-3', '0.0702', 'EUR', \
               '0.0702', '0', '[]' FROM generate_series(1, 50000) AS i",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        for analyzed in [false, true] {
            if analyzed {
                sqlx::raw_sql("ANALYZE events; ANALYZE charges")
                    .execute(&mut conn)
                    .await
                    .unwrap();
            }
            let lookups = [
                (
                    POSTGRES_EXISTING_KEYS.to_string(),
                    r#"[["in:é 1",""]]"#,
                    "events_lookup",
                ),
                (
                    store.businesses_of_sql(),
                    r#"["wamid.Cd"]"#,
                    "events_lookup",
                ),
                (
                    recoveries.postgres_charged_sql(1),
                    "wamid.Cd",
                    "charges_lookup",
                ),
            ];
            for (sql, parameter, index) in lookups {
                let plan: Vec<String> = sqlx::query_scalar(AssertSqlSafe(format!("EXPLAIN {sql}")))
                    .bind(parameter)
                    .fetch_all(&mut conn)
                    .await
                    .unwrap();
                let plan = plan.join("\n");
                assert!(plan.contains(index), "analyzed: {analyzed}\n{sql}\n{plan}");
                assert!(
                    !plan.contains("Seq Scan on"),
                    "analyzed: {analyzed}\n{sql}\n{plan}"
                );
            }
        }

        drop(conn);
        store.close().await;
        drop_postgres(&admin, &name).await;
    }

    /// A database of the schema before the look-up indexes keeps every event and charge, with
    /// their numbers, and finds them by key and by message after the migration; new events are
    /// numbered after the old ones.
    #[tokio::test]
    async fn sqlite_migration_to_lookup_indexes_keeps_and_finds_what_was_stored() {
        let dir = empty_dir("tarifa-mig");
        let url = format!("sqlite://{}/t.db?mode=rwc", dir.display());
        sqlx::any::install_default_drivers();
        {
            let pool = connect(&url, 1, None).await.unwrap();
            for (version, statements) in migrations(Dialect::Sqlite) {
                if version >= SQLITE_LOOKUP_VERSION {
                    break;
                }
                for s in statements {
                    sqlx::raw_sql(AssertSqlSafe(*s))
                        .execute(&pool)
                        .await
                        .unwrap();
                }
                sqlx::query(AssertSqlSafe(format!(
                    "CREATE TABLE IF NOT EXISTS tarifa_migrations (version BIGINT PRIMARY KEY, \
                     applied_at BIGINT NOT NULL); \
                     INSERT INTO tarifa_migrations VALUES ({version}, 0)"
                )))
                .execute(&pool)
                .await
                .unwrap();
            }
            sqlx::raw_sql(
                "INSERT INTO events (seq, key, business, kind, message, at, received_at, line) VALUES \
                 (5, 'out:wamid.Ab+/=', 'shop', 'outbound', 'wamid.Ab+/=', 1, 1, '{}'), \
                 (9, 'st:wamid.Ab+/=:sent:34', '', 'status', 'wamid.Ab+/=', 2, 2, '{}'), \
                 (12, 'in:é 1', 'shop', 'inbound', '', 3, 3, '{}'); \
                 INSERT INTO charges VALUES ('wamid.Ab+/=', 'shop', 1, 'regular', 'marketing', \
                 'D-3', '0.0702', 'EUR', '0.0702', '0', '[]')",
            )
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        let store = Store::open(&url).await.unwrap();
        let keys = [
            ("out:wamid.Ab+/=", "wamid.Ab+/="),
            ("st:wamid.Ab+/=:sent:34", "wamid.Ab+/="),
            ("in:é 1", ""),
            ("out:wamid.ab+/=", "wamid.ab+/="),
        ];
        let mut found: Vec<String> = store
            .existing_keys(&keys)
            .await
            .unwrap()
            .into_iter()
            .collect();
        found.sort();
        assert_eq!(
            found,
            ["in:é 1", "out:wamid.Ab+/=", "st:wamid.Ab+/=:sent:34"]
        );
        assert_eq!(
            store
                .businesses_of(&["wamid.Ab+/=", "wamid.ab+/="])
                .await
                .unwrap(),
            [("wamid.Ab+/=".to_string(), "shop".to_string())]
        );
        assert_eq!(
            store.business_charges("shop", 0, 10).await.unwrap().len(),
            1
        );
        let recoveries = crate::storage::recovery::RecoveryStore {
            store: store.clone(),
        };
        assert_eq!(
            recoveries
                .charged(&["wamid.Ab+/=", "wamid.ab+/="])
                .await
                .unwrap(),
            [("wamid.Ab+/=".to_string(), "0.0702".to_string())]
        );
        assert_eq!(store.last_event_seq().await.unwrap(), 12);
        let (stored, last) = store.keys_after(5, 10).await.unwrap();
        assert_eq!((stored.len(), last), (2, 12));
        let row = EventRow {
            key: "out:new".into(),
            business: "shop".into(),
            kind: "outbound",
            message: "new".into(),
            at: 4,
            received_at: 4,
            line: "{}".into(),
            event: std::sync::Arc::new(tarifa_core::input::Event::Ignored),
        };
        // An id of any length is one short token (its hash); ids that differ only at their
        // end are told apart.
        let long = |c: &str| format!("out:{}{c}", "x".repeat(40_000));
        let long_row = EventRow {
            key: long("a"),
            message: long("a")[4..].to_string(),
            ..row.clone()
        };
        store
            .commit(&WriteSet {
                events: vec![row, long_row],
                ..WriteSet::default()
            })
            .await
            .unwrap();
        assert_eq!(store.last_event_seq().await.unwrap(), 14);
        let found = store
            .existing_keys(&[(&long("a"), &long("a")[4..]), (&long("b"), &long("b")[4..])])
            .await
            .unwrap();
        assert_eq!(found.into_iter().collect::<Vec<_>>(), [long("a")]);
        assert_eq!(
            store.businesses_of(&["new"]).await.unwrap(),
            [("new".to_string(), "shop".to_string())]
        );
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// SQLite finds events by key and by message through the look-up index and then by row
    /// number, never by a scan of `events` (there is no other index on either column).
    #[tokio::test]
    async fn lookups_go_through_the_lookup_index_and_commits_journal_in_memory() {
        let dir = empty_dir("tarifa-plan");
        let url = format!("sqlite://{}/t.db", dir.display());
        // Opened twice: `EXPLAIN` reports from the schema its connection read last, and the
        // first opening's connections read it before the migrations rebuilt `events` (a real
        // statement notices the change and is prepared again).
        Store::open(&url).await.unwrap().close().await;
        let store = Store::open(&url).await.unwrap();
        // The plan of `sql`, one detail per step, its parameters bound by `bind`.
        let plan = |sql: &str, bind: fn(AnyQuery<'_>) -> AnyQuery<'_>| {
            let query = bind(sqlx::query(AssertSqlSafe(format!(
                "EXPLAIN QUERY PLAN {sql}"
            ))));
            async {
                let rows = query.fetch_all(&store.pool).await.unwrap();
                rows.iter()
                    .map(|r| r.get::<String, _>(3))
                    .collect::<Vec<String>>()
            }
        };
        for sql in [SQLITE_EXISTING_KEYS, SQLITE_BUSINESSES_OF] {
            let details = plan(sql, |q| q.bind("k00").bind("[]")).await;
            let on = |table: &str| -> Vec<&String> {
                details.iter().filter(|d| d.contains(table)).collect()
            };
            assert_eq!(
                on("events"),
                ["SEARCH events USING INTEGER PRIMARY KEY (rowid=?)"],
                "{details:?}"
            );
            assert_eq!(on("event_lookup").len(), 1, "{details:?}");
            assert!(
                on("event_lookup")[0].contains("VIRTUAL TABLE INDEX"),
                "{details:?}"
            );
        }
        // The start reads recent events and charges through their indexes on `at`.
        for (sql, index) in [
            (
                store.events_since_sql(),
                "SEARCH events USING INDEX events_at (at>?)",
            ),
            (
                store.charges_since_sql(),
                "SEARCH charges USING INDEX charges_at (at>?)",
            ),
        ] {
            let details = plan(&sql, |q| q.bind(0_i64)).await;
            assert_eq!(details[0], index, "{details:?}");
        }
        // The group commits' connection keeps its statement journals in memory.
        let Committer::Sqlite { commits, .. } = &store.commits else {
            panic!("a SQLite store commits through SQLite");
        };
        let temp_store: i64 = sqlx::query("PRAGMA temp_store")
            .fetch_one(commits)
            .await
            .unwrap()
            .get(0);
        assert_eq!(temp_store, 2, "temp_store = MEMORY");
        store.close().await;
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
