-- pgTAP: the audit trigger's queries that run with the log owner's rights
-- (a restored extension table's first writes: restore_pending) resolve
-- operators and functions in pg_catalog, never through the writer's
-- search_path. Here a role puts its own `=` and jsonb_hash_extended first.
BEGIN;
SELECT plan(3);

CREATE ROLE wf_sp_writer;
CREATE SCHEMA wf_sp_app;
GRANT USAGE ON SCHEMA wf_sp_app TO wf_sp_writer;
CREATE TABLE wf_sp_app.t (id int PRIMARY KEY, v text);
GRANT INSERT, UPDATE, SELECT ON wf_sp_app.t TO wf_sp_writer;
SELECT workflow.enable_audit('wf_sp_app.t');
-- As after a restore of an audited extension table.
UPDATE workflow.audit_tables SET restore_pending = true WHERE relid = 'wf_sp_app.t'::regclass;

CREATE SCHEMA wf_sp_evil AUTHORIZATION wf_sp_writer;
SET ROLE wf_sp_writer;
CREATE TABLE wf_sp_evil.calls (who name);
CREATE FUNCTION wf_sp_evil.eq(int4, int4) RETURNS bool LANGUAGE plpgsql AS $$
BEGIN INSERT INTO wf_sp_evil.calls VALUES (current_user); RETURN $1 OPERATOR(pg_catalog.=) $2; END $$;
CREATE OPERATOR wf_sp_evil.= (leftarg = int4, rightarg = int4, function = wf_sp_evil.eq);
CREATE FUNCTION wf_sp_evil.jsonb_hash_extended(jsonb, bigint) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN INSERT INTO wf_sp_evil.calls VALUES (current_user); RETURN pg_catalog.jsonb_hash_extended($1, $2); END $$;
GRANT USAGE ON SCHEMA wf_sp_evil TO PUBLIC;
GRANT INSERT ON wf_sp_evil.calls TO PUBLIC;
SET LOCAL search_path = wf_sp_evil, pg_catalog;
INSERT INTO wf_sp_app.t VALUES (1, 'a');
UPDATE wf_sp_app.t SET v = 'b' WHERE id OPERATOR(pg_catalog.=) 1;
RESET search_path;
RESET ROLE;

SELECT is((SELECT count(*) FROM wf_sp_evil.calls), 0::bigint,
          'no function or operator of the writer''s search_path ran as the log''s owner');
SELECT is((SELECT array_agg(l.operation ORDER BY l.id) FROM workflow.audit_log l
            JOIN workflow.audit_tables r ON r.id = l.table_id WHERE r.relid = 'wf_sp_app.t'::regclass),
          ARRAY['INSERT', 'UPDATE'], 'both writes are logged');
SELECT is((SELECT restore_pending FROM workflow.audit_tables WHERE relid = 'wf_sp_app.t'::regclass), false,
          'the first UPDATE ended restore_pending');

SELECT * FROM finish();
ROLLBACK;
