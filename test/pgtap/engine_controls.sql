-- pgTAP: pause and resume of a task type and of a job, per-task-type
-- concurrency limits (1.4), hostile input, other owners' jobs (42501).
-- The exactness of limits under concurrency is test/stress/engine_limits_race.py.
BEGIN;
SELECT plan(32);

SELECT function_returns('workflow', 'pause_task_type', ARRAY['text'], 'boolean');
SELECT function_returns('workflow', 'resume_task_type', ARRAY['text'], 'boolean');
SELECT function_returns('workflow', 'pause_job', ARRAY['text'], 'boolean');
SELECT function_returns('workflow', 'resume_job', ARRAY['text'], 'boolean');

SELECT workflow.create_job('ctl', '{}', 1, 'ctl-1');
SELECT workflow.add_tasks('ctl-1', 1, 'tap.a', array_fill('{}'::jsonb, ARRAY[3]), seal => false);
SELECT workflow.add_tasks('ctl-1', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[3]), first_index => 3);

-- Pause a task type.
SELECT is(workflow.pause_task_type('tap.a'), true, 'pause_task_type: true');
SELECT is(workflow.pause_task_type('tap.a'), false, 'again: false');
SELECT is((SELECT string_agg(DISTINCT task_type, ',') FROM workflow.claim_tasks('w', 1, ARRAY['tap.a', 'tap.b'])),
          'tap.b', 'a paused type is not claimed');
SELECT is((SELECT paused FROM workflow.task_type_status WHERE task_type = 'tap.a'), true, 'task_type_status shows it');
SELECT is(workflow.resume_task_type('tap.a'), true, 'resume_task_type: true');
SELECT is(workflow.resume_task_type('tap.a'), false, 'again: false');
SELECT is((SELECT count(*) FROM workflow.task_type_settings WHERE task_type = 'tap.a'), 0::bigint,
          'no settings left');

-- Pause a job.
SELECT is(workflow.pause_job('ctl-1'), true, 'pause_job: true');
SELECT is(workflow.pause_job('ctl-1'), false, 'again: false');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.a', 'tap.b'])), 0::bigint,
          'a paused job''s tasks are not claimed');
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage(
             (SELECT id FROM workflow.tasks WHERE job_id = 'ctl-1' AND status = 'claimed'), 'ctl-1', 1, NULL, worker => 'w')),
          false, 'a claimed task of a paused job still completes');
SELECT is(workflow.resume_job('ctl-1'), true, 'resume_job: true');
SELECT is(workflow.resume_job('ctl-1'), false, 'again: false');

-- Limit a type to 2 claimed at once.
SELECT workflow.set_task_type_limit('tap.a', 2);
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.a'])), 2::bigint, 'at most 2 of tap.a');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.a'])), 0::bigint, 'none while 2 are claimed');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10)), 2::bigint,
          'a claim of any type takes the other type''s tasks');
SELECT workflow.complete_task_and_check_stage(id, 'ctl-1', 1, NULL, worker => 'w')
  FROM workflow.tasks WHERE job_id = 'ctl-1' AND task_type = 'tap.a' AND status = 'claimed' LIMIT 1;
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.a'])), 1::bigint, 'one finished: one more');
-- An expired lease of a limited type is reclaimed without taking room.
UPDATE workflow.tasks SET lease_expires_at = now() - interval '1 second'
 WHERE job_id = 'ctl-1' AND task_type = 'tap.a' AND status = 'claimed';
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w2', 10, ARRAY['tap.a'])), 2::bigint,
          'expired leases of a type at its limit are reclaimed');
SELECT is((SELECT claimed FROM workflow.task_type_status WHERE task_type = 'tap.a'), 2, 'still 2 claimed');
SELECT workflow.set_task_type_limit('tap.a', NULL);
SELECT is((SELECT count(*) FROM workflow.task_type_settings), 0::bigint, 'NULL removes the limit');
SELECT workflow.set_task_type_limit('tap.b', 0);
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.b'])), 0::bigint, 'a limit of 0 stops the type');
SELECT workflow.set_task_type_limit('tap.b', NULL);

-- Hostile input.
SELECT throws_ok($$SELECT workflow.set_task_type_limit('tap.a', -1)$$, '22023', NULL, 'a negative limit');
SELECT throws_ok($$SELECT workflow.set_task_type_limit(NULL, 1)$$, '22004', NULL, 'a NULL type');
SELECT throws_ok($$SELECT workflow.pause_task_type('')$$, '22023', NULL, 'an empty type');
SELECT throws_ok($$SELECT workflow.pause_job('no-such-job')$$, 'P0002', NULL, 'an unknown job');
CREATE ROLE tap_ctl_other LOGIN;
GRANT workflow_producer TO tap_ctl_other;
SET SESSION AUTHORIZATION tap_ctl_other;
SELECT throws_ok($$SELECT workflow.pause_job('ctl-1')$$, '42501', NULL, 'another owner''s job');
SELECT throws_ok($$SELECT workflow.pause_task_type('tap.a')$$, '42501', NULL, 'a producer may not pause a type');
RESET SESSION AUTHORIZATION;
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants('ctl-1')), 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
