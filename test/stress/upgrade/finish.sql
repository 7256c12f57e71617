-- After the upgrade: every job fill.sql left unfinished runs to its end
-- through the SQL API (claims, completions by the old claimant and by new
-- workers, a stage sealed late, a retry, the advance of a stage completed
-- before the upgrade). Run with ON_ERROR_STOP; the script checks nothing,
-- upgrade.sh checks the states afterwards.
-- up-running: the two tasks claimed before the upgrade complete by their
-- claimant (its claim carried over), the queued ones by a new worker.
SELECT count(*) FROM workflow.claim_tasks('w-new', 10, ARRAY['t-running']);
SELECT stage_complete FROM workflow.complete_tasks(
         (SELECT array_agg(job_id ORDER BY id) FROM workflow.tasks WHERE job_id = 'up-running' AND claimed_by = 'w-old' AND status = 'claimed'),
         (SELECT array_agg(id ORDER BY id) FROM workflow.tasks WHERE job_id = 'up-running' AND claimed_by = 'w-old' AND status = 'claimed'),
         ARRAY[1, 1], worker => 'w-old');
SELECT stage_complete FROM workflow.complete_tasks(
         (SELECT array_agg(job_id ORDER BY id) FROM workflow.tasks WHERE job_id = 'up-running' AND claimed_by = 'w-new' AND status = 'claimed'),
         (SELECT array_agg(id ORDER BY id) FROM workflow.tasks WHERE job_id = 'up-running' AND claimed_by = 'w-new' AND status = 'claimed'),
         ARRAY[1, 1], worker => 'w-new');
SELECT workflow.advance_job_stage('up-running', 1, 2, '{"stage": 1}');
SELECT workflow.add_tasks('up-running', 2, 't-running', ARRAY['{}'::jsonb]);
SELECT count(*) FROM workflow.claim_tasks('w-new', 1, ARRAY['t-running']);
SELECT * FROM workflow.complete_task_and_check_stage('up-running:2:0', 'up-running', 2, '{}', worker => 'w-new');
SELECT workflow.advance_job_stage('up-running', 2, 3, '{"stage": 2}');
-- up-handover: its completer advances it now.
SELECT workflow.advance_job_stage('up-handover', 1, 2, '{"stage": 1}');
-- up-pending: fanned out now.
SELECT workflow.add_tasks('up-pending', 1, 't-pending', ARRAY['{}'::jsonb]);
SELECT count(*) FROM workflow.claim_tasks('w-new', 1, ARRAY['t-pending']);
SELECT * FROM workflow.complete_task_and_check_stage('up-pending:1:0', 'up-pending', 1, '{}', worker => 'w-new');
SELECT workflow.advance_job_stage('up-pending', 1, 2, NULL);
-- up-unsealed: the producer adds its last task and seals.
SELECT workflow.add_tasks('up-unsealed', 1, 't-unsealed', ARRAY['{}'::jsonb], seal => true, first_index => 2);
SELECT count(*) FROM workflow.claim_tasks('w-new', 3, ARRAY['t-unsealed']);
SELECT stage_complete FROM workflow.complete_tasks(ARRAY['up-unsealed', 'up-unsealed', 'up-unsealed'],
                                                   ARRAY['up-unsealed:1:0', 'up-unsealed:1:1', 'up-unsealed:1:2'],
                                                   ARRAY[1, 1, 1], worker => 'w-new');
SELECT workflow.advance_job_stage('up-unsealed', 1, 2, NULL);
-- up-retry: its retry is due (a millisecond's backoff).
SELECT pg_sleep(0.01);
SELECT count(*) FROM workflow.claim_tasks('w-new', 1, ARRAY['t-retry']);
SELECT * FROM workflow.complete_task_and_check_stage('up-retry:1:0', 'up-retry', 1, '{}', worker => 'w-new');
SELECT workflow.advance_job_stage('up-retry', 1, 2, NULL);
