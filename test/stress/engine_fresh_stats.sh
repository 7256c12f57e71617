#!/usr/bin/env bash
# A fresh install's first big fan-out takes the tasks table's statistics
# (add_tasks -> _engine_analyze_new_tasks_table), so the first claims use the
# claim index instead of sorting the stage; autovacuum is switched off for the
# table here so only add_tasks can have analysed it. A second producer that
# finds the ANALYZE lock held by an open transaction skips it instead of
# waiting for that transaction. Needs the test cluster (scripts/test).
set -euo pipefail
: "${PGHOST:?no server: run via scripts/test}" "${PGPORT:?no server}"
DB=wf_engine_fresh_stats
cleanup() { psql -qX -d postgres -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" >/dev/null 2>&1 || true; }
trap 'cleanup; [ -n "${HOLDER:-}" ] && kill "$HOLDER" 2>/dev/null; true' EXIT
cleanup
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB"
q() { psql -qXAt -d $DB -v ON_ERROR_STOP=1 "$@"; }
q -c "CREATE EXTENSION workflow" -c "ALTER TABLE workflow.tasks SET (autovacuum_enabled = off)"
q -c "SELECT workflow.create_job('small', '{}', 3, 'j0'), workflow.create_job('big', '{}', 3, 'j1'), workflow.create_job('big', '{}', 3, 'j2')" >/dev/null

tasks_sql() { echo "SELECT workflow.add_tasks('$1', 1, 'noop', array(SELECT jsonb_build_object('i', g) FROM generate_series(1, $2) g))"; }
reltuples() { q -c "SELECT reltuples FROM pg_class WHERE oid = 'workflow.tasks'::regclass"; }

# A small stage (under 1 MB of tasks) leaves the table alone.
q -c "$(tasks_sql j0 100)" >/dev/null
[ "$(reltuples)" = "-1" ] || { echo "FAIL: 100 tasks already analysed the table ($(reltuples))"; exit 1; }

# A producer holds the table's ANALYZE lock in an open transaction ...
PGAPPNAME=lock_holder q -c "BEGIN" -c "LOCK TABLE workflow.tasks IN SHARE UPDATE EXCLUSIVE MODE" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
HOLDER=$!
for _ in $(seq 100); do
  [ "$(psql -qXAt -d $DB -c "SELECT count(*) FROM pg_locks WHERE relation = 'workflow.tasks'::regclass AND mode = 'ShareUpdateExclusiveLock' AND granted")" = 1 ] && break
  sleep 0.1
done
# ... so a big stage now skips the ANALYZE (NOWAIT) instead of waiting: with
# lock_timeout 5 s a wait would fail the call.
PGOPTIONS="-c lock_timeout=5s" q -c "$(tasks_sql j1 6000)" >/dev/null \
  || { echo "FAIL: add_tasks waited for the lock held by another transaction"; exit 1; }
[ "$(reltuples)" = "-1" ] || { echo "FAIL: analysed although the lock was held"; exit 1; }
q -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'lock_holder'" >/dev/null
wait "$HOLDER" 2>/dev/null || true; HOLDER=

# Lock free: the next big stage takes the statistics.
q -c "$(tasks_sql j2 6000)" >/dev/null
n=$(reltuples)
echo "reltuples after the big stage: $n"
[ "${n%.*}" -ge 12000 ] || { echo "FAIL: the big stage did not analyse the tasks table"; exit 1; }
echo "engine fresh stats ok"
