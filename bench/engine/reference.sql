-- The PL/pgSQL fan-in a user writes today (pgflow / pg-boss style): one
-- `remaining` counter row per stage, decremented after each task UPDATE.
-- Correct (row lock held to commit) but every completion of a stage waits
-- for the previous one's commit.
CREATE SCHEMA bench_ref;
CREATE TABLE bench_ref.stage_counter (
  job_id text NOT NULL, stage int NOT NULL, remaining int NOT NULL,
  PRIMARY KEY (job_id, stage));

CREATE FUNCTION bench_ref.complete_task(task_id_param text, job_id_param text, stage_param int,
                                        result_data_param jsonb)
RETURNS TABLE(stage_complete boolean, remaining_tasks int)
LANGUAGE plpgsql AS $$
DECLARE
  r int;
BEGIN
  UPDATE workflow.tasks t
     SET status = 'completed', result_data = result_data_param, completed_at = now(), updated_at = now()
   WHERE t.job_id = job_id_param AND t.id = task_id_param AND t.stage = stage_param
     AND t.status IN ('queued', 'claimed');
  IF NOT FOUND THEN
    RETURN QUERY SELECT false, NULL::int;
    RETURN;
  END IF;
  UPDATE bench_ref.stage_counter c SET remaining = c.remaining - 1
   WHERE c.job_id = job_id_param AND c.stage = stage_param
  RETURNING c.remaining INTO r;
  RETURN QUERY SELECT r = 0, r;
END;
$$;
