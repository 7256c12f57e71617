-- Audit history by role (issue 10): who reads which history (row-level
-- security, REVOKE, DROP), what the log says about who made a change (actor
-- spoofing, SECURITY DEFINER writers), who may purge it and who may fill it.
-- Each role is the session user (SET SESSION AUTHORIZATION), as a login is.
BEGIN;
SELECT plan(62);

SET client_min_messages = warning;
CREATE ROLE audit_roles_owner LOGIN;     -- owns the audited tables, granted the right to audit
CREATE ROLE audit_roles_reader LOGIN;    -- SELECT on the tables, nothing else
CREATE ROLE audit_roles_auditor LOGIN IN ROLE workflow_auditor;
CREATE ROLE audit_roles_readall LOGIN IN ROLE pg_read_all_data;
CREATE ROLE audit_roles_scratch LOGIN;   -- owns a scratch table, no right to audit
CREATE ROLE audit_roles_writer LOGIN;    -- UPDATE on a table: claims to be someone else
CREATE ROLE audit_roles_purger LOGIN;    -- EXECUTE on purge_audit_log only
CREATE ROLE audit_roles_deleter LOGIN;   -- DELETE on the log, no EXECUTE
CREATE ROLE audit_roles_admin LOGIN IN ROLE workflow_admin;
CREATE ROLE audit_roles_survey LOGIN IN ROLE workflow_survey;
GRANT USAGE ON SCHEMA workflow TO audit_roles_owner, audit_roles_reader, audit_roles_auditor,
  audit_roles_readall, audit_roles_scratch, audit_roles_writer, audit_roles_purger,
  audit_roles_deleter, audit_roles_admin, audit_roles_survey;
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                          workflow.disable_audit(regclass) TO audit_roles_owner;
GRANT EXECUTE ON FUNCTION workflow.purge_audit_log(interval) TO audit_roles_purger;
GRANT DELETE ON workflow.audit_log TO audit_roles_deleter;
-- (the survey grants are the roles helper's; given here so this suite does not depend on them)
GRANT EXECUTE ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) TO audit_roles_survey;
CREATE SCHEMA audit_roles_s AUTHORIZATION audit_roles_owner;
CREATE SCHEMA audit_roles_scratch_s AUTHORIZATION audit_roles_scratch;
GRANT USAGE ON SCHEMA audit_roles_s TO PUBLIC;
GRANT USAGE ON SCHEMA audit_roles_scratch_s TO PUBLIC;

-- Privileges as documented (README "Who may do what").
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
   WHERE p.oid IN ('workflow.enable_audit(regclass,text[],boolean)'::regprocedure,
                   'workflow.disable_audit(regclass)'::regprocedure,
                   'workflow.purge_audit_log(interval)'::regprocedure,
                   'workflow.set_updated_at()'::regprocedure,
                   'workflow.audit_trigger()'::regprocedure,
                   'workflow.audit_drop_triggers(regclass)'::regprocedure)
     AND has_function_privilege('public', p.oid, 'EXECUTE') $$,
  'enabling, disabling, purging and the trigger functions are not executable by PUBLIC');
SELECT ok(has_function_privilege('workflow_admin', 'workflow.enable_audit(regclass,text[],boolean)', 'EXECUTE')
          AND has_function_privilege('workflow_admin', 'workflow.disable_audit(regclass)', 'EXECUTE')
          AND has_function_privilege('workflow_admin', 'workflow.purge_audit_log(interval)', 'EXECUTE'),
          'workflow_admin may enable, disable and purge');
SELECT ok(NOT has_function_privilege('workflow_auditor', 'workflow.purge_audit_log(interval)', 'EXECUTE')
          AND NOT has_function_privilege('workflow_auditor', 'workflow.enable_audit(regclass,text[],boolean)', 'EXECUTE'),
          'workflow_auditor reads only');
