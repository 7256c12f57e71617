
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

-- Native (src/extension/audit_history.cpp): the same checks and errors as
-- audit_check_key, the registry lookup below the SQL layer, and one kept plan
-- for the log query, which the log's row-level security applies to.
CREATE FUNCTION workflow.row_history(target regclass, key jsonb)
RETURNS SETOF workflow.audit_log
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'workflow_row_history';
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
