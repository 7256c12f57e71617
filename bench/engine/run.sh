#!/usr/bin/env bash
# Fan-in benchmark, one run, side by side: completes distinct tasks of a
# 300k-task stage with pgbench at 8, 32 and 64 clients using
#   native          workflow.complete_task_and_check_stage (slot counters, C++)
#   native_nocount  the same with count_remaining => false
#   plpgsql         bench_ref.complete_task (one `remaining` row per stage)
#   bare            the task UPDATE alone (the floor)
# Call k of the run completes task (k * 7919) mod 300000: distinct tasks in a
# scattered order (slots collide as with real workers), the same for all.
# on a fresh throw-away cluster (fsync on). The whole matrix runs ROUNDS
# times, interleaved, and each cell reports the median (the machine is
# shared: single cells vary by 2x). Usage: bench/engine/run.sh [seconds per cell] [rounds]
# CLIENTS="64" runs only those client counts (more rounds or longer cells of
# the target's cell before the 300k-task stages run out).
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_CELL=${1:-6}
ROUNDS=${2:-3}
read -r -a CLIENTS <<<"${CLIENTS:-8 32 64}"
source bench/engine/setup.sh
"${PSQL[@]}" -c "CHECKPOINT"

echo "machine: $(nproc) cores, $(free -g | awk '/Mem/ {print $2}') GB RAM; $(psql -XAtc 'SELECT version()' | cut -d, -f1)"
echo "settings: fsync=$(psql -XAtc 'SHOW fsync'), synchronous_commit=$(psql -XAtc 'SHOW synchronous_commit'), shared_buffers=$(psql -XAtc 'SHOW shared_buffers')"
echo "stage: $TASKS tasks per design, ${SECONDS_PER_CELL}s per cell, $ROUNDS rounds, pgbench -M prepared -j 2"
declare -A TPS RUNS
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
for round in $(seq 1 "$ROUNDS"); do
for c in "${CLIENTS[@]}"; do
  for d in "${DESIGNS[@]}"; do
    # Continue after the highest call number k used so far (k = index * 7919^-1
    # mod 300000): every call completes a new task.
    base=$(psql -XAtc "SELECT coalesce(max((task_index::bigint * 217679) % $TASKS) + 1, 0) FROM workflow.tasks WHERE job_id = 'bench-$d' AND status = 'completed'")
    done_before=$(psql -XAtc "SELECT count(*) FROM workflow.tasks WHERE job_id = 'bench-$d' AND status = 'completed'")
    psql -Xqc "CHECKPOINT"
    out=$("$WF_PG_BINDIR/pgbench" -n -M prepared -c "$c" -j 2 -T "$SECONDS_PER_CELL" \
      -D n=-1 -D base="$base" -D clients="$c" -f "bench/engine/$d.pgbench" 2>&1) \
      || { echo "$out"; exit 1; }
    tps=$(echo "$out" | grep -oE 'tps = [0-9.]+ \(without' | grep -oE '[0-9.]+' | head -1)
    failed=$(echo "$out" | grep -oE 'number of failed transactions: [0-9]+' | grep -oE '[0-9]+$' || echo 0)
    calls=$(echo "$out" | grep -oE 'number of transactions actually processed: [0-9]+' | grep -oE '[0-9]+$')
    done_now=$(psql -XAtc "SELECT count(*) FROM workflow.tasks WHERE job_id = 'bench-$d' AND status = 'completed'")
    RUNS[$d,$c]="${RUNS[$d,$c]:-} $tps"
    printf '  %-15s %3d clients: %8.0f tps (%s calls, %s tasks completed so far, failed %s)\n' \
      "$d" "$c" "$tps" "$calls" "$done_now" "$failed"
    # Every call must have completed a new task: a call that found its task
    # already done (stage exhausted, repeated index) would be a cheap no-op
    # and inflate the figure, so such a run is refused, not reported.
    if [ $((done_now - done_before)) -ne "$calls" ]; then
      echo "INVALID: $calls calls completed $((done_now - done_before)) new tasks" \
           "(stage of $TASKS exhausted? use shorter cells or fewer rounds)" >&2
      exit 1
    fi
  done
done
done
for c in "${CLIENTS[@]}"; do
  for d in "${DESIGNS[@]}"; do
    TPS[$d,$c]=$(echo "${RUNS[$d,$c]}" | median)
    echo "  $d $c clients, all rounds:${RUNS[$d,$c]} -> median ${TPS[$d,$c]}"
  done
done

# Every call above completed a distinct queued task: check nothing was lost.
echo "completed tasks: $(psql -XAtc "SELECT string_agg(job_id || '=' || n, ' ') FROM (SELECT job_id, count(*) n FROM workflow.tasks WHERE status = 'completed' GROUP BY job_id ORDER BY job_id) x")"
for j in native native_nocount; do
  echo "invariants ok for bench-$j: $(psql -XAtc "SELECT bool_and(ok) FROM workflow.check_invariants('bench-$j')")"
done
echo
echo "medians:"
echo "| clients | native tps | native, count_remaining => false | PL/pgSQL counter tps | bare UPDATE tps | native / bare | native (no count) / bare | native / PL/pgSQL |"
echo "|---|---|---|---|---|---|---|---|"
for c in "${CLIENTS[@]}"; do
  awk -v c="$c" -v n="${TPS[native,$c]}" -v f="${TPS[native_nocount,$c]}" -v p="${TPS[plpgsql,$c]}" -v b="${TPS[bare,$c]}" \
    'BEGIN { printf "| %d | %.0f | %.0f | %.0f | %.0f | %.2fx | %.2fx | %.2fx |\n", c, n, f, p, b, n / b, f / b, n / p }'
done