SELECT ok(has_table_privilege('workflow_auditor', 'workflow.audit_log', 'SELECT')
          AND has_table_privilege('workflow_auditor', 'workflow.task_history', 'SELECT')
          AND has_function_privilege('workflow_auditor', 'workflow.row_history(regclass,jsonb)', 'EXECUTE')
          AND has_function_privilege('workflow_auditor', 'workflow.row_as_of(regclass,jsonb,timestamptz)', 'EXECUTE'),
          'workflow_auditor is granted the readers explicitly');
SELECT ok(NOT has_table_privilege('public', 'workflow.audit_tables', 'INSERT')
          AND NOT has_table_privilege('public', 'workflow.audit_tables', 'UPDATE')
          AND NOT has_sequence_privilege('public', 'workflow.audit_tables_id_seq', 'USAGE'),
          'PUBLIC cannot write the registry');
SELECT ok(EXISTS (SELECT 1 FROM pg_proc WHERE oid = 'workflow.purge_audit_log(interval)'::regprocedure AND prosecdef)
          AND EXISTS (SELECT 1 FROM pg_proc WHERE oid = 'workflow.enable_audit(regclass,text[],boolean)'::regprocedure AND prosecdef),
          'purge_audit_log and enable_audit are SECURITY DEFINER');
SELECT col_type_is('workflow', 'audit_log', 'session_user_name', 'text', 'the log has session_user_name');
SELECT col_type_is('workflow', 'audit_log', 'current_user_name', 'text', 'the log has current_user_name');

-- The owner, granted the right, audits a table with row-level security and two without.
SET SESSION AUTHORIZATION audit_roles_owner;
CREATE TABLE audit_roles_s.secrets (id int PRIMARY KEY, who text, body text);
ALTER TABLE audit_roles_s.secrets ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON audit_roles_s.secrets USING (who = current_user);
CREATE TABLE audit_roles_s.notes (id int PRIMARY KEY, note text);
CREATE TABLE audit_roles_s.board (id int PRIMARY KEY, note text);
GRANT SELECT ON audit_roles_s.secrets, audit_roles_s.notes, audit_roles_s.board
  TO audit_roles_reader, audit_roles_writer;
GRANT UPDATE ON audit_roles_s.notes TO audit_roles_writer;
SELECT lives_ok($$ SELECT workflow.enable_audit('audit_roles_s.secrets') $$, 'an owner granted EXECUTE audits its table');
SELECT lives_ok($$ SELECT workflow.enable_audit('audit_roles_s.notes') $$, 'and another');
SELECT lives_ok($$ SELECT workflow.enable_audit('audit_roles_s.board') $$, 'and a third');
INSERT INTO audit_roles_s.secrets VALUES (1, 'nobody', 'the plan');
INSERT INTO audit_roles_s.notes VALUES (1, 'hello');
INSERT INTO audit_roles_s.board VALUES (1, 'pinned');
SELECT is((SELECT count(*)::int FROM workflow.row_history('audit_roles_s.secrets', '{"id": 1}')), 1,
          'the owner reads the history of its table with row-level security');
RESET SESSION AUTHORIZATION;

-- RLS bypass through the log: the reader may SELECT the table, the policy hides the row.
SET SESSION AUTHORIZATION audit_roles_reader;
SELECT is((SELECT count(*)::int FROM audit_roles_s.secrets), 0, 'the table''s policy hides the row from the reader');
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE table_name = 'secrets' AND schema_name = 'audit_roles_s'), 0,
          'audit_log does not show it either');
SELECT is((SELECT count(*)::int FROM workflow.row_history('audit_roles_s.secrets', '{"id": 1}')), 0,
          'nor row_history');
SELECT is(workflow.row_as_of('audit_roles_s.secrets', '{"id": 1}', now() + interval '1 day'), NULL,
          'nor row_as_of');
SELECT is((SELECT count(*)::int FROM workflow.row_history('audit_roles_s.notes', '{"id": 1}')), 1,
          'the reader reads the history of a table without row-level security (as before)');
