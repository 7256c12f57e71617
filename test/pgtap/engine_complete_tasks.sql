-- pgTAP: workflow.complete_tasks, the batch complete: answers, exactly-once
-- stage completion, idempotent repeats, mixing with single completes, and
-- every refused input (SQLSTATE, nothing written).
BEGIN;
SELECT plan(45);

SELECT has_function('workflow', 'complete_tasks', ARRAY['text[]', 'text[]', 'integer[]', 'jsonb[]', 'text']);
SELECT isnt(obj_description('workflow.complete_tasks(text[], text[], int[], jsonb[], text)'::regprocedure, 'pg_proc'),
            NULL, 'complete_tasks has a comment');
SELECT is((SELECT count(*) FROM workflow.validate() WHERE NOT ok), 0::bigint, 'validate() still reports every check ok');

-- Two jobs: eng-b1 stage 1 has 5 tasks in 2 slots, stage 2 one task;
-- eng-b2 stage 1 has 3 tasks in 3 slots.
SELECT workflow.create_job('batch', '{}', 2, 'eng-b1');
SELECT workflow.create_job('batch', '{}', 1, 'eng-b2');
SELECT workflow.add_tasks('eng-b1', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[5]), slot_count => 2);
SELECT workflow.add_tasks('eng-b2', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[3]), slot_count => 3);

-- A batch across jobs, in any order: rows come back in input order.
SELECT results_eq(
  $$SELECT job_id, task_id, stage, stage_complete FROM workflow.complete_tasks(
      ARRAY['eng-b2', 'eng-b1', 'eng-b1'], ARRAY['eng-b2:1:2', 'eng-b1:1:3', 'eng-b1:1:0'], ARRAY[1, 1, 1],
      ARRAY['{"r": "b2-2"}', NULL, '{"r": 0}']::jsonb[])$$,
  $$VALUES ('eng-b2', 'eng-b2:1:2', 1, false), ('eng-b1', 'eng-b1:1:3', 1, false), ('eng-b1', 'eng-b1:1:0', 1, false)$$,
  'a batch across jobs answers one row per element, in input order');
SELECT results_eq($$SELECT id, status, result_data FROM workflow.tasks WHERE id IN ('eng-b2:1:2', 'eng-b1:1:3', 'eng-b1:1:0') ORDER BY id$$,
                  $$VALUES ('eng-b1:1:0', 'completed', '{"r": 0}'::jsonb), ('eng-b1:1:3', 'completed', NULL),
                           ('eng-b2:1:2', 'completed', '{"r": "b2-2"}'::jsonb)$$,
                  'the batch completed its tasks and stored their results');
SELECT results_eq($$SELECT slot, remaining FROM workflow.stage_slots WHERE job_id = 'eng-b1' AND stage = 1 ORDER BY slot$$,
                  $$VALUES (0, 1), (1, 2)$$, 'the batch took its 2 units from the stage''s counters in ascending order (slot 0 first)');

-- The batch that completes both stages: exactly one true per stage, the recorded completer.
SELECT results_eq(
  $$SELECT task_id, stage_complete FROM workflow.complete_tasks(
      ARRAY['eng-b1', 'eng-b2', 'eng-b1', 'eng-b2', 'eng-b1'],
      ARRAY['eng-b1:1:4', 'eng-b2:1:0', 'eng-b1:1:1', 'eng-b2:1:1', 'eng-b1:1:2'], ARRAY[1, 1, 1, 1, 1])$$,
  $$VALUES ('eng-b1:1:4', true), ('eng-b2:1:0', false), ('eng-b1:1:1', false), ('eng-b2:1:1', true), ('eng-b1:1:2', false)$$,
  'one stage_complete = true per completed stage: the stage''s last task in lock order (job, id)');
SELECT results_eq($$SELECT job_id, completed_by_task, pending_slots, completed_at IS NOT NULL FROM workflow.stages
                     WHERE job_id IN ('eng-b1', 'eng-b2') AND stage = 1 ORDER BY job_id$$,
                  $$VALUES ('eng-b1', 'eng-b1:1:4', 0, true), ('eng-b2', 'eng-b2:1:1', 0, true)$$,
                  'the true answers are the recorded completers');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id IN ('eng-b1', 'eng-b2') AND status <> 'completed'),
          0::bigint, 'every task of the two stages is completed');

-- A repeated batch writes nothing and answers the same.
CREATE TEMP TABLE before_repeat AS
  SELECT 'task ' || id AS k, ctid::text AS x FROM workflow.tasks WHERE job_id IN ('eng-b1', 'eng-b2')
  UNION ALL SELECT 'slot ' || job_id || stage || slot, ctid::text FROM workflow.stage_slots WHERE job_id IN ('eng-b1', 'eng-b2')
  UNION ALL SELECT 'stage ' || job_id || stage, ctid::text FROM workflow.stages WHERE job_id IN ('eng-b1', 'eng-b2');
