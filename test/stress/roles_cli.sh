#!/usr/bin/env bash
# The CLI (build/workflow, over the client library) with least-privilege login
# roles instead of the superuser (issue 10): a producer (workflow_producer)
# submits a 3-stage job; a worker fleet (workflow_worker) runs it, fanning out
# stages 2 and 3 and advancing; the producer watches and exports its job. A
# second producer sees nothing of it: watch fails (P0002), export is empty.
# Runs on its OWN cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-roles-cli.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start
q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
fail() { echo "FAIL: $*"; exit 1; }
q "CREATE EXTENSION workflow"
q "CREATE ROLE roles_cli_producer LOGIN; GRANT workflow_producer TO roles_cli_producer"
q "CREATE ROLE roles_cli_other LOGIN; GRANT workflow_producer TO roles_cli_other"
q "CREATE ROLE roles_cli_workers LOGIN; GRANT workflow_worker TO roles_cli_workers"
CLI=build/workflow
[ -x "$CLI" ] || fail "$CLI not built"
db() { echo "host=$PGHOST port=$PGPORT dbname=postgres user=$1"; }
as() { local role=$1; shift; timeout 120 "$CLI" --db "$(db "$role")" "$@"; }

as roles_cli_producer health >/dev/null || fail "health as the producer"
JOB=$(as roles_cli_producer submit --type roles --tasks 300,100,20 --task-type noop --id roles-cli-1)
[ "$JOB" = roles-cli-1 ] || fail "submit as the producer: '$JOB'"
as roles_cli_workers worker --concurrency 2 --batch 16 --until-job "$JOB" >"$WORK/worker.json" \
  || fail "the worker fleet did not finish the job: $(q "SELECT status, stage FROM workflow.jobs WHERE id = '$JOB'")"
cat "$WORK/worker.json"; echo
# At batch 1 the loops share their completions and next claims
# (claim_tasks_for_workers): the granted role may call it too.
JOB2=$(as roles_cli_producer submit --type roles --tasks 40,20 --task-type noop --id roles-cli-2)
as roles_cli_workers worker --concurrency 4 --batch 1 --until-job "$JOB2" >"$WORK/worker1.json" \
  || fail "the batch-1 fleet did not finish its job: $(q "SELECT status, stage FROM workflow.jobs WHERE id = '$JOB2'")"
as roles_cli_producer watch "$JOB" --interval-ms 200 >"$WORK/watch.txt" || fail "watch as the producer"
as roles_cli_producer export --format csv >"$WORK/mine.csv" || fail "export as the producer"
if as roles_cli_other watch "$JOB" --interval-ms 200 >"$WORK/other_watch.txt" 2>&1; then
  fail "another producer watched the job: $(cat "$WORK/other_watch.txt")"
fi
as roles_cli_other export --format csv >"$WORK/other.csv" || fail "export as the other producer"

ok=0
check() {  # description, command that must succeed
  if eval "$2"; then echo "ok   $1"; else echo "FAIL $1"; ok=1; fi
}
check "job completed, owned by the producer" \
  "[ \"\$(q \"SELECT status || ' ' || owner FROM workflow.jobs WHERE id = '$JOB'\")\" = 'completed roles_cli_producer' ]"
check "420 tasks completed" \
  "[ \"\$(q \"SELECT count(*) FROM workflow.tasks WHERE job_id = '$JOB' AND status = 'completed'\")\" = 420 ]"
check "the workers advanced 3 times" "grep -q '\"advances\":3' '$WORK/worker.json'"
check "batch 1: 60 tasks completed, each under a loop's own name" \
  "[ \"\$(q \"SELECT count(*) FILTER (WHERE status = 'completed' AND claimed_by ~ '/[0-3]\\\$') FROM workflow.tasks WHERE job_id = '$JOB2'\")\" = 60 ]"
check "batch 1: the loops shared round trips (cycles)" "grep -q '\"cycle_requests\":[1-9]' '$WORK/worker1.json'"
check "the producer watched it to the end" "grep -q 'stage 3 .* complete' '$WORK/watch.txt'"
check "the producer exports its job" "grep -q '^roles-cli-1,' '$WORK/mine.csv'"
check "another producer cannot watch it" "grep -q 'P0002' '$WORK/other_watch.txt'"
check "another producer exports no job" "[ \$(wc -l <'$WORK/other.csv') -le 1 ]"
check "invariants hold" "[ \"\$(q \"SELECT bool_and(ok) FROM workflow.check_invariants()\")\" = t ]"
exit $ok
