#!/usr/bin/env bash
# Single node vs a 3-node Citus cluster (a coordinator and two workers, all on
# this machine), side by side in one run, ROUNDS interleaved rounds:
#   complete  complete_task_and_check_stage through the endpoint (the single
#             node; the Citus coordinator, which delegates the call to the
#             worker holding the job), 16 clients on 16 jobs, distinct tasks
#   claim     claim_tasks(worker, 1) through the endpoint, 8 clients: on Citus
#             a multi-shard read of the oldest runnable tasks' jobs, then the
#             claim in one job on its node
# For the Citus complete cells it also reads each node's CPU time (the
# postmaster's own and its reaped children's, /proc/PID/stat), so the CPU a
# completion costs on each node can be turned into a paper estimate of
# throughput per added worker node (bench/RESULTS.md).
#   bench/citus/run.sh [seconds per cell=5] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-5}
ROUNDS=${2:-3}
JOBS=16
TASKS=10000   # per job: enough for every cell of the run
scripts/build
source scripts/lib/citus.sh
citus_build_ensure
trap 'citus_cluster_stop; cluster_stop' EXIT
cluster_start
SINGLE=$DATABASE_URL
citus_cluster_start 2 ${CITUS_OPTS:-}   # e.g. CITUS_OPTS=citus.node_conninfo=sslmode=disable
psql -qXAt -d "$CITUS_COORD_URL" -c "SELECT count(*) FROM workflow.distribute(shard_count => 8)" >/dev/null
psql -qX -d "$SINGLE" -c "CREATE EXTENSION workflow"
TMP=$(mktemp -d /tmp/wf_citus_bench.XXXXXX)
cat >"$TMP/complete.pgbench" <<EOF
\set n :n + 1
\set j :client_id % $JOBS
\set i :base + :n
SELECT stage_complete FROM workflow.complete_task_and_check_stage('bench-' || :j || ':1:' || :i, 'bench-' || :j, 1, '{}');
EOF
cat >"$TMP/claim.pgbench" <<'EOF'
SELECT count(*) FROM workflow.claim_tasks('bench-claimer-' || :client_id, 1, ARRAY['claim'], '1 hour');
EOF
for url in "$SINGLE" "$CITUS_COORD_URL"; do
  for j in $(seq 0 $((JOBS - 1))); do
    psql -qXAt -d "$url" -v ON_ERROR_STOP=1 \
      -c "SELECT workflow.create_job('bench', '{}', 1, 'bench-$j')" \
      -c "SELECT workflow.add_tasks('bench-$j', 1, 'complete', array_fill('{}'::jsonb, ARRAY[$TASKS]))" \
      -c "SELECT workflow.create_job('bench', '{}', 1, 'claim-$j')" \
      -c "SELECT workflow.add_tasks('claim-$j', 1, 'claim', array_fill('{}'::jsonb, ARRAY[$TASKS]))" >/dev/null
  done
  psql -qX -d "$url" -c "VACUUM ANALYZE"
done
psql -qXAt -d "$CITUS_COORD_URL" -c "SELECT run_command_on_workers('VACUUM ANALYZE')" >/dev/null

cpu_of() {  # node index -> CPU seconds of its postmaster and reaped children
  local dir pid; dir=$(echo "$CITUS_DIRS" | cut -d' ' -f$(($1 + 1)))
  pid=$(head -1 "$dir/data/postmaster.pid")
  awk -v hz="$(getconf CLK_TCK)" '{ print ($14 + $15 + $16 + $17) / hz }' "/proc/$pid/stat"
}
declare -A RUNS
echo "machine: $(nproc) cores; $(psql -XAtc 'SELECT version()' | cut -d, -f1); Citus $(psql -qXAt -d "$CITUS_COORD_URL" -c "SELECT extversion FROM pg_extension WHERE extname = 'citus'")"
echo "$JOBS jobs x $TASKS tasks per endpoint, ${SECS}s cells, $ROUNDS rounds, pgbench -M extended"
for round in $(seq 1 "$ROUNDS"); do
  for side in single citus; do
    url=$SINGLE; [ $side = citus ] && url=$CITUS_COORD_URL
    # complete
    [ $side = citus ] && for i in 0 1 2; do c0[$i]=$(cpu_of $i); done
    # Each client completes tasks base, base + 1, ... of its own job: new ones every cell.
    base=$(psql -qXAt -d "$url" -c "SELECT coalesce(max(task_index), -1) + 1 FROM workflow.tasks
                                     WHERE job_id LIKE 'bench-%' AND status = 'completed'")
    out=$("$WF_PG_BINDIR/pgbench" -n -M extended -c 16 -j 2 -T "$SECS" -D n=-1 -D base="$base" \
          -f "$TMP/complete.pgbench" "$url" 2>&1) || { echo "$out"; exit 1; }
    tps=$(grep -oE 'tps = [0-9.]+ \(without' <<<"$out" | grep -oE '[0-9.]+' | head -1)
    calls=$(grep -oE 'actually processed: [0-9]+' <<<"$out" | grep -oE '[0-9]+$')
    line="round $round  $side  complete $(printf '%8.0f' "$tps") tps ($calls calls)"
    if [ $side = citus ]; then
      sleep 1   # the backends exit and are reaped: their CPU is in the postmaster's counters
      for i in 0 1 2; do
        line+=$(awk -v a="${c0[$i]}" -v b="$(cpu_of $i)" -v n="$calls" -v node="$i" \
          'BEGIN { printf "  node%d %.0f us/call", node, (b - a) * 1e6 / n }')
      done
    fi
    echo "$line"
    RUNS[$side,complete]="${RUNS[$side,complete]:-} $tps"
    # claim
    out=$("$WF_PG_BINDIR/pgbench" -n -M extended -c 8 -j 2 -T "$SECS" -f "$TMP/claim.pgbench" "$url" 2>&1) ||
      { echo "$out"; exit 1; }
    lat=$(grep -oE 'latency average = [0-9.]+' <<<"$out" | grep -oE '[0-9.]+$')
    tps=$(grep -oE 'tps = [0-9.]+ \(without' <<<"$out" | grep -oE '[0-9.]+' | head -1)
    echo "round $round  $side  claim    $(printf '%8.0f' "$tps") claims/s, latency $lat ms"
    RUNS[$side,claim]="${RUNS[$side,claim]:-} $tps"
  done
done
# The bookkeeping holds on both (a call that found its task done would be a
# cheap repeat: the counts below show none).
for url in "$SINGLE" "$CITUS_COORD_URL"; do
  bad=$(psql -qXAt -d "$url" -c "SELECT count(*) FROM workflow.check_invariants() WHERE NOT ok")
  [ "$bad" = 0 ] || { echo "check_invariants failed on $url"; exit 1; }
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo
for what in complete claim; do
  s=$(echo "${RUNS[single,$what]}" | median); c=$(echo "${RUNS[citus,$what]}" | median)
  awk -v w="$what" -v s="$s" -v c="$c" 'BEGIN { printf "median %-8s single %8.0f/s  citus %8.0f/s  citus/single %.2fx\n", w, s, c, c / s }'
done
