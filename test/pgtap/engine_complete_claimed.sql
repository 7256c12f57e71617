-- pgTAP: workflow.complete_claimed_tasks, the batch of several worker loops
-- of one process: each element fenced by its own worker name, one call;
-- answers as complete_tasks; any refused element writes nothing; bad input.
BEGIN;
SELECT plan(16);

SELECT has_function('workflow', 'complete_claimed_tasks', ARRAY['text[]', 'text[]', 'integer[]', 'jsonb[]', 'text[]']);
SELECT isnt(obj_description('workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[])'::regprocedure, 'pg_proc'),
            NULL, 'complete_claimed_tasks has a comment');
SELECT ok(NOT has_function_privilege('public', 'workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[])', 'EXECUTE'),
          'PUBLIC may not execute it');
SELECT ok(has_function_privilege('workflow_worker', 'workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[])', 'EXECUTE'),
          'workflow_worker may');

SELECT workflow.create_job('claimed', '{}', 1, 'cc-1');
SELECT workflow.add_tasks('cc-1', 1, 'tap.cc', array_fill('{}'::jsonb, ARRAY[4]), slot_count => 2);
SELECT is((SELECT string_agg(id, ',' ORDER BY id) FROM workflow.claim_tasks('P/0', 2, ARRAY['tap.cc'])), 'cc-1:1:0,cc-1:1:1', 'loop P/0 claims 2');
SELECT is((SELECT string_agg(id, ',' ORDER BY id) FROM workflow.claim_tasks('P/1', 2, ARRAY['tap.cc'])), 'cc-1:1:2,cc-1:1:3', 'loop P/1 claims 2');

-- A wrong name on one element: 55000, and nothing of the call is written.
SELECT throws_ok($$SELECT * FROM workflow.complete_claimed_tasks(ARRAY['cc-1', 'cc-1'], ARRAY['cc-1:1:0', 'cc-1:1:2'],
                      ARRAY[1, 1], NULL, ARRAY['P/0', 'P/0'])$$,
                 '55000', $$task_ids[2] 'cc-1:1:2' is claimed by worker 'P/1', not by worker 'P/0' (its lease expired and the task was claimed again) (nothing of the batch was written)$$,
                 'an element claimed by another loop than its workers[i] -> 55000');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'cc-1' AND status = 'completed'), 0::bigint,
          'the refused call completed nothing');

-- Each element with its own loop's name: one call, one stage completion.
SELECT results_eq(
  $$SELECT task_id, stage_complete FROM workflow.complete_claimed_tasks(
      ARRAY['cc-1', 'cc-1', 'cc-1', 'cc-1'], ARRAY['cc-1:1:2', 'cc-1:1:0', 'cc-1:1:3', 'cc-1:1:1'], ARRAY[1, 1, 1, 1],
      ARRAY['{"by": 1}', '{"by": 0}', '{"by": 1}', '{"by": 0}']::jsonb[], ARRAY['P/1', 'P/0', 'P/1', 'P/0'])$$,
  $$VALUES ('cc-1:1:2', false), ('cc-1:1:0', false), ('cc-1:1:3', true), ('cc-1:1:1', false)$$,
  'elements of two loops complete in one call; one stage_complete, in input order');
SELECT results_eq($$SELECT id, claimed_by, result_data->>'by' FROM workflow.tasks WHERE job_id = 'cc-1' ORDER BY id$$,
                  $$VALUES ('cc-1:1:0', 'P/0', '0'), ('cc-1:1:1', 'P/0', '0'), ('cc-1:1:2', 'P/1', '1'), ('cc-1:1:3', 'P/1', '1')$$,
                  'each task completed under the name of the loop that claimed it');
-- A repeat (a lost reply) answers the same and writes nothing.
SELECT results_eq(
  $$SELECT task_id, stage_complete FROM workflow.complete_claimed_tasks(
      ARRAY['cc-1', 'cc-1'], ARRAY['cc-1:1:3', 'cc-1:1:0'], ARRAY[1, 1], NULL, ARRAY['P/1', 'P/0'])$$,
  $$VALUES ('cc-1:1:3', true), ('cc-1:1:0', false)$$, 'a repeat answers the same');
SELECT is((SELECT result_data->>'by' FROM workflow.tasks WHERE id = 'cc-1:1:3'), '1', 'the repeat wrote nothing (result kept)');

-- Bad input.
SELECT throws_ok($$SELECT * FROM workflow.complete_claimed_tasks(ARRAY['cc-1'], ARRAY['cc-1:1:0'], ARRAY[1], NULL, NULL)$$,
                 '22004', 'workers must not be NULL', 'workers NULL -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_claimed_tasks(ARRAY['cc-1'], ARRAY['cc-1:1:0'], ARRAY[1], NULL, ARRAY[NULL]::text[])$$,
                 '22004', NULL, 'a NULL worker name -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.complete_claimed_tasks(ARRAY['cc-1'], ARRAY['cc-1:1:0'], ARRAY[1], NULL, ARRAY['a', 'b'])$$,
                 '22023', 'workers has 2 elements, task_ids has 1: the arrays must have the same length', 'workers of another length -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.complete_claimed_tasks(ARRAY['cc-1'], ARRAY['cc-1:1:0'], ARRAY[1], NULL, ARRAY[repeat('w', 201)])$$,
                 '22023', NULL, 'a worker name over 200 characters -> 22023');

SELECT * FROM finish();
ROLLBACK;
