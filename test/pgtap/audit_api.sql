-- Audit history API: every function exists, is commented, and behaves.
BEGIN;
SELECT plan(35);

SELECT has_function('workflow', 'enable_audit', ARRAY['regclass', 'text[]', 'boolean']);
SELECT has_function('workflow', 'disable_audit', ARRAY['regclass']);
SELECT has_function('workflow', 'row_history', ARRAY['regclass', 'jsonb']);
SELECT has_function('workflow', 'row_as_of', ARRAY['regclass', 'jsonb', 'timestamp with time zone']);
SELECT has_function('workflow', 'purge_audit_log', ARRAY['interval']);
SELECT has_function('workflow', 'set_updated_at', '{}'::name[]);
SELECT has_function('workflow', 'audit_trigger', '{}'::name[]);
SELECT has_table('workflow', 'audit_log', 'the log exists');
SELECT has_view('workflow', 'task_history', 'task_history view exists');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.pronamespace = 'workflow'::regnamespace
    AND (p.proname LIKE '%audit%' OR p.proname IN ('row_history', 'row_as_of', 'set_updated_at'))
    AND obj_description(p.oid, 'pg_proc') IS NULL $$,
  'every audit function has a COMMENT');
SELECT ok((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c
           WHERE e.extname = 'workflow' AND c = 'workflow.audit_log'::regclass) = 1,
          'audit_log is registered with pg_extension_config_dump');
SELECT has_table('workflow', 'audit_tables', 'the registry of audited tables exists');
SELECT ok((SELECT count(*) FROM pg_extension e, unnest(e.extconfig) c
           WHERE e.extname = 'workflow'
             AND c IN ('workflow.audit_tables'::regclass, 'workflow.audit_tables_id_seq'::regclass,
                       'workflow.audit_log_id_seq'::regclass)) = 3,
          'the registry, its sequence and the log''s are registered with pg_extension_config_dump');
SELECT col_type_is('workflow', 'audit_log', 'table_id', 'integer', 'the log names a table by registry id');
SELECT hasnt_column('workflow', 'audit_log', 'relid', 'the log keeps no OID');
SELECT is((SELECT array_agg(evtname::text ORDER BY evtname) FROM pg_event_trigger WHERE evtfoid::regproc::text LIKE 'workflow.%'),
          ARRAY['workflow_audit_ddl_end', 'workflow_audit_keep_primary_key', 'workflow_audit_sql_drop', 'workflow_audit_trigger_relink'], 'the audit event triggers exist');
SELECT is_empty($$
  SELECT p.oid::regprocedure::text FROM pg_proc p
  WHERE p.oid IN ('workflow.audit_trigger_table_id(bytea,int2)'::regprocedure,
                  'workflow.audit_tables_restore_row()'::regprocedure,
                  'workflow.audit_tables_restored()'::regprocedure,
                  'workflow.audit_reattach_extension_table(integer)'::regprocedure,
                  'workflow.audit_ddl_end()'::regprocedure,
                  'workflow.audit_sql_drop()'::regprocedure)
    AND has_function_privilege('public', p.oid, 'EXECUTE') $$,
  'the new internal audit functions are not executable by PUBLIC');

CREATE TABLE public.audit_tap (id int PRIMARY KEY, v text, noise int);
SELECT lives_ok($$ SELECT workflow.enable_audit('public.audit_tap', '{noise}') $$, 'enable_audit');
SELECT results_eq($$ SELECT schema_name, table_name, relid::regclass::text, exclude_columns FROM workflow.audit_tables
                      WHERE relid = 'public.audit_tap'::regclass $$,
                  $$ VALUES ('public', 'audit_tap', 'audit_tap', '{noise}'::text[]) $$,
                  'enable_audit registers the table by name');
INSERT INTO public.audit_tap VALUES (1, 'a', 0);
UPDATE public.audit_tap SET noise = 1;
UPDATE public.audit_tap SET v = 'b';
SELECT results_eq(
  $$ SELECT operation, old_values, new_values FROM workflow.row_history('public.audit_tap', '{"id": 1}') $$,
  $$ VALUES ('INSERT', NULL::jsonb, '{"id": 1, "v": "a"}'::jsonb),
            ('UPDATE', '{"v": "a"}', '{"v": "b"}') $$,
  'history has the insert and the one real change; the noise-only update is skipped');
SELECT is(workflow.row_as_of('public.audit_tap', '{"id": 1}', clock_timestamp()),
          '{"id": 1, "v": "b"}'::jsonb, 'row_as_of now is the current row without excluded columns');
SELECT is(workflow.row_as_of('public.audit_tap', '{"id": 1}', '-infinity'), NULL, 'row_as_of before any change is NULL');

SELECT throws_ok($$ SELECT workflow.enable_audit(NULL) $$, '22004');
SELECT throws_ok($$ SELECT workflow.enable_audit('pg_class') $$, '42501', NULL, 'system catalogs cannot be audited');
SELECT throws_ok($$ SELECT workflow.enable_audit('public.audit_tap', '{missing}') $$, '42703');
CREATE TEMPORARY TABLE audit_tap_temp (id int PRIMARY KEY);
SELECT throws_ok($$ SELECT workflow.enable_audit('audit_tap_temp') $$, '0A000', NULL,
                 'a temporary table is not audited (its pg_temp_N history would pass to another session)');
CREATE ROLE audit_tap_stranger;
GRANT USAGE ON SCHEMA workflow TO audit_tap_stranger;
-- (the right to audit, without ownership; the session user is the caller)
GRANT EXECUTE ON FUNCTION workflow.disable_audit(regclass) TO audit_tap_stranger;
SET SESSION AUTHORIZATION audit_tap_stranger;
SELECT throws_ok($$ SELECT workflow.disable_audit('public.audit_tap') $$, '42501',
                 'workflow.disable_audit: must be owner of table public.audit_tap', 'only the owner may disable');
RESET SESSION AUTHORIZATION;
SELECT throws_ok($$ SELECT workflow.row_history('public.audit_tap', '{"nope": 1}') $$, '22023');
SELECT throws_ok($$ SELECT workflow.row_as_of('public.audit_tap', '{"id": 1}', NULL) $$, '22004');
SELECT throws_ok($$ SELECT workflow.purge_audit_log(NULL) $$, '22004');
SELECT throws_ok($$ SELECT workflow.purge_audit_log('-1 second') $$, '22023');
CREATE TABLE public.audit_tap_nokey (v text);
SELECT throws_ok($$ SELECT workflow.enable_audit('public.audit_tap_nokey') $$, '55000');

SELECT lives_ok($$ SELECT workflow.disable_audit('public.audit_tap') $$, 'disable_audit');
SELECT throws_ok($$ SELECT workflow.disable_audit('public.audit_tap') $$, 'P0002');
SELECT is((SELECT count(*)::int FROM workflow.row_history('public.audit_tap', '{"id": 1}')), 2,
          'history stays after disable_audit');

SELECT * FROM finish();
ROLLBACK;
