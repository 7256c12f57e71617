-- Upgrade workflow 1.2 -> 1.3 (ALTER EXTENSION workflow UPDATE TO '1.3').
-- Assembled from the files listed in src/sql/upgrade/1.2--1.3.list: parts of
-- the 1.3 install script that can be re-run on 1.2 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.2--1.3/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.3'" to load this file. \quit
-- Job -> Stage -> Task engine: job life cycle.

CREATE OR REPLACE FUNCTION workflow.create_job(job_type text, parameters jsonb, total_stages int,
                                    job_id text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_id text := coalesce(job_id, gen_random_uuid()::text);
BEGIN
  PERFORM workflow._engine_check_text('job_type', job_type);
  PERFORM workflow._engine_check_not_null('parameters', parameters);
  PERFORM workflow._engine_check_not_null('total_stages', total_stages);
  IF total_stages < 1 OR total_stages > 10000 THEN
    RAISE EXCEPTION 'total_stages % is out of range 1..10000', total_stages USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_text('job_id', new_id);
  BEGIN
    INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner)
    VALUES (new_id, create_job.job_type, create_job.total_stages, create_job.parameters, session_user);
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'job % already exists', quote_literal(new_id) USING ERRCODE = '23505';
  END;
  RETURN new_id;
END;
$$;
COMMENT ON FUNCTION workflow.create_job(text, jsonb, int, text) IS
  'Creates a pending job at stage 1 of total_stages (1..10000), owned by the session user; returns its id '
  '(a UUID unless job_id is given). 23505 when job_id exists.';

CREATE OR REPLACE FUNCTION workflow.cancel_job(job_id text, reason text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF length(reason) > 10000 THEN
    RAISE EXCEPTION 'reason is too long (% characters, at most 10000)', length(reason)
      USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_owner(workflow._engine_job(cancel_job.job_id), 'cancel');
  PERFORM workflow._engine_job(cancel_job.job_id, 'update');
  RETURN workflow._engine_end_job(cancel_job.job_id, 'cancelled', reason);
END;
$$;
COMMENT ON FUNCTION workflow.cancel_job(text, text) IS
  'Cancels a pending or running job and its unfinished tasks; NOTIFY workflow_job_complete. '
  'False when the job had already ended; P0002 when unknown; 42501 unless the session user owns the job '
  'or is a member of workflow_admin.';

-- Compare-and-set: only the caller that sees the job at current_stage (and
-- that stage complete) moves it on; everybody else gets false.
-- next_stage = total_stages + 1 finishes the job (status completed).
CREATE OR REPLACE FUNCTION workflow.advance_job_stage(job_id_param text, current_stage int, next_stage int,
                                           stage_results_param jsonb)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(job_id_param);
  finishing boolean;
  moved boolean := false;
  -- Computed here, not inside the UPDATE's CASE: Citus refuses non-IMMUTABLE
  -- functions in CASE of a distributed UPDATE (workflow.distribute()).
  moved_at timestamptz := now();
  stage_result jsonb;
BEGIN
  PERFORM workflow._engine_check_owner(j, 'advance', workers_too => true);
  PERFORM workflow._engine_check_stage(j, current_stage);
  PERFORM workflow._engine_check_not_null('next_stage', next_stage);
  IF next_stage <> current_stage + 1 THEN
    RAISE EXCEPTION 'next_stage % must be current_stage + 1 (%)', next_stage, current_stage + 1
      USING ERRCODE = '22023';
  END IF;
  finishing := next_stage > j.total_stages;
  IF stage_results_param IS NOT NULL THEN  -- (after the checks: they say what is wrong first)
    stage_result := jsonb_build_object(current_stage::text, stage_results_param);
  END IF;

  -- The compare-and-set, looked at again when it found nothing but the job
  -- is at current_stage by the time it is re-read: a call made while the
  -- previous advance was committing saw the job one stage behind (a
  -- statement does not wait for a row that did not match its snapshot).
  FOR attempt IN 1..3 LOOP
    UPDATE workflow.jobs
       SET stage = least(next_stage, total_stages),
           status = CASE WHEN finishing THEN 'completed' ELSE 'running' END,
           finished_at = CASE WHEN finishing THEN moved_at END,
           result_data = CASE WHEN stage_result IS NULL THEN result_data
                              ELSE coalesce(result_data, '{}'::jsonb) || stage_result END,
           updated_at = moved_at
     WHERE id = job_id_param
       AND stage = current_stage
       AND status IN ('pending', 'running')
       AND EXISTS (SELECT 1 FROM workflow.stages s
                    WHERE s.job_id = job_id_param AND s.stage = current_stage
                      AND s.completed_at IS NOT NULL);
    moved := FOUND;
    EXIT WHEN moved;
    -- Lost the race, stale, repeated or premature: say which.
    j := workflow._engine_job(job_id_param);
    IF j.stage <> current_stage OR j.status NOT IN ('pending', 'running') THEN
      RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM workflow.stages s
                    WHERE s.job_id = job_id_param AND s.stage = current_stage
                      AND s.completed_at IS NOT NULL) THEN
      RAISE EXCEPTION 'stage % of job % is not complete', current_stage, quote_literal(job_id_param)
        USING ERRCODE = '55000';
    END IF;
  END LOOP;
  IF moved THEN
    UPDATE workflow.stages SET result_data = stage_results_param, left_at = now()
     WHERE job_id = job_id_param AND stage = current_stage;
    -- Into a stage that is complete already (sealed empty, or its tasks were
    -- completed directly before the job got here): whoever completed it
    -- could not advance the job then, so its hand-over is claimable at once.
    -- A stage row locked by a completer still in its transaction is skipped
    -- (no wait, so no lock cycle with a completer that advances in its
    -- completing transaction): an advance it sends after this one waits for
    -- this job row lock and then wins; if it advanced too early (false) or
    -- never does, its hand-over lease (completed_at + jobs.handover_lease)
    -- runs out and the stage is handed over then.
    IF NOT finishing THEN
      PERFORM 1 FROM workflow.stages s
        WHERE s.job_id = job_id_param AND s.stage = next_stage AND s.completed_at IS NOT NULL
          FOR UPDATE SKIP LOCKED;
      IF FOUND THEN
        UPDATE workflow.stages s SET handover_by = NULL, handover_expires_at = now()
         WHERE s.job_id = job_id_param AND s.stage = next_stage;
      END IF;
    END IF;
    IF finishing THEN
      PERFORM workflow._engine_notify_job_complete(job_id_param, 'completed');
    END IF;
    RETURN true;
  END IF;
  RETURN false;  -- the job kept moving under three looks: another caller advances it
