-- Every node keeps the directory rows deliveries and logins look up in memory (sql/dir_cache.rs)
-- and forgets them when told so on the channel `wharf_directory`. These triggers tell it after
-- any change, whoever makes it: another node, the CLI, `wharf migrate`, a restore or manual SQL.
-- NOTIFY is delivered at commit, and one per transaction (identical payloads are folded).
-- `accounts`: only the columns an `Account` carries; deliveries update `used_bytes` and must not
-- empty every node's cache.
CREATE FUNCTION wharf_directory_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('wharf_directory', '');
    RETURN NULL;
END;
$$;

CREATE TRIGGER domains_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON domains
    FOR EACH STATEMENT EXECUTE FUNCTION wharf_directory_changed();
CREATE TRIGGER accounts_notify
    AFTER INSERT OR DELETE OR TRUNCATE
       OR UPDATE OF id, domain_id, local_part, local_key, secret_hash, scram_sha256, quota_bytes,
                    disabled, pop3_expire_days, role
    ON accounts
    FOR EACH STATEMENT EXECUTE FUNCTION wharf_directory_changed();
CREATE TRIGGER aliases_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON aliases
    FOR EACH STATEMENT EXECUTE FUNCTION wharf_directory_changed();
CREATE TRIGGER sieve_scripts_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON sieve_scripts
    FOR EACH STATEMENT EXECUTE FUNCTION wharf_directory_changed();
CREATE TRIGGER spam_lists_notify AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON spam_lists
    FOR EACH STATEMENT EXECUTE FUNCTION wharf_directory_changed();
