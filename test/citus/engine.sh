#!/usr/bin/env bash
# The engine on a 3-node Citus cluster on loopback (a coordinator and two
# workers, scripts/lib/citus.sh; Citus 13.2.2 built from ../shared/vendor/citus),
# everything through the coordinator:
#  1. workflow.distribute(): the four engine tables distributed by job id and
#     colocated, the per-job functions registered for delegation.
#  2. Race (test/stress/psycopg_engine.py, psycopg 3): 16 connections, 70
#     jobs of 3 stages (210 stages), 5% repeated completions, random order of
#     fan-out and advance, hand-overs, fencing: one stage_complete per stage,
#     one accepted completion per task, one NOTIFY per stage and per job
#     (LISTEN on every node: a delegated call notifies on its node),
#     check_invariants clean.
#  3. Delegation shown: with citus.log_remote_commands, add_tasks,
#     complete_task_and_check_stage and advance_job_stage are sent whole to
#     the worker node that holds the job's shard (pg_dist_shard_placement).
#  4. Advance storm (test/stress/advance_storm.py): 16 connections on every
#     transition of 20 jobs x 5 stages: one winner per transition.
#  5. The demo's 3-stage job (the C++ CLI's submit and worker, unchanged)
#     run through the coordinator to completion.
#  6. A worker node killed with kill -9 during a completion storm and
#     restarted: no task lost or completed twice, one completer per stage,
#     check_invariants clean on every job.
# Needs scripts/build first (scripts/test runs it). Standalone:
#   scripts/build && test/citus/engine.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3   # Debian's, with psycopg 3
fail() { echo "FAIL: $*"; exit 1; }
source scripts/lib/citus.sh
citus_build_ensure || fail "could not build Citus"
trap citus_cluster_stop EXIT
citus_cluster_start 2 || fail "could not start the Citus cluster"
COORD=$CITUS_COORD_URL
q() { psql -qXAt -v ON_ERROR_STOP=1 -d "$COORD" -c "$1"; }

