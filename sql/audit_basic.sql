-- Native audit trigger: each operation, diff-only storage, no-op skip,
-- excluded columns, actor, TRUNCATE, composite keys, to_jsonb-equal values.
SET client_min_messages = warning;
CREATE SCHEMA audit_t;
CREATE VIEW audit_t.log AS
  SELECT table_name, operation, row_key, old_values, new_values, actor
  FROM workflow.audit_log WHERE schema_name = 'audit_t' ORDER BY id;

CREATE TABLE audit_t.item (id int PRIMARY KEY, name text, qty int, note text, secret text);
SELECT workflow.enable_audit('audit_t.item', '{secret}');

-- INSERT logs the whole row (minus excluded columns)
INSERT INTO audit_t.item VALUES (1, 'apple', 3, NULL, 's1'), (2, 'pear', 5, 'ripe', 's2');
-- UPDATE logs only the changed columns, old and new
UPDATE audit_t.item SET qty = 4 WHERE id = 1;
UPDATE audit_t.item SET note = 'green', name = 'Apple' WHERE id = 1;
-- a change to NULL and back from NULL
UPDATE audit_t.item SET note = NULL WHERE id = 2;
UPDATE audit_t.item SET note = 'soft' WHERE id = 2;
-- no-op updates write nothing
UPDATE audit_t.item SET qty = qty, name = name;
-- a change touching only an excluded column writes nothing
UPDATE audit_t.item SET secret = 'rotated';
-- DELETE logs the whole old row
DELETE FROM audit_t.item WHERE id = 2;
SELECT * FROM audit_t.log;
SELECT count(*) AS secret_mentions FROM workflow.audit_log
WHERE schema_name = 'audit_t' AND (old_values ? 'secret' OR new_values ? 'secret');

-- actor: SET LOCAL workflow.actor, else the database user
BEGIN;
SET LOCAL workflow.actor = 'alice@example.com';
UPDATE audit_t.item SET qty = 10 WHERE id = 1;
COMMIT;
UPDATE audit_t.item SET qty = 11 WHERE id = 1;
SELECT actor, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_t' ORDER BY id DESC LIMIT 2;
SELECT current_setting('workflow.actor') = '' AS actor_reset_after_commit;

-- renaming an excluded column: it stays excluded (no enable_audit needed)
ALTER TABLE audit_t.item RENAME COLUMN secret TO hidden;
SET client_min_messages = warning;
UPDATE audit_t.item SET hidden = 'renamed' WHERE id = 1;
SELECT workflow.enable_audit('audit_t.item', '{hidden}');
UPDATE audit_t.item SET hidden = 'again' WHERE id = 1;
SELECT count(*) AS rows_mentioning_hidden FROM workflow.audit_log
WHERE schema_name = 'audit_t' AND new_values ? 'hidden';

-- one statement, many rows; txid and statement time shared by the statement
INSERT INTO audit_t.item SELECT g, 'bulk' || g, g, NULL, NULL FROM generate_series(10, 14) g;
SELECT count(*) AS rows_logged, count(DISTINCT txid) AS txids, count(DISTINCT changed_at) AS stamps
FROM workflow.audit_log WHERE schema_name = 'audit_t' AND new_values ->> 'name' LIKE 'bulk%';
UPDATE audit_t.item SET qty = qty + 1 WHERE id >= 10;
SELECT row_key, old_values, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_t' AND operation = 'UPDATE' AND (row_key ->> 'id')::int >= 10 ORDER BY id;

-- TRUNCATE is recorded as one event
TRUNCATE audit_t.item;
SELECT operation, row_key, old_values, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_t' ORDER BY id DESC LIMIT 1;

-- composite primary key
CREATE TABLE audit_t.membership (org text, member int, role text, PRIMARY KEY (member, org));
SELECT workflow.enable_audit('audit_t.membership');
INSERT INTO audit_t.membership VALUES ('acme', 7, 'admin');
UPDATE audit_t.membership SET role = 'owner';
UPDATE audit_t.membership SET member = 8;  -- a key change is logged under the new key
DELETE FROM audit_t.membership;
SELECT operation, row_key, old_values, new_values FROM audit_t.log WHERE table_name = 'membership';

-- values are what to_jsonb gives, for every kind of column
CREATE TYPE audit_t.mood AS ENUM ('ok', 'happy');
CREATE DOMAIN audit_t.posint AS int CHECK (VALUE > 0);
CREATE TABLE audit_t.kinds (
  id bigint PRIMARY KEY, i2 smallint, i4 int, d audit_t.posint, num numeric, nan numeric, f8 float8,
  f4 float4, inf float8, b bool, t text, vc varchar(5), bp char(4), j json, jb jsonb, jbs jsonb,
  ts timestamp, tstz timestamptz, dt date, tm time, iv interval, u uuid, by bytea, arr int[],
  tarr text[], m audit_t.mood, comp audit_t.item, ip inet, nm name, quote text, uni text);
