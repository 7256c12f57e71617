-- workflow.set_updated_at(): native BEFORE trigger stamping a column with now().
SET client_min_messages = warning;
CREATE SCHEMA audit_u;
CREATE FUNCTION audit_u.try(statement text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE statement;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE || ': ' || left(SQLERRM, 120);
END;
$$;
CREATE TABLE audit_u.t (id int PRIMARY KEY, v text,
                        updated_at timestamptz DEFAULT '2000-01-01', modified timestamp DEFAULT '2000-01-01');
INSERT INTO audit_u.t VALUES (1, 'a'), (2, 'b');

-- default column updated_at
CREATE TRIGGER stamp BEFORE UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
BEGIN;
UPDATE audit_u.t SET v = 'a2' WHERE id = 1;
SELECT id, updated_at = now() AS stamped, modified FROM audit_u.t ORDER BY id;
COMMIT;
DROP TRIGGER stamp ON audit_u.t;

-- a named timestamp (without time zone) column, and on INSERT too
CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON audit_u.t
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('modified');
BEGIN;
UPDATE audit_u.t SET v = 'b2' WHERE id = 2;
INSERT INTO audit_u.t (id, v) VALUES (3, 'c');
SELECT id, modified = now()::timestamp AS stamped FROM audit_u.t ORDER BY id;
COMMIT;
DROP TRIGGER stamp ON audit_u.t;

-- skip_noop: an update that changes nothing else keeps the old stamp
UPDATE audit_u.t SET updated_at = '2000-01-01';
CREATE TRIGGER stamp BEFORE UPDATE ON audit_u.t
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('updated_at', 'skip_noop');
UPDATE audit_u.t SET v = v;
SELECT id, updated_at FROM audit_u.t ORDER BY id;
BEGIN;
UPDATE audit_u.t SET v = 'changed' WHERE id = 3;
SELECT id, updated_at = now() AS stamped FROM audit_u.t ORDER BY id;
COMMIT;
DROP TRIGGER stamp ON audit_u.t;

-- the column is found again after ALTER TABLE moves it
ALTER TABLE audit_u.t DROP COLUMN modified;
ALTER TABLE audit_u.t RENAME COLUMN updated_at TO old_stamp;
ALTER TABLE audit_u.t ADD COLUMN updated_at timestamptz;
CREATE TRIGGER stamp BEFORE UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
BEGIN;
UPDATE audit_u.t SET v = 'x' WHERE id = 1;
SELECT id, updated_at = now() AS stamped, old_stamp = now() AS old_untouched_is_now FROM audit_u.t WHERE id = 1;
COMMIT;
DROP TRIGGER stamp ON audit_u.t;

-- NULLs, short and long varlenas and odd alignments before and after the
-- stamp: every other value is intact, only the stamp moves
CREATE TABLE audit_u.mixed (id int PRIMARY KEY, a text, b smallint, c text, flag bool,
                            updated_at timestamptz, d text, e int8);
INSERT INTO audit_u.mixed VALUES (1, NULL, 1, repeat('x', 3000), NULL, '2000-01-01', NULL, 5),
                                 (2, 'a', NULL, 'short', true, '2000-01-01', 'd', NULL),
                                 (3, NULL, NULL, NULL, NULL, '2000-01-01', NULL, NULL),
                                 (4, 'n', 1, 'c', false, NULL, 'd', 1);
CREATE TRIGGER stamp BEFORE UPDATE ON audit_u.mixed FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
CREATE TEMP TABLE mixed_before AS SELECT * FROM audit_u.mixed;
BEGIN;
UPDATE audit_u.mixed SET e = coalesce(e, 0) + 1;
SELECT m.id, m.updated_at = now() AS stamped,
       (to_jsonb(m) - 'updated_at' - 'e') = (to_jsonb(o) - 'updated_at' - 'e') AS others_intact,
       m.e = coalesce(o.e, 0) + 1 AS e_updated
FROM audit_u.mixed m JOIN mixed_before o USING (id) ORDER BY id;
COMMIT;

-- misuse: SQLSTATE errors, the row is unchanged
CREATE TRIGGER bad BEFORE UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('nope');
SELECT audit_u.try('UPDATE audit_u.t SET v = ''y'' WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
CREATE TRIGGER bad BEFORE UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('v');
SELECT audit_u.try('UPDATE audit_u.t SET v = ''y'' WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
CREATE TRIGGER bad BEFORE UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('updated_at', 'sometimes');
SELECT audit_u.try('UPDATE audit_u.t SET v = ''y'' WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
CREATE TRIGGER bad BEFORE UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('');
SELECT audit_u.try('UPDATE audit_u.t SET v = ''y'' WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
CREATE TRIGGER bad AFTER UPDATE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
SELECT audit_u.try('UPDATE audit_u.t SET v = ''y'' WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
CREATE TRIGGER bad BEFORE DELETE ON audit_u.t FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
SELECT audit_u.try('DELETE FROM audit_u.t WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
CREATE TRIGGER bad BEFORE UPDATE ON audit_u.t FOR EACH STATEMENT EXECUTE FUNCTION workflow.set_updated_at();
SELECT audit_u.try('UPDATE audit_u.t SET v = ''y'' WHERE id = 1');
DROP TRIGGER bad ON audit_u.t;
SELECT v FROM audit_u.t WHERE id = 1;

DROP SCHEMA audit_u CASCADE;
