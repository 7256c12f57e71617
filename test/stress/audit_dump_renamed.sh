#!/usr/bin/env bash
# pg_dump / pg_restore of a registry that holds a dropped table's row and a
# live table renamed to the dropped one's name (each audited under a row of
# its own). The restore must map only the live table's row to the restored
# table: row_history of the live table reads its own history before and
# after the restore (not the dropped table's), new writes are logged under
# its row, and the dropped table's history stays the auditors', by its name.
# Needs the test cluster (scripts/test).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/dump_pair.sh   # SRC, DST, DUMP, fail, q; removed on exit
dump_pair wf_dump_renamed
psql -qX -d $SRC -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
CREATE SCHEMA app;
CREATE TABLE app.x (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('app.x');
INSERT INTO app.x VALUES (1, 'dropped x');
DROP TABLE app.x;
CREATE TABLE app.y (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('app.y');
INSERT INTO app.y VALUES (1, 'live');
ALTER TABLE app.y RENAME TO x;
SQL
hist="SELECT string_agg(operation || ' ' || coalesce(new_values->>'v', '-'), ', ' ORDER BY id)
        FROM workflow.row_history('app.x', '{\"id\": 1}')"
[ "$(q $SRC "$hist")" = "INSERT live" ] || fail "source: $(q $SRC "$hist")"
[ "$(q $SRC "SELECT count(*) FROM workflow.audit_tables WHERE table_name = 'x'")" = 2 ] || fail "setup: two rows named x"
pg_dump -Fc -d $SRC -f "$DUMP"
pg_restore -d $DST "$DUMP" || fail "pg_restore"
[ "$(q $DST "$hist")" = "INSERT live" ] || fail "restored: row_history of app.x reads '$(q $DST "$hist")', want 'INSERT live'"
[ "$(q $DST "SELECT count(*) FROM workflow.audit_tables WHERE relid = 'app.x'::regclass")" = 1 ] \
  || fail "restored: $(q $DST "SELECT count(*) FROM workflow.audit_tables WHERE relid = 'app.x'::regclass") registry rows map to app.x"
q $DST "UPDATE app.x SET v = 'updated'" >/dev/null
[ "$(q $DST "$hist")" = "INSERT live, UPDATE updated" ] || fail "after an update: '$(q $DST "$hist")'"
[ "$(q $DST "SELECT string_agg(new_values->>'v', ',') FROM workflow.audit_log l JOIN workflow.audit_tables t ON t.id = l.table_id
             WHERE t.table_name = 'x' AND t.relid IS NULL")" = "dropped x" ] || fail "the dropped table's history"
echo "audit_dump_renamed: ok"
