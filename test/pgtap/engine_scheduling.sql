-- pgTAP: run_at for jobs and tasks, priorities, the job-level dedupe key
-- (1.4), and their hostile input. now() is fixed inside the test's
-- transaction: time passing is written into run_after.
BEGIN;
SELECT plan(31);

SELECT has_function('workflow', 'create_job', ARRAY['text', 'jsonb', 'integer', 'text', 'timestamp with time zone', 'text']);
SELECT has_index('workflow', 'tasks', 'tasks_claimable_idx', 'the claim index');

-- A job created for later: its tasks wait for run_at.
SELECT workflow.create_job('sched', '{}', 1, 'later-1', run_at => now() + interval '1 hour');
SELECT is((SELECT run_at FROM workflow.jobs WHERE id = 'later-1'), now() + interval '1 hour', 'run_at stored');
SELECT workflow.add_tasks('later-1', 1, 'tap.sched', array_fill('{}'::jsonb, ARRAY[2]));
SELECT is((SELECT min(run_after) FROM workflow.tasks WHERE job_id = 'later-1'), now() + interval '1 hour',
          'its tasks run after the job''s run_at');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.sched'])), 0::bigint,
          'nothing claimable before run_at');
UPDATE workflow.tasks SET run_after = now() - interval '1 second' WHERE job_id = 'later-1';
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w', 10, ARRAY['tap.sched'])), 2::bigint,
          'claimable once run_at has come');

-- A task-level run_at, later than the job's.
SELECT workflow.create_job('sched', '{}', 1, 'later-2');
SELECT workflow.add_tasks('later-2', 1, 'tap.sched2', ARRAY['{}']::jsonb[], seal => false);
SELECT workflow.add_tasks('later-2', 1, 'tap.sched2', ARRAY['{}']::jsonb[], first_index => 1,
                          run_at => now() + interval '1 day');
SELECT is((SELECT string_agg(id, ',') FROM workflow.claim_tasks('w', 10, ARRAY['tap.sched2'])), 'later-2:1:0',
          'only the task due now is claimed');
-- A run_at in the past is now.
SELECT workflow.create_job('sched', '{}', 1, 'later-3', run_at => '2000-01-01');
SELECT workflow.add_tasks('later-3', 1, 'tap.sched3', ARRAY['{}']::jsonb[]);
SELECT is((SELECT run_after FROM workflow.tasks WHERE job_id = 'later-3'), now(), 'a past run_at means now');

-- Priorities: higher first, then oldest; a priority with nothing due does
-- not hide lower ones.
SELECT workflow.create_job('prio', '{}', 1, 'prio-1');
SELECT workflow.add_tasks('prio-1', 1, 'tap.prio', array_fill('{}'::jsonb, ARRAY[3]), seal => false);
SELECT workflow.add_tasks('prio-1', 1, 'tap.prio', array_fill('{}'::jsonb, ARRAY[2]), seal => false,
                          first_index => 3, priority => 10);
SELECT workflow.add_tasks('prio-1', 1, 'tap.prio', array_fill('{}'::jsonb, ARRAY[2]), seal => false,
                          first_index => 5, priority => -5);
SELECT workflow.add_tasks('prio-1', 1, 'tap.prio', array_fill('{}'::jsonb, ARRAY[2]), first_index => 7,
                          priority => 50, run_at => now() + interval '1 hour');
UPDATE workflow.tasks SET run_after = run_after - interval '1 minute' * task_index
 WHERE job_id = 'prio-1' AND priority = 0;   -- index 2 oldest
SELECT is((SELECT array_agg(id ORDER BY id) FROM workflow.claim_tasks('w', 2, ARRAY['tap.prio'])),
          ARRAY['prio-1:1:3', 'prio-1:1:4'], 'priority 10 first (priority 50 is not due)');
SELECT is((SELECT array_agg(id ORDER BY id) FROM workflow.claim_tasks('w', 2, ARRAY['tap.prio'])),
          ARRAY['prio-1:1:1', 'prio-1:1:2'], 'then priority 0, oldest first');
SELECT is((SELECT array_agg(id ORDER BY id) FROM workflow.claim_tasks('w', 3, ARRAY['tap.prio'])),
          ARRAY['prio-1:1:0', 'prio-1:1:5', 'prio-1:1:6'], 'then the rest of 0, then -5');
SELECT is((SELECT priority FROM workflow.tasks WHERE id = 'prio-1:1:7'), 50, 'priority stored');

