-- Upgrade workflow 1.0 -> 1.1 (ALTER EXTENSION workflow UPDATE TO '1.1').
-- Assembled from the files listed in src/sql/upgrade/1.0--1.1.list: parts of
-- the 1.1 install script that are new or can be re-run as they are (CREATE
-- OR REPLACE), and the deltas in src/sql/upgrade/1.0--1.1/ for what cannot.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.1'" to load this file. \quit
-- The extension's roles (NOLOGIN; a DBA grants them to login roles). Roles
-- belong to the cluster, not to a database: a second database's CREATE
-- EXTENSION finds them made, and DROP EXTENSION leaves them.
--   workflow_producer  creates, fans out, seals, cancels and watches its own jobs
--   workflow_worker    claims, heartbeats, completes, fails and advances any job's tasks
--   workflow_survey    records and reads survey steps
--   workflow_auditor   reads the whole audit log
--   workflow_admin     all of the above, other owners' jobs, purges, invariants
DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['workflow_producer', 'workflow_worker', 'workflow_survey',
                           'workflow_auditor', 'workflow_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;
GRANT workflow_producer, workflow_worker, workflow_survey, workflow_auditor TO workflow_admin;
-- Trusted install by a role that is not a superuser (a database owner): it
-- owns the extension and may grant the roles to its service roles. Roles
-- are the cluster's: see README "Installing" (CONNECT per database).
DO $owner$
DECLARE
  owner name;
BEGIN
  SELECT r.rolname INTO owner
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
   WHERE e.extname = 'workflow' AND NOT r.rolsuper;
  IF FOUND THEN
    EXECUTE pg_catalog.format('GRANT workflow_producer, workflow_worker, workflow_survey, workflow_auditor, '
                              'workflow_admin TO %I WITH ADMIN OPTION', owner);
  END IF;
END
$owner$;
-- 1.0 -> 1.1: job ownership (src/sql/10_engine_tables.sql). A 1.0 job gets
-- owner NULL: its creator is not known (1.0 ran every call as the definer and
-- recorded nobody), so it is admin-only for what only owners may do (cancel,
-- fan out stage 1, seal, set_handover_lease); workers run it to the end as
-- before. workflow.set_job_owner() hands such a job to its producer.
ALTER TABLE workflow.jobs ADD COLUMN owner name;
COMMENT ON COLUMN workflow.jobs.owner IS
  'The session user that created the job: it (and workflow_admin) may change and read the job. '
  'NULL for a job created before 1.1: only workflow_admin (and workers, for what they do) act on it.';
CREATE INDEX jobs_owner_idx ON workflow.jobs (owner);
-- Job -> Stage -> Task engine: argument checks and notifications shared by
-- the engine's functions. Hostile input gets a SQLSTATE error before
-- anything is written.

-- A required identifier-like text argument: not NULL (22004), not empty,
-- at most max_len characters, no control characters (22023).
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
  'Internal: raises 22004 for NULL, 22023 for an empty, too long or control-character text argument.';

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
BEGIN
  PERFORM workflow._engine_check_owner(j, 'advance', workers_too => true);
  PERFORM workflow._engine_check_stage(j, current_stage);
  PERFORM workflow._engine_check_not_null('next_stage', next_stage);
  IF next_stage <> current_stage + 1 THEN
    RAISE EXCEPTION 'next_stage % must be current_stage + 1 (%)', next_stage, current_stage + 1
      USING ERRCODE = '22023';
  END IF;
  finishing := next_stage > j.total_stages;

  UPDATE workflow.jobs
     SET stage = least(next_stage, total_stages),
         status = CASE WHEN finishing THEN 'completed' ELSE 'running' END,
         finished_at = CASE WHEN finishing THEN now() END,
         result_data = CASE WHEN stage_results_param IS NULL THEN result_data
                            ELSE coalesce(result_data, '{}'::jsonb)
                                 || jsonb_build_object(current_stage::text, stage_results_param) END,
         updated_at = now()
   WHERE id = job_id_param
     AND stage = current_stage
     AND status IN ('pending', 'running')
     AND EXISTS (SELECT 1 FROM workflow.stages s
                  WHERE s.job_id = job_id_param AND s.stage = current_stage
                    AND s.completed_at IS NOT NULL);
  IF FOUND THEN
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

  -- Lost the race, stale, repeated or premature: say which.
  j := workflow._engine_job(job_id_param);
  IF j.stage = current_stage AND j.status IN ('pending', 'running') THEN
    RAISE EXCEPTION 'stage % of job % is not complete', current_stage, quote_literal(job_id_param)
      USING ERRCODE = '55000';
  END IF;
  RETURN false;
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
                                   max_retries int DEFAULT 3, slot_count int DEFAULT 256)
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
  'shards when the stage is created. 42501 unless the session user owns the job or is a member of '
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
  ), task_counts AS (
    SELECT job_id, stage, slot, count(*) FILTER (WHERE status <> 'completed') AS unfinished
      FROM t GROUP BY job_id, stage, slot
  ), slot_bad AS (
    SELECT coalesce(sl.job_id, c.job_id) || ':' || coalesce(sl.stage, c.stage) || ' slot '
           || coalesce(sl.slot, c.slot) || ' remaining ' || coalesce(sl.remaining::text, 'missing')
           || ' but ' || coalesce(c.unfinished, 0) || ' unfinished tasks' AS what
      FROM sl FULL JOIN task_counts c USING (job_id, stage, slot)
     WHERE sl.remaining IS DISTINCT FROM coalesce(c.unfinished, 0)
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
    SELECT 'slot remaining = unfinished tasks of the slot', what FROM slot_bad
    UNION ALL SELECT 'pending_slots = non-zero slots + unsealed', what FROM pending_bad
    UNION ALL SELECT 'total_tasks = tasks of the stage', what FROM total_bad
    UNION ALL SELECT 'complete = sealed and every task completed', what FROM completion_bad
    UNION ALL SELECT 'exactly one completer, a completed task of the stage', what FROM completer_bad
    UNION ALL SELECT 'every task has its stage row', what FROM orphan_bad
    UNION ALL SELECT 'task id, slot and completed_at consistent', what FROM task_bad
    UNION ALL SELECT 'completed job has its last stage complete', what FROM job_bad
    UNION ALL SELECT 'stuck jobs', what FROM stuck_bad
  ), names(check_name, ord) AS (
    VALUES ('slot remaining = unfinished tasks of the slot', 1),
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
  'Checks that the fan-in bookkeeping matches the tasks (for one job, or all when NULL): slot counters, '
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
-- Job -> Stage -> Task engine: who may call and read what (1.1). New in 1.1
-- and safe on a 1.0 database once jobs.owner exists: the 1.0 -> 1.1 upgrade
-- runs this file as it is (src/sql/upgrade/1.0--1.1.list).
--
-- Functions: nothing of the engine is executable by PUBLIC but the pure
-- ones (version, retry_delay) and validate (it reads only the catalog).
-- Each SECURITY DEFINER function is granted to the roles that call it and
-- checks the job's owner itself (_engine_check_owner, _engine_check_fan_out):
--   workflow_producer  create_job; on its own jobs: add_tasks, seal_stage,
--                      cancel_job, job_progress, advance_job_stage,
--                      check_job_completion, set_handover_lease
--   workflow_worker    on any job: claim_tasks, heartbeat_task,
--                      complete_task_and_check_stage, complete_tasks,
--                      fail_task, claim_stage_handovers, advance_job_stage,
--                      check_job_completion, job_progress; add_tasks and
--                      seal_stage into the next stage (2 .. job stage + 1)
--   workflow_admin     all of them on any job, check_invariants, set_job_owner
-- Tables: SELECT only (every write goes through the functions), filtered by
-- row-level security: a producer reads its own jobs and their stages and
-- tasks; workers and admins read every row. The functions are owned by the
-- tables' owner, which RLS does not apply to (no FORCE): the claim and
-- complete paths pay nothing for the policies.

GRANT USAGE ON SCHEMA workflow
  TO workflow_producer, workflow_worker, workflow_survey, workflow_auditor, workflow_admin;

-- Internal helpers: called by the SECURITY DEFINER functions (as their owner) only.
REVOKE EXECUTE ON FUNCTION
  workflow._engine_check_text(text, text, int),
  workflow._engine_check_not_null(text, anyelement),
  workflow._engine_check_lease(text, interval, interval),
  workflow._engine_job(text, text),
  workflow._engine_check_stage(workflow.jobs, int),
  workflow._engine_notify_stage_complete(text, int),
  workflow._engine_notify_job_complete(text, text),
  workflow._engine_end_job(text, text, text),
  workflow._is_admin(),
  workflow._engine_check_owner(workflow.jobs, text, boolean),
  workflow._engine_check_fan_out(workflow.jobs, int, text),
  workflow._engine_analyze_new_tasks_table()
  FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
  workflow.create_job(text, jsonb, int, text),
  workflow.cancel_job(text, text),
  workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int),
  workflow.seal_stage(text, int),
  workflow.job_progress(text),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.set_handover_lease(text, interval),
  workflow.claim_tasks(text, int, text[], interval),
  workflow.heartbeat_task(text, text, text, interval),
  workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text),
  workflow.complete_tasks(text[], text[], int[], jsonb[], text),
  workflow.fail_task(text, text, text, boolean, interval, interval, text),
  workflow.claim_stage_handovers(text, int, interval),
  workflow.check_invariants(text),
  workflow.set_job_owner(text, name)
  FROM PUBLIC;

