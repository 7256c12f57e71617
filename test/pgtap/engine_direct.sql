-- pgTAP: the fan-in's row updates below the executor (1.2,
-- src/extension/engine_direct.cpp) do what the SQL they replace does: a
-- completion takes one unit from the stage's counters (its own slot first),
-- CHECK constraints added to workflow.tasks are enforced and a violation
-- writes nothing, an index created later gets its entries, the per-backend
-- cache follows ALTER TABLE and DROP, and a table with a trigger (here on
-- stage_slots) is served by the SQL path with the same answers, the trigger
-- seeing every counter write.
BEGIN;
SELECT plan(24);

-- The counters' pages are pruned early (a completion reads all of its stage's counters).
SELECT is((SELECT reloptions FROM pg_class WHERE oid = 'workflow.stage_slots'::regclass), '{fillfactor=10}'::text[],
          'stage_slots is created with fillfactor 10');

-- Four tasks in two counters: slot 0 holds tasks 0 and 2, slot 1 tasks 1 and 3.
SELECT workflow.create_job('direct', '{}', 1, 'dir-1');
SELECT workflow.add_tasks('dir-1', 1, 'tap.d', array_fill('{}'::jsonb, ARRAY[4]), slot_count => 2);
SELECT results_eq($$SELECT slot, remaining FROM workflow.stage_slots WHERE job_id = 'dir-1' ORDER BY slot$$,
                  $$VALUES (0, 2), (1, 2)$$, 'add_tasks counts each task in slot task_index % slot_count');

SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('dir-1:1:1', 'dir-1', 1, '{"r": 1}')$$,
                  $$VALUES (false, 3)$$, 'a completion answers the unfinished tasks left');
SELECT results_eq($$SELECT slot, remaining FROM workflow.stage_slots WHERE job_id = 'dir-1' ORDER BY slot$$,
                  $$VALUES (0, 2), (1, 1)$$, 'a completion nobody competes with takes its unit from its own slot');
SELECT results_eq($$SELECT status, result_data, completed_at = now(), updated_at = now(), lease_expires_at IS NULL
                      FROM workflow.tasks WHERE id = 'dir-1:1:1'$$,
                  $$VALUES ('completed', '{"r": 1}'::jsonb, true, true, true)$$,
                  'the task row is written as the UPDATE writes it (status, result, times, lease)');

-- A read-only transaction cannot complete (25006, as UPDATE), and nothing is written.
SAVEPOINT read_only;
SET LOCAL transaction_read_only = on;
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('dir-1:1:0', 'dir-1', 1, NULL)$$,
                 '25006', 'cannot execute UPDATE in a read-only transaction',
                 'a read-only transaction cannot complete a task (25006)');
ROLLBACK TO SAVEPOINT read_only;
SELECT is((SELECT status FROM workflow.tasks WHERE id = 'dir-1:1:0'), 'queued', 'the task is still queued');

-- A CHECK constraint added to the table is enforced (the cache follows ALTER TABLE).
ALTER TABLE workflow.tasks ADD CONSTRAINT tap_no_forbidden CHECK (result_data IS DISTINCT FROM '{"forbidden": true}');
CREATE TEMP TABLE before_refused AS
  SELECT 'task ' || id AS k, ctid::text AS x FROM workflow.tasks WHERE job_id = 'dir-1'
  UNION ALL SELECT 'slot ' || slot, ctid::text FROM workflow.stage_slots WHERE job_id = 'dir-1';
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('dir-1:1:0', 'dir-1', 1, '{"forbidden": true}')$$,
                 '23514', 'new row for relation "tasks" violates check constraint "tap_no_forbidden"',
                 'a CHECK constraint added later refuses the completion (23514, named)');
SELECT set_eq($$SELECT 'task ' || id AS k, ctid::text AS x FROM workflow.tasks WHERE job_id = 'dir-1'
                UNION ALL SELECT 'slot ' || slot, ctid::text FROM workflow.stage_slots WHERE job_id = 'dir-1'$$,
              'SELECT k, x FROM before_refused', 'the refused completion wrote nothing (every ctid unchanged)');
ALTER TABLE workflow.tasks DROP CONSTRAINT tap_no_forbidden;
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('dir-1:1:0', 'dir-1', 1, '{"forbidden": true}')$$,
                  $$VALUES (false)$$, 'once the constraint is dropped the same completion goes through');

-- A CHECK with a whole-row reference is served by the SQL path (a kept
-- state of it would outlive what it caches), and still enforced.
SELECT workflow.create_job('direct', '{}', 1, 'dir-3');
SELECT workflow.add_tasks('dir-3', 1, 'tap.d', array_fill('{}'::jsonb, ARRAY[2]), slot_count => 2);
ALTER TABLE workflow.tasks ADD CONSTRAINT tap_row_size CHECK (octet_length(tasks::text) < 100000);
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('dir-3:1:0', 'dir-3', 1, '{"r": 0}')$$,
                  $$VALUES (false)$$, 'a completion with a whole-row CHECK on the table');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('dir-3:1:1', 'dir-3', 1, '{"r": 1}')$$,
                  $$VALUES (true)$$, 'a second one in the same session (no kept state of the whole-row CHECK)');
