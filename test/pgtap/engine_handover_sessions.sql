-- pgTAP, two sessions (dblink): the orders of fan-out and advance that used
-- to leave a job stuck, and one hand-over claimer at a time under SKIP LOCKED.
-- Not one transaction: the other session must see what this one committed.
-- Its jobs (ho-*) are deleted at the end.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS dblink;
DELETE FROM workflow.jobs WHERE id LIKE 'ho-%';
DELETE FROM workflow.tasks WHERE job_id LIKE 'ho-%';
DELETE FROM workflow.stage_slots WHERE job_id LIKE 'ho-%';
SELECT plan(28);

SELECT dblink_connect('completer',
  format('host=%s port=%s dbname=%s user=%s',
         split_part(current_setting('unix_socket_directories'), ',', 1),
         current_setting('port'), current_database(), current_user)) AS connected \gset

-- ho-a, 3 stages: the completer of stage 1 fans out stage 2 and commits, then
-- advances in a transaction it has not committed yet. Another worker claims
-- meanwhile: nothing of stage 2 until the advance commits.
SELECT workflow.create_job('ho', '{}', 3, 'ho-a') AS created \gset
SELECT workflow.add_tasks('ho-a', 1, 'tap.ho', ARRAY['{}']::jsonb[]) AS added \gset
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w-main', 10, ARRAY['tap.ho'])), 1::bigint, 'stage 1 claimed');
SELECT is((SELECT stage_complete FROM dblink('completer',
            $$SELECT stage_complete FROM workflow.complete_task_and_check_stage('ho-a:1:0', 'ho-a', 1, '{}')$$)
            AS t(stage_complete boolean)), true, 'the completer completes stage 1');
SELECT is((SELECT n FROM dblink('completer', $$SELECT workflow.add_tasks('ho-a', 2, 'tap.ho', ARRAY['{}', '{}']::jsonb[])$$)
            AS t(n int)), 2, 'and fans out stage 2 before advancing');
SELECT dblink_exec('completer', 'BEGIN') AS begun \gset
SELECT is((SELECT won FROM dblink('completer', $$SELECT workflow.advance_job_stage('ho-a', 1, 2, '{}')$$) AS t(won boolean)),
          true, 'its advance has run, not committed');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w-main', 10, ARRAY['tap.ho'])), 0::bigint,
          'another worker claims nothing of stage 2 while the advance is not committed');
SELECT is((SELECT stage FROM workflow.jobs WHERE id = 'ho-a'), 1, 'the job is still at stage 1 for it');
SELECT dblink_exec('completer', 'COMMIT') AS committed \gset
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w-main', 10, ARRAY['tap.ho'])), 2::bigint,
          'once the advance committed, stage 2 is claimed');
SELECT is((SELECT count(*) FILTER (WHERE stage_complete) FROM (VALUES (0), (1)) v(i),
                  workflow.complete_task_and_check_stage('ho-a:2:' || i, 'ho-a', 2, '{}')), 1::bigint,
          'stage 2 completed: one stage_complete');
SELECT is(workflow.add_tasks('ho-a', 3, 'tap.ho', ARRAY['{}']::jsonb[]), 1, 'stage 3 fanned out');
SELECT is(workflow.advance_job_stage('ho-a', 2, 3, '{}'), true, 'the completer of stage 2 advances the job (it is at 2)');
SELECT is((SELECT count(*) FROM workflow.claim_tasks('w-main', 10, ARRAY['tap.ho'])), 1::bigint, 'stage 3 claimed');
SELECT workflow.complete_task_and_check_stage('ho-a:3:0', 'ho-a', 3, '{}') AS done \gset
SELECT is(workflow.advance_job_stage('ho-a', 3, 4, '{}'), true, 'the last advance');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'ho-a'), 'completed', 'ho-a completed');

-- ho-b, the late advance of the issue: stage 2 is fanned out before the
-- advance of stage 1, another worker completes all of stage 2 (direct calls,
-- no claim) while the job is at stage 1, its advance(2, 3) loses; then the
-- late advance(1, 2) commits. Before: nobody ever advanced the job again.
SELECT workflow.create_job('ho', '{}', 3, 'ho-b') AS created \gset
SELECT workflow.add_tasks('ho-b', 1, 'tap.ho', ARRAY['{}']::jsonb[]) AS added \gset
SELECT workflow.complete_task_and_check_stage('ho-b:1:0', 'ho-b', 1, '{}') AS done \gset
SELECT workflow.add_tasks('ho-b', 2, 'tap.ho', ARRAY['{}', '{}']::jsonb[]) AS added \gset
SELECT is((SELECT stage_complete FROM dblink('completer',
            $$SELECT bool_or(stage_complete) FROM (VALUES (0), (1)) v(i),
                     workflow.complete_task_and_check_stage('ho-b:2:' || i, 'ho-b', 2, '{}')$$) AS t(stage_complete boolean)),
          true, 'another worker completes stage 2 ahead of the job');
