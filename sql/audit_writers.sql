-- Audit records every write to an audited table, whatever issues it: plain
-- SQL, the native completions (SPI statements run with a row limit), PL/pgSQL,
-- COPY, writes made directly to a partition (also of partitions created or
-- attached after enable_audit), in statement-level and row-level mode.
SET client_min_messages = warning;
CREATE SCHEMA audit_w;
CREATE VIEW audit_w.log AS
  SELECT l.table_name, l.operation, l.row_key, l.new_values
  FROM workflow.audit_log l WHERE l.schema_name IN ('audit_w', 'workflow') AND l.table_name <> 'survey_steps'
  ORDER BY l.id;

-- The native completions on workflow.tasks, statement level (the default).
SELECT workflow.enable_audit('workflow.tasks');
SELECT workflow.create_job('audit', '{}', 1, 'audit-w1');
SELECT workflow.add_tasks('audit-w1', 1, 'x', ARRAY['{}'::jsonb, '{}', '{}']);
SELECT stage_complete, remaining_tasks
  FROM workflow.complete_task_and_check_stage('audit-w1:1:0', 'audit-w1', 1, '{"r": 0}');
SELECT task_id, stage_complete
  FROM workflow.complete_tasks(ARRAY['audit-w1', 'audit-w1'], ARRAY['audit-w1:1:1', 'audit-w1:1:2'],
                               ARRAY[1, 1], ARRAY['{"r": 1}', '{"r": 2}']::jsonb[]);
SELECT action, task_id, new_values ->> 'status' AS status, new_values -> 'result_data' AS result
  FROM workflow.task_history WHERE task_id LIKE 'audit-w1:%' ORDER BY created_at, task_id, action;
-- the same in row-level mode
SELECT workflow.enable_audit('workflow.tasks', statement_level => false);
SELECT workflow.create_job('audit', '{}', 1, 'audit-w2');
SELECT workflow.add_tasks('audit-w2', 1, 'x', ARRAY['{}'::jsonb, '{}']);
SELECT stage_complete FROM workflow.complete_task_and_check_stage('audit-w2:1:0', 'audit-w2', 1, NULL);
SELECT stage_complete FROM workflow.complete_tasks(ARRAY['audit-w2'], ARRAY['audit-w2:1:1'], ARRAY[1]);
SELECT action, task_id, new_values ->> 'status' AS status
  FROM workflow.task_history WHERE task_id LIKE 'audit-w2:%' ORDER BY created_at, task_id, action;
SELECT workflow.disable_audit('workflow.tasks');

-- PL/pgSQL (RETURNING ... INTO, dynamic EXECUTE ... INTO) and COPY.
CREATE TABLE audit_w.item (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('audit_w.item');
INSERT INTO audit_w.item VALUES (1, 'plain sql');
CREATE FUNCTION audit_w.write(n int) RETURNS int LANGUAGE plpgsql AS $$
DECLARE got int;
BEGIN
  INSERT INTO audit_w.item VALUES (n, 'plpgsql') RETURNING id INTO got;
  UPDATE audit_w.item SET v = 'plpgsql updated' WHERE id = n RETURNING id INTO got;
  EXECUTE 'UPDATE audit_w.item SET v = $1 WHERE id = $2 RETURNING id' INTO got USING 'dynamic', n;
  RETURN got;
END;
$$;
SELECT audit_w.write(2);
-- a loop that leaves after the first RETURNING row of a 2-row UPDATE
INSERT INTO audit_w.item VALUES (10, 'a'), (11, 'b');
DO $$
DECLARE r record;
BEGIN
  FOR r IN UPDATE audit_w.item SET v = v || ' looped' WHERE id >= 10 RETURNING id LOOP
    EXIT;
  END LOOP;
END;
$$;
DELETE FROM audit_w.item WHERE id >= 10;
COPY audit_w.item FROM stdin;
3	copied
4	copied
\.
DELETE FROM audit_w.item WHERE id = 4 RETURNING id;
SELECT operation, row_key, new_values FROM audit_w.log WHERE table_name = 'item';

-- Partitioned: writes through the root and directly to partitions, also to
-- partitions created or attached after enable_audit; a detached one is no
-- longer logged. All are logged under the root.
CREATE TABLE audit_w.event (id int, region text, note text, PRIMARY KEY (id, region))
  PARTITION BY LIST (region);
CREATE TABLE audit_w.event_eu PARTITION OF audit_w.event FOR VALUES IN ('eu');
SELECT workflow.enable_audit('audit_w.event', '{note}');
INSERT INTO audit_w.event VALUES (1, 'eu', 'n');                       -- through the root
INSERT INTO audit_w.event_eu VALUES (2, 'eu', 'n');                    -- directly
UPDATE audit_w.event_eu SET note = 'x', id = 3 WHERE id = 2;           -- directly
CREATE TABLE audit_w.event_us PARTITION OF audit_w.event FOR VALUES IN ('us');  -- created later
INSERT INTO audit_w.event_us VALUES (4, 'us', 'n');
CREATE TABLE audit_w.event_asia (id int NOT NULL, region text NOT NULL, note text);
ALTER TABLE audit_w.event ATTACH PARTITION audit_w.event_asia FOR VALUES IN ('asia');  -- attached later
INSERT INTO audit_w.event_asia VALUES (5, 'asia', 'n');
COPY audit_w.event_asia FROM stdin;
6	asia	copied
\.
DELETE FROM audit_w.event_us;
ALTER TABLE audit_w.event DETACH PARTITION audit_w.event_asia;
INSERT INTO audit_w.event_asia VALUES (7, 'asia', 'not audited: detached');
SELECT operation, row_key, new_values FROM audit_w.log WHERE table_name LIKE 'event%';
SELECT operation, row_key FROM workflow.row_history('audit_w.event', '{"id": 3, "region": "eu"}');
SELECT c.relname, count(t.tgname) AS audit_triggers
  FROM pg_class c LEFT JOIN pg_trigger t ON t.tgrelid = c.oid AND t.tgfoid = 'workflow.audit_trigger()'::regprocedure
 WHERE c.relnamespace = 'audit_w'::regnamespace AND c.relname LIKE 'event%' AND c.relkind IN ('r', 'p')
 GROUP BY c.relname ORDER BY c.relname;

-- row-level mode on the partitioned table: direct partition writes too
SELECT workflow.enable_audit('audit_w.event', statement_level => false);
INSERT INTO audit_w.event_eu VALUES (8, 'eu', 'row mode');
SELECT operation, row_key, table_name FROM workflow.row_history('audit_w.event', '{"id": 8, "region": "eu"}');
-- a partition cannot be audited on its own: its root is
SELECT workflow.enable_audit('audit_w.event_eu');

SELECT workflow.disable_audit('audit_w.event');
DROP SCHEMA audit_w CASCADE;
