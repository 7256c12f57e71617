-- Upgrade workflow 1.6 -> 1.7 (ALTER EXTENSION workflow UPDATE TO '1.7').
-- Assembled from the files listed in src/sql/upgrade/1.6--1.7.list: parts of
-- the 1.7 install script that can be re-run on 1.6 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.6--1.7/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.7'" to load this file. \quit
-- 1.6 -> 1.7: the job's flag for an advance of its last stage still to come
-- after check_job_completion completed it (src/sql/10_engine_tables.sql).
-- Jobs completed before the update keep false: a late advance of theirs
-- answers false, as in 1.6.
ALTER TABLE workflow.jobs ADD COLUMN final_advance_pending boolean NOT NULL DEFAULT false;
-- Job -> Stage -> Task engine: job life cycle.

CREATE OR REPLACE FUNCTION workflow.create_job(job_type text, parameters jsonb, total_stages int,
                                    job_id text DEFAULT NULL, run_at timestamptz DEFAULT NULL,
                                    dedupe_key text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_id text := job_id;
BEGIN
  PERFORM workflow._engine_check_text('job_type', job_type);
  PERFORM workflow._engine_check_not_null('parameters', parameters);
  PERFORM workflow._engine_check_not_null('total_stages', total_stages);
  IF total_stages < 1 OR total_stages > 10000 THEN
    RAISE EXCEPTION 'total_stages % is out of range 1..10000', total_stages USING ERRCODE = '22023';
  END IF;
  IF run_at IS NOT NULL AND NOT isfinite(run_at) THEN
    RAISE EXCEPTION 'run_at must be a finite time (got %)', run_at USING ERRCODE = '22023';
  END IF;
  -- 1.4: a dedupe key names the job: its id is derived from the key and the
  -- session user, so a second submit with the key finds the first job.
  IF dedupe_key IS NOT NULL THEN
    PERFORM workflow._engine_check_text('dedupe_key', dedupe_key);
    IF job_id IS NOT NULL THEN
      RAISE EXCEPTION 'give job_id or dedupe_key, not both' USING ERRCODE = '22023';
    END IF;
    new_id := 'dedupe-' || md5(session_user || chr(31) || dedupe_key);
  END IF;
  new_id := coalesce(new_id, gen_random_uuid()::text);
  PERFORM workflow._engine_check_text('job_id', new_id);
  IF dedupe_key IS NOT NULL THEN
    INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner, run_at, dedupe_key)
    VALUES (new_id, create_job.job_type, create_job.total_stages, create_job.parameters, session_user,
            create_job.run_at, create_job.dedupe_key)
    ON CONFLICT (id) DO NOTHING;
    -- The job of that id is this role's job of that key, never another's
    -- (an id taken before 1.7 reserved the prefix, or a job re-owned since).
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM workflow.jobs x WHERE x.id = new_id
                                  AND x.owner = session_user AND x.dedupe_key = create_job.dedupe_key) THEN
      RAISE EXCEPTION 'job % of dedupe key % exists but is not a job of role % with that key',
        quote_literal(new_id), quote_literal(dedupe_key), quote_ident(session_user)
        USING ERRCODE = '23505';
    END IF;
    RETURN new_id;
  END IF;
  -- Ids of this form belong to dedupe keys (another role could otherwise
  -- take the id a role's key derives and be handed its submissions).
  IF left(new_id, 7) = 'dedupe-' THEN
    RAISE EXCEPTION 'job_id % is reserved: ids starting with ''dedupe-'' are derived from dedupe keys',
      quote_literal(new_id) USING ERRCODE = '22023', HINT = 'Pass dedupe_key instead, or another job_id.';
  END IF;
  BEGIN
    INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner, run_at)
    VALUES (new_id, create_job.job_type, create_job.total_stages, create_job.parameters, session_user,
            create_job.run_at);
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'job % already exists', quote_literal(new_id) USING ERRCODE = '23505';
  END;
  RETURN new_id;
