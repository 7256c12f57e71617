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
