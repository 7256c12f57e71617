-- pgTAP: the engine's API, every function, normal paths and hostile input.
BEGIN;
SELECT plan(83);

-- Objects
SELECT has_table('workflow', 'jobs', 'jobs table');
SELECT has_table('workflow', 'stages', 'stages table');
SELECT has_table('workflow', 'stage_slots', 'stage_slots table');
SELECT has_table('workflow', 'tasks', 'tasks table');
SELECT col_is_pk('workflow', 'tasks', ARRAY['job_id', 'id'], 'tasks key includes job_id');
SELECT col_is_unique('workflow', 'tasks', ARRAY['job_id', 'stage', 'task_index'], 'tasks unique on (job_id, stage, task_index)');
SELECT has_function('workflow', 'create_job', ARRAY['text', 'jsonb', 'integer', 'text', 'timestamp with time zone', 'text']);
SELECT has_function('workflow', 'add_tasks', ARRAY['text', 'integer', 'text', 'jsonb[]', 'boolean', 'integer', 'integer', 'integer', 'timestamp with time zone', 'integer', 'interval']);
SELECT has_function('workflow', 'seal_stage', ARRAY['text', 'integer']);
SELECT has_function('workflow', 'claim_tasks', ARRAY['text', 'integer', 'text[]', 'interval']);
SELECT has_function('workflow', 'heartbeat_task', ARRAY['text', 'text', 'text', 'interval']);
SELECT has_function('workflow', 'complete_task_and_check_stage', ARRAY['text', 'text', 'integer', 'jsonb', 'boolean', 'text']);
SELECT has_function('workflow', 'fail_task', ARRAY['text', 'text', 'text', 'boolean', 'interval', 'interval', 'text']);
SELECT has_function('workflow', 'cancel_job', ARRAY['text', 'text']);
SELECT has_function('workflow', 'advance_job_stage', ARRAY['text', 'integer', 'integer', 'jsonb']);
SELECT has_function('workflow', 'check_job_completion', ARRAY['text']);
SELECT has_function('workflow', 'job_progress', ARRAY['text']);
SELECT has_function('workflow', 'validate', ARRAY[]::text[]);
SELECT has_function('workflow', 'check_invariants', ARRAY['text']);
SELECT is((SELECT count(*) FROM workflow.validate() WHERE NOT ok), 0::bigint, 'validate() reports every check ok');

-- create_job
SELECT is(workflow.create_job('tap', '{"a": 1}', 2, 'eng-tap'), 'eng-tap', 'create_job returns the given id');
SELECT results_eq($$SELECT status, stage, total_stages FROM workflow.jobs WHERE id = 'eng-tap'$$,
                  $$VALUES ('pending'::text, 1, 2)$$, 'a new job is pending at stage 1');
SELECT throws_ok($$SELECT workflow.create_job('tap', '{}', 2, 'eng-tap')$$, '23505', NULL, 'duplicate job id -> 23505');
SELECT throws_ok($$SELECT workflow.create_job(NULL, '{}', 2)$$, '22004', NULL, 'NULL job_type -> 22004');
SELECT throws_ok($$SELECT workflow.create_job('tap', '{}', 0)$$, '22023', NULL, 'zero stages -> 22023');
SELECT throws_ok($$SELECT workflow.create_job('tap', '{}', 1, repeat('j', 100000))$$, '22023', NULL, 'huge job id -> 22023');

-- add_tasks / seal_stage
SELECT is(workflow.add_tasks('eng-tap', 1, 'tap.a', ARRAY['{"i": 0}', '{"i": 1}', '{"i": 2}']::jsonb[],
                             seal => false, slot_count => 2), 3, 'add_tasks inserts 3 tasks');
SELECT is(workflow.add_tasks('eng-tap', 1, 'tap.a', ARRAY['{"i": 0}', '{"i": 1}']::jsonb[], seal => false), 0,
          're-adding existing indices inserts nothing');
SELECT results_eq($$SELECT id FROM workflow.tasks WHERE job_id = 'eng-tap' ORDER BY task_index$$,
                  ARRAY['eng-tap:1:0', 'eng-tap:1:1', 'eng-tap:1:2'], 'task ids are job:stage:index');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'eng-tap'), 'running', 'fan-out starts the job');
SELECT throws_ok($$SELECT workflow.add_tasks('eng-tap', 3, 'x', ARRAY['{}']::jsonb[])$$, '22023', NULL, 'stage beyond total -> 22023');
SELECT throws_ok($$SELECT workflow.add_tasks('eng-none', 1, 'x', ARRAY['{}']::jsonb[])$$, 'P0002', NULL, 'unknown job -> P0002');
SELECT throws_ok($$SELECT workflow.add_tasks('eng-tap', 1, 'x', ARRAY[NULL]::jsonb[])$$, '22004', NULL, 'NULL element -> 22004');
SELECT throws_ok($$SELECT workflow.add_tasks('eng-tap', 1, 'x', '{}'::jsonb[])$$, '22023', NULL, 'empty array -> 22023');

