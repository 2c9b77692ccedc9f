-- PostgreSQL 1: the base schema. Events (the idempotency key of each, its business, kind, message
-- and times, and the line it came as), dead letters, the ledger's log of operations, the
-- priced messages (charges), opt-outs and outgoing alerts.
-- Values are portable: integers (instants as Unix seconds, sequence numbers) and text (ids,
-- decimal amounts written as strings, JSON).

CREATE TABLE events (seq BIGSERIAL PRIMARY KEY, key TEXT NOT NULL UNIQUE,
  business TEXT NOT NULL, kind TEXT NOT NULL, message TEXT NOT NULL, at BIGINT NOT NULL,
  received_at BIGINT NOT NULL, line TEXT NOT NULL);
CREATE INDEX events_business_at ON events (business, at);
CREATE INDEX events_message ON events (message);
CREATE TABLE dead_letters (seq BIGSERIAL PRIMARY KEY, received_at BIGINT NOT NULL,
  source TEXT NOT NULL, reason TEXT NOT NULL, body TEXT NOT NULL);
CREATE TABLE ledger_ops (seq BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, op TEXT NOT NULL);
CREATE TABLE charges (message TEXT PRIMARY KEY, business TEXT NOT NULL, at BIGINT NOT NULL,
  pricing_type TEXT NOT NULL, category TEXT NOT NULL, rule TEXT NOT NULL, amount TEXT NOT NULL,
  currency TEXT NOT NULL, captured TEXT NOT NULL, uncollected TEXT NOT NULL, counters TEXT NOT NULL);
CREATE INDEX charges_business_at ON charges (business, at);
CREATE TABLE optouts (business TEXT NOT NULL, user_id TEXT NOT NULL, at BIGINT NOT NULL,
  PRIMARY KEY (business, user_id));
CREATE TABLE alerts (seq BIGSERIAL PRIMARY KEY, business TEXT NOT NULL, url TEXT NOT NULL,
  payload TEXT NOT NULL, attempts BIGINT NOT NULL, next_at BIGINT NOT NULL, state TEXT NOT NULL,
  last_error TEXT NOT NULL);
