//! Reading back: the ledger's log, the recent events and charges (at start), a business's
//! events and charges of a period (invoices), opt-outs, alerts, counts.

use super::{codec, AlertRow, Charge, Dialect, Store};
use crate::domain::effects::LedgerEntry;
use anyhow::{Context, Result};
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

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
        format!(
            "SELECT seq, business, line FROM events WHERE at >= {}",
            self.param(1)
        )
    }

    /// The statement of [`Store::charges_since`] (read through the index `charges_at`).
    pub(super) fn charges_since_sql(&self) -> String {
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
}
