#!/usr/bin/env bash
# What a claim costs as the queue grows: claim_tasks(max 1) by 8 pgbench
# clients with 1k, 100k and 1M tasks queued (one job per size, a tenth of the
# tasks at a higher priority where 1.4 has priorities; the claim walks an
# index, so its cost should not grow with the queue). Each claimed task is
# given back at once (fail_task, retryable, no backoff: queued again), so the
# queue keeps its size. Per size: ROUNDS runs of SECONDS, interleaved across
# sizes; pgbench's per-statement latency of the claim and transactions per
# second. Figures: bench/RESULTS.md.
#   bench/engine/claim_scale.sh [seconds=10] [rounds=3]
set -euo pipefail
cd "$(dirname "$0")/../.."
SECONDS_PER_RUN=${1:-10}
ROUNDS=${2:-3}
SIZES=(1000 100000 1000000)
source scripts/lib/cluster.sh
scripts/build >/dev/null
trap cluster_stop EXIT
cluster_start
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE EXTENSION workflow"
has_priority=$("${PSQL[@]}" -At -c "SELECT count(*) FROM pg_attribute WHERE attrelid = 'workflow.tasks'::regclass AND attname = 'priority'")
for n in "${SIZES[@]}"; do
  "${PSQL[@]}" -c "SELECT workflow.create_job('claim-scale', '{}', 1, 'q$n')" >/dev/null
  for ((start = 0; start < n; start += 500000)); do
    chunk=$(( n - start < 500000 ? n - start : 500000 ))
    "${PSQL[@]}" -c "SELECT workflow.add_tasks('q$n', 1, 'scale-$n', array_fill('{}'::jsonb, ARRAY[$chunk]),
                       seal => $([ $((start + chunk)) -ge "$n" ] && echo true || echo false), first_index => $start,
                       max_retries => 1000)" >/dev/null
  done
  # Mixed priorities (1.4): a tenth of the tasks above the default.
  [ "$has_priority" = 1 ] && "${PSQL[@]}" -c "UPDATE workflow.tasks SET priority = 5 WHERE job_id = 'q$n' AND task_index % 10 = 0" >/dev/null
done
"${PSQL[@]}" -c "VACUUM ANALYZE"
TMP=$(mktemp -d)
for n in "${SIZES[@]}"; do
  cat >"$TMP/claim-$n.sql" <<SQL
SELECT id AS task_id FROM workflow.claim_tasks('w' || :client_id, 1, ARRAY['scale-$n'], '5 minutes') \gset
SELECT will_retry FROM workflow.fail_task(':task_id', 'q$n', 'given back', true, '0 s', '0 s', 'w' || :client_id);
SQL
done
echo "claim + give back, 8 clients, ${SECONDS_PER_RUN} s a run; machine: $(nproc) cores, $(psql -XAtc 'SHOW server_version'), load before: $(cut -d' ' -f1-3 /proc/loadavg)"
declare -A CLAIM TPS
for r in $(seq 1 "$ROUNDS"); do
  for n in "${SIZES[@]}"; do
    out=$(pgbench -n -r -c 8 -j 2 -T "$SECONDS_PER_RUN" -f "$TMP/claim-$n.sql" 2>&1)
    tps=$(grep -oE '^tps = [0-9.]+' <<<"$out" | cut -d' ' -f3)
    claim=$(grep 'claim_tasks' <<<"$out" | awk '{print $1}')
    back_ms=$(grep 'fail_task' <<<"$out" | awk '{print $1}')
    left=$(psql -XAtc "SELECT count(*) FROM workflow.tasks WHERE job_id = 'q$n' AND status = 'queued'")
    printf 'round %d  queue %8d  %7.0f tx/s  claim %6s ms  give back %6s ms  (%d queued)\n' \
      "$r" "$n" "$tps" "$claim" "$back_ms" "$left"
    CLAIM[$n]+="$claim "; TPS[$n]+="$tps "
  done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
echo "median of $ROUNDS rounds:"
for n in "${SIZES[@]}"; do
  printf '  queue %8d  %7.0f tx/s  claim %s ms\n' "$n" "$(median <<<"${TPS[$n]}")" "$(median <<<"${CLAIM[$n]}")"
done