END;
$$;
COMMENT ON FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text) IS
  'Creates a pending job at stage 1 of total_stages (1..10000), owned by the session user; returns its id '
  '(a UUID unless job_id is given). 23505 when job_id exists. run_at: its tasks are not claimed before then. '
  'dedupe_key (instead of job_id): the id is derived from the key and the session user, and a second call with '
  'the same key returns the existing job''s id and writes nothing (until that job is purged); 23505 if that id is '
  'another role''s job. A job_id starting with ''dedupe-'' is 22023 (reserved for dedupe keys).';
REVOKE EXECUTE ON FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text)
  TO workflow_producer, workflow_admin;

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
    IF finishing AND j.status = 'completed' AND j.stage = current_stage AND j.final_advance_pending THEN
      -- check_job_completion completed the job before this advance of its
      -- last stage: the first such advance still records the stage's
      -- results and is the caller that gets true (the job's row lock and
      -- the flag make it one).
      UPDATE workflow.jobs
         SET final_advance_pending = false,
             result_data = CASE WHEN stage_result IS NULL THEN result_data
                                ELSE coalesce(result_data, '{}'::jsonb) || stage_result END,
             updated_at = moved_at
       WHERE id = job_id_param AND stage = current_stage AND status = 'completed'
         AND final_advance_pending;
      IF NOT FOUND THEN
        RETURN false;
      END IF;
      UPDATE workflow.stages SET result_data = stage_results_param
       WHERE job_id = job_id_param AND stage = current_stage;
      RETURN true;
    END IF;
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
  'repeated calls get false and write nothing; 55000 when current_stage is not complete yet. The advance of the '
  'last stage of a job that check_job_completion completed first still stores its results and gets true (once). Moving into a '
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
    -- Completed without the advance of its last stage (which stores the
    -- stage's results): that advance, if its completer still makes it,
    -- records them and gets true (advance_job_stage).
    UPDATE workflow.jobs
       SET status = 'completed', finished_at = now(), updated_at = now(), final_advance_pending = true
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
  'complete is marked completed here (NOTIFY workflow_job_complete); the advance of that stage, if its completer '
  'still makes it, then stores the stage''s results and gets true. P0002 when unknown; 42501 unless the '
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
  'Internal: raises 22023 for an empty or multi-dimensional task_types array, 22004 for a NULL element (NULL means any type).';

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
  -- One job: a valid id of a job or of rows left without their job (which
  -- the checks report); an unknown one is P0002, not "all ok".
  IF job_id_param IS NOT NULL THEN
    PERFORM workflow._engine_check_text('job_id', job_id_param);
    IF NOT EXISTS (SELECT 1 FROM workflow.jobs x WHERE x.id = job_id_param)
       AND NOT EXISTS (SELECT 1 FROM workflow.stages x WHERE x.job_id = job_id_param)
       AND NOT EXISTS (SELECT 1 FROM workflow.stage_slots x WHERE x.job_id = job_id_param)
       AND NOT EXISTS (SELECT 1 FROM workflow.tasks x WHERE x.job_id = job_id_param) THEN
      RAISE EXCEPTION 'job % not found', quote_literal(job_id_param) USING ERRCODE = 'P0002';
    END IF;
  END IF;
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
  'the workers have caught up. P0002 for a job id with no row anywhere, 22023 for an empty or overlong one.';
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
     SET status = 'queued', run_after = now(), lease_expires_at = NULL, deadline_at = NULL, updated_at = now()
   WHERE x.job_id = job_id_param AND x.status = 'cancelled';
  UPDATE workflow.stages s SET left_at = NULL, handover_by = NULL, handover_expires_at = now()
   WHERE s.job_id = job_id_param AND s.stage >= at_stage AND s.completed_at IS NOT NULL;
END;
$$;
COMMENT ON FUNCTION workflow._engine_revive_job(text) IS
  'Internal (retry_task, retry_job): a failed job back to running, the tasks its failure cancelled queued again.';
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
  'cancelled queued again). A tolerated dead task gives its unit back to its stage (55000 when the stage completed '
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
  'again). true when anything changed; false for a job with nothing dead (running, pending, completed). 55000 for a '
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
-- Job -> Stage -> Task engine (1.4): retention. purge_jobs removes finished
-- jobs with their stages, counters and tasks, a bounded batch per call (one
-- short transaction each; call it until it returns 0, or every minute from
-- pg_cron). A job in use elsewhere (its row locked) is skipped, never
-- waited for. A direct DELETE FROM workflow.jobs cascades the same way: the
-- stages by their foreign key, the tasks and counters (no foreign key: a
-- per-row check would dominate fan-out) by the statement trigger below.

CREATE OR REPLACE FUNCTION workflow.purge_jobs(older_than interval,
                                    statuses text[] DEFAULT ARRAY['completed', 'failed', 'cancelled'],
                                    max_jobs int DEFAULT 1000)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cutoff timestamptz;
  ids text[];
BEGIN
  PERFORM workflow._engine_check_not_null('older_than', older_than);
  PERFORM workflow._engine_check_not_null('statuses', statuses);
  PERFORM workflow._engine_check_not_null('max_jobs', max_jobs);
  BEGIN
    cutoff := now() - older_than;
  EXCEPTION WHEN datetime_field_overflow THEN
    RAISE EXCEPTION 'older_than % is out of range', older_than USING ERRCODE = '22023';
  END;
  IF cutoff > now() OR NOT isfinite(cutoff) THEN
    RAISE EXCEPTION 'older_than % must not be negative', older_than USING ERRCODE = '22023';
  END IF;
  IF array_ndims(statuses) > 1 THEN
    RAISE EXCEPTION 'statuses must be a one-dimensional array' USING ERRCODE = '22023';
  END IF;
  IF cardinality(statuses) = 0 OR array_position(statuses, NULL) IS NOT NULL
     OR NOT statuses <@ ARRAY['completed', 'failed', 'cancelled'] THEN
    RAISE EXCEPTION 'statuses % must be a non-empty list of completed, failed, cancelled', statuses
      USING ERRCODE = '22023';
  END IF;
  IF max_jobs NOT BETWEEN 1 AND 100000 THEN
    RAISE EXCEPTION 'max_jobs % is out of range 1..100000', max_jobs USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_admin('purge jobs');

  SELECT array_agg(p.id) INTO ids FROM (
    SELECT j.id FROM workflow.jobs j
     WHERE j.finished_at IS NOT NULL AND j.finished_at < cutoff AND j.status = ANY (statuses)
     ORDER BY j.finished_at
     LIMIT max_jobs
       FOR UPDATE SKIP LOCKED) p;
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  -- Children first (lock order job -> task -> slot -> stage), then the jobs
  -- (their stages go by the foreign key).
  DELETE FROM workflow.tasks t WHERE t.job_id = ANY (ids);
  DELETE FROM workflow.stage_slots c WHERE c.job_id = ANY (ids);
  DELETE FROM workflow.jobs j WHERE j.id = ANY (ids);
  RETURN cardinality(ids);
END;
$$;
COMMENT ON FUNCTION workflow.purge_jobs(interval, text[], int) IS
  'Deletes up to max_jobs (1..100000) jobs that finished (statuses: any of completed, failed, cancelled) more '
  'than older_than (>= 0) ago, oldest first, with their stages, counters and tasks; returns how many. One '
  'bounded transaction per call: call it until it returns 0. Jobs locked elsewhere are skipped. For '
  'workflow_admin (42501 otherwise).';
REVOKE EXECUTE ON FUNCTION workflow.purge_jobs(interval, text[], int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.purge_jobs(interval, text[], int) TO workflow_admin;

CREATE OR REPLACE FUNCTION workflow._engine_jobs_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  DELETE FROM workflow.tasks t WHERE t.job_id IN (SELECT g.id FROM gone_jobs g);
  DELETE FROM workflow.stage_slots c WHERE c.job_id IN (SELECT g.id FROM gone_jobs g);
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION workflow._engine_jobs_deleted() IS
  'Internal (trigger jobs_delete_cascade): deletes the tasks and stage counters of deleted jobs.';
REVOKE EXECUTE ON FUNCTION workflow._engine_jobs_deleted() FROM PUBLIC;

-- Not on a Citus cluster: workflow.distribute() drops it (Citus refuses
-- triggers on distributed tables), and purge_jobs' locking read over every
-- shard is refused there too (not supported on a cluster yet).
CREATE OR REPLACE TRIGGER jobs_delete_cascade
  AFTER DELETE ON workflow.jobs
  REFERENCING OLD TABLE AS gone_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION workflow._engine_jobs_deleted();
