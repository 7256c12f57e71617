#!/usr/bin/env bash
# The C++/PostgreSQL boundary's own regression test. On its own throw-away
# cluster, runs the pg_regress tests of test/boundary against the test-only
# module wf_boundary_probe (built and installed into the private prefix by
# scripts/build, never shipped): SQLSTATE/message/DETAIL/HINT passthrough, C++
# exceptions thrown inside pg_call (std::bad_alloc, non-std types, a pushed
# context callback), nested pg_call, errors caught by PL/pgSQL EXCEPTION
# blocks, column() out of range. Then: no backend crashed and the postmaster
# never restarted.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
fail() { echo "FAIL: $*"; exit 1; }
[ -f "$WF_PG_PREFIX$(pg_config --pkglibdir)/wf_boundary_probe.so" ] \
  || fail "wf_boundary_probe is not installed in $WF_PG_PREFIX (run scripts/build)"
OUT=$(mktemp -d /tmp/boundary-probes.XXXXXX)
trap 'cluster_stop; rm -rf "$OUT"' EXIT
cluster_start
START=$(psql -XAtc "SELECT pg_postmaster_start_time()")

rc=0
"$WF_PG_PREFIX$(pg_config --pkglibdir)/pgxs/src/test/regress/pg_regress" \
  --inputdir=test/boundary --outputdir="$OUT" --bindir="$PG_BINDIR" \
  --dbname=boundary_regress --load-extension=wf_boundary_probe \
  --schedule=test/boundary/schedule || rc=$?
[ -f "$OUT/regression.diffs" ] && head -300 "$OUT/regression.diffs"
if grep -E 'terminated by signal|server process .* was terminated|all server processes terminated' \
     "$WF_CLUSTER_DIR/server.log"; then
  fail "a backend crashed (server log above)"
fi
AFTER=$(psql -XAtc "SELECT pg_postmaster_start_time()")
[ "$START" = "$AFTER" ] || fail "the postmaster restarted ($START -> $AFTER)"
[ "$rc" -eq 0 ] || fail "pg_regress failed"
echo "boundary probes ok"
