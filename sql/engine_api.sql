-- Every engine function, including hostile input: each bad call reports
-- its SQLSTATE and message, and nothing is written (state hash unchanged).
CREATE FUNCTION pg_temp.try(call text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  r text;
BEGIN
  EXECUTE call INTO r;
  RETURN 'ok: ' || coalesce(r, 'NULL');
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || SQLERRM;
END;
$$;
-- Everything the engine stores about the eng-api-* jobs, as one hash.
CREATE FUNCTION pg_temp.engine_state() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat(
    (SELECT string_agg(j::text, '|' ORDER BY j.id) FROM workflow.jobs j WHERE j.id LIKE 'eng-api%'),
    (SELECT string_agg(s::text, '|' ORDER BY s.job_id, s.stage) FROM workflow.stages s WHERE s.job_id LIKE 'eng-api%'),
    (SELECT string_agg(l::text, '|' ORDER BY l.job_id, l.stage, l.slot) FROM workflow.stage_slots l WHERE l.job_id LIKE 'eng-api%'),
    (SELECT string_agg(t::text, '|' ORDER BY t.job_id, t.id) FROM workflow.tasks t WHERE t.job_id LIKE 'eng-api%')));
$$;

-- Setup: a 2-stage job with 3 tasks in stage 1 (2 counter slots).
SELECT workflow.create_job('api', '{"k": "v"}', 2, 'eng-api');
SELECT workflow.add_tasks('eng-api', 1, 'api.work', ARRAY['{}', '{}', '{}']::jsonb[], slot_count => 2);
SELECT workflow.create_job('api', '{}', 1, 'eng-api-cancelled');
SELECT workflow.add_tasks('eng-api-cancelled', 1, 'api.other', ARRAY['{}']::jsonb[]);
SELECT workflow.cancel_job('eng-api-cancelled', 'not needed');
SELECT pg_temp.engine_state() AS before \gset

-- create_job
SELECT call, pg_temp.try(call) FROM (VALUES
  ($$SELECT workflow.create_job(NULL, '{}', 1, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('', '{}', 1, 'eng-api-x')$$),
  ($$SELECT workflow.create_job(repeat('t', 201), '{}', 1, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', NULL, 1, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', NULL, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', 0, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', -5, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', 10001, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', 2147483647, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', 1, '')$$),
  ($$SELECT workflow.create_job('t', '{}', 1, '   ')$$),
  ($$SELECT workflow.create_job('  ', '{}', 1, 'eng-api-x')$$),
  ($$SELECT workflow.create_job('t', '{}', 1, E'eng-api\nx')$$),
  ($$SELECT workflow.create_job('t', '{}', 1, 'eng-api' || repeat('x', 300))$$),
  ($$SELECT workflow.create_job('t', '{}', 1, 'eng-api')$$)
) v(call);

-- add_tasks
SELECT call, pg_temp.try(call) FROM (VALUES
  ($$SELECT workflow.add_tasks(NULL, 1, 'w', ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api-nope', 1, 'w', ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', NULL, 'w', ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 0, 'w', ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 3, 'w', ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, NULL, ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, '', ARRAY['{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', NULL)$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY[]::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}', NULL]::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY[['{}'], ['{}']]::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', array_fill('{}'::jsonb, ARRAY[1000001]))$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}']::jsonb[], seal => NULL)$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}']::jsonb[], first_index => -1)$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}', '{}']::jsonb[], first_index => 2147483647)$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}']::jsonb[], max_retries => -1)$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}']::jsonb[], slot_count => 0)$$),
  ($$SELECT workflow.add_tasks('eng-api', 2, 'w', ARRAY['{}']::jsonb[], slot_count => 65537)$$),
  ($$SELECT workflow.add_tasks('eng-api', 1, 'w', ARRAY['{}', '{}', '{}', '{}']::jsonb[])$$),
  ($$SELECT workflow.add_tasks('eng-api', 1, 'w', ARRAY['{}']::jsonb[], first_index => 7)$$),
  ($$SELECT workflow.add_tasks('eng-api-cancelled', 1, 'w', ARRAY['{}']::jsonb[], first_index => 1)$$),
  -- re-adding existing indices of a sealed stage inserts nothing, no error
  ($$SELECT workflow.add_tasks('eng-api', 1, 'api.work', ARRAY['{}', '{}']::jsonb[], first_index => 1)$$),
  ($$SELECT workflow.add_tasks('eng-api', 1, 'api.work', ARRAY['{}']::jsonb[], seal => false)$$)
) v(call);

