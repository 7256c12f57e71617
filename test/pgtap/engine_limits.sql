-- pgTAP: limits agree between SQL and C++ (characters, not bytes), interval
-- caps compare the timestamps they yield, retry_delay never goes negative.
BEGIN;
SELECT plan(21);

-- A job id of 101 'é' (202 bytes; the limit is 200 characters) end to end:
-- created, fanned out, claimed, heartbeated, completed singly and as a batch.
SELECT lives_ok($$SELECT workflow.create_job('limits', '{}', 1, repeat('é', 101))$$, 'create_job accepts 101 é');
SELECT lives_ok($$SELECT workflow.add_tasks(repeat('é', 101), 1, 'tap.lim', array_fill('{}'::jsonb, ARRAY[3]))$$,
                'add_tasks too');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('lim-w', 3, ARRAY['tap.lim'])), 3::bigint, 'claim_tasks too');
SELECT ok(workflow.heartbeat_task(repeat('é', 101) || ':1:0', repeat('é', 101), 'lim-w'), 'heartbeat_task too');
SELECT results_eq($$SELECT stage_complete, remaining_tasks, job_id = repeat('é', 101)
                      FROM workflow.complete_task_and_check_stage(repeat('é', 101) || ':1:0', repeat('é', 101), 1, '{}')$$,
                  $$VALUES (false, 2, true)$$, 'complete_task_and_check_stage completes it');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY[repeat('é', 101), repeat('é', 101)],
                      ARRAY[repeat('é', 101) || ':1:1', repeat('é', 101) || ':1:2'], ARRAY[1, 1])$$,
                  $$VALUES (false), (true)$$, 'complete_tasks completes the others and the stage');
SELECT ok((SELECT job_complete FROM workflow.check_job_completion(repeat('é', 101))), 'and the job completes');

-- The longest job id (200 'é', 400 bytes) gives a 204-character task id
-- (408 bytes, over the 300 limit if it counted bytes).
SELECT workflow.create_job('limits', '{}', 1, repeat('é', 200));
SELECT workflow.add_tasks(repeat('é', 200), 1, 'tap.lim2', ARRAY['{}']::jsonb[]);
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage(repeat('é', 200) || ':1:0', repeat('é', 200), 1, NULL)$$,
                  $$VALUES (true)$$, 'a 200-character job id and its 204-character task id complete');
-- Over the limit: the same refusal, in characters, from SQL and from C++.
SELECT throws_ok($$SELECT workflow.create_job('limits', '{}', 1, repeat('é', 201))$$, '22023',
                 'job_id is too long (201 characters, at most 200)', 'create_job refuses 201 é');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('t', repeat('é', 201), 1, NULL)$$, '22023',
                 $$job_id is too long (201 characters, at most 200): '$$ || repeat('é', 60) || $$'...$$,
                 'complete_task_and_check_stage refuses 201 é, counting characters');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['j'], ARRAY[repeat('ü', 301)], ARRAY[1])$$, '22023', NULL,
                 'complete_tasks refuses a 301-character task id');

-- Interval caps compare timestamps: '12000 mons -359993 days' equals
-- '7 days' field by field (30-day months) but is about 14 years of lease.
SELECT workflow.create_job('limits', '{}', 1, 'lim-lease');
SELECT workflow.add_tasks('lim-lease', 1, 'tap.lease', ARRAY['{}']::jsonb[]);
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('lim-w', 1, ARRAY['tap.lease'], '12000 mons -359993 days')$$, '22023', NULL,
                 'claim_tasks refuses a 14-year lease written as 12000 mons -359993 days');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('lim-w', 1, ARRAY['tap.lease'], '1000000 years')$$, '22023', NULL,
                 'a lease beyond any timestamp: 22023, not an overflow');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('lim-w', 1, ARRAY['tap.lease'], '1 mon -1 day')$$, '22023', NULL,
                 'a month minus a day is more than 7 days');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('lim-w', 1, ARRAY['tap.lease'], '7 days')), 1::bigint,
          '7 days is accepted');
SELECT throws_ok($$SELECT workflow.heartbeat_task('lim-lease:1:0', 'lim-lease', 'lim-w', '12000 mons -359993 days')$$, '22023', NULL,
                 'heartbeat_task refuses it too');
SELECT ok(workflow.heartbeat_task('lim-lease:1:0', 'lim-lease', 'lim-w', '6 days 23:59:59'), 'just under 7 days is accepted');
SELECT is((SELECT lease_expires_at FROM workflow.tasks WHERE id = 'lim-lease:1:0'), now() + interval '6 days 23:59:59',
          'and sets the lease it was given');

-- retry_delay with huge caps: clamped to 100 years, never negative.
SELECT is(workflow.retry_delay(100, '1 hour', '1000000 years', false), interval '36525 days',
          'a huge cap is clamped to 100 years');
SELECT ok((SELECT bool_and(d BETWEEN interval '18262 days' AND interval '36525 days')
             FROM (SELECT workflow.retry_delay(500, '1000 years', '100000000 years') AS d FROM generate_series(1, 20)) x),
          'jittered huge delays stay within [50, 100] years');
SELECT results_eq($$SELECT will_retry, retry_at > now() + interval '49 years'
                      FROM workflow.fail_task('lim-lease:1:0', 'lim-lease', 'later', true, '1000000 years', '1000000 years', 'lim-w')$$,
                  $$VALUES (true, true)$$, 'fail_task with a huge backoff queues the retry decades ahead');

SELECT * FROM finish();
ROLLBACK;
