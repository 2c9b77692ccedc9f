-- 2: sales recovery (see `storage::recovery`). Per business, its recovery settings and coupons;
-- the codes handed out with recovery messages (a fixed code has one row per message); the carts
-- and orders the store reports; `recoveries`, both the queue and the record: one row per
-- recovery episode (a customer's bot conversation or cart, until it is sent or skipped), with
-- the reason for every skip. At most one episode per customer is open (`scheduled` or
-- `claimed`: the partial unique index `recoveries_open`), so a second trigger moves the open one
-- instead of adding another. `recovery_stops` holds the customers who sent a STOP keyword, and
-- `recovery_cursor` how far the scheduler has read the inbound events.
-- The same statements on both backends.

CREATE TABLE recovery_settings (business TEXT PRIMARY KEY, config TEXT NOT NULL, updated_at BIGINT NOT NULL);
CREATE TABLE coupons (business TEXT NOT NULL, id TEXT NOT NULL, rules TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (business, id));
CREATE TABLE coupon_codes (code TEXT NOT NULL, business TEXT NOT NULL, coupon TEXT NOT NULL, user_id TEXT NOT NULL,
  recovery TEXT NOT NULL, sent_at BIGINT NOT NULL, single_use BIGINT NOT NULL, redeemed_at BIGINT, order_id TEXT, PRIMARY KEY (code, recovery));
CREATE INDEX coupon_codes_user ON coupon_codes (business, user_id);
CREATE TABLE carts (business TEXT NOT NULL, cart_id TEXT NOT NULL, user_id TEXT NOT NULL, name TEXT NOT NULL, items TEXT NOT NULL,
  total TEXT NOT NULL, currency TEXT NOT NULL, link TEXT NOT NULL, updated_at BIGINT NOT NULL, PRIMARY KEY (business, cart_id));
CREATE TABLE orders (business TEXT NOT NULL, order_id TEXT NOT NULL, user_id TEXT NOT NULL, at BIGINT NOT NULL, total TEXT NOT NULL,
  currency TEXT NOT NULL, coupon TEXT, recovery TEXT, cart_id TEXT, PRIMARY KEY (business, order_id));
CREATE INDEX orders_user ON orders (business, user_id, at);
CREATE INDEX orders_at ON orders (business, at);
CREATE TABLE recoveries (id TEXT PRIMARY KEY, business TEXT NOT NULL, user_id TEXT NOT NULL, trigger_kind TEXT NOT NULL,
  cart_id TEXT, started_at BIGINT NOT NULL, last_at BIGINT NOT NULL, due_at BIGINT NOT NULL, state TEXT NOT NULL,
  reason TEXT NOT NULL, owner TEXT, lease_until BIGINT, channel TEXT, message_id TEXT, coupon_code TEXT,
  coupon_expires_at BIGINT, text TEXT, cost TEXT, currency TEXT, sent_at BIGINT, updated_at BIGINT NOT NULL);
CREATE UNIQUE INDEX recoveries_open ON recoveries (business, user_id) WHERE state IN ('scheduled', 'claimed');
CREATE INDEX recoveries_due ON recoveries (state, due_at);
CREATE INDEX recoveries_user ON recoveries (business, user_id, sent_at);
CREATE INDEX recoveries_started ON recoveries (business, started_at);
CREATE TABLE recovery_stops (business TEXT NOT NULL, user_id TEXT NOT NULL, at BIGINT NOT NULL, PRIMARY KEY (business, user_id));
CREATE TABLE recovery_cursor (name TEXT PRIMARY KEY, seq BIGINT NOT NULL);
INSERT INTO recovery_cursor (name, seq) VALUES ('inbound', 0);