-- seal_stage
SELECT call, pg_temp.try(call) FROM (VALUES
  ($$SELECT workflow.seal_stage(NULL, 1)$$),
  ($$SELECT workflow.seal_stage('eng-api-nope', 1)$$),
  ($$SELECT workflow.seal_stage('eng-api', NULL)$$),
  ($$SELECT workflow.seal_stage('eng-api', 0)$$),
  ($$SELECT workflow.seal_stage('eng-api', 3)$$),
  ($$SELECT workflow.seal_stage('eng-api-cancelled', 1)$$),
  ($$SELECT workflow.seal_stage('eng-api', 1)$$)  -- already sealed, not complete
) v(call);

-- claim_tasks
SELECT call, pg_temp.try(call) FROM (VALUES
  ($$SELECT count(*) FROM workflow.claim_tasks(NULL)$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('')$$),
  ($$SELECT count(*) FROM workflow.claim_tasks(' ')$$),
  ($$SELECT count(*) FROM workflow.claim_tasks(repeat('w', 201))$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', NULL)$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 0)$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 10001)$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 1, ARRAY[]::text[])$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 1, ARRAY['a', NULL])$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 1, NULL, NULL)$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 1, NULL, '0 seconds')$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 1, NULL, '-1 hour')$$),
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 1, NULL, '8 days')$$),
  -- tasks of a cancelled job are never claimed
  ($$SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['api.other'])$$)
) v(call);

