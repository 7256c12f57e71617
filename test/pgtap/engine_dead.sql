-- pgTAP: dead work (1.4). The dead-letter view's contract (column names and
-- types, used by a dashboard), a stage that tolerates dead tasks, retry_task
-- and retry_job, their hostile input and other owners' jobs (42501).
BEGIN;
SELECT plan(51);

-- The contract: these columns, in this order, with these types.
SELECT is((SELECT array_agg(a.attname::text || ' ' || format_type(a.atttypid, a.atttypmod) ORDER BY a.attnum)
             FROM pg_attribute a WHERE a.attrelid = 'workflow.dead_tasks'::regclass AND a.attnum BETWEEN 1 AND 7),
          ARRAY['job_id text', 'task_id text', 'task_type text', 'stage integer', 'retry_count integer',
                'last_error text', 'died_at timestamp with time zone'], 'dead_tasks columns');
SELECT function_returns('workflow', 'retry_task', ARRAY['text', 'text'], 'boolean');
SELECT function_returns('workflow', 'retry_job', ARRAY['text'], 'boolean');

-- A job without tolerance: a dead task fails it.
SELECT workflow.create_job('dead', '{}', 2, 'dead-1');
SELECT workflow.add_tasks('dead-1', 1, 'tap.dead', array_fill('{}'::jsonb, ARRAY[3]), max_retries => 1, slot_count => 2);
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 3, ARRAY['tap.dead'])), 3::bigint, 'claimed');
SELECT * FROM workflow.fail_task('dead-1:1:0', 'dead-1', 'boom', retryable => false, worker => 'w');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'dead-1'), 'failed', 'the job failed');
SELECT is((SELECT row(job_id, task_id, task_type, stage, retry_count, last_error, tolerated, job_status)::text
             FROM workflow.dead_tasks WHERE job_id = 'dead-1'),
          '(dead-1,dead-1:1:0,tap.dead,1,0,boom,f,failed)', 'the dead task is listed');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'dead-1' AND status = 'cancelled'), 2::bigint,
          'the others were cancelled');
SELECT is(workflow.retry_task('dead-1:1:1', 'dead-1'), false, 'retry_task of a task that is not dead: false');
SELECT is(workflow.retry_task('dead-1:1:0', 'dead-1'), true, 'retry_task of the task that failed the job');
SELECT is((SELECT status || '/' || coalesce(error, '-') FROM workflow.jobs WHERE id = 'dead-1'), 'running/-',
          'the job runs again');
SELECT is((SELECT string_agg(status || ':' || retry_count, ',' ORDER BY id) FROM workflow.tasks WHERE job_id = 'dead-1'),
          'queued:0,queued:0,queued:0', 'its tasks are queued again, retries reset');
SELECT is((SELECT count(*) FROM workflow.dead_tasks WHERE job_id = 'dead-1'), 0::bigint, 'nothing dead now');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w2', 3, ARRAY['tap.dead'])), 3::bigint, 'claimable again');
SELECT is((SELECT count(*) FILTER (WHERE stage_complete) FROM workflow.complete_tasks(
             ARRAY['dead-1', 'dead-1', 'dead-1'], ARRAY['dead-1:1:0', 'dead-1:1:1', 'dead-1:1:2'], ARRAY[1, 1, 1],
             worker => 'w2')), 1::bigint, 'and the stage completes');
SELECT is(workflow.advance_job_stage('dead-1', 1, 2, NULL), true, 'the job moves on');

-- retry_job: a failed job with its dead task.
SELECT workflow.create_job('dead', '{}', 1, 'dead-2');
SELECT workflow.add_tasks('dead-2', 1, 'tap.dead2', array_fill('{}'::jsonb, ARRAY[2]), max_retries => 0);
SELECT count(*) FROM workflow.claim_tasks('w', 2, ARRAY['tap.dead2']);
SELECT * FROM workflow.fail_task('dead-2:1:1', 'dead-2', 'bad', worker => 'w');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'dead-2'), 'failed', 'max_retries 0: one failure kills');
SELECT is(workflow.retry_job('dead-2'), true, 'retry_job revives it');
SELECT is(workflow.retry_job('dead-2'), false, 'a second retry_job has nothing to do');
SELECT is((SELECT string_agg(status, ',' ORDER BY id) FROM workflow.tasks WHERE job_id = 'dead-2'), 'queued,queued',
          'both tasks queued');

