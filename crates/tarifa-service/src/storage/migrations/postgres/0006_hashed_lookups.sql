-- PostgreSQL 6: events are found through one b-tree index of the 64-bit hash an event is found
-- by (`pg_event_lookup!` in `storage`: the message's hash for records and statuses, so a
-- message's events share one entry, else the key's), and charges through one of their message's
-- hash, instead of unique indexes of the ids; `events.key` and `charges.message` lose their
-- unique constraints, as on SQLite, and for the same reason idempotency stays exact (see SQLite's
-- migration 4, `0004_lookup_indexes.sql`). Look-ups compare the row's own id after the hash, so
-- a rare collision matches nothing it should not.
--
-- Why: ids such as Meta's wamids are random, so each event put its key, and each charge its
-- message, at a random place of an index of 60 to 100 byte texts, compared byte by byte and
-- checked twice for `ON CONFLICT`. Past about 20 s of a 20,000 events/s load those indexes
-- outgrew PostgreSQL's default `shared_buffers` (128 MB), and the committing backend wrote out
-- 7,000 to 18,000 dirty buffers a second to make room (`docs/benchmarks-history.md`). An entry
-- of a hash takes 20 bytes, and `hashtextextended` is PostgreSQL's own (that of hash
-- partitioning), so rows stored before this migration are indexed by it too.
--
-- The expression of `events_lookup` must stay byte for byte `pg_event_lookup!("")`, the text the
-- look-ups are built from, or PostgreSQL would not use the index for them (a unit test of
-- `storage::migrations` checks it).

ALTER TABLE events DROP CONSTRAINT IF EXISTS events_key_key;
CREATE INDEX events_lookup ON events (hashtextextended(CASE WHEN message = '' THEN key ELSE message END, 0));
ALTER TABLE charges DROP CONSTRAINT IF EXISTS charges_pkey;
CREATE INDEX charges_lookup ON charges (hashtextextended(message, 0));