SELECT is(workflow.row_as_of('audit_roles_s.notes', '{"id": 1}', now() + interval '1 day'),
          '{"id": 1, "note": "hello"}'::jsonb, 'and rebuilds its row');
RESET SESSION AUTHORIZATION;

-- pg_read_all_data: SELECT on every table, no BYPASSRLS.
SET SESSION AUTHORIZATION audit_roles_readall;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s' AND table_name = 'notes'), 1,
          'pg_read_all_data reads the history of a table without row-level security');
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s' AND table_name = 'secrets'), 0,
          'pg_read_all_data does not read the history of a table with row-level security');
RESET SESSION AUTHORIZATION;

-- Actor spoofing: workflow.actor is a claim; the server's names are the truth.
SET SESSION AUTHORIZATION audit_roles_writer;
SET LOCAL workflow.actor = 'audit_roles_owner';
UPDATE audit_roles_s.notes SET note = 'forged' WHERE id = 1;
RESET workflow.actor;
UPDATE audit_roles_s.notes SET note = 'plain' WHERE id = 1;
RESET SESSION AUTHORIZATION;
SELECT results_eq($$ SELECT actor, session_user_name, current_user_name FROM workflow.audit_log
                      WHERE schema_name = 'audit_roles_s' AND table_name = 'notes' AND operation = 'UPDATE' ORDER BY id $$,
                  $$ VALUES ('audit_roles_owner'::text, 'audit_roles_writer'::text, 'audit_roles_writer'::text),
                            ('audit_roles_writer', 'audit_roles_writer', 'audit_roles_writer') $$,
                  'a claimed actor is logged as claimed, beside the session user who made the change; unset, actor is the session user');
SELECT is((SELECT session_user_name FROM workflow.audit_log
            WHERE schema_name = 'audit_roles_s' AND table_name = 'notes' AND operation = 'INSERT'),
          'audit_roles_owner'::text, 'the owner''s insert names the owner');

-- SET ROLE: the session user stays, the current user changes.
GRANT audit_roles_writer TO audit_roles_reader;
SET SESSION AUTHORIZATION audit_roles_reader;
SET LOCAL ROLE audit_roles_writer;
UPDATE audit_roles_s.notes SET note = 'via set role' WHERE id = 1;
RESET ROLE;
RESET SESSION AUTHORIZATION;
REVOKE audit_roles_writer FROM audit_roles_reader;
SELECT results_eq($$ SELECT actor, session_user_name, current_user_name FROM workflow.audit_log
                      WHERE schema_name = 'audit_roles_s' AND table_name = 'notes' AND new_values ->> 'note' = 'via set role' $$,
                  $$ VALUES ('audit_roles_reader'::text, 'audit_roles_reader'::text, 'audit_roles_writer'::text) $$,
                  'after SET ROLE: session_user_name is the login, current_user_name the role set');

-- A SECURITY DEFINER writer: current_user is its owner, session_user the caller.
SET SESSION AUTHORIZATION audit_roles_owner;
CREATE FUNCTION audit_roles_s.touch_board(v text) RETURNS void LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog AS $$ UPDATE audit_roles_s.board SET note = v WHERE id = 1 $$;
GRANT EXECUTE ON FUNCTION audit_roles_s.touch_board(text) TO audit_roles_writer;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_writer;
SELECT audit_roles_s.touch_board('by definer');
RESET SESSION AUTHORIZATION;
SELECT results_eq($$ SELECT actor, session_user_name, current_user_name FROM workflow.audit_log
                      WHERE schema_name = 'audit_roles_s' AND table_name = 'board' AND operation = 'UPDATE' $$,
                  $$ VALUES ('audit_roles_writer'::text, 'audit_roles_writer'::text, 'audit_roles_owner'::text) $$,
                  'inside a SECURITY DEFINER function: the caller is the actor and session user, the definer the current user');

-- The survey upserts are SECURITY DEFINER: the true session user is logged, not the definer.
SET SESSION AUTHORIZATION audit_roles_survey;
SELECT lives_ok($$ SELECT workflow.upsert_survey_step('C0AUDITROLES', 'workload_today', '{"h": 2}') $$,
                'a survey role records a step');
