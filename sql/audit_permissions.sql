-- Permissions: only the trigger writes the log; nobody else can alter it; a
-- reader sees only the history of tables it may read; only a table's owner
-- can enable or disable auditing.
SET client_min_messages = warning;
CREATE ROLE regress_audit_owner;
CREATE ROLE regress_audit_writer;
CREATE ROLE regress_audit_stranger;
CREATE ROLE regress_audit_plain;  -- no right at all on schema workflow
CREATE SCHEMA audit_p AUTHORIZATION regress_audit_owner;
GRANT USAGE ON SCHEMA audit_p TO regress_audit_writer, regress_audit_stranger;
-- (the extension's schema is not public by default; let the test roles in)
GRANT USAGE ON SCHEMA workflow TO regress_audit_owner, regress_audit_writer, regress_audit_stranger;
-- (the right to audit: EXECUTE, not granted to PUBLIC)
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean) TO regress_audit_owner;
CREATE FUNCTION audit_p.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || left(SQLERRM, 120);
END;
$$;

SET ROLE regress_audit_owner;
CREATE TABLE audit_p.secret_plans (id int PRIMARY KEY, plan text);
CREATE TABLE audit_p.open_notes (id int PRIMARY KEY, note text);
SELECT workflow.enable_audit('audit_p.secret_plans');
SELECT workflow.enable_audit('audit_p.open_notes');
GRANT SELECT, INSERT, UPDATE ON audit_p.secret_plans TO regress_audit_writer;
GRANT SELECT ON audit_p.open_notes TO regress_audit_stranger;
GRANT USAGE ON SCHEMA audit_p TO regress_audit_plain;
GRANT UPDATE, SELECT ON audit_p.open_notes TO regress_audit_plain;
INSERT INTO audit_p.open_notes VALUES (1, 'hello');
RESET ROLE;

-- a user with no right on the log still gets its changes logged
SET ROLE regress_audit_writer;
INSERT INTO audit_p.secret_plans VALUES (1, 'world domination');
UPDATE audit_p.secret_plans SET plan = 'tea' WHERE id = 1;
-- ... and cannot alter the log in any way
SELECT s, audit_p.try(s) FROM (VALUES
  ('UPDATE workflow.audit_log SET actor = ''nobody'''),
  ('DELETE FROM workflow.audit_log'),
  ('INSERT INTO workflow.audit_log (table_id, schema_name, table_name, operation, actor, txid, changed_at) VALUES (1, ''a'', ''b'', ''INSERT'', ''me'', 1, now())'),
  ('TRUNCATE workflow.audit_log'),
  ('ALTER TABLE workflow.audit_log DISABLE ROW LEVEL SECURITY'),
  ('DROP TABLE workflow.audit_log'),
  ('SELECT workflow.purge_audit_log(interval ''0'')'),
  ('SELECT nextval(''workflow.audit_log_id_seq'')'),
  ('SELECT workflow.enable_audit(''audit_p.open_notes'')'),
  ('SELECT workflow.disable_audit(''audit_p.secret_plans'')')
) AS t(s);
SELECT table_name, operation, actor, session_user_name, current_user_name FROM workflow.audit_log WHERE schema_name = 'audit_p' ORDER BY id;
RESET ROLE;
-- a role without even USAGE on schema workflow is logged too
SET ROLE regress_audit_plain;
UPDATE audit_p.open_notes SET note = 'hi' WHERE id = 1;
RESET ROLE;
SELECT operation, new_values, actor, session_user_name, current_user_name FROM workflow.audit_log
WHERE schema_name = 'audit_p' AND table_name = 'open_notes' ORDER BY id;

-- a stranger reads only the history of what it may read
SET ROLE regress_audit_stranger;
SELECT table_name, operation, actor, session_user_name, current_user_name FROM workflow.audit_log WHERE schema_name = 'audit_p' ORDER BY id;
SELECT operation FROM workflow.row_history('audit_p.secret_plans', '{"id": 1}');
SELECT workflow.row_as_of('audit_p.secret_plans', '{"id": 1}', now()) AS hidden_row;
SELECT workflow.row_as_of('audit_p.open_notes', '{"id": 1}', now()) AS visible_row;
RESET ROLE;

-- a superuser sees every row
SELECT count(*) AS rows_for_superuser FROM workflow.audit_log WHERE schema_name = 'audit_p';
SELECT relacl IS NOT NULL AS has_acl, relrowsecurity FROM pg_class WHERE oid = 'workflow.audit_log'::regclass;

DROP SCHEMA audit_p CASCADE;
DELETE FROM workflow.audit_log WHERE schema_name = 'audit_p';
REVOKE USAGE ON SCHEMA workflow FROM regress_audit_owner, regress_audit_writer, regress_audit_stranger;
REVOKE EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean) FROM regress_audit_owner;
DROP ROLE regress_audit_owner;
DROP ROLE regress_audit_writer;
DROP ROLE regress_audit_stranger;
DROP ROLE regress_audit_plain;
