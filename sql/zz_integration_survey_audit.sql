-- Integration: every survey step write is recorded in the audit history
-- (src/sql/90_integration.sql attaches the audit trigger at install time).
SELECT count(*) AS audit_triggers_on_survey_steps
  FROM pg_trigger WHERE tgrelid = 'workflow.survey_steps'::regclass AND NOT tgisinternal;

-- Other tests' survey writes are audited too: look only at log rows after this mark.
SELECT coalesce(max(id), 0) AS log_mark FROM workflow.audit_log \gset

BEGIN;
SET LOCAL workflow.actor = 'survey-bot';
SELECT step_name, value FROM workflow.upsert_survey_step('CINTEGR01', 'Workload Today', '{"hours": 6}', '2026-11-23 10:00+00');
SELECT step_name, value FROM workflow.upsert_survey_step('CINTEGR01', 'workloadToday', '{"hours": 7}', '2026-11-23 11:00+00');
SELECT workflow.upsert_survey_steps('[{"session_id":"CINTEGR01","step_name":"connects_thisweek","value":{"n":3},"completed_at":"2026-11-23T12:00:00Z"}]');
COMMIT;

-- Two inserts and one update, each by the actor, the update holding only what changed.
SELECT operation, actor, new_values->'value' AS new_value, old_values->'value' AS old_value
  FROM workflow.audit_log
 WHERE schema_name = 'workflow' AND table_name = 'survey_steps' AND id > :log_mark
 ORDER BY id;

-- The step's history through the public function, and nothing logged for a failed batch.
SELECT operation FROM workflow.row_history('workflow.survey_steps',
  jsonb_build_object('id', (SELECT id FROM workflow.survey_steps
                            WHERE session_id = 'CINTEGR01' AND step_name = 'workload_today')))
 ORDER BY id;
SELECT workflow.upsert_survey_steps('[{"session_id":"CINTEGR01","step_name":"day_off_thisweek"},{"session_id":"bad","step_name":"x"}]');
SELECT count(*) AS log_rows FROM workflow.audit_log WHERE table_name = 'survey_steps' AND id > :log_mark;
DELETE FROM workflow.survey_steps WHERE session_id = 'CINTEGR01';
DELETE FROM workflow.survey_sessions WHERE session_id = 'CINTEGR01';
