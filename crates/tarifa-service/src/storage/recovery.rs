//! The recovery tables and their queries (migration 2 of [`crate::storage`]:
//! `migrations/*/0002_recovery.sql`).
//!
//! `recoveries` is both the queue and the record: one row per recovery episode (a customer's bot
//! conversation or cart, until it is sent or skipped), with the reason for every skip. At most one
//! episode per customer is open (`scheduled` or `claimed`: a partial unique index), so a second
//! trigger moves the open one instead of adding another. Scheduler instances take due rows with a
//! lease (`FOR UPDATE SKIP LOCKED` on PostgreSQL; SQLite serializes writers), and a row goes to
//! `sending` in a committed transaction *before* the message leaves: a row found in `sending` with
//! an expired lease is never sent again (at most once).

use crate::storage::reads::EventLine;
use crate::storage::{Dialect, Store};
use anyhow::Result;
use sqlx::any::AnyRow;
use sqlx::{AssertSqlSafe, Row};

/// A recovery episode (a row of `recoveries`, its columns read by name).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct RecoveryRow {
    pub id: String,
    pub business: String,
    #[sqlx(rename = "user_id")]
    pub user: String,
    #[sqlx(rename = "trigger_kind")]
    pub trigger: String,
    pub cart_id: Option<String>,
    pub started_at: i64,
    pub last_at: i64,
    pub due_at: i64,
    /// `scheduled`, `claimed`, `sending`, `sent`, `skipped`.
    pub state: String,
    /// Why it was skipped (empty otherwise).
    pub reason: String,
    pub channel: Option<String>,
    pub message_id: Option<String>,
    pub coupon_code: Option<String>,
    pub coupon_expires_at: Option<i64>,
    pub text: Option<String>,
    /// What the message was quoted and held at (exact decimal).
    pub cost: Option<String>,
    pub currency: Option<String>,
    pub sent_at: Option<i64>,
}

/// The columns of a [`RecoveryRow`], for `concat!`.
macro_rules! recovery_columns {
    () => {
        "id, business, user_id, trigger_kind, cart_id, started_at, last_at, due_at, state, \
         reason, channel, message_id, coupon_code, coupon_expires_at, text, cost, currency, sent_at"
    };
}

/// The statement of [`RecoveryStore::claim`], `$lock` after its subquery's `LIMIT`.
macro_rules! claim_sql {
    ($lock:literal) => {
        concat!(
            "UPDATE recoveries SET state = 'claimed', owner = ?, lease_until = ?, updated_at = ? \
             WHERE id IN (SELECT id FROM recoveries WHERE state = 'scheduled' AND due_at <= ? \
             ORDER BY due_at, id LIMIT ?",
            $lock,
            ") RETURNING ",
            recovery_columns!()
        )
    };
}

/// The statement of [`RecoveryStore::list`], `$filter` after its period.
macro_rules! list_sql {
    ($filter:literal) => {
        concat!(
            "SELECT ",
            recovery_columns!(),
            " FROM recoveries WHERE business = ? AND started_at >= ? AND started_at < ?",
            $filter,
            " ORDER BY started_at, id LIMIT ?"
        )
    };
}

/// A cart reported by the store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct CartRow {
    pub business: String,
    pub cart_id: String,
    #[sqlx(rename = "user_id")]
    pub user: String,
    pub name: String,
    /// JSON array of `{name, quantity, price}`.
    pub items: String,
    pub total: String,
    pub currency: String,
    pub link: String,
    pub updated_at: i64,
}

/// An order reported by the store.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, sqlx::FromRow)]
pub struct OrderRow {
    pub business: String,
    pub order_id: String,
    #[sqlx(rename = "user_id")]
    pub user: String,
    pub at: i64,
    pub total: String,
    pub currency: String,
    pub coupon: Option<String>,
    pub recovery: Option<String>,
    pub cart_id: Option<String>,
}

/// A code handed out with a recovery message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CodeRow {
    pub code: String,
    pub business: String,
    pub coupon: String,
    pub user: String,
    pub recovery: String,
    pub sent_at: i64,
    pub single_use: bool,
    pub redeemed_at: Option<i64>,
}

