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
