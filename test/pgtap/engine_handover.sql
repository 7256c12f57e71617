-- pgTAP: the job state machine no client order can break. claim_tasks does
-- not hand out tasks of a stage the job has not reached; claim_stage_handovers
-- leases (exactly once at a time) complete stages nobody advanced: after the
-- completer's hand-over lease, at once when the job is advanced into a stage
-- that is complete already, never for ended jobs; check_invariants reports
-- stuck jobs. One transaction, so now() stands still: time passing is
-- simulated by moving completed_at / handover_expires_at back.
BEGIN;
SELECT plan(61);

SELECT has_function('workflow', 'claim_stage_handovers', ARRAY['text', 'integer', 'interval']);
SELECT has_function('workflow', 'set_handover_lease', ARRAY['text', 'interval']);
SELECT isnt(obj_description('workflow.claim_stage_handovers(text, int, interval)'::regprocedure, 'pg_proc'),
            NULL, 'claim_stage_handovers has a comment');
SELECT isnt(obj_description('workflow.set_handover_lease(text, interval)'::regprocedure, 'pg_proc'),
            NULL, 'set_handover_lease has a comment');
SELECT ok(NOT has_function_privilege('public', 'workflow.claim_stage_handovers(text, int, interval)', 'EXECUTE'),
          'PUBLIC cannot execute claim_stage_handovers');
SELECT ok(NOT has_function_privilege('public', 'workflow.set_handover_lease(text, interval)', 'EXECUTE'),
          'PUBLIC cannot execute set_handover_lease');
SELECT is((SELECT count(*) FROM workflow.validate() WHERE NOT ok), 0::bigint, 'validate() reports every check ok');
SELECT ok((SELECT count(*) FROM workflow.validate() WHERE check_name LIKE 'function workflow.claim_stage_handovers%') = 1,
          'validate() checks claim_stage_handovers');
SELECT is((SELECT ok FROM workflow.check_invariants() WHERE check_name = 'stuck jobs'), true,
          'check_invariants has a stuck jobs check, ok to start with');
