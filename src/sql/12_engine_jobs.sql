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
  -- 1.10: so are the ids of schedules' firings (name@YYYY-MM-DDTHH:MIZ): known
  -- in advance from the name and the minute, another producer could take the
  -- next one, and the firing would then find that job and create none.
  IF new_id ~ '@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}Z$' THEN
    RAISE EXCEPTION 'job_id % is reserved: ids ending in @YYYY-MM-DDTHH:MIZ are those of schedules'' firings',
      quote_literal(new_id) USING ERRCODE = '22023', HINT = 'Use workflow.schedule, or another job_id.';
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
  'another role''s job. A job_id starting with ''dedupe-'' (dedupe keys) or ending in @YYYY-MM-DDTHH:MIZ '
  '(schedules'' firings) is reserved: 22023.';
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