-- Dedupe key: one job per key and session user.
SELECT is(workflow.create_job('dedupe', '{"n": 1}', 1, dedupe_key => 'invoice-42'),
          workflow.create_job('dedupe', '{"n": 2}', 1, dedupe_key => 'invoice-42'),
          'a second submit with the key returns the first job');
SELECT is((SELECT parameters FROM workflow.jobs WHERE dedupe_key = 'invoice-42'), '{"n": 1}'::jsonb,
          'and writes nothing');
SELECT is((SELECT count(*) FROM workflow.jobs WHERE dedupe_key = 'invoice-42'), 1::bigint, 'one job');
SELECT isnt(workflow.create_job('dedupe', '{}', 1, dedupe_key => 'invoice-43'),
            workflow.create_job('dedupe', '{}', 1, dedupe_key => 'invoice-42'), 'another key, another job');
-- 1.7: ids of the dedupe form are the keys' only (another role could take
-- the id a key derives); a derived id that is not this role's job is 23505.
SELECT throws_ok($$SELECT workflow.create_job('dedupe', '{}', 1, 'dedupe-' || md5('someone' || chr(31) || 'k'))$$,
                 '22023', NULL, 'a job_id starting with dedupe- is reserved: 22023');
UPDATE workflow.jobs SET owner = 'nobody_else' WHERE dedupe_key = 'invoice-42';
SELECT throws_ok($$SELECT workflow.create_job('dedupe', '{"n": 3}', 1, dedupe_key => 'invoice-42')$$,
                 '23505', NULL, 'the derived id is another role''s job (re-owned): 23505');
SELECT is((SELECT count(*) FROM workflow.jobs WHERE dedupe_key = 'invoice-42'), 1::bigint,
          'and nothing was written');
UPDATE workflow.jobs SET owner = session_user WHERE dedupe_key = 'invoice-42';

-- Hostile input: errors, nothing written.
CREATE TEMP TABLE before AS SELECT count(*) AS jobs, (SELECT count(*) FROM workflow.tasks) AS tasks FROM workflow.jobs;
SELECT throws_ok($$SELECT workflow.create_job('x', '{}', 1, 'both', dedupe_key => 'k')$$, '22023',
                 'give job_id or dedupe_key, not both', 'job_id and dedupe_key');
SELECT throws_ok($$SELECT workflow.create_job('x', '{}', 1, dedupe_key => '')$$, '22023', NULL, 'empty dedupe_key');
SELECT throws_ok($$SELECT workflow.create_job('x', '{}', 1, dedupe_key => repeat('k', 201))$$, '22023', NULL,
                 'dedupe_key too long');
SELECT throws_ok($$SELECT workflow.create_job('x', '{}', 1, 'inf', run_at => 'infinity')$$, '22023',
                 'run_at must be a finite time (got infinity)', 'an infinite run_at');
SELECT workflow.create_job('sched', '{}', 1, 'hostile-1');
SELECT throws_ok($$SELECT workflow.add_tasks('hostile-1', 1, 't', ARRAY['{}']::jsonb[], priority => NULL)$$, '22004',
                 'priority must not be NULL', 'NULL priority');
SELECT throws_ok($$SELECT workflow.add_tasks('hostile-1', 1, 't', ARRAY['{}']::jsonb[], run_at => '-infinity')$$,
                 '22023', NULL, 'an infinite task run_at');
SELECT throws_ok($$SELECT workflow.add_tasks('hostile-1', 1, 't', ARRAY['{}']::jsonb[], timeout => '-1 second')$$,
                 '22023', NULL, 'a negative timeout');
SELECT throws_ok($$SELECT workflow.add_tasks('hostile-1', 1, 't', ARRAY['{}']::jsonb[], timeout => '8 days')$$,
                 '22023', NULL, 'a timeout over 7 days');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'hostile-1'), 0::bigint, 'no task written');
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants()), 'invariants hold');

-- A queued task waiting for its run_at that fails (an unfenced fail_task) is
-- retried after the backoff and not before its run_at.
SELECT workflow.create_job('sched', '{}', 1, 'later-fail', run_at => now() + interval '1 hour');
SELECT workflow.add_tasks('later-fail', 1, 'tap.laterfail', ARRAY['{}']::jsonb[]);
SELECT is((SELECT retry_at FROM workflow.fail_task('later-fail:1:0', 'later-fail', 'not yet', backoff_base => '1 second',
                                                   backoff_cap => '1 second')),
          now() + interval '1 hour', 'the retry is due at the run_at, not after the 1 second backoff');
SELECT is((SELECT run_after FROM workflow.tasks WHERE id = 'later-fail:1:0'), now() + interval '1 hour',
          'and the task waits for it');

SELECT * FROM finish();
ROLLBACK;
