-- pgTAP: who may call the survey functions and read the survey tables
-- (issue 10), run as each role (SET SESSION AUTHORIZATION: the session user
-- is the tested role) and as a plain role with only USAGE on schema
-- workflow. Roles created here are rolled back with the transaction.
BEGIN;
SELECT plan(133);

CREATE ROLE roles_survey_producer LOGIN;
CREATE ROLE roles_survey_worker LOGIN;
CREATE ROLE roles_survey_bot LOGIN;
CREATE ROLE roles_survey_auditor LOGIN;
CREATE ROLE roles_survey_admin LOGIN;
CREATE ROLE roles_survey_plain LOGIN;
GRANT workflow_producer TO roles_survey_producer;
GRANT workflow_worker TO roles_survey_worker;
GRANT workflow_survey TO roles_survey_bot;
GRANT workflow_auditor TO roles_survey_auditor;
GRANT workflow_admin TO roles_survey_admin;
GRANT USAGE ON SCHEMA workflow TO roles_survey_plain;

-- probe(sql): 'ok' or the SQLSTATE; the call's effects are always undone.
CREATE FUNCTION pg_temp.probe(sql text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  BEGIN
    EXECUTE sql;
    RAISE SQLSTATE 'RL0OK';
  EXCEPTION WHEN SQLSTATE 'RL0OK' THEN RETURN 'ok';
            WHEN OTHERS THEN RETURN SQLSTATE;
  END;
END $$;
CREATE FUNCTION pg_temp.survey_state() RETURNS text LANGUAGE sql AS $$
  SELECT md5(concat_ws('|',
    (SELECT string_agg(s::text, ',' ORDER BY s.session_id) FROM workflow.survey_sessions s),
    (SELECT string_agg(t::text, ',' ORDER BY t.id) FROM workflow.survey_steps t),
    (SELECT string_agg(n::text, ',' ORDER BY n.name) FROM workflow.survey_step_names n),
    (SELECT string_agg(a::text, ',' ORDER BY a.alias) FROM workflow.survey_step_aliases a)));
$$;

-- A session with a step, recorded by the bot.
SET SESSION AUTHORIZATION roles_survey_bot;
SELECT is((workflow.set_session_timezone('CROLES0001', 'Europe/Berlin')).time_zone, 'Europe/Berlin',
          'bot: set_session_timezone');
SELECT is((workflow.upsert_survey_step('CROLES0001', 'workload_today', '{"hours": 6}',
                                       '2026-11-30 10:00+01')).step_name, 'workload_today',
          'bot: upsert_survey_step');
SELECT is(workflow.upsert_survey_steps('[{"session_id": "CROLES0001", "step_name": "connects_thisweek",
                                          "completed_at": "2026-11-30T12:00:00+01:00"}]'), 1,
          'bot: upsert_survey_steps');
SELECT results_eq($$SELECT step_name FROM workflow.get_weekly_survey_steps('CROLES0001', '2026-12-01 12:00+01')$$,
                  $$VALUES ('connects_thisweek'::text), ('workload_today')$$, 'bot: get_weekly_survey_steps');
SELECT is((SELECT count(*) FROM workflow.survey_steps WHERE session_id = 'CROLES0001'), 2::bigint,
          'bot: reads survey_steps');
RESET SESSION AUTHORIZATION;

CREATE TEMP TABLE calls (n int, sql text, producer text, worker text, bot text, auditor text,
                         admin text, plain text);
