//! Finding stored rows by id: the writer's duplicate check (keys), the owners of messages, and
//! the loader of the filter of stored keys. SQLite goes through FTS5 indexes of hashed ids,
//! PostgreSQL through b-tree indexes of 64-bit hashes (see `migrations`).

use super::{Dialect, Store};
use anyhow::{Context, Result};
use sqlx::AssertSqlSafe;
use std::collections::HashSet;

/// The look-up token of an id: `prefix` (`k`: an event's key, `m`: a message id) and the
/// id's 64-bit XXH3 hash in hexadecimal (17 characters whatever the id).
pub(crate) fn lookup_token(prefix: char, id: &str) -> String {
    format!("{prefix}{:016x}", xxhash_rust::xxh3::xxh3_64(id.as_bytes()))
}

/// The document of an event in `event_lookup`: its key's token, and its message's if it has one.
pub(super) fn event_document(key: &str, message: &str) -> String {
    let mut document = lookup_token('k', key);
    if !message.is_empty() {
        document.push(' ');
        document.push_str(&lookup_token('m', message));
    }
    document
}

/// The full-text query that matches the documents of any of `ids` under `prefix` (`k`: keys,
/// `m`: messages) in a table of SQLite's look-up indexes (`migrations/sqlite/0004_lookup_indexes.sql`):
/// `kHASH OR kHASH …`.
pub(crate) fn lookup_query(prefix: char, ids: &[&str]) -> String {
    let tokens: Vec<String> = ids.iter().map(|id| lookup_token(prefix, id)).collect();
    tokens.join(" OR ")
}

/// SQLite: which keys of a JSON list (`?2`) are stored, through the documents of their tokens
/// (`?1`, see [`lookup_query`]).
pub(super) const SQLITE_EXISTING_KEYS: &str = "SELECT key FROM events WHERE seq IN \
     (SELECT rowid FROM event_lookup WHERE event_lookup MATCH ?) \
     AND key IN (SELECT value FROM json_each(?))";

/// SQLite: the events that know the business of messages of a JSON list (`?2`), through the
/// documents of their tokens (`?1`), oldest first, each with whether it is the outbound record.
pub(super) const SQLITE_BUSINESSES_OF: &str = "SELECT message, business, \
     key = 'out:' || message AS outbound FROM events WHERE seq IN (SELECT rowid FROM event_lookup WHERE event_lookup MATCH ?) \
     AND message IN (SELECT value FROM json_each(?)) AND business <> '' ORDER BY seq";

/// PostgreSQL: which events of a JSON list of `[key, message]` pairs (`$1`) are stored, through
/// the entries of their hashes in `events_lookup`, then the rows' own keys.
///
/// One correlated subquery per pair, each a search of the index whatever the statistics: as a
/// join, PostgreSQL, with no statistics of the hashes yet (a new database, before its first
/// `ANALYZE`), expected 0.5 % of `events` per hash, hashed the pairs and scanned `events`
/// (200 ms at a million events). A `LIMIT 1` inside would invite the same: a scan expected to
/// stop early. Counting the few events of a hash has no such plan.
pub(super) const POSTGRES_EXISTING_KEYS: &str = concat!(
    "SELECT q.pair->>0 AS key FROM json_array_elements($1::json) AS q(pair) \
     WHERE (SELECT count(*) FROM events e WHERE ",
    pg_event_lookup!("e."),
    " = hashtextextended(CASE WHEN q.pair->>1 = '' THEN q.pair->>0 ELSE q.pair->>1 END, 0) \
     AND e.key = q.pair->>0) > 0"
);

