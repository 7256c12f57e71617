
-- ---------------------------------------------------------------------------
-- Audit history: the log (written by the native trigger workflow.audit_trigger)
-- ---------------------------------------------------------------------------

-- One row per audited row change (or TRUNCATE). The native trigger fills id
-- in the order the changes are logged, so ORDER BY id is the order of changes
-- to a row (a later change to a row waits for the earlier one's commit, then
-- takes a larger id). Each trigger call takes one block of 512 ids with one
-- nextval (INCREMENT BY 512; kIdBlock in src/extension/audit_writer.hpp) and
-- numbers its rows within it: ids are unique and ordered, not dense.
CREATE SEQUENCE workflow.audit_log_id_seq INCREMENT BY 512;

CREATE TABLE workflow.audit_log (
  -- Unique by construction (only the trigger writes, each row takes its own
  -- nextval); no unique index, as every index is paid on every audited row.
  id          bigint      NOT NULL DEFAULT nextval('workflow.audit_log_id_seq'),
  relid       oid         NOT NULL,
  schema_name text        NOT NULL,
  table_name  text        NOT NULL,
  operation   text        NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
  row_key     jsonb,
  old_values  jsonb,
  new_values  jsonb,
  actor       text        NOT NULL,
  txid        bigint      NOT NULL,
  changed_at  timestamptz NOT NULL
);
ALTER SEQUENCE workflow.audit_log_id_seq OWNED BY workflow.audit_log.id;

COMMENT ON TABLE workflow.audit_log IS
  'Row history of tables audited with workflow.enable_audit: key, changed columns (old/new), actor, txid, statement time';
COMMENT ON COLUMN workflow.audit_log.row_key IS 'primary key of the row as jsonb (NULL for TRUNCATE)';
COMMENT ON COLUMN workflow.audit_log.old_values IS 'UPDATE: old values of the changed columns; DELETE: the whole row';
COMMENT ON COLUMN workflow.audit_log.new_values IS 'UPDATE: new values of the changed columns; INSERT: the whole row';
COMMENT ON COLUMN workflow.audit_log.actor IS 'SET LOCAL workflow.actor when set, else the database user';

-- History of one row: a hash index on the key's hash seeded with the table,
-- one int8 per log row. Measured cheaper to maintain on every audited row
-- than a btree on the same value (no descent, no page splits in key order)
-- or on (relid, row_key) (jsonb comparisons). Queries recheck relid/row_key.
CREATE INDEX audit_log_row_idx
  ON workflow.audit_log USING hash (jsonb_hash_extended(row_key, relid::bigint));
-- TRUNCATE events (row_key NULL) of a table; the predicate keeps other rows out.
CREATE INDEX audit_log_truncate_idx
  ON workflow.audit_log (relid) WHERE row_key IS NULL;

SELECT pg_catalog.pg_extension_config_dump('workflow.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_log_id_seq', '');

-- Only the trigger writes the log (it inserts below the SQL layer). Readers
-- see the history of the tables they may read.
REVOKE ALL ON workflow.audit_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE workflow.audit_log_id_seq FROM PUBLIC;
GRANT SELECT ON workflow.audit_log TO PUBLIC;
ALTER TABLE workflow.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_readable ON workflow.audit_log FOR SELECT
  USING (coalesce(pg_catalog.has_table_privilege(relid, 'SELECT'), false));
