-- Job -> Stage -> Task engine (1.4): pause and resume of a task type or a
-- job, and per-task-type concurrency limits. claim_tasks reads the task
-- type settings once per call; a paused type, a paused job: its tasks are
-- not claimed (claimed ones run on). A type with a limit is claimed by
-- _engine_claim_limited, exactly: the claims that would take its tasks
-- serialise on its settings row and count its claimed tasks under that lock.

-- Task types and their settings: admins only (they affect every producer).
CREATE OR REPLACE FUNCTION workflow._engine_check_admin(action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT workflow._is_admin() THEN
    RAISE EXCEPTION 'permission denied to %: role % is not a member of workflow_admin', action,
      quote_ident(session_user) USING ERRCODE = '42501';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_admin(text) IS
  'Internal: raises 42501 unless the session user is a member of workflow_admin.';
REVOKE EXECUTE ON FUNCTION workflow._engine_check_admin(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.pause_task_type(task_type text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  changed boolean;
BEGIN
  PERFORM workflow._engine_check_text('task_type', pause_task_type.task_type);
  PERFORM workflow._engine_check_admin('pause a task type');
  INSERT INTO workflow.task_type_settings AS s (task_type, paused_at)
  VALUES (pause_task_type.task_type, now())
  ON CONFLICT ON CONSTRAINT task_type_settings_pkey DO UPDATE SET paused_at = now(), updated_at = now()
   WHERE s.paused_at IS NULL
  RETURNING true INTO changed;
  RETURN coalesce(changed, false);
END;
$$;
COMMENT ON FUNCTION workflow.pause_task_type(text) IS
  'Stops claims of the task type (claimed tasks run on); true when this call paused it, false when it was paused '
  'already. For workflow_admin (42501 otherwise).';

CREATE OR REPLACE FUNCTION workflow.resume_task_type(task_type text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('task_type', resume_task_type.task_type);
  PERFORM workflow._engine_check_admin('resume a task type');
  UPDATE workflow.task_type_settings s SET paused_at = NULL, updated_at = now()
   WHERE s.task_type = resume_task_type.task_type AND s.paused_at IS NOT NULL;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  DELETE FROM workflow.task_type_settings s
   WHERE s.task_type = resume_task_type.task_type AND s.max_claimed IS NULL;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow.resume_task_type(text) IS
  'Lets claims take the task type again; true when this call resumed it, false when it was not paused. For '
  'workflow_admin (42501 otherwise).';

CREATE OR REPLACE FUNCTION workflow.set_task_type_limit(task_type text, max_claimed int)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('task_type', set_task_type_limit.task_type);
  IF max_claimed NOT BETWEEN 0 AND 1000000 THEN
    RAISE EXCEPTION 'max_claimed % is out of range 0..1000000 (NULL: no limit)', max_claimed
      USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_admin('limit a task type');
  INSERT INTO workflow.task_type_settings AS s (task_type, max_claimed)
  VALUES (set_task_type_limit.task_type, max_claimed)
  ON CONFLICT ON CONSTRAINT task_type_settings_pkey DO UPDATE SET max_claimed = excluded.max_claimed, updated_at = now();
  DELETE FROM workflow.task_type_settings s
   WHERE s.task_type = set_task_type_limit.task_type AND s.max_claimed IS NULL AND s.paused_at IS NULL;
END;
$$;
COMMENT ON FUNCTION workflow.set_task_type_limit(text, int) IS
  'At most max_claimed (0..1000000; NULL: no limit) tasks of the type claimed at once, enforced by claim_tasks '
  'exactly under any concurrency (claims that would take the type serialise on it). Lowering it below the tasks '
  'claimed now takes effect as they finish. For workflow_admin (42501 otherwise).';

CREATE OR REPLACE VIEW workflow.task_type_status WITH (security_invoker = true) AS
SELECT s.task_type, s.paused_at IS NOT NULL AS paused, s.paused_at, s.max_claimed,
       (SELECT count(*) FROM workflow.tasks t WHERE t.task_type = s.task_type AND t.status = 'claimed')::int
         AS claimed
  FROM workflow.task_type_settings s;
COMMENT ON VIEW workflow.task_type_status IS
  'Task types with settings: paused, max_claimed (NULL: no limit) and their tasks claimed now.';
REVOKE ALL ON workflow.task_type_status FROM PUBLIC;
REVOKE ALL ON workflow.task_type_settings FROM PUBLIC;
GRANT SELECT ON workflow.task_type_status, workflow.task_type_settings
  TO workflow_producer, workflow_worker, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.pause_job(job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_owner(workflow._engine_job(pause_job.job_id), 'pause');
  UPDATE workflow.jobs j SET paused_at = now(), updated_at = now()
   WHERE j.id = pause_job.job_id AND j.paused_at IS NULL AND j.status IN ('pending', 'running');
  RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION workflow.pause_job(text) IS
  'Stops claims of the job''s tasks (claimed ones run on; stages still complete and hand over); true when this '
  'call paused it, false when it was paused already or has ended. P0002 unknown job; 42501 unless the session '
  'user owns the job or is a member of workflow_admin.';

CREATE OR REPLACE FUNCTION workflow.resume_job(job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_owner(workflow._engine_job(resume_job.job_id), 'resume');
  UPDATE workflow.jobs j SET paused_at = NULL, updated_at = now()
   WHERE j.id = resume_job.job_id AND j.paused_at IS NOT NULL;
  RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION workflow.resume_job(text) IS
  'Lets claims take the job''s tasks again; true when this call resumed it, false when it was not paused. '
  'P0002 unknown job; 42501 unless the session user owns the job or is a member of workflow_admin.';

-- claim_tasks when a type with a limit is in reach (arguments checked by
-- claim_tasks). 1. The queued tasks of types at their limit (counted
-- without a lock) are left out. 2. Candidates are locked (FOR UPDATE SKIP LOCKED), as by the plain
-- claim, best first, without claiming them. 3. Each limited type among them,
-- in name order, is locked (its settings row) and its claimed tasks counted
-- under that lock: every earlier claim of the type has committed. 4. Only
-- the candidates within each type's room are claimed; the others stay
-- queued (locked until this transaction ends). A lease that expired takes
-- no room: its task is counted as claimed already. Locks: tasks (SKIP
-- LOCKED: no wait) -> task type rows in name order; nobody holding a type
-- row waits for a task, so this cannot deadlock.
CREATE OR REPLACE FUNCTION workflow._engine_claim_limited(worker text, max_tasks int, task_types text[],
                                                         lease interval, excluded text[], limited text[],
                                                         prios int[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
-- The claim's filters multiply into an estimate of one row, for which the
-- planner prefers reading every claimable task of the priority (bitmap) and
-- sorting them: 75 ms a claim at 50k queued. The claim index read in order
-- under the LIMIT is what a claim must do: O(log n + claimed).
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
DECLARE
  full_types text[];
  c_jobs text[];
  c_ids text[];
  c_types text[];
  c_queued boolean[];
  take boolean[];
  typ text;
  room int;
  cap int;
  paused boolean;
  prio int;
BEGIN
  -- The count under the type's lock sees every earlier claim only with a
  -- snapshot per statement.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'a claim that may take a task type with a concurrency limit must run in READ COMMITTED (not %)',
      current_setting('transaction_isolation') USING ERRCODE = '25001';
  END IF;
  SELECT coalesce(array_agg(s.task_type), '{}') INTO full_types
    FROM workflow.task_type_settings s
   WHERE s.task_type = ANY (limited)
     AND (SELECT count(*) FROM workflow.tasks x WHERE x.task_type = s.task_type AND x.status = 'claimed')
         >= s.max_claimed;

  -- Per priority present, highest first (as claim_tasks: an equality reads
  -- the claim index in order and the LIMIT stops the scan).
  c_jobs := '{}'; c_ids := '{}'; c_types := '{}'; c_queued := '{}';
  FOREACH prio IN ARRAY prios LOOP
    WITH picked AS (
      SELECT t.job_id, t.id, t.task_type, t.status = 'queued' AS queued
        FROM workflow.tasks t
       WHERE t.status IN ('queued', 'claimed') AND t.priority = prio
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND t.task_type <> ALL (excluded)
         -- a type at its limit: only its expired leases (they take no room)
         AND (t.status = 'claimed' OR t.task_type <> ALL (full_types))
         AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
         AND EXISTS (SELECT 1 FROM workflow.jobs j
                      WHERE j.id = t.job_id AND j.status IN ('pending', 'running')
                        AND j.stage >= t.stage AND j.paused_at IS NULL OFFSET 0)
       ORDER BY t.priority DESC, (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
       LIMIT max_tasks - cardinality(c_ids)
         FOR UPDATE OF t SKIP LOCKED
    )
    SELECT c_jobs || coalesce(array_agg(p.job_id), '{}'), c_ids || coalesce(array_agg(p.id), '{}'),
           c_types || coalesce(array_agg(p.task_type), '{}'), c_queued || coalesce(array_agg(p.queued), '{}')
      INTO c_jobs, c_ids, c_types, c_queued FROM picked p;
    EXIT WHEN cardinality(c_ids) >= max_tasks;
  END LOOP;
  IF cardinality(c_ids) = 0 THEN
    RETURN;
  END IF;

  take := array_fill(true, ARRAY[cardinality(c_ids)]);
  FOR typ IN SELECT DISTINCT u.typ FROM unnest(c_types) AS u(typ) WHERE u.typ = ANY (limited) ORDER BY 1 LOOP
    SELECT s.max_claimed, s.paused_at IS NOT NULL INTO cap, paused
      FROM workflow.task_type_settings s WHERE s.task_type = typ FOR UPDATE;
    IF NOT FOUND OR cap IS NULL THEN
      CONTINUE;  -- the limit was removed meanwhile
    END IF;
    room := CASE WHEN paused THEN 0
                 ELSE cap - (SELECT count(*) FROM workflow.tasks x
                              WHERE x.task_type = typ AND x.status = 'claimed')::int END;
    FOR i IN 1 .. cardinality(c_ids) LOOP
      CONTINUE WHEN c_types[i] <> typ;
      IF paused THEN
        take[i] := false;
      ELSIF c_queued[i] THEN
        take[i] := room > 0;
        room := room - 1;
      END IF;
    END LOOP;
  END LOOP;

  RETURN QUERY
  UPDATE workflow.tasks t
     SET status = 'claimed', claimed_by = worker, heartbeat = now(),
         lease_expires_at = now() + lease, deadline_at = now() + t.timeout, updated_at = now()
    FROM unnest(c_jobs, c_ids, take) AS c(job_id, id, ok)
   WHERE c.ok AND t.job_id = c.job_id AND t.id = c.id
  RETURNING t.*;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_limited(text, int, text[], interval, text[], text[], int[]) IS
  'Internal (claim_tasks): the claim when a task type with a concurrency limit is in reach; exact under '
  'concurrency (each limited type''s claims serialise on its settings row and count its claimed tasks).';
REVOKE EXECUTE ON FUNCTION workflow._engine_claim_limited(text, int, text[], interval, text[], text[], int[]) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
  workflow.pause_task_type(text),
  workflow.resume_task_type(text),
  workflow.set_task_type_limit(text, int),
  workflow.pause_job(text),
  workflow.resume_job(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  workflow.pause_task_type(text),
  workflow.resume_task_type(text),
  workflow.set_task_type_limit(text, int)
  TO workflow_admin;
GRANT EXECUTE ON FUNCTION
  workflow.pause_job(text),
  workflow.resume_job(text)
  TO workflow_producer, workflow_admin;