-- A stage that tolerates 2 dead tasks out of 4.
SELECT workflow.create_job('dead', '{}', 2, 'dead-3');
SELECT workflow.tolerate_dead_tasks('dead-3', 1, 2);
SELECT workflow.add_tasks('dead-3', 1, 'tap.dead3', array_fill('{}'::jsonb, ARRAY[4]), max_retries => 0, slot_count => 3);
SELECT is((SELECT slot_count FROM workflow.stages WHERE job_id = 'dead-3' AND stage = 1), 64,
          'the stage made by tolerate_dead_tasks keeps 64 slots');
SELECT count(*) FROM workflow.claim_tasks('w', 4, ARRAY['tap.dead3']);
SELECT is((SELECT job_failed FROM workflow.fail_task('dead-3:1:0', 'dead-3', 'e0', worker => 'w')), false,
          'first dead task tolerated');
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage('dead-3:1:1', 'dead-3', 1, NULL, worker => 'w')),
          false, 'a completion');
SELECT is((SELECT job_failed FROM workflow.fail_task('dead-3:1:2', 'dead-3', 'e2', worker => 'w')), false,
          'second dead task tolerated');
SELECT is((SELECT dead_tasks FROM workflow.stages WHERE job_id = 'dead-3' AND stage = 1), 2, 'counted on the stage');
SELECT is(workflow.retry_task('dead-3:1:2', 'dead-3'), true, 'a tolerated dead task can run again while its stage is open');
SELECT is((SELECT dead_tasks FROM workflow.stages WHERE job_id = 'dead-3' AND stage = 1), 1, 'and gives its place back');
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants('dead-3')), 'invariants hold after the retry');
SELECT is((SELECT id FROM workflow.claim_tasks('w', 1, ARRAY['tap.dead3'])), 'dead-3:1:2', 'claimed again');
SELECT is((SELECT job_failed FROM workflow.fail_task('dead-3:1:2', 'dead-3', 'e2 again', worker => 'w')), false,
          'tolerated again');
SELECT is((SELECT job_failed FROM workflow.fail_task('dead-3:1:3', 'dead-3', 'e3', worker => 'w')), true,
          'a third dead task fails the job');
-- The same with the last task dying: the tolerated death completes the stage.
SELECT workflow.create_job('dead', '{}', 2, 'dead-4');
SELECT workflow.tolerate_dead_tasks('dead-4', 1, 1);
SELECT workflow.add_tasks('dead-4', 1, 'tap.dead4', array_fill('{}'::jsonb, ARRAY[2]), max_retries => 0);
SELECT count(*) FROM workflow.claim_tasks('w', 2, ARRAY['tap.dead4']);
SELECT workflow.complete_task_and_check_stage('dead-4:1:0', 'dead-4', 1, NULL, worker => 'w');
SELECT * FROM workflow.fail_task('dead-4:1:1', 'dead-4', 'last one dies', worker => 'w');
SELECT is((SELECT completed_by_task FROM workflow.stages WHERE job_id = 'dead-4' AND stage = 1), 'dead-4:1:1',
          'the tolerated death completed the stage');
SELECT is((SELECT string_agg(job_id || ':' || stage, ',') FROM workflow.claim_stage_handovers('w', 10)
            WHERE job_id = 'dead-4'), 'dead-4:1', 'and it is handed over at once');
SELECT throws_ok($$SELECT workflow.retry_task('dead-4:1:1', 'dead-4')$$, '55000',
                 $$task 'dead-4:1:1' cannot run again: its stage 1 completed with it tolerated as dead$$,
                 'a tolerated task of a complete stage stays dead');
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants('dead-4')), 'invariants hold');

