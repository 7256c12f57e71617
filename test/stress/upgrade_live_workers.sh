#!/usr/bin/env bash
# ALTER EXTENSION workflow UPDATE while psycopg workers claim, complete and
# advance in a loop (test/stress/upgrade_live_workers.py says what it checks):
# from 1.6 (whose update to 1.7 alters workflow.jobs) and from the previous
# release, each on a fresh database of its own cluster. Exits 1 when a promise
# is broken (FAIL lines say which).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers
cluster_start >/dev/null || fail "cluster_start"
rc=0
previous=$(sed -n 's/^PREVIOUS *= *//p' Makefile)   # the last release
for from in 1.6 "$previous"; do
  db=wf_live_$(tr . _ <<<"$from")
  psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $db" >/dev/null || fail "createdb"
  psql -qX -d $db -v ON_ERROR_STOP=1 >/dev/null <<SQL || fail "setup $from"
CREATE EXTENSION workflow VERSION '$from';
SELECT workflow.enable_audit('workflow.tasks');
SELECT workflow.create_job('lw', '{}', 1, 'lw-' || j),
       workflow.add_tasks('lw-' || j, 1, 'lw', array_fill('{}'::jsonb, ARRAY[25]))
  FROM generate_series(1, 40) j;
SQL
  echo "--- from $from"
  timeout 300 "$PY" test/stress/upgrade_live_workers.py --dsn "host=127.0.0.1 port=$PGPORT dbname=$db" || rc=1
done
exit $rc