SELECT is((SELECT n FROM dblink('completer', $$SELECT workflow.add_tasks('ho-b', 3, 'tap.ho', ARRAY['{}']::jsonb[])$$)
            AS t(n int)), 1, 'and fans out stage 3');
SELECT is((SELECT won FROM dblink('completer', $$SELECT workflow.advance_job_stage('ho-b', 2, 3, '{}')$$) AS t(won boolean)),
          false, 'its advance(2, 3) loses: the job is at stage 1');
SELECT is(workflow.advance_job_stage('ho-b', 1, 2, '{}'), true, 'the late advance(1, 2)');
SELECT is((SELECT ok FROM workflow.check_invariants('ho-b') WHERE check_name = 'stuck jobs'), false,
          'the job is stuck at its complete stage 2 until somebody takes it over');
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('w-rescue', 10) WHERE job_id LIKE 'ho-%'$$,
                  $$VALUES ('ho-b'::text, 2)$$, 'stage 2 is handed over at once');
SELECT is(workflow.add_tasks('ho-b', 3, 'tap.ho', ARRAY['{}']::jsonb[]), 0, 'the rescuer''s fan-out repeats harmlessly');
SELECT is(workflow.advance_job_stage('ho-b', 2, 3, '{}'), true, 'and it advances the job');
SELECT workflow.complete_task_and_check_stage(id, job_id, stage, '{}') AS done
  FROM workflow.claim_tasks('w-main', 10, ARRAY['tap.ho']) \gset
SELECT is(workflow.advance_job_stage('ho-b', 3, 4, '{}'), true, 'stage 3 done, the job advances to its end');
SELECT is((SELECT status FROM workflow.jobs WHERE id = 'ho-b'), 'completed', 'ho-b completed');

-- ho-c: exactly one claimer. One session claims the hand-over and holds the
-- row (its transaction is open): another claimer skips it, without waiting.
-- The first rolls back: the second gets it, and then the first does not.
SELECT workflow.create_job('ho', '{}', 2, 'ho-c') AS created \gset
SELECT workflow.set_handover_lease('ho-c', '1 millisecond') AS set \gset
SELECT workflow.add_tasks('ho-c', 1, 'tap.ho', ARRAY['{}']::jsonb[]) AS added \gset
SELECT workflow.complete_task_and_check_stage('ho-c:1:0', 'ho-c', 1, '{}') AS done \gset
SELECT pg_sleep(0.05) AS slept \gset
SELECT dblink_exec('completer', 'BEGIN') AS begun \gset
SELECT results_eq($$SELECT * FROM dblink('completer', 'SELECT job_id, stage FROM workflow.claim_stage_handovers(''w-other'', 10)')
                      AS t(job_id text, stage int) WHERE job_id LIKE 'ho-%'$$,
                  $$VALUES ('ho-c'::text, 1)$$, 'the other session claims ho-c stage 1 (not committed)');
SELECT is((SELECT count(*) FROM workflow.claim_stage_handovers('w-main', 10) WHERE job_id = 'ho-c'), 0::bigint,
          'this session skips the locked stage');
SELECT dblink_exec('completer', 'ROLLBACK') AS rolled_back \gset
SELECT results_eq($$SELECT job_id, stage FROM workflow.claim_stage_handovers('w-main', 10) WHERE job_id LIKE 'ho-%'$$,
                  $$VALUES ('ho-c'::text, 1)$$, 'the other rolled back: this session claims it');
SELECT is((SELECT count(*) FROM dblink('completer', 'SELECT job_id FROM workflow.claim_stage_handovers(''w-other'', 10)')
            AS t(job_id text) WHERE job_id = 'ho-c'), 0::bigint, 'and the other cannot claim it now');
SELECT is(workflow.advance_job_stage('ho-c', 1, 2, '{}'), true, 'the claimer advances the job');

SELECT dblink_disconnect('completer') AS disconnected \gset
SELECT * FROM finish();
DELETE FROM workflow.jobs WHERE id LIKE 'ho-%';
DELETE FROM workflow.tasks WHERE job_id LIKE 'ho-%';
DELETE FROM workflow.stage_slots WHERE job_id LIKE 'ho-%';
