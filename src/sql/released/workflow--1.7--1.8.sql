-- Upgrade workflow 1.7 -> 1.8 (ALTER EXTENSION workflow UPDATE TO '1.8').
-- Assembled from the files listed in src/sql/upgrade/1.7--1.8.list: parts of
-- the 1.8 install script that can be re-run on 1.7 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.7--1.8/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.8'" to load this file. \quit
-- 1.7 -> 1.8: survey_week_start is native (src/extension/survey_week.cpp), so
-- that an IANA zone wins over an abbreviation of the same name (CET, EET,
-- MET, WET: 1.7 cut their summer weeks an hour early). Rows already written
-- keep their week_start (as after a zone change); to recompute those of
-- sessions in these zones:
--   UPDATE workflow.survey_steps t SET week_start = workflow.survey_week_start(t.completed_at, s.time_zone)
--     FROM workflow.survey_sessions s WHERE s.session_id = t.session_id AND s.time_zone IN ('CET', 'EET', 'MET', 'WET');
-- (a key that then collides with another row of the same week and step is refused).
CREATE OR REPLACE FUNCTION workflow.survey_week_start(at timestamptz, zone text) RETURNS date
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'workflow_survey_week_start';
COMMENT ON FUNCTION workflow.survey_week_start(timestamptz, text) IS
  'The local Monday (a date) starting the week that contains the instant in the given time zone. An IANA zone name wins over a time zone abbreviation of the same spelling (CET, EET, MET, WET keep their summer time); other strings are read as timezone() reads them.';
-- Job -> Stage -> Task engine: argument checks and notifications shared by
-- the engine's functions. Hostile input gets a SQLSTATE error before
-- anything is written.

-- A required identifier-like text argument: not NULL (22004), not empty or
-- only spaces, at most max_len characters, no control characters (22023).
CREATE OR REPLACE FUNCTION workflow._engine_check_text(arg_name text, value text, max_len int DEFAULT 200)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', arg_name USING ERRCODE = '22004';
  END IF;
  IF value = '' THEN
    RAISE EXCEPTION '% must not be empty', arg_name USING ERRCODE = '22023';
  END IF;
  IF left(value, 1) = ' ' AND btrim(value, ' ') = '' THEN
    RAISE EXCEPTION '% must not be only spaces', arg_name USING ERRCODE = '22023';
  END IF;
  IF length(value) > max_len THEN
    RAISE EXCEPTION '% is too long (% characters, at most %)', arg_name, length(value), max_len
      USING ERRCODE = '22023';
  END IF;
  IF value ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION '% must not contain control characters: %', arg_name, quote_literal(value)
      USING ERRCODE = '22023';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_text(text, text, int) IS
  'Internal: raises 22004 for NULL, 22023 for an empty, only-spaces, too long or control-character text argument.';

-- A required argument of any type: not NULL (22004).
CREATE OR REPLACE FUNCTION workflow._engine_check_not_null(arg_name text, value anyelement)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', arg_name USING ERRCODE = '22004';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_not_null(text, anyelement) IS
  'Internal: raises 22004 when a required argument is NULL.';

-- A lease-like interval argument: not NULL (22004), and the timestamp it
-- yields after now() within (now(), now() + max_value] (22023). Compares the
-- resulting timestamps, not the interval's fields: '12000 mons -359993 days'
-- equals '7 days' field by field (a month counts 30 days) but reaches 14
-- years ahead, so it is refused. Fields too large for any timestamp are
-- refused before the addition could overflow.
CREATE OR REPLACE FUNCTION workflow._engine_check_lease(arg_name text, value interval,
                                             max_value interval DEFAULT '7 days')
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', arg_name USING ERRCODE = '22004';
  END IF;
  IF abs(extract(year FROM value)) > 10000 OR abs(extract(day FROM value)) > 3660000
     OR abs(extract(hour FROM value)) > 87840000
     OR now() + value <= now() OR now() + value > now() + max_value THEN
    RAISE EXCEPTION '% % is out of range (0, %]', arg_name, value, max_value
      USING ERRCODE = '22023', DETAIL = 'The limit applies to now() + ' || arg_name || '.';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_lease(text, interval, interval) IS
  'Internal: raises 22004 for NULL, 22023 unless now() < now() + value <= now() + max_value (timestamps '
  'compared, so months and days count as the calendar has them).';

-- The job row, or P0002. Locks it in `lock_mode` ('share', 'update' or 'none').
CREATE OR REPLACE FUNCTION workflow._engine_job(job_id_param text, lock_mode text DEFAULT 'none')
RETURNS workflow.jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs;
BEGIN
  PERFORM workflow._engine_check_text('job_id', job_id_param);
  IF lock_mode = 'share' THEN
    SELECT * INTO j FROM workflow.jobs WHERE id = job_id_param FOR SHARE;
  ELSIF lock_mode = 'update' THEN
    SELECT * INTO j FROM workflow.jobs WHERE id = job_id_param FOR NO KEY UPDATE;
  ELSE
    SELECT * INTO j FROM workflow.jobs WHERE id = job_id_param;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'job % not found', quote_literal(job_id_param) USING ERRCODE = 'P0002';
  END IF;
  RETURN j;
END;
$$;
COMMENT ON FUNCTION workflow._engine_job(text, text) IS
  'Internal: the job row (optionally locked FOR SHARE / FOR NO KEY UPDATE); P0002 when unknown.';

