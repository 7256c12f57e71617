#!/usr/bin/env bash
# Audit history survives pg_dump -Fc + pg_restore into a new database: the
# log identifies tables by workflow.audit_tables rows (dumped with it), not
# by OID. After the restore row_history / row_as_of read back the same for
# extension tables (workflow.tasks, workflow.survey_steps) and user tables
# (renamed, with a renamed excluded column, partitioned); the restore adds no
# log row of its own (the install-time trigger on survey_steps and the
# re-attached one on tasks do not log the restore's reload); the triggers
# enable_audit attached to workflow.tasks (not dumped: an extension table's)
# are back; new writes are audited, exclusions still hold. Needs the test
# cluster (scripts/test).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/dump_pair.sh   # SRC, DST, DUMP, fail, q; removed on exit
dump_pair wf_audit_dump
psql -qX -d $SRC -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
SELECT workflow.enable_audit('workflow.tasks');
SELECT workflow.create_job('dump', '{}', 1, 'dump-j1');
SELECT workflow.add_tasks('dump-j1', 1, 'x', ARRAY['{}'::jsonb, '{}', '{}']);
SELECT * FROM workflow.complete_task_and_check_stage('dump-j1:1:0', 'dump-j1', 1, '{"ok": 1}');
SELECT * FROM workflow.complete_tasks(ARRAY['dump-j1'], ARRAY['dump-j1:1:1'], ARRAY[1]);
SELECT workflow.upsert_survey_step('C024BE91L', 'workload today', '{"hours": 6}', '2026-11-23 10:00+00');
SELECT workflow.upsert_survey_step('C024BE91L', 'workload today', '{"hours": 7}', '2026-11-23 11:00+00');
CREATE SCHEMA app;
CREATE TABLE app.account (id int PRIMARY KEY, email text, pw text);
SELECT workflow.enable_audit('app.account', '{pw}');
INSERT INTO app.account VALUES (1, 'a@example.com', 'p1'), (2, 'b@example.com', 'p2');
UPDATE app.account SET email = 'c@example.com' WHERE id = 1;
ALTER TABLE app.account RENAME TO login;
ALTER TABLE app.login RENAME COLUMN pw TO pw_hash;
UPDATE app.login SET email = 'd@example.com', pw_hash = 'p3' WHERE id = 1;
DELETE FROM app.login WHERE id = 2;
CREATE TABLE app.event (id int, region text, note text, PRIMARY KEY (id, region)) PARTITION BY LIST (region);
CREATE TABLE app.event_eu PARTITION OF app.event FOR VALUES IN ('eu');
SELECT workflow.enable_audit('app.event');
INSERT INTO app.event VALUES (1, 'eu', 'via root');
INSERT INTO app.event_eu VALUES (2, 'eu', 'direct');
CREATE TABLE app.event_us PARTITION OF app.event FOR VALUES IN ('us');
INSERT INTO app.event_us VALUES (3, 'us', 'later partition');
SQL

# Everything a reader sees of the history, per audited row.
HISTORY="SELECT string_agg(format('%s %s %s: %s | %s', k.tab, k.key, h.operation, h.old_values, h.new_values), E'\n'
                         ORDER BY k.tab, k.key::text, h.id)
           FROM (SELECT 'workflow.tasks' AS tab, jsonb_build_object('job_id', job_id, 'id', id) AS key FROM workflow.tasks
                 UNION ALL SELECT 'workflow.survey_steps', jsonb_build_object('id', id) FROM workflow.survey_steps
                 UNION ALL SELECT 'app.login', jsonb_build_object('id', i) FROM generate_series(1, 2) i
                 UNION ALL SELECT 'app.event', jsonb_build_object('id', id, 'region', region) FROM app.event) k,
                LATERAL workflow.row_history(k.tab::regclass, k.key) h"
AS_OF="SELECT string_agg(format('%s %s = %s', k.tab, k.key, workflow.row_as_of(k.tab::regclass, k.key, now())), E'\n'
                       ORDER BY k.tab, k.key::text)
         FROM (SELECT 'workflow.tasks' AS tab, jsonb_build_object('job_id', job_id, 'id', id) AS key FROM workflow.tasks
               UNION ALL SELECT 'workflow.survey_steps', jsonb_build_object('id', id) FROM workflow.survey_steps
               UNION ALL SELECT 'app.login', jsonb_build_object('id', i) FROM generate_series(1, 2) i
               UNION ALL SELECT 'app.event', jsonb_build_object('id', id, 'region', region) FROM app.event) k"
