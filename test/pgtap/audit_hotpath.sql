-- The audit hot paths (issue 10): the native row_history returns what the
-- log's policy lets the caller read, in id order, through the shipped indexes
-- and without them; the writer's cached index metadata keeps every index of
-- the log consistent (indexes added or dropped in the session, expression
-- indexes of non-built-in functions, partial and unique indexes), for single
-- rows, batches, partitions and excluded columns.
BEGIN;
SELECT plan(23);

-- What a plain query of the log shows the current role for one key (the
-- policy applies), in id order: row_history must equal it.
CREATE FUNCTION pg_temp.log_rows(target regclass, key jsonb) RETURNS SETOF workflow.audit_log
LANGUAGE sql STABLE AS $$
  SELECT l.* FROM workflow.audit_log l
  WHERE l.table_id = (SELECT t.id FROM workflow.audit_tables t WHERE t.relid = target ORDER BY t.id LIMIT 1)
    AND (l.row_key = key OR (l.row_key IS NULL AND l.operation = 'TRUNCATE'))
  ORDER BY l.id $$;
-- Index and heap agree: every log row of a table is found by the key index.
CREATE FUNCTION pg_temp.unindexed_rows(target regclass) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
  reg integer := (SELECT t.id FROM workflow.audit_tables t WHERE t.relid = target ORDER BY t.id LIMIT 1);
  by_index bigint := 0;
  k jsonb;
  total bigint;
BEGIN
  SET LOCAL enable_seqscan = off;
  SET LOCAL enable_bitmapscan = off;
  FOR k IN SELECT DISTINCT l.row_key FROM workflow.audit_log l WHERE l.table_id = reg AND l.row_key IS NOT NULL LOOP
    by_index := by_index + (SELECT count(*) FROM workflow.audit_log l
                            WHERE jsonb_hash_extended(l.row_key, l.table_id::bigint) = jsonb_hash_extended(k, reg::bigint)
                              AND l.table_id = reg AND l.row_key = k);
  END LOOP;
  RESET enable_seqscan;
  RESET enable_bitmapscan;
  SELECT count(*) INTO total FROM workflow.audit_log l WHERE l.table_id = reg AND l.row_key IS NOT NULL;
  RETURN total - by_index;
END $$;

CREATE TABLE public.hp_t (id int PRIMARY KEY, v text, secret text);
SELECT workflow.enable_audit('public.hp_t', '{secret}');
INSERT INTO public.hp_t SELECT g, 'v' || g, 's' FROM generate_series(1, 1200) g;   -- three batches
UPDATE public.hp_t SET v = 'one' WHERE id = 7;                                       -- single rows
UPDATE public.hp_t SET v = 'two' WHERE id = 7;
UPDATE public.hp_t SET secret = 'only excluded' WHERE id = 7;                        -- logs nothing
TRUNCATE public.hp_t;
INSERT INTO public.hp_t VALUES (7, 'back', 's');
SELECT results_eq($$ SELECT * FROM workflow.row_history('public.hp_t', '{"id": 7}') $$,
                  $$ SELECT * FROM pg_temp.log_rows('public.hp_t', '{"id": 7}') $$,
                  'row_history = the log''s rows of the key and the TRUNCATEs, in id order');
SELECT results_eq($$ SELECT operation, new_values FROM workflow.row_history('public.hp_t', '{"id": 7}') $$,
                  $$ VALUES ('INSERT', '{"id": 7, "v": "v7"}'::jsonb), ('UPDATE', '{"v": "one"}'),
                            ('UPDATE', '{"v": "two"}'), ('TRUNCATE', NULL), ('INSERT', '{"id": 7, "v": "back"}') $$,
                  'the history of a row: batches, single rows, no excluded column, TRUNCATE, re-insert');
SELECT is((SELECT count(*)::int FROM workflow.row_history('public.hp_t', '{"id": 1200}')), 2,
          'a row of the last batch: its INSERT and the TRUNCATE');
SELECT results_eq($$ SELECT operation FROM workflow.row_history('public.hp_t', '{"id": 999999}') $$,
                  $$ VALUES ('TRUNCATE') $$, 'a key never logged: only the table''s TRUNCATE');
SELECT is(pg_temp.unindexed_rows('public.hp_t'), 0::bigint, 'every logged row is in the key index');

-- Without the shipped indexes the reader falls back to the SQL query.
SAVEPOINT no_index;
DROP INDEX workflow.audit_log_row_idx;
SELECT results_eq($$ SELECT * FROM workflow.row_history('public.hp_t', '{"id": 7}') $$,
                  $$ SELECT * FROM pg_temp.log_rows('public.hp_t', '{"id": 7}') $$,
                  'row_history without the key index: same rows');
ROLLBACK TO SAVEPOINT no_index;

-- Who sees what: row_history agrees with the policy for every role.
CREATE ROLE hp_reader;
CREATE ROLE hp_stranger;
GRANT USAGE ON SCHEMA workflow TO hp_reader, hp_stranger;
GRANT SELECT ON public.hp_t TO hp_reader;
SET LOCAL ROLE hp_reader;
SELECT results_eq($$ SELECT * FROM workflow.row_history('public.hp_t', '{"id": 7}') $$,
                  $$ SELECT * FROM pg_temp.log_rows('public.hp_t', '{"id": 7}') $$,
                  'a role with SELECT on the table: row_history = what the policy shows');
SELECT is((SELECT count(*)::int FROM workflow.row_history('public.hp_t', '{"id": 7}')), 5, '... which is all of it');
RESET ROLE;
SET LOCAL ROLE hp_stranger;
SELECT is((SELECT count(*)::int FROM pg_temp.log_rows('public.hp_t', '{"id": 7}')), 0, 'the policy hides it from a role without SELECT');
SELECT is_empty($$ SELECT * FROM workflow.row_history('public.hp_t', '{"id": 7}') $$,
                'and so does row_history');
