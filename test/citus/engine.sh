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
#     Claims across jobs take tasks on both worker nodes, oldest first, and
#     a job's early fan-out (older tasks of a stage it has not reached)
#     does not hide other jobs' tasks. A transaction completing stages on
#     two worker nodes fails to commit (NOTIFY and two-phase commit) and
#     writes nothing, as the README says.
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

# 1. distribute(), with a job already there (its rows move into the shards).
q "SELECT workflow.create_job('pre', '{}', 1, 'pre-1')" >/dev/null
q "SELECT workflow.add_tasks('pre-1', 1, 'pre', ARRAY['{}', '{}', '{}']::jsonb[])" >/dev/null
q "SELECT stage_complete FROM workflow.complete_task_and_check_stage('pre-1:1:0', 'pre-1', 1, '{}')" >/dev/null
q "SELECT object || ': ' || distributed_as FROM workflow.distribute(shard_count => 8)"
got=$(q "SELECT count(DISTINCT colocationid) || ' ' || count(*) FROM pg_dist_partition
          WHERE logicalrelid IN ('workflow.jobs'::regclass, 'workflow.stages'::regclass,
                                 'workflow.stage_slots'::regclass, 'workflow.tasks'::regclass)")
[ "$got" = "1 4" ] || fail "distribute(): want 4 tables in 1 colocation group, got $got"
again=$(q "SELECT count(*) FILTER (WHERE distributed_as = 'distributed already') FROM workflow.distribute()")
[ "$again" = 4 ] || fail "distribute() a second time: $again tables seen as distributed already"
delegated=$(q "SELECT count(*) FROM pg_dist_object o JOIN pg_proc p ON p.oid = o.objid
   WHERE o.classid = 'pg_proc'::regclass AND o.distribution_argument_index IS NOT NULL
     AND o.force_delegation AND p.pronamespace = 'workflow'::regnamespace")
[ "$delegated" = 11 ] || fail "distribute(): $delegated functions registered for delegation, want 11"
# The job made before distribute() moved into the shards and finishes there.
got=$(q "SELECT count(*) FROM workflow.tasks WHERE job_id = 'pre-1'")
[ "$got" = 3 ] || fail "the job made before distribute() has $got tasks on the cluster, want 3"
for i in 1 2; do q "SELECT stage_complete FROM workflow.complete_task_and_check_stage('pre-1:1:$i', 'pre-1', 1, '{}')" >/dev/null; done
[ "$(q "SELECT workflow.advance_job_stage('pre-1', 1, 2, NULL)")" = t ] || fail "pre-1 did not advance"
[ "$(q "SELECT status FROM workflow.jobs WHERE id = 'pre-1'")" = completed ] || fail "pre-1 did not complete"
bad=$(q "SELECT string_agg(check_name, '; ') FROM workflow.check_invariants('pre-1') WHERE NOT ok")
[ -z "$bad" ] || fail "check_invariants('pre-1'): $bad"
# The race below wants a database without jobs: pre-1 goes (one router statement each).
q "DELETE FROM workflow.tasks WHERE job_id = 'pre-1'; DELETE FROM workflow.stage_slots WHERE job_id = 'pre-1';
   DELETE FROM workflow.jobs WHERE id = 'pre-1'" >/dev/null
echo "distributed: 4 tables colocated, 11 functions delegated; a job made before finished on the cluster"

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

names_per_node() {  # prefix k -> prefix-N job names, k per worker node, alternating nodes
  q "SELECT j FROM (SELECT j, p.nodeport, row_number() OVER (PARTITION BY p.nodeport ORDER BY n) AS k
       FROM generate_series(0, 199) n, LATERAL (SELECT '$1-' || n AS j) x,
            LATERAL (SELECT nodeport FROM pg_dist_shard_placement
                      WHERE shardid = get_shard_id_for_distribution_column('workflow.jobs', x.j)) p) y
      WHERE k <= $2 ORDER BY k, nodeport"
}

# 3b. Claims across jobs: oldest first over every node, and a job's early
# fan-out (older tasks of a stage it has not reached) does not block others.
# Four jobs on each worker node, one task each, made alternately so that the
# oldest tasks alternate nodes.
mapfile -t fair < <(names_per_node fair 4)
[ ${#fair[@]} = 8 ] || fail "could not pick 4 job names per worker node: ${fair[*]}"
for j in "${fair[@]}"; do
  q "SELECT workflow.create_job('fair', '{}', 1, '$j')" >/dev/null
  q "SELECT workflow.add_tasks('$j', 1, 'fair', ARRAY['{}']::jsonb[])" >/dev/null
done
ports=$(for _ in 1 2 3 4 5 6 7 8; do
  job=$(q "SELECT job_id FROM workflow.claim_tasks('fair-w', 1, ARRAY['fair'])")
  [ -n "$job" ] || fail "claim_tasks found nothing with fair tasks queued"
  node_of "$job"
done | sort -u | wc -l)
[ "$ports" = 2 ] || fail "8 claims took tasks on $ports worker node(s), want both"
q "SELECT workflow.create_job('early', '{}', 2, 'early-1')" >/dev/null
q "SELECT workflow.add_tasks('early-1', 2, 'early', array_fill('{}'::jsonb, ARRAY[20]))" >/dev/null
q "SELECT workflow.create_job('early', '{}', 1, 'early-2')" >/dev/null
q "SELECT workflow.add_tasks('early-2', 1, 'early', ARRAY['{}']::jsonb[])" >/dev/null
got=$(q "SELECT id FROM workflow.claim_tasks('early-w', 1, ARRAY['early'])")
[ "$got" = "early-2:1:0" ] || fail "claim behind an early fan-out: got '$got', want early-2:1:0"
echo "claims: 8 one-task claims took tasks on both worker nodes; an early fan-out blocks no other job"

# 3c. The documented limit: one transaction completing stages of jobs on two
# worker nodes notified on both, so Citus' two-phase commit fails (PostgreSQL
# does not PREPARE a transaction that sent NOTIFY) and nothing is written.
mapfile -t tpc < <(names_per_node twopc 1)
for j in "${tpc[@]}"; do
  q "SELECT workflow.create_job('tpc', '{}', 1, '$j')" >/dev/null
  q "SELECT workflow.add_tasks('$j', 1, 'tpc', ARRAY['{}']::jsonb[])" >/dev/null
done
out=$(psql -qXAt -d "$COORD" 2>&1 <<SQL
BEGIN;
SELECT stage_complete FROM workflow.complete_task_and_check_stage('${tpc[0]}:1:0', '${tpc[0]}', 1, '{}');
SELECT stage_complete FROM workflow.complete_task_and_check_stage('${tpc[1]}:1:0', '${tpc[1]}', 1, '{}');
COMMIT;
SQL
)
grep -q "cannot PREPARE a transaction that has executed LISTEN, UNLISTEN, or NOTIFY" <<<"$out" ||
  { echo "$out"; fail "a transaction notifying on two worker nodes committed (README says it fails)"; }
[ "$(q "SELECT count(*) FROM workflow.tasks WHERE job_id IN ('${tpc[0]}', '${tpc[1]}') AND status = 'queued'")" = 2 ] ||
  fail "the failed two-node commit wrote something"
echo "two-node transaction with NOTIFY: COMMIT fails, nothing written (README's limit)"
# Done with them: cancelled, so that no later claim without a type (the
# kill storm's) completes their tasks and leaves them to the final check.
for j in "${tpc[@]}"; do q "SELECT workflow.cancel_job('$j', 'two-node commit shown')" >/dev/null; done

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
timeout 600 "$PY" test/citus/kill_storm.py --dsn "$COORD" --jobs 30 --tasks 100 --threads 8 \
  --ready-file "$TMP/ready" >"$TMP/storm.out" 2>&1 &
STORM=$!
for _ in $(seq 1 600); do [ -e "$TMP/ready" ] && break; sleep 0.1; done
sleep 1   # a third of the storm or so (about 500 completions/s here)
before=$(q "SELECT count(*) FROM workflow.tasks WHERE job_id LIKE 'kill-%' AND status = 'completed'")
citus_node_kill9 1
sleep 3
citus_node_start 1 || fail "could not restart worker node 1"
wait "$STORM" || { cat "$TMP/storm.out"; fail "the storm did not complete every task"; }
echo "killed worker node 1 with $before of 3000 tasks completed; storm: $(tail -1 "$TMP/storm.out")"
# The kill must have hit the storm: tasks left to do, and calls that failed.
[ "$before" -lt 3000 ] || fail "the storm had finished before the kill ($before tasks completed)"
errors=$(tail -1 "$TMP/storm.out" | awk '{print $4}')
[ "${errors:-0}" -gt 0 ] || fail "no call failed during the kill: it did not hit the storm"

# Citus commits or rolls back the killed node's prepared transactions (2PC recovery).
q "SELECT recover_prepared_transactions()" >/dev/null
got=$(q "SELECT count(*) FILTER (WHERE status = 'completed') || ' ' || count(*) FROM workflow.tasks WHERE job_id LIKE 'kill-%'")
[ "$got" = "3000 3000" ] || fail "after the kill: completed/all tasks $got"
got=$(q "SELECT count(*) FILTER (WHERE completed_at IS NOT NULL AND completed_by_task IS NOT NULL) FROM workflow.stages WHERE job_id LIKE 'kill-%'")
[ "$got" = 30 ] || fail "after the kill: $got of 30 stages complete with a completer"
# Every stage_complete = true a client got names its stage's recorded completer
# (a repeat after a lost reply may tell the same completer twice, never
# another task). A reply lost for good is possible, so not every job need
# appear: the hand-over covers that (claim_stage_handovers).
answered=0
while read -r _ job task; do
  [ "$(q "SELECT completed_by_task FROM workflow.stages WHERE job_id = '$job' AND stage = 1")" = "$task" ] ||
    fail "$task was told it completed $job's stage, the stage names another completer"
  answered=$((answered + 1))
done < <(grep '^complete ' "$TMP/storm.out" | sort -u)
distinct=$(grep '^complete ' "$TMP/storm.out" | awk '{print $2}' | sort -u | wc -l)
[ "$answered" = "$distinct" ] || fail "$answered completers told for $distinct jobs"
[ "$answered" -gt 0 ] || fail "no client was told a stage completed"
echo "stage_complete answers: $answered jobs, each to its recorded completer"

# The storm completes stages and advances nothing, as a worker that dies after
# its completion would: each complete stage is handed over (README, worker
# loop step 3) once its job's hand-over lease has run out. Made to run out now
# (set_handover_lease), then one sweeper claims the hand-overs and finishes
# the jobs, so no job is left for check_invariants' stuck-job rule, however
# long the storm took on this machine (the stuck-job rule counts from the
# completion; the checks below come after the sweep).
for j in $(q "SELECT id FROM workflow.jobs WHERE id LIKE 'kill-%' AND status IN ('pending', 'running')"); do
  q "SELECT workflow.set_handover_lease('$j', '1 millisecond')" >/dev/null
done
sleep 0.1
handed=0
while read -r job stage; do
  [ -n "$job" ] || continue
  q "SELECT workflow.advance_job_stage('$job', $stage, $((stage + 1)), '{}')" >/dev/null
  q "SELECT workflow.check_job_completion('$job')" >/dev/null
  handed=$((handed + 1))
done < <(q "SELECT job_id || ' ' || stage FROM workflow.claim_stage_handovers('citus-sweeper', 1000)")
got=$(q "SELECT count(*) FROM workflow.jobs WHERE id LIKE 'kill-%' AND status = 'completed'")
[ "$handed" = 30 ] && [ "$got" = 30 ] || fail "hand-over sweep: $handed stages handed over, $got of 30 kill jobs completed"
echo "hand-over sweep: the 30 stages nobody advanced were handed over once each; all 30 jobs completed"

for j in $(seq 0 29); do
  bad=$(q "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants('kill-$j') WHERE NOT ok")
  [ -z "$bad" ] || fail "check_invariants('kill-$j'): $bad"
done
echo "after the kill: 3000 tasks completed once, 30 stages with one completer, invariants ok on every job"

bad=$(q "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants() WHERE NOT ok")
[ -z "$bad" ] || fail "check_invariants at the end: $bad"
echo "ok: citus engine"
