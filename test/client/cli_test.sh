#!/usr/bin/env bash
# ctest client.cli: the `workflow` CLI end to end against DATABASE_URL, in its
# own database: health, submit (3 stages), worker, watch, history, export, and
# worker failures (reported with their SQLSTATE, exit status 2, never an abort).
# test/stress/client_pgbouncer.sh runs it again through PgBouncer (transaction
# mode; the role wf_cli_readonly must be listed in PgBouncer's users).
set -euo pipefail
CLI=$1
[ -n "${DATABASE_URL:-}" ] || { echo "FAIL: DATABASE_URL is not set"; exit 1; }
DB=wf_client_cli_$$
RO=wf_cli_readonly  # a role whose statements fail (no rights, read-only)
psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "DROP ROLE IF EXISTS $RO"' EXIT
URL="${DATABASE_URL%/*}/$DB"
q() { psql -qXAt "$URL" -c "$1"; }
fail() { echo "FAIL: $*"; exit 1; }

$CLI --db "$URL" health >/dev/null 2>&1 && fail "health must fail without the extension"
q "CREATE EXTENSION workflow"
q "SELECT workflow.enable_audit('workflow.jobs')" >/dev/null
HEALTH=$($CLI --db "$URL" health)
grep -q "extension   ok" <<<"$HEALTH" || fail "health: $HEALTH"

JOB=$($CLI --db "$URL" submit --type cli --tasks 30,20,10 --task-type noop --id cli-job-1)
[ "$JOB" = cli-job-1 ] || fail "submit printed '$JOB'"
$CLI --db "$URL" submit --id cli-job-1 --tasks 1 2>/dev/null && fail "duplicate id accepted"
OUT=$($CLI --db "$URL" worker --concurrency 2 --batch 4 --until-job "$JOB")
grep -q '"completed":60' <<<"$OUT" || fail "worker: $OUT"
grep -q '"stage_completions":3' <<<"$OUT" || fail "worker stage completions: $OUT"
[ "$(q "SELECT status FROM workflow.jobs WHERE id = 'cli-job-1'")" = completed ] || fail "job not completed"

WATCH=$($CLI --db "$URL" watch "$JOB")
grep -q "status completed" <<<"$WATCH" || fail "watch: $WATCH"
[ "$(echo "$WATCH" | grep -c ' complete$')" = 3 ] || fail "watch shows 3 complete stages: $WATCH"
$CLI --db "$URL" watch no-such-job 2>/dev/null && fail "watch of an unknown job must fail"

HIST=$($CLI --db "$URL" history workflow.jobs '{"id": "cli-job-1"}')
[ "$(echo "$HIST" | head -1 | grep -c '"operation":"INSERT"')" = 1 ] || fail "history: $HIST"
grep -q '"status":"completed"' <<<"$(tail -1 <<<"$HIST")" || fail "history last: $HIST"

CSV=$($CLI --db "$URL" export --query "SELECT id, status FROM workflow.jobs" --format csv 2>/dev/null)
[ "$CSV" = "$(printf 'id,status\ncli-job-1,completed')" ] || fail "csv: $CSV"
JSON=$($CLI --db "$URL" export --query "SELECT 'a\\b \"q\" ü' AS s" --format json 2>/dev/null)
[ "$JSON" = '{"s":"a\\b \"q\" ü"}' ] || fail "json: $JSON"
$CLI --db "$URL" export --table no_such_table 2>/dev/null && fail "export of a missing table must fail"
# Empty stages are complete once sealed: submit and the worker advance past
# them (first, middle, last, and a job of empty stages only).
for spec in 0,5 5,0,5 5,0 0,0; do
  J=$($CLI --db "$URL" submit --type cli --tasks "$spec" --task-type noop --id "cli-empty-$spec")
  timeout 30 $CLI --db "$URL" worker --concurrency 1 --batch 4 --until-job "$J" >/dev/null \
    || fail "worker did not see job $J (--tasks $spec) end"
  [ "$(q "SELECT status || ':' || stage FROM workflow.jobs WHERE id = '$J'")" = "completed:$(tr -cd , <<<"$spec" | wc -c | awk '{print $1 + 1}')" ] \
    || fail "job with --tasks $spec: $(q "SELECT status, stage FROM workflow.jobs WHERE id = '$J'")"
