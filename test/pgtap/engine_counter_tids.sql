-- pgTAP: a single completion's exact count, read through the counters'
-- remembered locations (1.6, src/extension/engine_counter_tids.hpp), answers
-- what a scan of the counters answers: call after call, after every counter
-- moved (key updates are never HOT: new line pointers and index entries),
-- after one was deleted and inserted again, and for a stage whose counters
-- did not all exist yet; and it still takes each unit from the task's own
-- counter first.
BEGIN;
SELECT plan(14);

CREATE FUNCTION pg_temp.complete(job text, i int) RETURNS int LANGUAGE sql AS
  $$SELECT remaining_tasks FROM workflow.complete_task_and_check_stage(job || ':1:' || i, job, 1, NULL)$$;
CREATE FUNCTION pg_temp.counters(job text) RETURNS TABLE(slot int, remaining int) LANGUAGE sql AS
  $$SELECT slot, remaining FROM workflow.stage_slots WHERE job_id = job AND stage = 1 ORDER BY slot$$;

-- 40 tasks in 8 counters; the first call scans the counters and remembers them.
SELECT workflow.create_job('tids', '{}', 1, 'tid-1');
SELECT workflow.add_tasks('tid-1', 1, 'tap.t', array_fill('{}'::jsonb, ARRAY[40]), slot_count => 8);
SELECT results_eq($$SELECT pg_temp.complete('tid-1', i) FROM generate_series(0, 9) i$$,
                  $$SELECT 39 - i FROM generate_series(0, 9) i$$,
                  'ten completions in a row each answer the unfinished tasks left');
SELECT results_eq($$SELECT * FROM pg_temp.counters('tid-1')$$,
                  $$VALUES (0, 3), (1, 3), (2, 4), (3, 4), (4, 4), (5, 4), (6, 4), (7, 4)$$,
                  'each took its unit from its own counter (task i: slot i % 8)');

-- Every counter moves to a new line pointer, twice.
UPDATE workflow.stage_slots SET slot = slot + 100 WHERE job_id = 'tid-1';
UPDATE workflow.stage_slots SET slot = slot - 100 WHERE job_id = 'tid-1';
SELECT results_eq($$SELECT pg_temp.complete('tid-1', i) FROM generate_series(10, 14) i$$,
                  $$SELECT 39 - i FROM generate_series(10, 14) i$$,
                  'after every counter moved, the answers are still the tasks left');
SELECT results_eq($$SELECT * FROM pg_temp.counters('tid-1')$$,
                  $$VALUES (0, 3), (1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (6, 3), (7, 4)$$,
                  'and each unit still came from the task''s own counter');

-- One counter deleted and inserted again, holding 5 more units than before
-- (put back below): the next answers count them.
DELETE FROM workflow.stage_slots WHERE job_id = 'tid-1' AND slot = 3;
INSERT INTO workflow.stage_slots (job_id, stage, slot, remaining) VALUES ('tid-1', 1, 3, 3 + 5);
SELECT results_eq($$SELECT pg_temp.complete('tid-1', i) FROM generate_series(15, 16) i$$,
                  $$VALUES (29), (28)$$,
                  'a counter inserted again at another place is read with its new value');
UPDATE workflow.stage_slots SET remaining = remaining - 5 WHERE job_id = 'tid-1' AND slot = 3;
SELECT results_eq($$SELECT pg_temp.complete('tid-1', 17)$$, $$VALUES (22)$$,
                  'and after it changed again (the 5 units taken back), the answer follows');

-- Counters of another job with the same slots and stage are not counted.
SELECT workflow.create_job('tids', '{}', 1, 'tid-3');
SELECT workflow.add_tasks('tid-3', 1, 'tap.t', array_fill('{}'::jsonb, ARRAY[16]), slot_count => 8);
SELECT results_eq($$SELECT pg_temp.complete('tid-3', 0) UNION ALL SELECT pg_temp.complete('tid-1', 18)
                    UNION ALL SELECT pg_temp.complete('tid-3', 1) UNION ALL SELECT pg_temp.complete('tid-1', 19)$$,
                  $$VALUES (15), (21), (14), (20)$$,
                  'two stages completed in turn: each answer counts its own stage only');

-- A stage whose counters do not all exist yet (3 tasks, 8 slots), then do.
SELECT workflow.create_job('tids', '{}', 1, 'tid-2');
SELECT workflow.add_tasks('tid-2', 1, 'tap.t', array_fill('{}'::jsonb, ARRAY[3]), seal => false, slot_count => 8);
SELECT results_eq($$SELECT pg_temp.complete('tid-2', i) FROM generate_series(0, 1) i$$,
                  $$VALUES (2), (1)$$, 'a stage with 3 of its 8 counters: the answers are the tasks left');
-- Tasks 3 .. 7 go to the 5 counters that were missing; the 3 others are untouched.
SELECT workflow.add_tasks('tid-2', 1, 'tap.t', array_fill('{}'::jsonb, ARRAY[5]), first_index => 3, slot_count => 8);
SELECT results_eq($$SELECT pg_temp.complete('tid-2', i) FROM generate_series(2, 6) i$$,
                  $$VALUES (5), (4), (3), (2), (1)$$,
                  'once more tasks fill every counter, the answers count them');

-- The rest of tid-1, one by one: the answers go down to the stage's completion.
SELECT results_eq($$SELECT pg_temp.complete('tid-1', i) FROM generate_series(20, 38) i$$,
                  $$SELECT 39 - i FROM generate_series(20, 38) i$$,
                  'every later completion answers the tasks left');
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('tid-1:1:39', 'tid-1', 1, NULL)$$,
                  $$VALUES (true, 0)$$, 'the last one completes the stage');
SELECT is((SELECT sum(remaining) FROM workflow.stage_slots WHERE job_id = 'tid-1'), 0::bigint,
          'every counter of the stage is at 0');
SELECT is((SELECT string_agg(check_name, ', ') FROM workflow.check_invariants('tid-1') WHERE NOT ok), NULL,
          'check_invariants is clean');
SELECT is((SELECT string_agg(check_name, ', ') FROM workflow.check_invariants('tid-2') WHERE NOT ok), NULL,
          'check_invariants is clean for the stage that grew');

SELECT * FROM finish();
ROLLBACK;