SELECT results_eq(
  $$SELECT task_id, stage_complete FROM workflow.complete_tasks(
      ARRAY['eng-b1', 'eng-b2', 'eng-b1', 'eng-b2', 'eng-b1'],
      ARRAY['eng-b1:1:4', 'eng-b2:1:0', 'eng-b1:1:1', 'eng-b2:1:1', 'eng-b1:1:2'], ARRAY[1, 1, 1, 1, 1])$$,
  $$VALUES ('eng-b1:1:4', true), ('eng-b2:1:0', false), ('eng-b1:1:1', false), ('eng-b2:1:1', true), ('eng-b1:1:2', false)$$,
  'a repeated batch answers true again only for the completers');
SELECT set_eq(
  $$SELECT 'task ' || id AS k, ctid::text AS x FROM workflow.tasks WHERE job_id IN ('eng-b1', 'eng-b2')
    UNION ALL SELECT 'slot ' || job_id || stage || slot, ctid::text FROM workflow.stage_slots WHERE job_id IN ('eng-b1', 'eng-b2')
    UNION ALL SELECT 'stage ' || job_id || stage, ctid::text FROM workflow.stages WHERE job_id IN ('eng-b1', 'eng-b2')$$,
  'SELECT k, x FROM before_repeat', 'the repeated batch wrote no row (every ctid unchanged)');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-b1:1:4', 'eng-b1', 1, NULL)$$,
                  $$VALUES (true)$$, 'the single call agrees: the batch''s completer is told again');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-b1:1:1', 'eng-b1', 1, NULL)$$,
                  $$VALUES (false)$$, 'and another task of the batch is not');

-- Mixed with single completes: the single call completes the stage, a later batch is not told.
SELECT workflow.create_job('batch', '{}', 1, 'eng-b3');
SELECT workflow.add_tasks('eng-b3', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[3]), slot_count => 16);
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY['eng-b3', 'eng-b3'], ARRAY['eng-b3:1:0', 'eng-b3:1:1'], ARRAY[1, 1])$$,
                  $$VALUES (false), (false)$$, 'batch of 2 of 3 tasks: not complete');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_task_and_check_stage('eng-b3:1:2', 'eng-b3', 1, NULL)$$,
                  $$VALUES (true)$$, 'the single call completes the last task and the stage');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY['eng-b3', 'eng-b3', 'eng-b3'], ARRAY['eng-b3:1:2', 'eng-b3:1:1', 'eng-b3:1:0'], ARRAY[1, 1, 1])$$,
                  $$VALUES (true), (false), (false)$$, 'a batch repeating them tells only the single call''s completer');

-- Unsealed stage: the batch completes every task but not the stage; the seal does.
SELECT workflow.create_job('batch', '{}', 1, 'eng-b4');
SELECT workflow.add_tasks('eng-b4', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[2]), seal => false);
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY['eng-b4', 'eng-b4'], ARRAY['eng-b4:1:1', 'eng-b4:1:0'], ARRAY[1, 1])$$,
                  $$VALUES (false), (false)$$, 'all tasks of an unsealed stage: not complete');
SELECT ok(workflow.seal_stage('eng-b4', 1), 'the seal completes it');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY['eng-b4', 'eng-b4'], ARRAY['eng-b4:1:1', 'eng-b4:1:0'], ARRAY[1, 1])$$,
                  $$VALUES (false), (false)$$, 'a stage completed by its seal has no task completer');

