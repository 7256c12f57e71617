-- ---------------------------------------------------------------------------
-- Audit history: who may audit a table, purge the log and read it
-- ---------------------------------------------------------------------------
-- Only CREATE OR REPLACE FUNCTION, COMMENT and GRANT/REVOKE: the 1.0 -> 1.1
-- upgrade runs this file as it is (src/sql/upgrade/1.0--1.1.list).
--
-- enable_audit, disable_audit and purge_audit_log are SECURITY DEFINER (the
-- extension's owner attaches the triggers, writes the registry, deletes from
-- the log); EXECUTE on them is the right, not granted to PUBLIC. The caller
-- is identified by session_user (current_user is the definer inside them).
-- Reading (audit_log, task_history, row_history, row_as_of) runs as the
-- caller, under the log's row-level security (src/sql/20_audit_log.sql).

-- Raises 42501 unless the session user may act as the owner of target: a
-- member of the owning role (one that may SET ROLE to it), or, for a table of
-- this extension, of the extension's owner (CREATE EXTENSION, also when
-- trusted: the session user is the one who runs it). With reattach (the
-- table is audited with exactly the given settings: the call changes nothing
-- that is logged) it is also allowed inside an event trigger: the extension's
-- own re-attaches the triggers of a partition added to an audited table by
-- whoever adds it, SECURITY DEFINER maintenance functions included. Only
-- superusers create event triggers.
CREATE OR REPLACE FUNCTION workflow.audit_check_owner(target regclass, owner oid, caller text,
                                                      reattach boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF pg_catalog.pg_has_role(session_user, owner, 'MEMBER') THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = target
                AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
                AND e.extname = 'workflow' AND pg_catalog.pg_has_role(session_user, e.extowner, 'MEMBER')) THEN
    RETURN;
  END IF;
  IF reattach THEN
    BEGIN
      PERFORM pg_catalog.pg_event_trigger_ddl_commands();
      RETURN;
    EXCEPTION WHEN event_trigger_protocol_violated THEN
      NULL;  -- not in an event trigger
    END;
  END IF;
  RAISE EXCEPTION '%: must be owner of table %', caller, target USING ERRCODE = '42501';
END;
$$;
COMMENT ON FUNCTION workflow.audit_check_owner(regclass, oid, text, boolean) IS
  'Internal: raises 42501 unless the session user is a member of the table''s owner (or of the extension''s owner, for an extension table); reattach => true also allows it inside an event trigger.';

