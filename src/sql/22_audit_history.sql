
-- ---------------------------------------------------------------------------
-- Audit history: reading (row_history, row_as_of, task_history) and retention
-- ---------------------------------------------------------------------------

-- Checks a key against the table's primary key columns (names only; values
-- are compared as jsonb, so {"id": 1} matches an integer key 1).
CREATE FUNCTION workflow.audit_check_key(target regclass, key jsonb, caller text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  expected text[];
  given text[];
BEGIN
  PERFORM workflow.audit_check_table(target, caller);
  IF key IS NULL THEN
    RAISE EXCEPTION '%: key must not be NULL', caller USING ERRCODE = '22004';
  END IF;
  IF jsonb_typeof(key) <> 'object' THEN
    RAISE EXCEPTION '%: key must be a jsonb object of the primary key columns, got %',
      caller, left(key::text, 100) USING ERRCODE = '22023';
  END IF;
  SELECT array_agg(a.attname::text ORDER BY a.attname::text) INTO expected
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
  WHERE i.indrelid = target AND i.indisprimary;
  SELECT array_agg(k ORDER BY k) INTO given FROM jsonb_object_keys(key) AS k;
  IF expected IS NULL THEN
    -- The table may have lost its primary key after auditing began.
    RETURN;
  END IF;
  IF given IS DISTINCT FROM expected THEN
    RAISE EXCEPTION '%: key % does not name the primary key columns of %', caller,
      left(key::text, 100), target
      USING ERRCODE = '22023', HINT = format('Expected the keys %s.', expected);
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow.audit_check_key(regclass, jsonb, text) IS
  'Internal: raises 22004/22023 unless key is a jsonb object naming exactly the primary key columns of target.';

CREATE FUNCTION workflow.row_history(target regclass, key jsonb)
RETURNS SETOF workflow.audit_log
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  reg_id integer;
BEGIN
  PERFORM workflow.audit_check_key(target, key, 'workflow.row_history');
  -- The table's registry row; for a table never audited under this OID, that
  -- of a dropped table of the same name (whose history it continues).
  reg_id := coalesce(
    (SELECT t.id FROM workflow.audit_tables t WHERE t.relid = target ORDER BY t.id LIMIT 1),
    (SELECT t.id FROM workflow.audit_tables t JOIN pg_catalog.pg_class c ON c.oid = target
       JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      WHERE t.schema_name = n.nspname AND t.table_name = c.relname
        AND (t.relid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class d WHERE d.oid = t.relid))
      ORDER BY t.id DESC LIMIT 1));
  RETURN QUERY
    SELECT l.* FROM workflow.audit_log l
    WHERE jsonb_hash_extended(l.row_key, l.table_id::bigint) = jsonb_hash_extended(key, reg_id::bigint)
      AND l.table_id = reg_id AND l.row_key = key
    UNION ALL
    SELECT l.* FROM workflow.audit_log l
    WHERE l.table_id = reg_id AND l.row_key IS NULL AND l.operation = 'TRUNCATE'
    ORDER BY id;
END;
$$;
COMMENT ON FUNCTION workflow.row_history(regclass, jsonb) IS
  'Log rows of one row of target (by primary key as jsonb, e.g. ''{"id": 7}''), plus the table''s TRUNCATEs, oldest first.';

CREATE FUNCTION workflow.row_as_of(target regclass, key jsonb, at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  event record;
  state jsonb := NULL;
BEGIN
  PERFORM workflow.audit_check_key(target, key, 'workflow.row_as_of');
  IF at IS NULL THEN
    RAISE EXCEPTION 'workflow.row_as_of: at must not be NULL' USING ERRCODE = '22004';
  END IF;
  FOR event IN
    SELECT h.operation, h.new_values FROM workflow.row_history(target, key) h
    WHERE h.changed_at <= at
  LOOP
    CASE event.operation
      WHEN 'INSERT' THEN state := key || event.new_values;
      -- An UPDATE of a row that existed before auditing began: only the key
      -- and the changed columns are known.
      WHEN 'UPDATE' THEN
        state := coalesce(state, key) || event.new_values;
        -- A change of primary key moved the row away from this key (the
        -- trigger logs it again under the new key, with the whole row).
        IF NOT state @> key THEN
          state := NULL;
        END IF;
      ELSE state := NULL;  -- DELETE, TRUNCATE
    END CASE;
  END LOOP;
  RETURN state;
END;
$$;
COMMENT ON FUNCTION workflow.row_as_of(regclass, jsonb, timestamptz) IS
  'The row of target with this primary key as it was at a time, rebuilt from its history (jsonb, excluded columns absent); NULL if it did not exist then.';

-- The task model's history, in the shape of the original task_history table.
-- Filters on the registry's (current) names, not regclass, so it works
-- before workflow.tasks exists.
CREATE VIEW workflow.task_history WITH (security_invoker = true) AS
  SELECT l.row_key ->> 'id'  AS task_id,
         l.actor             AS user_id,
         lower(l.operation)  AS action,
         l.old_values,
         l.new_values,
         l.changed_at        AS created_at
  FROM workflow.audit_log l
  WHERE l.table_id IN (SELECT t.id FROM workflow.audit_tables t
                       WHERE t.schema_name = 'workflow' AND t.table_name = 'tasks');
COMMENT ON VIEW workflow.task_history IS
  'History of workflow.tasks (audit it with workflow.enable_audit(''workflow.tasks'')): task_id, user_id (actor), action (insert/update/delete/truncate), old/new values, created_at.';
GRANT SELECT ON workflow.task_history TO PUBLIC;
