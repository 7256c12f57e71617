
-- ---------------------------------------------------------------------------
-- Audit history: native triggers and enable/disable
-- ---------------------------------------------------------------------------

CREATE FUNCTION workflow.audit_trigger() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'workflow_audit_trigger';
COMMENT ON FUNCTION workflow.audit_trigger() IS
  'Native AFTER trigger writing workflow.audit_log; attach it with workflow.enable_audit. Arguments: columns to exclude.';

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

CREATE FUNCTION workflow.enable_audit(target regclass, exclude_columns text[] DEFAULT '{}',
                                      statement_level boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
  col text;
  args text;
BEGIN
  rel := workflow.audit_check_table(target, 'workflow.enable_audit');
  IF exclude_columns IS NULL THEN
    RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must not be NULL (use ''{}'')'
      USING ERRCODE = '22004';
  END IF;
  IF statement_level IS NULL THEN
    RAISE EXCEPTION 'workflow.enable_audit: statement_level must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF target = 'workflow.audit_log'::regclass THEN
    RAISE EXCEPTION 'workflow.enable_audit: the audit log itself cannot be audited'
      USING ERRCODE = '22023';
  END IF;
  IF NOT pg_catalog.pg_has_role(current_user, rel.relowner, 'USAGE') THEN
    RAISE EXCEPTION 'workflow.enable_audit: must be owner of table %', target USING ERRCODE = '42501';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = target AND i.indisprimary) THEN
    RAISE EXCEPTION 'workflow.enable_audit: table % has no primary key', target
      USING ERRCODE = '55000',
            HINT = 'History is kept per primary key: add one (ALTER TABLE ... ADD PRIMARY KEY).';
  END IF;
  IF pg_catalog.array_ndims(exclude_columns) > 1 THEN
    RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must be a one-dimensional array'
      USING ERRCODE = '22023';
  END IF;
  FOREACH col IN ARRAY exclude_columns LOOP
    IF col IS NULL THEN
      RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must not contain NULL'
        USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0
                     AND NOT a.attisdropped) THEN
      RAISE EXCEPTION 'workflow.enable_audit: column "%" of table % does not exist', col, target
        USING ERRCODE = '42703';
    END IF;
  END LOOP;
  SELECT coalesce(string_agg(DISTINCT pg_catalog.quote_literal(c), ', '), '')
    INTO args FROM unnest(exclude_columns) AS c;

  PERFORM workflow.audit_drop_triggers(target);
  IF statement_level THEN
    -- One trigger call per statement; rows come from transition tables and
    -- are written to the log in batches.
    EXECUTE format('CREATE TRIGGER workflow_audit_insert AFTER INSERT ON %s '
                   'REFERENCING NEW TABLE AS workflow_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', target, args);
    EXECUTE format('CREATE TRIGGER workflow_audit_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS workflow_old NEW TABLE AS workflow_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', target, args);
    EXECUTE format('CREATE TRIGGER workflow_audit_delete AFTER DELETE ON %s '
                   'REFERENCING OLD TABLE AS workflow_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', target, args);
  ELSE
    EXECUTE format('CREATE TRIGGER workflow_audit_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION workflow.audit_trigger(%s)', target, args);
  END IF;
  EXECUTE format('CREATE TRIGGER workflow_audit_truncate AFTER TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', target, args);
END;
$$;
COMMENT ON FUNCTION workflow.enable_audit(regclass, text[], boolean) IS
  'Attaches the native audit triggers to a table with a primary key; exclude_columns never appear in the log. statement_level => false uses a row-level trigger instead of transition tables. Calling it again replaces the settings.';

CREATE FUNCTION workflow.audit_drop_triggers(target regclass)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trigger_name name;
  dropped integer := 0;
BEGIN
  FOR trigger_name IN
    SELECT t.tgname FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid = target AND NOT t.tgisinternal
      AND t.tgfoid = 'workflow.audit_trigger()'::regprocedure
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', trigger_name, target);
    dropped := dropped + 1;
  END LOOP;
  RETURN dropped;
END;
$$;
COMMENT ON FUNCTION workflow.audit_drop_triggers(regclass) IS
  'Internal: drops every workflow.audit_trigger trigger of a table; returns how many.';

CREATE FUNCTION workflow.disable_audit(target regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  rel := workflow.audit_check_table(target, 'workflow.disable_audit');
  IF NOT pg_catalog.pg_has_role(current_user, rel.relowner, 'USAGE') THEN
    RAISE EXCEPTION 'workflow.disable_audit: must be owner of table %', target USING ERRCODE = '42501';
  END IF;
  IF workflow.audit_drop_triggers(target) = 0 THEN
    RAISE EXCEPTION 'workflow.disable_audit: table % is not audited', target USING ERRCODE = 'P0002';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow.disable_audit(regclass) IS
  'Detaches the audit triggers from a table; its history stays in workflow.audit_log. P0002 if it was not audited.';
