-- PostgreSQL 3: identifiers (keys, message ids, business ids) compare byte by byte. With the
-- database's collation (often `en_US.UTF-8` or, before PostgreSQL 17, a libc `C.UTF-8`), every
-- comparison in these random-key indexes goes through the locale's `strcoll`. SQLite compares
-- bytes already (`BINARY`).

ALTER TABLE events ALTER COLUMN key TYPE TEXT COLLATE "C",
  ALTER COLUMN business TYPE TEXT COLLATE "C", ALTER COLUMN message TYPE TEXT COLLATE "C";
ALTER TABLE charges ALTER COLUMN message TYPE TEXT COLLATE "C",
  ALTER COLUMN business TYPE TEXT COLLATE "C";
