-- The audit writer keeps its executor state (EState, the log's ResultRelInfo,
-- slots, memory contexts) per backend between statements
-- (src/extension/audit_writer.cpp). A write that fails while using it
-- leaves it to later statements, which log exactly what they change; a
-- change of the log's sequence or indexes in the session drops it and the
-- cached checks with it.
SET client_min_messages = warning;
CREATE SCHEMA audit_w;
CREATE TABLE audit_w.t (id int PRIMARY KEY, v int);
SELECT workflow.enable_audit('audit_w.t');
INSERT INTO audit_w.t SELECT g, 0 FROM generate_series(1, 3) g;
UPDATE audit_w.t SET v = 1 WHERE id = 1;
-- A write that fails after taking the kept state: the sequence at its maximum.
SELECT last_value AS saved_last_value, is_called AS saved_is_called
  FROM workflow.audit_log_id_seq \gset
SELECT setval('workflow.audit_log_id_seq', 9223372036854775807) IS NOT NULL AS at_max;
UPDATE audit_w.t SET v = 2;
UPDATE audit_w.t SET v = 2 WHERE id = 3;
SELECT setval('workflow.audit_log_id_seq', :saved_last_value, :'saved_is_called') IS NOT NULL AS restored;
-- The next statements, single-row and batched, write correctly.
UPDATE audit_w.t SET v = 3 WHERE id = 2;
UPDATE audit_w.t SET v = 4;
-- A failure caught by a savepoint, then writes in the same transaction (the
-- kept state is still marked in use: a state of their own) and after it.
BEGIN;
SELECT setval('workflow.audit_log_id_seq', 9223372036854775807) IS NOT NULL AS at_max;
SAVEPOINT s;
UPDATE audit_w.t SET v = 5;
ROLLBACK TO SAVEPOINT s;
SELECT setval('workflow.audit_log_id_seq', :saved_last_value + 100000, true) IS NOT NULL AS restored;
UPDATE audit_w.t SET v = 6 WHERE id = 1;
UPDATE audit_w.t SET v = 7 WHERE id > 1;
COMMIT;
UPDATE audit_w.t SET v = 8 WHERE id = 3;
UPDATE audit_w.t SET v = 9;
-- The sequence altered in the session: the cached check follows it.
ALTER SEQUENCE workflow.audit_log_id_seq INCREMENT BY 1;
UPDATE audit_w.t SET v = 10 WHERE id = 1;
ALTER SEQUENCE workflow.audit_log_id_seq INCREMENT BY 512;
UPDATE audit_w.t SET v = 11 WHERE id = 1;
-- An index added and dropped in the session: rows logged meanwhile are in it.
CREATE INDEX audit_w_by_id ON workflow.audit_log (id);
UPDATE audit_w.t SET v = 12;
SET enable_seqscan = off;
SET enable_bitmapscan = off;
SELECT count(*) AS rows_by_new_index FROM workflow.audit_log
 WHERE id >= 0 AND new_values = '{"v": 12}';
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX workflow.audit_w_by_id;
UPDATE audit_w.t SET v = 13 WHERE id = 2;
SELECT operation, row_key, old_values, new_values
  FROM workflow.audit_log l JOIN workflow.audit_tables r ON r.id = l.table_id
 WHERE r.schema_name = 'audit_w' ORDER BY l.id;
SELECT count(*) = count(DISTINCT id) AS ids_unique FROM workflow.audit_log;
DROP SCHEMA audit_w CASCADE;
