#!/usr/bin/env bash
# A single and a batch upsert for an idle session, held (advisory lock) while
# cleanup_survey_sessions runs: each upsert either fails or its reported row
# is there after both commit; and a transaction upserting several sessions out
# of order while it runs: neither fails; and a clean-up in REPEATABLE READ /
# SERIALIZABLE with a snapshot older than an upsert: 40001, the step kept
# (test/stress/survey_cleanup_race.py). Runs on
# its OWN cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers and the trap
cluster_start >/dev/null
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow"
timeout 120 "$PY" test/stress/survey_cleanup_race.py --dsn "host=$PGHOST port=$PGPORT user=postgres dbname=postgres" ||
  fail "the upserts and the clean-up (FAIL lines above say what)"
echo "survey cleanup race ok"
