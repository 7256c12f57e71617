-- Job -> Stage -> Task engine: fan-out (add_tasks) and sealing.
--
-- A stage is created by its first add_tasks (or seal_stage) with
-- pending_slots = 1: the phantom slot of an unsealed stage, removed by the
-- seal, so a stage filled by several calls is never complete before its
-- producer says so. Lock order: job (share) -> new tasks -> slots (ascending)
-- -> stage row, the same order completers use (task -> slot -> stage).

-- A tasks table that was never analysed (a fresh install's first fan-out)
-- has planner estimates of a few rows: claims then sort the whole stage for
-- every batch (measured 23-58 ms per claim of 32 on a 20k-task stage, against
-- about 1 ms) until autovacuum's first analyse, which can take a minute. The
-- first add_tasks that leaves the table over 1 MB (about 4,000 tasks) takes
-- the statistics itself. ANALYZE holds its lock to the end of the
-- transaction, so a concurrent producer that finds it taken skips (NOWAIT)
-- rather than waiting for that transaction.
CREATE OR REPLACE FUNCTION workflow._engine_analyze_new_tasks_table()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (SELECT c.reltuples >= 0 FROM pg_catalog.pg_class c WHERE c.oid = 'workflow.tasks'::regclass)
     OR pg_catalog.pg_relation_size('workflow.tasks') < 1048576 THEN
    RETURN;
  END IF;
  BEGIN
    LOCK TABLE workflow.tasks IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
    ANALYZE workflow.tasks;
  EXCEPTION WHEN lock_not_available THEN
    NULL;  -- another session is analysing it
  END;
END;
$$;
COMMENT ON FUNCTION workflow._engine_analyze_new_tasks_table() IS
  'Internal (add_tasks): ANALYZE workflow.tasks once, when it was never analysed and has grown over 1 MB, so the first claims of a fresh install use the claim index.';
REVOKE EXECUTE ON FUNCTION workflow._engine_analyze_new_tasks_table() FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.add_tasks(job_id text, stage int, task_type text, parameters jsonb[],
                                   seal boolean DEFAULT true, first_index int DEFAULT 0,
                                   max_retries int DEFAULT 3, slot_count int DEFAULT 64,
                                   run_at timestamptz DEFAULT NULL, priority int DEFAULT 0,
                                   timeout interval DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs;
  n_params int;
  k int;
  inserted int;
  newly_pending int;
  pending_after int;
  -- Not inside the UPDATE's CASE: Citus refuses non-IMMUTABLE functions there.
  ts timestamptz := now();
  first_run timestamptz;
BEGIN
  PERFORM workflow._engine_check_text('job_id', add_tasks.job_id);
  PERFORM workflow._engine_check_text('task_type', add_tasks.task_type);
  PERFORM workflow._engine_check_not_null('parameters', add_tasks.parameters);
  PERFORM workflow._engine_check_not_null('seal', seal);
  PERFORM workflow._engine_check_not_null('first_index', first_index);
  PERFORM workflow._engine_check_not_null('max_retries', add_tasks.max_retries);
  PERFORM workflow._engine_check_not_null('slot_count', add_tasks.slot_count);
  PERFORM workflow._engine_check_not_null('priority', add_tasks.priority);
  IF add_tasks.run_at IS NOT NULL AND NOT isfinite(add_tasks.run_at) THEN
    RAISE EXCEPTION 'run_at must be a finite time (got %)', add_tasks.run_at USING ERRCODE = '22023';
  END IF;
  IF add_tasks.timeout IS NOT NULL THEN
    PERFORM workflow._engine_check_lease('timeout', add_tasks.timeout);
  END IF;
  IF array_ndims(add_tasks.parameters) IS DISTINCT FROM 1 THEN
    RAISE EXCEPTION 'parameters must be a non-empty one-dimensional array (got % dimensions)',
      coalesce(array_ndims(add_tasks.parameters), 0) USING ERRCODE = '22023',
      HINT = 'To close a stage without tasks call workflow.seal_stage().';
  END IF;
  n_params := cardinality(add_tasks.parameters);
  IF n_params > 1000000 THEN
    RAISE EXCEPTION 'too many tasks in one call (%, at most 1000000)', n_params
      USING ERRCODE = '54000';
  END IF;
  IF array_position(add_tasks.parameters, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'parameters[%] is NULL', array_position(add_tasks.parameters, NULL)
      USING ERRCODE = '22004';
  END IF;
  IF first_index < 0 OR first_index::bigint + n_params > 2147483647 THEN
    RAISE EXCEPTION 'first_index % is out of range (0 .. 2147483647 - number of tasks)', first_index
      USING ERRCODE = '22023';
  END IF;
  IF add_tasks.max_retries NOT BETWEEN 0 AND 1000 THEN
    RAISE EXCEPTION 'max_retries % is out of range 0..1000', add_tasks.max_retries
      USING ERRCODE = '22023';
  END IF;
  IF add_tasks.slot_count NOT BETWEEN 1 AND 65536 THEN
    RAISE EXCEPTION 'slot_count % is out of range 1..65536', add_tasks.slot_count
      USING ERRCODE = '22023';
  END IF;

  -- Who may fan out into this job (42501 before anything is written). The
  -- job's stage only grows, so a worker's stage check holds once locked.
  j := workflow._engine_job(add_tasks.job_id);
  PERFORM workflow._engine_check_stage(j, add_tasks.stage);
  PERFORM workflow._engine_check_fan_out(j, add_tasks.stage, 'add tasks to');

  -- Mark the job running (first fan-out), then hold it against cancel/fail.
  UPDATE workflow.jobs SET status = 'running', updated_at = now()
   WHERE id = add_tasks.job_id AND status = 'pending';
  j := workflow._engine_job(add_tasks.job_id, 'share');
  PERFORM workflow._engine_check_stage(j, add_tasks.stage);
  IF j.status NOT IN ('pending', 'running') THEN
    RAISE EXCEPTION 'job % is %', quote_literal(j.id), j.status USING ERRCODE = '55000';
  END IF;

  INSERT INTO workflow.stages AS s (job_id, stage, slot_count, pending_slots)
  VALUES (add_tasks.job_id, add_tasks.stage, add_tasks.slot_count, 1)
  ON CONFLICT ON CONSTRAINT stages_pkey DO NOTHING;
  SELECT s.slot_count INTO k FROM workflow.stages s
   WHERE s.job_id = add_tasks.job_id AND s.stage = add_tasks.stage;
  -- Not claimed before the job's run_at nor the call's (greatest skips NULLs).
  first_run := greatest(ts, j.run_at, add_tasks.run_at);

  WITH ins AS (
    INSERT INTO workflow.tasks AS t
      (id, job_id, task_type, stage, task_index, slot, parameters, max_retries, run_after, priority, timeout)
    SELECT add_tasks.job_id || ':' || add_tasks.stage || ':' || (first_index + p.ord - 1),
           add_tasks.job_id, add_tasks.task_type, add_tasks.stage, first_index + p.ord - 1,
           (first_index + p.ord - 1) % k, p.params, add_tasks.max_retries, first_run, add_tasks.priority,
           add_tasks.timeout
      FROM unnest(add_tasks.parameters) WITH ORDINALITY AS p(params, ord)
     ORDER BY p.ord
    ON CONFLICT DO NOTHING
    RETURNING t.slot
  ), per_slot AS (
    SELECT ins.slot, count(*)::int AS n FROM ins GROUP BY ins.slot
  ), up AS (
    INSERT INTO workflow.stage_slots AS ss (job_id, stage, slot, remaining)
    SELECT add_tasks.job_id, add_tasks.stage, per_slot.slot, per_slot.n
      FROM per_slot ORDER BY per_slot.slot
    ON CONFLICT ON CONSTRAINT stage_slots_pkey
      DO UPDATE SET remaining = ss.remaining + excluded.remaining
    RETURNING ss.slot, ss.remaining
  )
  SELECT coalesce(sum(per_slot.n), 0)::int,
         count(*) FILTER (WHERE up.remaining = per_slot.n)::int  -- slot went 0 -> n
    INTO inserted, newly_pending
    FROM per_slot JOIN up ON up.slot = per_slot.slot;

  IF inserted = 0 AND NOT seal THEN
    RETURN 0;
  END IF;

  UPDATE workflow.stages s
     SET total_tasks = s.total_tasks + inserted,
         pending_slots = s.pending_slots + newly_pending - seal::int,
         sealed = seal,
         sealed_at = CASE WHEN seal THEN ts END,
         completed_by_seal = (s.pending_slots + newly_pending - seal::int = 0),
         completed_at = CASE WHEN s.pending_slots + newly_pending - seal::int = 0 THEN ts END
   WHERE s.job_id = add_tasks.job_id AND s.stage = add_tasks.stage AND NOT s.sealed
  RETURNING s.pending_slots INTO pending_after;
  IF NOT FOUND THEN
    IF inserted > 0 THEN
      RAISE EXCEPTION 'stage % of job % is sealed: no tasks can be added', add_tasks.stage,
        quote_literal(add_tasks.job_id) USING ERRCODE = '55000';
    END IF;
    RETURN 0;  -- a repeated call: every task exists already
  END IF;
  IF pending_after = 0 THEN
    PERFORM workflow._engine_notify_stage_complete(add_tasks.job_id, add_tasks.stage);
  END IF;
  PERFORM workflow._engine_analyze_new_tasks_table();
  RETURN inserted;
END;
$$;
COMMENT ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval) IS
  'Fans stage out into one queued task per element of parameters (task_index = first_index + position - 1, '
  'id = job_id:stage:task_index), in one statement; returns the number of tasks inserted (existing indices '
  'are skipped). seal (default true) closes the stage: no task can be added after (55000). Several calls with '
  'seal => false then workflow.seal_stage() fill a stage in batches. slot_count fixes the stage''s counter '
  'shards when the stage is created (default 64: a completion takes its unit from any counter no other '
  'transaction holds, and holds it to commit, so a stage needs about as many as transactions completing its '
  'tasks at once; remaining_tasks reads all of them). 42501 unless the session user owns the job or is a member of '
  'workflow_admin, or is a member of workflow_worker and stage is the next one (2 .. the job''s stage + 1). '
  '1.4: run_at: not claimed before then (nor before the job''s run_at); priority: claims take higher first; '
  'timeout ((0, 7 days]): each claim''s deadline, past which the attempt fails.';
REVOKE EXECUTE ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval)
  TO workflow_producer, workflow_worker, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.seal_stage(job_id text, stage int)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(seal_stage.job_id);
  pending_after int;
  by_seal boolean;
  ts timestamptz := now();  -- not inside the UPDATE's CASE (Citus)
BEGIN
  PERFORM workflow._engine_check_stage(j, seal_stage.stage);
  PERFORM workflow._engine_check_fan_out(j, seal_stage.stage, 'seal');
  j := workflow._engine_job(seal_stage.job_id, 'share');
  IF j.status NOT IN ('pending', 'running') THEN
    RAISE EXCEPTION 'job % is %', quote_literal(j.id), j.status USING ERRCODE = '55000';
  END IF;
  -- A stage nobody added tasks to: created here, empty.
  INSERT INTO workflow.stages (job_id, stage, slot_count, pending_slots)
  VALUES (seal_stage.job_id, seal_stage.stage, 1, 1)
  ON CONFLICT ON CONSTRAINT stages_pkey DO NOTHING;

  UPDATE workflow.stages s
     SET sealed = true, sealed_at = ts,
         pending_slots = s.pending_slots - 1,
         completed_by_seal = (s.pending_slots = 1),
         completed_at = CASE WHEN s.pending_slots = 1 THEN ts END
   WHERE s.job_id = seal_stage.job_id AND s.stage = seal_stage.stage AND NOT s.sealed
  RETURNING s.pending_slots INTO pending_after;
  IF FOUND THEN
    IF pending_after = 0 THEN
      PERFORM workflow._engine_notify_stage_complete(seal_stage.job_id, seal_stage.stage);
      RETURN true;
    END IF;
    RETURN false;
  END IF;
  -- Already sealed: a retry gets the answer the first call got.
  SELECT s.completed_by_seal INTO by_seal FROM workflow.stages s
   WHERE s.job_id = seal_stage.job_id AND s.stage = seal_stage.stage;
  RETURN by_seal;
END;
$$;
COMMENT ON FUNCTION workflow.seal_stage(text, int) IS
  'Closes a stage to new tasks; true when sealing completed it (every task was already done, or it has '
  'none): that caller advances the job. A repeated call returns the same answer. 42501 unless the session '
  'user owns the job or is a member of workflow_admin, or is a member of workflow_worker and stage is the '
  'next one (2 .. the job''s stage + 1).';
