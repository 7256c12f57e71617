#!/usr/bin/env bash
# pg_dump --schema=app (the audited tables' schema only, without the
# workflow extension and its registry) restored into another database that
# has the extension: the restored audit triggers name registry ids of the
# source database, which there are absent or another table's. A write must
# then fail (39P01, naming the table and the id) instead of being logged as
# the other table's history (its names, its row keys); enable_audit on the
# restored table makes it audited under its own registry row again, and the
# other table's history is untouched. Restored into its own database after
# DROP SCHEMA app CASCADE, the triggers take their dropped tables' registry
# rows back and the history continues. Needs the test cluster (scripts/test).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/dump_pair.sh   # SRC, DST, DUMP, fail, q; removed on exit
dump_pair wf_schema_dump
psql -qX -d $SRC -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
CREATE SCHEMA app;
CREATE TABLE app.a (id int PRIMARY KEY, v text, secret text);
CREATE TABLE app.b (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('app.a', '{secret}');
SELECT workflow.enable_audit('app.b');
INSERT INTO app.a VALUES (1, 'a1', 's1');
INSERT INTO app.b VALUES (1, 'b1');
SQL
# In the destination the id app.a's triggers name is another table's.
psql -qX -d $DST -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
CREATE SCHEMA other;
CREATE TABLE other.z (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('other.z');
INSERT INTO other.z VALUES (7, 'z7');
SQL
a_id=$(q $SRC "SELECT id FROM workflow.audit_tables WHERE table_name = 'a'")
[ "$(q $DST "SELECT table_name FROM workflow.audit_tables WHERE id = $a_id")" = z ] \
  || fail "setup: id $a_id of app.a is not other.z's in the destination"
pg_dump -Fc --schema=app -d $SRC -f "$DUMP"
pg_restore -d $DST "$DUMP" || fail "pg_restore"
[ "$(q $DST "SELECT count(*) FROM app.a")" = 1 ] || fail "app.a's rows not restored"

# A write to a restored table is refused with a clear error, nothing logged.
out=$(psql -qXAt -d $DST -v ON_ERROR_STOP=1 -v VERBOSITY=verbose \
        -c "INSERT INTO app.a VALUES (2, 'a2', 's2')" 2>&1) && fail "write to app.a was accepted: $out"
grep -q '39P01' <<<"$out" || fail "expected SQLSTATE 39P01, got: $out"
grep -q "app.a\" names workflow.audit_tables id $a_id, which is other.z" <<<"$out" || fail "unclear error: $out"
out=$(psql -qXAt -d $DST -v ON_ERROR_STOP=1 -c "UPDATE app.b SET v = 'b2'" 2>&1) && fail "write to app.b was accepted"
[ "$(q $DST "SELECT count(*) FROM app.a")" = 1 ] || fail "the refused insert wrote a row"
[ "$(q $DST "SELECT count(*) FROM workflow.audit_log WHERE table_name <> 'z' OR row_key <> '{\"id\": 7}'")" = 0 ] \
  || fail "a restored table's write was logged: $(q $DST "SELECT table_name, row_key FROM workflow.audit_log")"
[ "$(q $DST "SELECT count(*) FROM workflow.row_history('other.z', '{\"id\": 2}')")" = 0 ] \
  || fail "app.a's row appears in other.z's history"

# enable_audit again: app.a gets its own registry row, its exclusions hold.
q $DST "SELECT workflow.enable_audit('app.a', '{secret}')" >/dev/null
q $DST "INSERT INTO app.a VALUES (2, 'a2', 's2')" >/dev/null
[ "$(q $DST "SELECT schema_name || '.' || table_name || ' ' || new_values::text FROM workflow.row_history('app.a', '{\"id\": 2}')")" \
  = 'app.a {"v": "a2", "id": 2}' ] || fail "app.a's history after enable_audit: $(q $DST "SELECT * FROM workflow.audit_log")"
[ "$(q $DST "SELECT count(*) FROM workflow.row_history('other.z', '{\"id\": 7}')")" = 1 ] || fail "other.z's history changed"

# The same dump restored into its own database after DROP SCHEMA app CASCADE:
# the registry rows are the dropped tables' (same names), so each restored
# trigger takes its row back (relid, audited, excluded columns) and the
# history continues under it.
b_id=$(q $SRC "SELECT id FROM workflow.audit_tables WHERE table_name = 'b'")
q $SRC "DROP SCHEMA app CASCADE" >/dev/null 2>&1
[ "$(q $SRC "SELECT count(*) FROM workflow.audit_tables WHERE schema_name = 'app' AND relid IS NULL AND NOT audited")" = 2 ] \
  || fail "setup: the dropped tables' registry rows"
pg_restore -d $SRC "$DUMP" || fail "pg_restore into the source"
q $SRC "UPDATE app.a SET v = 'a9', secret = 's9'" >/dev/null || fail "write to app.a after its schema came back"
q $SRC "UPDATE app.b SET v = 'b9'" >/dev/null || fail "write to app.b after its schema came back"
[ "$(q $SRC "SELECT string_agg(table_name || ':' || relid::regclass::text || ':' || audited, ' ' ORDER BY id)
             FROM workflow.audit_tables WHERE schema_name = 'app'")" = "a:app.a:true b:app.b:true" ] \
  || fail "registry after the restore: $(q $SRC "SELECT * FROM workflow.audit_tables")"
[ "$(q $SRC "SELECT string_agg(l.table_id || ' ' || l.operation || ' ' || coalesce(l.new_values::text, ''), ', ' ORDER BY l.id)
             FROM workflow.row_history('app.a', '{\"id\": 1}') l")" = "$a_id INSERT {\"v\": \"a1\", \"id\": 1}, $a_id UPDATE {\"v\": \"a9\"}" ] \
  || fail "app.a's history after the restore: $(q $SRC "SELECT * FROM workflow.row_history('app.a', '{\"id\": 1}')")"
[ "$(q $SRC "SELECT count(*) FROM workflow.row_history('app.b', '{\"id\": 1}') WHERE table_id = $b_id")" = 2 ] \
  || fail "app.b's history after the restore"
echo "audit_schema_dump: ok"