/// By name, as a derive would, but `single_use` is stored as an integer (0 or 1), which the
/// `Any` driver does not decode as a `bool`.
impl<'r> sqlx::FromRow<'r, AnyRow> for CodeRow {
    fn from_row(r: &'r AnyRow) -> Result<Self, sqlx::Error> {
        Ok(CodeRow {
            code: r.try_get("code")?,
            business: r.try_get("business")?,
            coupon: r.try_get("coupon")?,
            user: r.try_get("user_id")?,
            recovery: r.try_get("recovery")?,
            sent_at: r.try_get("sent_at")?,
            single_use: r.try_get::<i64, _>("single_use")? != 0,
            redeemed_at: r.try_get("redeemed_at")?,
        })
    }
}

/// A business's recovery settings (JSON).
#[derive(sqlx::FromRow)]
struct Settings {
    business: String,
    config: String,
}

/// Whether a customer sent a STOP keyword (`stops`) and opted out of marketing (`optouts`):
/// counts of their rows.
#[derive(sqlx::FromRow)]
struct OptOutCounts {
    stops: i64,
    optouts: i64,
}

/// What the wallet charged for a message.
#[derive(sqlx::FromRow)]
struct Charged {
    message: String,
    amount: String,
}

/// The recovery queries over the service's store.
#[derive(Clone)]
pub struct RecoveryStore {
    pub store: Store,
}

impl RecoveryStore {
    /// `sql` with `?` placeholders in the store's dialect (see [`Store::sql`]); `GREATEST` is
    /// SQLite's `max`.
    fn sql(&self, sql: &str) -> String {
        match self.store.dialect {
            Dialect::Sqlite => sql.replace("GREATEST(", "max("),
            Dialect::Postgres => self.store.sql(sql),
        }
    }

    fn pool(&self) -> &sqlx::AnyPool {
        &self.store.pool
    }

    // ---- settings and coupons ----------------------------------------------------------------