-- A stage number valid for the job, or 22004/22023.
CREATE OR REPLACE FUNCTION workflow._engine_check_stage(j workflow.jobs, stage_param int)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF stage_param IS NULL THEN
    RAISE EXCEPTION 'stage must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF stage_param < 1 OR stage_param > j.total_stages THEN
    RAISE EXCEPTION 'stage % is out of range 1..% for job %', stage_param, j.total_stages,
      quote_literal(j.id) USING ERRCODE = '22023';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_stage(workflow.jobs, int) IS
  'Internal: raises 22004/22023 unless the stage number is in 1..total_stages of the job.';

CREATE OR REPLACE FUNCTION workflow._engine_notify_stage_complete(job_id_param text, stage_param int)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.pg_notify('workflow_stage_complete',
    pg_catalog.json_build_object('job_id', job_id_param, 'stage', stage_param)::text);
$$;
COMMENT ON FUNCTION workflow._engine_notify_stage_complete(text, int) IS
  'Internal: NOTIFY workflow_stage_complete, payload {"job_id": ..., "stage": N}.';

CREATE OR REPLACE FUNCTION workflow._engine_notify_job_complete(job_id_param text, status_param text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.pg_notify('workflow_job_complete',
    pg_catalog.json_build_object('job_id', job_id_param, 'status', status_param)::text);
$$;
COMMENT ON FUNCTION workflow._engine_notify_job_complete(text, text) IS
  'Internal: NOTIFY workflow_job_complete, payload {"job_id": ..., "status": ...}.';

-- Ends a job that is still pending/running with a terminal status; its
-- unfinished tasks are cancelled so claimers no longer see them. The caller
-- holds the job row lock (lock order job -> task).
CREATE OR REPLACE FUNCTION workflow._engine_end_job(job_id_param text, status_param text, error_param text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE workflow.jobs
     SET status = status_param, error = error_param, updated_at = now(), finished_at = now()
   WHERE id = job_id_param AND status IN ('pending', 'running');
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  UPDATE workflow.tasks
     SET status = 'cancelled', updated_at = now(), lease_expires_at = NULL
   WHERE job_id = job_id_param AND status IN ('queued', 'claimed');
  -- Nothing of an ended job is handed over (and it leaves the hand-over index).
  UPDATE workflow.stages
     SET left_at = now()
   WHERE job_id = job_id_param AND completed_at IS NOT NULL AND left_at IS NULL;
  PERFORM workflow._engine_notify_job_complete(job_id_param, status_param);
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow._engine_end_job(text, text, text) IS
  'Internal: moves a pending/running job to a terminal status, cancels its unfinished tasks, notifies.';

-- Who may act on a job (1.1). The caller of a SECURITY DEFINER function is
-- identified by session_user, the login role (behind a pooler the pooled
-- login role): inside the function current_user is the definer. A job's
-- owner is the session user that created it.
CREATE OR REPLACE FUNCTION workflow._is_admin()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.pg_has_role(session_user, 'workflow_admin', 'MEMBER');
$$;
COMMENT ON FUNCTION workflow._is_admin() IS
  'Internal: whether the session user is a member of workflow_admin (superusers are).';

-- The session user may `action` the job: it owns it, is a member of
-- workflow_admin, or (workers_too) of workflow_worker. Otherwise 42501,
-- raised before anything is written. A job without owner (created before
-- 1.1) belongs to nobody: admins (and workers) only.
CREATE OR REPLACE FUNCTION workflow._engine_check_owner(j workflow.jobs, action text,
                                                        workers_too boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF j.owner = session_user
     OR (workers_too AND pg_has_role(session_user, 'workflow_worker', 'MEMBER'))
     OR workflow._is_admin() THEN
    RETURN;
  END IF;
  RAISE EXCEPTION 'permission denied to % job %: role % does not own it', action, quote_literal(j.id),
    quote_ident(session_user)
    USING ERRCODE = '42501',
          DETAIL = CASE WHEN j.owner IS NULL
                        THEN 'The job has no owner (it was created before 1.1): only workflow_admin may.'
                        ELSE 'A job is changed and read by the session user that created it.' END,
          HINT = 'Connect as the job''s owner, or as a member of workflow_admin'
                 || CASE WHEN workers_too THEN ' or workflow_worker' ELSE '' END || '.';
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_owner(workflow.jobs, text, boolean) IS
  'Internal: raises 42501 unless the session user owns the job, is a member of workflow_admin, or '
  '(workers_too) of workflow_worker.';

-- Fan-out into a job (add_tasks, seal_stage): its owner and admins into any
-- stage; a worker into the next stage only (2 .. the job's stage + 1: what a
-- stage_complete answer or a hand-over asks it to fan out), never stage 1,
-- which is the producer's.
CREATE OR REPLACE FUNCTION workflow._engine_check_fan_out(j workflow.jobs, stage_param int, action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF j.owner = session_user OR workflow._is_admin() THEN
    RETURN;
  END IF;
  IF pg_has_role(session_user, 'workflow_worker', 'MEMBER') THEN
    IF stage_param BETWEEN 2 AND j.stage + 1 THEN
      RETURN;
    END IF;
    RAISE EXCEPTION 'permission denied to % stage % of job %: a worker fans out only the next stage (2..%)',
      action, stage_param, quote_literal(j.id), least(j.stage + 1, j.total_stages)
      USING ERRCODE = '42501',
            DETAIL = format('The job is at stage %s; role %s does not own it.', j.stage, quote_ident(session_user)),
            HINT = 'Stage 1 and later stages are fanned out by the job''s owner or a member of workflow_admin.';
  END IF;
  PERFORM workflow._engine_check_owner(j, action);
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_fan_out(workflow.jobs, int, text) IS
  'Internal: raises 42501 unless the session user owns the job or is a member of workflow_admin, or is a '
  'member of workflow_worker and the stage is the next one (2 .. job stage + 1).';
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
DECLARE
  job workflow.jobs;
BEGIN
  PERFORM workflow._engine_check_lease('lease', lease, interval '1 day');
  job := workflow._engine_job(set_handover_lease.job_id, 'update');  -- 22004/22023/P0002
  PERFORM workflow._engine_check_owner(job, 'set the hand-over lease of');
  IF job.status NOT IN ('pending', 'running') THEN  -- an ended job hands nothing over
    RAISE EXCEPTION 'job % is %', quote_literal(job.id), job.status USING ERRCODE = '55000';
  END IF;
  UPDATE workflow.jobs j SET handover_lease = lease, updated_at = now()
   WHERE j.id = set_handover_lease.job_id;
END;
$$;
COMMENT ON FUNCTION workflow.set_handover_lease(text, interval) IS
  'Sets how long the completer of each stage of the job may take, from its completion, to advance the job before '
  'the stage can be claimed by claim_stage_handovers (default 1 minute; (0, 1 day]). P0002 when the job is unknown; 55000 when it has ended; '
  '42501 unless the session user owns the job or is a member of workflow_admin.';
REVOKE EXECUTE ON FUNCTION workflow.set_handover_lease(text, interval) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Audit history across pg_dump/restore: a restored workflow.audit_tables row
-- is mapped to the table of its name in the new database (the BEFORE INSERT
-- trigger is created in src/sql/21_audit_triggers.sql). Re-runnable (CREATE
-- OR REPLACE): src/sql/upgrade/1.7--1.8.list runs it.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION workflow.audit_tables_restore_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  existing workflow.audit_tables;
BEGIN
  IF current_setting('workflow.audit_registering', true) = 'on' THEN
    -- Written by enable_audit (or by someone who set the flag): the id is
    -- always the sequence's, so no one can take an id ahead of it.
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
      NEW.id := nextval('workflow.audit_tables_id_seq');
    END IF;
    RETURN NEW;
  END IF;
  -- A restored row: only the restore (a superuser) writes those.
  IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RAISE EXCEPTION 'workflow.audit_tables: rows are written by workflow.enable_audit'
      USING ERRCODE = '42501';
  END IF;
  -- A row whose table was dropped in the dumped database (relid NULL there)
  -- stays a dropped table's, also when a live table of that name is restored
  -- (one renamed to it, audited under a row of its own): mapping both rows
  -- to it made row_history read the dropped table's history.
  IF NEW.relid IS NOT NULL THEN
    NEW.relid := to_regclass(format('%I.%I', NEW.schema_name, NEW.table_name));
  END IF;
  SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}') INTO NEW.exclude_attnums
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = NEW.relid AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname = ANY (NEW.exclude_columns);
  NEW.restore_pending := false;
  SELECT * INTO existing FROM workflow.audit_tables t WHERE t.id = NEW.id;
  IF FOUND THEN
    -- The row CREATE EXTENSION made (survey_steps): the dump's settings win.
    UPDATE workflow.audit_tables t
       SET schema_name = NEW.schema_name, table_name = NEW.table_name, relid = NEW.relid,
           audited = NEW.audited, statement_level = NEW.statement_level,
           exclude_columns = NEW.exclude_columns, exclude_attnums = NEW.exclude_attnums
     WHERE t.id = NEW.id;
    PERFORM workflow.audit_reattach_extension_table(NEW.id);
    RETURN NULL;
  END IF;
  RETURN NEW;
END;
$$;
COMMENT ON FUNCTION workflow.audit_tables_restore_row() IS
  'Internal trigger: a workflow.audit_tables row restored by pg_restore is mapped to the table of its name (OID, excluded column numbers); the row CREATE EXTENSION made is updated instead.';
REVOKE EXECUTE ON FUNCTION workflow.audit_tables_restore_row() FROM PUBLIC;
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

-- ---------------------------------------------------------------------------
-- Audit history: an audited table keeps a primary key (1.8)
-- ---------------------------------------------------------------------------
-- History is kept per primary key: enable_audit refuses a table without one,
-- and this event trigger refuses an ALTER TABLE that takes it away (DROP
-- CONSTRAINT, DROP COLUMN ... CASCADE) while the table is audited. Without it
-- the trigger logged every row of the table under the key {} from then on, one
-- history for all rows. Changing the key in one ALTER TABLE (DROP CONSTRAINT
-- ..., ADD PRIMARY KEY ...) is allowed. Re-runnable (CREATE OR REPLACE, the
-- event trigger only when missing): src/sql/upgrade/1.7--1.8.list runs it.

CREATE OR REPLACE FUNCTION workflow.audit_keep_primary_key() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  lost record;
BEGIN
  SELECT t.schema_name, t.table_name INTO lost
    FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
    JOIN workflow.audit_tables t ON t.relid = cmd.objid
   WHERE cmd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND t.audited
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.relid AND i.indisprimary)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'table %.% is audited and must keep a primary key',
      pg_catalog.quote_ident(lost.schema_name), pg_catalog.quote_ident(lost.table_name)
      USING ERRCODE = '55000',
            HINT = 'Change the key in one ALTER TABLE (DROP CONSTRAINT ..., ADD PRIMARY KEY (...)), or run workflow.disable_audit first.';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow.audit_keep_primary_key() IS
  'Internal event trigger (ddl_command_end, ALTER TABLE): refuses (55000) a command that leaves an audited table without a primary key.';
REVOKE EXECUTE ON FUNCTION workflow.audit_keep_primary_key() FROM PUBLIC;

DO $guard$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'workflow_audit_keep_primary_key') THEN
    CREATE EVENT TRIGGER workflow_audit_keep_primary_key ON ddl_command_end
      WHEN TAG IN ('ALTER TABLE')
      EXECUTE FUNCTION workflow.audit_keep_primary_key();
  END IF;
END
$guard$;

-- ---------------------------------------------------------------------------
-- Audit history: a restored audit trigger takes its dropped table's registry
-- row back (1.8)
-- ---------------------------------------------------------------------------
-- DROP TABLE (or DROP SCHEMA ... CASCADE) leaves the table's registry row with
-- relid NULL and audited false. When the table comes back with its audit
-- triggers from a dump of its schema (pg_dump --schema=app, restored into the
-- same database), each CREATE TRIGGER names that row: it is the table's again
-- when its names are the table's (or, for a partition's trigger, an
-- ancestor's), so its relid and audited flag are set and its excluded columns
-- mapped to the table's attribute numbers. A trigger whose row belongs to
-- another table is left alone: the trigger refuses to log (39P01) until
-- enable_audit is run. Only superusers (a restore) create audit triggers.
-- Re-runnable (CREATE OR REPLACE, the event trigger only when missing):
-- src/sql/upgrade/1.7--1.8.list runs it.

CREATE OR REPLACE FUNCTION workflow.audit_trigger_relink() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trg record;
  owner_rel oid;
BEGIN
  FOR trg IN
    SELECT g.tgrelid, r.id AS reg_id, r.schema_name, r.table_name
      FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
      JOIN pg_catalog.pg_trigger g ON g.oid = cmd.objid
      JOIN workflow.audit_tables r ON r.id = workflow.audit_trigger_table_id(g.tgargs, g.tgnargs)
     WHERE cmd.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
       AND g.tgfoid = 'workflow.audit_trigger()'::pg_catalog.regprocedure
       AND (r.relid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.relid))
  LOOP
    SELECT c.oid INTO owner_rel
      FROM (SELECT trg.tgrelid AS relid UNION ALL
            SELECT a.relid FROM pg_catalog.pg_partition_ancestors(trg.tgrelid) a) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = trg.schema_name AND c.relname = trg.table_name
     LIMIT 1;
    IF FOUND THEN
      UPDATE workflow.audit_tables t
         SET relid = owner_rel, audited = true,
             exclude_attnums = (SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}')
                                  FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = owner_rel AND a.attnum > 0 AND NOT a.attisdropped
                                   AND a.attname = ANY (t.exclude_columns))
       WHERE t.id = trg.reg_id;
    END IF;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.audit_trigger_relink() IS
  'Internal event trigger (ddl_command_end, CREATE TRIGGER): a restored audit trigger whose registry row is that of a dropped table of the same name (or of a partition''s ancestor) links the row to the table again.';
