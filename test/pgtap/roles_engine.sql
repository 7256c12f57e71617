-- pgTAP: who may call the engine's functions and read its tables (issue 10),
-- run as each role: a producer that owns the job, another producer, a
-- worker, a survey bot, an auditor, an admin, and a plain role with only
-- USAGE on schema workflow. SET SESSION AUTHORIZATION makes each the session
-- user, the identity the SECURITY DEFINER functions check. The roles are
-- created in this transaction and rolled back with it.
BEGIN;
SELECT plan(281);

CREATE ROLE roles_engine_owner LOGIN;
CREATE ROLE roles_engine_other LOGIN;
CREATE ROLE roles_engine_worker LOGIN;
CREATE ROLE roles_engine_survey LOGIN;
CREATE ROLE roles_engine_auditor LOGIN;
CREATE ROLE roles_engine_admin LOGIN;
CREATE ROLE roles_engine_plain LOGIN;
GRANT workflow_producer TO roles_engine_owner, roles_engine_other;
GRANT workflow_worker TO roles_engine_worker;
GRANT workflow_survey TO roles_engine_survey;
GRANT workflow_auditor TO roles_engine_auditor;
GRANT workflow_admin TO roles_engine_admin;
GRANT USAGE ON SCHEMA workflow TO roles_engine_plain;

-- probe(sql): runs sql as the session user and answers 'ok' or its SQLSTATE;
-- its effects are always undone (a subtransaction rolled back), so every
-- probe sees the same state. attempt(sql): the same, keeping the effects of
-- a call that succeeds.
CREATE FUNCTION pg_temp.probe(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE sql;
    RAISE SQLSTATE 'RL0OK';
  EXCEPTION WHEN SQLSTATE 'RL0OK' THEN RETURN 'ok';
            WHEN OTHERS THEN RETURN SQLSTATE;
  END;
END $$;
CREATE FUNCTION pg_temp.attempt(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE sql;
  RETURN 'ok';
EXCEPTION WHEN OTHERS THEN RETURN SQLSTATE;
END $$;
-- Everything the engine stores, as one fingerprint (read as superuser).
CREATE FUNCTION pg_temp.engine_state() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(j::text, ',' ORDER BY j.id) FROM workflow.jobs j),
    (SELECT string_agg(s::text, ',' ORDER BY s.job_id, s.stage) FROM workflow.stages s),
    (SELECT string_agg(x::text, ',' ORDER BY x.job_id, x.stage, x.slot) FROM workflow.stage_slots x),
    (SELECT string_agg(t::text, ',' ORDER BY t.job_id, t.id) FROM workflow.tasks t)));
$$;

-- The job under attack: roles_engine_owner's, 2 stages; stage 1 has tasks
-- 0 and 1 claimed by worker roles-w, task 2 queued, and is not sealed.
SET SESSION AUTHORIZATION roles_engine_owner;
SELECT is(workflow.create_job('roles', '{"secret": "owner"}', 2, 'roles-e-1'), 'roles-e-1', 'owner: create_job');
SELECT is(workflow.add_tasks('roles-e-1', 1, 'roles.t', ARRAY['{"secret": 0}', '{"secret": 1}']::jsonb[],
                             seal => false), 2, 'owner: add_tasks to its own job');
RESET SESSION AUTHORIZATION;
-- (owner read through to_jsonb, so that on a 1.0 schema the test fails rather than the script)
SELECT is((SELECT to_jsonb(j) ->> 'owner' FROM workflow.jobs j WHERE id = 'roles-e-1'), 'roles_engine_owner',
          'the job''s owner is the session user that created it');
SET SESSION AUTHORIZATION roles_engine_worker;
SELECT is((SELECT count(*) FROM workflow.claim_tasks('roles-w', 10, ARRAY['roles.t'])), 2::bigint,
          'worker: claim_tasks on any job');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION roles_engine_owner;
SELECT is(workflow.add_tasks('roles-e-1', 1, 'roles.t', ARRAY['{"secret": 2}']::jsonb[], seal => false,
                             first_index => 2), 1, 'owner: add_tasks again');
RESET SESSION AUTHORIZATION;

