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
                                                           task_types text[], lease interval,
                                                           excluded text[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job_stage int;
  picked text[] := '{}';
  task_id text;
  now_epoch double precision := extract(epoch FROM now());
BEGIN
  SELECT j.stage INTO job_stage FROM workflow.jobs j
   WHERE j.id = job AND j.status IN ('pending', 'running') AND j.paused_at IS NULL;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  FOR task_id IN
    SELECT t.id FROM workflow.tasks t
     WHERE t.job_id = job AND t.status IN ('queued', 'claimed') AND t.stage <= job_stage
       AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
       AND (task_types IS NULL OR t.task_type = ANY (task_types))
       AND t.task_type <> ALL (excluded)
       AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
     ORDER BY t.priority DESC, (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
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
         lease_expires_at = now() + lease, updated_at = now(),
         -- now() + t.timeout, in IMMUTABLE terms: Citus refuses a STABLE
         -- operator on a column in a distributed UPDATE (a day counts 24 hours)
         deadline_at = pg_catalog.to_timestamp(now_epoch + extract(epoch FROM t.timeout))
   WHERE t.job_id = job AND t.id = ANY (picked) AND t.status IN ('queued', 'claimed')
  RETURNING t.*;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_job_tasks(text, text, int, text[], interval, text[]) IS
  'Internal (claim_tasks on a Citus cluster): claims up to max_tasks runnable tasks of one job with router '
  'statements, FOR UPDATE SKIP LOCKED, highest priority first.';

-- The jobs of the best runnable tasks (of jobs running at or past the
-- task's stage, not paused), over every shard, and a claim in each of them.
CREATE OR REPLACE FUNCTION workflow._engine_claim_jobs_distributed(worker text, max_tasks int,
                                                                  task_types text[], lease interval,
                                                                  excluded text[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job text;
  claimed int := 0;
  n int;
BEGIN
  -- Each shard reads its claim index, no lock; best first, the same order
  -- as on one node, so no node's jobs wait behind another's. More tasks than
  -- asked for are read, so that a job whose tasks other claimers hold (SKIP
  -- LOCKED) leaves others to try.
  FOR job IN
    SELECT c.job_id FROM (
      SELECT t.job_id, t.priority,
             (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) AS due
        FROM workflow.tasks t
        JOIN workflow.jobs j ON j.id = t.job_id
       WHERE t.status IN ('queued', 'claimed')
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND t.task_type <> ALL (excluded)
         AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
         AND j.status IN ('pending', 'running') AND j.stage >= t.stage AND j.paused_at IS NULL
       ORDER BY t.priority DESC, due
       LIMIT 4 * max_tasks + 16) c
     GROUP BY c.job_id
     ORDER BY max(c.priority) DESC, min(c.due)
  LOOP
    RETURN QUERY SELECT * FROM workflow._engine_claim_job_tasks(job, worker, max_tasks - claimed,
                                                                task_types, lease, excluded);
    GET DIAGNOSTICS n = ROW_COUNT;
    claimed := claimed + n;
    EXIT WHEN claimed >= max_tasks;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_jobs_distributed(text, int, text[], interval, text[]) IS
  'Internal (claim_tasks on a Citus cluster): the jobs of the best runnable tasks read over every shard '
  'without locks, then each job''s tasks claimed with router statements (_engine_claim_job_tasks).';

-- claim_tasks on a cluster (arguments checked by claim_tasks). Types with a
-- concurrency limit in reach first, one at a time in name order: its
-- settings row (local to the coordinator) locked, its claimed tasks counted
-- over every shard, at most the room left claimed. Then the other types.
CREATE OR REPLACE FUNCTION workflow._engine_claim_tasks_distributed(worker text, max_tasks int,
                                                                   task_types text[], lease interval,
                                                                   excluded text[], limited text[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Not claim_tasks' generic plans: Citus plans these statements with their
-- parameters' values (it cannot distribute a generic plan of them).
SET plan_cache_mode = auto
AS $$
DECLARE
  typ text;
  cap int;
  room int;
  claimed int := 0;
  n int;
BEGIN
  FOR typ IN SELECT u.typ FROM unnest(limited) AS u(typ)
              WHERE task_types IS NULL OR u.typ = ANY (task_types) ORDER BY 1 LOOP
    EXIT WHEN claimed >= max_tasks;
    SELECT s.max_claimed INTO cap FROM workflow.task_type_settings s
     WHERE s.task_type = typ AND s.paused_at IS NULL FOR UPDATE;
    CONTINUE WHEN NOT FOUND OR cap IS NULL;
    room := cap - (SELECT count(*) FROM workflow.tasks x WHERE x.task_type = typ AND x.status = 'claimed')::int;
    CONTINUE WHEN room <= 0;
    RETURN QUERY SELECT * FROM workflow._engine_claim_jobs_distributed(worker, least(room, max_tasks - claimed),
                                                                       ARRAY[typ], lease, excluded);
    GET DIAGNOSTICS n = ROW_COUNT;
    claimed := claimed + n;
  END LOOP;
  IF claimed < max_tasks THEN
    RETURN QUERY SELECT * FROM workflow._engine_claim_jobs_distributed(worker, max_tasks - claimed, task_types,
                                                                       lease, excluded || limited);
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_tasks_distributed(text, int, text[], interval, text[], text[]) IS
  'Internal (claim_tasks on a Citus cluster): limited task types first, each under its settings row''s lock and '
  'within its room, then the others (_engine_claim_jobs_distributed). A lease that expired counts against its '
  'type''s room here.';

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
  -- Nor triggers (1.4: the cascade of a direct DELETE FROM workflow.jobs,
  -- 43_engine_retention.sql): on a cluster a job's rows are deleted by job id.
  -- (Only while it is there: Citus refuses even DROP TRIGGER IF EXISTS on a
  -- table it distributed.)
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
              WHERE g.tgrelid = 'workflow.jobs'::pg_catalog.regclass AND g.tgname = 'jobs_delete_cascade') THEN
    DROP TRIGGER jobs_delete_cascade ON workflow.jobs;
  END IF;

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
      ('workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval)', 'job_id'),
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
  workflow._engine_claim_job_tasks(text, text, int, text[], interval, text[]),
  workflow._engine_claim_jobs_distributed(text, int, text[], interval, text[]),
  workflow._engine_claim_tasks_distributed(text, int, text[], interval, text[], text[]),
  workflow._engine_claim_handovers_distributed(text, int, interval)
  FROM PUBLIC;
