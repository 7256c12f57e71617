
-- ---------------------------------------------------------------------------
-- Audit history: an audited table keeps a primary key (1.8)
-- ---------------------------------------------------------------------------
-- History is kept per primary key: enable_audit refuses a table without one,
-- and this event trigger refuses an ALTER TABLE that takes it away (DROP
-- CONSTRAINT, DROP COLUMN ... CASCADE) while the table is audited. Without it
-- the trigger logged every row of the table under the key {} from then on, one
-- history for all rows. Changing the key in one ALTER TABLE (DROP CONSTRAINT
-- ..., ADD PRIMARY KEY ...) is allowed. Re-runnable (CREATE OR REPLACE, the
-- event trigger only when missing): src/sql/upgrade/1.7--1.8.list runs it.

CREATE OR REPLACE FUNCTION workflow.audit_keep_primary_key() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  lost record;
BEGIN
  SELECT t.schema_name, t.table_name INTO lost
    FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
    JOIN workflow.audit_tables t ON t.relid = cmd.objid
   WHERE cmd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND t.audited
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.relid AND i.indisprimary)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'table %.% is audited and must keep a primary key',
      pg_catalog.quote_ident(lost.schema_name), pg_catalog.quote_ident(lost.table_name)
      USING ERRCODE = '55000',
            HINT = 'Change the key in one ALTER TABLE (DROP CONSTRAINT ..., ADD PRIMARY KEY (...)), or run workflow.disable_audit first.';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow.audit_keep_primary_key() IS
  'Internal event trigger (ddl_command_end, ALTER TABLE): refuses (55000) a command that leaves an audited table without a primary key.';
REVOKE EXECUTE ON FUNCTION workflow.audit_keep_primary_key() FROM PUBLIC;

DO $guard$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'workflow_audit_keep_primary_key') THEN
    CREATE EVENT TRIGGER workflow_audit_keep_primary_key ON ddl_command_end
      WHEN TAG IN ('ALTER TABLE')
      EXECUTE FUNCTION workflow.audit_keep_primary_key();
  END IF;
END
$guard$;
