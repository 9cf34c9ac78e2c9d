-- sqlhsm schema version 2 (SQLite dialect). Keep in step with migrations/postgres/0002_objects.sql.
--
-- PKCS#11 objects that are not keys (CKO_CERTIFICATE, CKO_DATA) have no place in the three
-- key tables, so they get their own. `value` holds CKA_VALUE: in clear for public objects
-- (a certificate is public by nature), sealed under the token key for private ones.
CREATE TABLE p11_object (
    id                 TEXT PRIMARY KEY NOT NULL,
    provider_config_id TEXT NOT NULL REFERENCES provider_config (id) ON DELETE RESTRICT,
    object_class       INTEGER NOT NULL,
    value              BLOB,
    metadata           TEXT NOT NULL CHECK (json_valid(metadata)),
    created_at         TEXT NOT NULL,
    updated_at         TEXT NOT NULL
);

CREATE INDEX p11_object_class_idx ON p11_object (provider_config_id, object_class);
CREATE INDEX p11_object_label_idx
    ON p11_object (provider_config_id, json_extract(metadata, '$.label'));
CREATE INDEX p11_object_ck_id_idx
    ON p11_object (provider_config_id, json_extract(metadata, '$.id'));
