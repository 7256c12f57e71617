#!/usr/bin/env bash
# The task model (examples/tasks) at 10k and at 1M tasks, on a throw-away
# cluster: bulk load time, creation latency (create_task, 10 clients),
# p50/p99 of the filtered and searched list_tasks with 100 concurrent
# clients (pgbench, per-transaction logs), and pg_dump time of the
# 1M-task database. Usage: bench/examples/tasks_bench.sh [seconds per run]
# Prints a Markdown table; the plan's targets: creation < 100 ms, queries
# < 200 ms at 10k, 1M+ tasks, 100+ concurrent users, full backup < 5 min.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
SECS=${1:-20}
source "$ROOT/scripts/lib/cluster.sh"
export PGOPTIONS="-c client_min_messages=warning"
trap 'cluster_stop' EXIT
cluster_start >/dev/null
psql -qX -d postgres -c "CREATE DATABASE tasks_bench"
export PGDATABASE=tasks_bench
q() { psql -qXAt -v ON_ERROR_STOP=1 -c "$1"; }
q "CREATE EXTENSION workflow"
for f in schema functions import roles; do psql -qX -v ON_ERROR_STOP=1 -f "$ROOT/examples/tasks/$f.sql" >/dev/null; done
q "INSERT INTO tasks_app.users (telegram_id, name) SELECT 100000 + i, 'user ' || i FROM generate_series(1, 1000) i"
q "INSERT INTO tasks_app.sites (name) SELECT 'site ' || i FROM generate_series(1, 50) i"
WORK=$(mktemp -d /tmp/tasks-bench.XXXXXX)
chmod 777 "$WORK"

# Adds tasks up to TOTAL in one audited INSERT ... SELECT per 100k; prints seconds.
load_to() {
  local have t0
  have=$(q "SELECT count(*) FROM tasks_app.tasks")
  t0=$(date +%s.%N)
  while [ "$have" -lt "$1" ]; do
    local n=$(( $1 - have < 100000 ? $1 - have : 100000 ))
    q "SELECT set_config('workflow.actor', '1', false);
       INSERT INTO tasks_app.tasks (assigner_id, assignee_id, site_id, title, description, due_date, status, priority,
                                    completed_at)
       SELECT 1 + i % 1000, 1 + (i * 7) % 1000, 1 + i % 50,
              'task ' || i || ' ' || (ARRAY['boiler','gate','filter','roof','pump','valve','fence','light','door','drain',
                   'paint','lock','heater','window','floor','stairs','alarm','cable','pipe','tank'])[1 + i % 20]
              || ' ' || (ARRAY['boiler','gate','filter','roof','pump','valve','fence','light','door','drain',
                   'paint','lock','heater','window','floor','stairs','alarm','cable','pipe','tank'])[1 + (i / 20) % 20],
              CASE WHEN i % 3 = 0 THEN 'imported from the sheet, row ' || i END,
              date '2025-01-01' + i % 365,
              (ARRAY['open','in_progress','done'])[1 + i % 3], 1 + i % 5,
              CASE WHEN i % 3 = 2 THEN now() END
       FROM generate_series($have + 1, $have + $n) i" >/dev/null
    have=$((have + n))
  done
  q "VACUUM ANALYZE tasks_app.tasks" >/dev/null
  awk -v a="$(date +%s.%N)" -v b="$t0" "BEGIN { print a - b }"
}

# pgbench SCRIPT CLIENTS -> "tps p50_ms p99_ms" from the per-transaction logs.
run() {
  local name=$1 clients=$2 dir="$WORK/$1-$2"
  mkdir -p "$dir"; chmod 777 "$dir"
  (cd "$dir" && pgbench -n -f "$HERE/$name.sql" -c "$clients" -j 2 -T "$SECS" -l --log-prefix=tx \
     >"$dir/out.txt" 2>&1) || { cat "$dir/out.txt" >&2; return 1; }
  local tps
  tps=$(grep -oE 'tps = [0-9.]+' "$dir/out.txt" | head -1 | grep -oE '[0-9.]+')
  cat "$dir"/tx.* | awk '{print $3}' | sort -n | awk -v tps="$tps" '
    { v[NR] = $1 } END { printf "%.0f %.1f %.1f\n", tps, v[int(NR * 0.5)] / 1000, v[int(NR * 0.99)] / 1000 }'
}

echo "| tasks | bulk load (s) | create_task p50 / p99 (ms), 10 clients | filtered p50 / p99 (ms), 100 clients | searched p50 / p99 (ms), 100 clients |"
echo "|---:|---:|---|---|---|"
for total in 10000 1000000; do
  load=$(load_to "$total")
  # the queries first, so that they see the TOTAL tasks just loaded (the
  # create run adds tens of thousands)
  queried=$(q "SELECT count(*) FROM tasks_app.tasks")
  read -r ftps f50 f99 < <(run tasks_filter 100)
  read -r stps s50 s99 < <(run tasks_search 100)
  read -r ctps c50 c99 < <(run tasks_create 10)
  printf '| %s | %.1f | %s / %s (%s tps) | %s / %s (%s tps) | %s / %s (%s tps) |\n' \
    "$queried" "$load" "$c50" "$c99" "$ctps" "$f50" "$f99" "$ftps" "$s50" "$s99" "$stps"
done
t0=$(date +%s.%N)
pg_dump -Fc -f "$WORK/tasks.dump" tasks_bench
dump=$(awk -v a="$(date +%s.%N)" -v b="$t0" "BEGIN { print a - b }")
echo
echo "pg_dump -Fc of the database ($(q "SELECT pg_size_pretty(pg_database_size('tasks_bench'))"), $(q "SELECT count(*) FROM tasks_app.tasks") tasks, $(q "SELECT count(*) FROM workflow.audit_log") audit rows): $(printf '%.1f' "$dump") s, dump file $(du -h "$WORK/tasks.dump" | cut -f1)"
rm -rf "$WORK"
