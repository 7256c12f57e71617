-- 1.3 -> 1.4: functions whose arguments changed (run_at, dedupe_key,
-- priority, timeout; the Citus claim's excluded and limited types). The
-- files listed after this one create them anew. On a Citus cluster run
-- workflow.distribute() again after the upgrade: it delegates the new
-- add_tasks (README "Upgrading").
DROP FUNCTION workflow.create_job(text, jsonb, int, text);
DROP FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int);
DROP FUNCTION workflow._engine_claim_job_tasks(text, text, int, text[], interval);
DROP FUNCTION workflow._engine_claim_tasks_distributed(text, int, text[], interval);