LOG="SELECT count(*) || ' rows, max id ' || max(id) FROM workflow.audit_log"

pg_dump -Fc -d $SRC -f "$DUMP"
RESTORE_OUT=$(pg_restore -d $DST "$DUMP" 2>&1 || true)
[ -z "$RESTORE_OUT" ] || { echo "$RESTORE_OUT"; fail "pg_restore reported errors"; }

src_history=$(q $SRC "$HISTORY"); dst_history=$(q $DST "$HISTORY")
[ -n "$src_history" ] || fail "no history in the source"
[ "$src_history" = "$dst_history" ] || { diff <(echo "$src_history") <(echo "$dst_history") || true; fail "row_history differs after restore"; }
[ "$(q $SRC "$AS_OF")" = "$(q $DST "$AS_OF")" ] || fail "row_as_of differs after restore"
[ "$(q $SRC "$LOG")" = "$(q $DST "$LOG")" ] || fail "the restore wrote log rows: $(q $SRC "$LOG") vs $(q $DST "$LOG")"
dups=$(q $DST "SELECT count(*) FROM (SELECT table_id, row_key FROM workflow.audit_log WHERE operation = 'INSERT'
                                      GROUP BY 1, 2 HAVING count(*) > 1) d")
[ "$dups" = 0 ] || fail "$dups duplicate INSERT rows after restore"
# (15 log rows: 3 task inserts, 2 native completions, 2 survey steps, login and event rows)
[ "$(echo "$src_history" | wc -l)" -ge 12 ] || fail "source history too short: $src_history"
echo "history read back the same: $(q $DST "$LOG")"

# The triggers are back (tasks: re-attached; user tables: from the dump) ...
TRIGGERS="SELECT string_agg(tgrelid::regclass || ':' || tgname, ',' ORDER BY tgrelid::regclass::text, tgname)
            FROM pg_trigger WHERE tgfoid = 'workflow.audit_trigger()'::regprocedure AND tgparentid = 0"
[ "$(q $SRC "$TRIGGERS")" = "$(q $DST "$TRIGGERS")" ] || fail "audit triggers differ: $(q $DST "$TRIGGERS")"

# ... and new writes are audited, by every writer, exclusions still hold.
psql -qX -d $DST -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
SELECT * FROM workflow.complete_task_and_check_stage('dump-j1:1:2', 'dump-j1', 1, '{"ok": 3}');
SELECT workflow.create_job('dump', '{}', 1, 'dump-j2');
SELECT workflow.add_tasks('dump-j2', 1, 'x', ARRAY['{}'::jsonb]);
SELECT workflow.upsert_survey_step('C024BE91L', 'workload today', '{"hours": 8}', '2026-11-23 12:00+00');
SELECT workflow.upsert_survey_step('D0ABCDEFGH', 'workload today', '{"hours": 1}', '2026-11-23 12:00+00');
UPDATE app.login SET email = 'e@example.com', pw_hash = 'p4' WHERE id = 1;
INSERT INTO app.event_eu VALUES (4, 'eu', 'after restore');
INSERT INTO app.event_us VALUES (5, 'us', 'after restore');
SQL
new=$(q $DST "SELECT string_agg(table_name || ' ' || operation || ' ' || row_key::text, ', ' ORDER BY id)
                FROM workflow.audit_log WHERE id > $(q $SRC "SELECT max(id) FROM workflow.audit_log")")
echo "after restore: $new"
for want in 'tasks UPDATE {"id": "dump-j1:1:2"' 'tasks INSERT {"id": "dump-j2:1:0"' 'survey_steps UPDATE' 'survey_steps INSERT' \
            'login UPDATE {"id": 1}' 'event INSERT {"id": 4, "region": "eu"}' 'event INSERT {"id": 5, "region": "us"}'; do
  case "$new" in *"$want"*) ;; *) fail "not audited after restore: $want";; esac
done
leaked=$(q $DST "SELECT count(*) FROM workflow.audit_log WHERE new_values ?| '{pw,pw_hash}' OR old_values ?| '{pw,pw_hash}'")
[ "$leaked" = 0 ] || fail "excluded column logged after restore"
pending=$(q $DST "SELECT count(*) FROM workflow.audit_tables WHERE restore_pending")
[ "$pending" = 0 ] || fail "restore_pending left set on $pending tables after their first updates"
echo "audit dump/restore: ok"
