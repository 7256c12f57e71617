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