-- claim / heartbeat
SELECT is((SELECT count(*) FROM workflow.claim_tasks('tap-w', 2, ARRAY['tap.a'])), 2::bigint, 'claim takes a batch of 2');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('tap-w2', 5, ARRAY['tap.a'])), 1::bigint, 'a second claimer gets the rest');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('tap-w3', 5, ARRAY['tap.a'])), 0::bigint, 'nothing left to claim');
SELECT ok(workflow.heartbeat_task('eng-tap:1:2', 'eng-tap', 'tap-w2'), 'the holder extends its lease');
SELECT throws_ok($$SELECT workflow.heartbeat_task('eng-tap:1:2', 'eng-tap', 'tap-w')$$, '55000', NULL,
                 'another worker cannot: 55000');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('w', -1)$$, '22023', NULL, 'negative max_tasks -> 22023');

-- complete: not complete before the seal, the seal completes it
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('eng-tap:1:0', 'eng-tap', 1, '{"r": 0}')$$,
                  $$VALUES (false, 2)$$, 'first completion: 2 remaining');
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('eng-tap:1:1', 'eng-tap', 1, NULL)$$,
                  $$VALUES (false, 1)$$, 'second completion: 1 remaining');
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('eng-tap:1:2', 'eng-tap', 1, NULL)$$,
                  $$VALUES (false, 0)$$, 'last task of an unsealed stage does not complete it');
SELECT ok(workflow.seal_stage('eng-tap', 1), 'sealing a stage whose tasks are done completes it');
SELECT ok(workflow.seal_stage('eng-tap', 1), 'a repeated seal gives the same answer');
SELECT throws_ok($$SELECT workflow.add_tasks('eng-tap', 1, 'tap.a', ARRAY['{}']::jsonb[], first_index => 3)$$,
                 '55000', NULL, 'adding to a sealed stage -> 55000');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('eng-tap:1:0', 'eng-tap', 2, NULL)$$,
                 '22023', NULL, 'wrong stage -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('eng-tap:1:7', 'eng-tap', 1, NULL)$$,
                 'P0002', NULL, 'unknown task -> P0002');
SELECT is((SELECT result_data FROM workflow.tasks WHERE id = 'eng-tap:1:0'), '{"r": 0}'::jsonb, 'result stored');

-- advance / completion
SELECT ok(workflow.advance_job_stage('eng-tap', 1, 2, '{"s": 1}'), 'advance 1 -> 2 wins');
SELECT ok(NOT workflow.advance_job_stage('eng-tap', 1, 2, '{"s": 1}'), 'repeated advance loses');
SELECT is(workflow.add_tasks('eng-tap', 2, 'tap.b', ARRAY['{}']::jsonb[]), 1, 'stage 2 fanned out and sealed');
SELECT results_eq($$SELECT * FROM workflow.check_job_completion('eng-tap')$$, $$VALUES (false, 2)$$, 'job not complete yet');
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('eng-tap:2:0', 'eng-tap', 2, NULL)$$,
                  $$VALUES (true, 0)$$, 'the only task completes stage 2');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-tap:2:0', 'eng-tap', 2, NULL)$$,
                  $$VALUES (true)$$, 'a retry of the completer is told again');
SELECT results_eq($$SELECT * FROM workflow.check_job_completion('eng-tap')$$, $$VALUES (true, 2)$$, 'job complete');
SELECT results_eq($$SELECT stage, total_tasks, completed_tasks, sealed, complete FROM workflow.job_progress('eng-tap')$$,
                  $$VALUES (1, 3, 3, true, true), (2, 1, 1, true, true)$$, 'job_progress per stage');

-- fail / cancel
SELECT workflow.create_job('tap', '{}', 1, 'eng-tap-2');
SELECT workflow.add_tasks('eng-tap-2', 1, 'tap.c', ARRAY['{}', '{}']::jsonb[], max_retries => 0);
SELECT results_eq($$SELECT will_retry, job_failed FROM workflow.fail_task('eng-tap-2:1:0', 'eng-tap-2', 'boom')$$,
                  $$VALUES (false, true)$$, 'no retries left: the task is dead and the job failed');
SELECT is((SELECT status FROM workflow.tasks WHERE id = 'eng-tap-2:1:1'), 'cancelled', 'the failed job''s other tasks are cancelled');
SELECT ok(NOT workflow.cancel_job('eng-tap-2'), 'cancelling an ended job returns false');
SELECT throws_ok($$SELECT workflow.cancel_job('eng-none')$$, 'P0002', NULL, 'cancel unknown job -> P0002');

-- fail_task with worker: a repeat after a lost reply counts the attempt once
SELECT workflow.create_job('tap', '{}', 1, 'eng-tap-3');
SELECT workflow.add_tasks('eng-tap-3', 1, 'tap.d', ARRAY['{}']::jsonb[], max_retries => 1);
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w1', 10, ARRAY['tap.d'])), 1::bigint, 'w1 claims the task');
SELECT results_eq($$SELECT will_retry, job_failed FROM workflow.fail_task('eng-tap-3:1:0', 'eng-tap-3', 'flaky', worker => 'w1')$$,
                  $$VALUES (true, false)$$, 'w1 fails its claim: queued again');
