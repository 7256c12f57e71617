-- A backend remembers where a stage's counters are (1.6,
-- src/extension/engine_counter_tids.hpp). Here they move to another page and
-- VACUUM then truncates the table below the page this backend remembers:
-- the next completions must not read there (VACUUM's relcache invalidation
-- makes the backend forget the locations; a remembered page past the table's
-- end would be refused as well) and still answer the tasks left.
SELECT workflow.create_job('moves', '{}', 1, 'mv-filler');
SELECT workflow.add_tasks('mv-filler', 1, 'reg.m', array_fill('{}'::jsonb, ARRAY[3000]), slot_count => 3000);
SELECT workflow.create_job('moves', '{}', 1, 'mv-1');
SELECT workflow.add_tasks('mv-1', 1, 'reg.m', array_fill('{}'::jsonb, ARRAY[80]), slot_count => 8);
CREATE TEMP TABLE remembered AS
  SELECT max((ctid::text::point)[0])::int AS block FROM workflow.stage_slots WHERE job_id = 'mv-1';
-- The first completion scans the index and remembers the counters; the second reads them there.
SELECT remaining_tasks FROM workflow.complete_task_and_check_stage('mv-1:1:0', 'mv-1', 1, NULL);
SELECT remaining_tasks FROM workflow.complete_task_and_check_stage('mv-1:1:1', 'mv-1', 1, NULL);
-- Free the pages before them, then fill their page with versions of one
-- transaction until the last versions land on those free pages.
DELETE FROM workflow.stage_slots WHERE job_id = 'mv-filler';
VACUUM workflow.stage_slots;
DO $$BEGIN
  FOR i IN 1..300 LOOP
    UPDATE workflow.stage_slots SET remaining = remaining WHERE job_id = 'mv-1';
  END LOOP;
END$$;
VACUUM workflow.stage_slots;
SELECT pg_relation_size('workflow.stage_slots') / 8192 <= (SELECT block FROM remembered) AS truncated_below_them,
       (SELECT max((ctid::text::point)[0]) FROM workflow.stage_slots WHERE job_id = 'mv-1') < (SELECT block FROM remembered) AS moved;
SELECT remaining_tasks FROM workflow.complete_task_and_check_stage('mv-1:1:2', 'mv-1', 1, NULL);
SELECT remaining_tasks FROM workflow.complete_task_and_check_stage('mv-1:1:3', 'mv-1', 1, NULL);
SELECT sum(remaining) AS counted FROM workflow.stage_slots WHERE job_id = 'mv-1';
SELECT check_name FROM workflow.check_invariants('mv-1') WHERE NOT ok;
-- Leave nothing behind for the tests after this one.
DELETE FROM workflow.tasks WHERE job_id IN ('mv-filler', 'mv-1');
DELETE FROM workflow.stage_slots WHERE job_id IN ('mv-filler', 'mv-1');
DELETE FROM workflow.stages WHERE job_id IN ('mv-filler', 'mv-1');
DELETE FROM workflow.jobs WHERE id IN ('mv-filler', 'mv-1');