CREATE OR REPLACE FUNCTION workflow.enable_audit(target regclass, exclude_columns text[] DEFAULT '{}',
                                      statement_level boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
  col text;
  reg_id integer;
  schema text;
  attnums int2[];
  names text[];
  part regclass;
  arg text;
BEGIN
  rel := workflow.audit_check_table(target, 'workflow.enable_audit');
  IF exclude_columns IS NULL THEN
    RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must not be NULL (use ''{}'')'
      USING ERRCODE = '22004';
  END IF;
  IF statement_level IS NULL THEN
    RAISE EXCEPTION 'workflow.enable_audit: statement_level must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF target IN ('workflow.audit_log'::regclass, 'workflow.audit_tables'::regclass) THEN
    RAISE EXCEPTION 'workflow.enable_audit: the audit log itself cannot be audited'
      USING ERRCODE = '22023';
  END IF;
  PERFORM workflow.audit_check_owner(target, rel.relowner, 'workflow.enable_audit',
    reattach => EXISTS (SELECT 1 FROM workflow.audit_tables t
                         WHERE t.relid = target AND t.audited
                           AND t.statement_level = enable_audit.statement_level
                           AND t.exclude_columns = enable_audit.exclude_columns));
  -- A temporary table's history would be filed under pg_temp_N, where a later
  -- session's temporary table of the same name would continue it (and read it).
  IF rel.relpersistence = 't' THEN
    RAISE EXCEPTION 'workflow.enable_audit: % is a temporary table', target
      USING ERRCODE = '0A000', HINT = 'Audit a permanent table; a temporary one ends with its session.';
  END IF;
  IF rel.relispartition THEN
    RAISE EXCEPTION 'workflow.enable_audit: % is a partition', target
      USING ERRCODE = '22023', HINT = 'Audit the partitioned table: its partitions are audited with it.';
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
  SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}'),
         coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
    INTO attnums, names
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname = ANY (exclude_columns);
  SELECT n.nspname INTO schema FROM pg_catalog.pg_namespace n WHERE n.oid = rel.relnamespace;

  -- The registry row: this table's, else that of a dropped table of the same
  -- name (its history continues), else a new one.
  PERFORM pg_catalog.set_config('workflow.audit_registering', 'on', true);
  SELECT t.id INTO reg_id FROM workflow.audit_tables t WHERE t.relid = target ORDER BY t.id LIMIT 1;
  IF reg_id IS NULL THEN
    SELECT t.id INTO reg_id FROM workflow.audit_tables t
     WHERE t.schema_name = schema AND t.table_name = rel.relname
       AND (t.relid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.relid))
     ORDER BY t.id DESC LIMIT 1;
  END IF;
  IF reg_id IS NULL THEN
    INSERT INTO workflow.audit_tables (schema_name, table_name, relid, statement_level,
                                       exclude_columns, exclude_attnums)
    VALUES (schema, rel.relname, target, enable_audit.statement_level, names, attnums)
    RETURNING id INTO reg_id;
  ELSE
    UPDATE workflow.audit_tables t
       SET schema_name = schema, table_name = rel.relname, relid = target, audited = true,
           statement_level = enable_audit.statement_level, exclude_columns = names,
           exclude_attnums = attnums, restore_pending = false
     WHERE t.id = reg_id;
  END IF;
  PERFORM pg_catalog.set_config('workflow.audit_registering', 'off', true);
  arg := pg_catalog.quote_literal(reg_id::text);

  PERFORM workflow.audit_drop_triggers(target);
  IF enable_audit.statement_level THEN
    -- One trigger call per statement; rows come from transition tables and
    -- are written to the log in batches. A partition gets its own statement
    -- triggers (a write made directly to it does not fire its root's), logging
    -- under the root's id; the event trigger gives them to partitions created
    -- or attached later.
    FOR part IN SELECT target UNION SELECT p.relid FROM pg_catalog.pg_partition_tree(target) p LOOP
      EXECUTE format('CREATE TRIGGER workflow_audit_insert AFTER INSERT ON %s '
                     'REFERENCING NEW TABLE AS workflow_new '
                     'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', part, arg);
      EXECUTE format('CREATE TRIGGER workflow_audit_update AFTER UPDATE ON %s '
                     'REFERENCING OLD TABLE AS workflow_old NEW TABLE AS workflow_new '
                     'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', part, arg);
      EXECUTE format('CREATE TRIGGER workflow_audit_delete AFTER DELETE ON %s '
                     'REFERENCING OLD TABLE AS workflow_old '
                     'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', part, arg);
    END LOOP;
  ELSE
    -- PostgreSQL clones a row trigger onto every partition, present and future.
    EXECUTE format('CREATE TRIGGER workflow_audit_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION workflow.audit_trigger(%s)', target, arg);
  END IF;
  EXECUTE format('CREATE TRIGGER workflow_audit_truncate AFTER TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', target, arg);
END;
$$;
COMMENT ON FUNCTION workflow.enable_audit(regclass, text[], boolean) IS
  'Attaches the native audit triggers to a permanent table with a primary key (and to its partitions; 0A000 for a temporary table) and registers it in workflow.audit_tables; exclude_columns never appear in the log, also after a rename. statement_level => false uses a row-level trigger instead of transition tables. Calling it again replaces the settings. SECURITY DEFINER: the session user must own the table; EXECUTE (the right to audit) is granted to workflow_admin, not PUBLIC.';

CREATE OR REPLACE FUNCTION workflow.disable_audit(target regclass)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  rel := workflow.audit_check_table(target, 'workflow.disable_audit');
  PERFORM workflow.audit_check_owner(target, rel.relowner, 'workflow.disable_audit');
  IF workflow.audit_drop_triggers(target) = 0 THEN
    RAISE EXCEPTION 'workflow.disable_audit: table % is not audited', target USING ERRCODE = 'P0002';
  END IF;
  -- The registry row stays: the history refers to it.
  UPDATE workflow.audit_tables t SET audited = false, restore_pending = false WHERE t.relid = target;
END;
$$;
COMMENT ON FUNCTION workflow.disable_audit(regclass) IS
  'Detaches the audit triggers from a table; its history stays in workflow.audit_log. P0002 if it was not audited. SECURITY DEFINER: the session user must own the table; EXECUTE granted to workflow_admin, not PUBLIC.';

CREATE OR REPLACE FUNCTION workflow.purge_audit_log(older_than interval)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  removed bigint;
BEGIN
  -- The grant is the delegation; it must reach the session user (not only
  -- the owner of some SECURITY DEFINER function that calls this one).
  IF NOT pg_catalog.has_function_privilege(session_user, 'workflow.purge_audit_log(interval)', 'EXECUTE') THEN
    RAISE EXCEPTION 'workflow.purge_audit_log: permission denied for session user %', session_user
      USING ERRCODE = '42501',
            HINT = 'GRANT EXECUTE ON FUNCTION workflow.purge_audit_log(interval) TO the retention role (or GRANT workflow_admin).';
  END IF;
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'workflow.purge_audit_log: older_than must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF older_than < interval '0' THEN
    RAISE EXCEPTION 'workflow.purge_audit_log: older_than must not be negative, got %', older_than
      USING ERRCODE = '22023';
  END IF;
  DELETE FROM workflow.audit_log WHERE changed_at < now() - older_than;
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END;
$$;
COMMENT ON FUNCTION workflow.purge_audit_log(interval) IS
  'Retention: deletes log rows older than now() - older_than (of every table, whoever may read them); returns how many. SECURITY DEFINER; delegated by GRANT EXECUTE (workflow_admin has it), which the session user must hold.';

-- Privileges, by role (README "Who may do what"). PUBLIC: reading only,
-- under the policy (SELECT granted with the log, the registry and the view;
-- EXECUTE on the readers by default); workflow_auditor: the same, explicitly
-- (so it keeps them if a DBA revokes PUBLIC's), which the policy turns into
-- every row; workflow_admin (a member of workflow_auditor): also auditing its
-- own tables, retention and updated_at triggers.
GRANT SELECT ON workflow.audit_log, workflow.audit_tables, workflow.task_history
  TO workflow_auditor;
GRANT EXECUTE ON FUNCTION workflow.row_history(regclass, jsonb),
                          workflow.row_as_of(regclass, jsonb, timestamptz),
                          workflow.audit_check_key(regclass, jsonb, text),
                          workflow.audit_check_table(regclass, text)
  TO workflow_auditor;
REVOKE ALL ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                       workflow.disable_audit(regclass),
                       workflow.purge_audit_log(interval),
                       workflow.set_updated_at(),
                       workflow.audit_trigger(),
                       workflow.audit_check_owner(regclass, oid, text, boolean),
                       workflow.audit_drop_triggers(regclass)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                          workflow.disable_audit(regclass),
                          workflow.purge_audit_log(interval),
                          workflow.set_updated_at()
  TO workflow_admin;
