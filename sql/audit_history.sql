-- row_history, row_as_of at several times, ALTER TABLE mid-history, the
-- task_history view and purge_audit_log.
SET client_min_messages = warning;
CREATE SCHEMA audit_h;
CREATE TABLE audit_h.doc (id int PRIMARY KEY, title text, body text);
SELECT workflow.enable_audit('audit_h.doc');

SELECT clock_timestamp() AS t0 \gset
INSERT INTO audit_h.doc VALUES (1, 'draft', 'hello'), (2, 'other', 'x');
SELECT clock_timestamp() AS t1 \gset
UPDATE audit_h.doc SET title = 'v2' WHERE id = 1;
SELECT clock_timestamp() AS t2 \gset
-- ALTER TABLE mid-history: the cached metadata is rebuilt
ALTER TABLE audit_h.doc ADD COLUMN tags text[] DEFAULT '{}';
UPDATE audit_h.doc SET tags = '{a}', body = 'hello world' WHERE id = 1;
SELECT clock_timestamp() AS t3 \gset
ALTER TABLE audit_h.doc DROP COLUMN body;
UPDATE audit_h.doc SET title = 'v3' WHERE id = 1;
SELECT clock_timestamp() AS t4 \gset
DELETE FROM audit_h.doc WHERE id = 1;
SELECT clock_timestamp() AS t5 \gset
INSERT INTO audit_h.doc VALUES (1, 'reborn', '{}');
SELECT clock_timestamp() AS t6 \gset

SELECT operation, row_key, old_values, new_values FROM workflow.row_history('audit_h.doc', '{"id": 1}');
SELECT operation, new_values FROM workflow.row_history('audit_h.doc', '{"id": 2}');
-- the key is compared as jsonb: 1.0 is the same number as 1
SELECT count(*) FROM workflow.row_history('audit_h.doc', '{"id": 1.0}');
SELECT count(*) AS unknown_row FROM workflow.row_history('audit_h.doc', '{"id": 99}');

SELECT 'before insert' AS at, workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t0')
UNION ALL SELECT 'after insert', workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t1')
UNION ALL SELECT 'after update', workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t2')
UNION ALL SELECT 'after add column', workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t3')
UNION ALL SELECT 'after drop column', workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t4')
UNION ALL SELECT 'after delete', workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t5')
UNION ALL SELECT 'after re-insert', workflow.row_as_of('audit_h.doc', '{"id": 1}', :'t6')
UNION ALL SELECT 'row 2 now', workflow.row_as_of('audit_h.doc', '{"id": 2}', now());

-- TRUNCATE ends every row
TRUNCATE audit_h.doc;
SELECT workflow.row_as_of('audit_h.doc', '{"id": 2}', clock_timestamp()) AS after_truncate;
SELECT operation FROM workflow.row_history('audit_h.doc', '{"id": 2}');

-- a row that existed before auditing began: its known columns and key
CREATE TABLE audit_h.old (id int PRIMARY KEY, a text, b text);
INSERT INTO audit_h.old VALUES (5, 'a', 'b');
SELECT workflow.enable_audit('audit_h.old');
UPDATE audit_h.old SET a = 'A';
SELECT workflow.row_as_of('audit_h.old', '{"id": 5}', clock_timestamp()) AS partial_row;

-- history survives renaming and dropping the table (log keeps names and relid)
ALTER TABLE audit_h.old RENAME TO older;
UPDATE audit_h.older SET b = 'B';
SELECT table_name, operation, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_h' AND table_name IN ('old', 'older') ORDER BY id;
DROP TABLE audit_h.older;
SELECT count(*) AS kept_after_drop FROM workflow.audit_log
WHERE schema_name = 'audit_h' AND table_name IN ('old', 'older');

