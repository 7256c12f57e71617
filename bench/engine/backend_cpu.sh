#!/usr/bin/env bash
# Backend CPU per completion: the server process's own user+system time
# (/proc/<pid>/stat) over N autocommit calls in one session, so waiting for
# the CPU, the WAL flush or a lock is not counted, and other load on the
# machine disturbs the figure far less than a latency or tps figure.
# synchronous_commit = off. Designs as in run.sh, plus native on stages of
# other slot counts (the exact remaining_tasks sum is O(slot_count)).
# Usage: bench/engine/backend_cpu.sh [calls per cell = 5000] [rounds = 3]
set -euo pipefail
cd "$(dirname "$0")/../.."
CALLS=${1:-5000}
ROUNDS=${2:-3}
TASKS=$((CALLS * ROUNDS))
source scripts/lib/cluster.sh
scripts/build
trap cluster_stop EXIT
cluster_start synchronous_commit=off >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE EXTENSION workflow" -f bench/engine/reference.sql
# design -> slot_count of its stage
declare -A SLOTS=([bare]=256 [plpgsql]=256 [native]=64 [native_nocount]=64 [native_s256]=256
                  [native_s16]=16 [native_s64]=64 [native_s1024]=1024 [plain]=256 [plainsd]=256)
DESIGNS=(${DESIGNS_OVERRIDE:-bare plpgsql native native_nocount native_s16 native_s256 native_s1024})
for d in "${DESIGNS[@]}"; do
  "${PSQL[@]}" -c "SELECT workflow.create_job('bench', '{}', 1, 'bench-$d')" \
    -c "SELECT workflow.add_tasks('bench-$d', 1, 'bench', array_fill('{}'::jsonb, ARRAY[$TASKS]), slot_count => ${SLOTS[$d]})" >/dev/null
done
for v in "plain:" "plainsd:SECURITY DEFINER"; do
  "${PSQL[@]}" -c "CREATE FUNCTION bench_ref.complete_${v%%:*}(text, text, int, jsonb, boolean DEFAULT true, text DEFAULT NULL)
    RETURNS TABLE(stage_complete boolean, remaining_tasks int, job_id text) LANGUAGE c VOLATILE ${v#*:} ROWS 1
    AS '\$libdir/workflow', 'workflow_complete_task_and_check_stage'"
done
"${PSQL[@]}" -c "INSERT INTO bench_ref.stage_counter VALUES ('bench-plpgsql', 1, $TASKS)" -c "VACUUM ANALYZE"

statement() {  # design -> PREPARE c(int) AS ...
  local j="bench-$1"
  case $1 in
    bare) echo "PREPARE c(int) AS UPDATE workflow.tasks SET status = 'completed', result_data = '{\"ok\": true}', completed_at = now(), updated_at = now() WHERE job_id = '$j' AND id = '$j:1:' || \$1 AND stage = 1 AND status IN ('queued', 'claimed');" ;;
    plpgsql) echo "PREPARE c(int) AS SELECT * FROM bench_ref.complete_task('$j:1:' || \$1, '$j', 1, '{\"ok\": true}');" ;;
    plain|plainsd) echo "PREPARE c(int) AS SELECT * FROM bench_ref.complete_$1('$j:1:' || \$1, '$j', 1, '{\"ok\": true}', false);" ;;
    native_nocount) echo "PREPARE c(int) AS SELECT * FROM workflow.complete_task_and_check_stage('$j:1:' || \$1, '$j', 1, '{\"ok\": true}', count_remaining => false);" ;;
    *) echo "PREPARE c(int) AS SELECT * FROM workflow.complete_task_and_check_stage('$j:1:' || \$1, '$j', 1, '{\"ok\": true}');" ;;
  esac
}
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

declare -A RUNS
for round in $(seq 1 "$ROUNDS"); do
  for d in "${DESIGNS[@]}"; do
    script=$(mktemp)
    {
      statement "$d"
      echo "SELECT pg_backend_pid() AS pid \\gset"
      echo "\\setenv WF_PID :pid"
      echo "\\! awk '{ print \$14 + \$15 }' /proc/\$WF_PID/stat > $script.before"
      # distinct tasks of this round, scattered: (k * 7919) mod TASKS
      seq $(((round - 1) * CALLS)) $((round * CALLS - 1)) | awk -v n="$TASKS" '{ printf "EXECUTE c(%d);\n", ($1 * 7919) % n }'
      echo "\\! awk '{ print \$14 + \$15 }' /proc/\$WF_PID/stat > $script.after"
    } >"$script"
    "${PSQL[@]}" -o /dev/null -f "$script"
    hz=$(getconf CLK_TCK)
    us=$(awk -v a="$(cat "$script.before")" -v b="$(cat "$script.after")" -v hz="$hz" -v n="$CALLS" \
      'BEGIN { printf "%.1f", (b - a) * 1e6 / hz / n }')
    rm -f "$script" "$script.before" "$script.after"
    RUNS[$d]="${RUNS[$d]:-} $us"
    echo "round $round $d: $us us backend CPU per call (load $(cut -d' ' -f1 /proc/loadavg))"
  done
done
echo "completed: $(psql -XAtc "SELECT string_agg(job_id || '=' || n, ' ') FROM (SELECT job_id, count(*) n FROM workflow.tasks WHERE status = 'completed' GROUP BY 1 ORDER BY 1) x")"
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
bare=$(echo "${RUNS[bare]}" | median)
echo
echo "| design | slot_count | backend CPU per call, us (rounds) | median | vs bare |"
echo "|---|---|---|---|---|"
for d in "${DESIGNS[@]}"; do
  m=$(echo "${RUNS[$d]}" | median)
  awk -v d="$d" -v s="${SLOTS[$d]}" -v r="${RUNS[$d]}" -v m="$m" -v b="$bare" \
    'BEGIN { printf "| %s | %s | %s | %.1f | %.2fx |\n", d, s, r, m, m / b }'
done