done

# A job that ends without completing (here cancelled) is not a success:
# `worker --until-job` exits 1, as `watch` does, and its summary says how it ended.
J=$($CLI --db "$URL" submit --type cli --tasks 3 --task-type sleep --id cli-cancelled)
q "SELECT workflow.cancel_job('$J')" >/dev/null
set +e
OUT=$(timeout 30 $CLI --db "$URL" worker --concurrency 1 --until-job "$J" 2>/dev/null)
RC=$?
set -e
[ "$RC" = 1 ] || fail "worker --until-job of a cancelled job: exit $RC, want 1: $OUT"
grep -q '"job_status":"cancelled"' <<<"$OUT" || fail "summary names no job_status: $OUT"

# Worker failures: reported on stderr with the SQLSTATE, exit status 2 (not
# an abort, exit 134, and not 0 having done nothing).
set +e
ERR=$(timeout 30 $CLI --db "$URL" worker --concurrency 2 --until-job no-such-job 2>&1 >/dev/null)
RC=$?
set -e
[ "$RC" = 2 ] || fail "worker --until-job no-such-job: exit $RC, want 2: $ERR"
grep -q "SQLSTATE P0002" <<<"$ERR" || fail "worker --until-job no-such-job names no SQLSTATE: $ERR"
q "DO \$\$BEGIN CREATE ROLE $RO LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END\$\$"
q "ALTER ROLE $RO SET default_transaction_read_only = on"
RO_URL=$(sed -E "s#^(postgres(ql)?://)[^@/]*@#\1$RO@#" <<<"$URL")
ERRFILE=$(mktemp)
set +e
OUT=$(timeout 60 $CLI --db "$RO_URL" worker --concurrency 3 --exit-when-idle 1 2>"$ERRFILE")
RC=$?
set -e
ERR=$(cat "$ERRFILE"); rm -f "$ERRFILE"
[ "$RC" = 2 ] || fail "worker whose threads fail: exit $RC, want 2: $ERR"
# The first failure stops the other threads, which may stop before they fail.
grep -qE 'worker .* failed: .*SQLSTATE (42501|25006)' <<<"$ERR" \
  || fail "a failed worker thread is reported with its SQLSTATE: $ERR"
grep -qE '"errors":[1-3]\b' <<<"$OUT" || fail "summary counts the failures: $OUT"
# A role the server refuses at connect: reported (SQLSTATE 28000), not retried for ever.
set +e
ERR=$(timeout 30 $CLI --db "$(sed -E "s#^(postgres(ql)?://)[^@/]*@#\1wf_cli_no_such_role@#" <<<"$URL")" \
        worker --concurrency 2 --exit-when-idle 1 2>&1 >/dev/null)
RC=$?
set -e
[ "$RC" = 2 ] || fail "worker with an unknown role: exit $RC, want 2: $ERR"
grep -qE 'SQLSTATE 28000' <<<"$ERR" || fail "worker with an unknown role names no SQLSTATE 28000: $ERR"

# watch shows what a running handler reported (report_progress, 1.4).
q "SELECT workflow.create_job('progress', '{}', 1, 'cli-progress')" >/dev/null
q "SELECT workflow.add_tasks('cli-progress', 1, 'slow', ARRAY['{}']::jsonb[])" >/dev/null
q "SELECT count(*) FROM workflow.claim_tasks('cli-w', 1, ARRAY['slow'])" >/dev/null
q "SELECT workflow.report_progress('cli-progress:1:0', 'cli-progress', '{\"rows\": 42}', 'cli-w')" >/dev/null
PROG=$(timeout 3 $CLI --db "$URL" watch cli-progress --interval-ms 100 || true)
grep -q 'task cli-progress:1:0 (cli-w): {"rows": 42}' <<<"$PROG" || fail "watch does not show the reported progress: $PROG"
q "SELECT workflow.cancel_job('cli-progress')" >/dev/null