# 1. distribute()
q "SELECT object || ': ' || distributed_as FROM workflow.distribute(shard_count => 8)"
got=$(q "SELECT count(DISTINCT colocationid) || ' ' || count(*) FROM pg_dist_partition
          WHERE logicalrelid IN ('workflow.jobs'::regclass, 'workflow.stages'::regclass,
                                 'workflow.stage_slots'::regclass, 'workflow.tasks'::regclass)")
[ "$got" = "1 4" ] || fail "distribute(): want 4 tables in 1 colocation group, got $got"
again=$(q "SELECT count(*) FILTER (WHERE distributed_as = 'distributed already') FROM workflow.distribute()")
[ "$again" = 4 ] || fail "distribute() a second time: $again tables seen as distributed already"
echo "distributed: 4 tables colocated, $(q "SELECT count(*) FROM pg_dist_object o JOIN pg_proc p ON p.oid = o.objid
   WHERE o.classid = 'pg_proc'::regclass AND o.distribution_argument_index IS NOT NULL
     AND p.pronamespace = 'workflow'::regnamespace") functions delegated"

# 2. The race (first: it wants a database without jobs), through the SQL API from psycopg.
listen=()
for url in $COORD $CITUS_WORKER_URLS; do listen+=(--listen-dsn "$url"); done
timeout 900 "$PY" test/stress/psycopg_engine.py --label citus --dsn "$COORD" "${listen[@]}" \
  --workers 16 --jobs 70 --stages 3 --timeout 600 || fail "race on the cluster"

# 3. Each per-job call goes whole to the node that holds the job.
node_of() {  # job -> port of the worker holding its shard
  q "SELECT nodeport FROM pg_dist_shard_placement
      WHERE shardid = get_shard_id_for_distribution_column('workflow.jobs', '$1')"
}
for job in deleg-a deleg-b deleg-c deleg-d; do
  q "SELECT workflow.create_job('deleg', '{}', 1, '$job')" >/dev/null
  log=$(psql -qXAt -v ON_ERROR_STOP=1 -d "$COORD" 2>&1 <<SQL
SET citus.log_remote_commands = on;
SET client_min_messages = debug1;
SELECT workflow.add_tasks('$job', 1, 't', ARRAY['{}'::jsonb]);
SELECT stage_complete FROM workflow.complete_task_and_check_stage('$job:1:0', '$job', 1, '{}');
SELECT workflow.advance_job_stage('$job', 1, 2, NULL);
SQL
)
  port=$(node_of "$job")
  for fn in add_tasks complete_task_and_check_stage advance_job_stage; do
    # The remote command is the call itself, on the job's worker.
    grep -A1 "issuing SELECT .*workflow\.$fn(" <<<"$log" | grep -q "127.0.0.1:$port " ||
      { echo "$log"; fail "$fn of $job was not sent to its node ($port)"; }
  done
  [ "$(grep -c 'pushing down the function call' <<<"$log")" -ge 3 ] || { echo "$log"; fail "no pushdown for $job"; }
  [ "$(q "SELECT status FROM workflow.jobs WHERE id = '$job'")" = completed ] || fail "$job did not complete"
  echo "$job: add_tasks, complete_task_and_check_stage, advance_job_stage ran on the worker at port $port"
done

# 4. Advance storm.
timeout 600 "$PY" test/stress/advance_storm.py --dsn "$COORD" --jobs 20 --stages 5 --threads 16 ||
  fail "advance storm on the cluster"

# 5. The demo's job (smaller), by the C++ CLI through the coordinator.
export DATABASE_URL=$COORD WORKFLOW_WAITS=poll
job=$(build/workflow submit --type demo --tasks 600,300,150 --task-type noop --id citus-demo)
out=$(build/workflow worker --concurrency 4 --batch 32 --until-job "$job") || { echo "$out"; fail "CLI worker"; }
[ "$(q "SELECT status || ' ' || stage FROM workflow.jobs WHERE id = 'citus-demo'")" = "completed 3" ] ||
  fail "the demo job did not complete: $(q "SELECT status, stage FROM workflow.jobs WHERE id = 'citus-demo'")"
[ "$(q "SELECT count(*) FROM workflow.tasks WHERE job_id = 'citus-demo' AND status = 'completed'")" = 1050 ] ||
  fail "the demo job's tasks are not all completed"
echo "demo job through the coordinator: completed, 1050 tasks; worker said: $out"

# 6. kill -9 of a worker node during a completion storm, then a restart.
TMP=$(mktemp -d /tmp/wf_citus.XXXXXX)
trap 'citus_cluster_stop; rm -rf "$TMP"' EXIT
timeout 600 "$PY" test/citus/kill_storm.py --dsn "$COORD" --jobs 30 --tasks 40 --threads 8 \
  --ready-file "$TMP/ready" >"$TMP/storm.out" 2>&1 &
STORM=$!
for _ in $(seq 1 600); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
sleep 2
before=$(q "SELECT count(*) FROM workflow.tasks WHERE job_id LIKE 'kill-%' AND status = 'completed'")
citus_node_kill9 1
sleep 3
citus_node_start 1 || fail "could not restart worker node 1"
wait "$STORM" || { cat "$TMP/storm.out"; fail "the storm did not complete every task"; }
echo "killed worker node 1 with $before of 1200 tasks completed; storm: $(tail -1 "$TMP/storm.out")"
# Citus commits or rolls back the killed node's prepared transactions (2PC recovery).
q "SELECT recover_prepared_transactions()" >/dev/null
got=$(q "SELECT count(*) FILTER (WHERE status = 'completed') || ' ' || count(*) FROM workflow.tasks WHERE job_id LIKE 'kill-%'")
[ "$got" = "1200 1200" ] || fail "after the kill: completed/all tasks $got"
got=$(q "SELECT count(*) FILTER (WHERE completed_at IS NOT NULL AND completed_by_task IS NOT NULL) FROM workflow.stages WHERE job_id LIKE 'kill-%'")
[ "$got" = 30 ] || fail "after the kill: $got of 30 stages complete with a completer"
# Every stage_complete = true a client got names its stage's recorded completer.
while read -r _ job task; do
  [ "$(q "SELECT completed_by_task FROM workflow.stages WHERE job_id = '$job' AND stage = 1")" = "$task" ] ||
    fail "$task was told it completed $job's stage, the stage names another completer"
done < <(grep '^complete ' "$TMP/storm.out")
for j in $(seq 0 29); do
  bad=$(q "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants('kill-$j') WHERE NOT ok")
  [ -z "$bad" ] || fail "check_invariants('kill-$j'): $bad"
done
echo "after the kill: 1200 tasks completed once, 30 stages with one completer, invariants ok on every job"

bad=$(q "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants() WHERE NOT ok")
[ -z "$bad" ] || fail "check_invariants at the end: $bad"
echo "ok: citus engine"
