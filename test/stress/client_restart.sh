#!/usr/bin/env bash
# The server is restarted (twice) while C++ workers (build/workflow worker) run
# a three-stage job: they must reconnect and finish it, every task completed
# exactly once, each stage completed and advanced exactly once, the engine's
# invariants intact. Runs on its OWN cluster (never the shared test cluster).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-client-restart.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start
psql -qX -c "CREATE EXTENSION workflow"

CLI=build/workflow
[ -x "$CLI" ] || { echo "FAIL: $CLI not built"; exit 1; }
# sleep tasks (10 ms each) so the job is still running when the server restarts
JOB=$($CLI submit --type restart-test --tasks 1500,1000,500 --task-type sleep)
echo "job $JOB"
$CLI worker --concurrency 6 --batch 8 --lease 3 --until-job "$JOB" >"$WORK/worker.json" 2>"$WORK/worker.err" &
WORKER=$!
for round in 1 2; do
  sleep 2
  echo "restart $round (completed so far: $(psql -qXAt -c "SELECT count(*) FROM workflow.tasks WHERE status = 'completed'"))"
  cluster_restart
done
if ! timeout 180 tail --pid=$WORKER -f /dev/null; then
  echo "FAIL: workers did not finish"; kill "$WORKER" 2>/dev/null; exit 1
fi
wait "$WORKER" || { echo "FAIL: worker exited non-zero"; cat "$WORK/worker.err"; exit 1; }
cat "$WORK/worker.json"

fail=0
check() {  # description, SQL returning true
  local got; got=$(psql -qXAt -c "$2")
  if [ "$got" = t ]; then echo "ok   $1"; else echo "FAIL $1 (got '$got')"; fail=1; fi
}
json() {  # json key [key]: a number from the worker's one-line JSON summary (keys nest)
  /usr/bin/python3 -c 'import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2:]: v = v[k]
print(v)' "$WORK/worker.json" "$@"
}
check "job completed" "SELECT status = 'completed' AND stage = 3 FROM workflow.jobs WHERE id = '$JOB'"
check "3000 tasks, all completed" \
  "SELECT count(*) = 3000 AND count(*) FILTER (WHERE status = 'completed') = 3000 FROM workflow.tasks WHERE job_id = '$JOB'"
check "one task per (stage, index)" \
  "SELECT count(DISTINCT (stage, task_index)) = 3000 FROM workflow.tasks WHERE job_id = '$JOB'"
check "each stage completed once" \
  "SELECT count(*) = 3 AND bool_and(completed_at IS NOT NULL) FROM workflow.stages WHERE job_id = '$JOB'"
check "invariants hold" "SELECT bool_and(ok) FROM workflow.check_invariants('$JOB')"
[ "$(json stage_completions)" = 3 ] && echo "ok   3 stage_complete answers" \
  || { echo "FAIL stage_complete answers: $(json stage_completions)"; fail=1; }
[ "$(json advances)" = 3 ] && echo "ok   3 winning advances" || { echo "FAIL advances: $(json advances)"; fail=1; }
# The restarts must really have cut the workers' connections (failed calls retried).
errors=$(json pool errors)
[ "$errors" -gt 0 ] && echo "ok   workers lost connections $errors times and reconnected" \
  || { echo "FAIL the restarts did not hit the workers (pool errors=0)"; fail=1; }
exit $fail