# retry / pause / resume / purge (1.4 controls) as a shell user would chain them.
J=$($CLI --db "$URL" submit --type ctl --tasks 2 --task-type fail-always --id cli-ctl-1)
q "SELECT count(*) FROM workflow.claim_tasks('cli-ctl', 2, ARRAY['fail-always'])" >/dev/null
q "SELECT workflow.fail_task('cli-ctl-1:1:0', 'cli-ctl-1', 'broken', false)" >/dev/null
[ "$(q "SELECT status FROM workflow.jobs WHERE id = 'cli-ctl-1'")" = failed ] || fail "setup: job not failed"
$CLI --db "$URL" retry cli-ctl-1:1:1 --job cli-ctl-1 >/dev/null && fail "retry of a cancelled (not dead) task must exit 1"
OUT=$($CLI --db "$URL" retry --job cli-ctl-1) || fail "retry --job: $OUT"
[ "$(q "SELECT status FROM workflow.jobs WHERE id = 'cli-ctl-1'")" = running ] || fail "retry --job did not rerun the job"
$CLI --db "$URL" pause --type fail-always >/dev/null || fail "pause --type"
$CLI --db "$URL" pause --type fail-always >/dev/null && fail "a second pause changes nothing: exit 1"
[ "$(q "SELECT count(*) FROM workflow.claim_tasks('cli-ctl', 5, ARRAY['fail-always'])")" = 0 ] || fail "a paused type was claimed"
$CLI --db "$URL" resume --type fail-always >/dev/null || fail "resume --type"
$CLI --db "$URL" pause --job cli-ctl-1 >/dev/null || fail "pause --job"
$CLI --db "$URL" resume --job cli-ctl-1 >/dev/null || fail "resume --job"
$CLI --db "$URL" pause >/dev/null 2>&1 && fail "pause without --type or --job must fail"
q "SELECT workflow.cancel_job('cli-ctl-1')" >/dev/null
OUT=$($CLI --db "$URL" purge --older-than '0 seconds' --status cancelled --batch 1) || fail "purge: $OUT"
grep -qE '^purged [1-9][0-9]* jobs$' <<<"$OUT" || fail "purge: $OUT"
[ "$(q "SELECT count(*) FROM workflow.jobs WHERE id = 'cli-ctl-1'")" = 0 ] || fail "purge left the cancelled job"
[ "$(q "SELECT count(*) FROM workflow.jobs WHERE id = 'cli-job-1'")" = 1 ] || fail "purge --status cancelled took a completed job"

# The worker loops share round trips (WorkerGroup): each loop sends its
# completions with its next claim (a cycle; at batch 1 one per task at least)
# and the loops asking at once share one. On a database still at 1.4 (no
# claim_tasks_for_workers) or 1.3 (no complete_claimed_tasks either: the
# library was installed before the update) they complete, then claim.
for version in "" 1.4 1.3; do
  OLD_DB=${DB}_v${version//./}
  psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $OLD_DB" -c "CREATE DATABASE $OLD_DB"
  OLD_URL="${DATABASE_URL%/*}/$OLD_DB"
  psql -qXAt "$OLD_URL" -c "CREATE EXTENSION workflow ${version:+VERSION '$version'}"
  J=$($CLI --db "$OLD_URL" submit --type grouped --tasks 400,100 --task-type noop)
  OUT=$(timeout 120 $CLI --db "$OLD_URL" worker --concurrency 6 --batch 1 --until-job "$J")
  psql -qX "$DATABASE_URL" -c "DROP DATABASE $OLD_DB WITH (FORCE)"
  grep -q '"completed":500' <<<"$OUT" && grep -q '"errors":0' <<<"$OUT" && grep -q '"job_status":"completed"' <<<"$OUT" \
    || fail "grouped loops at batch 1 (extension ${version:-current}): $OUT"
  python3 -c 'import json, sys; r = json.loads(sys.argv[1])["round_trips"]
assert r["cycle_requests"] >= 500 and r["cycles"] <= r["cycle_requests"] and r["complete_requests"] == 0, r' "$OUT" \
    || fail "round trips of grouped loops: $OUT"
done

echo "cli ok"