SELECT is((SELECT column_default FROM information_schema.columns
            WHERE table_schema = 'workflow' AND table_name = 'jobs' AND column_name = 'handover_lease'),
          '''00:01:00''::interval', 'the default hand-over lease is 1 minute');

-- Hostile input: an error and nothing written.
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers(NULL)$$, '22004', NULL, 'NULL worker -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('')$$, '22023', NULL, 'empty worker -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', NULL)$$, '22004', NULL, 'NULL max_stages -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', 0)$$, '22023', NULL, 'max_stages 0 -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', 1001)$$, '22023', NULL, 'max_stages 1001 -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', 1, NULL)$$, '22004', NULL, 'NULL lease -> 22004');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', 1, '0 seconds')$$, '22023', NULL, 'zero lease -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', 1, '8 days')$$, '22023', NULL, 'lease over 7 days -> 22023');
SELECT throws_ok($$SELECT * FROM workflow.claim_stage_handovers('w', 1, '12000 mons -359993 days')$$, '22023', NULL,
                 'a lease that is 14 years once added up -> 22023');
SELECT throws_ok($$SELECT workflow.set_handover_lease('no-such-job', '1 second')$$, 'P0002', NULL,
                 'set_handover_lease on an unknown job -> P0002');
SELECT throws_ok($$SELECT workflow.set_handover_lease(NULL, '1 second')$$, '22004', NULL, 'NULL job -> 22004');
SELECT workflow.create_job('hl-ended', '{}', 1, 'hl-ended');
SELECT workflow.cancel_job('hl-ended');
SELECT throws_ok($$SELECT workflow.set_handover_lease('hl-ended', '1 second')$$, '55000', 'job ''hl-ended'' is cancelled',
                 'set_handover_lease on an ended job -> 55000');
SELECT is((SELECT handover_lease FROM workflow.jobs WHERE id = 'hl-ended'), interval '1 minute',
          'and the ended job keeps its lease');

-- hu-1: two stages of one task. The completer holds the hand-over for the
-- job's hand-over lease; then one claimer at a time, each for its lease.
SELECT workflow.create_job('hu', '{}', 2, 'hu-1');
SELECT workflow.add_tasks('hu-1', 1, 'tap.hu', ARRAY['{}']::jsonb[]);
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage('hu-1:1:0', 'hu-1', 1, '{}')), true,
          'hu-1 stage 1 complete');
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('h1', 10) WHERE job_id = 'hu-1'), 0::bigint,
          'not handed over within the completer''s lease');
SELECT is((SELECT ok FROM workflow.check_invariants('hu-1') WHERE check_name = 'stuck jobs'), true,
          'not stuck while the completer may still advance');
UPDATE workflow.stages SET completed_at = now() - interval '61 seconds' WHERE job_id = 'hu-1' AND stage = 1;
SELECT is((SELECT ok FROM workflow.check_invariants('hu-1') WHERE check_name = 'stuck jobs'), false,
          'stuck once the completer''s lease has run out');
SELECT matches((SELECT detail FROM workflow.check_invariants('hu-1') WHERE check_name = 'stuck jobs'),
               'hu-1 at stage 1 of 2', 'the stuck check names the job and its stage');
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('h1', 10, '30 seconds') WHERE job_id LIKE 'hu-%'$$,
                  $$VALUES ('hu-1'::text, 1)$$, 'then h1 claims the hand-over');
SELECT results_eq($$SELECT handover_by, handover_expires_at FROM workflow.stages WHERE job_id = 'hu-1' AND stage = 1$$,
                  $$VALUES ('h1'::text, now() + interval '30 seconds')$$, 'leased to h1 for 30 seconds');
SELECT is((SELECT ok FROM workflow.check_invariants('hu-1') WHERE check_name = 'stuck jobs'), true,
          'not stuck while h1 holds the hand-over');
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('h2', 10) WHERE job_id = 'hu-1'), 0::bigint,
          'h2 gets nothing while h1''s lease runs');
UPDATE workflow.stages SET handover_expires_at = now() - interval '1 second' WHERE job_id = 'hu-1' AND stage = 1;
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('h2', 10) WHERE job_id LIKE 'hu-%'$$,
                  $$VALUES ('hu-1'::text, 1)$$, 'h1''s lease ran out: h2 claims it');
SELECT is(workflow.advance_job_stage('hu-1', 1, 2, '{}'), true, 'h2 advances the job');
SELECT isnt((SELECT left_at FROM workflow.stages WHERE job_id = 'hu-1' AND stage = 1), NULL,
            'the advance records that the job left stage 1');
UPDATE workflow.stages SET handover_expires_at = now() - interval '1 second' WHERE job_id = 'hu-1' AND stage = 1;
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('h3', 10) WHERE job_id = 'hu-1'), 0::bigint,
          'a stage the job has left is never handed over');

-- hu-2: the per-job lease.
SELECT workflow.create_job('hu', '{}', 1, 'hu-2');
SELECT workflow.set_handover_lease('hu-2', '10 minutes');
SELECT is((SELECT handover_lease FROM workflow.jobs WHERE id = 'hu-2'), interval '10 minutes', 'set_handover_lease stores it');
SELECT throws_ok($$SELECT workflow.set_handover_lease('hu-2', '0 seconds')$$, '22023', NULL, 'zero hand-over lease -> 22023');
SELECT throws_ok($$SELECT workflow.set_handover_lease('hu-2', '25 hours')$$, '22023', NULL, 'hand-over lease over a day -> 22023');
SELECT workflow.add_tasks('hu-2', 1, 'tap.hu', ARRAY['{}']::jsonb[]);
SELECT workflow.complete_task_and_check_stage('hu-2:1:0', 'hu-2', 1, '{}');
UPDATE workflow.stages SET completed_at = now() - interval '2 minutes' WHERE job_id = 'hu-2';
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('h1', 10) WHERE job_id = 'hu-2'), 0::bigint,
          'two minutes after completion, within a 10-minute hand-over lease: not handed over');
SELECT workflow.set_handover_lease('hu-2', '1 second');
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('h1', 10) WHERE job_id = 'hu-2'$$,
                  $$VALUES ('hu-2'::text, 1)$$, 'with a 1-second hand-over lease it is');
SELECT is(workflow.advance_job_stage('hu-2', 1, 2, '{}'), true, 'the claimer finishes the last stage''s job');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'hu-2'), 'completed', 'hu-2 completed');

-- hu-3: nothing of an ended job is handed over.
SELECT workflow.create_job('hu', '{}', 2, 'hu-3');
SELECT workflow.add_tasks('hu-3', 1, 'tap.hu', ARRAY['{}']::jsonb[]);
SELECT workflow.complete_task_and_check_stage('hu-3:1:0', 'hu-3', 1, '{}');
UPDATE workflow.stages SET completed_at = now() - interval '1 hour' WHERE job_id = 'hu-3';
SELECT workflow.cancel_job('hu-3', 'test');
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('h1', 10) WHERE job_id = 'hu-3'), 0::bigint,
          'a cancelled job''s complete stage is not handed over');
SELECT is((SELECT ok FROM workflow.check_invariants('hu-3') WHERE check_name = 'stuck jobs'), true,
          'an ended job is not stuck');

-- hu-4: a stage sealed empty before the job got there; hu-5: a future stage
-- completed by direct (unclaimed) calls. Advancing into either makes it
-- claimable at once: its completer could not advance the job.
SELECT workflow.create_job('hu', '{}', 3, 'hu-4');
SELECT workflow.add_tasks('hu-4', 1, 'tap.hu', ARRAY['{}']::jsonb[]);
SELECT is(workflow.seal_stage('hu-4', 2), true, 'hu-4 stage 2 sealed empty: complete');
SELECT is(workflow.advance_job_stage('hu-4', 2, 3, '{}'), false, 'its advance loses: the job is at stage 1');
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('h1', 10) WHERE job_id = 'hu-4'), 0::bigint,
          'a complete stage ahead of the job is not handed over');
SELECT workflow.complete_task_and_check_stage('hu-4:1:0', 'hu-4', 1, '{}');
SELECT is(workflow.advance_job_stage('hu-4', 1, 2, '{}'), true, 'hu-4 advanced into its complete stage 2');
SELECT is((SELECT ok FROM workflow.check_invariants('hu-4') WHERE check_name = 'stuck jobs'), false,
          'stuck at once: nobody is advancing stage 2');
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('h1', 10) WHERE job_id LIKE 'hu-%'$$,
                  $$VALUES ('hu-4'::text, 2)$$, 'handed over at once');

SELECT workflow.create_job('hu', '{}', 3, 'hu-5');
SELECT workflow.add_tasks('hu-5', 1, 'tap.hu', ARRAY['{}']::jsonb[]);
SELECT workflow.add_tasks('hu-5', 2, 'tap.hu', ARRAY['{}', '{}']::jsonb[]);
SELECT is((SELECT count(*) FROM workflow.claim_tasks('c1', 10, ARRAY['tap.hu']) WHERE job_id = 'hu-5' AND stage = 2),
          0::bigint, 'claim_tasks hands out nothing of a stage the job has not reached');
SELECT is((SELECT bool_or(stage_complete) FROM (VALUES (0), (1)) v(i),
                  workflow.complete_task_and_check_stage('hu-5:2:' || i, 'hu-5', 2, '{}')), true,
          'hu-5 stage 2 completed by direct calls while the job is at stage 1');
SELECT workflow.complete_task_and_check_stage('hu-5:1:0', 'hu-5', 1, '{}');
SELECT is(workflow.advance_job_stage('hu-5', 1, 2, '{}'), true, 'hu-5 advanced into its complete stage 2');
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('h1', 1) WHERE job_id LIKE 'hu-%'$$,
                  $$VALUES ('hu-5'::text, 2)$$, 'handed over at once (max_stages 1: one row)');

-- hu-6: claim_tasks follows the job's stage.
SELECT workflow.create_job('hu', '{}', 2, 'hu-6');
SELECT workflow.add_tasks('hu-6', 1, 'tap.hu6', ARRAY['{}']::jsonb[]);
SELECT workflow.add_tasks('hu-6', 2, 'tap.hu6', ARRAY['{}', '{}']::jsonb[]);
SELECT results_eq($$SELECT stage FROM workflow.claim_tasks('c1', 10, ARRAY['tap.hu6'])$$, $$VALUES (1)$$,
                  'fanned out before the advance: only stage 1 is claimable');
SELECT workflow.complete_task_and_check_stage('hu-6:1:0', 'hu-6', 1, '{}');
SELECT is(workflow.advance_job_stage('hu-6', 1, 2, '{}'), true, 'advanced to stage 2');
SELECT results_eq($$SELECT stage FROM workflow.claim_tasks('c1', 10, ARRAY['tap.hu6'])$$, $$VALUES (2), (2)$$,
                  'now stage 2 is');

-- check_job_completion (no advance) also leaves the last stage.
SELECT workflow.create_job('hu', '{}', 1, 'hu-7');
SELECT workflow.add_tasks('hu-7', 1, 'tap.hu', ARRAY['{}']::jsonb[]);
SELECT workflow.complete_task_and_check_stage('hu-7:1:0', 'hu-7', 1, '{}');
SELECT results_eq($$SELECT job_complete FROM workflow.check_job_completion('hu-7')$$, $$VALUES (true)$$, 'hu-7 completed');
SELECT isnt((SELECT left_at FROM workflow.stages WHERE job_id = 'hu-7'), NULL, 'its last stage is left');

SELECT is((SELECT count(*) FROM workflow.jobs j, workflow.check_invariants(j.id) i
            WHERE j.id LIKE 'hu-%' AND NOT i.ok), 0::bigint, 'invariants hold');

SELECT * FROM finish();
ROLLBACK;
