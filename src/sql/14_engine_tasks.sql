-- Job -> Stage -> Task engine: workers' calls (claim, heartbeat, fail).
-- complete_task_and_check_stage, the hot path, is in 15_engine_complete.sql.

-- task_types of a claim: NULL (any type) or a non-empty array of at most
-- 1000 types without NULLs.
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
    IF cardinality(task_types) > 1000 THEN
      RAISE EXCEPTION 'task_types has % elements, at most 1000', cardinality(task_types)
        USING ERRCODE = '22023';
    END IF;
    IF array_ndims(task_types) > 1 THEN
      RAISE EXCEPTION 'task_types must be a one-dimensional array' USING ERRCODE = '22023';
    END IF;
    IF array_position(task_types, NULL) IS NOT NULL THEN
      RAISE EXCEPTION 'task_types[%] is NULL', array_position(task_types, NULL)
        USING ERRCODE = '22004';
    END IF;
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_task_types(text[]) IS
  'Internal: raises 22023 for an empty, multi-dimensional or over 1000 elements task_types array, 22004 for a NULL element (NULL means any type).';

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
    -- Never before the task was due: an unfenced fail_task of a queued task
    -- that waits for its run_at (1.8; before, the backoff replaced it).
    retry_time := greatest(now() + workflow.retry_delay(t.retry_count + 1, backoff_base, backoff_cap), t.run_after);
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
  '(and not before its run_after: a queued task waiting for its run_at keeps it) while retryable with retries left, '
  'else dead (_engine_task_died).';
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
  'retry_delay(retry_count + 1) (exponential, jittered), not before its run_after (run_at). Otherwise the task is dead (failed): when its stage '
  'tolerates another dead task (tolerate_dead_tasks) it counts as finished for the stage, else the job fails, '
  'its unfinished tasks are cancelled and workflow_job_complete is notified. With worker, only a task claimed '
  'by that worker fails; the failure keeps claimed_by = worker, so the worker''s own repeat (task queued again '
  'or failed by it) writes nothing and answers the task''s state and the attempt counts once; a task claimed or '
  'completed by another worker, or queued by someone else, raises 55000 and nothing is written. Without worker '
  'claimed_by is cleared.';
