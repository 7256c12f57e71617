-- pgTAP: workflow.claim_tasks_for_workers (1.5), the claim of several worker
-- loops of one process: at most one task per name, each claimed by its own
-- name (fenced by it), in claim_tasks' order; bad input writes nothing.
BEGIN;
SELECT plan(22);

SELECT has_function('workflow', 'claim_tasks_for_workers', ARRAY['text[]', 'text[]', 'interval']);
SELECT isnt(obj_description('workflow.claim_tasks_for_workers(text[], text[], interval)'::regprocedure, 'pg_proc'),
            NULL, 'claim_tasks_for_workers has a comment');
SELECT ok(NOT has_function_privilege('public', 'workflow.claim_tasks_for_workers(text[], text[], interval)', 'EXECUTE'),
          'PUBLIC may not execute it');
SELECT ok(has_function_privilege('workflow_worker', 'workflow.claim_tasks_for_workers(text[], text[], interval)', 'EXECUTE'),
          'workflow_worker may');

SELECT workflow.create_job('claim-workers', '{}', 1, 'cw-1');
SELECT workflow.add_tasks('cw-1', 1, 'tap.cw', array_fill('{}'::jsonb, ARRAY[5]), seal => false);
SELECT workflow.add_tasks('cw-1', 1, 'tap.cw', array_fill('{}'::jsonb, ARRAY[1]), seal => false, first_index => 5, priority => 9);
SELECT workflow.add_tasks('cw-1', 1, 'tap.other', array_fill('{}'::jsonb, ARRAY[2]), first_index => 6);

-- Bad input first: each refused before anything is claimed.
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(NULL)$$, '22004', 'workers must not be NULL',
                 'workers NULL -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers('{}')$$, '22023', 'workers has 0 elements, not 1..10000',
                 'no workers -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY['a', NULL])$$, '22004', 'workers[2] must not be NULL',
                 'a NULL name -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY['a', ''])$$, '22023', 'workers[2] must not be empty',
                 'an empty name -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY[repeat('w', 201)])$$, '22023', NULL,
                 'a name over 200 characters -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY[E'a\nb'])$$, '22023', NULL,
                 'a name with a control character -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(array_fill('w'::text, ARRAY[10001]))$$, '22023', NULL,
                 'more than 10000 names -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY['a'], '{}')$$, '22023', NULL,
                 'empty task_types -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY['a'], NULL, '8 days')$$, '22023', NULL,
                 'a lease over the 7-day cap -> 22023');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'cw-1' AND status <> 'queued'), 0::bigint,
          'the refused calls claimed nothing');

-- One task per name, highest priority first, then oldest; the i-th for workers[i].
SELECT results_eq(
  $$SELECT id, claimed_by FROM workflow.claim_tasks_for_workers(ARRAY['L/0', 'L/1', 'L/2'], ARRAY['tap.cw']) ORDER BY claimed_by$$,
  $$VALUES ('cw-1:1:5', 'L/0'), ('cw-1:1:0', 'L/1'), ('cw-1:1:1', 'L/2')$$,
  'three names: three tasks, the priority-9 one first, each claimed by its own name');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'cw-1' AND status = 'claimed' AND lease_expires_at > now()),
          3::bigint, 'each with a lease');
-- Fewer runnable tasks than names: fewer rows; the types filter holds.
SELECT results_eq(
  $$SELECT claimed_by FROM workflow.claim_tasks_for_workers(ARRAY['M/0', 'M/1', 'M/2', 'M/3', 'M/4'], ARRAY['tap.cw']) ORDER BY 1$$,
  $$VALUES ('M/0'), ('M/1'), ('M/2')$$,
  'five names, three tap.cw tasks left: the first three names get one each');
-- Each task is fenced by the name that claimed it.
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('cw-1:1:5', 'cw-1', 1, '{}', worker => 'L/1')$$,
                 '55000', NULL, 'a task completed under another loop''s name -> 55000');
SELECT results_eq(
  $$SELECT task_id FROM workflow.complete_claimed_tasks(ARRAY['cw-1', 'cw-1'], ARRAY['cw-1:1:5', 'cw-1:1:0'], ARRAY[1, 1],
                                                        NULL, ARRAY['L/0', 'L/1'])$$,
  $$VALUES ('cw-1:1:5'), ('cw-1:1:0')$$, 'and completes under its own');
-- The task type controls apply as to claim_tasks: a paused type is not
-- claimed, and a limited one (the exact path, one claim per name) never
-- has more than its limit claimed.
SELECT workflow.pause_task_type('tap.other');
SELECT is((SELECT count(*) FROM workflow.claim_tasks_for_workers(ARRAY['N/0', 'N/1'])), 0::bigint,
          'a paused type: nothing claimed');
SELECT workflow.resume_task_type('tap.other');
SELECT workflow.set_task_type_limit('tap.other', 1);
SELECT is((SELECT count(*) FROM workflow.claim_tasks_for_workers(ARRAY['O/0', 'O/1'])), 1::bigint,
          'limit 1: two names, one task claimed');
SELECT is((SELECT count(*) FROM workflow.claim_tasks_for_workers(ARRAY['P/0', 'P/1'])), 0::bigint,
          'and none while it is held');

SELECT * FROM finish();
ROLLBACK;