/// PostgreSQL: the statement of [`Store::businesses_of`] (the JSON list of ids is its one
/// parameter): per id, the events of its hash's entry in `events_lookup`, the outbound record's
/// business first, else the first status's that knows it. A correlated subquery keeps it on the
/// index, one search per id (see [`POSTGRES_EXISTING_KEYS`]); its order cannot be read from any
/// index, so no scan can stop early.
pub(super) const POSTGRES_BUSINESSES_OF: &str = concat!(
    "SELECT m.value AS message, (SELECT business FROM events WHERE ",
    pg_event_lookup!(""),
    " = hashtextextended(m.value, 0) AND message = m.value \
     AND business <> '' ORDER BY key = 'out:' || m.value DESC, seq LIMIT 1) AS business \
     FROM (SELECT json_array_elements_text($1::json) AS value) AS m"
);

/// A stored event's key and sequence number.
#[derive(sqlx::FromRow)]
struct StoredKey {
    seq: i64,
    key: String,
}

/// A message and the business of one of its events ([`SQLITE_BUSINESSES_OF`]); `outbound`
/// is not 0 for its outbound record.
#[derive(sqlx::FromRow)]
struct SqliteOwner {
    message: String,
    business: String,
    outbound: i64,
}

/// A message and the business that [`POSTGRES_BUSINESSES_OF`] found for it, if any.
#[derive(sqlx::FromRow)]
struct PostgresOwner {
    message: String,
    business: Option<String>,
}

/// Ids per full-text query of a look-up (the `OR` of their tokens).
pub(crate) const LOOKUP_CHUNK: usize = 500;

impl Store {
    /// Up to `page` stored idempotency keys of the events after sequence number `after`, in
    /// sequence order, with the last one's number (read along the primary key, so a page costs
    /// the same however many came before it).
    pub async fn keys_after(&self, after: i64, page: i64) -> Result<(Vec<String>, i64)> {
        let sql = self.sql("SELECT seq, key FROM events WHERE seq > ? ORDER BY seq LIMIT ?");
        let rows: Vec<StoredKey> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(after)
            .bind(page)
            .fetch_all(&self.lookups)
            .await?;
        let last = rows.last().map_or(after, |r| r.seq);
        Ok((rows.into_iter().map(|r| r.key).collect(), last))
    }

    /// The highest event sequence number: at least the number of stored events, read from the
    /// primary key at once (a `COUNT(*)` would scan).
    pub async fn last_event_seq(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) AS seq FROM events")
                .fetch_one(&self.lookups)
                .await?,
        )
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
                    sqlx::query_scalar(SQLITE_EXISTING_KEYS)
                        .bind(lookup_query('k', &keys))
                        .bind(Self::json_list(&keys))
                }
                // The entries of the events' hashes, then the rows' own keys.
                Dialect::Postgres => sqlx::query_scalar(POSTGRES_EXISTING_KEYS)
                    .bind(serde_json::to_string(chunk).context("serializing keys")?),
            };
            found.extend(query.fetch_all(&self.lookups).await?);
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
                    let rows: Vec<PostgresOwner> = sqlx::query_as(POSTGRES_BUSINESSES_OF)
                        .bind(Self::json_list(chunk))
                        .fetch_all(&self.lookups)
                        .await?;
                    owners.extend(
                        rows.into_iter()
                            .filter_map(|r| Some((r.message, r.business?))),
                    );
                }
            }
        }
        Ok(owners)
    }

    /// SQLite: the events of the messages' tokens (see [`lookup_query`]), then, per
    /// message, the business of its outbound record or else of its first status that knows it.
    async fn sqlite_businesses_of(&self, messages: &[&str]) -> Result<Vec<(String, String)>> {
        let rows: Vec<SqliteOwner> = sqlx::query_as(SQLITE_BUSINESSES_OF)
            .bind(lookup_query('m', messages))
            .bind(Self::json_list(messages))
            .fetch_all(&self.lookups)
            .await?;
        let mut owners: std::collections::BTreeMap<String, (String, bool)> = Default::default();
        for row in rows {
            let (message, business, outbound) = (row.message, row.business, row.outbound != 0);
            let owner = owners
                .entry(message)
                .or_insert((business.clone(), outbound));
            if outbound && !owner.1 {
                *owner = (business, true);
            }
        }
        Ok(owners.into_iter().map(|(m, (b, _))| (m, b)).collect())
    }
}
