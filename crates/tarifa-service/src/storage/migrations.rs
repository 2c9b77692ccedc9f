//! The schema, as numbered migrations per dialect: each version runs in one transaction and is
//! recorded in `tarifa_migrations`, so a database of any earlier release is brought up to date at
//! start.

use super::lookups::{event_document, lookup_token};
use super::{Dialect, Store};
use anyhow::{Context, Result};
use sqlx::{AssertSqlSafe, Row};

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
pub(super) const SQLITE_LOOKUP_VERSION: i64 = 4;

/// Each migration is one version: all its statements run in one transaction.
pub(super) fn migrations(dialect: Dialect) -> Vec<(i64, &'static [&'static str])> {
    match dialect {
        Dialect::Sqlite => vec![
            (1, SQLITE),
            (2, super::recovery::SQLITE),
            (3, DROP_EVENTS_MESSAGE_INDEX),
            (SQLITE_LOOKUP_VERSION, SQLITE_LOOKUP_INDEXES),
            (5, AT_INDEXES),
        ],
        Dialect::Postgres => vec![
            (1, POSTGRES),
            (2, super::recovery::POSTGRES),
            (3, POSTGRES_BYTEWISE_KEYS),
            (4, DROP_EVENTS_MESSAGE_INDEX),
            (5, AT_INDEXES),
            (6, POSTGRES_HASHED_LOOKUPS),
        ],
    }
}

impl Store {
    pub(super) async fn migrate(&self) -> Result<()> {
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
}
