-- Hostile input to every audit function: a SQLSTATE error and nothing written.
SET client_min_messages = warning;
CREATE SCHEMA audit_e;
CREATE FUNCTION audit_e.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || left(SQLERRM, 120);
END;
$$;
CREATE TABLE audit_e.keyed (id int PRIMARY KEY, v text);
CREATE TABLE audit_e.nokey (id int, v text);
CREATE VIEW audit_e.a_view AS SELECT 1 AS id;
CREATE SEQUENCE audit_e.a_seq;
SELECT count(*) AS log_rows_before FROM workflow.audit_log \gset

SELECT s, audit_e.try(s) FROM (VALUES
  ('SELECT workflow.enable_audit(NULL)'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', NULL)'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ''{}'', NULL)'),
  ('SELECT workflow.enable_audit(''audit_e.nokey'')'),
  ('SELECT workflow.enable_audit(''audit_e.a_view'')'),
  ('SELECT workflow.enable_audit(''audit_e.a_seq'')'),
  ('SELECT workflow.enable_audit(''workflow.audit_log'')'),
  ('SELECT workflow.enable_audit(''audit_e.does_not_exist'')'),
  ('SELECT workflow.enable_audit(999999999::oid::regclass)'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ''{nope}'')'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ''{v,NULL}'')'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ''{""}'')'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ''{{v}}'')'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ARRAY[''v'''' OR 1=1 --''])'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ARRAY[''ünï☃''])'),
  ('SELECT workflow.enable_audit(''audit_e.keyed'', ARRAY[repeat(''x'', 100000)])'),
  ('SELECT workflow.disable_audit(NULL)'),
  ('SELECT workflow.disable_audit(''audit_e.keyed'')'),
  ('SELECT workflow.disable_audit(''audit_e.a_view'')'),
  ('SELECT workflow.row_history(NULL, ''{"id": 1}'')'),
  ('SELECT workflow.row_history(''audit_e.keyed'', NULL)'),
  ('SELECT workflow.row_history(''audit_e.keyed'', ''[1]'')'),
  ('SELECT workflow.row_history(''audit_e.keyed'', ''1'')'),
  ('SELECT workflow.row_history(''audit_e.keyed'', ''{}'')'),
  ('SELECT workflow.row_history(''audit_e.keyed'', ''{"idd": 1}'')'),
  ('SELECT workflow.row_history(''audit_e.keyed'', ''{"id": 1, "v": "x"}'')'),
  ('SELECT workflow.row_history(''audit_e.a_view'', ''{"id": 1}'')'),
  ('SELECT workflow.row_as_of(''audit_e.keyed'', ''{"id": 1}'', NULL)'),
  ('SELECT workflow.row_as_of(NULL, ''{"id": 1}'', now())'),
  ('SELECT workflow.row_as_of(''audit_e.keyed'', ''"id"'', now())'),
  ('SELECT workflow.purge_audit_log(NULL)'),
  ('SELECT workflow.purge_audit_log(interval ''-1 day'')'),
  ('SELECT workflow.audit_trigger()'),
  ('SELECT workflow.set_updated_at()')
) AS t(s);

-- the trigger functions refuse to be attached the wrong way
CREATE TRIGGER wrong BEFORE UPDATE ON audit_e.keyed FOR EACH ROW EXECUTE FUNCTION workflow.audit_trigger();
INSERT INTO audit_e.keyed VALUES (1, 'a');
SELECT audit_e.try('UPDATE audit_e.keyed SET v = ''b''');
DROP TRIGGER wrong ON audit_e.keyed;
CREATE TRIGGER wrong AFTER UPDATE ON audit_e.keyed FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger();
SELECT audit_e.try('UPDATE audit_e.keyed SET v = ''b''');
DROP TRIGGER wrong ON audit_e.keyed;

-- nothing was written by any of the above
SELECT count(*) - :log_rows_before AS log_rows_written FROM workflow.audit_log;
SELECT v FROM audit_e.keyed;
SELECT count(*) AS triggers FROM pg_trigger WHERE tgrelid = 'audit_e.keyed'::regclass;

-- quoting and unicode in table and column names
CREATE TABLE audit_e."we""ird tä☃ble" ("i d" int PRIMARY KEY, "vä'l" text, "x""y" text);
SELECT workflow.enable_audit('audit_e."we""ird tä☃ble"', '{"x\"y"}');
INSERT INTO audit_e."we""ird tä☃ble" VALUES (1, 'a', 'hidden');
UPDATE audit_e."we""ird tä☃ble" SET "vä'l" = 'b', "x""y" = 'still hidden';
SELECT table_name, operation, row_key, old_values, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_e' ORDER BY id;
SELECT operation FROM workflow.row_history('audit_e."we""ird tä☃ble"', '{"i d": 1}');

DROP SCHEMA audit_e CASCADE;
DELETE FROM workflow.audit_log WHERE schema_name = 'audit_e';