REVOKE EXECUTE ON FUNCTION workflow.audit_trigger_relink() FROM PUBLIC;

DO $relink$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'workflow_audit_trigger_relink') THEN
    CREATE EVENT TRIGGER workflow_audit_trigger_relink ON ddl_command_end
      WHEN TAG IN ('CREATE TRIGGER')
      EXECUTE FUNCTION workflow.audit_trigger_relink();
  END IF;
END
$relink$;
-- Survey steps, part 3: the single upsert (the batch form, upsert_survey_steps,
-- is in 31_survey_steps.sql). CREATE OR REPLACE, so that the upgrade from 1.7
-- re-runs this file as it is (src/sql/upgrade/1.7--1.8.list).

CREATE OR REPLACE FUNCTION workflow.upsert_survey_step(session_id text, step_name text,
                                            value jsonb DEFAULT '{}',
                                            completed_at timestamptz DEFAULT now())
  RETURNS workflow.survey_steps
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_step text;
  v_size integer;
  r workflow.survey_steps;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(upsert_survey_step.session_id) p;
  v_step := workflow.normalize_step_name(upsert_survey_step.step_name);
  -- JSON null is refused as SQL NULL is, as the batch form refuses it.
  IF upsert_survey_step.value IS NULL OR jsonb_typeof(upsert_survey_step.value) = 'null' THEN
    RAISE EXCEPTION 'value must not be null (SQL NULL or JSON null)' USING ERRCODE = '22004';
  END IF;
  -- The size of the value itself, as the batch form measures it: a value
  -- read from a table may arrive compressed, and pg_column_size would give
  -- its compressed size. ->0 of a one-element array is a fresh, plain copy.
  v_size := pg_column_size(jsonb_build_array(upsert_survey_step.value) -> 0);
  IF v_size > 65536 THEN
    RAISE EXCEPTION 'value is % bytes, at most 65536 are accepted', v_size USING ERRCODE = '22023';
  END IF;
  IF upsert_survey_step.completed_at IS NULL THEN
    RAISE EXCEPTION 'completed_at must not be null' USING ERRCODE = '22004';
  END IF;
  IF NOT isfinite(upsert_survey_step.completed_at) THEN
    RAISE EXCEPTION 'completed_at "%" must be finite', upsert_survey_step.completed_at USING ERRCODE = '22023';
  END IF;

  -- The session row, locked FOR KEY SHARE until commit, so that
  -- cleanup_survey_sessions cannot delete it between this and the next
  -- statement (the insert below would then write nothing, without an error).
  LOOP
    PERFORM FROM workflow.survey_sessions s WHERE s.session_id = v_session FOR KEY SHARE;
    EXIT WHEN FOUND;
    INSERT INTO workflow.survey_sessions (session_id) VALUES (v_session) ON CONFLICT DO NOTHING;
  END LOOP;
  INSERT INTO workflow.survey_steps AS t (session_id, step_name, week_start, value, completed_at)
  SELECT v_session, v_step, workflow.survey_week_start(upsert_survey_step.completed_at, s.time_zone),
         upsert_survey_step.value, upsert_survey_step.completed_at
    FROM workflow.survey_sessions s WHERE s.session_id = v_session
  ON CONFLICT (session_id, week_start, step_name) DO UPDATE
    SET value = excluded.value, completed_at = excluded.completed_at, updated_at = now()
  RETURNING t.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) IS
  'Records a completed survey step: one row per (session, step, week in the session''s time zone); a second upsert in the same week updates the row. Validates and normalises the session id and step name. Returns the stored row. 22023/22004 on invalid input (22004 for a NULL or JSON null value; 22023 for a value over 64 kB uncompressed), nothing written.';

