-- Upgrade workflow 1.1 -> 1.2 (ALTER EXTENSION workflow UPDATE TO '1.2').
-- Assembled from the files listed in src/sql/upgrade/1.1--1.2.list: parts of
-- the 1.2 install script that can be re-run on 1.1 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.1--1.2/ for what
-- cannot. A 1.0 database takes 1.0 -> 1.1 (released) and then this script.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.2'" to load this file. \quit
-- 1.1 -> 1.2: a completion takes its unit from any counter of its stage
-- (src/sql/10_engine_tables.sql; the table itself is unchanged).
COMMENT ON TABLE workflow.stage_slots IS
  'Sharded counter of a stage''s unfinished tasks: one row per slot; the slots of a stage sum to its unfinished '
  'tasks (a task is added to slot task_index % slot_count, a completion takes from any slot with some left).';
-- Counter pages pruned as soon as they are 10% full (see workflow.stage_slots
-- in src/sql/10_engine_tables.sql); it takes effect for every page at once.
ALTER TABLE workflow.stage_slots SET (fillfactor = 10);
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
         sealed_at = CASE WHEN seal THEN now() END,
         completed_by_seal = (s.pending_slots + newly_pending - seal::int = 0),
         completed_at = CASE WHEN s.pending_slots + newly_pending - seal::int = 0 THEN now() END
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
     SET sealed = true, sealed_at = now(),
         pending_slots = s.pending_slots - 1,
         completed_by_seal = (s.pending_slots = 1),
         completed_at = CASE WHEN s.pending_slots = 1 THEN now() END
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
-- Job -> Stage -> Task engine: the fan-in hot path, native (C++):
-- src/extension/engine_fan_in.cpp, the one fan-in path, called by
-- complete_task_and_check_stage (engine_complete.cpp, a batch of one) and
-- complete_tasks (engine_complete_batch.cpp). 1.2 counts by stage (the
-- *_by_stage entry points): a completion takes its unit from any counter of
-- its stage that has one, below the executor (engine_direct.hpp). CREATE OR
-- REPLACE: the 1.1 -> 1.2 upgrade runs this file as it is.
--
-- Fencing (worker => the name the task was claimed with): only a task
-- currently claimed by that worker completes (also after its lease expired,
-- as long as no other worker claimed it). The worker's own repeat after a
-- lost reply (the task completed with its name) writes nothing and answers
-- the same. A task another worker holds or completed, or that is queued
-- again, raises 55000 and nothing is written. claimed_by is kept on
-- completion: it names the worker that completed the task. Without worker
-- (NULL): any queued or claimed task completes (unfenced).

CREATE OR REPLACE FUNCTION workflow.complete_task_and_check_stage(task_id_param text, job_id_param text,
                                                       stage_param int, result_data_param jsonb,
                                                       count_remaining boolean DEFAULT true,
                                                       worker text DEFAULT NULL)
RETURNS TABLE(stage_complete boolean, remaining_tasks int, job_id text)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS 'MODULE_PATHNAME', 'workflow_complete_task_and_check_stage_by_stage';
COMMENT ON FUNCTION workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text) IS
  'Completes a queued or claimed task and stores its result. Exactly one call per stage, whatever the '
  'concurrency, returns stage_complete = true (and NOTIFY workflow_stage_complete); O(1) in the stage size. '
  'A repeated call writes nothing and returns stage_complete = true again only for the task that completed '
  'the stage. remaining_tasks: unfinished tasks of the stage at the time of the call (sum of its '
  'counters, O(slot_count)); with count_remaining => false it is not counted (NULL, or 0 when the stage is '
  'complete). With worker: only a task claimed by that worker completes; a task another worker holds or '
  'completed, or one queued again, raises 55000 and nothing is written; the worker''s own repeat is '
  'answered as above. P0002 unknown task, 22023 wrong stage, 55000 failed/cancelled task.';

CREATE OR REPLACE FUNCTION workflow.complete_tasks(job_ids text[], task_ids text[], stages int[],
                                        results jsonb[] DEFAULT NULL,
                                        worker text DEFAULT NULL)
RETURNS TABLE(job_id text, task_id text, stage int, stage_complete boolean)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 32
AS 'MODULE_PATHNAME', 'workflow_complete_tasks_by_stage';
COMMENT ON FUNCTION workflow.complete_tasks(text[], text[], int[], jsonb[], text) IS
  'Completes many tasks (element i: task_ids[i] of job_ids[i] in stages[i], result results[i]) in one '
  'statement and transaction: the batch form of complete_task_and_check_stage, with the same exactly-once '
  'stage completion whatever the concurrency (also mixed with single completes); locks are taken in one '
  'global order (tasks by job and id, then each stage''s counters in ascending order, then stages), so '
  'concurrent batches do not deadlock. '
  'Returns one row per element in input order; stage_complete is true for the task recorded as its stage''s '
  'completer, also when the batch is repeated (a repeat writes nothing). All or nothing: any refused element '
  'fails the whole call and nothing is written: 22004 NULL array or element, 22023 empty or unequal arrays, '
  'more than 10000 elements, a task twice, a wrong stage; P0002 unknown task; 55000 failed/cancelled task, '
  'and with worker a task not claimed by that worker (held or completed by another, or queued again). '
  'results may be NULL (no results).';
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
-- be ok. job_id_param NULL checks every job.
CREATE OR REPLACE FUNCTION workflow.check_invariants(job_id_param text DEFAULT NULL)
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE sql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
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
  ), checks(check_name, what) AS (
    SELECT 'counters = unfinished tasks of the stage', what FROM slot_bad
    UNION ALL SELECT 'pending_slots = non-zero slots + unsealed', what FROM pending_bad
    UNION ALL SELECT 'total_tasks = tasks of the stage', what FROM total_bad
    UNION ALL SELECT 'complete = sealed and every task completed', what FROM completion_bad
    UNION ALL SELECT 'exactly one completer, a completed task of the stage', what FROM completer_bad
    UNION ALL SELECT 'every task has its stage row', what FROM orphan_bad
    UNION ALL SELECT 'task id, slot and completed_at consistent', what FROM task_bad
    UNION ALL SELECT 'completed job has its last stage complete', what FROM job_bad
    UNION ALL SELECT 'stuck jobs', what FROM stuck_bad
  ), names(check_name, ord) AS (
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
    FROM names n LEFT JOIN checks c USING (check_name)
   GROUP BY n.check_name, n.ord
   ORDER BY n.ord;
$$;
COMMENT ON FUNCTION workflow.check_invariants(text) IS
  'Checks that the fan-in bookkeeping matches the tasks (for one job, or all when NULL): each stage''s counters, '
  'pending_slots, total_tasks, completion state, the single completer, task ids and slots; and stuck jobs: a '
  'pending/running job whose current stage is complete and whose hand-over lease has run out (nobody is '
  'advancing it: a worker must call claim_stage_handovers). One row per check; all ok after any crash once '
  'the workers have caught up.';
