
-- ---------------------------------------------------------------------------
-- Audit history: a restored audit trigger takes its dropped table's registry
-- row back (1.8)
-- ---------------------------------------------------------------------------
-- DROP TABLE (or DROP SCHEMA ... CASCADE) leaves the table's registry row with
-- relid NULL and audited false. When the table comes back with its audit
-- triggers from a dump of its schema (pg_dump --schema=app, restored into the
-- same database), each CREATE TRIGGER names that row: it is the table's again
-- when its names are the table's (or, for a partition's trigger, an
-- ancestor's), so its relid and audited flag are set and its excluded columns
-- mapped to the table's attribute numbers. A trigger whose row belongs to
-- another table is left alone: the trigger refuses to log (39P01) until
-- enable_audit is run. Only superusers (a restore) create audit triggers.
-- Re-runnable (CREATE OR REPLACE, the event trigger only when missing):
-- src/sql/upgrade/1.7--1.8.list runs it.

CREATE OR REPLACE FUNCTION workflow.audit_trigger_relink() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trg record;
  owner_rel oid;
BEGIN
  FOR trg IN
    SELECT g.tgrelid, r.id AS reg_id, r.schema_name, r.table_name
      FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
      JOIN pg_catalog.pg_trigger g ON g.oid = cmd.objid
      JOIN workflow.audit_tables r ON r.id = workflow.audit_trigger_table_id(g.tgargs, g.tgnargs)
     WHERE cmd.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
       AND g.tgfoid = 'workflow.audit_trigger()'::pg_catalog.regprocedure
       AND (r.relid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.relid))
  LOOP
    SELECT c.oid INTO owner_rel
      FROM (SELECT trg.tgrelid AS relid UNION ALL
            SELECT a.relid FROM pg_catalog.pg_partition_ancestors(trg.tgrelid) a) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = trg.schema_name AND c.relname = trg.table_name
     LIMIT 1;
    IF FOUND THEN
      UPDATE workflow.audit_tables t
         SET relid = owner_rel, audited = true,
             exclude_attnums = (SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}')
                                  FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = owner_rel AND a.attnum > 0 AND NOT a.attisdropped
                                   AND a.attname = ANY (t.exclude_columns))
       WHERE t.id = trg.reg_id;
    END IF;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.audit_trigger_relink() IS
  'Internal event trigger (ddl_command_end, CREATE TRIGGER): a restored audit trigger whose registry row is that of a dropped table of the same name (or of a partition''s ancestor) links the row to the table again.';
REVOKE EXECUTE ON FUNCTION workflow.audit_trigger_relink() FROM PUBLIC;

DO $relink$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'workflow_audit_trigger_relink') THEN
    CREATE EVENT TRIGGER workflow_audit_trigger_relink ON ddl_command_end
      WHEN TAG IN ('CREATE TRIGGER')
      EXECUTE FUNCTION workflow.audit_trigger_relink();
  END IF;
END
$relink$;
