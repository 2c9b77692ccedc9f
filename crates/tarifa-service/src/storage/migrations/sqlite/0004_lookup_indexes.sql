-- SQLite 4: events and charges are found by key and by message through full-text indexes
-- (FTS5, contentless) instead of b-tree indexes, and `events.key` and `charges.message` lose
-- their `UNIQUE` (both tables are rebuilt; `seq` keeps every row's number).
--
-- Why: SQLite's write-ahead log holds whole pages, and keys such as Meta's wamids are random, so
-- each event put its key on a 4 KiB page of its own, and each charge its message on another:
-- about 8 KiB written to the log per delivered message, and again by the checkpoint. An FTS5
-- index is a log-structured merge tree kept in SQLite's own tables: a commit writes its new
-- entries as one small sorted segment, and segments are merged in the background of later
-- commits, so an entry costs tens of bytes, not a page.
--
-- Each row has one document whose rowid is the row's `seq`, of tokens (see
-- `storage::lookups::lookup_token`) for its key (events) and its message id (events with a
-- message, and charges): 64-bit hashes in hexadecimal, so any id is exactly one short token of
-- the `ascii` tokenizer, whatever its characters, case or length. Look-ups verify the row's own
-- column, so a match (or a rare hash collision) stands for the exact id only. The rows stored
-- before this migration get their documents from a step in Rust after these statements, in the
-- same transaction (`Store::index_stored_rows`: SQL has no such hash).
--
-- Idempotency stays exact without `UNIQUE`: the writer is the one that stores events, and it
-- stores a key only after proving it new (its filter of stored keys, a look-up of the maybes,
-- and the keys of the groups in flight: `writer::run`), as it must anyway, since a duplicate
-- must not reach the book either. A charge is written once per message by the book (a settled
-- message is never priced again, and its ledger transfers have ids of their own). PostgreSQL's
-- log holds row changes, so it kept both unique indexes, until they outgrew its buffers (see
-- its migration 6, `0006_hashed_lookups.sql`).

CREATE TABLE events_v4 (seq INTEGER PRIMARY KEY, key TEXT NOT NULL, business TEXT NOT NULL,
  kind TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL, received_at BIGINT NOT NULL,
  line TEXT NOT NULL);
INSERT INTO events_v4 (seq, key, business, kind, message, at, received_at, line)
  SELECT seq, key, business, kind, message, at, received_at, line FROM events ORDER BY seq;
DROP TABLE events;
ALTER TABLE events_v4 RENAME TO events;
CREATE INDEX events_business_at ON events (business, at);
CREATE VIRTUAL TABLE event_lookup USING fts5 (tokens, content = '', columnsize = 0,
  detail = none, tokenize = 'ascii');
CREATE TABLE charges_v4 (seq INTEGER PRIMARY KEY, message TEXT NOT NULL,
  business TEXT NOT NULL, at BIGINT NOT NULL, pricing_type TEXT NOT NULL,
  category TEXT NOT NULL, rule TEXT NOT NULL, amount TEXT NOT NULL, currency TEXT NOT NULL,
  captured TEXT NOT NULL, uncollected TEXT NOT NULL, counters TEXT NOT NULL);
INSERT INTO charges_v4 (message, business, at, pricing_type, category, rule, amount,
  currency, captured, uncollected, counters)
  SELECT message, business, at, pricing_type, category, rule, amount, currency, captured,
  uncollected, counters FROM charges ORDER BY rowid;
DROP TABLE charges;
ALTER TABLE charges_v4 RENAME TO charges;
CREATE INDEX charges_business_at ON charges (business, at);
CREATE VIRTUAL TABLE charge_lookup USING fts5 (tokens, content = '', columnsize = 0,
  detail = none, tokenize = 'ascii');