END;
$$;
COMMENT ON FUNCTION workflow.advance_job_stage(text, int, int, jsonb) IS
  'Compare-and-set move of a job from current_stage (which must be complete) to next_stage = current_stage + 1; '
  'next_stage = total_stages + 1 completes the job. Exactly one concurrent caller gets true; stale or '
  'repeated calls get false and write nothing; 55000 when current_stage is not complete yet. Moving into a '
  'stage that is complete already makes its hand-over claimable at once (claim_stage_handovers). 42501 unless '
  'the session user owns the job or is a member of workflow_worker or workflow_admin.';

-- Completes the job when its last stage is complete (idempotent).
CREATE OR REPLACE FUNCTION workflow.check_job_completion(job_id_param text)
RETURNS TABLE(job_complete boolean, final_stage int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(job_id_param);
BEGIN
  PERFORM workflow._engine_check_owner(j, 'check the completion of', workers_too => true);
  IF j.status IN ('pending', 'running') AND j.stage = j.total_stages THEN
    UPDATE workflow.jobs
       SET status = 'completed', finished_at = now(), updated_at = now()
     WHERE id = job_id_param AND stage = total_stages AND status IN ('pending', 'running')
       AND EXISTS (SELECT 1 FROM workflow.stages s
                    WHERE s.job_id = job_id_param AND s.stage = jobs.total_stages
                      AND s.completed_at IS NOT NULL);
    IF FOUND THEN
      UPDATE workflow.stages s SET left_at = now()
       WHERE s.job_id = job_id_param AND s.stage = j.total_stages;
      PERFORM workflow._engine_notify_job_complete(job_id_param, 'completed');
    END IF;
    j := workflow._engine_job(job_id_param);
  END IF;
  RETURN QUERY SELECT j.status = 'completed', j.stage;
END;
$$;
COMMENT ON FUNCTION workflow.check_job_completion(text) IS
  'Whether the job is completed, and its current (final) stage. A running job whose last stage is '
  'complete is marked completed here (NOTIFY workflow_job_complete). P0002 when unknown; 42501 unless the '
  'session user owns the job or is a member of workflow_worker or workflow_admin.';

-- Hands a job to another owner (administrators: a job from before 1.1 has
-- none; a service that moves to another login role). NULL: nobody (admin-only).
CREATE OR REPLACE FUNCTION workflow.set_job_owner(job_id text, new_owner name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT workflow._is_admin() THEN
    RAISE EXCEPTION 'permission denied to change the owner of job %: role % is not a member of workflow_admin',
      quote_literal(set_job_owner.job_id), quote_ident(session_user) USING ERRCODE = '42501';
  END IF;
  PERFORM workflow._engine_job(set_job_owner.job_id);  -- 22004/22023/P0002
  IF new_owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = new_owner) THEN
    RAISE EXCEPTION 'role % does not exist', quote_ident(new_owner) USING ERRCODE = '22023';
  END IF;
  UPDATE workflow.jobs j SET owner = new_owner, updated_at = now() WHERE j.id = set_job_owner.job_id;
END;
$$;
COMMENT ON FUNCTION workflow.set_job_owner(text, name) IS
  'Makes new_owner (an existing role, or NULL: nobody, admin-only) the owner of the job. For workflow_admin '
  'only (42501 otherwise, also with EXECUTE): jobs created before 1.1 have no owner. P0002 when the job is '
  'unknown, 22023 when the role does not exist.';
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
                                   max_retries int DEFAULT 3, slot_count int DEFAULT 64)
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
BEGIN
  PERFORM workflow._engine_check_text('job_id', add_tasks.job_id);
  PERFORM workflow._engine_check_text('task_type', add_tasks.task_type);
  PERFORM workflow._engine_check_not_null('parameters', add_tasks.parameters);
  PERFORM workflow._engine_check_not_null('seal', seal);
  PERFORM workflow._engine_check_not_null('first_index', first_index);
  PERFORM workflow._engine_check_not_null('max_retries', add_tasks.max_retries);
  PERFORM workflow._engine_check_not_null('slot_count', add_tasks.slot_count);
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

  WITH ins AS (
    INSERT INTO workflow.tasks AS t
      (id, job_id, task_type, stage, task_index, slot, parameters, max_retries)
    SELECT add_tasks.job_id || ':' || add_tasks.stage || ':' || (first_index + p.ord - 1),
           add_tasks.job_id, add_tasks.task_type, add_tasks.stage, first_index + p.ord - 1,
           (first_index + p.ord - 1) % k, p.params, add_tasks.max_retries
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
COMMENT ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int) IS
  'Fans stage out into one queued task per element of parameters (task_index = first_index + position - 1, '
  'id = job_id:stage:task_index), in one statement; returns the number of tasks inserted (existing indices '
  'are skipped). seal (default true) closes the stage: no task can be added after (55000). Several calls with '
  'seal => false then workflow.seal_stage() fill a stage in batches. slot_count fixes the stage''s counter '
  'shards when the stage is created (default 64: a completion takes its unit from any counter no other '
  'transaction holds, and holds it to commit, so a stage needs about as many as transactions completing its '
  'tasks at once; remaining_tasks reads all of them). 42501 unless the session user owns the job or is a member of '
  'workflow_admin, or is a member of workflow_worker and stage is the next one (2 .. the job''s stage + 1).';

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
-- Job -> Stage -> Task engine: workers' calls (claim, heartbeat, fail).
-- complete_task_and_check_stage, the hot path, is in 15_engine_complete.sql.

