-- The audit writer encodes an object of scalars in jsonb's on-disk format
-- itself (src/extension/audit_jsonb.cpp). Its bytes must be exactly what
-- PostgreSQL's own jsonb writer makes of the same value: compared here as
-- stored (pageinspect) against the value re-made by jsonb_in, for objects of
-- more than 32 keys (JEntry offsets), keys of equal length (byte order),
-- numerics after strings of every length (int alignment), NULLs, booleans,
-- NaN, and objects holding an array or object (PostgreSQL's own path).
SET client_min_messages = warning;
SET timezone = 'UTC';
CREATE EXTENSION IF NOT EXISTS pageinspect;
CREATE SCHEMA audit_b;

-- 41 columns: id, then c01..c40 cycling through ten types; "é" and "ab"
-- (both two bytes) and "b" test the key order.
DO $$
DECLARE
  types text[] := '{int2,int4,int8,numeric,text,bool,float8,timestamptz,uuid,jsonb}';
  cols text := '';
BEGIN
  FOR i IN 1..40 LOOP
    cols := cols || format(', c%s %s', lpad(i::text, 2, '0'), types[(i - 1) % 10 + 1]);
  END LOOP;
  EXECUTE format('CREATE TABLE audit_b.wide (id int PRIMARY KEY, "é" text, ab numeric, b text%s)', cols);
END $$;
SELECT workflow.enable_audit('audit_b.wide');

-- Values of every length and alignment; every seventh value NULL.
INSERT INTO audit_b.wide
SELECT g, repeat('x', g % 5), CASE WHEN g % 6 = 0 THEN 'NaN'::numeric ELSE (g * 1.25)::numeric END, repeat('é', g % 3),
       CASE WHEN g % 7 = 1 THEN NULL ELSE g::int2 END, g * 3, g::int8 * 1000000007, g / 3.0,
       repeat('s', g % 9), g % 2 = 0, g * 0.5, '2024-01-01'::timestamptz + g * interval '1 hour',
       md5(g::text)::uuid, to_jsonb(repeat('j', g % 4)),
       g::int2, NULL, -g::int8, 10::numeric ^ (g % 30), repeat('ab', g % 7), NULL, 'Infinity',
       '2024-01-01', '00000000-0000-0000-0000-000000000000', CASE WHEN g % 2 = 0 THEN '1'::jsonb ELSE 'null'::jsonb END,
       1, 2, 3, 4.5, '', true, -0.0, '1999-12-31 23:59:59.999999', md5('u')::uuid, 'true',
       -1, -2, -3, -4.5, 'z', false, 1e300, 'infinity', md5('v')::uuid, '"é"'
FROM generate_series(1, 60) g;
-- Diffs of a few columns and of all of them; a key change; deletes.
UPDATE audit_b.wide SET c04 = c04 + 1, c05 = c05 || 'y', ab = ab + 0.001 WHERE id % 2 = 0;
UPDATE audit_b.wide SET "é" = "é" || '!', b = NULL, c06 = NOT c06 WHERE id % 3 = 0;
UPDATE audit_b.wide SET id = id + 1000 WHERE id = 5;
UPDATE audit_b.wide SET (c01, c02, c03, c04, c05, c06, c07, c08, c09, c10, c11, c12, c13, c14, c15, c16,
                         c17, c18, c19, c20, c21, c22, c23, c24, c25, c26, c27, c28, c29, c30, c31, c32,
                         c33, c34, c35, c36, c37, c38, c39, c40) =
  (7, 7, 7, 7, 'seven', true, 7, '2007-07-07', md5('7')::uuid, '7',
   7, 7, 7, 7, 'seven', true, 7, '2007-07-07', md5('7')::uuid, '7',
   7, 7, 7, 7, 'seven', true, 7, '2007-07-07', md5('7')::uuid, '7',
   7, 7, 7, 7, 'seven', true, 7, '2007-07-07', md5('7')::uuid, '7')
  WHERE id IN (10, 11);
DELETE FROM audit_b.wide WHERE id % 10 = 9;

-- A table whose values include arrays and objects: PostgreSQL's own path.
CREATE TABLE audit_b.nested (id int PRIMARY KEY, arr int[], doc jsonb, n numeric, t text);
SELECT workflow.enable_audit('audit_b.nested');
INSERT INTO audit_b.nested VALUES (1, '{1,2}', '{"z": [1, {"a": 2.5}], "a": "x"}', 1.5, 'a'),
                                  (2, NULL, '[true, null]', NULL, 'bb');
UPDATE audit_b.nested SET doc = '{"k": 1}', n = 2.25;
UPDATE audit_b.nested SET t = t || 'c';

-- The raw bytes of each log row's jsonb columns, beside those of the same
-- values re-made by jsonb_in in a table of the same column layout.
CREATE TABLE audit_b.remade AS
  SELECT id, row_key::text::jsonb AS row_key, old_values::text::jsonb AS old_values,
         new_values::text::jsonb AS new_values
  FROM workflow.audit_log WHERE schema_name = 'audit_b';
-- Column 1 (the log's id, a bigint) is stored little-endian.
CREATE FUNCTION audit_b.stored_bigint(b bytea) RETURNS bigint LANGUAGE sql AS $$
  SELECT sum(get_byte(b, i)::numeric * 256::numeric ^ i)::bigint FROM generate_series(0, 7) AS i
$$;
CREATE FUNCTION audit_b.raw(rel regclass, attnums int[])
RETURNS TABLE (id bigint, row_key bytea, old_values bytea, new_values bytea)
LANGUAGE sql AS $$
  SELECT audit_b.stored_bigint(d[1]), d[attnums[2]], d[attnums[3]], d[attnums[4]]
  FROM generate_series(0, pg_relation_size(rel) / 8192 - 1) AS b,
       LATERAL heap_page_items(get_raw_page(rel::text, b::int)) AS p,
       LATERAL (SELECT tuple_data_split(rel, p.t_data, p.t_infomask, p.t_infomask2, p.t_bits) AS d) AS s
  WHERE p.lp_flags = 1 AND p.t_xmax = 0
$$;
SELECT attnum AS log_row_key FROM pg_attribute
  WHERE attrelid = 'workflow.audit_log'::regclass AND attname = 'row_key' \gset
WITH logged AS (
  SELECT r.* FROM audit_b.raw('workflow.audit_log',
                              ARRAY[1, :log_row_key, :log_row_key + 1, :log_row_key + 2]) r
  JOIN workflow.audit_log l USING (id) WHERE l.schema_name = 'audit_b'),
remade AS (SELECT * FROM audit_b.raw('audit_b.remade', ARRAY[1, 2, 3, 4]))
SELECT count(*) AS log_rows,
       count(*) FILTER (WHERE l.row_key IS NOT DISTINCT FROM r.row_key) AS same_row_key,
       count(*) FILTER (WHERE l.old_values IS NOT DISTINCT FROM r.old_values) AS same_old_values,
       count(*) FILTER (WHERE l.new_values IS NOT DISTINCT FROM r.new_values) AS same_new_values
FROM logged l JOIN remade r USING (id);

-- And the values are what to_jsonb gives: the whole row of an INSERT, the
-- changed columns of an UPDATE (checked on the rows not updated since).
SELECT count(*) AS inserts_checked,
       count(*) FILTER (WHERE l.new_values = to_jsonb(w)) AS same_as_to_jsonb
FROM workflow.audit_log l JOIN audit_b.wide w ON (l.row_key ->> 'id')::int = w.id
WHERE l.schema_name = 'audit_b' AND l.table_name = 'wide' AND l.operation = 'INSERT'
  AND w.id % 2 = 1 AND w.id % 3 <> 0 AND w.id NOT IN (5, 11);
-- Keys as stored: by length, then bytewise ("ab" < "id" < "é", two bytes each).
SELECT (SELECT string_agg(k, ' ') FROM (SELECT k FROM jsonb_object_keys(new_values) AS k LIMIT 6) AS f)
         AS first_keys_as_stored,
       new_values -> 'ab' AS ab, new_values -> 'é' AS e, new_values -> 'c27' AS c27,
       new_values -> 'c34' AS c34, new_values -> 'c38' AS c38
FROM workflow.audit_log
WHERE schema_name = 'audit_b' AND table_name = 'wide' AND operation = 'INSERT' AND row_key = '{"id": 7}';
SELECT operation, row_key, old_values, new_values FROM workflow.audit_log
WHERE schema_name = 'audit_b' AND table_name = 'nested' ORDER BY id;

DROP SCHEMA audit_b CASCADE;
