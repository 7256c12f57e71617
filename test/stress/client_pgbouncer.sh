#!/usr/bin/env bash
# The client library and the `workflow` CLI through PgBouncer 1.18 in
# TRANSACTION mode (issue 9), the way most production PostgreSQL is reached:
#  1. the client test binaries (pool, api, worker, wait, pooler) with
#     DATABASE_URL pointing at PgBouncer (WF_EXPECT_POOLER=1: the pooler must
#     be detected), minus the two tests that need a session of their own;
#  2. test/client/cli_test.sh (health, submit, worker, watch, history, export,
#     worker failures) through PgBouncer;
#  3. a small multi-stage job (submit, worker, watch), through PgBouncer and
#     directly, with the default and the per-task completion path (and, directly,
#     the opt-in named prepared statements).
# ctest runs (1) and (2) directly. Runs on its OWN cluster and PgBouncer.
# WF_BUILD_DIR=dir runs another build's binaries (e.g. one of old main).
set -uo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
BUILD=$(cd "${WF_BUILD_DIR:-build}" && pwd)
CLI=$BUILD/workflow
[ -x "$CLI" ] || { echo "FAIL: $CLI not built"; exit 1; }
command -v pgbouncer >/dev/null || { echo "FAIL: pgbouncer is not installed"; exit 1; }
source scripts/lib/cluster.sh
source scripts/lib/pgbouncer.sh
WORK=$(mktemp -d /tmp/wf-client-pgbouncer.XXXXXX)
trap 'pgbouncer_stop; cluster_stop; rm -rf "$WORK"' EXIT
cluster_start || exit 1
WF_PGBOUNCER_USERS="wf_cli_readonly" pgbouncer_start transaction 10 || exit 1
DIRECT=$DATABASE_URL
BOUNCER=$PGBOUNCER_URL
echo "server $DIRECT, PgBouncer $(pgbouncer --version | head -1) (transaction mode) $BOUNCER"

fail=0
ok()   { echo "ok   $*"; }
bad()  { echo "FAIL $*"; fail=1; }

# 1. The client test binaries through PgBouncer. Left out: a test that kills
# "its" backend by pid (behind a pooler the pid is the pooler's) and the raw
# LISTEN round trip (LISTEN needs a session; the waits poll instead).
SESSION_ONLY='ClientPool.HealthCheckReplacesDeadIdleConnection:ClientWait.NotificationWithDeadline'
for t in pool api worker wait pooler; do
  bin=$BUILD/client_${t}_test
  if [ ! -x "$bin" ]; then bad "client_${t}_test is not built"; continue; fi
  if DATABASE_URL=$BOUNCER WF_EXPECT_POOLER=1 timeout 600 "$bin" --gtest_filter="-$SESSION_ONLY" \
       >"$WORK/$t.log" 2>&1; then
    ok "client_${t}_test through PgBouncer: $(grep -E '^\[  PASSED' "$WORK/$t.log")"
  else
    bad "client_${t}_test through PgBouncer:"; grep -E '^\[  FAILED|Failure|error|terminate' "$WORK/$t.log" | head -30
  fi
done

# 2. The CLI end to end through PgBouncer.
if DATABASE_URL=$BOUNCER timeout 600 test/client/cli_test.sh "$CLI" >"$WORK/cli.log" 2>&1; then
  ok "cli_test.sh through PgBouncer"
else
  bad "cli_test.sh through PgBouncer:"; tail -20 "$WORK/cli.log"
fi

# 3. A small multi-stage job through PgBouncer and directly.
multi_stage() {  # label base_url [worker flags...]
  local label=$1 base=$2 db job out watch rc; shift 2
  db=wf_pgb_$(tr -c 'a-z0-9\n' _ <<<"$label")
  psql -qX "$DIRECT" -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
  psql -qX "${DIRECT%/*}/$db" -c "CREATE EXTENSION workflow" >/dev/null
  local url="${base%/*}/$db"
  if ! job=$("$CLI" --db "$url" submit --type pgbouncer --tasks 40,0,25,10 --task-type noop 2>"$WORK/submit.err"); then
    bad "$label: submit failed: $(cat "$WORK/submit.err")"; return
  fi
  out=$(timeout 120 "$CLI" --db "$url" worker --concurrency 4 --batch "${BATCH:-4}" "$@" --until-job "$job" 2>"$WORK/worker.err")
  rc=$?
  [ "$rc" = 0 ] || { bad "$label: worker exit $rc: $(tail -5 "$WORK/worker.err")"; return; }
  grep -q '"completed":75' <<<"$out" && grep -q '"errors":0' <<<"$out" \
    || { bad "$label: worker summary: $out"; return; }
  watch=$(timeout 60 "$CLI" --db "$url" watch "$job" 2>&1) || { bad "$label: watch: $watch"; return; }
  grep -q "status completed" <<<"$watch" && [ "$(grep -c ' complete$' <<<"$watch")" = 4 ] \
    || { bad "$label: watch: $watch"; return; }
  [ "$(psql -qXAt "${DIRECT%/*}/$db" -c "SELECT status = 'completed' AND stage = 4 FROM workflow.jobs WHERE id = '$job'")" = t ] \
    && [ "$(psql -qXAt "${DIRECT%/*}/$db" -c "SELECT count(*) FILTER (WHERE status = 'completed') = 75 FROM workflow.tasks")" = t ] \
    && [ "$(psql -qXAt "${DIRECT%/*}/$db" -c "SELECT bool_and(ok) FROM workflow.check_invariants('$job')")" = t ] \
    || { bad "$label: job state: $(psql -qXAt "${DIRECT%/*}/$db" -c "SELECT status, stage FROM workflow.jobs")"; return; }
  ok "$label: 4 stages (one empty), 75 tasks: submit, worker, watch"
  psql -qX "$DIRECT" -c "DROP DATABASE $db WITH (FORCE)" >/dev/null
}
multi_stage "pgbouncer" "$BOUNCER"
multi_stage "pgbouncer per-task" "$BOUNCER" --transaction-per-task
# Batch 1: the loops' completions and next claims in one shared transaction
# (complete_claimed_tasks + claim_tasks_for_workers, pipelined, unnamed).
BATCH=1 multi_stage "pgbouncer batch 1" "$BOUNCER"
multi_stage "direct" "$DIRECT"
WORKFLOW_STATEMENTS=prepared multi_stage "direct prepared" "$DIRECT" --transaction-per-task
[ "$fail" = 0 ] && echo "client through pgbouncer ok"
exit $fail
