-- pgTAP: report_progress (1.4): a handler's progress on its claimed task,
-- fenced by worker; hostile input.
BEGIN;
SELECT plan(11);

SELECT workflow.create_job('prog', '{}', 1, 'prog-1');
SELECT workflow.add_tasks('prog-1', 1, 'tap.prog', array_fill('{}'::jsonb, ARRAY[2]));
SELECT is(workflow.report_progress('prog-1:1:0', 'prog-1', '{"done": 1}', 'w'), false, 'a queued task: false');
SELECT count(*) FROM workflow.claim_tasks('w', 1, ARRAY['tap.prog']);
SELECT is(workflow.report_progress('prog-1:1:0', 'prog-1', '{"done": 10, "of": 100}', 'w'), true, 'its worker: true');
SELECT is((SELECT progress FROM workflow.tasks WHERE id = 'prog-1:1:0'), '{"done": 10, "of": 100}'::jsonb, 'stored');
SELECT is(workflow.report_progress('prog-1:1:0', 'prog-1', '{"done": 99}', 'other'), false, 'another worker: false');
SELECT is((SELECT progress FROM workflow.tasks WHERE id = 'prog-1:1:0'), '{"done": 10, "of": 100}'::jsonb, 'unchanged');
SELECT throws_ok($$SELECT workflow.report_progress('prog-1:1:0', 'prog-1', NULL, 'w')$$, '22004', NULL, 'NULL progress');
SELECT throws_ok($$SELECT workflow.report_progress('prog-1:1:0', 'prog-1',
                     jsonb_build_object('x', repeat(md5(random()::text), 4000)), 'w')$$, '22023', NULL, 'over 64 kB');
-- The limit is the progress's size, not its compressed size: a value read from a table column
-- arrives compressed (3 MB of one letter is about 34 kB so), and used to be stored (sched20 review).
CREATE TEMP TABLE prog_big(v jsonb);
INSERT INTO prog_big SELECT jsonb_build_object('x', repeat('z', 3000000));
SELECT throws_ok($$SELECT workflow.report_progress('prog-1:1:0', 'prog-1', (SELECT v FROM prog_big), 'w')$$,
                 '22023', NULL, 'over 64 kB, passed compressed from a table column');
SELECT ok((SELECT progress = '{"done": 10, "of": 100}'::jsonb FROM workflow.tasks WHERE id = 'prog-1:1:0'),
          'nothing written');
SELECT throws_ok($$SELECT workflow.report_progress('nope', 'prog-1', '{}', 'w')$$, 'P0002', NULL, 'unknown task');
SELECT ok((SELECT bool_and(ok) FROM workflow.check_invariants('prog-1')), 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
