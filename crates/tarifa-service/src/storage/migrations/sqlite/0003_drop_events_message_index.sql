-- 3 on SQLite, 4 on PostgreSQL: a message's events were found through the unique index of keys
-- instead (on PostgreSQL until its migration 6, `0006_hashed_lookups.sql`); every event was
-- inserted into this index too, at a random place.

DROP INDEX IF EXISTS events_message;
