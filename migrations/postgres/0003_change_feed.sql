-- sqlhsm schema version 3 (PostgreSQL dialect). Keep in step with migrations/sqlite/0003_change_feed.sql.
--
-- Every process caches objects and unsealed keys. A commit that changes a token, a key or an
-- object notifies channel `sqlhsm_changes`, so every process on every host learns within
-- moments that its cache may be stale (see "Consistency" in the README). One notification per
-- statement: the payload is the table, listeners only need to know that something changed.
CREATE FUNCTION sqlhsm_notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('sqlhsm_changes', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER provider_config_changed AFTER INSERT OR UPDATE OR DELETE ON provider_config
    FOR EACH STATEMENT EXECUTE FUNCTION sqlhsm_notify_change();
CREATE TRIGGER asym_key_changed AFTER INSERT OR UPDATE OR DELETE ON asym_key
    FOR EACH STATEMENT EXECUTE FUNCTION sqlhsm_notify_change();
CREATE TRIGGER sym_key_changed AFTER INSERT OR UPDATE OR DELETE ON sym_key
    FOR EACH STATEMENT EXECUTE FUNCTION sqlhsm_notify_change();
CREATE TRIGGER p11_object_changed AFTER INSERT OR UPDATE OR DELETE ON p11_object
    FOR EACH STATEMENT EXECUTE FUNCTION sqlhsm_notify_change();
