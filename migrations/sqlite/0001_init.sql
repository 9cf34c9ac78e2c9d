-- sqlhsm schema version 1 (SQLite dialect). Keep in step with migrations/postgres/0001_init.sql.
--
-- SQLite has no uuid/jsonb/timestamptz types, so:
--   * uuids are TEXT, lowercase and hyphenated;
--   * JSON is TEXT (checked with json_valid);
--   * timestamps are TEXT in RFC 3339 UTC with exactly six fractional digits
--     (2026-11-28T12:00:00.123456Z), so that text order is time order.
-- Foreign keys need `PRAGMA foreign_keys=ON` on every connection (the backend sets it).

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    INTEGER PRIMARY KEY NOT NULL,
    applied_at TEXT NOT NULL
);

-- One row per token. `config` holds the token record; `config.slot` is the token's stable slot
-- number, unique across tokens.
CREATE TABLE provider_config (
    id            TEXT PRIMARY KEY NOT NULL,
    provider_name TEXT NOT NULL UNIQUE,
    config        TEXT NOT NULL CHECK (json_valid(config)),
    metadata      TEXT NOT NULL CHECK (json_valid(metadata)),
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

CREATE UNIQUE INDEX provider_config_slot_key
    ON provider_config (json_extract(config, '$.slot'));

CREATE TABLE asym_key (
    id                 TEXT PRIMARY KEY NOT NULL,
    provider_config_id TEXT NOT NULL REFERENCES provider_config (id) ON DELETE RESTRICT,
    key_id             TEXT NOT NULL UNIQUE,
    key_algorithm      INTEGER NOT NULL,
    key_status         INTEGER NOT NULL,
    key_mode           INTEGER NOT NULL,
    expiration         TEXT,
    public_key_ctx     TEXT CHECK (public_key_ctx IS NULL OR json_valid(public_key_ctx)),
    private_key_ctx    TEXT CHECK (private_key_ctx IS NULL OR json_valid(private_key_ctx)),
    metadata           TEXT NOT NULL CHECK (json_valid(metadata)),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

-- The expressions must match the queries in src/storage/sqlite.rs character for character,
-- or SQLite will not use these indexes.
CREATE INDEX asym_key_label_idx
    ON asym_key (provider_config_id, json_extract(metadata, '$.label'));
CREATE INDEX asym_key_ck_id_idx
    ON asym_key (provider_config_id, json_extract(metadata, '$.id'));
CREATE INDEX asym_key_algorithm_idx
    ON asym_key (provider_config_id, key_algorithm);

CREATE TABLE sym_key (
    id                 TEXT PRIMARY KEY NOT NULL,
    provider_config_id TEXT NOT NULL REFERENCES provider_config (id) ON DELETE RESTRICT,
    key_id             TEXT NOT NULL UNIQUE,
    key_status         INTEGER NOT NULL,
    key_mode           INTEGER NOT NULL,
    expiration         TEXT,
    key_value          BLOB,
    metadata           TEXT NOT NULL CHECK (json_valid(metadata)),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

CREATE INDEX sym_key_label_idx
    ON sym_key (provider_config_id, json_extract(metadata, '$.label'));
CREATE INDEX sym_key_ck_id_idx
    ON sym_key (provider_config_id, json_extract(metadata, '$.id'));
