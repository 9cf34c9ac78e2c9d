-- sqlhsm schema version 1 (PostgreSQL dialect). Keep in step with migrations/sqlite/0001_init.sql.

CREATE TABLE IF NOT EXISTS schema_migrations (
    version    BIGINT PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per token. `config` holds the token record; `config->>'slot'` is the token's stable
-- slot number, unique across tokens.
CREATE TABLE provider_config (
    id            UUID PRIMARY KEY,
    provider_name VARCHAR NOT NULL,
    config        JSONB NOT NULL,
    metadata      JSONB NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    updated_at    TIMESTAMPTZ NOT NULL,
    CONSTRAINT provider_config_provider_name_key UNIQUE (provider_name)
);

CREATE UNIQUE INDEX provider_config_slot_key
    ON provider_config ((config->>'slot'));

CREATE TABLE asym_key (
    id                 UUID PRIMARY KEY,
    provider_config_id UUID NOT NULL
        REFERENCES provider_config (id) ON DELETE RESTRICT,
    key_id             VARCHAR NOT NULL,
    key_algorithm      INTEGER NOT NULL,
    key_status         INTEGER NOT NULL,
    key_mode           INTEGER NOT NULL,
    expiration         TIMESTAMPTZ,
    public_key_ctx     JSONB,
    private_key_ctx    JSONB,
    metadata           JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT asym_key_key_id_key UNIQUE (key_id)
);

-- The expressions must match the queries of the PostgreSQL backend, or the planner will not use
-- these indexes.
CREATE INDEX asym_key_label_idx
    ON asym_key (provider_config_id, (metadata->>'label'));
CREATE INDEX asym_key_ck_id_idx
    ON asym_key (provider_config_id, (metadata->>'id'));
CREATE INDEX asym_key_algorithm_idx
    ON asym_key (provider_config_id, key_algorithm);

CREATE TABLE sym_key (
    id                 UUID PRIMARY KEY,
    provider_config_id UUID NOT NULL
        REFERENCES provider_config (id) ON DELETE RESTRICT,
    key_id             VARCHAR NOT NULL,
    key_status         INTEGER NOT NULL,
    key_mode           INTEGER NOT NULL,
    expiration         TIMESTAMPTZ,
    key_value          BYTEA,
    metadata           JSONB NOT NULL,
    created_at         TIMESTAMPTZ NOT NULL,
    updated_at         TIMESTAMPTZ NOT NULL,
    CONSTRAINT sym_key_key_id_key UNIQUE (key_id)
);

CREATE INDEX sym_key_label_idx
    ON sym_key (provider_config_id, (metadata->>'label'));
CREATE INDEX sym_key_ck_id_idx
    ON sym_key (provider_config_id, (metadata->>'id'));