-- A revived job's cancelled tasks keep their run_after: a task added with
-- run_at and one waiting out a retry's backoff are not claimed early.
SELECT workflow.create_job('dead', '{}', 1, 'dead-6');
SELECT workflow.add_tasks('dead-6', 1, 'tap.dead6', ARRAY['{}']::jsonb[], seal => false, max_retries => 0);
SELECT workflow.add_tasks('dead-6', 1, 'tap.dead6', ARRAY['{}']::jsonb[], seal => false, first_index => 1);
SELECT workflow.add_tasks('dead-6', 1, 'tap.dead6', ARRAY['{}']::jsonb[], first_index => 2,
                          run_at => now() + interval '1 hour');
SELECT count(*) FROM workflow.claim_tasks('w', 3, ARRAY['tap.dead6']);
SELECT * FROM workflow.fail_task('dead-6:1:1', 'dead-6', 'later', backoff_base => '1 hour', backoff_cap => '1 hour',
                                 worker => 'w');
SELECT * FROM workflow.fail_task('dead-6:1:0', 'dead-6', 'dies', worker => 'w');
SELECT is((SELECT string_agg(status, ',' ORDER BY id) FROM workflow.tasks WHERE job_id = 'dead-6'),
          'failed,cancelled,cancelled', 'the job failed, its waiting tasks cancelled');
SELECT is(workflow.retry_task('dead-6:1:0', 'dead-6'), true, 'retry_task revives the job');
SELECT is((SELECT string_agg(id || ':' || status || ':' || (run_after > now() + interval '29 minutes'), ',' ORDER BY id)
             FROM workflow.tasks WHERE job_id = 'dead-6'),
          'dead-6:1:0:queued:false,dead-6:1:1:queued:true,dead-6:1:2:queued:true',
          'the backoff and the run_at of the cancelled tasks are kept');
SELECT is((SELECT array_agg(id) FROM workflow.claim_tasks('w2', 3, ARRAY['tap.dead6'])), ARRAY['dead-6:1:0'],
          'only the retried task is claimed, not those waiting for later');
SELECT * FROM workflow.fail_task('dead-6:1:0', 'dead-6', 'dies again', worker => 'w2');
SELECT is(workflow.retry_job('dead-6'), true, 'retry_job revives it too');
SELECT is((SELECT array_agg(id) FROM workflow.claim_tasks('w3', 3, ARRAY['tap.dead6'])), ARRAY['dead-6:1:0'],
          'and keeps the waiting tasks waiting');

-- Hostile input and other owners' jobs.
SELECT throws_ok($$SELECT workflow.tolerate_dead_tasks('dead-3', 1, -1)$$, '22023', NULL, 'negative tolerance');
SELECT throws_ok($$SELECT workflow.tolerate_dead_tasks('dead-1', 9, 1)$$, '22023', NULL, 'no such stage');
SELECT throws_ok($$SELECT workflow.tolerate_dead_tasks('dead-1', 1, NULL)$$, '22004', NULL, 'NULL tolerance');
SELECT throws_ok($$SELECT workflow.retry_task(NULL, 'dead-1')$$, '22004', NULL, 'NULL task');
SELECT throws_ok($$SELECT workflow.retry_task('nope', 'dead-1')$$, 'P0002', NULL, 'unknown task');
SELECT throws_ok($$SELECT workflow.retry_job('no-such-job')$$, 'P0002', NULL, 'unknown job');
SELECT workflow.create_job('dead', '{}', 1, 'dead-5');
SELECT workflow.cancel_job('dead-5');
SELECT throws_ok($$SELECT workflow.retry_job('dead-5')$$, '55000', NULL, 'a cancelled job is not re-run');
CREATE ROLE tap_dead_other LOGIN;
GRANT workflow_producer TO tap_dead_other;
SET SESSION AUTHORIZATION tap_dead_other;
SELECT throws_ok($$SELECT workflow.retry_job('dead-2')$$, '42501', NULL, 'another owner''s job: retry_job');
SELECT throws_ok($$SELECT workflow.retry_task('dead-3:1:3', 'dead-3')$$, '42501', NULL, 'another owner''s job: retry_task');
SELECT throws_ok($$SELECT workflow.tolerate_dead_tasks('dead-1', 2, 1)$$, '42501', NULL, 'another owner''s job: tolerate');
SELECT is((SELECT count(*) FROM workflow.dead_tasks), 0::bigint, 'a producer sees no other owner''s dead tasks');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