    pub async fn settings(&self, business: &str) -> Result<Option<String>> {
        let sql = self.sql("SELECT config FROM recovery_settings WHERE business = ?");
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(business)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn all_settings(&self) -> Result<Vec<(String, String)>> {
        let rows: Vec<Settings> = sqlx::query_as("SELECT business, config FROM recovery_settings")
            .fetch_all(self.pool())
            .await?;
        Ok(rows.into_iter().map(|r| (r.business, r.config)).collect())
    }

    pub async fn put_settings(&self, business: &str, config: &str, now: i64) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO recovery_settings (business, config, updated_at) VALUES (?, ?, ?) \
             ON CONFLICT (business) DO UPDATE SET config = excluded.config, updated_at = excluded.updated_at",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .bind(config)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn delete_settings(&self, business: &str) -> Result<bool> {
        let sql = self.sql("DELETE FROM recovery_settings WHERE business = ?");
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn coupon(&self, business: &str, id: &str) -> Result<Option<String>> {
        let sql = self.sql("SELECT rules FROM coupons WHERE business = ? AND id = ?");
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(business)
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn put_coupon(&self, business: &str, id: &str, rules: &str, now: i64) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO coupons (business, id, rules, updated_at) VALUES (?, ?, ?, ?) \
             ON CONFLICT (business, id) DO UPDATE SET rules = excluded.rules, updated_at = excluded.updated_at",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .bind(id)
            .bind(rules)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The issued codes equal to `code` (a fixed code has one row per message), newest first.
    pub async fn codes(&self, code: &str) -> Result<Vec<CodeRow>> {
        let sql = self.sql(
            "SELECT code, business, coupon, user_id, recovery, sent_at, single_use, redeemed_at \
             FROM coupon_codes WHERE code = ? ORDER BY sent_at DESC",
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(code)
            .fetch_all(self.pool())
            .await?)
    }

    /// Marks a code used; `false` when a single-use code was used meanwhile (a concurrent
    /// redemption), so it is never spent twice.
    pub async fn mark_redeemed(
        &self,
        code: &str,
        recovery: &str,
        at: i64,
        order: Option<&str>,
    ) -> Result<bool> {
        let sql = self.sql(
            "UPDATE coupon_codes SET redeemed_at = ?, order_id = ? WHERE code = ? AND recovery = ? \
             AND (single_use = 0 OR redeemed_at IS NULL)",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(at)
            .bind(order)
            .bind(code)
            .bind(recovery)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// When the customer last used a recovery coupon.
    pub async fn last_coupon_use(&self, business: &str, user: &str) -> Result<Option<i64>> {
        let sql = self.sql(
            "SELECT MAX(redeemed_at) AS redeemed_at FROM coupon_codes WHERE business = ? AND user_id = ? AND redeemed_at IS NOT NULL",
        );
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(business)
            .bind(user)
            .fetch_one(self.pool())
            .await?)
    }

    // ---- carts and orders --------------------------------------------------------------------

    pub async fn put_cart(&self, c: &CartRow) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO carts (business, cart_id, user_id, name, items, total, currency, link, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (business, cart_id) DO UPDATE SET \
             user_id = excluded.user_id, name = excluded.name, items = excluded.items, total = excluded.total, \
             currency = excluded.currency, link = excluded.link, updated_at = GREATEST(carts.updated_at, excluded.updated_at)",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(&c.business)
            .bind(&c.cart_id)
            .bind(&c.user)
            .bind(&c.name)
            .bind(&c.items)
            .bind(&c.total)
            .bind(&c.currency)
            .bind(&c.link)
            .bind(c.updated_at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn cart(&self, business: &str, cart_id: &str) -> Result<Option<CartRow>> {
        let sql = self.sql(
            "SELECT business, cart_id, user_id, name, items, total, currency, link, updated_at \
             FROM carts WHERE business = ? AND cart_id = ?",
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .bind(cart_id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Stores an order; `false` if that order id was stored already (a retry).
    pub async fn put_order(&self, o: &OrderRow) -> Result<bool> {
        let sql = self.sql(
            "INSERT INTO orders (business, order_id, user_id, at, total, currency, coupon, recovery, cart_id) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (business, order_id) DO NOTHING",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(&o.business)
            .bind(&o.order_id)
            .bind(&o.user)
            .bind(o.at)
            .bind(&o.total)
            .bind(&o.currency)
            .bind(&o.coupon)
            .bind(&o.recovery)
            .bind(&o.cart_id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    pub async fn bought_since(&self, business: &str, user: &str, since: i64) -> Result<bool> {
        let sql = self.sql(
            "SELECT COUNT(*) AS orders FROM orders WHERE business = ? AND user_id = ? AND at >= ?",
        );
        let orders: i64 = sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(business)
            .bind(user)
            .bind(since)
            .fetch_one(self.pool())
            .await?;
        Ok(orders > 0)
    }

    /// Orders of `business` in `[from, to)`.
    pub async fn orders(&self, business: &str, from: i64, to: i64) -> Result<Vec<OrderRow>> {
        let sql = self.sql(
            "SELECT business, order_id, user_id, at, total, currency, coupon, recovery, cart_id \
             FROM orders WHERE business = ? AND at >= ? AND at < ? ORDER BY at, order_id",
        );
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?)
    }

    // ---- opt-outs ----------------------------------------------------------------------------

    pub async fn put_stop(&self, business: &str, user: &str, at: i64) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO recovery_stops (business, user_id, at) VALUES (?, ?, ?) ON CONFLICT (business, user_id) DO NOTHING",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(business)
            .bind(user)
            .bind(at)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// (STOP keyword, Meta's marketing opt-out 131050) for a customer.
    pub async fn opt_outs(&self, business: &str, user: &str) -> Result<(bool, bool)> {
        let sql = self.sql(
            "SELECT (SELECT COUNT(*) FROM recovery_stops WHERE business = ? AND user_id = ?) AS stops, \
             (SELECT COUNT(*) FROM optouts WHERE business = ? AND user_id = ?) AS optouts",
        );
        let counts: OptOutCounts = sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .bind(user)
            .bind(business)
            .bind(user)
            .fetch_one(self.pool())
            .await?;
        Ok((counts.stops > 0, counts.optouts > 0))
    }

    // ---- triggers ----------------------------------------------------------------------------

    /// Opens a recovery for the customer, or moves the open one: its last interaction becomes
    /// the later of the two and it falls due `delay` after that. A claimed episode is left to its
    /// scheduler (which looks at the customer again before sending).
    #[allow(clippy::too_many_arguments)]
    pub async fn trigger(
        &self,
        id: &str,
        business: &str,
        user: &str,
        trigger: &str,
        cart_id: Option<&str>,
        at: i64,
        delay: i64,
        now: i64,
    ) -> Result<()> {
        let sql = self.sql(
            "INSERT INTO recoveries (id, business, user_id, trigger_kind, cart_id, started_at, last_at, due_at, \
             state, reason, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', '', ?) \
             ON CONFLICT (business, user_id) WHERE state IN ('scheduled', 'claimed') DO UPDATE SET \
             last_at = CASE WHEN recoveries.state = 'scheduled' THEN GREATEST(recoveries.last_at, excluded.last_at) ELSE recoveries.last_at END, \
             due_at = CASE WHEN recoveries.state = 'scheduled' THEN GREATEST(recoveries.last_at, excluded.last_at) + ? ELSE recoveries.due_at END, \
             cart_id = COALESCE(excluded.cart_id, recoveries.cart_id), \
             trigger_kind = CASE WHEN excluded.cart_id IS NOT NULL THEN excluded.trigger_kind ELSE recoveries.trigger_kind END, \
             updated_at = excluded.updated_at",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(id)
            .bind(business)
            .bind(user)
            .bind(trigger)
            .bind(cart_id)
            .bind(at)
            .bind(at)
            .bind(at + delay)
            .bind(now)
            .bind(delay)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Closes the customer's open (not claimed) recovery with a reason.
    pub async fn close_open(
        &self,
        business: &str,
        user: &str,
        reason: &str,
        now: i64,
    ) -> Result<u64> {
        let sql = self.sql(
            "UPDATE recoveries SET state = 'skipped', reason = ?, updated_at = ? \
             WHERE business = ? AND user_id = ? AND state = 'scheduled'",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(reason)
            .bind(now)
            .bind(business)
            .bind(user)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected())
    }

    /// Inbound events after the cursor (seq, business, line), oldest first.
    pub async fn inbound_after(&self, seq: i64, limit: i64) -> Result<Vec<(i64, String, String)>> {
        let sql = self.sql(
            "SELECT seq, business, line FROM events WHERE seq > ? AND kind = 'inbound' ORDER BY seq LIMIT ?",
        );
        let rows: Vec<EventLine> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows
            .into_iter()
            .map(|e| (e.seq, e.business, e.line))
            .collect())
    }

    pub async fn cursor(&self) -> Result<i64> {
        Ok(
            sqlx::query_scalar("SELECT seq FROM recovery_cursor WHERE name = 'inbound'")
                .fetch_one(self.pool())
                .await?,
        )
    }

    /// Moves the cursor forward only (two schedulers may both read a batch; triggers are
    /// idempotent, so reading twice is harmless and the cursor never goes back).
    pub async fn advance_cursor(&self, seq: i64) -> Result<()> {
        let sql = self.sql("UPDATE recovery_cursor SET seq = ? WHERE name = 'inbound' AND seq < ?");
        sqlx::query(AssertSqlSafe(sql))
            .bind(seq)
            .bind(seq)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    // ---- the queue ---------------------------------------------------------------------------

    /// Gives back what a stopped scheduler held: `claimed` rows return to the queue (nothing was
    /// sent); `sending` rows are closed as `interrupted` (the message may have left).
    pub async fn recover_leases(&self, now: i64) -> Result<()> {
        let sql = self.sql(
            "UPDATE recoveries SET state = 'scheduled', owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE state = 'claimed' AND lease_until < ?",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(now)
            .execute(self.pool())
            .await?;
        let sql = self.sql(
            "UPDATE recoveries SET state = 'skipped', reason = 'interrupted', updated_at = ? \
             WHERE state = 'sending' AND lease_until < ?",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(now)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Takes up to `limit` due recoveries for `owner` until `lease_until`.
    pub async fn claim(
        &self,
        owner: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<RecoveryRow>> {
        let sql = self.sql(match self.store.dialect {
            Dialect::Postgres => claim_sql!(" FOR UPDATE SKIP LOCKED"),
            Dialect::Sqlite => claim_sql!(""),
        });
        let mut out: Vec<RecoveryRow> = sqlx::query_as(AssertSqlSafe(sql))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(now)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        out.sort_by(|a, b| (a.due_at, &a.id).cmp(&(b.due_at, &b.id)));
        Ok(out)
    }

    /// Closes a claimed recovery as skipped; `false` if this owner lost it.
    pub async fn skip(&self, id: &str, owner: &str, reason: &str, now: i64) -> Result<bool> {
        let sql = self.sql(
            "UPDATE recoveries SET state = 'skipped', reason = ?, owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE id = ? AND owner = ? AND state IN ('claimed', 'sending')",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(reason)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Puts a claimed recovery back in the queue, due at `due`.
    pub async fn defer(&self, id: &str, owner: &str, due: i64, now: i64) -> Result<bool> {
        let sql = self.sql(
            "UPDATE recoveries SET state = 'scheduled', due_at = ?, owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE id = ? AND owner = ? AND state = 'claimed'",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(due)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Commits the decision to send (with the coupon code handed out), before the message
    /// leaves; `false` if this owner lost the claim (then nothing is sent).
    #[allow(clippy::too_many_arguments)]
    pub async fn start_sending(
        &self,
        r: &RecoveryRow,
        owner: &str,
        channel: &str,
        text: &str,
        code: Option<(&str, &str, bool)>,
        coupon_expires_at: Option<i64>,
        cost: &str,
        currency: &str,
        now: i64,
    ) -> Result<bool> {
        let mut tx = self.pool().begin().await?;
        let sql = self.sql(
            "UPDATE recoveries SET state = 'sending', channel = ?, text = ?, coupon_code = ?, coupon_expires_at = ?, \
             cost = ?, currency = ?, sent_at = ?, updated_at = ? WHERE id = ? AND owner = ? AND state = 'claimed'",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(channel)
            .bind(text)
            .bind(code.map(|c| c.0))
            .bind(coupon_expires_at)
            .bind(cost)
            .bind(currency)
            .bind(now)
            .bind(now)
            .bind(&r.id)
            .bind(owner)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        if let Some((code, coupon, single_use)) = code {
            let sql = self.sql(
                "INSERT INTO coupon_codes (code, business, coupon, user_id, recovery, sent_at, single_use) \
                 VALUES (?, ?, ?, ?, ?, ?, ?)",
            );
            sqlx::query(AssertSqlSafe(sql))
                .bind(code)
                .bind(&r.business)
                .bind(coupon)
                .bind(&r.user)
                .bind(&r.id)
                .bind(now)
                .bind(single_use as i64)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn sent(&self, id: &str, owner: &str, message_id: &str, now: i64) -> Result<()> {
        let sql = self.sql(
            "UPDATE recoveries SET state = 'sent', message_id = ?, owner = NULL, lease_until = NULL, updated_at = ? \
             WHERE id = ? AND owner = ? AND state = 'sending'",
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(message_id)
            .bind(now)
            .bind(id)
            .bind(owner)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// The customer's sent recoveries that no order has won back yet, oldest first.
    pub async fn sent_unrecovered(&self, business: &str, user: &str) -> Result<Vec<RecoveryRow>> {
        let sql = self.sql(concat!(
            "SELECT ",
            recovery_columns!(),
            " FROM recoveries WHERE business = ? AND user_id = ? AND state = 'sent' \
             AND sent_at IS NOT NULL ORDER BY sent_at, id"
        ));
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .bind(user)
            .fetch_all(self.pool())
            .await?)
    }

    /// A sent recovery won back by an order: `recovered`, reason `purchased`. Returns whether it
    /// changed (a replayed order finds it recovered already).
    pub async fn mark_recovered(&self, id: &str, now: i64) -> Result<bool> {
        let sql = self.sql(
            "UPDATE recoveries SET state = 'recovered', reason = 'purchased', updated_at = ? \
             WHERE id = ? AND state = 'sent'",
        );
        let done = sqlx::query(AssertSqlSafe(sql))
            .bind(now)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// When recovery messages were sent to the customer.
    pub async fn sent_to(&self, business: &str, user: &str) -> Result<Vec<i64>> {
        let sql = self.sql(
            "SELECT sent_at FROM recoveries WHERE business = ? AND user_id = ? \
             AND state IN ('sent', 'recovered') AND sent_at IS NOT NULL",
        );
        Ok(sqlx::query_scalar(AssertSqlSafe(sql))
            .bind(business)
            .bind(user)
            .fetch_all(self.pool())
            .await?)
    }

    /// Recoveries of `business` started in `[from, to)`, optionally in one state.
    pub async fn list(
        &self,
        business: &str,
        from: i64,
        to: i64,
        state: Option<&str>,
        limit: i64,
    ) -> Result<Vec<RecoveryRow>> {
        let sql = self.sql(match state {
            Some(_) => list_sql!(" AND state = ?"),
            None => list_sql!(""),
        });
        let mut q = sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .bind(from)
            .bind(to);
        if let Some(s) = state {
            q = q.bind(s);
        }
        Ok(q.bind(limit).fetch_all(self.pool()).await?)
    }

    /// Recoveries of `business` sent in `[from, to)`.
    pub async fn sent_between(
        &self,
        business: &str,
        from: i64,
        to: i64,
    ) -> Result<Vec<RecoveryRow>> {
        let sql = self.sql(concat!(
            "SELECT ",
            recovery_columns!(),
            " FROM recoveries WHERE business = ? AND state IN ('sent', 'recovered') AND sent_at >= ? \
             AND sent_at < ? ORDER BY sent_at, id"
        ));
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(business)
            .bind(from)
            .bind(to)
            .fetch_all(self.pool())
            .await?)
    }

    pub async fn get(&self, id: &str) -> Result<Option<RecoveryRow>> {
        let sql = self.sql(concat!(
            "SELECT ",
            recovery_columns!(),
            " FROM recoveries WHERE id = ?"
        ));
        Ok(sqlx::query_as(AssertSqlSafe(sql))
            .bind(id)
            .fetch_optional(self.pool())
            .await?)
    }

    /// PostgreSQL: the statement of [`RecoveryStore::charged`] for `n` message ids, through the
    /// entries of their hashes in `charges_lookup` (see `migrations/postgres/0006_hashed_lookups.sql`), one
    /// correlated subquery per id (see `lookups::POSTGRES_EXISTING_KEYS` for why not a join).
    pub(crate) fn postgres_charged_sql(&self, n: usize) -> String {
        self.sql(&format!(
            "SELECT v AS message, amount FROM (SELECT v, (SELECT max(c.amount) FROM charges c \
               WHERE hashtextextended(c.message, 0) = hashtextextended(l.v, 0) \
               AND c.message = l.v) AS amount \
             FROM (SELECT DISTINCT v FROM (VALUES {}) AS l(v)) AS l) AS found \
             WHERE amount IS NOT NULL",
            vec!["(?)"; n].join(", ")
        ))
    }

    /// What the wallet charged for messages (the rated amount), by message id.
    pub async fn charged(&self, messages: &[&str]) -> Result<Vec<(String, String)>> {
        let mut out = Vec::new();
        for chunk in messages.chunks(crate::storage::LOOKUP_CHUNK) {
            let list = vec!["?"; chunk.len()].join(", ");
            let mut q = match self.store.dialect {
                // Through the charges' look-up index (see `migrations/sqlite/0004_lookup_indexes.sql`).
                Dialect::Sqlite => sqlx::query_as(AssertSqlSafe(format!(
                    "SELECT message, amount FROM charges WHERE seq IN \
                     (SELECT rowid FROM charge_lookup WHERE charge_lookup MATCH ?) \
                     AND message IN ({list})"
                )))
                .bind(crate::storage::lookup_query('m', chunk)),
                Dialect::Postgres => {
                    sqlx::query_as(AssertSqlSafe(self.postgres_charged_sql(chunk.len())))
                }
            };
            for m in chunk {
                q = q.bind(*m);
            }
            let rows: Vec<Charged> = q.fetch_all(self.pool()).await?;
            out.extend(rows.into_iter().map(|c| (c.message, c.amount)));
        }
        Ok(out)
    }
}
