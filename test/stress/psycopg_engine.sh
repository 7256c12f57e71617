#!/usr/bin/env bash
# The engine from a second language through its SQL API alone: psycopg 3
# (Debian python3-psycopg) runs 12 worker threads over 50 jobs of 3 stages
# (test/stress/psycopg_engine.py says what it does and checks), twice, each
# on a fresh database of its OWN cluster: workers connected directly, then
# through PgBouncer 1.18 in transaction mode (LISTEN stays direct).
# Needs the API of issue 9 (fencing by worker, claim_stage_handovers): fails
# with a clear message without it.
#   test/stress/psycopg_engine.sh            # the test (scripts/test runs it)
#   test/stress/psycopg_engine.sh --legacy   # today's API only, direct: the
#        issue-9 failures on old main (expected to FAIL there); extra
#        arguments go to psycopg_engine.py (e.g. --seed N)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg_pgbouncer.sh   # $PY, fail, build, cluster and PgBouncer helpers
cluster_start

fresh_db() {  # name -> a database with the extension and no jobs
  psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $1" >/dev/null
  psql -qX -d "$1" -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow" >/dev/null
}
direct_url() { echo "postgresql://postgres@127.0.0.1:$PGPORT/$1"; }
run() { timeout 600 "$PY" test/stress/psycopg_engine.py "$@"; }

if [ "${1:-}" = --legacy ]; then
  shift
  fresh_db psy_legacy
  run --legacy --label legacy --dsn "$(direct_url psy_legacy)" "$@"
  exit
fi

fresh_db psy_direct
run --check-api --label api --dsn "$(direct_url psy_direct)" \
  || fail "the contract API of issue 9 is missing: this test runs after the engine-state and fencing branches are merged"
run --label direct --dsn "$(direct_url psy_direct)" "$@" || fail "workers connected directly"

fresh_db psy_pooled
pgbouncer_start transaction
run --label pgbouncer --pooler --dsn "$(pgbouncer_url psy_pooled)" --direct-dsn "$(direct_url psy_pooled)" "$@" \
  || fail "workers through PgBouncer (transaction mode)"
echo "psycopg engine ok"