-- complete_task_and_check_stage
SELECT call, pg_temp.try(call) FROM (VALUES
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage(NULL, 'eng-api', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('', 'eng-api', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', 1, NULL, worker => '  ')$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage(repeat('x', 301), 'eng-api', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', NULL, 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', '', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', NULL, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:9', 'eng-api', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api-nope', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', 2, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', -1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('x''); DROP TABLE workflow.jobs; --', 'eng-api', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api-cancelled:1:0', 'eng-api-cancelled', 1, NULL)$$),
  ($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', 1, NULL, NULL)$$)
) v(call);

-- heartbeat_task, fail_task, cancel_job, advance_job_stage, check_job_completion, job_progress
SELECT call, pg_temp.try(call) FROM (VALUES
  ($$SELECT workflow.heartbeat_task(NULL, 'eng-api', 'w')$$),
  ($$SELECT workflow.heartbeat_task('eng-api:1:0', 'eng-api', NULL)$$),
  ($$SELECT workflow.heartbeat_task('eng-api:1:0', 'eng-api', 'w', NULL)$$),
  ($$SELECT workflow.heartbeat_task('eng-api:1:0', 'eng-api', 'w', '-1 second')$$),
  ($$SELECT workflow.heartbeat_task('eng-api:1:9', 'eng-api', 'w')$$),
  ($$SELECT workflow.heartbeat_task('eng-api:1:0', 'eng-api', 'w')$$),  -- not claimed by w: 55000
  ($$SELECT will_retry FROM workflow.fail_task(NULL, 'eng-api', 'e')$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api:1:0', 'eng-api', NULL)$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api:1:0', 'eng-api', repeat('e', 10001))$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api:1:0', 'eng-api', 'e', NULL)$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api:1:0', 'eng-api', 'e', true, '1 hour', '1 second')$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api:1:9', 'eng-api', 'e')$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api:1:0', 'eng-api-nope', 'e')$$),
  ($$SELECT will_retry FROM workflow.fail_task('eng-api-cancelled:1:0', 'eng-api-cancelled', 'e')$$),
  ($$SELECT workflow.cancel_job(NULL)$$),
  ($$SELECT workflow.cancel_job('eng-api-nope')$$),
  ($$SELECT workflow.cancel_job('eng-api', repeat('r', 10001))$$),
  ($$SELECT workflow.cancel_job('eng-api-cancelled')$$),  -- already ended
  ($$SELECT workflow.advance_job_stage(NULL, 1, 2, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api-nope', 1, 2, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', NULL, 2, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', 1, NULL, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', 1, 3, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', 1, 1, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', 0, 1, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', 3, 4, NULL)$$),
  ($$SELECT workflow.advance_job_stage('eng-api', 1, 2, NULL)$$),  -- stage 1 not complete
  ($$SELECT workflow.advance_job_stage('eng-api', 2, 3, NULL)$$),  -- stale: job is at 1
  ($$SELECT workflow.advance_job_stage('eng-api-cancelled', 1, 2, NULL)$$),
  ($$SELECT job_complete FROM workflow.check_job_completion(NULL)$$),
  ($$SELECT job_complete FROM workflow.check_job_completion('eng-api-nope')$$),
  ($$SELECT count(*) FROM workflow.job_progress(NULL)$$),
  ($$SELECT count(*) FROM workflow.job_progress('eng-api-nope')$$),
  ($$SELECT workflow.retry_delay(0)$$)
) v(call);

-- None of the above wrote anything.
SELECT pg_temp.engine_state() = :'before' AS nothing_written;

-- Quotes, unicode and SQL in ids are data, not code.
SELECT workflow.create_job('api', '{"emoji": "🙂"}', 1, $$eng-api-'żółw"; DROP TABLE workflow.jobs; --$$) AS odd_id;
SELECT workflow.add_tasks($$eng-api-'żółw"; DROP TABLE workflow.jobs; --$$, 1, 'api.odd', ARRAY['{"q": "it''s"}']::jsonb[]);
SELECT stage_complete, remaining_tasks, job_id
  FROM workflow.complete_task_and_check_stage($$eng-api-'żółw"; DROP TABLE workflow.jobs; --:1:0$$,
                                              $$eng-api-'żółw"; DROP TABLE workflow.jobs; --$$, 1, '"done"');

-- The normal paths of the same functions.
SELECT id, claimed_by FROM workflow.claim_tasks('api-worker', 2, ARRAY['api.work']) ORDER BY id;
SELECT workflow.heartbeat_task('eng-api:1:0', 'eng-api', 'api-worker', '10 minutes');
SELECT workflow.heartbeat_task('eng-api:1:0', 'eng-api', 'someone-else');  -- 55000: api-worker holds it
-- a lease that expired is reclaimed by the next claimer
UPDATE workflow.tasks SET lease_expires_at = now() - interval '1 second' WHERE id = 'eng-api:1:1' AND job_id = 'eng-api';
SELECT id, claimed_by FROM workflow.claim_tasks('api-worker-2', 5, ARRAY['api.work']) ORDER BY id;
SELECT workflow.heartbeat_task('eng-api:1:1', 'eng-api', 'api-worker');  -- 55000: reclaimed by api-worker-2
SELECT * FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', 1, NULL);
SELECT * FROM workflow.complete_task_and_check_stage('eng-api:1:0', 'eng-api', 1, '{"again": 1}');  -- repeat: no write
SELECT result_data FROM workflow.tasks WHERE id = 'eng-api:1:0' AND job_id = 'eng-api';
-- remaining_tasks not counted on request (NULL until the stage is complete)
SELECT * FROM workflow.complete_task_and_check_stage('eng-api:1:1', 'eng-api', 1, '{"r": 1}', count_remaining => false);
-- retries: exponential backoff, then the task is dead and the job fails
SELECT workflow.retry_delay(1, '2 seconds', '1 hour', false), workflow.retry_delay(3, '2 seconds', '1 hour', false),
       workflow.retry_delay(30, '2 seconds', '1 hour', false);
SELECT bool_and(d BETWEEN interval '4 seconds' AND interval '8 seconds') AS jitter_in_range
  FROM (SELECT workflow.retry_delay(3) AS d FROM generate_series(1, 100)) x;
SELECT workflow.create_job('api', '{}', 1, 'eng-api-fail');
SELECT workflow.add_tasks('eng-api-fail', 1, 'api.fail', ARRAY['{}', '{}']::jsonb[], max_retries => 1);
SELECT will_retry, retry_at > now() AS later, job_failed FROM workflow.fail_task('eng-api-fail:1:0', 'eng-api-fail', 'first');
SELECT status, retry_count, last_error, run_after > now() AS backing_off FROM workflow.tasks WHERE id = 'eng-api-fail:1:0';
SELECT count(*) AS claimable_now FROM workflow.claim_tasks('api-worker', 10, ARRAY['api.fail']) WHERE id = 'eng-api-fail:1:0';
SELECT will_retry, retry_at, job_failed FROM workflow.fail_task('eng-api-fail:1:0', 'eng-api-fail', 'second');
SELECT id, status FROM workflow.tasks WHERE job_id = 'eng-api-fail' ORDER BY id;
SELECT status, error FROM workflow.jobs WHERE id = 'eng-api-fail';
SELECT * FROM workflow.job_progress('eng-api-fail');
SELECT will_retry FROM workflow.fail_task('eng-api-fail:1:1', 'eng-api-fail', 'x', false);  -- 55000: cancelled
-- non-retryable failure kills at once
SELECT workflow.create_job('api', '{}', 1, 'eng-api-fatal');
SELECT workflow.add_tasks('eng-api-fatal', 1, 'api.fatal', ARRAY['{}']::jsonb[]);
SELECT * FROM workflow.fail_task('eng-api-fatal:1:0', 'eng-api-fatal', 'bad input', false);
-- an empty stage is closed by seal_stage alone (true: that caller advances)
SELECT workflow.create_job('api', '{}', 2, 'eng-api-empty');
SELECT workflow.seal_stage('eng-api-empty', 1), workflow.seal_stage('eng-api-empty', 1) AS repeated;
SELECT workflow.advance_job_stage('eng-api-empty', 1, 2, '{"skipped": true}');
SELECT workflow.add_tasks('eng-api-empty', 2, 'api.last', ARRAY['{}']::jsonb[], seal => false);
SELECT * FROM workflow.complete_task_and_check_stage('eng-api-empty:2:0', 'eng-api-empty', 2, NULL);
SELECT * FROM workflow.check_job_completion('eng-api-empty');  -- stage 2 not sealed yet
SELECT workflow.seal_stage('eng-api-empty', 2);
SELECT workflow.advance_job_stage('eng-api-empty', 2, 3, NULL), workflow.advance_job_stage('eng-api-empty', 2, 3, NULL);
SELECT * FROM workflow.check_job_completion('eng-api-empty');
SELECT status, stage, result_data FROM workflow.jobs WHERE id = 'eng-api-empty';
-- cancel: unfinished tasks are cancelled, the job ends once
SELECT workflow.cancel_job('eng-api', 'enough'), workflow.cancel_job('eng-api');
SELECT id, status FROM workflow.tasks WHERE job_id = 'eng-api' ORDER BY id;
SELECT * FROM workflow.job_progress('eng-api');
-- generated ids are UUIDs
SELECT workflow.create_job('api', '{}', 1) ~ '^[0-9a-f-]{36}$' AS generated_uuid;

SELECT j.id, i.check_name, i.detail FROM workflow.jobs j, LATERAL workflow.check_invariants(j.id) i
 WHERE j.id LIKE 'eng-%' AND NOT i.ok;
SELECT count(*) FILTER (WHERE ok) AS checks_ok, count(*) FILTER (WHERE NOT ok) AS checks_failed
  FROM workflow.validate();
-- every workflow function carries a comment
SELECT p.oid::regprocedure AS undocumented FROM pg_proc p
 WHERE p.pronamespace = 'workflow'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
   AND p.proname IN ('create_job', 'add_tasks', 'seal_stage', 'claim_tasks', 'heartbeat_task',
                     'complete_task_and_check_stage', 'fail_task', 'cancel_job', 'advance_job_stage',
                     'check_job_completion', 'job_progress', 'validate', 'check_invariants', 'retry_delay');
