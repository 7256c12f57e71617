#!/usr/bin/env bash
# Instructions per completion, counted by valgrind's callgrind: repeatable
# whatever else the machine is doing (a count, not a time). Each design's
# calls run in a single-user backend (`postgres --single`, one autocommit
# transaction per line) under callgrind, twice: with N and 2N calls, and the
# difference / N is the cost of one call without start-up. Designs as in
# backend_cpu.sh. Usage: bench/engine/instructions.sh [N = 1000]
#   KEEP=dir keeps the callgrind files (callgrind_annotate them for where it goes).
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
TASKS=$((N * 3 + 10))
DESIGNS=(${DESIGNS_OVERRIDE:-bare plpgsql native native_nocount native_s16 native_s256 native_s1024})
declare -A SLOTS=([bare]=256 [plpgsql]=256 [native]=64 [native_nocount]=64 [native_s256]=256
                  [native_s16]=16 [native_s64]=64 [native_s1024]=1024)
source scripts/lib/cluster.sh
scripts/build
trap cluster_stop EXIT
cluster_start >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE EXTENSION workflow" -f bench/engine/reference.sql
for d in "${DESIGNS[@]}"; do
  "${PSQL[@]}" -c "SELECT workflow.create_job('bench', '{}', 1, 'bench-$d')" \
    -c "SELECT workflow.add_tasks('bench-$d', 1, 'bench', array_fill('{}'::jsonb, ARRAY[$TASKS]), slot_count => ${SLOTS[$d]})" >/dev/null
done
"${PSQL[@]}" -c "INSERT INTO bench_ref.stage_counter VALUES ('bench-plpgsql', 1, $TASKS)" -c "VACUUM ANALYZE" -c "CHECKPOINT"
_wf_as_owner "$PG_BINDIR/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m fast -w stop >/dev/null

statement() {  # design -> PREPARE c(int) AS ...
  local j="bench-$1"
  case $1 in
    bare) echo "PREPARE c(int) AS UPDATE workflow.tasks SET status = 'completed', result_data = '{\"ok\": true}', completed_at = now(), updated_at = now() WHERE job_id = '$j' AND id = '$j:1:' || \$1 AND stage = 1 AND status IN ('queued', 'claimed')" ;;
    plpgsql) echo "PREPARE c(int) AS SELECT * FROM bench_ref.complete_task('$j:1:' || \$1, '$j', 1, '{\"ok\": true}')" ;;
    native_nocount) echo "PREPARE c(int) AS SELECT * FROM workflow.complete_task_and_check_stage('$j:1:' || \$1, '$j', 1, '{\"ok\": true}', count_remaining => false)" ;;
    *) echo "PREPARE c(int) AS SELECT * FROM workflow.complete_task_and_check_stage('$j:1:' || \$1, '$j', 1, '{\"ok\": true}')" ;;
  esac
}
WORK=$(mktemp -d); chmod 777 "$WORK"
count() {  # design first calls -> instructions of the whole single-user run
  local d=$1 first=$2 calls=$3 out="$WORK/$1.$3.$2.cg"
  { statement "$d"; seq "$first" $((first + calls - 1)) | awk -v n="$TASKS" '{ printf "EXECUTE c(%d)\n", ($1 * 7919) % n }'; } >"$WORK/in.sql"
  _wf_as_owner valgrind --tool=callgrind --callgrind-out-file="$out" \
    "$PG_BINDIR/postgres" --single -D "$WF_CLUSTER_DIR/data" -c synchronous_commit=off postgres \
    <"$WORK/in.sql" >/dev/null 2>"$WORK/vg.log" || { tail "$WORK/vg.log"; return 1; }
  grep -m1 '^summary:' "$out" | awk '{ print $2 }'
}
declare -A PER
next=0
for d in "${DESIGNS[@]}"; do
  a=$(count "$d" "$next" "$N"); next=$((next + N))
  b=$(count "$d" "$next" $((2 * N))); next=$((next + 2 * N))
  next=0  # each design has its own job: task numbers restart
  PER[$d]=$(( (b - a) / N ))
  echo "$d: $a instructions for $N calls, $b for $((2 * N)): $((PER[$d])) per call"
done
echo
echo "| design | slot_count | instructions per call | vs bare |"
echo "|---|---|---|---|"
for d in "${DESIGNS[@]}"; do
  awk -v d="$d" -v s="${SLOTS[$d]}" -v p="${PER[$d]}" -v b="${PER[bare]:-0}" \
    'BEGIN { printf "| %s | %s | %d | %s |\n", d, s, p, (b ? sprintf("%.2fx", p / b) : "-") }'
done
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$WORK"/*.cg "$KEEP"/; fi
rm -rf "$WORK"
# cluster_start's trap stops nothing more: the server is already stopped.
