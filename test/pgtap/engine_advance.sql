-- pgTAP: advance_job_stage's answers in 1.3 (its compare-and-set looks again
-- when the job reached current_stage after the UPDATE's snapshot): the
-- argument checks still come first and name the bad argument; stale,
-- premature and repeated calls answer false; a stage not complete is 55000.
BEGIN;
SELECT plan(8);

SELECT workflow.create_job('adv', '{}', 3, 'adv-1');
SELECT workflow.add_tasks('adv-1', 1, 'tap.adv', ARRAY['{}'::jsonb]);

SELECT throws_ok($$SELECT workflow.advance_job_stage('adv-1', NULL, 2, '{"r": 1}')$$, '22004',
                 'stage must not be NULL', 'a NULL current_stage with results: 22004 (checks before the results)');
SELECT throws_ok($$SELECT workflow.advance_job_stage('adv-1', 1, 3, '{"r": 1}')$$, '22023', NULL,
                 'next_stage other than current_stage + 1: 22023');
SELECT throws_ok($$SELECT workflow.advance_job_stage('adv-1', 1, 2, '{"r": 1}')$$, '55000',
                 'stage 1 of job ''adv-1'' is not complete', 'current stage not complete: 55000');
SELECT is(workflow.advance_job_stage('adv-1', 2, 3, NULL), false, 'premature (job at stage 1): false');
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage('adv-1:1:0', 'adv-1', 1, '{}')),
          true, 'the stage completes');
SELECT is(workflow.advance_job_stage('adv-1', 1, 2, '{"r": 1}'), true, 'the advance wins');
SELECT is(workflow.advance_job_stage('adv-1', 1, 2, '{"r": 1}'), false, 'its repeat: false');
SELECT is((SELECT result_data FROM workflow.jobs WHERE id = 'adv-1'), '{"1": {"r": 1}}'::jsonb,
          'the stage''s results are kept under its number');

SELECT * FROM finish();
ROLLBACK;
