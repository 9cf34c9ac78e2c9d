-- sqlhsm schema version 4 (PostgreSQL dialect). Keep in step with migrations/sqlite/0004_lifecycle.sql.
--
-- Key lifecycle: searches by status use an index, and every lifecycle event (creation, import,
-- status or expiration change, rotation, destruction) is kept in `key_event`, which has no
-- foreign key so the history outlives the key.
CREATE INDEX asym_key_status_idx ON asym_key (provider_config_id, key_status);
CREATE INDEX sym_key_status_idx ON sym_key (provider_config_id, key_status);

CREATE TABLE key_event (
    id                 uuid PRIMARY KEY,
    key_id             varchar NOT NULL,
    provider_config_id uuid NOT NULL,
    event              varchar NOT NULL,
    actor              varchar NOT NULL,
    old_value          jsonb,
    new_value          jsonb,
    at                 timestamptz NOT NULL
);

CREATE INDEX key_event_key_idx ON key_event (key_id, at);
