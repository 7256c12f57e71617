#!/usr/bin/env bash
# Audit and survey writes through SIGKILLs of the server, from psycopg
# clients: bulk and single-row writes on two audited tables (statement-level
# and row-level mode) and survey batches, the server killed (cluster_kill9) at
# random moments, three rounds; after each recovery, what every client was
# told committed is there with exactly its log rows, nothing refused is,
# batches are all or nothing, histories chain and end at the rows, and ids
# after recovery are above those before (test/stress/audit_survey_crash.py).
# Runs on its OWN cluster. WF_CRASH_SEED=N repeats a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers and the trap
cluster_start >/dev/null
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow"
timeout 300 "$PY" test/stress/audit_survey_crash.py --rounds 3 ${WF_CRASH_SEED:+--seed "$WF_CRASH_SEED"} \
  --dsn "host=127.0.0.1 port=$PGPORT user=postgres dbname=postgres" || fail "audit and survey writes through kill -9"
echo "audit survey crash ok"