SELECT results_eq($$SELECT will_retry, retry_at = (SELECT run_after FROM workflow.tasks WHERE id = 'eng-tap-3:1:0'), job_failed
                      FROM workflow.fail_task('eng-tap-3:1:0', 'eng-tap-3', 'flaky', worker => 'w1')$$,
                  $$VALUES (true, true, false)$$, 'the repeat answers the same retry and writes nothing');
SELECT is((SELECT retry_count FROM workflow.tasks WHERE id = 'eng-tap-3:1:0'), 1, 'one attempt counted, not two');
UPDATE workflow.tasks SET run_after = now() WHERE id = 'eng-tap-3:1:0';
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w2', 10, ARRAY['tap.d'])), 1::bigint, 'w2 claims the retry');
SELECT throws_ok($$SELECT * FROM workflow.fail_task('eng-tap-3:1:0', 'eng-tap-3', 'late', worker => 'w1')$$, '55000', NULL,
                 'w1 cannot fail w2''s claim: 55000, nothing written');
SELECT is((SELECT claimed_by || ':' || retry_count FROM workflow.tasks WHERE id = 'eng-tap-3:1:0'), 'w2:1', 'still w2''s claim');
SELECT results_eq($$SELECT will_retry, job_failed FROM workflow.fail_task('eng-tap-3:1:0', 'eng-tap-3', 'again', worker => 'w2')$$,
                  $$VALUES (false, true)$$, 'w2 fails it with no retries left: dead, job failed');
SELECT results_eq($$SELECT will_retry, retry_at, job_failed FROM workflow.fail_task('eng-tap-3:1:0', 'eng-tap-3', 'again', worker => 'w2')$$,
                  $$VALUES (false, NULL::timestamptz, true)$$, 'a repeat on the dead task answers the same');
SELECT throws_ok($$SELECT * FROM workflow.fail_task('eng-tap-3:1:0', 'eng-tap-3', 'x', worker => '')$$, '22023', NULL,
                 'empty worker -> 22023');

SELECT is((SELECT count(*) FROM workflow.jobs j, workflow.check_invariants(j.id) i
            WHERE j.id LIKE 'eng-tap%' AND NOT i.ok), 0::bigint, 'invariants hold');

-- 1.7: a job id that names nothing is P0002, never "all ok"; rows left
-- without their job are still checked (and reported).
SELECT throws_ok($$SELECT * FROM workflow.check_invariants('no-such-job')$$, 'P0002', NULL,
                 'check_invariants of an unknown job: P0002');
SELECT throws_ok($$SELECT * FROM workflow.check_invariants('')$$, '22023', NULL,
                 'check_invariants of an empty job id: 22023');
INSERT INTO workflow.tasks (id, job_id, task_type, stage, task_index, slot)
VALUES ('eng-orphan:1:0', 'eng-orphan', 'x', 1, 0, 0);
SELECT ok((SELECT count(*) FROM workflow.check_invariants('eng-orphan') WHERE NOT ok) > 0,
          'a task without its job is checked, and reported');
DELETE FROM workflow.tasks WHERE job_id = 'eng-orphan';
-- Multi-dimensional arrays: the function's own 22023, not PostgreSQL's 0A000.
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('w1', 1, ARRAY[ARRAY['a'], ARRAY['b']])$$, '22023',
                 'task_types must be a one-dimensional array', 'claim_tasks with 2-D task_types: 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY['w1'], ARRAY[ARRAY['a'], ARRAY['b']])$$,
                 '22023', 'task_types must be a one-dimensional array', 'claim_tasks_for_workers too');
SELECT throws_ok($$SELECT workflow.purge_jobs('1 day', ARRAY[ARRAY['completed'], ARRAY['failed']])$$, '22023',
                 'statuses must be a one-dimensional array', 'purge_jobs with 2-D statuses: 22023');
-- Only spaces is no id or name (22023), in SQL and in the native completions; the
-- claim's task_types are at most 1000 names.
SELECT throws_ok($$SELECT workflow.create_job('t', '{}', 1, '   ')$$, '22023', 'job_id must not be only spaces',
                 'a job id of only spaces: 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks(' ')$$, '22023', 'worker must not be only spaces',
                 'a worker name of only spaces: 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['j'], ARRAY['j:1:0'], ARRAY[1], NULL, worker => '  ')$$,
                 '22023', 'worker must not be only spaces', 'complete_tasks (native) with a worker of only spaces: 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('w1', 1, array_fill('t'::text, ARRAY[1001]))$$, '22023',
                 'task_types has 1001 elements, at most 1000', 'claim_tasks with 1001 task_types: 22023');
SELECT lives_ok($$SELECT * FROM workflow.claim_tasks('w1', 1, array_fill('t'::text, ARRAY[1000]))$$,
                'claim_tasks with 1000 task_types runs');

SELECT * FROM finish();
ROLLBACK;
