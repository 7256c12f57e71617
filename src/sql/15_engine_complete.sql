-- Job -> Stage -> Task engine: the fan-in hot path, native (C++):
-- src/extension/engine_fan_in.cpp, the one fan-in path, called by
-- complete_task_and_check_stage (engine_complete.cpp, a batch of one) and
-- complete_tasks (engine_complete_batch.cpp). 1.2 counts by stage (the
-- *_by_stage entry points): a completion takes its unit from any counter of
-- its stage that has one, below the executor (engine_direct.hpp). CREATE OR
-- REPLACE: the 1.1 -> 1.2 upgrade runs this file as it is.
--
-- Fencing (worker => the name the task was claimed with): only a task
-- currently claimed by that worker completes (also after its lease expired,
-- as long as no other worker claimed it). The worker's own repeat after a
-- lost reply (the task completed with its name) writes nothing and answers
-- the same. A task another worker holds or completed, or that is queued
-- again, raises 55000 and nothing is written. claimed_by is kept on
-- completion: it names the worker that completed the task. Without worker
-- (NULL): any queued or claimed task completes (unfenced).

CREATE OR REPLACE FUNCTION workflow.complete_task_and_check_stage(task_id_param text, job_id_param text,
                                                       stage_param int, result_data_param jsonb,
                                                       count_remaining boolean DEFAULT true,
                                                       worker text DEFAULT NULL)
RETURNS TABLE(stage_complete boolean, remaining_tasks int, job_id text)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS 'MODULE_PATHNAME', 'workflow_complete_task_and_check_stage_by_stage';
COMMENT ON FUNCTION workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text) IS
  'Completes a queued or claimed task and stores its result. Exactly one call per stage, whatever the '
  'concurrency, returns stage_complete = true (and NOTIFY workflow_stage_complete); O(1) in the stage size. '
  'A repeated call writes nothing and returns stage_complete = true again only for the task that completed '
  'the stage. remaining_tasks: unfinished tasks of the stage at the time of the call (sum of its '
  'counters, O(slot_count)); with count_remaining => false it is not counted (NULL, or 0 when the stage is '
  'complete). With worker: only a task claimed by that worker completes; a task another worker holds or '
  'completed, or one queued again, raises 55000 and nothing is written; the worker''s own repeat is '
  'answered as above. P0002 unknown task, 22023 wrong stage, 55000 failed/cancelled task.';

CREATE OR REPLACE FUNCTION workflow.complete_tasks(job_ids text[], task_ids text[], stages int[],
                                        results jsonb[] DEFAULT NULL,
                                        worker text DEFAULT NULL)
RETURNS TABLE(job_id text, task_id text, stage int, stage_complete boolean)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 32
AS 'MODULE_PATHNAME', 'workflow_complete_tasks_by_stage';
COMMENT ON FUNCTION workflow.complete_tasks(text[], text[], int[], jsonb[], text) IS
  'Completes many tasks (element i: task_ids[i] of job_ids[i] in stages[i], result results[i]) in one '
  'statement and transaction: the batch form of complete_task_and_check_stage, with the same exactly-once '
  'stage completion whatever the concurrency (also mixed with single completes); locks are taken in one '
  'global order (tasks by job and id, then each stage''s counters in ascending order, then stages), so '
  'concurrent batches do not deadlock. '
  'Returns one row per element in input order; stage_complete is true for the task recorded as its stage''s '
  'completer, also when the batch is repeated (a repeat writes nothing). All or nothing: any refused element '
  'fails the whole call and nothing is written: 22004 NULL array or element, 22023 empty or unequal arrays, '
  'more than 10000 elements, a task twice, a wrong stage; P0002 unknown task; 55000 failed/cancelled task, '
  'and with worker a task not claimed by that worker (held or completed by another, or queued again). '
  'results may be NULL (no results).';

-- 1.4: the batch of several worker loops of one process (the client's
-- WorkerGroup): element i is fenced by workers[i], all in one call, so the
-- loops share one statement and one commit and the lock order stays global.
CREATE OR REPLACE FUNCTION workflow.complete_claimed_tasks(job_ids text[], task_ids text[], stages int[],
                                                results jsonb[], workers text[])
RETURNS TABLE(job_id text, task_id text, stage int, stage_complete boolean)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 32
AS 'MODULE_PATHNAME', 'workflow_complete_claimed_tasks';
COMMENT ON FUNCTION workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[]) IS
  'complete_tasks with one worker name per element: task_ids[i] completes only if it is claimed by workers[i] '
  '(or was completed by it: a repeat). For a process whose worker loops, each with its own name, complete '
  'their tasks in one call. Same answers, lock order and errors as complete_tasks; also 22004 a NULL '
  'workers array or element, 22023 workers of another length or a name over 200 characters.';
REVOKE EXECUTE ON FUNCTION workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[])
  TO workflow_worker, workflow_admin;
