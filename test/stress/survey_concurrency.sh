#!/usr/bin/env bash
# Concurrent single and batch upserts on a small key space (20 sessions x 5
# steps x 3 weeks = 300 possible rows): no client may fail (no deadlock, no
# unique violation), and afterwards every (session, week, step) has exactly
# one row, every row's week_start matches its completed_at, and every session
# exists once. Needs the test cluster (PGHOST/PGPORT from scripts/test).
set -euo pipefail
cd "$(dirname "$0")/../.."
: "${PGHOST:?no server: run via scripts/test}" "${PGPORT:?no server}"
DB=wf_survey_stress
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -qX -d postgres -c "DROP DATABASE IF EXISTS '$DB'" >/dev/null 2>&1 || true' EXIT
psql -qX -d $DB -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow"

pgbench -n -d $DB -c 8 -j 2 -T 15 -f test/stress/survey/concurrent_single.sql@3 \
  -f test/stress/survey/concurrent_batch.sql@1 >/tmp/survey_concurrency.$$.log 2>&1 || {
  cat /tmp/survey_concurrency.$$.log; echo "FAIL: pgbench reported failed clients"; exit 1; }
grep -E "number of transactions actually processed" /tmp/survey_concurrency.$$.log
# Deadlocks or serialization failures are counted, not aborted, by pgbench 15.
grep -q "number of failed transactions: 0 " /tmp/survey_concurrency.$$.log || {
  cat /tmp/survey_concurrency.$$.log; echo "FAIL: failed transactions"; exit 1; }
rm -f /tmp/survey_concurrency.$$.log

result=$(psql -qXAt -d $DB -v ON_ERROR_STOP=1 -c "
  SELECT (SELECT count(*) FROM workflow.survey_steps) || ' ' ||
         (SELECT count(DISTINCT (session_id, week_start, step_name)) FROM workflow.survey_steps) || ' ' ||
         (SELECT count(*) FROM workflow.survey_steps t JOIN workflow.survey_sessions s USING (session_id)
           WHERE t.week_start <> workflow.survey_week_start(t.completed_at, s.time_zone)) || ' ' ||
         (SELECT count(*) FROM workflow.survey_sessions)")
read -r rows distinct wrong_week sessions <<<"$result"
echo "rows=$rows distinct_keys=$distinct wrong_week=$wrong_week sessions=$sessions"
[ "$rows" -gt 0 ] || { echo "FAIL: nothing written"; exit 1; }
[ "$rows" -eq "$distinct" ] || { echo "FAIL: duplicate (session, week, step) rows"; exit 1; }
[ "$rows" -le 300 ] || { echo "FAIL: more rows than keys"; exit 1; }
[ "$wrong_week" -eq 0 ] || { echo "FAIL: rows in the wrong week"; exit 1; }
[ "$sessions" -le 20 ] || { echo "FAIL: more sessions than ids"; exit 1; }
echo "survey concurrency: ok"
