//! The schema, as numbered migrations per dialect: each version runs in one transaction and is
//! recorded in `tarifa_migrations`, so a database of any earlier release is brought up to date at
//! start.
//!
//! Each migration is a file of SQL, `migrations/<dialect>/NNNN_<name>.sql`, compiled in with
//! `include_str!`; the comments at the top of each file say why it exists. `NNNN` is its version,
//! the number recorded in `tarifa_migrations`. Each dialect numbers its own migrations, and the
//! numbers are those that earlier releases recorded (they kept the statements in Rust lists), so
//! the two sequences differ from 3 on:
//!
//! | version | SQLite                                            | PostgreSQL                    |
//! |---------|---------------------------------------------------|-------------------------------|
//! | 1       | the base tables                                   | the base tables               |
//! | 2       | sales recovery                                    | sales recovery                |
//! | 3       | no index of `events.message`                      | identifiers compare bytewise  |
//! | 4       | FTS5 look-up indexes (and a step in Rust)         | no index of `events.message`  |
//! | 5       | indexes of `at`                                   | indexes of `at`               |
//! | 6       |                                                   | hashed look-up indexes        |
//!
//! A released file is never renumbered nor changed (a database that recorded its version would
//! not run it again): a change of the schema is a new file with the next version of its dialect.
//!
//! A file is split into statements by one rule, without parsing SQL: a statement ends at a line
//! whose last character (trailing blanks aside) is `;`, and is sent without that `;`. Blank lines
//! and lines starting with `--` between statements are left out (a `--` line inside a statement
//! is sent with it, as the comment it is). So no line inside a statement may end with `;` (a
//! string literal or a trigger's body over several lines would be cut there), and text after the
//! last statement's `;` is an error. The statements of a file run in order, in the migration's
//! transaction.

use super::lookups::{event_document, lookup_token};
use super::{Dialect, Store};
use anyhow::{bail, Context, Result};
use sqlx::AssertSqlSafe;

/// A migration: the version it is recorded as and its file (under `migrations/`).
#[derive(Clone, Copy, Debug)]
pub(super) struct Migration {
    pub version: i64,
    pub file: &'static str,
    pub sql: &'static str,
}

/// The [`Migration`] of a file under `migrations/`, recorded as `version`.
macro_rules! migration {
    ($version:literal, $file:literal) => {
        Migration {
            version: $version,
            file: $file,
            sql: include_str!(concat!("migrations/", $file)),
        }
    };
}

/// Both: events, dead letters, the ledger's log, charges, opt-outs, alerts.
const SQLITE_BASE: Migration = migration!(1, "sqlite/0001_base.sql");
const POSTGRES_BASE: Migration = migration!(1, "postgres/0001_base.sql");

/// Both: the tables of sales recovery (see [`super::recovery`]).
const SQLITE_RECOVERY: Migration = migration!(2, "sqlite/0002_recovery.sql");
const POSTGRES_RECOVERY: Migration = migration!(2, "postgres/0002_recovery.sql");

/// PostgreSQL: keys, message ids and business ids compare byte by byte (`COLLATE "C"`).
const POSTGRES_BYTEWISE_KEYS: Migration = migration!(3, "postgres/0003_bytewise_keys.sql");

/// Both: no index of `events.message` (a message's events are found through other indexes).
const SQLITE_DROP_EVENTS_MESSAGE_INDEX: Migration =
    migration!(3, "sqlite/0003_drop_events_message_index.sql");
const POSTGRES_DROP_EVENTS_MESSAGE_INDEX: Migration =
    migration!(4, "postgres/0004_drop_events_message_index.sql");

/// SQLite: events and charges are found through FTS5 indexes of hashed ids, and lose their
/// unique indexes; [`Store::index_stored_rows`] indexes the rows stored before it.
pub(super) const SQLITE_LOOKUP_INDEXES: Migration = migration!(4, "sqlite/0004_lookup_indexes.sql");

/// The SQLite migration after whose statements [`Store::index_stored_rows`] runs.
pub(super) const SQLITE_LOOKUP_VERSION: i64 = SQLITE_LOOKUP_INDEXES.version;

/// Both: the start reads recent events and charges through indexes of `at`.
const SQLITE_AT_INDEXES: Migration = migration!(5, "sqlite/0005_at_indexes.sql");
const POSTGRES_AT_INDEXES: Migration = migration!(5, "postgres/0005_at_indexes.sql");