-- Producers (on their own jobs; the functions check the owner).
GRANT EXECUTE ON FUNCTION
  workflow.create_job(text, jsonb, int, text),
  workflow.cancel_job(text, text),
  workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int),
  workflow.seal_stage(text, int),
  workflow.job_progress(text),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.set_handover_lease(text, interval)
  TO workflow_producer;

-- Workers (on any job; fan-out into the next stage only).
GRANT EXECUTE ON FUNCTION
  workflow.claim_tasks(text, int, text[], interval),
  workflow.heartbeat_task(text, text, text, interval),
  workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text),
  workflow.complete_tasks(text[], text[], int[], jsonb[], text),
  workflow.fail_task(text, text, text, boolean, interval, interval, text),
  workflow.claim_stage_handovers(text, int, interval),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.job_progress(text),
  workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int),
  workflow.seal_stage(text, int)
  TO workflow_worker;

-- Administrators: every engine function (also through producer and worker).
GRANT EXECUTE ON FUNCTION
  workflow.create_job(text, jsonb, int, text),
  workflow.cancel_job(text, text),
  workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int),
  workflow.seal_stage(text, int),
  workflow.job_progress(text),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.set_handover_lease(text, interval),
  workflow.claim_tasks(text, int, text[], interval),
  workflow.heartbeat_task(text, text, text, interval),
  workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text),
  workflow.complete_tasks(text[], text[], int[], jsonb[], text),
  workflow.fail_task(text, text, text, boolean, interval, interval, text),
  workflow.claim_stage_handovers(text, int, interval),
  workflow.check_invariants(text),
  workflow.set_job_owner(text, name)
  TO workflow_admin;

