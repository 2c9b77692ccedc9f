//! The group commit: everything one group of commands changed, written in one transaction and
//! one round trip, with a fixed number of parameters whatever the group's size.

use super::lookups::{event_document, lookup_token};
use super::{codec, Charge, Committer, Effects, Store};
use anyhow::{Context, Result};

/// An event's columns.
struct EventColumns<'a> {
    key: &'a str,
    business: &'a str,
    kind: &'static str,
    message: &'a str,
    at: i64,
    received_at: i64,
    line: &'a str,
}

/// A charge's columns.
struct ChargeColumns<'a> {
    message: &'a str,
    business: &'a str,
    at: i64,
    pricing_type: &'static str,
    category: &'a str,
    rule: &'a str,
    amount: String,
    currency: &'a str,
    captured: String,
    uncollected: String,
    counters: String,
}

impl<'a> ChargeColumns<'a> {
    fn of(c: &'a Charge) -> Result<ChargeColumns<'a>> {
        Ok(ChargeColumns {
            message: &c.message,
            business: &c.business,
            at: c.at,
            pricing_type: c.pricing_type.as_str(),
            category: &c.category,
            rule: &c.rule,
            amount: codec::encode_decimal(c.amount),
            currency: &c.currency,
            captured: codec::encode_amount(c.captured),
            uncollected: codec::encode_amount(c.uncollected),
            counters: codec::encode_counters(&c.counters)?,
        })
    }
}

/// A group's effects as the columns they are stored in (through [`codec`] where a value is
/// not a plain column), the same for both backends.
struct Rows<'a> {
    events: Vec<EventColumns<'a>>,
    ledger_ops: Vec<(i64, String)>,
    charges: Vec<ChargeColumns<'a>>,
    charge_updates: Vec<ChargeColumns<'a>>,
    optouts: Vec<(&'a str, &'a str, i64)>,
    alerts: Vec<(&'a str, &'a str, &'a str, i64)>,
    dead_letters: Vec<(i64, &'a str, &'a str, &'a str)>,
}

impl<'a> Rows<'a> {
    fn of(w: &'a Effects) -> Result<Rows<'a>> {
        let events = w
            .events
            .iter()
            .map(|e| EventColumns {
                key: e.key.as_str(),
                business: &e.business,
                kind: e.kind.as_str(),
                message: &e.message,
                at: e.at,
                received_at: e.received_at,
                line: &e.line,
            })
            .collect();
        let ledger_ops = w
            .ledger_ops
            .iter()
            .map(|e| Ok((e.at, codec::encode_ledger_op(&e.op)?)))
            .collect::<Result<_>>()?;
        let charges = w
            .charges
            .iter()
            .map(ChargeColumns::of)
            .collect::<Result<_>>()?;
        let charge_updates = w
            .charge_updates
            .iter()
            .map(ChargeColumns::of)
            .collect::<Result<_>>()?;
        Ok(Rows {
            events,
            ledger_ops,
            charges,
            charge_updates,
            optouts: w
                .optouts
                .iter()
                .map(|o| (o.business.as_str(), o.user.as_str(), o.at))
                .collect(),
            alerts: w
                .alerts
                .iter()
                .map(|a| {
                    (
                        a.business.as_str(),
                        a.url.as_str(),
                        a.payload.as_str(),
                        a.first_attempt_at,
                    )
                })
                .collect(),
            dead_letters: w
                .dead_letters
                .iter()
                .map(|d| {
                    (
                        d.received_at,
                        d.source.as_str(),
                        d.reason.as_str(),
                        d.body.as_str(),
                    )
                })
                .collect(),
        })
    }
}

/// SQLite: a group's rows as one JSON array per table (events, ledger operations, charges,
/// opt-outs, alerts, dead letters), each row an array of its column values in the order of the
/// tables' `INSERT`s (events and charges end with their look-up documents): six arrays
/// whatever the group's size, so the statement is prepared once.
fn group_json(rows: &Rows<'_>) -> Result<[String; 7]> {
    let json = |v: serde_json::Result<String>| v.context("serializing a group");
    let events = json(serde_json::to_string(
        &rows
            .events
            .iter()
            .map(|e| {
                (
                    e.key,
                    e.business,
                    e.kind,
                    e.message,
                    e.at,
                    e.received_at,
                    e.line,
                    event_document(e.key, e.message),
                )
            })
            .collect::<Vec<_>>(),
    ))?;
    let charge_json = |charges: &[ChargeColumns<'_>]| {
        json(serde_json::to_string(
            &charges
                .iter()
                .map(|c| {
                    (
                        c.message,
                        c.business,
                        c.at,
                        c.pricing_type,
                        c.category,
                        c.rule,
                        &c.amount,
                        c.currency,
                        &c.captured,
                        &c.uncollected,
                        &c.counters,
                        lookup_token('m', c.message),
                    )
                })
                .collect::<Vec<_>>(),
        ))
    };
    let charges = charge_json(&rows.charges)?;
    let charge_updates = charge_json(&rows.charge_updates)?;
    Ok([
        events,
        json(serde_json::to_string(&rows.ledger_ops))?,
        charges,
        charge_updates,
        json(serde_json::to_string(&rows.optouts))?,
        json(serde_json::to_string(&rows.alerts))?,
        json(serde_json::to_string(&rows.dead_letters))?,
    ])
}

impl Store {
    /// Writes one group in one transaction.
    pub async fn commit(&self, w: &Effects) -> Result<()> {
        if w.is_empty() {
            return Ok(());
        }
        let pool = match &self.commits {
            Committer::Postgres(pool) => return Self::commit_postgres(pool, &Rows::of(w)?).await,
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
        let [events, ledger_ops, charges, charge_updates, optouts, alerts, dead_letters] =
            group_json(&Rows::of(w)?)?;
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
        if !w.charge_updates.is_empty() {
            // Re-priced charges of earlier groups (rare): by their key, in the same transaction.
            const UPDATE: &str = "\
                UPDATE charges SET at = u.v->>2, pricing_type = u.v->>3, category = u.v->>4, \
                  rule = u.v->>5, amount = u.v->>6, captured = u.v->>8, uncollected = u.v->>9, \
                  counters = u.v->>10 \
                FROM (SELECT value->>0 AS m, value AS v FROM jsonb_each(?)) AS u \
                WHERE charges.message = u.m";
            sqlx::query(UPDATE)
                .bind(charge_updates)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// PostgreSQL: the whole group as one statement (one round trip, one implicit transaction,
    /// committed with the server's `synchronous_commit` before it returns). Each column is one
    /// typed array parameter in the binary protocol (31 parameters whatever the group's size, so
    /// the statement is prepared once; no JSON to write, escape or parse on either side), turned
    /// back into rows by `unnest … WITH ORDINALITY` and inserted by a data-modifying `WITH` in
    /// their order, so ledger operations get their sequence numbers in the order applied.
    async fn commit_postgres(pool: &sqlx::PgPool, w: &Rows<'_>) -> Result<()> {
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
        let insert = sqlx::query(SQL)
            .bind(column(ev, |e| e.key))
            .bind(column(ev, |e| e.business))
            .bind(column(ev, |e| e.kind))
            .bind(column(ev, |e| e.message))
            .bind(column(ev, |e| e.at))
            .bind(column(ev, |e| e.received_at))
            .bind(column(ev, |e| e.line))
            .bind(column(&w.ledger_ops, |o| o.0))
            .bind(column(&w.ledger_ops, |o| o.1.as_str()))
            .bind(column(ch, |c| c.message))
            .bind(column(ch, |c| c.business))
            .bind(column(ch, |c| c.at))
            .bind(column(ch, |c| c.pricing_type))
            .bind(column(ch, |c| c.category))
            .bind(column(ch, |c| c.rule))
            .bind(column(ch, |c| c.amount.as_str()))
            .bind(column(ch, |c| c.currency))
            .bind(column(ch, |c| c.captured.as_str()))
            .bind(column(ch, |c| c.uncollected.as_str()))
            .bind(column(ch, |c| c.counters.as_str()))
            .bind(column(&w.optouts, |o| o.0))
            .bind(column(&w.optouts, |o| o.1))
            .bind(column(&w.optouts, |o| o.2))
            .bind(column(&w.alerts, |a| a.0))
            .bind(column(&w.alerts, |a| a.1))
            .bind(column(&w.alerts, |a| a.2))
            .bind(column(&w.alerts, |a| a.3))
            .bind(column(&w.dead_letters, |d| d.0))
            .bind(column(&w.dead_letters, |d| d.1))
            .bind(column(&w.dead_letters, |d| d.2))
            .bind(column(&w.dead_letters, |d| d.3));
        if w.charge_updates.is_empty() {
            insert.execute(pool).await?;
            return Ok(());
        }
        // Re-priced charges of earlier groups: the same transaction, one statement more.
        const UPDATE: &str = "UPDATE charges SET at = u.b, pricing_type = u.c, category = u.d, \
              rule = u.e, amount = u.f, captured = u.g, uncollected = u.h, counters = u.i \
            FROM unnest($1::text[], $2::int8[], $3::text[], $4::text[], $5::text[], $6::text[], \
              $7::text[], $8::text[], $9::text[]) AS u(a, b, c, d, e, f, g, h, i) \
            WHERE charges.message = u.a";
        let up = &w.charge_updates;
        let update = sqlx::query(UPDATE)
            .bind(column(up, |c| c.message))
            .bind(column(up, |c| c.at))
            .bind(column(up, |c| c.pricing_type))
            .bind(column(up, |c| c.category))
            .bind(column(up, |c| c.rule))
            .bind(column(up, |c| c.amount.as_str()))
            .bind(column(up, |c| c.captured.as_str()))
            .bind(column(up, |c| c.uncollected.as_str()))
            .bind(column(up, |c| c.counters.as_str()));
        let mut tx = pool.begin().await?;
        insert.execute(&mut *tx).await?;
        update.execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(())
    }
}
