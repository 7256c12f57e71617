
-- ---------------------------------------------------------------------------
-- Audit history across pg_dump/restore: a restored workflow.audit_tables row
-- is mapped to the table of its name in the new database (the BEFORE INSERT
-- trigger is created in src/sql/21_audit_triggers.sql). Re-runnable (CREATE
-- OR REPLACE): src/sql/upgrade/1.7--1.8.list runs it.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION workflow.audit_tables_restore_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  existing workflow.audit_tables;
BEGIN
  IF current_setting('workflow.audit_registering', true) = 'on' THEN
    -- Written by enable_audit (or by someone who set the flag): the id is
    -- always the sequence's, so no one can take an id ahead of it.
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
      NEW.id := nextval('workflow.audit_tables_id_seq');
    END IF;
    RETURN NEW;
  END IF;
  -- A restored row: only the restore (a superuser) writes those.
  IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RAISE EXCEPTION 'workflow.audit_tables: rows are written by workflow.enable_audit'
      USING ERRCODE = '42501';
  END IF;
  -- A row whose table was dropped in the dumped database (relid NULL there)
  -- stays a dropped table's, also when a live table of that name is restored
  -- (one renamed to it, audited under a row of its own): mapping both rows
  -- to it made row_history read the dropped table's history.
  IF NEW.relid IS NOT NULL THEN
    NEW.relid := to_regclass(format('%I.%I', NEW.schema_name, NEW.table_name));
  END IF;
  SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}') INTO NEW.exclude_attnums
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = NEW.relid AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname = ANY (NEW.exclude_columns);
  NEW.restore_pending := false;
  SELECT * INTO existing FROM workflow.audit_tables t WHERE t.id = NEW.id;
  IF FOUND THEN
    -- The row CREATE EXTENSION made (survey_steps): the dump's settings win.
    UPDATE workflow.audit_tables t
       SET schema_name = NEW.schema_name, table_name = NEW.table_name, relid = NEW.relid,
           audited = NEW.audited, statement_level = NEW.statement_level,
           exclude_columns = NEW.exclude_columns, exclude_attnums = NEW.exclude_attnums
     WHERE t.id = NEW.id;
    PERFORM workflow.audit_reattach_extension_table(NEW.id);
    RETURN NULL;
  END IF;
  RETURN NEW;
END;
$$;
COMMENT ON FUNCTION workflow.audit_tables_restore_row() IS
  'Internal trigger: a workflow.audit_tables row restored by pg_restore is mapped to the table of its name (OID, excluded column numbers); the row CREATE EXTENSION made is updated instead.';
REVOKE EXECUTE ON FUNCTION workflow.audit_tables_restore_row() FROM PUBLIC;
