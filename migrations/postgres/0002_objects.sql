-- sqlhsm schema version 2 (PostgreSQL dialect). Keep in step with migrations/sqlite/0002_objects.sql.
--
-- PKCS#11 objects that are not keys (CKO_CERTIFICATE, CKO_DATA) have no place in the three
-- key tables, so they get their own. `value` holds CKA_VALUE: in clear for public objects
-- (a certificate is public by nature), sealed under the token key for private ones.
CREATE TABLE p11_object (
    id                 uuid PRIMARY KEY,
    provider_config_id uuid NOT NULL REFERENCES provider_config (id) ON DELETE RESTRICT,
    object_class       bigint NOT NULL,
    value              bytea,
    metadata           jsonb NOT NULL,
    created_at         timestamptz NOT NULL,
    updated_at         timestamptz NOT NULL
);

CREATE INDEX p11_object_class_idx ON p11_object (provider_config_id, object_class);
CREATE INDEX p11_object_label_idx ON p11_object (provider_config_id, (metadata->>'label'));
CREATE INDEX p11_object_ck_id_idx ON p11_object (provider_config_id, (metadata->>'id'));