-- Tables: read-only, row-level security by owner.
REVOKE ALL ON workflow.jobs, workflow.stages, workflow.stage_slots, workflow.tasks FROM PUBLIC;
GRANT SELECT ON workflow.jobs, workflow.stages, workflow.tasks
  TO workflow_producer, workflow_worker, workflow_admin;
GRANT SELECT ON workflow.stage_slots TO workflow_admin;

ALTER TABLE workflow.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow.stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow.tasks ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_owner_reads ON workflow.jobs FOR SELECT TO workflow_producer
  USING (owner = session_user);
CREATE POLICY jobs_all_reads ON workflow.jobs FOR SELECT TO workflow_worker, workflow_admin
  USING (true);
CREATE POLICY stages_owner_reads ON workflow.stages FOR SELECT TO workflow_producer
  USING (EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = stages.job_id AND j.owner = session_user));
CREATE POLICY stages_all_reads ON workflow.stages FOR SELECT TO workflow_worker, workflow_admin
  USING (true);
CREATE POLICY tasks_owner_reads ON workflow.tasks FOR SELECT TO workflow_producer
  USING (EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = tasks.job_id AND j.owner = session_user));
CREATE POLICY tasks_all_reads ON workflow.tasks FOR SELECT TO workflow_worker, workflow_admin
  USING (true);
