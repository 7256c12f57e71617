#!/usr/bin/env bash
# The Citus cluster of scripts/lib/citus.sh works: a coordinator and
# $CITUS_WORKERS (default 2) workers start, every worker is active, workflow
# exists in the same version on every node, a hash-distributed table spreads
# its shards over the workers and answers queries, and after a worker is
# killed with SIGKILL and restarted (crash recovery) the table answers again,
# and takes writes. Needs scripts/build first; builds Citus if needed.
#   bash test/citus/smoke.sh
# Prints the build and start times; exits non-zero with a FAIL: line.
# Measured on the 2-core machine (shared with other sessions, load 1.5-4):
# citus_build_ensure cold 41-51 s (the build 39-50 s), cached 0.1 s (2 s
# when it only installs); citus_cluster_start 2 workers 3.6-4.6 s (1 worker
# 2.8 s, 3 workers 4.8 s); a killed worker restarts in 0.3-0.5 s; the whole
# test 9-11 s with the build cached.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/citus.sh
N=${CITUS_WORKERS:-2}
fail() { echo "FAIL: $*"; exit 1; }
trap citus_cluster_stop EXIT
# One value from node I.
q() { local i=$1; shift; citus_psql "$i" -qAt -c "$1"; }
secs() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }'; }  # since $1

t0=$(date +%s.%N)
citus_build_ensure || fail "could not build Citus"
echo "citus_build_ensure: $(secs "$t0") s"
t0=$(date +%s.%N)
citus_cluster_start "$N" || fail "could not start the Citus cluster"
echo "citus_cluster_start ($N workers): $(secs "$t0") s"
echo "coordinator $CITUS_COORD_URL; workers $CITUS_WORKER_URLS"

active=$(q 0 "SELECT count(*) FROM citus_get_active_worker_nodes()")
[ "$active" = "$N" ] || fail "$active active workers, expected $N"

version=$(q 0 "SELECT extversion FROM pg_extension WHERE extname = 'workflow'")
[ -n "$version" ] || fail "no workflow extension on the coordinator"
# Through Citus (its own connections to the workers), then directly.
on_workers=$(q 0 "SELECT string_agg(success || ' ' || result, ',') FROM run_command_on_workers(
  \$\$SELECT extversion FROM pg_extension WHERE extname = 'workflow'\$\$)")
expected=$(for _ in $(seq 1 "$N"); do echo "true $version"; done | paste -sd,)
[ "$on_workers" = "$expected" ] || fail "run_command_on_workers: '$on_workers', expected '$expected'"
for i in $(seq 1 "$N"); do
  v=$(q "$i" "SELECT extversion FROM pg_extension WHERE extname = 'workflow'")
  [ "$v" = "$version" ] || fail "worker $i has workflow '$v', the coordinator '$version'"
done
echo "workflow $version on the coordinator and $N workers"

citus_psql 0 -q >/dev/null <<'SQL' || fail "could not create the distributed table"
CREATE TABLE smoke (id bigint PRIMARY KEY, v text);
SELECT create_distributed_table('smoke', 'id');
INSERT INTO smoke SELECT g, 'v' || g FROM generate_series(1, 1000) g;
SQL
nodes=$(q 0 "SELECT count(DISTINCT nodeport) FROM citus_shards WHERE table_name = 'smoke'::regclass")
[ "$nodes" = "$N" ] || fail "the shards are on $nodes nodes, expected $N"
check() {  # rows sum
  local got
  got=$(q 0 "SELECT count(*) || ' ' || sum(id) FROM smoke") || fail "query after $3"
  [ "$got" = "$1 $2" ] || fail "after $3: count and sum '$got', expected '$1 $2'"
}
check 1000 500500 "the load"

citus_node_kill9 1
# With worker 1 down, a query that needs its shards fails.
if q 0 "SELECT count(*) FROM smoke" >/dev/null 2>&1; then fail "a query succeeded with worker 1 killed"; fi
t0=$(date +%s.%N)
citus_node_start 1 || fail "worker 1 did not restart"
echo "worker 1 killed (kill -9), restarted in $(secs "$t0") s"
check 1000 500500 "the restart of worker 1"
q 0 "INSERT INTO smoke SELECT g, 'w' || g FROM generate_series(1001, 2000) g" >/dev/null \
  || fail "insert after the restart of worker 1"
check 2000 2001000 "the insert after the restart"
active=$(q 0 "SELECT count(*) FROM citus_get_active_worker_nodes()")
[ "$active" = "$N" ] || fail "$active active workers after the restart, expected $N"
echo "citus smoke ok"
