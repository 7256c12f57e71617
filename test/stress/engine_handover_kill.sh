#!/usr/bin/env bash
# A completer dies after its completion commits and before it advances the
# job: the job must still complete, via the hand-over (claim_stage_handovers)
# that the CLI worker (build/workflow worker) polls. Three jobs, three ways
# to die, on its OWN cluster:
#   ho-kill-1: stage 1 of 3 completed, then its backend is terminated
#              (pg_terminate_backend) before it fans out stage 2 or advances;
#   ho-kill-2: stage 1 of 3 completed and stage 2 fanned out, then the client
#              process is killed (SIGKILL) before it advances;
#   ho-kill-3: the last (only) stage completed, then the backend is
#              terminated before advance_job_stage / check_job_completion.
# Each job's hand-over lease is 2 seconds; once it ran out, check_invariants
# must report the three stuck jobs; then the workers take them over: every
# job completed, every stage complete, invariants clean.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-handover-kill.XXXXXX)
WORKER=
cleanup() {
  local rc=$?
  set +e
  [ -n "$WORKER" ] && kill "$WORKER" 2>/dev/null
  for p in "$WORK"/*.pid; do [ -e "$p" ] && kill -9 "$(cat "$p")" 2>/dev/null; done
  cluster_stop; rm -rf "$WORK"
  exit $rc
}
trap cleanup EXIT
cluster_start
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
fail() { echo "FAIL: $*"; exit 1; }
q "CREATE EXTENSION workflow"

CLI=build/workflow
[ -x "$CLI" ] || fail "$CLI not built"
$CLI submit --type kill --tasks 3,2,2 --task-type kill1 --id ho-kill-1 >/dev/null
$CLI submit --type kill --tasks 3,2,2 --task-type kill2 --id ho-kill-2 >/dev/null
$CLI submit --type kill --tasks 2 --task-type kill3 --id ho-kill-3 >/dev/null
for j in 1 2 3; do q "SELECT workflow.set_handover_lease('ho-kill-$j', '2 seconds')" >/dev/null; done

# completer N TYPE [FANOUT_SQL]: claims its job's stage-1 tasks, completes
# them in one committed statement (the answer is logged), optionally fans out
# stage 2, then "works" on (sleeps) where it would advance, until killed.
completer() {
  local n=$1 type=$2 fanout=${3:-}
  PGAPPNAME=doomed-$n "${PSQL[@]}" -At >"$WORK/c$n.out" 2>"$WORK/c$n.err" <<SQL &
SELECT array_agg(job_id) AS j, array_agg(id) AS i, array_agg(stage) AS s
  FROM workflow.claim_tasks('doomed-$n', 10, ARRAY['$type']) \gset
SELECT 'stage_complete ' || bool_or(stage_complete) FROM workflow.complete_tasks(:'j', :'i', :'s');
$fanout
\! touch $WORK/c$n.committed
SELECT pg_sleep(120);
SQL
  echo $! >"$WORK/c$n.pid"
}
completer 1 kill1
completer 2 kill2 "SELECT 'fanned out ' || workflow.add_tasks('ho-kill-2', 2, 'kill2', ARRAY['{\"n\": 0}', '{\"n\": 1}']::jsonb[]);"
completer 3 kill3
for n in 1 2 3; do
  for _ in $(seq 1 300); do [ -e "$WORK/c$n.committed" ] && break; sleep 0.1; done
  [ -e "$WORK/c$n.committed" ] || { cat "$WORK/c$n.err"; fail "completer $n did not commit"; }
  grep -q "stage_complete true" "$WORK/c$n.out" || fail "completer $n was not told its stage is complete: $(cat "$WORK/c$n.out")"
done
grep -q "fanned out 2" "$WORK/c2.out" || fail "completer 2 did not fan out stage 2"

# Kill them between completion and advance.
[ "$(q "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name IN ('doomed-1', 'doomed-3')")" = 2 ] \
  || fail "could not terminate the completers' backends"
C2=$(cat "$WORK/c2.pid"); rm -f "$WORK/c2.pid"
kill -9 "$C2"; wait "$C2" 2>/dev/null || true
echo "completers died: ho-kill-1 after completing stage 1, ho-kill-2 after its fan-out, ho-kill-3 after its last stage"

[ "$(q "SELECT string_agg(id || ':' || status || ':' || stage, ' ' ORDER BY id) FROM workflow.jobs")" \
  = "ho-kill-1:running:1 ho-kill-2:running:1 ho-kill-3:running:1" ] || fail "jobs: $(q "SELECT * FROM workflow.jobs")"
sleep 2.5  # the completers' hand-over leases run out
STUCK=$(q "SELECT ok || ' ' || detail FROM workflow.check_invariants() WHERE check_name = 'stuck jobs'")
echo "check_invariants: $STUCK"
[[ "$STUCK" == "false 3 violations"* ]] || fail "stuck jobs check: $STUCK"

# The tasks' types (kill1..3) have no built-in handler: --exec runs every type.
$CLI worker --concurrency 2 --batch 4 --lease 30 --exec 'echo "{}"' >"$WORK/worker.json" 2>"$WORK/worker.err" &
WORKER=$!
for _ in $(seq 1 600); do
  [ "$(q "SELECT count(*) FROM workflow.jobs WHERE status = 'completed'")" = 3 ] && break
  sleep 0.1
done
kill "$WORKER"; wait "$WORKER" || true; WORKER=
cat "$WORK/worker.json"

ok=0
check() {  # description, SQL returning true
  local got; got=$(q "$2")
  if [ "$got" = t ]; then echo "ok   $1"; else echo "FAIL $1 (got '$got')"; ok=1; fi
}
check "every job completed" \
  "SELECT bool_and(status = 'completed') AND count(*) = 3 FROM workflow.jobs"
check "every stage complete, advanced past" \
  "SELECT count(*) = 7 AND bool_and(completed_at IS NOT NULL AND left_at IS NOT NULL) FROM workflow.stages"
check "every task completed once" \
  "SELECT count(*) = 16 AND bool_and(status = 'completed') FROM workflow.tasks"
check "invariants hold" "SELECT bool_and(ok) FROM workflow.check_invariants()"
handovers=$(grep -oE '"handovers":[0-9]+' "$WORK/worker.json" | cut -d: -f2)
[ "${handovers:-0}" -ge 3 ] && echo "ok   the workers took over $handovers stages" \
  || { echo "FAIL hand-overs: '${handovers:-}'"; ok=1; }
exit $ok