RESET SESSION AUTHORIZATION;
SELECT results_eq($$ SELECT actor, session_user_name, current_user_name FROM workflow.audit_log
                      WHERE schema_name = 'workflow' AND table_name = 'survey_steps'
                        AND new_values ->> 'session_id' ILIKE 'c0auditroles' $$,
                  $$ SELECT 'audit_roles_survey'::text, 'audit_roles_survey'::text, r.rolname::text COLLATE "default"
                       FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE p.oid = 'workflow.upsert_survey_step(text,text,jsonb,timestamptz)'::regprocedure $$,
                  'a survey write names the survey role as actor and session user, the definer as current user');

-- The auditor: every table's history, without any privilege on the tables.
SET SESSION AUTHORIZATION audit_roles_auditor;
SELECT throws_ok($$ SELECT count(*) FROM audit_roles_s.secrets $$, '42501', NULL, 'the auditor cannot read the table itself');
SELECT is((SELECT count(*)::int FROM workflow.row_history('audit_roles_s.secrets', '{"id": 1}')), 1,
          'the auditor reads the history of a table with row-level security');
SELECT is(workflow.row_as_of('audit_roles_s.secrets', '{"id": 1}', now() + interval '1 day'),
          '{"id": 1, "who": "nobody", "body": "the plan"}'::jsonb, 'and rebuilds its row');
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s'), 7,
          'and every row of every table in the log');
RESET SESSION AUTHORIZATION;

-- REVOKE: the reader loses the history with the table, the auditor keeps it.
SET SESSION AUTHORIZATION audit_roles_owner;
REVOKE SELECT ON audit_roles_s.notes FROM audit_roles_reader;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_reader;
SELECT is((SELECT count(*)::int FROM workflow.row_history('audit_roles_s.notes', '{"id": 1}')), 0,
          'after REVOKE the reader reads no history of the table');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_auditor;
SELECT is((SELECT count(*)::int FROM workflow.row_history('audit_roles_s.notes', '{"id": 1}')), 4,
          'after REVOKE the auditor still reads it');
RESET SESSION AUTHORIZATION;

-- DROP TABLE: the history is the auditors' (and not pg_read_all_data's).
SET SESSION AUTHORIZATION audit_roles_owner;
DROP TABLE audit_roles_s.notes;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_auditor;
SELECT results_eq($$ SELECT operation, session_user_name FROM workflow.audit_log
                      WHERE schema_name = 'audit_roles_s' AND table_name = 'notes' ORDER BY id $$,
                  $$ VALUES ('INSERT'::text, 'audit_roles_owner'::text), ('UPDATE', 'audit_roles_writer'),
                            ('UPDATE', 'audit_roles_writer'), ('UPDATE', 'audit_roles_reader') $$,
                  'after DROP TABLE the auditor reads the dropped table''s history');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_readall;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s' AND table_name = 'notes'), 0,
          'pg_read_all_data does not read the history of a dropped table');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_owner;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s' AND table_name = 'notes'), 0,
          'nor its former owner');
RESET SESSION AUTHORIZATION;

-- Log flooding: owning a table is not the right to audit it.
SET SESSION AUTHORIZATION audit_roles_scratch;
CREATE TABLE audit_roles_scratch_s.junk (id int PRIMARY KEY, v text);
SELECT throws_ok($$ SELECT workflow.enable_audit('audit_roles_scratch_s.junk') $$, '42501', NULL,
                 'a role that merely owns a table cannot audit it');
SELECT throws_ok($$ CREATE TRIGGER flood AFTER INSERT ON audit_roles_scratch_s.junk
                    FOR EACH ROW EXECUTE FUNCTION workflow.audit_trigger('1') $$, '42501', NULL,
                 'nor attach the audit trigger itself');
