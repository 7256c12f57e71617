-- pgTAP: the monitoring views (src/sql/50_monitoring.sql and
-- 51_monitoring_open.sql, issue 14): their
-- figures on a job in a known state, and who may read them (workflow_monitor
-- and workflow_admin; not PUBLIC, a producer or a worker). All in one
-- transaction, rolled back: now() is fixed, so the time windows are exact.
-- Only this test's jobs (mon-*) and task types are counted: the upgrade test
-- runs the suite on a database that holds other jobs.
BEGIN;
SELECT plan(36);

CREATE ROLE monitoring_reader LOGIN;
CREATE ROLE monitoring_plain LOGIN;
CREATE ROLE monitoring_worker LOGIN;
GRANT workflow_monitor TO monitoring_reader;
GRANT USAGE ON SCHEMA workflow TO monitoring_plain;
GRANT workflow_worker TO monitoring_worker;

-- A job of 2 stages; stage 1: 4 'alpha' tasks (max 1 retry), then
--   one completed, one claimed with its lease expired (stale), one failed
--   once and queued again (retrying), one dead (failed, not retryable: the job fails).
-- A second job, running, with one runnable 'beta' task.
SELECT workflow.create_job('mon', '{"x": "<b>"}', 2, 'mon-job') AS job \gset
SELECT workflow.add_tasks('mon-job', 1, 'alpha', array_fill('{}'::jsonb, ARRAY[4]), true, 0, 1);
SELECT workflow.create_job('mon', '{}', 1, 'mon-job-2');
SELECT workflow.add_tasks('mon-job-2', 1, 'beta', ARRAY['{}'::jsonb]);
SELECT count(*) FROM workflow.claim_tasks('w1', 4, ARRAY['alpha']);
SELECT workflow.complete_task_and_check_stage('mon-job:1:0', 'mon-job', 1, '{}');
UPDATE workflow.tasks SET lease_expires_at = now() - interval '1 minute' WHERE id = 'mon-job:1:1';
SELECT workflow.fail_task('mon-job:1:2', 'mon-job', 'try again');
UPDATE workflow.tasks SET run_after = now() + interval '1 hour' WHERE id = 'mon-job:1:2';

SELECT results_eq(
  $$SELECT task_type, status, tasks FROM workflow.queue_depth WHERE task_type IN ('alpha', 'beta') ORDER BY 1, 2$$,
  $$VALUES ('alpha', 'claimed', 2::bigint), ('alpha', 'completed', 1), ('alpha', 'queued', 1),
           ('beta', 'queued', 1)$$,
  'queue_depth: tasks by type and status');
SELECT results_eq(
  $$SELECT task_type, runnable_tasks, age_seconds >= 0 FROM workflow.oldest_runnable_task
     WHERE task_type IN ('alpha', 'beta')$$,
  $$VALUES ('beta', 1::bigint, true)$$,
  'oldest_runnable_task: the retrying task waits for its run_after, the beta one is runnable');
SELECT results_eq(
  $$SELECT task_id, claimed_by, expired_for FROM workflow.stale_claims WHERE job_id LIKE 'mon-%'$$,
  $$VALUES ('mon-job:1:1', 'w1', interval '1 minute')$$,
  'stale_claims: the claim whose lease expired, not the live one');
SELECT results_eq(
  $$SELECT task_type, status, tasks, runnable_tasks, stale_claims FROM workflow.open_task_summary
     WHERE task_type IN ('alpha', 'beta') ORDER BY 1, 2$$,
  $$VALUES ('alpha', 'claimed', 2::bigint, 0::bigint, 1::bigint), ('alpha', 'queued', 1, 0, 0),
           ('beta', 'queued', 1, 1, 0)$$,
  'open_task_summary: open tasks, runnable ones (not the retrying one) and the stale claim, in one pass');
SELECT results_eq(
  $$SELECT o.task_type, o.tasks, o.runnable_tasks, o.runnable_since, o.stale_claims
      FROM workflow.open_task_summary o WHERE o.task_type IN ('alpha', 'beta') ORDER BY 1, 2$$,
  $$SELECT q.task_type, q.tasks, coalesce(r.runnable_tasks, 0), r.runnable_since,
           (SELECT count(*) FROM workflow.stale_claims s WHERE s.task_type = q.task_type AND q.status = 'claimed')
      FROM workflow.queue_depth q
      LEFT JOIN workflow.oldest_runnable_task r ON r.task_type = q.task_type AND q.status = 'queued'
     WHERE q.task_type IN ('alpha', 'beta') AND q.status IN ('queued', 'claimed') ORDER BY 1, 2$$,
  'open_task_summary agrees with queue_depth, oldest_runnable_task and stale_claims');
