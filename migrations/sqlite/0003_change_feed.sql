-- sqlhsm schema version 3 (SQLite dialect). Keep in step with migrations/postgres/0003_change_feed.sql.
--
-- PostgreSQL announces changes with triggers and NOTIFY. SQLite needs no schema for it: every
-- process asks `PRAGMA data_version` on a connection of its own, which changes whenever another
-- connection commits. The version is kept so both dialects stay at the same number.
SELECT 1;
