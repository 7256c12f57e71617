-- pgTAP: fencing. Worker A's lease expires, worker B reclaims the task: A's
-- complete_task_and_check_stage, complete_tasks, heartbeat_task and fail_task
-- (worker => 'A') get 55000 and write nothing; B's result wins. A worker's
-- repeat of its own call after a lost reply is answered the same and writes
-- nothing. Without worker the seed's unfenced behaviour is kept.
BEGIN;
SELECT plan(35);

SELECT has_function('workflow', 'complete_task_and_check_stage',
                    ARRAY['text', 'text', 'integer', 'jsonb', 'boolean', 'text']);
SELECT has_function('workflow', 'complete_tasks', ARRAY['text[]', 'text[]', 'integer[]', 'jsonb[]', 'text']);

-- fence-1: 3 tasks in one stage (3 slots). A claims them all.
SELECT workflow.create_job('fence', '{}', 1, 'fence-1');
SELECT workflow.add_tasks('fence-1', 1, 'tap.fence', array_fill('{}'::jsonb, ARRAY[3]), slot_count => 3);
SELECT is((SELECT count(*) FROM workflow.claim_tasks('A', 3, ARRAY['tap.fence'])), 3::bigint, 'A claims the 3 tasks');

-- A's lease on fence-1:1:0 expires (now() is fixed inside the test's
-- transaction, so the expiry is written), B reclaims it.
UPDATE workflow.tasks SET lease_expires_at = now() - interval '1 second' WHERE id = 'fence-1:1:0';
SELECT is((SELECT string_agg(id, ',') FROM workflow.claim_tasks('B', 3, ARRAY['tap.fence'])), 'fence-1:1:0',
          'B reclaims the expired task');

-- Everything A does on it now is refused and writes nothing.
CREATE TEMP TABLE snap AS
  SELECT 'task ' || id AS k, ctid::text AS x FROM workflow.tasks WHERE job_id = 'fence-1'
  UNION ALL SELECT 'slot ' || slot, ctid::text FROM workflow.stage_slots WHERE job_id = 'fence-1'
  UNION ALL SELECT 'stage ' || stage, ctid::text FROM workflow.stages WHERE job_id = 'fence-1';
CREATE TEMP VIEW now_rows AS
  SELECT 'task ' || id AS k, ctid::text AS x FROM workflow.tasks WHERE job_id = 'fence-1'
  UNION ALL SELECT 'slot ' || slot, ctid::text FROM workflow.stage_slots WHERE job_id = 'fence-1'
  UNION ALL SELECT 'stage ' || stage, ctid::text FROM workflow.stages WHERE job_id = 'fence-1';

SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('fence-1:1:0', 'fence-1', 1, '{"by": "A"}', worker => 'A')$$,
                 '55000', $$task 'fence-1:1:0' is claimed by worker 'B', not by worker 'A' (its lease expired and the task was claimed again)$$,
                 'A''s complete of the reclaimed task -> 55000');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('fence-1:1:0', 'fence-1', 1, '{"by": "A"}', false, 'A')$$,
                 '55000', NULL, 'also with count_remaining => false');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['fence-1', 'fence-1'], ARRAY['fence-1:1:1', 'fence-1:1:0'], ARRAY[1, 1],
                     ARRAY['{"by": "A"}', '{"by": "A"}']::jsonb[], worker => 'A')$$,
                 '55000', $$task_ids[2] 'fence-1:1:0' is claimed by worker 'B', not by worker 'A' (its lease expired and the task was claimed again) (nothing of the batch was written)$$,
                 'A''s batch with the reclaimed task -> 55000 as a whole');
SELECT throws_ok($$SELECT workflow.heartbeat_task('fence-1:1:0', 'fence-1', 'A')$$, '55000', NULL,
                 'A''s heartbeat of the reclaimed task -> 55000');
SELECT throws_ok($$SELECT * FROM workflow.fail_task('fence-1:1:0', 'fence-1', 'A gives up', worker => 'A')$$, '55000', NULL,
                 'A''s fail of the reclaimed task -> 55000');
SELECT set_eq('SELECT k, x FROM now_rows', 'SELECT k, x FROM snap',
              'none of A''s refused calls wrote a row (every ctid unchanged, fence-1:1:1 of the batch too)');
SELECT is((SELECT status || ' ' || claimed_by || ' ' || retry_count FROM workflow.tasks WHERE id = 'fence-1:1:0'),
          'claimed B 0', 'the task is still B''s claim, no attempt counted');

-- B completes it: B's result wins. A's complete after that is refused too.
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('fence-1:1:0', 'fence-1', 1, '{"by": "B"}', worker => 'B')$$,
                  $$VALUES (false, 2)$$, 'B completes its claim');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('fence-1:1:0', 'fence-1', 1, '{"by": "A"}', worker => 'A')$$,
                 '55000', $$task 'fence-1:1:0' was completed by worker 'B', not by worker 'A'$$,
                 'A''s complete of the task B completed -> 55000');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['fence-1'], ARRAY['fence-1:1:0'], ARRAY[1], worker => 'A')$$,
                 '55000', NULL, 'A''s batch of it -> 55000');
SELECT throws_ok($$SELECT workflow.heartbeat_task('fence-1:1:0', 'fence-1', 'A')$$, '55000', NULL,
                 'A''s heartbeat of the task B completed -> 55000');
SELECT throws_ok($$SELECT * FROM workflow.fail_task('fence-1:1:0', 'fence-1', 'late', worker => 'A')$$, '55000', NULL,
                 'A''s fail of the task B completed -> 55000');
