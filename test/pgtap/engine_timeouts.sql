-- pgTAP: task timeouts (1.4). A claim sets the deadline (claim time +
-- timeout); past it the attempt fails with backoff (claim_tasks or
-- expire_timed_out_tasks), the last attempt makes the task dead; the worker
-- that held it is fenced out. now() is fixed inside the transaction: the
-- deadline passing is written into deadline_at.
BEGIN;
SELECT plan(19);

SELECT workflow.create_job('tmo', '{}', 1, 'tmo-1');
SELECT workflow.add_tasks('tmo-1', 1, 'tap.tmo', array_fill('{}'::jsonb, ARRAY[2]), max_retries => 1,
                          timeout => '30 seconds');
SELECT is((SELECT timeout FROM workflow.tasks WHERE id = 'tmo-1:1:0'), '30 seconds'::interval, 'timeout stored');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 2, ARRAY['tap.tmo'], lease => '1 hour')), 2::bigint, 'claimed');
SELECT is((SELECT deadline_at FROM workflow.tasks WHERE id = 'tmo-1:1:0'), now() + interval '30 seconds',
          'the deadline is claim time + timeout, not the lease');
SELECT is(workflow.heartbeat_task('tmo-1:1:0', 'tmo-1', 'w', '1 hour'), true, 'a heartbeat before the deadline');
SELECT is((SELECT deadline_at FROM workflow.tasks WHERE id = 'tmo-1:1:0'), now() + interval '30 seconds',
          'heartbeats do not move the deadline');

-- The deadline passes for task 0 (the hung handler keeps heartbeating).
UPDATE workflow.tasks SET deadline_at = now() - interval '1 second' WHERE id = 'tmo-1:1:0';
SELECT is(workflow.heartbeat_task('tmo-1:1:0', 'tmo-1', 'w', '1 hour'), false, 'past the deadline a heartbeat says stop');
SELECT is(workflow.expire_timed_out_tasks(), 1, 'expire_timed_out_tasks fails the attempt');
SELECT is((SELECT status || ':' || retry_count || ':' || (run_after > now()) || ':' || (last_error LIKE 'timed out after 00:00:30%')
             FROM workflow.tasks WHERE id = 'tmo-1:1:0'), 'queued:1:true:true', 'queued again after a backoff');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('tmo-1:1:0', 'tmo-1', 1, NULL, worker => 'w')$$,
                 '55000', NULL, 'the hung worker''s late complete is refused');
SELECT is(workflow.expire_timed_out_tasks(), 0, 'nothing more to expire');

-- Task 1's deadline passes too, but nobody fails the attempt before its worker
-- completes it: the heartbeat says stop, the complete still counts, once.
UPDATE workflow.tasks SET deadline_at = now() - interval '1 second' WHERE id = 'tmo-1:1:1';
SELECT is(workflow.heartbeat_task('tmo-1:1:1', 'tmo-1', 'w', '1 hour'), false, 'past the deadline: stop');
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage('tmo-1:1:1', 'tmo-1', 1, NULL, worker => 'w')),
          false, 'a complete before the attempt was failed counts');
SELECT is(workflow.expire_timed_out_tasks(), 0, 'and a completed task is not timed out after it');

-- Its last attempt times out: dead, the job fails. claim_tasks expires it itself.
UPDATE workflow.tasks SET run_after = now() - interval '1 second' WHERE id = 'tmo-1:1:0';
SELECT is((SELECT id FROM workflow.claim_tasks('w2', 1, ARRAY['tap.tmo'])), 'tmo-1:1:0', 'claimed again');
UPDATE workflow.tasks SET deadline_at = now() - interval '1 second' WHERE id = 'tmo-1:1:0';
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w3', 1, ARRAY['tap.tmo'])), 0::bigint, 'a claim finds nothing to claim');
SELECT is((SELECT status FROM workflow.tasks WHERE id = 'tmo-1:1:0'), 'failed', 'but failed the timed-out last attempt');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'tmo-1'), 'failed', 'and the job');
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants('tmo-1')), 'invariants hold');

SELECT throws_ok($$SELECT workflow.expire_timed_out_tasks(0)$$, '22023', NULL, 'max_tasks 0');

SELECT * FROM finish();
ROLLBACK;