/// PostgreSQL: events and charges are found through b-tree indexes of 64-bit hashes of their
/// ids (the events' of `pg_event_lookup!("")`), and lose their unique constraints.
pub(super) const POSTGRES_HASHED_LOOKUPS: Migration =
    migration!(6, "postgres/0006_hashed_lookups.sql");

/// The migrations of a dialect, in the order they run.
pub(super) fn migrations(dialect: Dialect) -> &'static [Migration] {
    match dialect {
        Dialect::Sqlite => &[
            SQLITE_BASE,
            SQLITE_RECOVERY,
            SQLITE_DROP_EVENTS_MESSAGE_INDEX,
            SQLITE_LOOKUP_INDEXES,
            SQLITE_AT_INDEXES,
        ],
        Dialect::Postgres => &[
            POSTGRES_BASE,
            POSTGRES_RECOVERY,
            POSTGRES_BYTEWISE_KEYS,
            POSTGRES_DROP_EVENTS_MESSAGE_INDEX,
            POSTGRES_AT_INDEXES,
            POSTGRES_HASHED_LOOKUPS,
        ],
    }
}

impl Migration {
    /// The file's statements, by the rule of the module's docs.
    pub(super) fn statements(&self) -> Result<Vec<&'static str>> {
        split_statements(self.sql).with_context(|| format!("migration file {}", self.file))
    }
}