-- 1.0 -> 1.1, audit log: the session user and the current user of each
-- change beside the claimed actor (src/sql/20_audit_log.sql). Rows logged by
-- 1.0 keep what they had and get NULL in both: 1.0 did not record them, and
-- their actor (workflow.actor, else 1.0's current_user) cannot tell. Nullable
-- columns without a default: no rewrite of the log. Until this runs, the 1.1
-- library writes a 1.0 log in its 1.0 shape.
ALTER TABLE workflow.audit_log ADD COLUMN session_user_name text, ADD COLUMN current_user_name text;
COMMENT ON COLUMN workflow.audit_log.actor IS
  'Claimed actor: SET LOCAL workflow.actor when set (any role may set it), else the session user';
COMMENT ON COLUMN workflow.audit_log.session_user_name IS
  'session_user of the change: the login role (behind a pooler, its pooled role); NULL in rows logged before 1.1';
COMMENT ON COLUMN workflow.audit_log.current_user_name IS
  'current_user of the change: the role whose privileges made it (the owner inside a SECURITY DEFINER function); NULL in rows logged before 1.1';

-- Who reads what: the policy of src/sql/20_audit_log.sql (1.0 showed the
-- history of a table with row-level security to all its readers, and that of
-- a dropped or revoked table to no one but superusers).
ALTER POLICY audit_log_readable ON workflow.audit_log
  USING ((SELECT pg_catalog.pg_has_role('workflow_auditor', 'USAGE'))
         OR table_id = ANY (ARRAY(SELECT t.id FROM workflow.audit_tables t
                                   WHERE pg_catalog.has_table_privilege(t.relid, 'SELECT')
                                     AND (SELECT NOT c.relrowsecurity OR pg_catalog.pg_has_role(c.relowner, 'USAGE')
                                            FROM pg_catalog.pg_class c WHERE c.oid = t.relid))));
-- 1.0 -> 1.1, audit registry: written only by the SECURITY DEFINER
-- enable_audit / disable_audit and the event triggers now
-- (src/sql/23_audit_privileges.sql), so PUBLIC loses INSERT and UPDATE and
-- the owner policies that went with them (in 1.0 enable_audit ran as its
-- caller). Reading stays as it was.
DROP POLICY audit_tables_owner_inserts ON workflow.audit_tables;
DROP POLICY audit_tables_owner_updates ON workflow.audit_tables;
REVOKE INSERT, UPDATE ON workflow.audit_tables FROM PUBLIC;
REVOKE USAGE ON SEQUENCE workflow.audit_tables_id_seq FROM PUBLIC;
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
  'Attaches the native audit triggers to a table with a primary key (and to its partitions) and registers it in workflow.audit_tables; exclude_columns never appear in the log, also after a rename. statement_level => false uses a row-level trigger instead of transition tables. Calling it again replaces the settings. SECURITY DEFINER: the session user must own the table; EXECUTE (the right to audit) is granted to workflow_admin, not PUBLIC.';

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

-- 1.0 -> 1.1, audit read path: row_history becomes native (same signature,
-- result, checks and errors; src/extension/audit_history.cpp). The function's
-- privileges are kept by CREATE OR REPLACE.
CREATE OR REPLACE FUNCTION workflow.row_history(target regclass, key jsonb)
RETURNS SETOF workflow.audit_log
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'workflow_row_history';
COMMENT ON FUNCTION workflow.row_history(regclass, jsonb) IS
  'Log rows of one row of target (by primary key as jsonb, e.g. ''{"id": 7}''), plus the table''s TRUNCATEs, oldest first.';
-- Survey steps: who may call and read what (1.1). New in 1.1 and safe on a
-- 1.0 database: the 1.0 -> 1.1 upgrade runs this file as it is.
--   PUBLIC             the pure functions (step_name_key, normalize_step_name,
--                      parse_session_id, is_valid_session_id,
--                      survey_week_start) and the step-name registry (read)
--   workflow_survey    set_session_timezone, upsert_survey_step(s),
--                      get_weekly_survey_steps; reads sessions, steps and
--                      survey_weekly_completion
--   workflow_admin     all of that, cleanup_survey_sessions, and writes the
--                      step-name registry
-- Survey data has no owner: a session is a chat channel, shared by whoever
-- records it (the bot). Writes go through the SECURITY DEFINER functions.

REVOKE EXECUTE ON FUNCTION
  workflow.set_session_timezone(text, text),
  workflow.upsert_survey_step(text, text, jsonb, timestamptz),
  workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz),
  workflow.cleanup_survey_sessions(interval)
  FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
  workflow.set_session_timezone(text, text),
  workflow.upsert_survey_step(text, text, jsonb, timestamptz),
  workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz)
  TO workflow_survey, workflow_admin;
GRANT EXECUTE ON FUNCTION workflow.cleanup_survey_sessions(interval) TO workflow_admin;

REVOKE ALL ON workflow.survey_sessions, workflow.survey_steps, workflow.survey_weekly_completion
  FROM PUBLIC;
GRANT SELECT ON workflow.survey_sessions, workflow.survey_steps, workflow.survey_weekly_completion
  TO workflow_survey, workflow_admin;
GRANT INSERT, UPDATE, DELETE ON workflow.survey_step_names, workflow.survey_step_aliases
  TO workflow_admin;