SELECT is((SELECT result_data->>'by' FROM workflow.tasks WHERE id = 'fence-1:1:0'), 'B', 'B''s result wins');
SELECT ok(NOT workflow.heartbeat_task('fence-1:1:0', 'fence-1', 'B'),
          'B''s heartbeat after its own completion: false (stop), not an error');

-- B repeats its completion (lost reply): the same answer, nothing written.
DELETE FROM snap;
INSERT INTO snap SELECT k, x FROM now_rows;
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('fence-1:1:0', 'fence-1', 1, '{"by": "B again"}', worker => 'B')$$,
                  $$VALUES (false)$$, 'B''s repeat answers the same');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY['fence-1'], ARRAY['fence-1:1:0'], ARRAY[1], worker => 'B')$$,
                  $$VALUES (false)$$, 'so does B''s repeat as a batch');

-- A still holds fence-1:1:1 and fence-1:1:2 (its lease on them did not
-- expire): its batch completes the stage; its repeat is told the same.
SELECT results_eq($$SELECT task_id, stage_complete FROM workflow.complete_tasks(ARRAY['fence-1', 'fence-1'],
                      ARRAY['fence-1:1:1', 'fence-1:1:2'], ARRAY[1, 1], ARRAY['{"by": "A"}', '{"by": "A"}']::jsonb[], worker => 'A')$$,
                  $$VALUES ('fence-1:1:1', false), ('fence-1:1:2', true)$$, 'A''s batch of its own claims completes the stage');
DELETE FROM snap;
INSERT INTO snap SELECT k, x FROM now_rows;
SELECT results_eq($$SELECT task_id, stage_complete FROM workflow.complete_tasks(ARRAY['fence-1', 'fence-1'],
                      ARRAY['fence-1:1:1', 'fence-1:1:2'], ARRAY[1, 1], worker => 'A')$$,
                  $$VALUES ('fence-1:1:1', false), ('fence-1:1:2', true)$$, 'A''s repeated batch: the same answers');
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('fence-1:1:2', 'fence-1', 1, NULL, worker => 'A')$$,
                  $$VALUES (true, 0)$$, 'A''s repeat as a single call: still the stage''s completer');
SELECT set_eq('SELECT k, x FROM now_rows', 'SELECT k, x FROM snap', 'the repeats wrote no row');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'fence-1' AND result_data->>'by' = 'A'), 2::bigint,
          'A''s results stored for A''s tasks only');

-- Queued tasks: a fenced call needs a claim; an unfenced call completes them.
SELECT workflow.create_job('fence', '{}', 1, 'fence-2');
SELECT workflow.add_tasks('fence-2', 1, 'tap.fence2', array_fill('{}'::jsonb, ARRAY[3]), max_retries => 2);
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('fence-2:1:0', 'fence-2', 1, NULL, worker => 'A')$$,
                 '55000', $$task 'fence-2:1:0' is queued, not claimed by worker 'A' (claim it first; a lease that expired may have been lost)$$,
                 'a fenced complete of a task never claimed -> 55000');
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('fence-2:1:0', 'fence-2', 1, NULL)$$,
                  $$VALUES (false, 2)$$, 'without worker: unfenced, as before');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('fence-2:1:1', 'fence-2', 1, NULL, worker => '')$$,
                 '22023', 'worker must not be empty', 'an empty worker -> 22023');

-- fail_task: A fails its claim (queued again, claimed_by kept = A); A's
-- repeat answers the same and counts nothing; once B claims the retry, A's
-- repeat is refused.
UPDATE workflow.tasks SET run_after = now() - interval '1 hour' WHERE id = 'fence-2:1:1';
SELECT is((SELECT string_agg(id, ',') FROM workflow.claim_tasks('A', 1, ARRAY['tap.fence2'])), 'fence-2:1:1', 'A claims fence-2:1:1');
SELECT results_eq($$SELECT will_retry, job_failed FROM workflow.fail_task('fence-2:1:1', 'fence-2', 'flaky', worker => 'A')$$,
                  $$VALUES (true, false)$$, 'A fails it: queued again');
SELECT results_eq($$SELECT will_retry, retry_at = (SELECT run_after FROM workflow.tasks WHERE id = 'fence-2:1:1'), job_failed
                      FROM workflow.fail_task('fence-2:1:1', 'fence-2', 'flaky', worker => 'A')$$,
                  $$VALUES (true, true, false)$$, 'A''s repeat answers the same');
SELECT is((SELECT retry_count || ' ' || claimed_by || ' ' || status FROM workflow.tasks WHERE id = 'fence-2:1:1'), '1 A queued',
          'one attempt counted; claimed_by names who failed it');
UPDATE workflow.tasks SET run_after = now() - interval '2 hours' WHERE id = 'fence-2:1:1';
SELECT is((SELECT string_agg(id, ',') FROM workflow.claim_tasks('B', 1, ARRAY['tap.fence2'])), 'fence-2:1:1', 'B claims the retry');
SELECT throws_ok($$SELECT * FROM workflow.fail_task('fence-2:1:1', 'fence-2', 'flaky', worker => 'A')$$, '55000', NULL,
                 'A''s late repeat after B claimed the retry -> 55000');

SELECT is((SELECT count(*) FROM workflow.jobs j, workflow.check_invariants(j.id) i
            WHERE j.id LIKE 'fence-%' AND NOT i.ok), 0::bigint, 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