/// `sql`'s statements: each ends at a line that ends with `;` (see the module's docs).
fn split_statements(sql: &'static str) -> Result<Vec<&'static str>> {
    let mut statements = Vec::new();
    let (mut start, mut offset) = (None, 0);
    for line in sql.split_inclusive('\n') {
        let (here, text) = (offset, line.trim());
        offset += line.len();
        let comment = text.starts_with("--");
        if start.is_none() && (text.is_empty() || comment) {
            continue;
        }
        let begin = *start.get_or_insert(here);
        if !comment && text.ends_with(';') {
            let statement = sql[begin..offset].trim();
            statements.push(statement[..statement.len() - 1].trim_end());
            start = None;
        }
    }
    if let Some(begin) = start {
        bail!(
            "no line ending with ';' ends the statement {:?}",
            &sql[begin..]
        );
    }
    Ok(statements)
}

/// The page of stored rows (`seq`, the key of an event or `''` for a charge, the message id)
/// after a `seq`, of at most a number of rows.
#[derive(sqlx::FromRow)]
struct StoredRow {
    seq: i64,
    key: String,
    message: String,
}

/// The look-up document of a row of [`StoredRow`]: its key and its message id.
type Document = fn(&str, &str) -> String;

/// A charge's document: its message's token.
fn charge_document(_key: &str, message: &str) -> String {
    lookup_token('m', message)
}

/// SQLite, per table of [`SQLITE_LOOKUP_INDEXES`]: the statement that reads a page of its
/// [`StoredRow`]s (after `?1`, at most `?2`), the one that adds documents to its look-up index
/// (a JSON array of `[seq, document]`), and its rows' documents.
const STORED_ROWS: [(&str, &str, Document); 2] = [
    (
        "SELECT seq, key, message FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
        "INSERT INTO event_lookup (rowid, tokens) SELECT value->>0, value->>1 FROM json_each(?)",
        event_document,
    ),
    (
        "SELECT seq, '' AS key, message FROM charges WHERE seq > ? ORDER BY seq LIMIT ?",
        "INSERT INTO charge_lookup (rowid, tokens) SELECT value->>0, value->>1 FROM json_each(?)",
        charge_document,
    ),
];

impl Store {
    pub(super) async fn migrate(&self) -> Result<()> {
        sqlx::raw_sql(
            "CREATE TABLE IF NOT EXISTS tarifa_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)",
        )
        .execute(&self.pool)
        .await?;
        let applied = self.sql("SELECT version FROM tarifa_migrations WHERE version = ?");
        let record = self.sql("INSERT INTO tarifa_migrations (version, applied_at) VALUES (?, ?)");
        for migration in migrations(self.dialect) {
            let version = migration.version;
            let statements = migration.statements()?;
            let mut tx = self.pool.begin().await?;
            let done: Option<i64> = sqlx::query_scalar(AssertSqlSafe(applied.as_str()))
                .bind(version)
                .fetch_optional(&mut *tx)
                .await?;
            if done.is_some() {
                continue;
            }
            for s in statements {
                sqlx::raw_sql(AssertSqlSafe(s))
                    .execute(&mut *tx)
                    .await
                    .with_context(|| format!("migration {version} ({}): {s}", migration.file))?;
            }
            if self.dialect == Dialect::Sqlite && version == SQLITE_LOOKUP_VERSION {
                Self::index_stored_rows(&mut tx)
                    .await
                    .with_context(|| format!("migration {version}: look-up documents"))?;
            }
            sqlx::query(AssertSqlSafe(record.as_str()))
                .bind(version)
                .bind(crate::clock::now())
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
        for (select, insert, document) in STORED_ROWS {
            let mut after = 0_i64;
            loop {
                let rows: Vec<StoredRow> = sqlx::query_as(select)
                    .bind(after)
                    .bind(PAGE)
                    .fetch_all(&mut **tx)
                    .await?;
                let documents: Vec<(i64, String)> = rows
                    .iter()
                    .map(|r| (r.seq, document(&r.key, &r.message)))
                    .collect();
                after = rows.last().map_or(after, |r| r.seq);
                sqlx::query(insert)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_those_of_earlier_releases_and_their_files_numbers() {
        // What databases of earlier releases recorded: never renumbered.
        for (dialect, versions) in [
            (Dialect::Sqlite, vec![1, 2, 3, 4, 5]),
            (Dialect::Postgres, vec![1, 2, 3, 4, 5, 6]),
        ] {
            let list = migrations(dialect);
            assert_eq!(list.iter().map(|m| m.version).collect::<Vec<_>>(), versions);
            for m in list {
                let name = m.file.rsplit('/').next().unwrap();
                assert_eq!(name[..4].parse::<i64>().unwrap(), m.version, "{}", m.file);
                assert_eq!(&name[4..5], "_", "{}", m.file);
                let prefix = match dialect {
                    Dialect::Sqlite => "sqlite/",
                    Dialect::Postgres => "postgres/",
                };
                assert!(m.file.starts_with(prefix), "{}", m.file);
            }
        }
        assert_eq!(SQLITE_LOOKUP_VERSION, 4);
    }

    #[test]
    fn every_file_splits_into_statements() {
        for m in migrations(Dialect::Sqlite)
            .iter()
            .chain(migrations(Dialect::Postgres))
        {
            let statements = m.statements().unwrap();
            assert!(!statements.is_empty(), "{}", m.file);
            for s in statements {
                assert!(!s.is_empty() && !s.starts_with("--"), "{}: {s:?}", m.file);
                assert!(!s.ends_with(';'), "{}: {s:?}", m.file);
            }
        }
    }

    #[test]
    fn statements_end_at_lines_ending_with_a_semicolon() {
        let sql = "-- a comment; with a semicolon;\n\nCREATE TABLE a (x TEXT,\n  y TEXT);  \n\
                   -- between\nINSERT INTO a VALUES ('1;2', '3');\nDROP TABLE b;";
        assert_eq!(
            split_statements(sql).unwrap(),
            [
                "CREATE TABLE a (x TEXT,\n  y TEXT)",
                "INSERT INTO a VALUES ('1;2', '3')",
                "DROP TABLE b"
            ]
        );
        assert!(split_statements("DROP TABLE a;\nDROP TABLE b").is_err());
        assert_eq!(
            split_statements("DROP TABLE a; -- not the end\nDROP TABLE b;").unwrap(),
            ["DROP TABLE a; -- not the end\nDROP TABLE b"]
        );
    }

    /// The index of events' hashes is of the very expression the look-ups compare with, or
    /// PostgreSQL would not use it for them.
    #[test]
    fn the_hashed_lookup_index_is_of_the_lookups_expression() {
        let statements = POSTGRES_HASHED_LOOKUPS.statements().unwrap();
        let index = concat!(
            "CREATE INDEX events_lookup ON events (",
            pg_event_lookup!(""),
            ")"
        );
        assert!(statements.contains(&index), "{statements:#?}");
        assert!(super::super::lookups::POSTGRES_EXISTING_KEYS.contains(pg_event_lookup!("e.")));
    }
}