-- a change of primary key: logged under both keys, so row_as_of is right for
-- each; in one statement that shifts keys, the row leaving key 2 is logged
-- before the row arriving at key 2 (a DEFERRABLE primary key, which the
-- relcache does not report as the primary key, is the key all the same)
CREATE TABLE audit_h.seat (id int PRIMARY KEY DEFERRABLE, holder text, note text);
SELECT workflow.enable_audit('audit_h.seat');
INSERT INTO audit_h.seat VALUES (1, 'ann', 'n1'), (2, 'bob', 'n2');
SELECT clock_timestamp() AS k0 \gset
UPDATE audit_h.seat SET id = id + 1;  -- statement level: 1 -> 2, 2 -> 3
SELECT clock_timestamp() AS k1 \gset
SELECT row_key, old_values, new_values FROM workflow.row_history('audit_h.seat', '{"id": 2}');
SELECT 'key 1 before' AS at, workflow.row_as_of('audit_h.seat', '{"id": 1}', :'k0')
UNION ALL SELECT 'key 1 after', workflow.row_as_of('audit_h.seat', '{"id": 1}', :'k1')
UNION ALL SELECT 'key 2 before', workflow.row_as_of('audit_h.seat', '{"id": 2}', :'k0')
UNION ALL SELECT 'key 2 after', workflow.row_as_of('audit_h.seat', '{"id": 2}', :'k1')
UNION ALL SELECT 'key 3 after', workflow.row_as_of('audit_h.seat', '{"id": 3}', :'k1');
-- every current row is rebuilt exactly from its history
SELECT s.id, workflow.row_as_of('audit_h.seat', jsonb_build_object('id', s.id), clock_timestamp())
       = to_jsonb(s) AS rebuilt_exactly
FROM audit_h.seat s ORDER BY s.id;
-- row-level mode logs the same two entries for a key change
SELECT workflow.enable_audit('audit_h.seat', statement_level => false);
UPDATE audit_h.seat SET id = 10, note = 'moved' WHERE id = 3;
SELECT row_key, old_values, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_h' AND table_name = 'seat' AND operation = 'UPDATE' ORDER BY id;
SELECT workflow.row_as_of('audit_h.seat', '{"id": 3}', clock_timestamp()) AS key_3_gone,
       workflow.row_as_of('audit_h.seat', '{"id": 10}', clock_timestamp()) AS key_10;
-- and keeps a shift of keys in order, as the statement mode does: the row
-- leaving key 11 is logged before the row arriving there (1.7: the entries
-- under new keys are written once all the statement's row triggers fired)
INSERT INTO audit_h.seat VALUES (11, 'cy', 'n3');
UPDATE audit_h.seat SET id = id + 1 WHERE id >= 10;  -- 10 -> 11, then 11 -> 12
SELECT row_key, old_values, new_values FROM workflow.row_history('audit_h.seat', '{"id": 11}');
SELECT workflow.row_as_of('audit_h.seat', '{"id": 11}', clock_timestamp()) AS key_11,
       workflow.row_as_of('audit_h.seat', '{"id": 12}', clock_timestamp()) AS key_12;

-- task_history: the task model's view over the log of workflow.tasks
SELECT column_name, data_type FROM information_schema.columns
WHERE table_schema = 'workflow' AND table_name = 'task_history' ORDER BY ordinal_position;

-- purge: removes what is older than the bound, returns the count
SELECT count(*) > 0 AS has_rows FROM workflow.audit_log WHERE schema_name = 'audit_h';
UPDATE workflow.audit_log SET changed_at = changed_at - interval '400 days'
WHERE schema_name = 'audit_h' AND table_name = 'doc' AND operation = 'INSERT';
SELECT workflow.purge_audit_log(interval '365 days') AS purged;
SELECT operation, count(*) FROM workflow.audit_log WHERE schema_name = 'audit_h' AND table_name = 'doc'
GROUP BY 1 ORDER BY 1;
SELECT workflow.purge_audit_log(interval '365 days') AS purged_again;

DROP SCHEMA audit_h CASCADE;
DELETE FROM workflow.audit_log WHERE schema_name = 'audit_h';