SELECT workflow.enable_audit('audit_t.kinds');
SET timezone = 'UTC';
INSERT INTO audit_t.kinds VALUES (
  9007199254740993, 2, -4, 5, 123.4500, 'NaN', 1.5, 0.25, 'Infinity', true, 'text', 'vc', 'bp',
  '{"b": [1, 2], "a": null}', '{"z": 1, "a": {"n": [true]}}', '"scalar"',
  '2024-02-29 12:34:56.789', '2024-02-29 12:34:56+02', '2024-02-29', '23:59:59', '1 day 2 hours',
  'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\x00ff', '{1,NULL,3}', '{"a b","c\"d"}', 'happy',
  ROW(1, 'x', 2, NULL, NULL), '10.0.0.1/8', 'nm', 'it''s "quoted" \ back', 'ünï ☃ 𝄞');
SELECT l.new_values = to_jsonb(k) AS same_as_to_jsonb,
       (SELECT array_agg(key ORDER BY key) FROM jsonb_each(l.new_values) e
        WHERE e.value IS DISTINCT FROM to_jsonb(k) -> e.key) AS differing_keys
FROM audit_t.kinds k, workflow.audit_log l
WHERE l.schema_name = 'audit_t' AND l.table_name = 'kinds' AND l.operation = 'INSERT';
UPDATE audit_t.kinds SET tarr = '{x}', jb = '{"z": 2}', comp = ROW(2, 'y', 3, 'n', NULL);
SELECT old_values, new_values FROM audit_t.log WHERE table_name = 'kinds' AND operation = 'UPDATE';

-- a large (TOASTed) value: unchanged, it does not count as a change
UPDATE audit_t.kinds SET t = repeat('long text ', 100000);
UPDATE audit_t.kinds SET b = false;
SELECT length(new_values ->> 't') AS t_length, new_values ? 'b' AS logs_b
FROM workflow.audit_log WHERE schema_name = 'audit_t' AND table_name = 'kinds' AND operation = 'UPDATE'
ORDER BY id OFFSET 1;

-- row-level mode writes the same rows
CREATE TABLE audit_t.rowmode (id int PRIMARY KEY, v text, skip text);
SELECT workflow.enable_audit('audit_t.rowmode', '{skip}', statement_level => false);
SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_t.rowmode'::regclass ORDER BY 1;
INSERT INTO audit_t.rowmode VALUES (1, 'a', 'x'), (2, 'b', 'y');
UPDATE audit_t.rowmode SET v = 'c' WHERE id = 1;
UPDATE audit_t.rowmode SET v = v, skip = 'z';
DELETE FROM audit_t.rowmode WHERE id = 2;
SELECT operation, row_key, old_values, new_values FROM audit_t.log WHERE table_name = 'rowmode';

-- enable_audit again replaces the settings; disable_audit detaches, history stays
SELECT workflow.enable_audit('audit_t.rowmode', '{v}');
SELECT tgname FROM pg_trigger WHERE tgrelid = 'audit_t.rowmode'::regclass ORDER BY 1;
UPDATE audit_t.rowmode SET v = 'd', skip = 'w';
SELECT operation, old_values, new_values FROM audit_t.log WHERE table_name = 'rowmode' OFFSET 4;
SELECT workflow.disable_audit('audit_t.rowmode');
SELECT count(*) AS audit_triggers_left FROM pg_trigger WHERE tgrelid = 'audit_t.rowmode'::regclass;
UPDATE audit_t.rowmode SET v = 'e';
SELECT count(*) AS rowmode_log_rows FROM audit_t.log WHERE table_name = 'rowmode';

-- partitioned table: audited at the root, rows of every partition
CREATE TABLE audit_t.parted (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE audit_t.parted_1 PARTITION OF audit_t.parted FOR VALUES FROM (0) TO (100);
CREATE TABLE audit_t.parted_2 PARTITION OF audit_t.parted FOR VALUES FROM (100) TO (200);
SELECT workflow.enable_audit('audit_t.parted');
INSERT INTO audit_t.parted VALUES (1, 'a'), (150, 'b');
UPDATE audit_t.parted SET id = 120 WHERE id = 1;  -- moves between partitions
SELECT table_name, operation, row_key, old_values, new_values FROM audit_t.log
WHERE table_name LIKE 'parted%';

DROP SCHEMA audit_t CASCADE;
