-- sqlhsm schema version 4 (SQLite dialect). Keep in step with migrations/postgres/0004_lifecycle.sql.
--
-- Key lifecycle: searches by status use an index, and every lifecycle event (creation, import,
-- status or expiration change, rotation, destruction) is kept in `key_event`, which has no
-- foreign key so the history outlives the key.
CREATE INDEX asym_key_status_idx ON asym_key (provider_config_id, key_status);
CREATE INDEX sym_key_status_idx ON sym_key (provider_config_id, key_status);

CREATE TABLE key_event (
    id                 TEXT PRIMARY KEY NOT NULL,
    key_id             TEXT NOT NULL,
    provider_config_id TEXT NOT NULL,
    event              TEXT NOT NULL,
    actor              TEXT NOT NULL,
    old_value          TEXT CHECK (old_value IS NULL OR json_valid(old_value)),
    new_value          TEXT CHECK (new_value IS NULL OR json_valid(new_value)),
    at                 TEXT NOT NULL
);

CREATE INDEX key_event_key_idx ON key_event (key_id, at);
