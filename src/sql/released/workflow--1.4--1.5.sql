-- Upgrade workflow 1.4 -> 1.5 (ALTER EXTENSION workflow UPDATE TO '1.5').
-- Assembled from the files listed in src/sql/upgrade/1.4--1.5.list: parts of
-- the 1.5 install script that can be re-run on 1.4 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.4--1.5/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.5'" to load this file. \quit
-- Job -> Stage -> Task engine: workers' calls (claim, heartbeat, fail).
-- complete_task_and_check_stage, the hot path, is in 15_engine_complete.sql.

-- task_types of a claim: NULL (any type) or a non-empty array without NULLs.
CREATE OR REPLACE FUNCTION workflow._engine_check_task_types(task_types text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF task_types IS NOT NULL THEN
    IF cardinality(task_types) = 0 THEN
      RAISE EXCEPTION 'task_types must be NULL (any type) or non-empty' USING ERRCODE = '22023';
    END IF;
    IF array_position(task_types, NULL) IS NOT NULL THEN
      RAISE EXCEPTION 'task_types[%] is NULL', array_position(task_types, NULL)
        USING ERRCODE = '22004';
    END IF;
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_task_types(text[]) IS
  'Internal: raises 22023 for an empty task_types array, 22004 for a NULL element (NULL means any type).';

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
  PERFORM workflow._engine_check_task_types(task_types);
  RETURN QUERY SELECT * FROM workflow._engine_claim(ARRAY[worker], max_tasks, task_types, lease);
END;
$$;
COMMENT ON FUNCTION workflow.claim_tasks(text, int, text[], interval) IS
  'Claims up to max_tasks (1..10000) runnable tasks for worker, optionally only of task_types, for lease: '
  'queued tasks whose run_after has passed and claimed tasks whose lease expired (before their deadline), of '
  'pending/running jobs that are not paused, of task types that are not paused; highest priority first, then '
  'oldest. A type with a concurrency limit (set_task_type_limit) never has more than its limit claimed at once. '
  'Sets deadline_at = now() + the task''s timeout; first fails the attempts whose deadline has passed. '
  'FOR UPDATE SKIP LOCKED. Returns the claimed rows. On a Citus cluster (workflow.distribute()) '
  'the jobs of the best runnable tasks are read over every shard first, then each job''s tasks are claimed '
  'on the node that holds it (FOR UPDATE SKIP LOCKED there).';

-- 1.5: one claim for several worker loops of a process (the client's
-- WorkerGroup at batch 1): at most one task for each name in workers, in one
-- statement and one commit, each task fenced by its own loop's name.
CREATE OR REPLACE FUNCTION workflow.claim_tasks_for_workers(workers text[], task_types text[] DEFAULT NULL,
                                                 lease interval DEFAULT '5 minutes')
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_not_null('workers', workers);
  IF cardinality(workers) NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'workers has % elements, not 1..10000', cardinality(workers) USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. cardinality(workers) LOOP  -- the check's statement only for a bad name (its error)
    IF workers[i] IS NULL OR workers[i] = '' OR length(workers[i]) > 200 OR workers[i] ~ '[[:cntrl:]]' THEN
      PERFORM workflow._engine_check_text(format('workers[%s]', i), workers[i]);
    END IF;
  END LOOP;
  PERFORM workflow._engine_check_lease('lease', lease);
  PERFORM workflow._engine_check_task_types(task_types);
  RETURN QUERY SELECT * FROM workflow._engine_claim(workers, cardinality(workers), task_types, lease);
END;
$$;
COMMENT ON FUNCTION workflow.claim_tasks_for_workers(text[], text[], interval) IS
  'claim_tasks for several workers at once: claims at most one task for each name in workers (1..10000 '
  'names), the same tasks in the same order as claim_tasks(max_tasks => cardinality(workers)) would, and '
  'the i-th claimed task is claimed by workers[i] (fenced by that name). Returns the claimed rows '
  '(claimed_by says whose each is; fewer rows than workers when fewer tasks are runnable). For a process '
  'whose worker loops each take one task at a time. 22004 NULL workers or element, 22023 an empty array, '
  'more than 10000 or a name that is empty, over 200 characters or has control characters; task_types and '
  'lease as claim_tasks.';

-- The claim itself (arguments checked by the callers): up to max_tasks
-- tasks; all for workers[1] when it has one name, else task i for workers[i].
CREATE OR REPLACE FUNCTION workflow._engine_claim(workers text[], max_tasks int, task_types text[],
                                                 lease interval)
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
-- One plan per session (generic): its shape is fixed by the query (the
-- claim index, in order, under the LIMIT), and planning it at every call
-- would cost more than the claim itself; never JIT-compiled.
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
  excluded text[];   -- paused types (and types limited to 0)
  limited text[];    -- types with a concurrency limit
  timed_out boolean; -- a claimed task's deadline has passed
  prios int[];       -- the priorities of queued and claimed tasks, highest first
  prio int;
  got int := 0;
  n int;
  w text;
BEGIN
  -- On a Citus cluster a multi-shard FOR UPDATE (and the recursive walk of
  -- the priorities below) is refused: claim job by job (19_engine_citus.sql).
  IF workflow._engine_citus_table('workflow.tasks') THEN
    SELECT coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NOT NULL OR s.max_claimed = 0), '{}'),
           coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NULL AND s.max_claimed > 0), '{}')
      INTO excluded, limited
      FROM workflow.task_type_settings s;
    IF EXISTS (SELECT 1 FROM workflow.tasks x WHERE x.status = 'claimed' AND x.deadline_at <= now()) THEN
      PERFORM workflow._engine_expire_timeouts(100);
    END IF;
    IF cardinality(workers) = 1 THEN
      RETURN QUERY SELECT * FROM workflow._engine_claim_tasks_distributed(workers[1], max_tasks, task_types,
                                                                          lease, excluded, limited);
    ELSE
      FOREACH w IN ARRAY workers LOOP
        RETURN QUERY SELECT * FROM workflow._engine_claim_tasks_distributed(w, 1, task_types, lease,
                                                                            excluded, limited);
      END LOOP;
    END IF;
    RETURN;
  END IF;

  -- 1.4: one statement reads the task type controls (a small table, usually
  -- empty), probes the deadline index (empty unless tasks have timeouts) and
  -- walks the priorities present in the claim index from the highest, one
  -- index probe each (a loose index scan): O(log n) per priority present.
  SELECT coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NOT NULL OR s.max_claimed = 0), '{}'),
         coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NULL AND s.max_claimed > 0), '{}'),
         coalesce((SELECT x.deadline_at FROM workflow.tasks x  -- the deadline index's first entry
                    WHERE x.status = 'claimed' AND x.deadline_at IS NOT NULL
                    ORDER BY x.deadline_at LIMIT 1) <= now(), false),
         ARRAY(WITH RECURSIVE prio AS (
                 (SELECT t.priority AS p FROM workflow.tasks t
                   WHERE t.status IN ('queued', 'claimed') ORDER BY t.priority DESC LIMIT 1)
                 UNION ALL
                 SELECT (SELECT t.priority FROM workflow.tasks t
                          WHERE t.status IN ('queued', 'claimed') AND t.priority < prio.p
                          ORDER BY t.priority DESC LIMIT 1)
                   FROM prio WHERE prio.p IS NOT NULL)
               SELECT prio.p FROM prio WHERE prio.p IS NOT NULL)
    INTO excluded, limited, timed_out, prios
    FROM workflow.task_type_settings s;
  IF timed_out THEN
    PERFORM workflow._engine_expire_timeouts(100);
  END IF;

  IF cardinality(prios) = 0 THEN
    RETURN;  -- nothing queued or claimed
  END IF;

  -- A type with a concurrency limit in reach: the exact path (41_engine_controls.sql).
  IF cardinality(limited) > 0 AND (task_types IS NULL OR task_types && limited) THEN
    IF cardinality(workers) = 1 THEN
      RETURN QUERY SELECT * FROM workflow._engine_claim_limited(workers[1], max_tasks, task_types, lease,
                                                                excluded, limited, prios);
    ELSE  -- one claim per name: each counts the others' under the type's lock
      FOREACH w IN ARRAY workers LOOP
        RETURN QUERY SELECT * FROM workflow._engine_claim_limited(w, 1, task_types, lease,
                                                                  excluded, limited, prios);
      END LOOP;
    END IF;
    RETURN;
  END IF;

  -- Per priority present, highest first, one statement: queued tasks whose
  -- run_after has come and claimed tasks whose lease expired (before their
  -- deadline), oldest first, of jobs still running and not paused; SKIP
  -- LOCKED so concurrent claimers never wait for or get the same task. With
  -- the priority an equality, the claim index (priority DESC, due) is read
  -- in its order and the LIMIT stops the scan: O(log n + claimed) per
  -- priority tried. (One statement over `priority = ANY (prios)` cannot read
  -- the index in order: its generic plan read and sorted every claimable
  -- task, 75 ms a claim at 50k queued.) A range ends at its first task not
  -- due: what waits for later costs nothing. The k-th task claimed is
  -- workers[k]'s (with one name, all are).
  FOREACH prio IN ARRAY prios LOOP
    RETURN QUERY
    WITH picked AS (
      SELECT t.job_id, t.id
        FROM workflow.tasks t
       WHERE t.status IN ('queued', 'claimed') AND t.priority = prio
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND t.task_type <> ALL (excluded)
         AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
         -- Only once the job has reached the task's stage: a stage fanned out
         -- before the advance into it has committed waits for that advance.
         -- (OFFSET 0: a subplan per candidate, never a join that the planner
         -- could start from the jobs.)
         AND EXISTS (SELECT 1 FROM workflow.jobs j
                      WHERE j.id = t.job_id AND j.status IN ('pending', 'running')
                        AND j.stage >= t.stage AND j.paused_at IS NULL OFFSET 0)
       ORDER BY t.priority DESC, (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
       LIMIT max_tasks - got
         FOR UPDATE OF t SKIP LOCKED
    ), numbered AS (
      SELECT picked.job_id, picked.id, got + row_number() OVER () AS k FROM picked
    )
    UPDATE workflow.tasks t
       SET status = 'claimed', claimed_by = workers[CASE WHEN cardinality(workers) = 1 THEN 1 ELSE numbered.k END],
           heartbeat = now(),
           lease_expires_at = now() + lease, deadline_at = now() + t.timeout, updated_at = now()
      FROM numbered
     WHERE t.job_id = numbered.job_id AND t.id = numbered.id
    RETURNING t.*;
    GET DIAGNOSTICS n = ROW_COUNT;
    got := got + n;
    EXIT WHEN got >= max_tasks;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim(text[], int, text[], interval) IS
  'Internal (claim_tasks, claim_tasks_for_workers): claims up to max_tasks runnable tasks, all for workers[1] '
  'when workers has one name, else the i-th for workers[i]; the arguments are checked by the callers.';

REVOKE EXECUTE ON FUNCTION workflow._engine_claim(text[], int, text[], interval),
                           workflow._engine_check_task_types(text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION workflow.claim_tasks_for_workers(text[], text[], interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.claim_tasks_for_workers(text[], text[], interval)
  TO workflow_worker, workflow_admin;

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
     AND t.status = 'claimed' AND t.claimed_by = worker
     AND (t.deadline_at IS NULL OR t.deadline_at > now());
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
    -- this worker finished it (completed, failed, or cancelled with its
    -- job), or its deadline has passed (the attempt fails): stop
    RETURN false;
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
  'false (nothing written) when this worker finished the task itself (completed, failed, cancelled with its job) '
  'or the task''s deadline (claim time + timeout) has passed. '
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

-- One failed attempt of task t (fail_task, and a claim's deadline passing:
-- 42_engine_timeouts.sql). The caller holds the job row (FOR NO KEY UPDATE)
-- and the task row: lock order job -> task. Retryable with retries left:
-- queued again after the backoff. Otherwise the task is dead
-- (_engine_task_died: its stage tolerates it, or the job fails).
CREATE OR REPLACE FUNCTION workflow._engine_fail_attempt(t workflow.tasks, error text, retryable boolean,
                                                        backoff_base interval, backoff_cap interval,
                                                        worker text)
RETURNS TABLE(will_retry boolean, retry_at timestamptz, job_failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  retry_time timestamptz;
BEGIN
  IF retryable AND t.retry_count < t.max_retries THEN
    retry_time := now() + workflow.retry_delay(t.retry_count + 1, backoff_base, backoff_cap);
    UPDATE workflow.tasks x
       SET status = 'queued', retry_count = x.retry_count + 1, run_after = retry_time,
           claimed_by = worker, lease_expires_at = NULL, deadline_at = NULL, last_error = error,
           updated_at = now()
     WHERE x.job_id = t.job_id AND x.id = t.id;
    RETURN QUERY SELECT true, retry_time, false;
    RETURN;
  END IF;
  RETURN QUERY SELECT false, NULL::timestamptz, NOT workflow._engine_task_died(t, error, worker);
END;
$$;
COMMENT ON FUNCTION workflow._engine_fail_attempt(workflow.tasks, text, boolean, interval, interval, text) IS
  'Internal (fail_task, timeouts): records one failed attempt of a locked task: queued again after the backoff '
  'while retryable with retries left, else dead (_engine_task_died).';
REVOKE EXECUTE ON FUNCTION workflow._engine_fail_attempt(workflow.tasks, text, boolean, interval, interval, text)
  FROM PUBLIC;

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

  RETURN QUERY SELECT * FROM workflow._engine_fail_attempt(t, error, retryable, backoff_base, backoff_cap,
                                                           fail_task.worker);
END;
$$;
COMMENT ON FUNCTION workflow.fail_task(text, text, text, boolean, interval, interval, text) IS
  'Records a failed attempt. Retryable and retry_count < max_retries: the task is queued again after '
  'retry_delay(retry_count + 1) (exponential, jittered). Otherwise the task is dead (failed): when its stage '
  'tolerates another dead task (tolerate_dead_tasks) it counts as finished for the stage, else the job fails, '
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
      'workflow.create_job(text,jsonb,integer,text,timestamp with time zone,text)',
      'workflow.add_tasks(text,integer,text,jsonb[],boolean,integer,integer,integer,timestamp with time zone,integer,interval)',
      'workflow.seal_stage(text,integer)',
      'workflow.claim_tasks(text,integer,text[],interval)',
      'workflow.claim_tasks_for_workers(text[],text[],interval)',
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
      'workflow.set_job_owner(text,name)',
      'workflow.tolerate_dead_tasks(text,integer,integer)',
      'workflow.retry_task(text,text)',
      'workflow.retry_job(text)',
      'workflow.pause_task_type(text)',
      'workflow.resume_task_type(text)',
      'workflow.set_task_type_limit(text,integer)',
      'workflow.pause_job(text)',
      'workflow.resume_job(text)',
      'workflow.expire_timed_out_tasks(integer)',
      'workflow.purge_jobs(interval,text[],integer)',
      'workflow.report_progress(text,text,jsonb,text)'] LOOP
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
      FULL JOIN (SELECT job_id, stage,
                        count(*) FILTER (WHERE status <> 'completed' AND NOT dead_tolerated) AS unfinished
                   FROM t GROUP BY job_id, stage) u USING (job_id, stage)
     WHERE coalesce(c.remaining, 0) <> coalesce(u.unfinished, 0)
  ), stage_facts AS (
    SELECT s.*, coalesce(a.nonzero_slots, 0) AS nonzero_slots,
           coalesce(b.n_tasks, 0) AS n_tasks, coalesce(b.n_unfinished, 0) AS n_unfinished,
           coalesce(b.n_tolerated, 0) AS n_tolerated
      FROM s
      LEFT JOIN (SELECT job_id, stage, count(*) FILTER (WHERE remaining > 0) AS nonzero_slots
                   FROM sl GROUP BY job_id, stage) a USING (job_id, stage)
      LEFT JOIN (SELECT job_id, stage, count(*) AS n_tasks,
                        -- 1.4: a dead task its stage tolerates counts as finished
                        count(*) FILTER (WHERE status <> 'completed' AND NOT dead_tolerated) AS n_unfinished,
                        count(*) FILTER (WHERE dead_tolerated) AS n_tolerated
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
            AND (ct.id IS NULL OR ct.stage <> f.stage OR (ct.status <> 'completed' AND NOT ct.dead_tolerated)))
  ), orphan_bad AS (
    SELECT t.id AS what FROM t
     WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.job_id = t.job_id AND s.stage = t.stage)
  ), task_bad AS (
    SELECT t.id AS what FROM t JOIN s USING (job_id, stage)
     WHERE t.id <> t.job_id || ':' || t.stage || ':' || t.task_index
        OR t.slot <> t.task_index % s.slot_count
        OR (t.status = 'completed') <> (t.completed_at IS NOT NULL)
        OR (t.dead_tolerated AND t.status <> 'failed')
  ), tolerated_bad AS (
    SELECT job_id || ':' || stage || ' dead_tasks ' || dead_tasks || ' but ' || n_tolerated
           || ' tolerated dead tasks, at most ' || max_dead_tasks AS what
      FROM stage_facts WHERE dead_tasks <> n_tolerated OR dead_tasks > max_dead_tasks
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
    UNION ALL SELECT 'tolerated dead tasks counted', what FROM tolerated_bad
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
           ('stuck jobs', 9),
           ('tolerated dead tasks counted', 10)
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
-- Monitoring views (1.4; stuck_jobs reworked in 1.5): what a dashboard (`workflow serve`) or a monitoring
-- system reads. Re-runnable as it is (CREATE OR REPLACE, GRANT, COMMENT): the
-- 1.3 -> 1.4 and 1.4 -> 1.5 upgrades run this file (src/sql/upgrade/*.list).
--
-- The views run with their owner's rights (not security_invoker): they show
-- every job, whoever owns it, and are readable by workflow_monitor (a new
-- NOLOGIN role: grant it to the login role of a dashboard or an exporter)
-- and workflow_admin only. Nothing here writes.

-- workflow_monitor is made in 01_roles.sql (the 1.3 -> 1.4 upgrade runs it too).
GRANT USAGE ON SCHEMA workflow TO workflow_monitor;

-- Tasks by type and status (every task the table holds, finished ones too).
CREATE OR REPLACE VIEW workflow.queue_depth AS
SELECT t.task_type, t.status, count(*) AS tasks
  FROM workflow.tasks t
 GROUP BY t.task_type, t.status;
COMMENT ON VIEW workflow.queue_depth IS
  'Tasks by task_type and status (queued, claimed, completed, failed, cancelled): the queue depth is status = queued.';

-- Queued tasks whose run_after has passed: claimable now.
CREATE OR REPLACE VIEW workflow.oldest_runnable_task AS
SELECT t.task_type, count(*) AS runnable_tasks, min(t.run_after) AS runnable_since,
       extract(epoch FROM now() - min(t.run_after))::float8 AS age_seconds
  FROM workflow.tasks t
 WHERE t.status = 'queued' AND t.run_after <= now()
 GROUP BY t.task_type;
COMMENT ON VIEW workflow.oldest_runnable_task IS
  'Per task_type: queued tasks that may be claimed now (run_after passed) and how long the oldest has waited '
  '(age_seconds, since its run_after). No row: nothing of that type is waiting.';

-- Claims whose lease ran out: the worker died or hangs; the next claim_tasks takes them back.
CREATE OR REPLACE VIEW workflow.stale_claims AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.claimed_by, t.heartbeat, t.lease_expires_at,
       now() - t.lease_expires_at AS expired_for
  FROM workflow.tasks t
 WHERE t.status = 'claimed' AND t.lease_expires_at < now();
COMMENT ON VIEW workflow.stale_claims IS
  'Claimed tasks whose lease has expired and that no worker has reclaimed yet (claim_tasks takes them back).';

-- One row per job with its task totals (from workflow.stages: no task scan).
CREATE OR REPLACE VIEW workflow.job_summary AS
SELECT j.id AS job_id, j.job_type, j.status, j.stage, j.total_stages, j.owner, j.parameters, j.error,
       j.created_at, j.updated_at, j.finished_at,
       coalesce(s.total_tasks, 0) AS total_tasks, coalesce(s.complete_stages, 0) AS complete_stages
  FROM workflow.jobs j
  LEFT JOIN LATERAL (SELECT sum(x.total_tasks)::bigint AS total_tasks,
                            count(*) FILTER (WHERE x.completed_at IS NOT NULL) AS complete_stages
                       FROM workflow.stages x WHERE x.job_id = j.id) s ON true;
COMMENT ON VIEW workflow.job_summary IS
  'Every job with its status, current stage, parameters, error, and the tasks added to its stages so far.';

-- Per stage of every job: tasks by status and completions in the last minute.
-- Filter by job_id (or job_status = 'running'): each row counts its stage's tasks.
CREATE OR REPLACE VIEW workflow.stage_progress AS
SELECT j.id AS job_id, j.job_type, j.status AS job_status, s.stage, s.stage = j.stage AS current,
       s.sealed, s.total_tasks, t.completed, t.failed, t.queued, t.claimed,
       s.completed_at IS NOT NULL AS complete, s.created_at, s.completed_at,
       t.completed_last_minute, (t.completed_last_minute / 60.0)::float8 AS completions_per_second
  FROM workflow.jobs j
  JOIN workflow.stages s ON s.job_id = j.id
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status = 'completed') AS completed,
           count(*) FILTER (WHERE x.status = 'failed') AS failed,
           count(*) FILTER (WHERE x.status = 'queued') AS queued,
           count(*) FILTER (WHERE x.status = 'claimed') AS claimed,
           count(*) FILTER (WHERE x.completed_at > now() - interval '1 minute') AS completed_last_minute
      FROM workflow.tasks x WHERE x.job_id = s.job_id AND x.stage = s.stage) t;
COMMENT ON VIEW workflow.stage_progress IS
  'Per stage of every job: tasks completed, failed, queued and claimed, and throughput (completions in the '
  'last minute, and per second over it). Filter by job_id or job_status: each row counts its stage''s tasks.';

-- Per stage of every job, from its counters alone (no task is read): what a
-- live progress bar needs, O(the stage's slot_count) however many tasks it has.
CREATE OR REPLACE VIEW workflow.stage_counters AS
SELECT s.job_id, s.stage, s.sealed, s.total_tasks, c.unfinished AS unfinished_tasks,
       s.total_tasks - c.unfinished AS finished_tasks, s.completed_at IS NOT NULL AS complete
  FROM workflow.stages s
  CROSS JOIN LATERAL (SELECT coalesce(sum(x.remaining), 0)::int AS unfinished
                        FROM workflow.stage_slots x WHERE x.job_id = s.job_id AND x.stage = s.stage) c;
COMMENT ON VIEW workflow.stage_counters IS
  'Per stage of every job, from its fan-in counters (no task scan): total_tasks added, unfinished_tasks (queued, '
  'claimed, cancelled, or dead in a stage that does not tolerate it), finished_tasks = total - unfinished (completed, or dead '
  'and tolerated by the stage). The dashboard''s live progress; stage_progress has the exact split by status.';

-- Completions per second of the last 10 minutes, per job (the dashboard's chart).
CREATE OR REPLACE VIEW workflow.task_completions AS
SELECT t.job_id, date_trunc('second', t.completed_at) AS second, count(*) AS completions
  FROM workflow.tasks t
 WHERE t.completed_at > now() - interval '10 minutes'
 GROUP BY t.job_id, date_trunc('second', t.completed_at);
COMMENT ON VIEW workflow.task_completions IS
  'Tasks completed per job and second over the last 10 minutes (seconds with none have no row).';

-- Tasks that failed and are not completed: retrying (queued again) or dead (failed).
-- The partial index holds only those (few) rows: the view reads it instead of
-- the whole table, and a claim or completion of a task that never failed
-- adds nothing to it.
CREATE INDEX IF NOT EXISTS tasks_failed_idx ON workflow.tasks (updated_at)
  WHERE last_error IS NOT NULL AND status IN ('queued', 'claimed', 'failed');
CREATE OR REPLACE VIEW workflow.failed_tasks AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.status, t.retry_count, t.max_retries,
       t.last_error, CASE WHEN t.status = 'queued' THEN t.run_after END AS next_attempt_at, t.updated_at
  FROM workflow.tasks t
 WHERE t.last_error IS NOT NULL AND t.status IN ('queued', 'claimed', 'failed');
COMMENT ON VIEW workflow.failed_tasks IS
  'Tasks whose last attempt failed and that have not completed since: status queued or claimed (being '
  'retried; next_attempt_at) or failed (dead: out of retries or not retryable), with last_error.';

-- Completed stages and how long each took from its creation (first add_tasks) to completion.
CREATE OR REPLACE VIEW workflow.stage_latency AS
SELECT s.job_id, j.job_type, s.stage, s.created_at, s.completed_at,
       extract(epoch FROM s.completed_at - s.created_at)::float8 AS seconds
  FROM workflow.stages s JOIN workflow.jobs j ON j.id = s.job_id
 WHERE s.completed_at IS NOT NULL;
COMMENT ON VIEW workflow.stage_latency IS
  'Every completed stage and its latency in seconds, from the stage''s creation to its completion.';

-- Jobs that are not ending by themselves: see the reasons in the comment.
-- 1.5: an unfinished stage's tasks are read only when it may be stuck: it
-- is 5 minutes old (created and sealed) and none of its tasks changed in
-- the last 5 minutes (the EXISTS stops at the first that did); a moving
-- stage costs no count of its tasks (before, every poll counted them all).
CREATE OR REPLACE VIEW workflow.stuck_jobs AS
SELECT j.id AS job_id, j.job_type, j.status, j.stage, r.reason, r.since
  FROM workflow.jobs j
  LEFT JOIN workflow.stages s ON s.job_id = j.id AND s.stage = j.stage
  CROSS JOIN LATERAL (
    SELECT s.job_id IS NOT NULL AND s.completed_at IS NULL
           AND greatest(s.created_at, s.sealed_at) < now() - interval '5 minutes'
           AND NOT EXISTS (SELECT FROM workflow.tasks y
                            WHERE y.job_id = s.job_id AND y.stage = s.stage
                              AND y.updated_at >= now() - interval '5 minutes') AS idle) i
  LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status IN ('queued', 'claimed')) AS open_tasks,
           max(x.updated_at) AS last_update
      FROM workflow.tasks x WHERE i.idle AND x.job_id = s.job_id AND x.stage = s.stage) t ON true
  CROSS JOIN LATERAL (
    SELECT CASE
             WHEN s.job_id IS NULL THEN 'current stage has no tasks'
             WHEN s.completed_at IS NOT NULL THEN 'stage complete, job not advanced'
             WHEN t.open_tasks = 0 AND NOT s.sealed THEN 'stage not sealed, no task to run'
             ELSE 'no task progress'
           END AS reason,
           CASE
             WHEN s.job_id IS NULL THEN j.updated_at
             WHEN s.completed_at IS NOT NULL
               THEN coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
             WHEN i.idle THEN greatest(s.created_at, s.sealed_at, t.last_update)
             -- else NULL: moving, or younger than 5 minutes; not stuck
           END AS since) r
 WHERE j.status IN ('pending', 'running')
   AND r.since < now() - CASE WHEN s.completed_at IS NOT NULL THEN interval '0' ELSE interval '5 minutes' END;
COMMENT ON VIEW workflow.stuck_jobs IS
  'Pending or running jobs that are not moving: their current stage has no tasks, or is complete but the job '
  'was not advanced past its hand-over lease, or is unsealed with no task to run, or no task of it changed, '
  'for 5 minutes. since: when it stopped moving.';

REVOKE ALL ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs FROM PUBLIC;
GRANT SELECT ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs TO workflow_monitor, workflow_admin;
-- Open tasks at a glance (1.5): what `workflow serve` polls for its queues
-- panel and /metrics, in one pass over the open (queued and claimed) tasks
-- instead of one pass per view (queue_depth, oldest_runnable_task,
-- stale_claims). The pass reads the claimable index's rows
-- (tasks_claimable_idx holds only open tasks), so it costs as much as there
-- are open tasks, however many finished ones the table keeps. Re-runnable as
-- it is: the 1.4 -> 1.5 upgrade runs this file (src/sql/upgrade/1.4--1.5.list).
CREATE OR REPLACE VIEW workflow.open_task_summary AS
SELECT t.task_type, t.status, count(*) AS tasks,
       count(*) FILTER (WHERE t.status = 'queued' AND t.run_after <= now()) AS runnable_tasks,
       min(t.run_after) FILTER (WHERE t.status = 'queued' AND t.run_after <= now()) AS runnable_since,
       count(*) FILTER (WHERE t.status = 'claimed' AND t.lease_expires_at < now()) AS stale_claims
  FROM workflow.tasks t
 WHERE t.status IN ('queued', 'claimed')
 GROUP BY t.task_type, t.status;
COMMENT ON VIEW workflow.open_task_summary IS
  'Per task_type and open status (queued, claimed), in one pass over the open tasks: tasks (as queue_depth), '
  'runnable_tasks and runnable_since (queued, run_after passed: as oldest_runnable_task), stale_claims (claimed, '
  'lease expired: as stale_claims counts them).';
REVOKE ALL ON workflow.open_task_summary FROM PUBLIC;
GRANT SELECT ON workflow.open_task_summary TO workflow_monitor, workflow_admin;
