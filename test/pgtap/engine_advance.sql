-- pgTAP: advance_job_stage's answers in 1.3 (its compare-and-set looks again
-- when the job reached current_stage after the UPDATE's snapshot): the
-- argument checks still come first and name the bad argument; stale,
-- premature and repeated calls answer false; a stage not complete is 55000.
-- 1.7: check_job_completion (a producer watching its job) completing the
-- job between the last completion and the completer's advance no longer
-- loses that stage's results: the advance still stores them and gets true.
BEGIN;
SELECT plan(19);

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

-- The last stage: a watcher's check_job_completion comes first.
SELECT workflow.create_job('adv', '{}', 1, 'adv-2');
SELECT workflow.add_tasks('adv-2', 1, 'tap.adv', ARRAY['{}'::jsonb]);
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage('adv-2:1:0', 'adv-2', 1, '{}')),
          true, 'the last stage completes');
SELECT is((SELECT job_complete FROM workflow.check_job_completion('adv-2')), true,
          'a check before the advance completes the job');
SELECT is((SELECT final_advance_pending FROM workflow.jobs WHERE id = 'adv-2'), true,
          'the advance of its last stage is still to come');
SELECT is(workflow.advance_job_stage('adv-2', 1, 2, '{"words": 2}'), true,
          'the completer''s advance after it still gets true');
SELECT is((SELECT result_data FROM workflow.jobs WHERE id = 'adv-2'), '{"1": {"words": 2}}'::jsonb,
          'and its results are stored in the job');
SELECT is((SELECT result_data FROM workflow.stages WHERE job_id = 'adv-2' AND stage = 1), '{"words": 2}'::jsonb,
          'and in the stage');
SELECT is(workflow.advance_job_stage('adv-2', 1, 2, '{"words": 3}'), false, 'a second advance: false');
SELECT is((SELECT result_data FROM workflow.jobs WHERE id = 'adv-2'), '{"1": {"words": 2}}'::jsonb,
          'and writes nothing');
SELECT is((SELECT status || ' ' || final_advance_pending FROM workflow.jobs WHERE id = 'adv-2'), 'completed false',
          'the job stays completed, nothing pending');
-- The usual order: the advance completes the job; a later check changes nothing.
SELECT workflow.create_job('adv', '{}', 1, 'adv-3');
SELECT workflow.add_tasks('adv-3', 1, 'tap.adv', ARRAY['{}'::jsonb]);
SELECT workflow.complete_task_and_check_stage('adv-3:1:0', 'adv-3', 1, '{}');
SELECT is(workflow.advance_job_stage('adv-3', 1, 2, '{"r": 3}'), true, 'advance first: true');
SELECT is((SELECT job_complete::text || final_advance_pending FROM workflow.check_job_completion('adv-3'),
                  workflow.jobs WHERE id = 'adv-3'), 'truefalse',
          'the check after it: completed, no advance pending');

SELECT * FROM finish();
ROLLBACK;