INSERT INTO calls VALUES
  (1, $$SELECT workflow.set_session_timezone('CROLES0001', 'UTC')$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (2, $$SELECT workflow.upsert_survey_step('CROLES0002', 'Workload Today', '{"forged": true}')$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (3, $$SELECT workflow.upsert_survey_steps('[{"session_id": "CROLES0001", "step_name": "day_off_thisweek"}]')$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (4, $$SELECT * FROM workflow.get_weekly_survey_steps('CROLES0001', '2026-12-01 12:00+01')$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (5, $$SELECT workflow.cleanup_survey_sessions('0 seconds')$$,
      '42501', '42501', '42501', '42501', 'ok', '42501'),
  (6, $$SELECT * FROM workflow.survey_steps$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (7, $$SELECT * FROM workflow.survey_sessions$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (8, $$SELECT * FROM workflow.survey_weekly_completion$$,
      '42501', '42501', 'ok', '42501', 'ok', '42501'),
  (9, $$SELECT * FROM workflow.survey_step_names$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (10, $$SELECT * FROM workflow.survey_step_aliases$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (11, $$INSERT INTO workflow.survey_step_names (name, description) VALUES ('roles_extra', 'x')$$,
      '42501', '42501', '42501', '42501', 'ok', '42501'),
  (12, $$INSERT INTO workflow.survey_step_aliases (alias, step_name) VALUES ('roles_alias', 'workload_today')$$,
      '42501', '42501', '42501', '42501', 'ok', '42501'),
  (13, $$SELECT workflow.normalize_step_name('Workload Today')$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (14, $$SELECT workflow.step_name_key('Day-Off NextWeek')$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (15, $$SELECT * FROM workflow.parse_session_id(' croles0001 ')$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (16, $$SELECT workflow.is_valid_session_id('CROLES0001')$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (17, $$SELECT workflow.survey_week_start(now(), 'Europe/Berlin')$$,
      'ok', 'ok', 'ok', 'ok', 'ok', 'ok'),
  (18, $$INSERT INTO workflow.survey_steps (session_id, step_name, week_start, completed_at) VALUES ('CROLES0001', 'day_off_nextweek', '2026-11-30', now())$$,
      '42501', '42501', '42501', '42501', '42501', '42501'),
  (19, $$UPDATE workflow.survey_sessions SET time_zone = 'Asia/Tokyo'$$,
      '42501', '42501', '42501', '42501', '42501', '42501'),
  (20, $$DELETE FROM workflow.survey_steps$$,
      '42501', '42501', '42501', '42501', '42501', '42501');
CREATE TEMP TABLE outcomes (role text, n int, outcome text);
GRANT SELECT ON calls TO PUBLIC;
GRANT INSERT ON outcomes TO PUBLIC;

SELECT pg_temp.survey_state() AS before \gset
SET SESSION AUTHORIZATION roles_survey_producer;
INSERT INTO outcomes SELECT 'producer', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_survey_worker;
INSERT INTO outcomes SELECT 'worker', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_survey_bot;
INSERT INTO outcomes SELECT 'bot', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_survey_auditor;
INSERT INTO outcomes SELECT 'auditor', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_survey_admin;
INSERT INTO outcomes SELECT 'admin', n, pg_temp.probe(sql) FROM calls ORDER BY n;
SET SESSION AUTHORIZATION roles_survey_plain;
INSERT INTO outcomes SELECT 'plain', n, pg_temp.probe(sql) FROM calls ORDER BY n;
RESET SESSION AUTHORIZATION;

-- 6 roles x 20 calls = 120 tests
SELECT is(o.outcome, e.expected, format('%s: %s -> %s', o.role, c.sql, e.expected))
  FROM outcomes o
  JOIN calls c USING (n)
  CROSS JOIN LATERAL (SELECT CASE o.role WHEN 'producer' THEN c.producer WHEN 'worker' THEN c.worker
                                         WHEN 'bot' THEN c.bot WHEN 'auditor' THEN c.auditor
                                         WHEN 'admin' THEN c.admin ELSE c.plain END AS expected) e
 ORDER BY array_position(ARRAY['producer', 'worker', 'bot', 'auditor', 'admin', 'plain'], o.role), n;
SELECT is(pg_temp.survey_state(), :'before', 'the probes left the survey tables as they were');

-- Forged survey writes by a role that is not the bot, for real: refused, nothing written.
SET SESSION AUTHORIZATION roles_survey_producer;
SELECT throws_ok($$SELECT workflow.upsert_survey_step('CROLES0001', 'workload_today', '{"hours": 99}')$$,
                 '42501', NULL, 'a producer cannot overwrite a survey step');
SET SESSION AUTHORIZATION roles_survey_plain;
SELECT throws_ok($$SELECT workflow.set_session_timezone('CROLES0001', 'Pacific/Kiritimati')$$,
                 '42501', NULL, 'a role with only USAGE cannot move a session''s weeks');
SELECT throws_ok($$SELECT * FROM workflow.get_weekly_survey_steps('CROLES0001')$$,
                 '42501', NULL, 'a role with only USAGE cannot read a session''s steps');
SET SESSION AUTHORIZATION roles_survey_bot;
SELECT throws_ok($$SELECT workflow.cleanup_survey_sessions('0 seconds')$$,
                 '42501', NULL, 'the bot cannot delete sessions (administrative)');
RESET SESSION AUTHORIZATION;
SELECT is(pg_temp.survey_state(), :'before', 'the refused calls wrote nothing');

-- An admin runs the clean-up and extends the registry.
SET SESSION AUTHORIZATION roles_survey_admin;
SELECT lives_ok($$INSERT INTO workflow.survey_step_names (name, description) VALUES ('roles_extra', 'x')$$,
                'admin: adds a step name');
SELECT is(workflow.cleanup_survey_sessions('100 years'), 0, 'admin: cleanup_survey_sessions');
RESET SESSION AUTHORIZATION;

SELECT * FROM finish();
ROLLBACK;