CREATE OR REPLACE FUNCTION workflow.claim_tasks(worker text, max_tasks int DEFAULT 1,
                                     task_types text[] DEFAULT NULL,
                                     lease interval DEFAULT '5 minutes')
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('worker', worker);
  PERFORM workflow._engine_check_not_null('max_tasks', max_tasks);
  PERFORM workflow._engine_check_lease('lease', lease);
  IF max_tasks NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'max_tasks % is out of range 1..10000', max_tasks USING ERRCODE = '22023';
  END IF;
  IF task_types IS NOT NULL THEN
    IF cardinality(task_types) = 0 THEN
      RAISE EXCEPTION 'task_types must be NULL (any type) or non-empty' USING ERRCODE = '22023';
    END IF;
    IF array_position(task_types, NULL) IS NOT NULL THEN
      RAISE EXCEPTION 'task_types[%] is NULL', array_position(task_types, NULL)
        USING ERRCODE = '22004';
    END IF;
  END IF;

  -- On a Citus cluster a multi-shard FOR UPDATE is refused: claim job by job
  -- (19_engine_citus.sql).
  IF workflow._engine_citus_table('workflow.tasks') THEN
    RETURN QUERY SELECT * FROM workflow._engine_claim_tasks_distributed(worker, max_tasks, task_types, lease);
    RETURN;
  END IF;

  -- One statement: queued tasks whose run_after has come and claimed tasks
  -- whose lease expired, oldest first, of jobs still running; SKIP LOCKED so
  -- concurrent claimers never wait for or get the same task.
  RETURN QUERY
  WITH picked AS (
    SELECT t.job_id, t.id
      FROM workflow.tasks t
     WHERE t.status IN ('queued', 'claimed')
       AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
       AND (task_types IS NULL OR t.task_type = ANY (task_types))
       -- Only once the job has reached the task's stage: a stage fanned out
       -- before the advance into it has committed waits for that advance.
       AND EXISTS (SELECT 1 FROM workflow.jobs j
                    WHERE j.id = t.job_id AND j.status IN ('pending', 'running')
                      AND j.stage >= t.stage)
     ORDER BY (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
     LIMIT max_tasks
       FOR UPDATE OF t SKIP LOCKED
  )
  UPDATE workflow.tasks t
     SET status = 'claimed', claimed_by = worker, heartbeat = now(),
         lease_expires_at = now() + lease, updated_at = now()
    FROM picked
   WHERE t.job_id = picked.job_id AND t.id = picked.id
  RETURNING t.*;
END;
$$;
COMMENT ON FUNCTION workflow.claim_tasks(text, int, text[], interval) IS
  'Claims up to max_tasks (1..10000) runnable tasks for worker, optionally only of task_types, for lease: '
  'queued tasks whose run_after has passed and claimed tasks whose lease expired, of pending/running jobs. '
  'One statement, FOR UPDATE SKIP LOCKED. Returns the claimed rows. On a Citus cluster (workflow.distribute()) '
  'the jobs of the oldest runnable tasks are read over every shard first, then each job''s tasks are claimed '
  'on the node that holds it (FOR UPDATE SKIP LOCKED there).';

CREATE OR REPLACE FUNCTION workflow.heartbeat_task(task_id text, job_id text, worker text,
                                        lease interval DEFAULT '5 minutes')
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t_status text;
  holder text;
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  PERFORM workflow._engine_check_text('job_id', job_id);
  PERFORM workflow._engine_check_text('worker', worker);
  PERFORM workflow._engine_check_lease('lease', lease);
  UPDATE workflow.tasks t
     SET heartbeat = now(), lease_expires_at = now() + lease, updated_at = now()
   WHERE t.job_id = heartbeat_task.job_id AND t.id = heartbeat_task.task_id
     AND t.status = 'claimed' AND t.claimed_by = worker;
  IF FOUND THEN
    RETURN true;
  END IF;
  SELECT t.status, t.claimed_by INTO t_status, holder
    FROM workflow.tasks t WHERE t.job_id = heartbeat_task.job_id AND t.id = heartbeat_task.task_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  IF holder IS NOT DISTINCT FROM worker THEN
    RETURN false;  -- this worker finished it (completed, failed, or cancelled with its job): stop
  END IF;
  RAISE EXCEPTION 'task % is %, not claimed by worker %', quote_literal(task_id),
    CASE WHEN t_status = 'claimed' THEN 'claimed by another worker' ELSE t_status END, quote_literal(worker)
    USING ERRCODE = '55000',
          DETAIL = CASE WHEN holder IS NULL THEN 'No worker holds it.'
                        ELSE format('Worker %s claimed it last.', quote_literal(holder)) END,
          HINT = 'Stop working on it: this worker does not hold the task (a lease that expired may have been claimed by another worker).';
END;
$$;
COMMENT ON FUNCTION workflow.heartbeat_task(text, text, text, interval) IS
  'Extends the lease of a task claimed by worker to now() + lease (at most 7 days ahead) and returns true. '
  'false (nothing written) when this worker finished the task itself (completed, failed, cancelled with its job). '
  '55000 (nothing written) when the worker does not hold it: another worker claimed or finished it after the '
  'lease expired, or it is queued. P0002 when the task is unknown.';

-- Seconds before retry number `attempt` (1-based): base * 2^(attempt-1)
-- capped at cap, with equal jitter (src/core/backoff.hpp).
CREATE OR REPLACE FUNCTION workflow.retry_delay(attempt int, base interval DEFAULT '2 seconds',
                                     cap interval DEFAULT '1 hour', jitter boolean DEFAULT true)
RETURNS interval
LANGUAGE c STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'workflow_retry_delay';
COMMENT ON FUNCTION workflow.retry_delay(int, interval, interval, boolean) IS
  'Backoff before retry number attempt: base * 2^(attempt-1), at most cap; with jitter a uniform '
  'point in [delay/2, delay].';

CREATE OR REPLACE FUNCTION workflow.fail_task(task_id text, job_id text, error text, retryable boolean DEFAULT true,
                                   backoff_base interval DEFAULT '2 seconds',
                                   backoff_cap interval DEFAULT '1 hour',
                                   worker text DEFAULT NULL)
RETURNS TABLE(will_retry boolean, retry_at timestamptz, job_failed boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t workflow.tasks;
  retry_time timestamptz;
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  PERFORM workflow._engine_check_not_null('error', error);
  PERFORM workflow._engine_check_not_null('retryable', retryable);
  PERFORM workflow._engine_check_not_null('backoff_base', backoff_base);
  PERFORM workflow._engine_check_not_null('backoff_cap', backoff_cap);
  IF worker IS NOT NULL THEN
    PERFORM workflow._engine_check_text('worker', worker);
  END IF;
  IF length(error) > 10000 THEN
    RAISE EXCEPTION 'error is too long (% characters, at most 10000)', length(error)
      USING ERRCODE = '22023';
  END IF;
  IF backoff_base < interval '0' OR backoff_cap < backoff_base THEN
    RAISE EXCEPTION 'backoff must satisfy 0 <= base (%) <= cap (%)', backoff_base, backoff_cap
      USING ERRCODE = '22023';
  END IF;
  -- Lock order job -> task, as cancel_job: a dead task fails the job.
  PERFORM workflow._engine_job(fail_task.job_id, 'update');
  SELECT * INTO t FROM workflow.tasks x
   WHERE x.job_id = fail_task.job_id AND x.id = fail_task.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  -- With worker: only that worker's claim can fail. The worker's own repeat
  -- after a lost reply (the task is queued again or failed, and claimed_by,
  -- kept by the failure, still names it) answers the task's state and writes
  -- nothing, so one failed attempt counts once. A task another worker holds
  -- or finished, or one queued by someone else, is refused: 55000.
  IF worker IS NOT NULL AND NOT (t.status = 'claimed' AND t.claimed_by = worker) THEN
    IF t.status IN ('queued', 'failed') AND t.claimed_by IS NOT DISTINCT FROM worker THEN
      RETURN QUERY SELECT t.status <> 'failed',
                          CASE WHEN t.status = 'queued' THEN t.run_after END,
                          (SELECT j.status = 'failed' FROM workflow.jobs j WHERE j.id = fail_task.job_id);
      RETURN;
    END IF;
    IF t.status IN ('queued', 'claimed', 'completed') THEN
      RAISE EXCEPTION 'task % is %, not claimed by worker %', quote_literal(task_id),
        CASE WHEN t.status = 'claimed' THEN 'claimed by another worker' ELSE t.status END, quote_literal(worker)
        USING ERRCODE = '55000',
              DETAIL = CASE WHEN t.claimed_by IS NULL THEN 'No worker holds it.'
                            ELSE format('Worker %s claimed it last.', quote_literal(t.claimed_by)) END,
              HINT = 'Stop working on it: this worker does not hold the task (a lease that expired may have been claimed by another worker).';
    END IF;
  END IF;
  IF t.status NOT IN ('queued', 'claimed') THEN
    RAISE EXCEPTION 'task % is %, it cannot fail', quote_literal(task_id), t.status
      USING ERRCODE = '55000';
  END IF;

  IF retryable AND t.retry_count < t.max_retries THEN
    retry_time := now() + workflow.retry_delay(t.retry_count + 1, backoff_base, backoff_cap);
    UPDATE workflow.tasks x
       SET status = 'queued', retry_count = x.retry_count + 1, run_after = retry_time,
           claimed_by = fail_task.worker, lease_expires_at = NULL, last_error = error, updated_at = now()
     WHERE x.job_id = fail_task.job_id AND x.id = fail_task.task_id;
    RETURN QUERY SELECT true, retry_time, false;
    RETURN;
  END IF;

  UPDATE workflow.tasks x
     SET status = 'failed', last_error = error, claimed_by = fail_task.worker, lease_expires_at = NULL,
         updated_at = now()
   WHERE x.job_id = fail_task.job_id AND x.id = fail_task.task_id;
  PERFORM workflow._engine_end_job(fail_task.job_id, 'failed',
    format('task %s failed: %s', task_id, error));
  RETURN QUERY SELECT false, NULL::timestamptz, true;
END;
$$;
COMMENT ON FUNCTION workflow.fail_task(text, text, text, boolean, interval, interval, text) IS
  'Records a failed attempt. Retryable and retry_count < max_retries: the task is queued again after '
  'retry_delay(retry_count + 1) (exponential, jittered). Otherwise the task is dead (failed), the job fails, '
  'its unfinished tasks are cancelled and workflow_job_complete is notified. With worker, only a task claimed '
  'by that worker fails; the failure keeps claimed_by = worker, so the worker''s own repeat (task queued again '
  'or failed by it) writes nothing and answers the task''s state and the attempt counts once; a task claimed or '
  'completed by another worker, or queued by someone else, raises 55000 and nothing is written. Without worker '
  'claimed_by is cleared.';
-- Job -> Stage -> Task engine: progress, self-check and invariants.

CREATE OR REPLACE FUNCTION workflow.job_progress(job_id text)
RETURNS TABLE(stage int, total_tasks int, completed_tasks int, failed_tasks int,
              sealed boolean, complete boolean)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(job_progress.job_id);
BEGIN
  PERFORM workflow._engine_check_owner(j, 'read the progress of', workers_too => true);
  RETURN QUERY
  SELECT n::int,
         coalesce(s.total_tasks, 0),
         coalesce(c.completed, 0),
         coalesce(c.failed, 0),
         coalesce(s.sealed, false),
         s.completed_at IS NOT NULL
    FROM generate_series(1, j.total_stages) AS n
    LEFT JOIN workflow.stages s ON s.job_id = j.id AND s.stage = n
    LEFT JOIN LATERAL (
      SELECT count(*) FILTER (WHERE t.status = 'completed')::int AS completed,
             count(*) FILTER (WHERE t.status = 'failed')::int AS failed
        FROM workflow.tasks t WHERE t.job_id = j.id AND t.stage = n) c ON true
   ORDER BY n;
END;
$$;
COMMENT ON FUNCTION workflow.job_progress(text) IS
  'One row per stage 1..total_stages of the job: tasks added, completed and dead, sealed, complete. '
  'Counts the tasks (O(tasks of the job)): for progress bars, not for the hot path. P0002 when unknown; '
  '42501 unless the session user owns the job or is a member of workflow_worker or workflow_admin.';

-- The extension's objects are present and intact: the errors the original
-- design could only discover at run time.
CREATE OR REPLACE FUNCTION workflow.validate()
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  fn text;
  tbl text;
  v text;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['workflow.jobs', 'workflow.stages', 'workflow.stage_slots', 'workflow.tasks'] LOOP
    check_name := 'table ' || tbl;
    ok := to_regclass(tbl) IS NOT NULL;
    detail := CASE WHEN ok THEN 'present' ELSE 'missing' END;
    RETURN NEXT;
    IF ok THEN
      -- Every unique index includes job_id (sharding by job).
      check_name := 'unique keys of ' || tbl || ' include job_id';
      SELECT coalesce(string_agg(i.indexrelid::regclass::text, ', '), '') INTO detail
        FROM pg_index i
       WHERE i.indrelid = tbl::regclass AND i.indisunique
         AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = i.indrelid AND a.attname = 'job_id'
                            AND a.attnum = ANY (i.indkey));
      ok := detail = '' OR tbl = 'workflow.jobs';
      detail := CASE WHEN ok THEN 'yes' ELSE 'without job_id: ' || detail END;
      RETURN NEXT;
    END IF;
  END LOOP;

  check_name := 'index workflow.tasks_claimable_idx';
  SELECT i.indisvalid INTO ok FROM pg_index i
   WHERE i.indexrelid = to_regclass('workflow.tasks_claimable_idx');
  ok := coalesce(ok, false);
  detail := CASE WHEN ok THEN 'valid' ELSE 'missing or invalid' END;
  RETURN NEXT;

  FOREACH fn IN ARRAY ARRAY[
      'workflow.create_job(text,jsonb,integer,text)',
      'workflow.add_tasks(text,integer,text,jsonb[],boolean,integer,integer,integer)',
      'workflow.seal_stage(text,integer)',
      'workflow.claim_tasks(text,integer,text[],interval)',
      'workflow.heartbeat_task(text,text,text,interval)',
      'workflow.complete_task_and_check_stage(text,text,integer,jsonb,boolean,text)',
      'workflow.complete_tasks(text[],text[],integer[],jsonb[],text)',
      'workflow.fail_task(text,text,text,boolean,interval,interval,text)',
      'workflow.cancel_job(text,text)',
      'workflow.advance_job_stage(text,integer,integer,jsonb)',
      'workflow.check_job_completion(text)',
      'workflow.job_progress(text)',
      'workflow.check_invariants(text)',
      'workflow.claim_stage_handovers(text,integer,interval)',
      'workflow.set_handover_lease(text,interval)',
      'workflow.set_job_owner(text,name)'] LOOP
    check_name := 'function ' || fn;
    SELECT CASE WHEN p.oid IS NULL THEN 'missing'
                WHEN p.prosecdef AND NOT coalesce(p.proconfig::text[] @> ARRAY['search_path=pg_catalog, pg_temp'], false)
                  THEN 'SECURITY DEFINER without a safe search_path'
                ELSE 'present' END
      INTO detail
      FROM (SELECT to_regprocedure(fn) AS oid) r LEFT JOIN pg_proc p ON p.oid = r.oid;
    ok := detail = 'present';
    RETURN NEXT;
  END LOOP;

  -- The C++ library loads and its entry points resolve.
  check_name := 'native library';
  BEGIN
    v := workflow.version();
    PERFORM workflow.retry_delay(1, '1 second', '1 second', false);
    ok := true;
    detail := 'workflow.so ' || v;
  EXCEPTION WHEN OTHERS THEN
    ok := false;
    detail := SQLERRM;
  END;
  RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION workflow.validate() IS
  'Self-check of the engine''s objects: tables, keys including job_id, the claim index, every API function '
  '(and its search_path when SECURITY DEFINER), the native library. One row per check.';

-- Stage bookkeeping matches the tasks. Used after a crash: every check must
-- be ok. job_id_param NULL checks every job. The violations, one row each
-- (check_invariants counts them). PL/pgSQL, not SQL: Citus plans no SQL
-- function that reads distributed tables, and it routes this query, its job
-- id bound, to the node holding the job.
CREATE OR REPLACE FUNCTION workflow._engine_invariant_violations(job_id_param text)
RETURNS TABLE(check_name text, what text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH t AS (
    SELECT * FROM workflow.tasks WHERE job_id_param IS NULL OR job_id = job_id_param
  ), s AS (
    SELECT * FROM workflow.stages WHERE job_id_param IS NULL OR job_id = job_id_param
  ), sl AS (
    SELECT * FROM workflow.stage_slots WHERE job_id_param IS NULL OR job_id = job_id_param
  ), slot_bad AS (
    -- A completion takes its unit from any counter of its stage (1.2), so
    -- the counters agree with the tasks per stage, not per slot.
    SELECT coalesce(c.job_id, u.job_id) || ':' || coalesce(c.stage, u.stage) || ' counters hold '
           || coalesce(c.remaining::text, 'nothing') || ' but ' || coalesce(u.unfinished, 0)
           || ' unfinished tasks' AS what
      FROM (SELECT job_id, stage, sum(remaining) AS remaining FROM sl GROUP BY job_id, stage) c
      FULL JOIN (SELECT job_id, stage, count(*) FILTER (WHERE status <> 'completed') AS unfinished
                   FROM t GROUP BY job_id, stage) u USING (job_id, stage)
     WHERE coalesce(c.remaining, 0) <> coalesce(u.unfinished, 0)
  ), stage_facts AS (
    SELECT s.*, coalesce(a.nonzero_slots, 0) AS nonzero_slots,
           coalesce(b.n_tasks, 0) AS n_tasks, coalesce(b.n_unfinished, 0) AS n_unfinished
      FROM s
      LEFT JOIN (SELECT job_id, stage, count(*) FILTER (WHERE remaining > 0) AS nonzero_slots
                   FROM sl GROUP BY job_id, stage) a USING (job_id, stage)
      LEFT JOIN (SELECT job_id, stage, count(*) AS n_tasks,
                        count(*) FILTER (WHERE status <> 'completed') AS n_unfinished
                   FROM t GROUP BY job_id, stage) b USING (job_id, stage)
  ), pending_bad AS (
    SELECT job_id || ':' || stage || ' pending_slots ' || pending_slots || ' but '
           || nonzero_slots || ' non-zero slots, sealed ' || sealed AS what
      FROM stage_facts WHERE pending_slots <> nonzero_slots + (NOT sealed)::int
  ), total_bad AS (
    SELECT job_id || ':' || stage || ' total_tasks ' || total_tasks || ' but ' || n_tasks
           || ' tasks' AS what
      FROM stage_facts WHERE total_tasks <> n_tasks
  ), completion_bad AS (
    SELECT job_id || ':' || stage || ' completed_at ' || coalesce(completed_at::text, 'null')
           || ', sealed ' || sealed || ', ' || n_unfinished || ' unfinished tasks' AS what
      FROM stage_facts
     WHERE (completed_at IS NOT NULL) <> (sealed AND n_unfinished = 0)
  ), completer_bad AS (
    SELECT f.job_id || ':' || f.stage || ' completed by '
           || coalesce(f.completed_by_task, 'nobody') || ' / seal ' || f.completed_by_seal AS what
      FROM stage_facts f
      LEFT JOIN t ct ON ct.job_id = f.job_id AND ct.id = f.completed_by_task
     WHERE (f.completed_at IS NOT NULL)
             <> ((f.completed_by_task IS NOT NULL) <> f.completed_by_seal)
        OR (f.completed_by_task IS NOT NULL
            AND (ct.id IS NULL OR ct.stage <> f.stage OR ct.status <> 'completed'))
  ), orphan_bad AS (
    SELECT t.id AS what FROM t
     WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.job_id = t.job_id AND s.stage = t.stage)
  ), task_bad AS (
    SELECT t.id AS what FROM t JOIN s USING (job_id, stage)
     WHERE t.id <> t.job_id || ':' || t.stage || ':' || t.task_index
        OR t.slot <> t.task_index % s.slot_count
        OR (t.status = 'completed') <> (t.completed_at IS NOT NULL)
  ), job_bad AS (
    SELECT j.id AS what FROM workflow.jobs j
     WHERE (job_id_param IS NULL OR j.id = job_id_param)
       AND j.status = 'completed'
       AND NOT EXISTS (SELECT 1 FROM s WHERE s.job_id = j.id AND s.stage = j.total_stages
                          AND s.completed_at IS NOT NULL)
  ), stuck_bad AS (
    -- The job's current stage is complete and nobody holds its hand-over:
    -- nothing moves the job on until a worker calls claim_stage_handovers.
    SELECT j.id || ' at stage ' || j.stage || ' of ' || j.total_stages || ', complete since '
           || s.completed_at || ', hand-over lease ran out at '
           || coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
           || coalesce(' (last claimed by ' || s.handover_by || ')', '') AS what
      FROM workflow.jobs j JOIN s ON s.job_id = j.id AND s.stage = j.stage
     WHERE (job_id_param IS NULL OR j.id = job_id_param)
       AND j.status IN ('pending', 'running')
       AND s.completed_at IS NOT NULL
       AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now()
  ), checks AS (  -- (no column list: Citus' deparser drops it)
    SELECT 'counters = unfinished tasks of the stage'::text AS check_name, what FROM slot_bad
    UNION ALL SELECT 'pending_slots = non-zero slots + unsealed', what FROM pending_bad
    UNION ALL SELECT 'total_tasks = tasks of the stage', what FROM total_bad
    UNION ALL SELECT 'complete = sealed and every task completed', what FROM completion_bad
    UNION ALL SELECT 'exactly one completer, a completed task of the stage', what FROM completer_bad
    UNION ALL SELECT 'every task has its stage row', what FROM orphan_bad
    UNION ALL SELECT 'task id, slot and completed_at consistent', what FROM task_bad
    UNION ALL SELECT 'completed job has its last stage complete', what FROM job_bad
    UNION ALL SELECT 'stuck jobs', what FROM stuck_bad
  )
  SELECT c.check_name, c.what FROM checks c;
END;
$$;
COMMENT ON FUNCTION workflow._engine_invariant_violations(text) IS
  'Internal (check_invariants): one row per violation of the fan-in bookkeeping, for one job or all (NULL).';
REVOKE EXECUTE ON FUNCTION workflow._engine_invariant_violations(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.check_invariants(job_id_param text DEFAULT NULL)
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  names text[] := '{}';
  whats text[] := '{}';
  job text;
  job_names text[];
  job_whats text[];
BEGIN
  IF job_id_param IS NULL AND workflow._engine_citus_table('workflow.tasks') THEN
    -- On a Citus cluster job by job (every id that has a row anywhere): one
    -- job's query is routed to the node holding it.
    FOR job IN SELECT id FROM workflow.jobs UNION SELECT s.job_id FROM workflow.stages s
               UNION SELECT l.job_id FROM workflow.stage_slots l UNION SELECT k.job_id FROM workflow.tasks k
    LOOP
      SELECT coalesce(array_agg(v.check_name), '{}'), coalesce(array_agg(v.what), '{}')
        INTO job_names, job_whats FROM workflow._engine_invariant_violations(job) v;
      names := names || job_names;
      whats := whats || job_whats;
    END LOOP;
  ELSE
    SELECT coalesce(array_agg(v.check_name), '{}'), coalesce(array_agg(v.what), '{}')
      INTO names, whats FROM workflow._engine_invariant_violations(job_id_param) v;
  END IF;
  RETURN QUERY
  WITH checks AS (
    SELECT * FROM unnest(names, whats) AS c(check_name, what)
  ), listed(check_name, ord) AS (
    VALUES ('counters = unfinished tasks of the stage', 1),
           ('pending_slots = non-zero slots + unsealed', 2),
           ('total_tasks = tasks of the stage', 3),
           ('complete = sealed and every task completed', 4),
           ('exactly one completer, a completed task of the stage', 5),
           ('every task has its stage row', 6),
           ('task id, slot and completed_at consistent', 7),
           ('completed job has its last stage complete', 8),
           ('stuck jobs', 9)
  )
  SELECT n.check_name, count(c.what) = 0,
         CASE WHEN count(c.what) = 0 THEN 'ok'
              ELSE count(c.what) || ' violations, e.g. '
                   || array_to_string((array_agg(c.what ORDER BY c.what)
                                       FILTER (WHERE c.what IS NOT NULL))[1:5], '; ') END
    FROM listed n LEFT JOIN checks c USING (check_name)
   GROUP BY n.check_name, n.ord
   ORDER BY n.ord;
END;
$$;
COMMENT ON FUNCTION workflow.check_invariants(text) IS
  'Checks that the fan-in bookkeeping matches the tasks (for one job, or all when NULL): each stage''s counters, '
  'pending_slots, total_tasks, completion state, the single completer, task ids and slots; and stuck jobs: a '
  'pending/running job whose current stage is complete and whose hand-over lease has run out (nobody is '
  'advancing it: a worker must call claim_stage_handovers). One row per check; all ok after any crash once '
  'the workers have caught up.';
-- Job -> Stage -> Task engine: hand-over of a stage that is complete but
-- whose job was never advanced past it (the completer died or lost its
-- connection between its completion and its advance_job_stage).
--
-- The completer of a stage holds an implicit hand-over lease from its
-- completion (stages.completed_at + jobs.handover_lease, default 1 minute).
-- After that, claim_stage_handovers gives the stage to one worker for
-- `lease` (stages.handover_by, handover_expires_at), like an expired task;
-- when that lease runs out too, the next claimer gets it. A job advanced into
-- a stage that is complete already makes it claimable at once. The claimer
-- does what a stage_complete = true answer asks for: fan out stage + 1,
-- advance_job_stage (compare-and-set: exactly one caller moves the job),
-- check_job_completion. The job always moves on, exactly once.

-- _engine_check_lease (11_engine_util.sql) judges leases by the timestamps they give.
REVOKE EXECUTE ON FUNCTION workflow._engine_check_lease(text, interval, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.claim_stage_handovers(worker text, max_stages int DEFAULT 1,
                                               lease interval DEFAULT '5 minutes')
RETURNS TABLE(job_id text, stage int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS $$
BEGIN
  PERFORM workflow._engine_check_text('worker', worker);
  PERFORM workflow._engine_check_not_null('max_stages', max_stages);
  IF max_stages NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'max_stages % is out of range 1..1000', max_stages USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_lease('lease', lease);

  IF workflow._engine_citus_table('workflow.stages') THEN  -- a Citus cluster (19_engine_citus.sql)
    RETURN QUERY SELECT * FROM workflow._engine_claim_handovers_distributed(worker, max_stages, lease);
    RETURN;
  END IF;

  -- One statement over the hand-over index (complete stages the job has not
  -- left: few), of pending/running jobs that are AT that stage, whose
  -- completer's or last claimer's lease has run out, oldest first. SKIP
  -- LOCKED: concurrent claimers never wait for or get the same stage; a
  -- stage another claimer (or an advance) changed meanwhile is re-checked.
  RETURN QUERY
  WITH picked AS (
    SELECT s.job_id, s.stage
      FROM workflow.stages s
      JOIN workflow.jobs j ON j.id = s.job_id
     WHERE s.completed_at IS NOT NULL AND s.left_at IS NULL
       AND j.stage = s.stage AND j.status IN ('pending', 'running')
       AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now()
     ORDER BY coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
     LIMIT max_stages
       FOR UPDATE OF s SKIP LOCKED
  )
  UPDATE workflow.stages s
     SET handover_by = worker, handover_expires_at = now() + lease
    FROM picked
   WHERE s.job_id = picked.job_id AND s.stage = picked.stage
  RETURNING s.job_id, s.stage;
END;
$$;
COMMENT ON FUNCTION workflow.claim_stage_handovers(text, int, interval) IS
  'Claims for worker, for lease ((0, 7 days]), up to max_stages (1..1000) stages that are complete, whose job is '
  'pending/running at that stage, and whose hand-over lease has run out: the completer''s (completed_at + the '
  'job''s handover_lease, default 1 minute; at once when the job was advanced into a stage already complete) '
  'or the previous claimer''s. Treat each row as a stage_complete = true answer: fan out stage + 1 (if any), '
  'advance_job_stage(job_id, stage, stage + 1, ...), check_job_completion. One statement, FOR UPDATE SKIP LOCKED.';
REVOKE EXECUTE ON FUNCTION workflow.claim_stage_handovers(text, int, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.set_handover_lease(job_id text, lease interval)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_lease('lease', lease, interval '1 day');
  PERFORM workflow._engine_check_owner(workflow._engine_job(set_handover_lease.job_id),  -- 22004/22023/P0002
                                       'set the hand-over lease of');
  UPDATE workflow.jobs j SET handover_lease = lease, updated_at = now()
   WHERE j.id = set_handover_lease.job_id;
END;
$$;
COMMENT ON FUNCTION workflow.set_handover_lease(text, interval) IS
  'Sets how long the completer of each stage of the job may take, from its completion, to advance the job before '
  'the stage can be claimed by claim_stage_handovers (default 1 minute; (0, 1 day]). P0002 when the job is unknown; '
  '42501 unless the session user owns the job or is a member of workflow_admin.';
REVOKE EXECUTE ON FUNCTION workflow.set_handover_lease(text, interval) FROM PUBLIC;
-- Job -> Stage -> Task engine on a Citus cluster (1.3): workflow.distribute()
-- shards jobs, stages, stage_slots and tasks by job id, colocated, and
-- registers the per-job functions for delegation, so a call on one job runs
-- whole on the node that holds that job. Claiming across jobs is the one
-- call that is not per job: a multi-shard SELECT ... FOR UPDATE is not
-- supported by Citus, so claim_tasks and claim_stage_handovers on a cluster
-- first read, without locks and over every shard, the jobs of the oldest
-- runnable work, then claim in each of those jobs with router statements
-- (FOR UPDATE SKIP LOCKED on the node holding it). README "Scaling out with
-- Citus". Survey steps and the audit log stay local to the coordinator.

-- Whether a table is hash-distributed by Citus here (workflow.tasks:
-- distribute() was run). pg_dist_partition exists only with Citus, hence the dynamic SQL.
CREATE OR REPLACE FUNCTION workflow._engine_citus_table(tab text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  found boolean;
BEGIN
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RETURN false;
  END IF;
  -- Hash-distributed (partmethod 'h'): a Citus-managed local table ('n') is
  -- a plain table on this node.
  EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition '
          'WHERE logicalrelid = $1::pg_catalog.regclass AND partmethod = ''h'')'
    INTO found USING tab;
  RETURN found;
END;
$$;
COMMENT ON FUNCTION workflow._engine_citus_table(text) IS
  'Internal: true when the named table is hash-distributed by Citus.';

-- One job's share of a claim: router statements only (every one filters on
-- the job id), so on a cluster they run on the node that holds the job. The
-- job's stage is read first: it only grows, so a task of a later stage than
-- the one read is never claimed too early.
CREATE OR REPLACE FUNCTION workflow._engine_claim_job_tasks(job text, worker text, max_tasks int,
                                                           task_types text[], lease interval)
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job_stage int;
  picked text[] := '{}';
  task_id text;
BEGIN
  SELECT j.stage INTO job_stage FROM workflow.jobs j
   WHERE j.id = job AND j.status IN ('pending', 'running');
  IF NOT FOUND THEN
    RETURN;
  END IF;
  FOR task_id IN
    SELECT t.id FROM workflow.tasks t
     WHERE t.job_id = job AND t.status IN ('queued', 'claimed') AND t.stage <= job_stage
       AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
       AND (task_types IS NULL OR t.task_type = ANY (task_types))
     ORDER BY (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
     LIMIT max_tasks
       FOR UPDATE SKIP LOCKED
  LOOP
    picked := picked || task_id;
  END LOOP;
  IF cardinality(picked) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  UPDATE workflow.tasks t
     SET status = 'claimed', claimed_by = worker, heartbeat = now(),
         lease_expires_at = now() + lease, updated_at = now()
   WHERE t.job_id = job AND t.id = ANY (picked) AND t.status IN ('queued', 'claimed')
  RETURNING t.*;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_job_tasks(text, text, int, text[], interval) IS
  'Internal (claim_tasks on a Citus cluster): claims up to max_tasks runnable tasks of one job with router '
  'statements, FOR UPDATE SKIP LOCKED.';

-- claim_tasks on a cluster (arguments checked by claim_tasks).
CREATE OR REPLACE FUNCTION workflow._engine_claim_tasks_distributed(worker text, max_tasks int,
                                                                   task_types text[], lease interval)
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job text;
  claimed int := 0;
  n int;
BEGIN
  -- The jobs of the oldest runnable tasks (of jobs running at or past the
  -- task's stage), over every shard: each shard reads its claim index, no
  -- lock; oldest first, the same order as on one node, so no node's jobs
  -- wait behind another's. More tasks than asked for are read, so that a
  -- job whose tasks other claimers hold (SKIP LOCKED) leaves others to try.
  FOR job IN
    SELECT c.job_id FROM (
      SELECT t.job_id,
             (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) AS due
        FROM workflow.tasks t
        JOIN workflow.jobs j ON j.id = t.job_id
       WHERE t.status IN ('queued', 'claimed')
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND j.status IN ('pending', 'running') AND j.stage >= t.stage
       ORDER BY due
       LIMIT 4 * max_tasks + 16) c
     GROUP BY c.job_id
     ORDER BY min(c.due)
  LOOP
    RETURN QUERY SELECT * FROM workflow._engine_claim_job_tasks(job, worker, max_tasks - claimed,
                                                                task_types, lease);
    GET DIAGNOSTICS n = ROW_COUNT;
    claimed := claimed + n;
    EXIT WHEN claimed >= max_tasks;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_tasks_distributed(text, int, text[], interval) IS
  'Internal (claim_tasks on a Citus cluster): the jobs of the oldest runnable tasks read over every shard '
  'without locks, then each job''s tasks claimed with router statements (_engine_claim_job_tasks).';

-- claim_stage_handovers on a cluster (arguments checked by the caller): the
-- candidate stages read over every shard without locks, then each one
-- locked (SKIP LOCKED) and checked again on the node that holds it.
CREATE OR REPLACE FUNCTION workflow._engine_claim_handovers_distributed(worker text, max_stages int,
                                                                       lease interval)
RETURNS TABLE(job_id text, stage int)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c record;
  claimed int := 0;
BEGIN
  FOR c IN
    SELECT s.job_id AS job, s.stage AS stage_no
      FROM workflow.stages s
      JOIN workflow.jobs j ON j.id = s.job_id
     WHERE s.completed_at IS NOT NULL AND s.left_at IS NULL
       AND j.stage = s.stage AND j.status IN ('pending', 'running')
       AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now()
     ORDER BY coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
     LIMIT max_stages
  LOOP
    PERFORM 1 FROM workflow.stages s
      WHERE s.job_id = c.job AND s.stage = c.stage_no
        AND s.completed_at IS NOT NULL AND s.left_at IS NULL
        FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    -- Checked again under the lock: the job is still at this stage and the
    -- lease (the completer's or the last claimer's) has run out.
    PERFORM 1 FROM workflow.stages s JOIN workflow.jobs j ON j.id = s.job_id
      WHERE s.job_id = c.job AND j.id = c.job AND s.stage = c.stage_no
        AND s.completed_at IS NOT NULL AND s.left_at IS NULL
        AND j.stage = s.stage AND j.status IN ('pending', 'running')
        AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now();
    CONTINUE WHEN NOT FOUND;
    UPDATE workflow.stages s SET handover_by = worker, handover_expires_at = now() + lease
     WHERE s.job_id = c.job AND s.stage = c.stage_no;
    job_id := c.job;
    stage := c.stage_no;
    RETURN NEXT;
    claimed := claimed + 1;
    EXIT WHEN claimed >= max_stages;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_handovers_distributed(text, int, interval) IS
  'Internal (claim_stage_handovers on a Citus cluster): candidate stages read over every shard without '
  'locks, each then locked (SKIP LOCKED) and checked again with router statements.';

CREATE OR REPLACE FUNCTION workflow.distribute(shard_count int DEFAULT NULL)
RETURNS TABLE(object text, distributed_as text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t record;
  f record;
  is_coordinator boolean;
  moved text[] := '{}';  -- tables distributed by this call (their shells' rows go)
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000',
      HINT = 'Load citus (shared_preload_libraries), CREATE EXTENSION citus and add the worker nodes first.';
  END IF;
  EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO is_coordinator;
  IF NOT is_coordinator THEN
    RAISE EXCEPTION 'workflow.distribute() runs on the Citus coordinator' USING ERRCODE = '55000';
  END IF;
  IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
    RAISE EXCEPTION 'shard_count % is out of range 1..64000', shard_count USING ERRCODE = '22023';
  END IF;

  -- Citus refuses subqueries in the policies of a distributed table: a
  -- producer's read of its own stages and tasks (a subquery on jobs) goes.
  -- Producers then read no stage or task row directly on a cluster (the
  -- remaining policies are for workers and admins); job_progress serves them.
  DROP POLICY IF EXISTS stages_owner_reads ON workflow.stages;
  DROP POLICY IF EXISTS tasks_owner_reads ON workflow.tasks;

  -- The tables, by job id, colocated with jobs (stages' foreign key to jobs
  -- needs it); jobs first. A table distributed already is left as it is.
  FOR t IN
    SELECT * FROM (VALUES (1, 'workflow.jobs', 'id'), (2, 'workflow.stages', 'job_id'),
                          (3, 'workflow.stage_slots', 'job_id'), (4, 'workflow.tasks', 'job_id')) v(ord, tab, col)
     ORDER BY ord
  LOOP
    IF workflow._engine_citus_table(t.tab) THEN
      object := t.tab; distributed_as := 'distributed already'; RETURN NEXT;
      CONTINUE;
    END IF;
    IF t.ord = 1 THEN
      EXECUTE format('SELECT pg_catalog.create_distributed_table(%L, %L, colocate_with => %L%s)',
                     t.tab, t.col, 'none',
                     CASE WHEN shard_count IS NOT NULL THEN ', shard_count => ' || shard_count ELSE '' END);
    ELSE
      EXECUTE format('SELECT pg_catalog.create_distributed_table(%L, %L, colocate_with => %L)',
                     t.tab, t.col, 'workflow.jobs');
    END IF;
    moved := moved || t.tab;
    object := t.tab; distributed_as := 'distributed by ' || t.col; RETURN NEXT;
  END LOOP;
  -- Rows that were there were copied into the shards; the shells' copies go,
  -- once no local table references them (the foreign key stages -> jobs).
  FOR t IN SELECT v.tab FROM unnest(ARRAY['workflow.tasks', 'workflow.stage_slots', 'workflow.stages',
                                         'workflow.jobs']) AS v(tab)
            WHERE v.tab = ANY (moved)
  LOOP
    EXECUTE format('SELECT pg_catalog.truncate_local_data_after_distributing_table(%L)', t.tab);
  END LOOP;

  -- The per-job functions: delegated whole to the node holding the job.
  FOR f IN
    SELECT * FROM (VALUES
      ('workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int)', 'job_id'),
      ('workflow.seal_stage(text, int)', 'job_id'),
      ('workflow.cancel_job(text, text)', 'job_id'),
      ('workflow.advance_job_stage(text, int, int, jsonb)', 'job_id_param'),
      ('workflow.check_job_completion(text)', 'job_id_param'),
      ('workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text)', 'job_id_param'),
      ('workflow.heartbeat_task(text, text, text, interval)', 'job_id'),
      ('workflow.fail_task(text, text, text, boolean, interval, interval, text)', 'job_id'),
      ('workflow.job_progress(text)', 'job_id'),
      ('workflow.set_handover_lease(text, interval)', 'job_id'),
      ('workflow.set_job_owner(text, name)', 'job_id')) v(fn, arg)
  LOOP
    EXECUTE format('SELECT pg_catalog.create_distributed_function(%L::regprocedure, %L, '
                   'colocate_with => %L, force_delegation => true)', f.fn, f.arg, 'workflow.jobs');
    object := f.fn; distributed_as := 'delegated by ' || f.arg; RETURN NEXT;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.distribute(int) IS
  'On a Citus coordinator: distributes workflow.jobs, stages, stage_slots and tasks by job id, colocated '
  '(shard_count: Citus'' default when NULL), copying existing rows into the shards, and registers the per-job '
  'functions (add_tasks, seal_stage, cancel_job, advance_job_stage, check_job_completion, '
  'complete_task_and_check_stage, heartbeat_task, fail_task, job_progress, set_handover_lease, set_job_owner) '
  'for delegation to the node holding the job. Idempotent (a table distributed already is left alone). 55000 '
  'without Citus or off the coordinator. Only a superuser (the owner of the tables) can run it. '
  'One row per object. Survey steps and the audit log stay on the coordinator. Drops the producers'' read '
  'policies of stages and tasks (Citus refuses their subqueries): on a cluster producers read them through '
  'job_progress only.';
REVOKE EXECUTE ON FUNCTION workflow.distribute(int) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
  workflow._engine_citus_table(text),
  workflow._engine_claim_job_tasks(text, text, int, text[], interval),
  workflow._engine_claim_tasks_distributed(text, int, text[], interval),
  workflow._engine_claim_handovers_distributed(text, int, interval)
  FROM PUBLIC;
