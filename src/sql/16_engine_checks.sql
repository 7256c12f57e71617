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
