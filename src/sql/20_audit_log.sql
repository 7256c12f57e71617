
-- ---------------------------------------------------------------------------
-- Audit history: the log (written by the native trigger workflow.audit_trigger)
-- ---------------------------------------------------------------------------

-- One row per audited row change (or TRUNCATE). The native trigger fills id
-- in the order the changes are logged, so ORDER BY id is the order of changes
-- to a row (a later change to a row waits for the earlier one's commit, then
-- takes a larger id). Each trigger call takes one block of 512 ids with one
-- nextval (INCREMENT BY 512; kIdBlock in src/extension/audit_writer.hpp) and
-- numbers its rows within it: ids are unique and ordered, not dense.
-- The audited tables, by name: the log refers to a table by this registry's
-- id, which survives pg_dump/restore (the rows are dumped) and renames (an
-- event trigger keeps the names in step, src/sql/21_audit_triggers.sql). relid
-- is the table's OID in this database: remapped by name when the registry is
-- restored, NULL once the table is dropped. Excluded columns are kept both as
-- attribute numbers of the table (what the trigger reads: renaming a column
-- does not change it) and as names (what a restore maps back to numbers).
CREATE SEQUENCE workflow.audit_tables_id_seq AS integer;
CREATE TABLE workflow.audit_tables (
  id              integer  PRIMARY KEY DEFAULT nextval('workflow.audit_tables_id_seq'),
  schema_name     text     NOT NULL,
  table_name      text     NOT NULL,
  relid           oid,
  audited         boolean  NOT NULL DEFAULT true,
  statement_level boolean  NOT NULL DEFAULT true,
  exclude_columns text[]   NOT NULL DEFAULT '{}',
  exclude_attnums int2[]   NOT NULL DEFAULT '{}',
  -- Set when the registry of an extension table is restored: the restore's
  -- own load of the table's rows (whose history came back with the log) is
  -- not logged again. Cleared by the table's first UPDATE, DELETE or TRUNCATE.
  restore_pending boolean  NOT NULL DEFAULT false
);
ALTER SEQUENCE workflow.audit_tables_id_seq OWNED BY workflow.audit_tables.id;
CREATE INDEX audit_tables_relid_idx ON workflow.audit_tables (relid);
CREATE INDEX audit_tables_name_idx ON workflow.audit_tables (schema_name, table_name);
COMMENT ON TABLE workflow.audit_tables IS
  'Tables audited with workflow.enable_audit (also after disable_audit, for their history): id (workflow.audit_log.table_id), current schema and table name, OID in this database, mode, excluded columns';
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_tables', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_tables_id_seq', '');
-- Readable by all (the log's row-level security reads it); written only by
-- enable_audit, disable_audit and the event triggers (SECURITY DEFINER: see
-- src/sql/23_audit_privileges.sql for who may call them).
REVOKE ALL ON workflow.audit_tables FROM PUBLIC;
REVOKE ALL ON SEQUENCE workflow.audit_tables_id_seq FROM PUBLIC;
GRANT SELECT ON workflow.audit_tables TO PUBLIC;
ALTER TABLE workflow.audit_tables ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_tables_readable ON workflow.audit_tables FOR SELECT USING (true);

CREATE SEQUENCE workflow.audit_log_id_seq INCREMENT BY 512;

CREATE TABLE workflow.audit_log (
  -- Unique by construction (only the trigger writes, each row takes its own
  -- nextval); no unique index, as every index is paid on every audited row.
  id          bigint      NOT NULL DEFAULT nextval('workflow.audit_log_id_seq'),
  -- The table (workflow.audit_tables.id): survives restores and renames.
  table_id    integer     NOT NULL,
  -- Its names when the change was logged (partitions log their root's).
  schema_name text        NOT NULL,
  table_name  text        NOT NULL,
  operation   text        NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
  row_key     jsonb,
  old_values  jsonb,
  new_values  jsonb,
  actor       text        NOT NULL,
  txid        bigint      NOT NULL,
  changed_at  timestamptz NOT NULL,
  -- Who made the change, as the server knows it (beside the claimed actor):
  -- NULL in rows logged by 1.0. Last, as ALTER TABLE adds them on upgrade.
  session_user_name text,
  current_user_name text
);
ALTER SEQUENCE workflow.audit_log_id_seq OWNED BY workflow.audit_log.id;

COMMENT ON TABLE workflow.audit_log IS
  'Row history of tables audited with workflow.enable_audit: key, changed columns (old/new), actor, txid, statement time';
COMMENT ON COLUMN workflow.audit_log.row_key IS 'primary key of the row as jsonb (NULL for TRUNCATE)';
COMMENT ON COLUMN workflow.audit_log.old_values IS 'UPDATE: old values of the changed columns; DELETE: the whole row';
COMMENT ON COLUMN workflow.audit_log.new_values IS 'UPDATE: new values of the changed columns; INSERT: the whole row';
COMMENT ON COLUMN workflow.audit_log.actor IS
  'Claimed actor: SET LOCAL workflow.actor when set (any role may set it), else the session user';
COMMENT ON COLUMN workflow.audit_log.session_user_name IS
  'session_user of the change: the login role (behind a pooler, its pooled role); NULL in rows logged before 1.1';
COMMENT ON COLUMN workflow.audit_log.current_user_name IS
  'current_user of the change: the role whose privileges made it (the owner inside a SECURITY DEFINER function); NULL in rows logged before 1.1';

-- History of one row: a hash index on the key's hash seeded with the table,
-- one int8 per log row. Measured cheaper to maintain on every audited row
-- than a btree on the same value (no descent, no page splits in key order)
-- or on (table_id, row_key) (jsonb comparisons). Queries recheck table_id/row_key.
CREATE INDEX audit_log_row_idx
  ON workflow.audit_log USING hash (jsonb_hash_extended(row_key, table_id::bigint));
-- TRUNCATE events (row_key NULL) of a table; the predicate keeps other rows out.
CREATE INDEX audit_log_truncate_idx
  ON workflow.audit_log (table_id) WHERE row_key IS NULL;

SELECT pg_catalog.pg_extension_config_dump('workflow.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_log_id_seq', '');

-- Only the trigger writes the log (it inserts below the SQL layer); only
-- workflow.purge_audit_log deletes from it. Who reads what (the policy):
-- members of workflow_auditor every row, also of tables dropped or revoked
-- since; anyone else the history of the tables it may SELECT now, except
-- of a table with row-level security, whose history only its owner reads
-- (the log has no row's policy to apply). Superusers and BYPASSRLS roles
-- read every row (PostgreSQL applies no policy for them, the log's neither).
-- Visibility depends on the table only: both tests are InitPlans, evaluated
-- once per query (the readable tables' ids as an array), not once per row.
REVOKE ALL ON workflow.audit_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE workflow.audit_log_id_seq FROM PUBLIC;
GRANT SELECT ON workflow.audit_log TO PUBLIC;
ALTER TABLE workflow.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_readable ON workflow.audit_log FOR SELECT
  USING ((SELECT pg_catalog.pg_has_role('workflow_auditor', 'USAGE'))
         OR table_id = ANY (ARRAY(SELECT t.id FROM workflow.audit_tables t
                                   WHERE pg_catalog.has_table_privilege(t.relid, 'SELECT')
                                     AND (SELECT NOT c.relrowsecurity OR pg_catalog.pg_has_role(c.relowner, 'USAGE')
                                            FROM pg_catalog.pg_class c WHERE c.oid = t.relid))));
