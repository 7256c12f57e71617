-- Foreign-key actions into audited tables (ON DELETE CASCADE, ON UPDATE
-- CASCADE, ON DELETE SET NULL) are logged in the order they happened, in both
-- modes. PostgreSQL runs the actions of one statement without firing their
-- triggers and adds their rows to one transition table per table and
-- operation, whose AFTER STATEMENT triggers then fire in the order the
-- operations were last queued: a child row set to NULL by one action and
-- deleted by the next was logged DELETE, then UPDATE, and row_as_of said the
-- deleted row still existed.
SET client_min_messages = warning;
CREATE SCHEMA audit_fk;
CREATE FUNCTION audit_fk.steps(t regclass, k jsonb) RETURNS text LANGUAGE sql AS $$
  SELECT string_agg(h.operation || coalesce(' ' || h.new_values::text, ''), ' / ' ORDER BY h.id)
  FROM workflow.row_history(t, k) h $$;
CREATE FUNCTION audit_fk.run(statement_level boolean) RETURNS TABLE (id int, history text, as_of jsonb)
LANGUAGE plpgsql AS $$
DECLARE
  suffix text := CASE WHEN statement_level THEN 's' ELSE 'r' END;
BEGIN
  EXECUTE format('CREATE TABLE audit_fk.par_%s (id int PRIMARY KEY, code text UNIQUE)', suffix);
  EXECUTE format('CREATE TABLE audit_fk.ch_%1$s (id int PRIMARY KEY,
    par_id int REFERENCES audit_fk.par_%1$s ON DELETE CASCADE,
    par_code text REFERENCES audit_fk.par_%1$s (code) ON UPDATE CASCADE ON DELETE CASCADE,
    opt int REFERENCES audit_fk.par_%1$s ON DELETE SET NULL)', suffix);
  PERFORM workflow.enable_audit(format('audit_fk.ch_%s', suffix)::regclass,
                                statement_level => statement_level);
  EXECUTE format('INSERT INTO audit_fk.par_%s VALUES (1, ''a''), (2, ''b''), (3, ''c'')', suffix);
  EXECUTE format('INSERT INTO audit_fk.ch_%s VALUES (10, 1, ''a'', 2), (11, 1, ''b'', 2),
                  (12, 2, ''a'', 3), (13, 3, ''c'', 1)', suffix);
  -- ON UPDATE CASCADE (and parent 1 moves to the end of the heap: the DELETE
  -- below takes parent 2 first, so row 10 is set to NULL, then deleted)
  EXECUTE format('UPDATE audit_fk.par_%s SET code = ''A'' WHERE id = 1', suffix);
  EXECUTE format('DELETE FROM audit_fk.par_%s WHERE id IN (1, 2)', suffix);
  RETURN QUERY
    SELECT k.id, audit_fk.steps(format('audit_fk.ch_%s', suffix)::regclass, jsonb_build_object('id', k.id)),
           workflow.row_as_of(format('audit_fk.ch_%s', suffix)::regclass, jsonb_build_object('id', k.id), 'infinity')
    FROM generate_series(10, 13) AS k(id);
END $$;

SELECT * FROM audit_fk.run(true);
SELECT * FROM audit_fk.run(false);
-- what remains is what the log says remains
SELECT (SELECT array_agg(id ORDER BY id) FROM audit_fk.ch_s) AS statement_rows,
       (SELECT array_agg(id ORDER BY id) FROM audit_fk.ch_r) AS row_rows;

-- TRUNCATE ... CASCADE logs a TRUNCATE for each audited table it empties.
SELECT workflow.enable_audit('audit_fk.par_s');
TRUNCATE audit_fk.par_s CASCADE;
SELECT table_name, count(*) FROM workflow.audit_log
 WHERE schema_name = 'audit_fk' AND operation = 'TRUNCATE' GROUP BY table_name ORDER BY table_name;

DROP SCHEMA audit_fk CASCADE;