SELECT results_eq(
  $$SELECT stage, total_tasks, completed, failed, queued, claimed, complete, completed_last_minute
      FROM workflow.stage_progress WHERE job_id = 'mon-job'$$,
  $$VALUES (1, 4, 1::bigint, 0::bigint, 1::bigint, 2::bigint, false, 1::bigint)$$,
  'stage_progress: counts and throughput of the stage');
SELECT results_eq(
  $$SELECT stage, total_tasks, finished_tasks, unfinished_tasks, sealed, complete
      FROM workflow.stage_counters WHERE job_id = 'mon-job'$$,
  $$VALUES (1, 4, 1, 3, true, false)$$,
  'stage_counters: from the counters alone, the completed task is finished, the other three are not');
SELECT results_eq(
  $$SELECT c.finished_tasks::bigint, c.unfinished_tasks::bigint FROM workflow.stage_counters c
     WHERE c.job_id = 'mon-job'$$,
  $$SELECT p.completed, p.queued + p.claimed FROM workflow.stage_progress p WHERE p.job_id = 'mon-job'$$,
  'stage_counters agrees with the task count of stage_progress');
SELECT results_eq(
  $$SELECT completions FROM workflow.task_completions WHERE job_id = 'mon-job'$$,
  $$VALUES (1::bigint)$$, 'task_completions: one completion in this second');
SELECT results_eq(
  $$SELECT task_id, status, retry_count, last_error, next_attempt_at IS NOT NULL FROM workflow.failed_tasks
     WHERE job_id LIKE 'mon-%'$$,
  $$VALUES ('mon-job:1:2', 'queued', 1, 'try again', true)$$,
  'failed_tasks: the retrying task and its error');

SELECT workflow.fail_task('mon-job:1:3', 'mon-job', 'boom <script>', false);
SELECT results_eq(
  $$SELECT task_id, status, last_error FROM workflow.failed_tasks WHERE job_id LIKE 'mon-%' ORDER BY task_id$$,
  $$VALUES ('mon-job:1:3', 'failed', 'boom <script>')$$,
  'failed_tasks: the dead task (failing the job cancelled the retrying one)');
SELECT results_eq(
  $$SELECT job_id, status, total_tasks, complete_stages FROM workflow.job_summary WHERE job_id LIKE 'mon-%'
     ORDER BY job_id$$,
  $$VALUES ('mon-job', 'failed', 4::bigint, 0::bigint), ('mon-job-2', 'running', 1::bigint, 0::bigint)$$,
  'job_summary: a dead task failed its job; task totals from the stages');
SELECT is((SELECT count(*) FROM workflow.stage_latency WHERE job_id LIKE 'mon-%'), 0::bigint, 'stage_latency: no stage completed yet');

-- stuck_jobs: a running job whose stage is complete but not advanced past its
-- hand-over lease; another with no task change for 5 minutes.
SELECT workflow.create_job('mon', '{}', 2, 'mon-stuck') \gset
SELECT workflow.add_tasks('mon-stuck', 1, 'gamma', ARRAY['{}'::jsonb]);
SELECT count(*) FROM workflow.claim_tasks('w2', 1, ARRAY['gamma']);
SELECT workflow.complete_task_and_check_stage('mon-stuck:1:0', 'mon-stuck', 1, '{}');
SELECT is((SELECT count(*) FROM workflow.stuck_jobs WHERE job_id = 'mon-stuck'), 0::bigint,
          'stuck_jobs: not while the completer''s hand-over lease runs');
UPDATE workflow.stages SET created_at = now() - interval '3 minutes', completed_at = now() - interval '2 minutes'
 WHERE job_id = 'mon-stuck';
SELECT results_eq($$SELECT reason FROM workflow.stuck_jobs WHERE job_id = 'mon-stuck'$$,
                  $$VALUES ('stage complete, job not advanced')$$, 'stuck_jobs: complete, not advanced');