SELECT throws_ok($$ INSERT INTO workflow.audit_tables (schema_name, table_name, relid)
                    VALUES ('audit_roles_scratch_s', 'junk', 'audit_roles_scratch_s.junk'::regclass) $$, '42501', NULL,
                 'nor register it');
SELECT throws_ok($$ SELECT workflow.disable_audit('audit_roles_s.secrets') $$, '42501', NULL,
                 'nor disable the audit of another''s table');
INSERT INTO audit_roles_scratch_s.junk SELECT g, 'x' FROM generate_series(1, 100) g;
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_scratch_s'), 0,
          'nothing of the scratch table is logged');
SELECT is((SELECT count(*)::int FROM workflow.audit_tables WHERE schema_name = 'audit_roles_scratch_s'), 0,
          'nor registered');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'audit_roles_scratch_s.junk'::regclass), 0,
          'nor given a trigger');

-- The right without ownership is not enough either.
SET SESSION AUTHORIZATION audit_roles_admin;
SELECT throws_ok($$ SELECT workflow.enable_audit('audit_roles_scratch_s.junk') $$, '42501',
                 'workflow.enable_audit: must be owner of table audit_roles_scratch_s.junk',
                 'an admin cannot audit a table it does not own');
SELECT throws_ok($$ SELECT workflow.disable_audit('audit_roles_s.secrets') $$, '42501', NULL,
                 'nor disable the audit of one');
RESET SESSION AUTHORIZATION;
CREATE TABLE audit_roles_s.admin_own (id int PRIMARY KEY);
ALTER TABLE audit_roles_s.admin_own OWNER TO audit_roles_admin;
SET SESSION AUTHORIZATION audit_roles_admin;
SELECT lives_ok($$ SELECT workflow.enable_audit('audit_roles_s.admin_own') $$, 'an admin audits a table it owns');
SELECT lives_ok($$ SELECT workflow.disable_audit('audit_roles_s.admin_own') $$, 'and stops auditing it');
RESET SESSION AUTHORIZATION;

-- A DBA delegates the right to a service by one grant (and can take it back).
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean) TO audit_roles_scratch;
SET SESSION AUTHORIZATION audit_roles_scratch;
SELECT lives_ok($$ SELECT workflow.enable_audit('audit_roles_scratch_s.junk') $$, 'granted EXECUTE, the owner audits its table');
RESET SESSION AUTHORIZATION;
REVOKE EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean) FROM audit_roles_scratch;
SET SESSION AUTHORIZATION audit_roles_scratch;
SELECT throws_ok($$ SELECT workflow.enable_audit('audit_roles_scratch_s.junk', '{v}') $$, '42501', NULL,
                 'the grant revoked, it cannot change the audit again');
RESET SESSION AUTHORIZATION;

-- Partitions added by whoever may add them keep being audited (the event
-- trigger re-attaches): also from a SECURITY DEFINER function of the owner's
-- called by a role that is not a member of the owner.
SET SESSION AUTHORIZATION audit_roles_owner;
CREATE TABLE audit_roles_s.events (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
CREATE TABLE audit_roles_s.events_2026 PARTITION OF audit_roles_s.events FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');
SELECT workflow.enable_audit('audit_roles_s.events');
CREATE FUNCTION audit_roles_s.add_year(y int) RETURNS void LANGUAGE plpgsql SECURITY DEFINER
  SET search_path = pg_catalog AS $$
BEGIN
  EXECUTE format('CREATE TABLE audit_roles_s.events_%s PARTITION OF audit_roles_s.events FOR VALUES FROM (%L) TO (%L)',
                 y, make_date(y, 1, 1), make_date(y + 1, 1, 1));
END $$;
GRANT EXECUTE ON FUNCTION audit_roles_s.add_year(int) TO audit_roles_writer;
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_writer;
SELECT lives_ok($$ SELECT audit_roles_s.add_year(2027) $$, 'a partition added through the owner''s SECURITY DEFINER function');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_owner;
INSERT INTO audit_roles_s.events_2027 VALUES (1, '2027-05-01');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s' AND table_name = 'events'), 1,
          'gets the audit triggers: a write made directly to it is logged');