SELECT workflow.create_job('direct', '{}', 1, 'dir-4');
SELECT workflow.add_tasks('dir-4', 1, 'tap.d', array_fill('{}'::jsonb, ARRAY[1]));
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['dir-4'], ARRAY['dir-4:1:0'], ARRAY[1],
                      ARRAY[jsonb_build_object('big', repeat('x', 200000))])$$,
                 '23514', NULL, 'the whole-row CHECK refuses a row it does not allow');
ALTER TABLE workflow.tasks DROP CONSTRAINT tap_row_size;

-- An index created later gets the new version's entry (non-HOT update).
CREATE INDEX tap_tasks_result_idx ON workflow.tasks ((result_data ->> 'r')) WHERE status = 'completed';
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('dir-1:1:3', 'dir-1', 1, '{"r": "three"}')$$,
                  $$VALUES (false, 1)$$, 'a completion after CREATE INDEX');
CREATE FUNCTION pg_temp.plan_of(query text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
  RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || query;
END $$;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT ok(EXISTS (SELECT FROM pg_temp.plan_of($$SELECT id FROM workflow.tasks WHERE status = 'completed' AND result_data ->> 'r' = 'three'$$) p
                   WHERE p LIKE '%Index Scan using tap_tasks_result_idx%'),
          'the query below reads the new index');
SELECT results_eq($$SELECT id FROM workflow.tasks WHERE status = 'completed' AND result_data ->> 'r' = 'three'$$,
                  $$VALUES ('dir-1:1:3')$$, 'the new partial expression index has the completed task''s entry');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX workflow.tap_tasks_result_idx;

SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('dir-1:1:2', 'dir-1', 1, NULL)$$,
                  $$VALUES (true, 0)$$, 'the last completion completes the stage (after DROP INDEX)');
SELECT results_eq($$SELECT completed_by_task, pending_slots FROM workflow.stages WHERE job_id = 'dir-1'$$,
                  $$VALUES ('dir-1:1:2', 0)$$, 'the stage records its completer');
SELECT is((SELECT string_agg(check_name, ', ') FROM workflow.check_invariants('dir-1') WHERE NOT ok), NULL,
          'check_invariants is clean');

-- A trigger on stage_slots: the SQL path serves the counters, the trigger sees each write.
CREATE TEMP TABLE slot_writes (n serial, slot int, old_remaining int, new_remaining int);
CREATE FUNCTION pg_temp.tap_slot_write() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO slot_writes (slot, old_remaining, new_remaining) VALUES (NEW.slot, OLD.remaining, NEW.remaining);
  RETURN NEW;
END $$;
CREATE TRIGGER tap_slot_write AFTER UPDATE ON workflow.stage_slots FOR EACH ROW EXECUTE FUNCTION pg_temp.tap_slot_write();
SELECT workflow.create_job('direct', '{}', 1, 'dir-2');
SELECT workflow.add_tasks('dir-2', 1, 'tap.d', array_fill('{}'::jsonb, ARRAY[3]), slot_count => 2);
SELECT results_eq($$SELECT stage_complete, remaining_tasks FROM workflow.complete_task_and_check_stage('dir-2:1:2', 'dir-2', 1, NULL)$$,
                  $$VALUES (false, 2)$$, 'with a trigger on stage_slots: a single completion');
SELECT results_eq($$SELECT task_id, stage_complete FROM workflow.complete_tasks(ARRAY['dir-2', 'dir-2'], ARRAY['dir-2:1:1', 'dir-2:1:0'], ARRAY[1, 1])$$,
                  $$VALUES ('dir-2:1:1', true), ('dir-2:1:0', false)$$,
                  'with a trigger on stage_slots: the batch that completes the stage (the last task in lock order: dir-2:1:1)');
SELECT results_eq($$SELECT slot, old_remaining, new_remaining FROM slot_writes ORDER BY n$$,
                  $$VALUES (0, 2, 1), (0, 1, 0), (1, 1, 0)$$,
                  'the trigger saw every counter write: the single one from its own slot, the batch''s in ascending order');
SELECT results_eq($$SELECT completed_by_task, pending_slots, completed_at IS NOT NULL FROM workflow.stages WHERE job_id = 'dir-2'$$,
                  $$VALUES ('dir-2:1:1', 0, true)$$, 'the stage is complete with its completer');
DROP TRIGGER tap_slot_write ON workflow.stage_slots;
SELECT is((SELECT string_agg(check_name, ', ') FROM workflow.check_invariants('dir-2') WHERE NOT ok), NULL,
          'check_invariants is clean after the SQL path');

SELECT * FROM finish();
ROLLBACK;
