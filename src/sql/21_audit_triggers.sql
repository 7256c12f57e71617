
-- ---------------------------------------------------------------------------
-- Audit history: native triggers and enable/disable
-- ---------------------------------------------------------------------------

CREATE FUNCTION workflow.audit_trigger() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'workflow_audit_trigger';
COMMENT ON FUNCTION workflow.audit_trigger() IS
  'Native AFTER trigger writing workflow.audit_log; attach it with workflow.enable_audit. Argument: the table''s workflow.audit_tables id.';

CREATE FUNCTION workflow.set_updated_at() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'workflow_set_updated_at';
COMMENT ON FUNCTION workflow.set_updated_at() IS
  'Native BEFORE INSERT/UPDATE row trigger setting a timestamptz/timestamp column to now(). Arguments: column (default updated_at), then ''skip_noop'' to keep the stamp when nothing else changed.';

-- Checks shared by the audit functions; returns the table's pg_class row.
CREATE FUNCTION workflow.audit_check_table(target regclass, caller text)
RETURNS pg_catalog.pg_class
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION '%: target must not be NULL', caller USING ERRCODE = '22004';
  END IF;
  SELECT * INTO rel FROM pg_catalog.pg_class c WHERE c.oid = target;
  IF NOT FOUND THEN
    RAISE EXCEPTION '%: relation with OID % does not exist', caller, target::oid
      USING ERRCODE = '42P01';
  END IF;
  IF rel.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '%: % is not a table', caller, target USING ERRCODE = '22023';
  END IF;
  RETURN rel;
END;
$$;
COMMENT ON FUNCTION workflow.audit_check_table(regclass, text) IS
  'Internal: raises 22004/42P01/22023 unless target is an existing ordinary or partitioned table.';

-- The workflow.audit_tables id a trigger of workflow.audit_trigger names (its
-- first argument), NULL for any other trigger.
CREATE FUNCTION workflow.audit_trigger_table_id(tgargs bytea, tgnargs int2)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN tgnargs >= 1 AND split_part(encode(tgargs, 'escape'), '\000', 1) ~ '^[0-9]{1,9}$'
              THEN split_part(encode(tgargs, 'escape'), '\000', 1)::integer END
$$;
COMMENT ON FUNCTION workflow.audit_trigger_table_id(bytea, int2) IS
  'Internal: the workflow.audit_tables id named by an audit trigger''s arguments (pg_trigger.tgargs, tgnargs), else NULL.';
REVOKE EXECUTE ON FUNCTION workflow.audit_trigger_table_id(bytea, int2) FROM PUBLIC;

-- workflow.enable_audit and workflow.disable_audit, and who may call them:
-- src/sql/23_audit_privileges.sql.

CREATE FUNCTION workflow.audit_drop_triggers(target regclass)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trg record;
  dropped integer := 0;
BEGIN
  -- The table's own triggers and its partitions' (clones of a row trigger go
  -- with their parent).
  FOR trg IN
    SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid IN (SELECT target UNION SELECT p.relid FROM pg_catalog.pg_partition_tree(target) p)
      AND NOT t.tgisinternal AND t.tgparentid = 0
      AND t.tgfoid = 'workflow.audit_trigger()'::regprocedure
    ORDER BY t.tgrelid = target DESC
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
    IF trg.rel = target THEN
      dropped := dropped + 1;
    END IF;
  END LOOP;
  RETURN dropped;
END;
$$;
COMMENT ON FUNCTION workflow.audit_drop_triggers(regclass) IS
  'Internal: drops every workflow.audit_trigger trigger of a table and of its partitions; returns how many the table itself had.';

-- ---------------------------------------------------------------------------
-- Audit history across pg_dump/restore: the registry's rows come back with
-- the log (pg_extension_config_dump). A restored row is mapped to the table
-- of that name in the new database; an extension table's audit triggers
-- (not dumped: the table belongs to the extension) are attached again.
-- ---------------------------------------------------------------------------

-- workflow.audit_tables_restore_row (the BEFORE INSERT trigger below):
-- src/sql/21_audit_restore_row.sql.