-- Refused input: SQLSTATE, and nothing of the batch is written (eng-b5:1:0 stays queued).
SELECT workflow.create_job('batch', '{}', 2, 'eng-b5');
SELECT workflow.add_tasks('eng-b5', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[3]), max_retries => 0);
SELECT workflow.add_tasks('eng-b5', 2, 'tap.b', array_fill('{}'::jsonb, ARRAY[1]));
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(NULL, ARRAY['eng-b5:1:0'], ARRAY[1])$$, '22004', 'job_ids must not be NULL', 'NULL job_ids -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5'], NULL, ARRAY[1])$$, '22004', NULL, 'NULL task_ids -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5'], ARRAY['eng-b5:1:0'], NULL)$$, '22004', NULL, 'NULL stages -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', NULL], ARRAY['eng-b5:1:0', 'eng-b5:1:1'], ARRAY[1, 1])$$,
                 '22004', 'job_ids[2] must not be NULL', 'NULL job_ids element -> 22004 naming it');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', NULL], ARRAY[1, 1])$$,
                 '22004', 'task_ids[2] must not be NULL', 'NULL task_ids element -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', 'eng-b5:1:1'], ARRAY[1, NULL])$$,
                 '22004', 'stages[2] must not be NULL', 'NULL stages element -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', ''], ARRAY[1, 1])$$,
                 '22023', 'task_ids[2] must not be empty', 'empty task id -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5'], ARRAY['eng-b5:1:0', 'eng-b5:1:1'], ARRAY[1, 1])$$,
                 '22023', NULL, 'job_ids shorter than task_ids -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', 'eng-b5:1:1'], ARRAY[1])$$,
                 '22023', NULL, 'stages shorter -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5'], ARRAY['eng-b5:1:0'], ARRAY[1], ARRAY['{}', '{}']::jsonb[])$$,
                 '22023', NULL, 'results longer -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks('{}', '{}', '{}')$$, '22023', 'task_ids must not be empty', 'empty batch -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY[['eng-b5']], ARRAY[['eng-b5:1:0']], ARRAY[[1]])$$, '22023', NULL, 'two-dimensional arrays -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(array_fill('eng-b5'::text, ARRAY[10001]),
                     ARRAY(SELECT 'eng-b5:1:' || i FROM generate_series(1, 10001) i), array_fill(1, ARRAY[10001]))$$,
                 '22023', 'the batch has 10001 tasks, at most 10000', 'more than 10000 elements -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', 'eng-b5:1:1', 'eng-b5:1:0'], ARRAY[1, 1, 1])$$,
                 '22023', $$task_ids[3] 'eng-b5:1:0' of job 'eng-b5' repeats task_ids[1]: each task at most once per batch$$,
                 'a task twice in one batch -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', 'eng-b5:1:9'], ARRAY[1, 1])$$,
                 'P0002', $$task_ids[2] 'eng-b5:1:9' of job 'eng-b5' not found$$, 'unknown task -> P0002');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-nojob'], ARRAY['eng-b5:1:0', 'eng-b5:1:1'], ARRAY[1, 1])$$,
                 'P0002', NULL, 'task of another job -> P0002');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5', 'eng-b5'], ARRAY['eng-b5:1:0', 'eng-b5:2:0'], ARRAY[1, 1])$$,
                 '22023', $$task_ids[2] 'eng-b5:2:0' belongs to stage 2, not stage 1$$, 'wrong stage -> 22023');
SELECT results_eq($$SELECT will_retry FROM workflow.fail_task('eng-b5:1:2', 'eng-b5', 'boom', retryable => false)$$,
                  $$VALUES (false)$$, 'a dead task fails eng-b5 (its other tasks are cancelled)');
SELECT is((SELECT status FROM workflow.tasks WHERE id = 'eng-b5:1:0'), 'cancelled', 'eng-b5:1:0 was cancelled with the job');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b3', 'eng-b5'], ARRAY['eng-b3:1:0', 'eng-b5:1:2'], ARRAY[1, 1])$$,
                 '55000', NULL, 'failed task -> 55000');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b5'], ARRAY['eng-b5:1:1'], ARRAY[1])$$,
                 '55000', NULL, 'cancelled task -> 55000');
-- eng-b6: one good task first in the batch, then a refused one: nothing written.
SELECT workflow.create_job('batch', '{}', 1, 'eng-b6');
SELECT workflow.add_tasks('eng-b6', 1, 'tap.b', array_fill('{}'::jsonb, ARRAY[1]));
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b6', 'eng-b5'], ARRAY['eng-b6:1:0', 'eng-b5:1:1'], ARRAY[1, 1])$$,
                 '55000', NULL, 'a batch with one refused task fails as a whole');
SELECT results_eq($$SELECT t.status, s.remaining, st.completed_at IS NULL FROM workflow.tasks t
                     JOIN workflow.stage_slots s USING (job_id, stage, slot) JOIN workflow.stages st USING (job_id, stage)
                     WHERE t.id = 'eng-b6:1:0'$$,
                  $$VALUES ('queued', 1, true)$$, 'its good task was not written (still queued, slot and stage untouched)');
SELECT throws_ok($$SELECT * FROM workflow.complete_tasks(ARRAY['eng-b6'], ARRAY[E'eng-b6:1:0\'; DROP TABLE x; --'], ARRAY[1])$$,
                 'P0002', NULL, 'a quoted hostile id is just an unknown task');
SELECT results_eq($$SELECT stage_complete FROM workflow.complete_tasks(ARRAY['eng-b6'], ARRAY['eng-b6:1:0'], ARRAY[1])$$,
                  $$VALUES (true)$$, 'the same task alone then completes the stage');

SELECT is((SELECT count(*) FROM workflow.jobs j, workflow.check_invariants(j.id) i
            WHERE j.id LIKE 'eng-b%' AND NOT i.ok), 0::bigint, 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
