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

pub mod codec;
mod commit;
mod lookups;
mod migrations;
mod reads;
pub mod recovery;

pub(crate) use lookups::{lookup_query, LOOKUP_CHUNK};

use anyhow::{Context, Result};
use sqlx::any::AnyPoolOptions;
use sqlx::Row;

pub use crate::domain::effects::{Charge, Effects, NewEvent};

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
/// the slow seconds recorded in `docs/benchmarks-history.md`. Asking the kernel to write each 2 MB it
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

/// An outgoing webhook waiting for delivery (its columns read by name).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct AlertRow {
    pub seq: i64,
    pub business: String,
    pub url: String,
    pub payload: String,
    pub attempts: i64,
    pub next_at: i64,
}

impl Committer {
    /// The group commits' own connections (see [`Committer`]).
    async fn connect(dialect: Dialect, url: &str) -> Result<Committer> {
        Ok(match dialect {
            Dialect::Sqlite => Committer::Sqlite {
                commits: connect(url, 1, Some(SQLITE_COMMIT_SETUP)).await?,
                checkpoints: connect(url, 1, None).await?,
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
                    .connect(url)
                    .await
                    .with_context(|| format!("cannot open the database {}", redact(url)))?,
            ),
        })
    }
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
        let commits = Committer::connect(dialect, &url).await?;
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

    /// `SELECT 1`, for `/healthz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").fetch_one(&self.pool).await?;
        Ok(())
    }

    /// A JSON array of `items`, bound as one parameter and read back as rows (by `json_each`
    /// on SQLite, `json_array_elements_text` on PostgreSQL): one statement text whatever the
    /// number of items, so it stays prepared.
    pub(super) fn json_list(items: &[&str]) -> String {
        serde_json::to_string(items).unwrap_or_else(|_| "[]".into())
    }

    pub(super) fn param(&self, n: usize) -> String {
        match self.dialect {
            Dialect::Sqlite => "?".into(),
            Dialect::Postgres => format!("${n}"),
        }
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
    use super::lookups::{
        POSTGRES_BUSINESSES_OF, POSTGRES_EXISTING_KEYS, SQLITE_BUSINESSES_OF, SQLITE_EXISTING_KEYS,
    };
    use super::migrations::{migrations, SQLITE_LOOKUP_VERSION};
    use super::*;
    use sqlx::AssertSqlSafe;

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
            for migration in migrations(Dialect::Postgres) {
                let version = migration.version;
                if version >= 6 {
                    break;
                }
                for s in migration.statements().unwrap() {
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
                    POSTGRES_BUSINESSES_OF.to_string(),
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
            for migration in migrations(Dialect::Sqlite) {
                let version = migration.version;
                if version >= SQLITE_LOOKUP_VERSION {
                    break;
                }
                for s in migration.statements().unwrap() {
                    sqlx::raw_sql(AssertSqlSafe(s))
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
        let row = NewEvent {
            key: crate::domain::ids::EventKey::outbound("new"),
            business: "shop".into(),
            kind: crate::domain::effects::EventKind::Outbound,
            message: "new".into(),
            at: 4,
            received_at: 4,
            line: "{}".into(),
            event: std::sync::Arc::new(tarifa_core::input::Event::Ignored),
        };
        // An id of any length is one short token (its hash); ids that differ only at their
        // end are told apart.
        let long = |c: &str| format!("out:{}{c}", "x".repeat(40_000));
        let long_row = NewEvent {
            key: crate::domain::ids::EventKey::stored(long("a")),
            message: long("a")[4..].to_string(),
            ..row.clone()
        };
        store
            .commit(&Effects {
                events: vec![row, long_row],
                ..Effects::default()
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
