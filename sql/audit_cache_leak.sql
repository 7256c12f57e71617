-- The audit cache frees an entry that was in use when an error ended the
-- trigger call and a savepoint caught it: 300 rounds of (invalidate the
-- table's entry, write, the trigger fails after taking the entry, the
-- EXCEPTION block catches it) leave no cache contexts behind.
SET client_min_messages = warning;
CREATE SCHEMA audit_c;
CREATE TABLE audit_c.t (id int PRIMARY KEY, v int);
SELECT workflow.enable_audit('audit_c.t');
INSERT INTO audit_c.t VALUES (1, 0);
SELECT count(*) AS contexts_before FROM pg_backend_memory_contexts
 WHERE name = 'workflow audit relation' \gset
-- The log's sequence at its maximum: the trigger's nextval fails (after the
-- cache entry is taken).
SELECT last_value AS saved_last_value, is_called AS saved_is_called
  FROM workflow.audit_log_id_seq \gset
SELECT setval('workflow.audit_log_id_seq', 9223372036854775807) IS NOT NULL AS at_max;
DO $$
DECLARE
  caught int := 0;
BEGIN
  FOR i IN 1..300 LOOP
    EXECUTE format('ALTER TABLE audit_c.t SET (fillfactor = %s)', 50 + i % 50);  -- invalidates the entry
    BEGIN
      UPDATE audit_c.t SET v = i;
    EXCEPTION WHEN sequence_generator_limit_exceeded THEN
      caught := caught + 1;
    END;
  END LOOP;
  RAISE NOTICE 'caught %', caught;
  IF caught <> 300 THEN
    RAISE EXCEPTION 'expected 300 caught errors, got %', caught;
  END IF;
END;
$$;
SELECT setval('workflow.audit_log_id_seq', :saved_last_value, :'saved_is_called') IS NOT NULL AS restored;
SELECT count(*) - :contexts_before <= 1 AS no_contexts_left
  FROM pg_backend_memory_contexts WHERE name = 'workflow audit relation';
-- the entry still works
UPDATE audit_c.t SET v = -1;
SELECT operation, new_values FROM workflow.audit_log WHERE schema_name = 'audit_c' ORDER BY id;
DROP SCHEMA audit_c CASCADE;