CREATE FUNCTION workflow.audit_tables_restored() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF current_setting('workflow.audit_registering', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM workflow.audit_reattach_extension_table(NEW.id);
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION workflow.audit_tables_restored() IS
  'Internal trigger: after a workflow.audit_tables row is restored, an extension table''s audit triggers are attached again.';
REVOKE EXECUTE ON FUNCTION workflow.audit_tables_restored() FROM PUBLIC;

-- Attaches again the audit triggers of a restored, audited extension table
-- (pg_dump does not dump triggers of extension tables; user tables' triggers
-- are in the dump) and marks its own reload as not to be logged again.
CREATE FUNCTION workflow.audit_reattach_extension_table(reg_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r workflow.audit_tables;
BEGIN
  SELECT * INTO r FROM workflow.audit_tables t WHERE t.id = reg_id;
  IF NOT FOUND OR r.relid IS NULL OR NOT r.audited THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                 WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.relid
                   AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e') THEN
    RETURN;
  END IF;
  PERFORM workflow.enable_audit(r.relid::regclass, r.exclude_columns, r.statement_level);
  UPDATE workflow.audit_tables t SET restore_pending = true WHERE t.id = reg_id;
END;
$$;
COMMENT ON FUNCTION workflow.audit_reattach_extension_table(integer) IS
  'Internal (restore): re-attaches the audit triggers of an audited extension table and sets its restore_pending.';
REVOKE EXECUTE ON FUNCTION workflow.audit_reattach_extension_table(integer) FROM PUBLIC;

CREATE TRIGGER audit_tables_restore_row BEFORE INSERT ON workflow.audit_tables
  FOR EACH ROW EXECUTE FUNCTION workflow.audit_tables_restore_row();
CREATE TRIGGER audit_tables_restored AFTER INSERT ON workflow.audit_tables
  FOR EACH ROW EXECUTE FUNCTION workflow.audit_tables_restored();

-- ---------------------------------------------------------------------------
-- Audit history across DDL (event triggers): the registry's names follow
-- renames of tables, schemas and excluded columns (so a dump restores by the
-- current names); partitions created or attached later get the statement
-- triggers, detached ones lose them; a dropped table's registry row keeps
-- its names, not its OID.
-- ---------------------------------------------------------------------------

CREATE FUNCTION workflow.audit_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  reg record;
  trg record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM workflow.audit_tables) THEN
    RETURN;
  END IF;
  UPDATE workflow.audit_tables t
     SET schema_name = n.nspname, table_name = c.relname,
         exclude_columns = coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
                                       FROM pg_catalog.pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attnum = ANY (t.exclude_attnums)
                                        AND NOT a.attisdropped), '{}')
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = t.relid
     AND (t.schema_name, t.table_name, t.exclude_columns) IS DISTINCT FROM
         (n.nspname::text, c.relname::text,
          coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
                      FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum = ANY (t.exclude_attnums)
                       AND NOT a.attisdropped), '{}'));

  -- Partition trees touched by this command: a statement-level audited root
  -- whose partitions lack its triggers gets them again (only once the root
  -- has its own: during a restore, the dump brings the partitions' triggers).
  FOR reg IN
    SELECT DISTINCT t.id, t.relid
      FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
      CROSS JOIN LATERAL (SELECT cmd.objid AS relid
                          UNION SELECT a.relid FROM pg_catalog.pg_partition_ancestors(cmd.objid) a) anc
      JOIN workflow.audit_tables t ON t.relid = anc.relid
     WHERE cmd.classid = 'pg_catalog.pg_class'::regclass AND t.audited AND t.statement_level
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = cmd.objid AND c.relkind IN ('r', 'p'))
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid = reg.relid AND g.tgfoid = 'workflow.audit_trigger()'::regprocedure
                  AND workflow.audit_trigger_table_id(g.tgargs, g.tgnargs) = reg.id)
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(reg.relid) p
                    WHERE p.relid <> reg.relid
                      AND (SELECT count(*) FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid = p.relid AND g.tgfoid = 'workflow.audit_trigger()'::regprocedure
                              AND workflow.audit_trigger_table_id(g.tgargs, g.tgnargs) = reg.id) < 3) THEN
      PERFORM workflow.enable_audit(t.relid::regclass, t.exclude_columns, true)
         FROM workflow.audit_tables t WHERE t.id = reg.id;
    END IF;
  END LOOP;

  -- Tables that carry a root's statement triggers but are no longer in its
  -- tree (detached) lose them.
  FOR trg IN
    SELECT g.tgname, g.tgrelid::regclass AS rel
      FROM pg_catalog.pg_trigger g
      JOIN workflow.audit_tables t ON t.id = workflow.audit_trigger_table_id(g.tgargs, g.tgnargs)
     WHERE g.tgfoid = 'workflow.audit_trigger()'::regprocedure AND NOT g.tgisinternal
       AND g.tgparentid = 0 AND g.tgrelid <> t.relid AND t.relid IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(g.tgrelid) anc
                        WHERE anc.relid = t.relid)
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.audit_ddl_end() IS
  'Internal event trigger (ddl_command_end): keeps workflow.audit_tables names in step with renames and the statement triggers of audited partition trees in step with CREATE/ATTACH/DETACH PARTITION.';
REVOKE EXECUTE ON FUNCTION workflow.audit_ddl_end() FROM PUBLIC;

CREATE FUNCTION workflow.audit_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE workflow.audit_tables t SET relid = NULL, audited = false, restore_pending = false
   WHERE t.relid IN (SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0);
END;
$$;
COMMENT ON FUNCTION workflow.audit_sql_drop() IS
  'Internal event trigger (sql_drop): a dropped audited table''s workflow.audit_tables row keeps its names and history, not its OID.';
REVOKE EXECUTE ON FUNCTION workflow.audit_sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER workflow_audit_ddl_end ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'ALTER SCHEMA')
  EXECUTE FUNCTION workflow.audit_ddl_end();
CREATE EVENT TRIGGER workflow_audit_sql_drop ON sql_drop
  WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
  EXECUTE FUNCTION workflow.audit_sql_drop();