REVOKE ALL ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) FROM PUBLIC;
-- Survey steps, part 4: the clean-up of idle sessions. CREATE OR REPLACE, so
-- that the upgrade from 1.7 re-runs this file as it is
-- (src/sql/upgrade/1.7--1.8.list).

CREATE OR REPLACE FUNCTION workflow.cleanup_survey_sessions(older_than interval) RETURNS integer
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cutoff timestamptz;
  v_deleted integer;
BEGIN
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'older_than must not be null' USING ERRCODE = '22004';
  END IF;
  IF older_than < interval '0' OR NOT isfinite(older_than) THEN
    RAISE EXCEPTION 'older_than "%" must be a finite, non-negative interval', older_than USING ERRCODE = '22023';
  END IF;
  v_cutoff := now() - older_than;
  -- Lock the idle sessions first: FOR UPDATE waits for upserts in flight
  -- (they hold their session FOR KEY SHARE). The DELETE, a new statement,
  -- then sees the steps they committed and keeps those sessions.
  PERFORM FROM workflow.survey_sessions s
   WHERE s.created_at < v_cutoff
     AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                      WHERE t.session_id = s.session_id AND t.completed_at >= v_cutoff)
   ORDER BY s.session_id
     FOR UPDATE OF s;
  DELETE FROM workflow.survey_sessions s
   WHERE s.created_at < v_cutoff
     AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                      WHERE t.session_id = s.session_id AND t.completed_at >= v_cutoff);
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
COMMENT ON FUNCTION workflow.cleanup_survey_sessions(interval) IS
  'Deletes sessions (and their steps) created before now() - older_than that have no step completed since then; returns the number of sessions deleted.';

