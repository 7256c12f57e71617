-- Data of a working installation, through the SQL API only (run as a
-- superuser, under 1.0 before the upgrade, or under 1.1 for the dump test):
-- jobs in every state, audited rows with inserts, updates and deletes,
-- survey steps. finish.sql brings the unfinished jobs to their end.
-- Each job's tasks have their own task_type, so claims pick that job only.
SELECT workflow.create_job('up', '{"kind": "pending"}', 1, 'up-pending');            -- pending, no tasks yet
SELECT workflow.create_job('up', '{"kind": "running"}', 2, 'up-running');            -- running: claimed and queued tasks
SELECT workflow.add_tasks('up-running', 1, 't-running', array_fill('{"n": 1}'::jsonb, ARRAY[5]), slot_count => 4);
SELECT count(*) FROM workflow.claim_tasks('w-old', 2, ARRAY['t-running'], lease => '1 hour');
SELECT * FROM workflow.complete_task_and_check_stage('up-running:1:4', 'up-running', 1, '{"done": "queued one"}');
SELECT workflow.create_job('up', '{"kind": "handover"}', 1, 'up-handover');          -- stage complete, not advanced
SELECT workflow.add_tasks('up-handover', 1, 't-handover', ARRAY['{}'::jsonb, '{}']);
SELECT * FROM workflow.complete_tasks(ARRAY['up-handover', 'up-handover'], ARRAY['up-handover:1:0', 'up-handover:1:1'],
                                      ARRAY[1, 1], ARRAY['{"r": 0}'::jsonb, '{"r": 1}']);
SELECT workflow.set_handover_lease('up-handover', '1 day');
SELECT workflow.create_job('up', '{"kind": "unsealed"}', 1, 'up-unsealed');          -- producer still adding tasks
SELECT workflow.add_tasks('up-unsealed', 1, 't-unsealed', ARRAY['{}'::jsonb, '{}'], seal => false);
SELECT workflow.create_job('up', '{"kind": "retry"}', 1, 'up-retry');                -- a task waiting for its retry
SELECT workflow.add_tasks('up-retry', 1, 't-retry', ARRAY['{}'::jsonb]);
SELECT count(*) FROM workflow.claim_tasks('w-old', 1, ARRAY['t-retry']);
SELECT * FROM workflow.fail_task('up-retry:1:0', 'up-retry', 'transient', true, backoff_base => '1 millisecond',
                                 backoff_cap => '1 millisecond', worker => 'w-old');
SELECT workflow.create_job('up', '{"kind": "completed"}', 2, 'up-completed');        -- completed
SELECT workflow.add_tasks('up-completed', 1, 't-completed', ARRAY['{}'::jsonb, '{}']);
SELECT * FROM workflow.complete_task_and_check_stage('up-completed:1:0', 'up-completed', 1, '{}');
SELECT * FROM workflow.complete_task_and_check_stage('up-completed:1:1', 'up-completed', 1, '{}');
SELECT workflow.advance_job_stage('up-completed', 1, 2, '{"stage": 1}');
SELECT workflow.add_tasks('up-completed', 2, 't-completed', ARRAY['{}'::jsonb]);
SELECT * FROM workflow.complete_task_and_check_stage('up-completed:2:0', 'up-completed', 2, '{}');
SELECT workflow.advance_job_stage('up-completed', 2, 3, '{"stage": 2}');
SELECT workflow.create_job('up', '{"kind": "failed"}', 1, 'up-failed');              -- failed
SELECT workflow.add_tasks('up-failed', 1, 't-failed', ARRAY['{}'::jsonb, '{}'], max_retries => 0);
SELECT count(*) FROM workflow.claim_tasks('w-old', 1, ARRAY['t-failed']);
SELECT * FROM workflow.fail_task('up-failed:1:0', 'up-failed', 'permanent', false);
SELECT workflow.create_job('up', '{"kind": "cancelled"}', 2, 'up-cancelled');        -- cancelled
SELECT workflow.add_tasks('up-cancelled', 1, 't-cancelled', ARRAY['{}'::jsonb, '{}']);
SELECT workflow.cancel_job('up-cancelled', 'no longer needed');

-- Audited rows: inserts, updates (excluded column too), deletes, every mode.
INSERT INTO app.account (id, email, pw) VALUES (1, 'a@example.com', 'p1'), (2, 'b@example.com', 'p2'), (3, 'c@example.com', 'p3');
UPDATE app.account SET email = 'a2@example.com', pw = 'p1b' WHERE id = 1;
UPDATE app.account SET pw = 'p2b' WHERE id = 2;
DELETE FROM app.account WHERE id = 3;
INSERT INTO app.note VALUES (1, 'first'), (2, 'second');
UPDATE app.note SET body = 'first, edited' WHERE id = 1;
DELETE FROM app.note WHERE id = 2;
INSERT INTO app.event VALUES (1, 'eu', 'via root'), (2, 'us', 'via root');
INSERT INTO app.event_eu VALUES (3, 'eu', 'direct');
UPDATE app.event SET note = 'changed' WHERE id = 1;
DELETE FROM app.event_us WHERE id = 2;

-- Survey steps: single upserts (the second updates), a batch, a time zone.
SELECT workflow.set_session_timezone('C024BE91L', 'Europe/Berlin');
SELECT workflow.upsert_survey_step('C024BE91L', 'workload today', '{"hours": 6}', '2026-11-23 10:00+00');
SELECT workflow.upsert_survey_step('C024BE91L', 'Workload Today', '{"hours": 7}', '2026-11-23 11:00+00');
SELECT workflow.upsert_survey_steps('[{"session_id": "C024BE91L", "step_name": "connects", "value": 3, "completed_at": "2026-11-24T09:00:00Z"},
                                      {"session_id": "G0123ABCD", "step_name": "day off next week", "completed_at": "2026-11-24T09:00:00Z"}]');
