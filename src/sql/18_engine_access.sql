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
-- tasks; workers and admins read every row.
-- 1.4: create_job and add_tasks (new signatures) and the functions of the
-- 4x_engine_*.sql files are granted in their own files. The functions are owned by the
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
  workflow.cancel_job(text, text),
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
  workflow.cancel_job(text, text),
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
  workflow.seal_stage(text, int)
  TO workflow_worker;

-- Administrators: every engine function (also through producer and worker).
GRANT EXECUTE ON FUNCTION
  workflow.cancel_job(text, text),
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