REVOKE ALL ON FUNCTION workflow.cleanup_survey_sessions(interval) FROM PUBLIC;
-- Survey steps, part 4: a session's time zone. CREATE OR REPLACE, so that
-- the upgrade from 1.7 re-runs this file as it is (src/sql/upgrade/1.7--1.8.list).

CREATE OR REPLACE FUNCTION workflow.set_session_timezone(session_id text, tz text)
  RETURNS workflow.survey_sessions
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_zone text;
  r workflow.survey_sessions;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(set_session_timezone.session_id) p;
  IF tz IS NULL THEN
    RAISE EXCEPTION 'time zone must not be null' USING ERRCODE = '22004';
  END IF;
  IF length(tz) <= 64 THEN
    -- IANA names only (no abbreviations, offsets or POSIX strings); canonical
    -- spelling. localtime (the server's own zone, whatever it is), posixrules
    -- (a rules file) and Factory (no zone: "-00") are files of the zone
    -- database that pg_timezone_names lists, not zones a session is in.
    SELECT z.name INTO v_zone FROM pg_catalog.pg_timezone_names z
     WHERE lower(z.name) = lower(btrim(tz)) AND z.name !~ '^(posix|right)/'
       AND lower(z.name) NOT IN ('localtime', 'posixrules', 'factory')
     ORDER BY z.name = btrim(tz) DESC LIMIT 1;
  END IF;
  IF v_zone IS NULL THEN
    RAISE EXCEPTION 'unknown time zone "%"', left(tz, 64)
      USING ERRCODE = '22023', HINT = 'Use an IANA time zone name such as "Europe/Berlin" (see pg_timezone_names).';
  END IF;
  INSERT INTO workflow.survey_sessions AS s (session_id, time_zone) VALUES (v_session, v_zone)
  ON CONFLICT (session_id) DO UPDATE SET time_zone = excluded.time_zone
  RETURNING s.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION workflow.set_session_timezone(text, text) IS
  'Sets (creating the session if needed) the IANA time zone a session''s weeks are cut in; returns the session row. Rows already written keep their week. 22023 on an invalid session id or unknown zone, 22004 on NULL.';

REVOKE ALL ON FUNCTION workflow.set_session_timezone(text, text) FROM PUBLIC;
-- Job -> Stage -> Task engine (1.4): dead work. A task is dead when it
-- failed for good (no retries left, or not retryable, or its deadline passed
-- on its last attempt). A stage may tolerate up to max_dead_tasks dead tasks
-- (tolerate_dead_tasks): such a task counts as finished for the stage's
-- fan-in (it takes its unit from the counters like a completion, and may
-- complete the stage); otherwise a dead task fails the job. The dead-letter
-- view lists dead tasks; retry_task and retry_job queue them again.

-- A task died: the caller holds the job row (FOR NO KEY UPDATE) and the task
-- row. Lock order job -> task -> slot -> stage, as completions. Returns
-- true when the stage tolerated it (the job goes on), false when the job failed.
CREATE OR REPLACE FUNCTION workflow._engine_task_died(t workflow.tasks, error text, worker text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  tolerated boolean;
  unit_slot int;
  left_in_slot int;
  pending_after int;
  ts timestamptz := now();  -- not inside the UPDATE's CASE (Citus)
BEGIN
  -- Every death of this job's tasks holds the job row: dead_tasks is stable.
  SELECT s.dead_tasks < s.max_dead_tasks INTO tolerated
    FROM workflow.stages s WHERE s.job_id = t.job_id AND s.stage = t.stage;
  UPDATE workflow.tasks x
     SET status = 'failed', last_error = error, claimed_by = worker, lease_expires_at = NULL,
         deadline_at = NULL, dead_tolerated = coalesce(tolerated, false), updated_at = ts
   WHERE x.job_id = t.job_id AND x.id = t.id;
  IF NOT coalesce(tolerated, false) THEN
    PERFORM workflow._engine_end_job(t.job_id, 'failed', format('task %s failed: %s', t.id, error));
    RETURN false;
  END IF;
  -- The fan-in of a finished task: one unit from a counter of the stage
  -- (waiting, ascending: the order batches use), then the stage row.
  SELECT c.slot INTO unit_slot FROM workflow.stage_slots c
   WHERE c.job_id = t.job_id AND c.stage = t.stage AND c.remaining > 0
   ORDER BY c.slot LIMIT 1 FOR UPDATE;
  UPDATE workflow.stage_slots c SET remaining = c.remaining - 1
   WHERE c.job_id = t.job_id AND c.stage = t.stage AND c.slot = unit_slot
  RETURNING c.remaining INTO left_in_slot;
  -- A stage completed by a tolerated death is handed over at once: nobody
  -- was told stage_complete (claim_stage_handovers).
  UPDATE workflow.stages s
     SET dead_tasks = s.dead_tasks + 1,
         pending_slots = s.pending_slots - (left_in_slot = 0)::int,
         completed_by_task = CASE WHEN s.pending_slots - (left_in_slot = 0)::int = 0 THEN t.id END,
         completed_at = CASE WHEN s.pending_slots - (left_in_slot = 0)::int = 0 THEN ts END,
         handover_expires_at = CASE WHEN s.pending_slots - (left_in_slot = 0)::int = 0 THEN ts END
   WHERE s.job_id = t.job_id AND s.stage = t.stage
  RETURNING s.pending_slots INTO pending_after;
  IF pending_after = 0 THEN
    PERFORM workflow._engine_notify_stage_complete(t.job_id, t.stage);
  END IF;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow._engine_task_died(workflow.tasks, text, text) IS
  'Internal: a locked task is dead. Its stage tolerates it (dead_tasks < max_dead_tasks): it counts as finished '
  'for the stage (which it may complete; then handed over at once); returns true. Otherwise the job fails; false.';
REVOKE EXECUTE ON FUNCTION workflow._engine_task_died(workflow.tasks, text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.tolerate_dead_tasks(job_id text, stage int, max_dead int)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(tolerate_dead_tasks.job_id);
  dead_now int;
BEGIN
  PERFORM workflow._engine_check_stage(j, tolerate_dead_tasks.stage);
  PERFORM workflow._engine_check_not_null('max_dead', max_dead);
  IF max_dead NOT BETWEEN 0 AND 1000000 THEN
    RAISE EXCEPTION 'max_dead % is out of range 0..1000000', max_dead USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_owner(j, 'set the dead-task tolerance of');
  j := workflow._engine_job(tolerate_dead_tasks.job_id, 'update');  -- deaths hold it too
  IF j.status NOT IN ('pending', 'running') THEN
    RAISE EXCEPTION 'job % is %', quote_literal(j.id), j.status USING ERRCODE = '55000';
  END IF;
  -- A stage nobody added tasks to yet: created here (add_tasks keeps its
  -- slot_count: 64, the default).
  INSERT INTO workflow.stages (job_id, stage, slot_count, pending_slots)
  VALUES (tolerate_dead_tasks.job_id, tolerate_dead_tasks.stage, 64, 1)
  ON CONFLICT ON CONSTRAINT stages_pkey DO NOTHING;
  SELECT s.dead_tasks INTO dead_now FROM workflow.stages s
   WHERE s.job_id = tolerate_dead_tasks.job_id AND s.stage = tolerate_dead_tasks.stage;
  IF max_dead < dead_now THEN
    RAISE EXCEPTION 'stage % of job % has tolerated % dead tasks already: max_dead % is below that',
      tolerate_dead_tasks.stage, quote_literal(j.id), dead_now, max_dead USING ERRCODE = '22023';
  END IF;
  UPDATE workflow.stages s SET max_dead_tasks = max_dead
   WHERE s.job_id = tolerate_dead_tasks.job_id AND s.stage = tolerate_dead_tasks.stage;
END;
$$;
COMMENT ON FUNCTION workflow.tolerate_dead_tasks(text, int, int) IS
  'Lets stage of the job tolerate up to max_dead (0..1000000) dead tasks: each counts as finished for the stage '
  '(the stage may complete with it) instead of failing the job. Creates the stage (unsealed, 64 slots) if no task '
  'was added yet. 22023 below the dead tasks tolerated already; 55000 for an ended job; P0002 unknown job; 42501 '
  'unless the session user owns the job or is a member of workflow_admin.';

-- Dead tasks, newest first. security_invoker: a producer sees its own jobs'
-- (the tables' row-level security), workers and admins every one.
CREATE OR REPLACE VIEW workflow.dead_tasks WITH (security_invoker = true) AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.retry_count, t.last_error,
       t.updated_at AS died_at,
       t.dead_tolerated AS tolerated, j.job_type, j.status AS job_status, t.claimed_by AS worker,
       t.parameters
  FROM workflow.tasks t
  JOIN workflow.jobs j ON j.id = t.job_id
 WHERE t.status = 'failed';
COMMENT ON VIEW workflow.dead_tasks IS
  'Dead-letter view: tasks that failed for good (job_id, task_id, task_type, stage, retry_count, last_error, '
  'died_at; then tolerated: the stage counted it as finished, job_type, job_status, worker: the last to run it, '
  'parameters). Re-run one with retry_task, all of a job with retry_job. Rows of other owners'' jobs are hidden '
  'from producers.';
REVOKE ALL ON workflow.dead_tasks FROM PUBLIC;
GRANT SELECT ON workflow.dead_tasks TO workflow_producer, workflow_worker, workflow_admin;

-- Queues a dead task again (the caller holds the job row and the task row,
-- status failed). A tolerated one gives its unit back to its slot first:
-- only while its stage is not complete (a complete stage cannot reopen).
CREATE OR REPLACE FUNCTION workflow._engine_requeue_dead(t workflow.tasks)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  in_slot int;
BEGIN
  IF t.dead_tolerated THEN
    IF (SELECT s.completed_at IS NOT NULL FROM workflow.stages s
         WHERE s.job_id = t.job_id AND s.stage = t.stage) THEN
      RAISE EXCEPTION 'task % cannot run again: its stage % completed with it tolerated as dead',
        quote_literal(t.id), t.stage USING ERRCODE = '55000';
    END IF;
    UPDATE workflow.stage_slots c SET remaining = c.remaining + 1
     WHERE c.job_id = t.job_id AND c.stage = t.stage AND c.slot = t.slot
    RETURNING c.remaining INTO in_slot;
    -- A completion of the stage's last other task committing meanwhile
    -- (after the check above read the stage) completed it with this task
    -- dead: the stage row, read again once its lock is free, says so.
    UPDATE workflow.stages s
       SET dead_tasks = s.dead_tasks - 1, pending_slots = s.pending_slots + (in_slot = 1)::int
     WHERE s.job_id = t.job_id AND s.stage = t.stage AND s.completed_at IS NULL;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'task % cannot run again: its stage % completed with it tolerated as dead',
        quote_literal(t.id), t.stage USING ERRCODE = '55000';
    END IF;
  END IF;
  UPDATE workflow.tasks x
     SET status = 'queued', retry_count = 0, run_after = now(), claimed_by = NULL,
         lease_expires_at = NULL, deadline_at = NULL, dead_tolerated = false, updated_at = now()
   WHERE x.job_id = t.job_id AND x.id = t.id;
END;
$$;
COMMENT ON FUNCTION workflow._engine_requeue_dead(workflow.tasks) IS
  'Internal (retry_task, retry_job): queues a locked dead task again with its retries reset; a tolerated one gives '
  'its unit back to the stage''s counters (55000 when the stage completed with it).';
REVOKE EXECUTE ON FUNCTION workflow._engine_requeue_dead(workflow.tasks) FROM PUBLIC;

-- A failed job runs again: the tasks its failure cancelled are queued, the
-- stages it left by ending are back in reach of hand-overs. Caller holds the job row.
-- A cancelled task keeps the run_after it had (the job's or add_tasks' run_at,
-- a retry's backoff): it is not claimed before that time (1.8; before, it was
-- queued due at once).
CREATE OR REPLACE FUNCTION workflow._engine_revive_job(job_id_param text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  at_stage int;
BEGIN
  UPDATE workflow.jobs j SET status = 'running', error = NULL, finished_at = NULL, updated_at = now()
   WHERE j.id = job_id_param AND j.status = 'failed'
  RETURNING j.stage INTO at_stage;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  UPDATE workflow.tasks x
     SET status = 'queued', run_after = greatest(x.run_after, now()), lease_expires_at = NULL, deadline_at = NULL,
         updated_at = now()
   WHERE x.job_id = job_id_param AND x.status = 'cancelled';
  UPDATE workflow.stages s SET left_at = NULL, handover_by = NULL, handover_expires_at = now()
   WHERE s.job_id = job_id_param AND s.stage >= at_stage AND s.completed_at IS NOT NULL;
END;
$$;
COMMENT ON FUNCTION workflow._engine_revive_job(text) IS
  'Internal (retry_task, retry_job): a failed job back to running, the tasks its failure cancelled queued again '
  '(not claimed before the run_after they had: run_at, retry backoff).';
REVOKE EXECUTE ON FUNCTION workflow._engine_revive_job(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.retry_task(task_id text, job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs;
  t workflow.tasks;
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  j := workflow._engine_job(retry_task.job_id);
  PERFORM workflow._engine_check_owner(j, 'retry a task of');
  j := workflow._engine_job(retry_task.job_id, 'update');  -- lock order job -> task
  SELECT * INTO t FROM workflow.tasks x
   WHERE x.job_id = retry_task.job_id AND x.id = retry_task.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  IF t.status <> 'failed' THEN
    RETURN false;  -- not dead: nothing to re-run
  END IF;
  IF j.status = 'cancelled' THEN
    RAISE EXCEPTION 'job % is cancelled: its tasks do not run again', quote_literal(j.id)
      USING ERRCODE = '55000';
  END IF;
  PERFORM workflow._engine_requeue_dead(t);
  -- The task that failed the job: the job runs again.
  IF j.status = 'failed' AND NOT t.dead_tolerated THEN
    PERFORM workflow._engine_revive_job(j.id);
  END IF;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow.retry_task(text, text) IS
  'Queues a dead (failed) task again, its retries reset, and returns true; false (nothing written) when the task is '
  'not dead. When it is the task that failed its job, the job runs again (status running, the tasks its failure '
  'cancelled queued again, each not before the run_after it had: run_at, retry backoff). A tolerated dead task gives its unit back to its stage (55000 when the stage completed '
  'with it). 55000 for a cancelled job; P0002 unknown job or task; 42501 unless the session user owns the job or is '
  'a member of workflow_admin.';

CREATE OR REPLACE FUNCTION workflow.retry_job(job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(retry_job.job_id);
  t workflow.tasks;
  changed boolean := false;
BEGIN
  PERFORM workflow._engine_check_owner(j, 'retry');
  j := workflow._engine_job(retry_job.job_id, 'update');
  IF j.status = 'cancelled' THEN
    RAISE EXCEPTION 'job % is cancelled: its tasks do not run again', quote_literal(j.id)
      USING ERRCODE = '55000';
  END IF;
  -- Dead tasks, in id order (the lock order of batches); tolerated ones of
  -- stages that completed with them stay dead.
  FOR t IN
    SELECT * FROM workflow.tasks x
     WHERE x.job_id = retry_job.job_id AND x.status = 'failed'
       AND NOT (x.dead_tolerated AND EXISTS (SELECT 1 FROM workflow.stages s
                                             WHERE s.job_id = x.job_id AND s.stage = x.stage
                                               AND s.completed_at IS NOT NULL))
     ORDER BY x.id FOR UPDATE
  LOOP
    BEGIN
      PERFORM workflow._engine_requeue_dead(t);
      changed := true;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
      -- Its stage completed with it meanwhile (a completion committing
      -- after the query above): it stays dead, as the others of such stages.
      NULL;
    END;
  END LOOP;
  IF j.status = 'failed' THEN
    PERFORM workflow._engine_revive_job(j.id);
    changed := true;
  END IF;
  RETURN changed;
END;
$$;
COMMENT ON FUNCTION workflow.retry_job(text) IS
  'Re-runs a job''s dead work: every dead task is queued again (retries reset; tolerated ones of stages that '
  'completed with them stay), and a failed job runs again (status running, the tasks its failure cancelled queued '
  'again, each not before the run_after it had). true when anything changed; false for a job with nothing dead (running, pending, completed). 55000 for a '
  'cancelled job; P0002 unknown job; 42501 unless the session user owns the job or is a member of workflow_admin.';

REVOKE EXECUTE ON FUNCTION
  workflow.tolerate_dead_tasks(text, int, int),
  workflow.retry_task(text, text),
  workflow.retry_job(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  workflow.tolerate_dead_tasks(text, int, int),
  workflow.retry_task(text, text),
  workflow.retry_job(text)
  TO workflow_producer, workflow_admin;
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
           count(*) FILTER (WHERE x.status = 'claimed' OR (x.status = 'queued' AND x.run_after <= now()))
             AS due_tasks,
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
             -- 1.8: open tasks that all wait for later (run_at, a retry's
             -- backoff) are a job waiting as asked, not a stuck one
             WHEN i.idle AND (t.open_tasks = 0 OR t.due_tasks > 0)
               THEN greatest(s.created_at, s.sealed_at, t.last_update)
             -- else NULL: moving, waiting for its tasks' time, or younger than 5 minutes; not stuck
           END AS since) r
 WHERE j.status IN ('pending', 'running')
   AND r.since < now() - CASE WHEN s.completed_at IS NOT NULL THEN interval '0' ELSE interval '5 minutes' END;
COMMENT ON VIEW workflow.stuck_jobs IS
  'Pending or running jobs that are not moving: their current stage has no tasks, or is complete but the job '
  'was not advanced past its hand-over lease, or is unsealed with no task to run, or no task of it changed, '
  'for 5 minutes (not when its open tasks all wait for a later run_after: run_at, retry backoff). since: when it '
  'stopped moving.';

REVOKE ALL ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs FROM PUBLIC;
GRANT SELECT ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs TO workflow_monitor, workflow_admin;