RESET ROLE;
REVOKE SELECT ON public.hp_t FROM hp_reader;
SET LOCAL ROLE hp_reader;
SELECT is_empty($$ SELECT * FROM workflow.row_history('public.hp_t', '{"id": 7}') $$,
                'after REVOKE: as the policy says (the visibility is read per call, not cached)');
RESET ROLE;
SAVEPOINT no_log_select;
REVOKE SELECT ON workflow.audit_log FROM PUBLIC;
SET LOCAL ROLE hp_stranger;
SELECT throws_ok($$ SELECT * FROM workflow.row_history('public.hp_t', '{"id": 7}') $$, '42501', NULL,
                 'without SELECT on the log itself: permission denied, as a query of the log');
ROLLBACK TO SAVEPOINT no_log_select;

-- The writer's cached IndexInfos follow the log's indexes in this session.
UPDATE public.hp_t SET v = 'cached' WHERE id = 7;           -- cache built
CREATE FUNCTION pg_temp.op_len(text) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT length($1) $$;
CREATE INDEX hp_by_time ON workflow.audit_log (changed_at);
CREATE INDEX hp_by_func ON workflow.audit_log (pg_temp.op_len(operation)) WHERE row_key IS NOT NULL;
CREATE UNIQUE INDEX hp_unique_id ON workflow.audit_log (id);
UPDATE public.hp_t SET v = 'new indexes' WHERE id = 7;      -- single row
INSERT INTO public.hp_t SELECT g, 'x', 's' FROM generate_series(2000, 2700) g;   -- batches
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE changed_at >= '-infinity' AND new_values = '{"v": "new indexes"}'),
          1, 'a btree index created in the session gets the single-row log row');
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE pg_temp.op_len(operation) = 6 AND row_key IS NOT NULL
                                                      AND table_id = (SELECT id FROM workflow.audit_tables WHERE relid = 'public.hp_t'::regclass)),
          (SELECT count(*)::int FROM workflow.audit_log WHERE operation IN ('INSERT', 'UPDATE', 'DELETE') AND row_key IS NOT NULL
                                                          AND length(operation) = 6
                                                          AND table_id = (SELECT id FROM workflow.audit_tables WHERE relid = 'public.hp_t'::regclass)),
          'an expression index of a non-built-in function gets every row');
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT is((SELECT count(*)::int FROM workflow.audit_log WHERE (row_key->>'id')::int BETWEEN 2000 AND 2700 AND operation = 'INSERT'
                                                     AND table_id = (SELECT id FROM workflow.audit_tables WHERE relid = 'public.hp_t'::regclass)),
          701, 'the batched statement wrote every row with the new indexes');
SELECT is((SELECT count(*) - count(DISTINCT id) FROM workflow.audit_log), 0::bigint, 'ids stay unique (the unique index held)');
SELECT is(pg_temp.unindexed_rows('public.hp_t'), 0::bigint, 'the key index still has every row');
DROP INDEX workflow.hp_by_time, workflow.hp_by_func, workflow.hp_unique_id;
UPDATE public.hp_t SET v = 'dropped' WHERE id = 7;
SELECT is((SELECT new_values FROM workflow.row_history('public.hp_t', '{"id": 7}') ORDER BY id DESC LIMIT 1),
          '{"v": "dropped"}'::jsonb, 'after the indexes are dropped again the writer goes on');

-- Partitions: a write to a partition directly is logged under the root, indexed.
CREATE TABLE public.hp_p (id int PRIMARY KEY, v text) PARTITION BY RANGE (id);
CREATE TABLE public.hp_p1 PARTITION OF public.hp_p FOR VALUES FROM (0) TO (100);
CREATE TABLE public.hp_p2 PARTITION OF public.hp_p FOR VALUES FROM (100) TO (200);
SELECT workflow.enable_audit('public.hp_p');
INSERT INTO public.hp_p VALUES (1, 'a'), (150, 'b');
UPDATE public.hp_p2 SET v = 'direct' WHERE id = 150;
UPDATE public.hp_p SET v = 'moved', id = 50 WHERE id = 150;
SELECT results_eq($$ SELECT * FROM workflow.row_history('public.hp_p', '{"id": 150}') $$,
                  $$ SELECT * FROM pg_temp.log_rows('public.hp_p', '{"id": 150}') $$,
                  'a partitioned row''s history: root insert, direct partition update, move out');
SELECT results_eq($$ SELECT operation, new_values FROM workflow.row_history('public.hp_p', '{"id": 150}') LIMIT 2 $$,
                  $$ VALUES ('INSERT', '{"id": 150, "v": "b"}'::jsonb), ('UPDATE', '{"v": "direct"}') $$,
                  'the write made directly to the partition is in it');
SELECT results_eq($$ SELECT * FROM workflow.row_history('public.hp_p', '{"id": 50}') $$,
                  $$ SELECT * FROM pg_temp.log_rows('public.hp_p', '{"id": 50}') $$,
                  'the moved row''s history under its new key');
SELECT is(pg_temp.unindexed_rows('public.hp_p'), 0::bigint, 'partition writes are in the key index');

-- A table whose primary key changes keeps the key check right.
SELECT throws_ok($$ SELECT * FROM workflow.row_history('public.hp_p', '{"id": 1, "v": "a"}') $$, '22023',
                 'workflow.row_history: key {"v": "a", "id": 1} does not name the primary key columns of public.hp_p');

SELECT * FROM finish();
ROLLBACK;