-- Every engine function (and direct table access), tried by every role.
-- Expected per role: ok, a SQLSTATE, or '42501' (permission denied).
CREATE TEMP TABLE calls (n int, sql text, owner text, other text, worker text, survey text,
                         auditor text, admin text, plain text);
INSERT INTO calls VALUES
  (1, $$SELECT workflow.create_job('roles', '{}', 1, 'roles-e-new')$$,
      'ok', 'ok', '42501', '42501', '42501', 'ok', '42501'),
  (2, $$SELECT workflow.add_tasks('roles-e-1', 1, 'roles.t', ARRAY['{"evil": 1}']::jsonb[], seal => false, first_index => 10)$$,
      'ok', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (3, $$SELECT workflow.add_tasks('roles-e-1', 2, 'roles.t', ARRAY['{"next": 1}']::jsonb[])$$,
      'ok', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (4, $$SELECT workflow.seal_stage('roles-e-1', 1)$$,
      'ok', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (5, $$SELECT workflow.seal_stage('roles-e-1', 2)$$,
      'ok', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (6, $$SELECT workflow.cancel_job('roles-e-1', 'probe')$$,
      'ok', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (7, $$SELECT * FROM workflow.job_progress('roles-e-1')$$,
      'ok', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (8, $$SELECT workflow.advance_job_stage('roles-e-1', 1, 2, '{}')$$,   -- stage 1 is not complete
      '55000', '42501', '55000', '42501', '42501', '55000', '42501'),
  (9, $$SELECT * FROM workflow.check_job_completion('roles-e-1')$$,
      'ok', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (10, $$SELECT workflow.set_handover_lease('roles-e-1', '2 minutes')$$,
      'ok', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (11, $$SELECT * FROM workflow.claim_tasks('roles-peek', 10, NULL, '1 microsecond')$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (12, $$SELECT workflow.heartbeat_task('roles-e-1:1:0', 'roles-e-1', 'roles-w')$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (13, $$SELECT * FROM workflow.complete_task_and_check_stage('roles-e-1:1:0', 'roles-e-1', 1, '{"forged": true}', worker => 'roles-w')$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (14, $$SELECT * FROM workflow.complete_tasks(ARRAY['roles-e-1'], ARRAY['roles-e-1:1:1'], ARRAY[1], ARRAY['{"forged": true}']::jsonb[], 'roles-w')$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (15, $$SELECT * FROM workflow.fail_task('roles-e-1:1:0', 'roles-e-1', 'forged failure', retryable => false)$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (16, $$SELECT * FROM workflow.claim_stage_handovers('roles-w')$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (17, $$SELECT * FROM workflow.check_invariants('roles-e-1')$$,
      '42501', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (18, $$SELECT workflow.set_job_owner('roles-e-1', 'roles_engine_other')$$,
      '42501', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (19, $$SELECT * FROM workflow.validate()$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (20, $$SELECT workflow.version()$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (21, $$SELECT workflow.retry_delay(2)$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (22, $$SELECT * FROM workflow.jobs$$,
      'ok', 'ok', 'ok', '42501', '42501', 'ok', '42501'),
  (23, $$SELECT * FROM workflow.stages$$,
      'ok', 'ok', 'ok', '42501', '42501', 'ok', '42501'),
  (24, $$SELECT * FROM workflow.tasks$$,
      'ok', 'ok', 'ok', '42501', '42501', 'ok', '42501'),
  (25, $$SELECT * FROM workflow.stage_slots$$,
      '42501', '42501', '42501', '42501', '42501', 'ok', '42501'),
  (26, $$UPDATE workflow.jobs SET status = 'cancelled' WHERE id = 'roles-e-1'$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (27, $$INSERT INTO workflow.tasks (id, job_id, task_type, stage, task_index, slot) VALUES ('roles-e-1:1:99', 'roles-e-1', 'x', 1, 99, 0)$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (28, $$DELETE FROM workflow.stage_slots$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (29, $$SELECT workflow._engine_end_job('roles-e-1', 'cancelled', 'x')$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (30, $$SELECT workflow._engine_job('roles-e-1')$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (31, $$SELECT workflow._engine_notify_job_complete('roles-e-1', 'completed')$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (32, $$SELECT workflow._is_admin()$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501'),
  (33, $$SELECT * FROM workflow.claim_tasks_for_workers(ARRAY['roles-peek-1', 'roles-peek-2'], NULL, '1 microsecond')$$,
      '42501', '42501', 'ok', '42501', '42501', 'ok', '42501'),
  (34, $$SELECT * FROM workflow._engine_claim(ARRAY['roles-peek'], 10, NULL, '1 microsecond')$$,
      '42501', '42501', '42501', '42501', '42501', '42501', '42501');
CREATE TEMP TABLE outcomes (role text, n int, outcome text);
GRANT SELECT ON calls TO PUBLIC;
GRANT INSERT ON outcomes TO PUBLIC;

SELECT pg_temp.engine_state() AS before \gset
SET SESSION AUTHORIZATION roles_engine_owner;
INSERT INTO outcomes SELECT 'owner', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_engine_other;
INSERT INTO outcomes SELECT 'other', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_engine_worker;
INSERT INTO outcomes SELECT 'worker', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_engine_survey;
INSERT INTO outcomes SELECT 'survey', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_engine_auditor;
INSERT INTO outcomes SELECT 'auditor', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_engine_admin;
INSERT INTO outcomes SELECT 'admin', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_engine_plain;
INSERT INTO outcomes SELECT 'plain', n, pg_temp.probe(sql) FROM calls ORDER BY n;
RESET SESSION AUTHORIZATION;

-- 7 roles x 34 calls = 238 tests
SELECT is(o.outcome, e.expected, format('%s: %s -> %s', o.role, c.sql, e.expected))
  FROM outcomes o
  JOIN calls c USING (n)
  CROSS JOIN LATERAL (SELECT CASE o.role WHEN 'owner' THEN c.owner WHEN 'other' THEN c.other
                                         WHEN 'worker' THEN c.worker WHEN 'survey' THEN c.survey
                                         WHEN 'auditor' THEN c.auditor WHEN 'admin' THEN c.admin
                                         ELSE c.plain END AS expected) e
 ORDER BY array_position(ARRAY['owner', 'other', 'worker', 'survey', 'auditor', 'admin', 'plain'], o.role), n;
SELECT is(pg_temp.engine_state(), :'before', 'the probes left the engine''s tables as they were');

-- The attacks of issue 10, for real (effects kept if any got through), by
-- another producer and by a role with only USAGE: each is refused, and
-- nothing is written.
SET SESSION AUTHORIZATION roles_engine_other;
SELECT throws_ok($$SELECT workflow.cancel_job('roles-e-1', 'mine now')$$, '42501',
                 'permission denied to cancel job ''roles-e-1'': role roles_engine_other does not own it',
                 'another producer cannot cancel the job (the message names the job and the role)');
SELECT throws_ok($$SELECT * FROM workflow.fail_task('roles-e-1:1:2', 'roles-e-1', 'forged', retryable => false)$$,
                 '42501', NULL, 'another producer cannot fail its tasks');
SELECT throws_ok($$SELECT workflow.add_tasks('roles-e-1', 1, 'roles.t', ARRAY['{"evil": true}']::jsonb[], first_index => 50)$$,
                 '42501', NULL, 'another producer cannot add tasks to it');
SELECT throws_ok($$SELECT * FROM workflow.complete_task_and_check_stage('roles-e-1:1:2', 'roles-e-1', 1, '{"forged": true}')$$,
                 '42501', NULL, 'another producer cannot complete its tasks');
SELECT throws_ok($$SELECT * FROM workflow.claim_tasks('roles-peek', 100, NULL, '1 microsecond')$$,
                 '42501', NULL, 'another producer cannot peek at queued tasks with claim_tasks');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = 'roles-e-1'), 0::bigint,
          'another producer reads none of its tasks');
SELECT is((SELECT count(*) FROM workflow.jobs WHERE id = 'roles-e-1'), 0::bigint,
          'another producer does not see the job row');
SET SESSION AUTHORIZATION roles_engine_plain;
SELECT is(pg_temp.attempt($$SELECT workflow.cancel_job('roles-e-1')$$)
          || pg_temp.attempt($$SELECT * FROM workflow.fail_task('roles-e-1:1:2', 'roles-e-1', 'x', retryable => false)$$)
          || pg_temp.attempt($$SELECT workflow.add_tasks('roles-e-1', 1, 'x', ARRAY['{}']::jsonb[], first_index => 60)$$)
          || pg_temp.attempt($$SELECT * FROM workflow.complete_task_and_check_stage('roles-e-1:1:2', 'roles-e-1', 1, '{}')$$)
          || pg_temp.attempt($$SELECT * FROM workflow.claim_tasks('roles-peek', 100, NULL, '1 microsecond')$$)
          || pg_temp.attempt($$SELECT count(*) FROM workflow.tasks$$),
          repeat('42501', 6), 'a role with only USAGE: cancel, fail, add, complete, peek, read -> 42501 each');
RESET SESSION AUTHORIZATION;
SELECT is(pg_temp.engine_state(), :'before', 'the attacks wrote nothing');
SELECT results_eq($$SELECT status, (SELECT count(*) FROM workflow.tasks WHERE job_id = 'roles-e-1')
                      FROM workflow.jobs WHERE id = 'roles-e-1'$$,
                  $$VALUES ('running'::text, 3::bigint)$$, 'the job still runs, with its 3 tasks');

-- The identity is the session user: a login that may SET ROLE to the owner
-- passes the EXECUTE check (current_user) but is still not the owner.
CREATE ROLE roles_engine_svc LOGIN;
GRANT roles_engine_owner TO roles_engine_svc;
SET SESSION AUTHORIZATION roles_engine_svc;
SET ROLE roles_engine_owner;
SELECT throws_ok($$SELECT workflow.cancel_job('roles-e-1')$$, '42501',
                 'permission denied to cancel job ''roles-e-1'': role roles_engine_svc does not own it',
                 'SET ROLE to the owner does not make another login the owner');
SELECT is((SELECT count(*) FROM workflow.jobs WHERE id = 'roles-e-1'), 0::bigint,
          '... nor show it the owner''s rows');
RESET ROLE;
RESET SESSION AUTHORIZATION;

-- Allowed calls with their effects: a job run by its owner and a worker.
SET SESSION AUTHORIZATION roles_engine_owner;
SELECT is(workflow.create_job('roles', '{}', 3, 'roles-e-2'), 'roles-e-2', 'owner: a second job');
SELECT is(workflow.add_tasks('roles-e-2', 1, 'roles.flow', ARRAY['{"i": 0}', '{"i": 1}']::jsonb[]), 2,
          'owner: fan out stage 1');
SET SESSION AUTHORIZATION roles_engine_worker;
SELECT is((SELECT count(*) FROM workflow.claim_tasks('roles-w2', 10, ARRAY['roles.flow'])), 2::bigint,
          'worker: claims them');
SELECT is((SELECT stage_complete FROM workflow.complete_task_and_check_stage('roles-e-2:1:0', 'roles-e-2', 1,
                                                                           '{"r": 0}', worker => 'roles-w2')),
          false, 'worker: completes one');
SELECT is((SELECT stage_complete FROM workflow.complete_tasks(ARRAY['roles-e-2'], ARRAY['roles-e-2:1:1'], ARRAY[1],
                                                             ARRAY['{"r": 1}']::jsonb[], 'roles-w2')),
          true, 'worker: completes the last one of the stage');
SELECT throws_ok($$SELECT workflow.add_tasks('roles-e-2', 3, 'roles.flow', ARRAY['{}']::jsonb[])$$, '42501', NULL,
                 'worker: not two stages ahead (the job is at stage 1)');
SELECT is(workflow.add_tasks('roles-e-2', 2, 'roles.flow', ARRAY['{"i": 2}']::jsonb[]), 1,
          'worker: fans out the next stage');
SELECT is(workflow.advance_job_stage('roles-e-2', 1, 2, '{"stage": 1}'), true, 'worker: advances the job');
SELECT is((SELECT count(*) FROM workflow.jobs WHERE id IN ('roles-e-1', 'roles-e-2')), 2::bigint,
          'worker: reads every job');
SET SESSION AUTHORIZATION roles_engine_owner;
SELECT results_eq($$SELECT stage, completed_tasks, complete FROM workflow.job_progress('roles-e-2')$$,
                  $$VALUES (1, 2, true), (2, 0, false), (3, 0, false)$$, 'owner: job_progress of its job');
SELECT results_eq($$SELECT id, result_data FROM workflow.tasks WHERE job_id = 'roles-e-2' AND stage = 1 ORDER BY id$$,
                  $$VALUES ('roles-e-2:1:0'::text, '{"r": 0}'::jsonb), ('roles-e-2:1:1', '{"r": 1}')$$,
                  'owner: reads its tasks'' results');
SELECT results_eq($$SELECT id FROM workflow.jobs ORDER BY id$$, $$VALUES ('roles-e-1'::text), ('roles-e-2')$$,
                  'owner: sees exactly its own jobs');
SELECT is(workflow.seal_stage('roles-e-2', 3), true, 'owner: seals a later stage of its job (empty: complete)');
SET SESSION AUTHORIZATION roles_engine_other;
SELECT is((SELECT count(*) FROM workflow.stages WHERE job_id = 'roles-e-2'), 0::bigint,
          'another producer reads none of its stages');
SELECT throws_ok($$SELECT * FROM workflow.job_progress('roles-e-2')$$, '42501', NULL,
                 'another producer cannot read its progress');
RESET SESSION AUTHORIZATION;

-- A job from before 1.1 (owner NULL): admin-only, workers still run it.
SELECT is(workflow.create_job('roles', '{}', 1, 'roles-e-old'), 'roles-e-old', 'a job by the superuser');
SELECT is((SELECT to_jsonb(j) ->> 'owner' FROM workflow.jobs j WHERE id = 'roles-e-old'), session_user::text,
          'owned by the superuser');
DO $$ BEGIN EXECUTE 'UPDATE workflow.jobs SET owner = NULL WHERE id = ''roles-e-old'''; EXCEPTION WHEN undefined_column THEN NULL; END $$;
SET SESSION AUTHORIZATION roles_engine_owner;
SELECT throws_ok($$SELECT workflow.cancel_job('roles-e-old')$$, '42501', NULL,
                 'an unowned job: a producer cannot cancel it');
SET SESSION AUTHORIZATION roles_engine_worker;
SELECT is((SELECT count(*) FROM workflow.job_progress('roles-e-old')), 1::bigint, 'an unowned job: a worker reads it');
SET SESSION AUTHORIZATION roles_engine_admin;
SELECT lives_ok($$SELECT workflow.set_job_owner('roles-e-old', 'roles_engine_owner')$$,
                'admin: hands it to a producer');
SELECT throws_ok($$SELECT workflow.set_job_owner('roles-e-old', 'roles_engine_nobody')$$, '22023', NULL,
                 'admin: set_job_owner to an unknown role -> 22023');
SET SESSION AUTHORIZATION roles_engine_owner;
SELECT is(workflow.cancel_job('roles-e-old'), true, 'the producer it was handed to cancels it');

-- An admin acts on another owner's job.
SET SESSION AUTHORIZATION roles_engine_admin;
SELECT is(workflow.cancel_job('roles-e-1', 'admin'), true, 'admin: cancels another owner''s job');
RESET SESSION AUTHORIZATION;

-- No engine function is executable by PUBLIC but the pure ones (the audit
-- functions are judged by the audit suites).
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'workflow'::regnamespace
                   AND has_function_privilege('public', p.oid, 'EXECUTE')
                   AND p.proname !~ 'audit' AND p.proname NOT IN ('row_history', 'row_as_of', 'set_updated_at')
                 ORDER BY 1),
          ARRAY['is_valid_session_id', 'normalize_step_name', 'parse_session_id', 'retry_delay',
                'step_name_key', 'survey_week_start', 'validate', 'version'],
          'PUBLIC executes only the pure engine and survey functions');
-- Every other one is granted to workflow_admin, or internal (_name), but
-- distribute(): it changes the tables themselves (Citus needs their owner,
-- a superuser), so only a superuser runs it.
SELECT is(ARRAY(SELECT p.proname::text FROM pg_proc p
                 WHERE p.pronamespace = 'workflow'::regnamespace
                   AND NOT has_function_privilege('workflow_admin', p.oid, 'EXECUTE')
                   AND p.proname !~ '^_' AND p.proname !~ 'audit'
                   AND p.proname NOT IN ('row_history', 'row_as_of', 'set_updated_at')
                 ORDER BY 1),
          ARRAY['distribute']::text[], 'workflow_admin executes every engine and survey function but distribute()');

SELECT * FROM finish();
ROLLBACK;