-- Purge delegation. Old rows are planted (the test's own rows are not old).
INSERT INTO workflow.audit_log (table_id, schema_name, table_name, operation, row_key, actor, txid, changed_at)
SELECT 2000000000, 'audit_roles_s', 'ancient', 'INSERT', jsonb_build_object('id', g), 'then', 1, now() - interval '400 days'
  FROM generate_series(1, 5) g;
SET SESSION AUTHORIZATION audit_roles_reader;
SELECT throws_ok($$ SELECT workflow.purge_audit_log(interval '1 day') $$, '42501', NULL,
                 'a role without EXECUTE cannot purge');
RESET SESSION AUTHORIZATION;
SET SESSION AUTHORIZATION audit_roles_deleter;
SELECT lives_ok($$ DELETE FROM workflow.audit_log $$, 'a role with DELETE on the log may run a DELETE');
SELECT throws_ok($$ SELECT workflow.purge_audit_log(interval '1 day') $$, '42501', NULL,
                 'and DELETE is not the right to purge');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE table_name = 'ancient'), 5,
          'nothing was deleted so far (no policy allows DELETE: purge_audit_log is the way)');

-- EXECUTE that reaches the session user only through a definer is not enough.
SET SESSION AUTHORIZATION audit_roles_owner;
CREATE FUNCTION audit_roles_s.purge_for_anyone() RETURNS bigint LANGUAGE sql SECURITY DEFINER
  SET search_path = pg_catalog AS $$ SELECT workflow.purge_audit_log(interval '1 day') $$;
GRANT EXECUTE ON FUNCTION audit_roles_s.purge_for_anyone() TO audit_roles_reader;
RESET SESSION AUTHORIZATION;
ALTER FUNCTION audit_roles_s.purge_for_anyone() OWNER TO audit_roles_purger;
SET SESSION AUTHORIZATION audit_roles_reader;
SELECT throws_ok($$ SELECT audit_roles_s.purge_for_anyone() $$, '42501', NULL,
                 'a purger''s SECURITY DEFINER wrapper does not give its callers the purge');
RESET SESSION AUTHORIZATION;

SET SESSION AUTHORIZATION audit_roles_purger;
SELECT throws_ok($$ SELECT count(*) FROM audit_roles_s.board $$, '42501', NULL, 'the purger cannot read the tables');
SELECT is(workflow.purge_audit_log(interval '1 day'), 5::bigint,
          'EXECUTE alone delegates the purge: it deletes every old row, whoever may read them');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE table_name = 'ancient'), 0, 'the old rows are gone');
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE schema_name = 'audit_roles_s' AND table_name = 'secrets'), 1,
          'the new ones stay');
INSERT INTO workflow.audit_log (table_id, schema_name, table_name, operation, row_key, actor, txid, changed_at)
VALUES (2000000000, 'audit_roles_s', 'ancient', 'INSERT', '{"id": 9}', 'then', 1, now() - interval '400 days');
SET SESSION AUTHORIZATION audit_roles_admin;
SELECT is(workflow.purge_audit_log(interval '1 day'), 1::bigint, 'a workflow_admin member purges');
RESET SESSION AUTHORIZATION;

-- The readers' functions stay open to ordinary roles (their history, under the policy).
SELECT ok(has_function_privilege('audit_roles_reader', 'workflow.row_history(regclass,jsonb)', 'EXECUTE')
          AND has_function_privilege('audit_roles_reader', 'workflow.row_as_of(regclass,jsonb,timestamptz)', 'EXECUTE')
          AND has_table_privilege('audit_roles_reader', 'workflow.audit_log', 'SELECT'),
          'row_history, row_as_of and the log stay readable by ordinary roles');
SELECT ok(NOT has_table_privilege('public', 'workflow.audit_log', 'INSERT, UPDATE, DELETE, TRUNCATE'),
          'PUBLIC writes nothing to the log');

SELECT * FROM finish();
ROLLBACK;
