-- pgTAP: retention (1.4). purge_jobs removes finished jobs with their
-- stages, counters and tasks in bounded batches; a direct DELETE FROM
-- workflow.jobs cascades; check_invariants stays clean; hostile input, 42501.
BEGIN;
SELECT plan(17);

-- Three finished jobs (completed, failed, cancelled) and a running one.
SELECT workflow.create_job('ret', '{}', 1, 'ret-done');
SELECT workflow.add_tasks('ret-done', 1, 'tap.ret', array_fill('{}'::jsonb, ARRAY[3]));
SELECT workflow.complete_tasks(ARRAY['ret-done', 'ret-done', 'ret-done'], ARRAY['ret-done:1:0', 'ret-done:1:1', 'ret-done:1:2'],
                               ARRAY[1, 1, 1]);
SELECT workflow.advance_job_stage('ret-done', 1, 2, NULL);
SELECT workflow.create_job('ret', '{}', 1, 'ret-failed');
SELECT workflow.add_tasks('ret-failed', 1, 'tap.ret', array_fill('{}'::jsonb, ARRAY[2]));
SELECT * FROM workflow.fail_task('ret-failed:1:0', 'ret-failed', 'x', retryable => false);
SELECT workflow.create_job('ret', '{}', 1, 'ret-cancelled');
SELECT workflow.add_tasks('ret-cancelled', 1, 'tap.ret', array_fill('{}'::jsonb, ARRAY[2]));
SELECT workflow.cancel_job('ret-cancelled');
SELECT workflow.create_job('ret', '{}', 1, 'ret-running');
SELECT workflow.add_tasks('ret-running', 1, 'tap.ret', array_fill('{}'::jsonb, ARRAY[2]));
SELECT is((SELECT string_agg(id || '=' || status, ',' ORDER BY id) FROM workflow.jobs WHERE id LIKE 'ret-%'),
          'ret-cancelled=cancelled,ret-done=completed,ret-failed=failed,ret-running=running', 'the jobs');
-- They finished an hour ago.
UPDATE workflow.jobs SET finished_at = now() - interval '1 hour' WHERE id LIKE 'ret-%' AND finished_at IS NOT NULL;

SELECT is(workflow.purge_jobs('2 hours'), 0, 'nothing older than 2 hours');
SELECT is(workflow.purge_jobs('30 minutes', ARRAY['completed'], max_jobs => 5), 1, 'the completed one');
SELECT is(workflow.purge_jobs('30 minutes', max_jobs => 1), 1, 'a batch of one');
SELECT is(workflow.purge_jobs('30 minutes', max_jobs => 1), 1, 'the next batch');
SELECT is(workflow.purge_jobs('30 minutes'), 0, 'then none');
SELECT is((SELECT string_agg(id, ',') FROM workflow.jobs WHERE id LIKE 'ret-%'), 'ret-running', 'the running job stays');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id <> 'ret-running' AND job_id LIKE 'ret-%')
          + (SELECT count(*) FROM workflow.stages WHERE job_id <> 'ret-running' AND job_id LIKE 'ret-%')
          + (SELECT count(*) FROM workflow.stage_slots WHERE job_id <> 'ret-running' AND job_id LIKE 'ret-%'),
          0::bigint, 'no stage, counter or task of a purged job is left');

-- A direct DELETE cascades to tasks and counters.
DELETE FROM workflow.jobs WHERE id = 'ret-running';
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'ret-running')
          + (SELECT count(*) FROM workflow.stages WHERE job_id = 'ret-running')
          + (SELECT count(*) FROM workflow.stage_slots WHERE job_id = 'ret-running'), 0::bigint,
          'DELETE FROM workflow.jobs removes its stages, counters and tasks');
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants()), 'invariants hold');

-- Hostile input.
SELECT throws_ok($$SELECT workflow.purge_jobs('-1 day')$$, '22023', 'older_than -1 days must not be negative',
                 'a negative age');
SELECT throws_ok($$SELECT workflow.purge_jobs(NULL)$$, '22004', NULL, 'a NULL age');
SELECT throws_ok($$SELECT workflow.purge_jobs('1 day', ARRAY['running'])$$, '22023', NULL, 'a status that is not finished');
SELECT throws_ok($$SELECT workflow.purge_jobs('1 day', ARRAY[]::text[])$$, '22023', NULL, 'no status');
SELECT throws_ok($$SELECT workflow.purge_jobs('1 day', max_jobs => 0)$$, '22023', NULL, 'max_jobs 0');
SELECT throws_ok($$SELECT workflow.purge_jobs('100000000 years')$$, '22023', NULL, 'an age past the calendar');
CREATE ROLE tap_ret_producer LOGIN;
GRANT workflow_producer TO tap_ret_producer;
SET SESSION AUTHORIZATION tap_ret_producer;
SELECT throws_ok($$SELECT workflow.purge_jobs('1 day')$$, '42501', NULL, 'a producer may not purge');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
