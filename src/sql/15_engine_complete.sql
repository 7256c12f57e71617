-- Job -> Stage -> Task engine: the fan-in hot path, native (C++,
-- src/extension/engine_complete.cpp, kept SPI plans).

CREATE FUNCTION workflow.complete_task_and_check_stage(task_id_param text, job_id_param text,
                                                       stage_param int, result_data_param jsonb,
                                                       count_remaining boolean DEFAULT true)
RETURNS TABLE(stage_complete boolean, remaining_tasks int, job_id text)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS 'MODULE_PATHNAME', 'workflow_complete_task_and_check_stage';
COMMENT ON FUNCTION workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean) IS
  'Completes a queued or claimed task and stores its result. Exactly one call per stage, whatever the '
  'concurrency, returns stage_complete = true (and NOTIFY workflow_stage_complete); O(1) in the stage size. '
  'A repeated call writes nothing and returns stage_complete = true again only for the task that completed '
  'the stage. remaining_tasks: unfinished tasks of the stage at the time of the call (sum of its slot '
  'counters, O(slot_count)); with count_remaining => false it is not counted (NULL, or 0 when the stage is '
  'complete), which halves the cost of the call. P0002 unknown task, 22023 wrong stage, 55000 failed/cancelled task.';
