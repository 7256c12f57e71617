-- Job -> Stage -> Task engine (1.4): a handler reports its progress on the
-- task it runs (tasks.progress, shown by `workflow watch` and job_progress's
-- readers). Fenced like heartbeat_task: only the worker holding the claim
-- writes.

CREATE OR REPLACE FUNCTION workflow.report_progress(task_id text, job_id text, progress jsonb,
                                         worker text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  PERFORM workflow._engine_check_text('job_id', job_id);
  PERFORM workflow._engine_check_not_null('progress', progress);
  IF worker IS NOT NULL THEN
    PERFORM workflow._engine_check_text('worker', worker);
  END IF;
  -- The size of the value itself: one read from a table column may arrive
  -- compressed, and pg_column_size would give its compressed size (1.10).
  IF pg_column_size(jsonb_build_array(progress) -> 0) > 65536 THEN
    RAISE EXCEPTION 'progress is too large (% bytes, at most 65536)', pg_column_size(jsonb_build_array(progress) -> 0)
      USING ERRCODE = '22023';
  END IF;
  UPDATE workflow.tasks t SET progress = report_progress.progress, updated_at = now()
   WHERE t.job_id = report_progress.job_id AND t.id = report_progress.task_id AND t.status = 'claimed'
     AND (report_progress.worker IS NULL OR t.claimed_by = report_progress.worker);
  IF FOUND THEN
    RETURN true;
  END IF;
  PERFORM 1 FROM workflow.tasks t WHERE t.job_id = report_progress.job_id AND t.id = report_progress.task_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  RETURN false;
END;
$$;
COMMENT ON FUNCTION workflow.report_progress(text, text, jsonb, text) IS
  'Stores progress (a jsonb of at most 64 kB) on a claimed task (tasks.progress), only when claimed by worker '
  'when given; true when written, false (nothing written) when the task is not claimed (by that worker). '
  'P0002 unknown task.';
REVOKE EXECUTE ON FUNCTION workflow.report_progress(text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.report_progress(text, text, jsonb, text) TO workflow_worker, workflow_admin;
