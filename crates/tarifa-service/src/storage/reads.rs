//! Reading back: the ledger's log, the recent events and charges (at start), a business's
//! events and charges of a period (invoices), opt-outs, alerts, counts.

use super::{codec, AlertRow, Charge, Dialect, Store};
use crate::domain::effects::LedgerEntry;
use anyhow::{Context, Result};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// An event's sequence number, business and line.
#[derive(sqlx::FromRow)]
pub(super) struct EventLine {
    pub seq: i64,
    pub business: String,
    pub line: String,
}

/// A stored opt-out: a business and a user.
#[derive(sqlx::FromRow)]
struct OptOutRow {
    business: String,
    user_id: String,
}

/// What [`Store::counts`] counts.
#[derive(sqlx::FromRow)]
struct Counts {
    events: i64,
    dead_letters: i64,
    ledger_ops: i64,
    charges: i64,
}

/// An alert's state, attempts and payload.
#[derive(sqlx::FromRow)]
struct AlertState {
    state: String,
    attempts: i64,
    payload: String,
}

/// A stored charge, its columns read by name and its values through the codec; an unreadable
/// value is an error naming the charge's message.
fn charge_row(r: &AnyRow) -> Result<Charge> {
    let message: String = r.try_get("message")?;
    let text = |column: &str| -> Result<String> { Ok(r.try_get(column)?) };
    let decoded = || -> Result<Charge> {
        Ok(Charge {
            business: text("business")?,
            at: r.try_get("at")?,
            pricing_type: codec::decode_pricing_type(&text("pricing_type")?)?,
            category: text("category")?,
            rule: text("rule")?,
            amount: codec::decode_decimal(&text("amount")?)?,
            currency: text("currency")?,
            captured: codec::decode_amount(&text("captured")?)?,
            uncollected: codec::decode_amount(&text("uncollected")?)?,
            counters: codec::decode_counters(&text("counters")?)?,
            message: message.clone(),
        })
    };
    decoded().with_context(|| format!("the stored charge of message {message:?}"))
}

impl Store {
    /// `sql`, written with `?` placeholders, in this store's dialect: as it is for SQLite,
    /// numbered `$1`, `$2`, … in order for PostgreSQL. The dialects' texts differ in their
    /// placeholders only: values are always bound, never written into a statement. (So no `?`
    /// may stand for anything else, such as PostgreSQL's JSON operators.)
    pub(super) fn sql(&self, sql: &str) -> String {
        match self.dialect {
            Dialect::Sqlite => sql.to_string(),
            Dialect::Postgres => {
                let mut out = String::with_capacity(sql.len() + 16);
                let mut n = 0;
                for c in sql.chars() {
                    if c == '?' {
                        n += 1;
                        out.push('$');
                        out.push_str(&n.to_string());
                    } else {
                        out.push(c);
                    }
                }
                out
            }
        }
    }

    /// Every ledger operation, in the order applied, with when it was applied; an unreadable
    /// one is an error naming its place in the log.
    pub async fn ledger_ops(&self) -> Result<Vec<LedgerEntry>> {
        let rows = sqlx::query("SELECT seq, at, op FROM ledger_ops ORDER BY seq")
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.try_get("seq")?;
                let op: String = r.try_get("op")?;
                Ok(LedgerEntry {
                    at: r.try_get("at")?,
                    op: codec::decode_ledger_op(&op)
                        .with_context(|| format!("ledger operation {seq}"))?,
                })
            })
            .collect()
    }

    /// The statement of [`Store::events_since`] (read through the index `events_at`).
    pub(super) fn events_since_sql(&self) -> String {
        self.sql("SELECT seq, business, line FROM events WHERE at >= ?")
    }

    /// The statement of [`Store::charges_since`] (read through the index `charges_at`).
    pub(super) fn charges_since_sql(&self) -> String {
        self.sql(
            "SELECT message, business, at, pricing_type, category, rule, amount, currency, captured, uncollected, counters FROM charges WHERE at >= ?",
        )
    }

    /// Events at or after `since`, in arrival order: (business, line).
    pub async fn events_since(&self, since: i64) -> Result<Vec<(String, String)>> {
        // Sorted here, not by `ORDER BY seq`: with it, SQLite would rather scan the whole table
        // in `seq` order than read the index of `at` and sort.
        let mut events: Vec<EventLine> = sqlx::query_as(AssertSqlSafe(self.events_since_sql()))
            .bind(since)
            .fetch_all(&self.pool)
            .await?;
        events.sort_unstable_by_key(|e| e.seq);
        Ok(events.into_iter().map(|e| (e.business, e.line)).collect())
    }

    /// The event lines of a business with `from <= at < to`, in arrival order.
    pub async fn business_events(&self, business: &str, from: i64, to: i64) -> Result<Vec<String>> {
        let sql = self
            .sql("SELECT line FROM events WHERE business = ? AND at >= ? AND at < ? ORDER BY seq");
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(business)
            .bind(from)
            .bind(to)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Charges priced at or after `since`.
    pub async fn charges_since(&self, since: i64) -> Result<Vec<Charge>> {
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
    ) -> Result<Vec<Charge>> {
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
        let rows: Vec<OptOutRow> = sqlx::query_as("SELECT business, user_id FROM optouts")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.into_iter().map(|o| (o.business, o.user_id)).collect())
    }

    /// Counts, for tests and `/metrics`: (events, dead letters, ledger operations, charges).
    pub async fn counts(&self) -> Result<(i64, i64, i64, i64)> {
        let c: Counts = sqlx::query_as(
            "SELECT (SELECT COUNT(*) FROM events) AS events, \
             (SELECT COUNT(*) FROM dead_letters) AS dead_letters, \
             (SELECT COUNT(*) FROM ledger_ops) AS ledger_ops, \
             (SELECT COUNT(*) FROM charges) AS charges",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((c.events, c.dead_letters, c.ledger_ops, c.charges))
    }

    /// Alerts due for a delivery attempt.
    pub async fn due_alerts(&self, now: i64, limit: i64) -> Result<Vec<AlertRow>> {
        let sql = self.sql(
            "SELECT seq, business, url, payload, attempts, next_at FROM alerts \
             WHERE state = 'pending' AND next_at <= ? ORDER BY seq LIMIT ?",
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(now)
            .bind(limit)
            .fetch_all(&self.pool)
            .await?)
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
        let sql = self.sql(
            "UPDATE alerts SET state = ?, attempts = ?, next_at = ?, last_error = ? WHERE seq = ?",
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
        let sql =
            self.sql("SELECT state, attempts, payload FROM alerts WHERE business = ? ORDER BY seq");
        let rows: Vec<AlertState> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows
            .into_iter()
            .map(|a| (a.state, a.attempts, a.payload))
            .collect())
    }
}