SELECT results_eq($$SELECT seconds FROM workflow.stage_latency WHERE job_id = 'mon-stuck'$$,
                  $$VALUES (60::float8)$$, 'stage_latency: the completed stage');
SELECT is((SELECT count(*) FROM workflow.stuck_jobs WHERE job_id = 'mon-job-2'), 0::bigint,
          'stuck_jobs: a fresh job is not stuck');
UPDATE workflow.tasks SET updated_at = now() - interval '6 minutes' WHERE job_id = 'mon-job-2';
UPDATE workflow.stages SET created_at = now() - interval '6 minutes', sealed_at = now() - interval '6 minutes'
 WHERE job_id = 'mon-job-2';
SELECT results_eq($$SELECT reason FROM workflow.stuck_jobs WHERE job_id = 'mon-job-2'$$,
                  $$VALUES ('no task progress')$$, 'stuck_jobs: no task changed for 5 minutes');
UPDATE workflow.tasks SET updated_at = now() - interval '1 minute' WHERE job_id = 'mon-job-2';
SELECT is((SELECT count(*) FROM workflow.stuck_jobs WHERE job_id = 'mon-job-2'), 0::bigint,
          'stuck_jobs: an old stage with a task changed in the last 5 minutes is moving');
-- A job whose tasks all wait for a later run_at (or a retry's backoff) is
-- waiting as asked: not stuck, however long; once one is due, it may be.
SELECT workflow.create_job('mon', '{}', 1, 'mon-later', run_at => now() + interval '1 day');
SELECT workflow.add_tasks('mon-later', 1, 'delta', ARRAY['{}'::jsonb, '{}'::jsonb]);
UPDATE workflow.tasks SET updated_at = now() - interval '6 minutes' WHERE job_id = 'mon-later';
UPDATE workflow.stages SET created_at = now() - interval '6 minutes', sealed_at = now() - interval '6 minutes'
 WHERE job_id = 'mon-later';
SELECT is((SELECT count(*) FROM workflow.stuck_jobs WHERE job_id = 'mon-later'), 0::bigint,
          'stuck_jobs: a job waiting for its run_at is not stuck');
UPDATE workflow.tasks SET run_after = now() - interval '6 minutes', updated_at = now() - interval '6 minutes'
 WHERE id = 'mon-later:1:0';
SELECT results_eq($$SELECT reason FROM workflow.stuck_jobs WHERE job_id = 'mon-later'$$,
                  $$VALUES ('no task progress')$$, 'stuck_jobs: but one whose due task nobody took for 5 minutes is');

-- Who may read them.
SELECT is(has_table_privilege('monitoring_reader', 'workflow.' || v, 'SELECT'), true,
          'workflow_monitor reads workflow.' || v)
  FROM unnest(ARRAY['queue_depth', 'oldest_runnable_task', 'stale_claims', 'job_summary', 'stage_progress',
                    'stage_counters', 'task_completions', 'failed_tasks', 'stage_latency', 'stuck_jobs',
                    'open_task_summary']) v;
SELECT count(*) AS all_jobs FROM workflow.jobs \gset
SET SESSION AUTHORIZATION monitoring_reader;
SELECT is((SELECT count(*) FROM workflow.job_summary), :all_jobs::bigint, 'a monitor sees every job (definer view)');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION monitoring_plain;
SELECT throws_ok('SELECT * FROM workflow.queue_depth', '42501', NULL, 'a plain role may not read queue_depth');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION monitoring_worker;
SELECT throws_ok('SELECT * FROM workflow.failed_tasks', '42501', NULL, 'a worker may not read failed_tasks');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM pg_catalog.pg_class c
            WHERE c.relnamespace = 'workflow'::regnamespace AND c.relkind = 'v'
              AND c.relname IN ('queue_depth', 'oldest_runnable_task', 'stale_claims', 'job_summary',
                                'stage_progress', 'stage_counters', 'task_completions', 'failed_tasks',
                                'stage_latency', 'stuck_jobs', 'open_task_summary')
              AND obj_description(c.oid, 'pg_class') IS NOT NULL), 11::bigint, 'every view has a comment');

SELECT * FROM finish();
ROLLBACK;
