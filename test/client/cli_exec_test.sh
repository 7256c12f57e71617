#!/usr/bin/env bash
# ctest client.cli_exec: `workflow worker --exec CMD` against DATABASE_URL, in
# its own database: a command that succeeds (its stdout is the result, the task
# arrives as JSON on stdin and in WORKFLOW_* variables), one that fails (exit
# status and stderr become the task's error), one that hangs past
# --exec-timeout (killed with everything it started, retried with backoff,
# then dead), one that prints invalid JSON, and hostile output (a NUL in the
# result, invalid UTF-8 on stderr) that must fail the task, not the worker.
set -euo pipefail
CLI=$1
[ -n "${DATABASE_URL:-}" ] || { echo "FAIL: DATABASE_URL is not set"; exit 1; }
DB=wf_client_cli_exec_$$
TMP=$(mktemp -d)
psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$TMP"' EXIT
URL="${DATABASE_URL%/*}/$DB"
q() { psql -qXAt "$URL" -c "$1"; }
fail() { echo "FAIL: $*"; exit 1; }
q "CREATE EXTENSION workflow"

# One job of one stage: N tasks of type T with parameters {"n": i}, max_retries R.
job() {  # id type n retries
  q "SELECT workflow.create_job('exec', '{}', 1, '$1')" >/dev/null
  q "SELECT workflow.add_tasks('$1', 1, '$2',
       (SELECT array_agg(jsonb_build_object('n', i) ORDER BY i) FROM generate_series(0, $3 - 1) i),
       max_retries => $4)" >/dev/null
}
work() {  # job command [timeout]: the worker's exit status (1: the job failed)
  local rc=0
  timeout 120 "$CLI" --db "$URL" worker --concurrency 2 --batch 2 --types "$(q "SELECT DISTINCT task_type FROM workflow.tasks WHERE job_id = '$1'")" \
    --exec "$2" --exec-timeout "${3:-30}" --until-job "$1" >"$TMP/out" 2>"$TMP/err" || rc=$?
  echo "$rc"
}

# 1. Success: the result is the command's stdout; the task came on stdin and in the environment.
cat >"$TMP/double.py" <<'PY'
import json, os, sys
t = json.load(sys.stdin)
assert os.environ["WORKFLOW_TASK_ID"] == t["id"] and os.environ["WORKFLOW_JOB_ID"] == t["job_id"]
assert os.environ["WORKFLOW_STAGE"] == str(t["stage"]) and os.environ["WORKFLOW_TASK_TYPE"] == t["task_type"]
print(json.dumps({"double": t["parameters"]["n"] * 2, "index": t["task_index"], "id": t["id"]}))
PY
job ok double 6 0
RC=$(work ok "python3 $TMP/double.py")
[ "$RC" = 0 ] || fail "success: exit $RC: $(cat "$TMP/err")"
grep -q '"completed":6' "$TMP/out" || fail "success summary: $(cat "$TMP/out")"
[ "$(q "SELECT status FROM workflow.jobs WHERE id = 'ok'")" = completed ] || fail "job ok not completed"
BAD=$(q "SELECT count(*) FROM workflow.tasks WHERE job_id = 'ok' AND (status <> 'completed'
           OR result_data <> jsonb_build_object('double', 2 * (parameters->>'n')::int, 'index', task_index, 'id', id))")
[ "$BAD" = 0 ] || fail "success: $BAD tasks without the command's result: $(q "SELECT result_data FROM workflow.tasks WHERE job_id = 'ok'")"

# An empty stdout is an empty result.
job quiet quiet 2 0
RC=$(work quiet "cat >/dev/null")
[ "$RC" = 0 ] || fail "empty stdout: exit $RC: $(cat "$TMP/err")"
[ "$(q "SELECT count(*) FROM workflow.tasks WHERE job_id = 'quiet' AND result_data = '{}'")" = 2 ] \
  || fail "empty stdout: results $(q "SELECT result_data FROM workflow.tasks WHERE job_id = 'quiet'")"

# 2. Failure: exit status and stderr are the task's error; no retries left, so the job fails.
job bad bad 1 0
RC=$(work bad 'echo "boom: something broke" >&2; exit 3')
[ "$RC" = 1 ] || fail "failing command: worker exit $RC, want 1 (the job failed): $(cat "$TMP/err")"
ERR=$(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'bad'")
grep -q "exit status 3" <<<"$ERR" && grep -q "boom: something broke" <<<"$ERR" || fail "failing command's error: $ERR"
[ "$(q "SELECT status FROM workflow.jobs WHERE id = 'bad'")" = failed ] || fail "job bad not failed"

# 3. Hangs past the timeout: killed with its children, retried once (backoff), then dead.
MARK=wf-exec-hang-$$
job hang hang 1 1
RC=$(work hang "sh -c 'sleep 300; echo $MARK' & sleep 300" 1)
[ "$RC" = 1 ] || fail "hanging command: worker exit $RC, want 1: $(cat "$TMP/err")"
ROW=$(q "SELECT retry_count || ' ' || status FROM workflow.tasks WHERE job_id = 'hang'")
[ "$ROW" = "1 failed" ] || fail "hanging command: task '$ROW', want '1 failed' (a retry, then dead)"
grep -q "timed out after 1 s and was killed" <<<"$(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'hang'")" \
  || fail "hanging command's error: $(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'hang'")"
pgrep -f "sleep 300; echo $MARK" >/dev/null && fail "the hanging command's child survived the kill"

# 4. Invalid JSON on stdout.
job notjson notjson 1 0
RC=$(work notjson 'echo "this is not json"')
[ "$RC" = 1 ] || fail "invalid JSON: worker exit $RC, want 1"
grep -q "stdout is not JSON" <<<"$(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'notjson'")" \
  || fail "invalid JSON's error: $(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'notjson'")"

# 5. Hostile output fails the task and leaves the worker running: a \u0000
#    jsonb refuses in the result; stderr with a NUL byte and invalid UTF-8.
job nul nul 1 0
RC=$(work nul 'printf "{\"x\":\"a\\u0000b\"}"')
[ "$RC" = 1 ] || fail "NUL result: worker exit $RC, want 1 (job failed, worker alive): $(cat "$TMP/err")"
grep -q '"errors":0' "$TMP/out" || fail "NUL result broke a worker thread: $(cat "$TMP/out") $(cat "$TMP/err")"
grep -q 'u0000, which jsonb cannot store' <<<"$(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'nul'")" \
  || fail "NUL result's error: $(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'nul'")"
job bytes bytes 1 0
RC=$(work bytes 'printf "bad \0 byte \377\376 here" >&2; exit 1')
[ "$RC" = 1 ] || fail "stderr bytes: worker exit $RC, want 1: $(cat "$TMP/err")"
grep -q '"errors":0' "$TMP/out" || fail "stderr bytes broke a worker thread: $(cat "$TMP/out") $(cat "$TMP/err")"
ERR=$(q "SELECT last_error FROM workflow.tasks WHERE job_id = 'bytes'")
grep -q 'bad \\0 byte' <<<"$ERR" && grep -q $'\xef\xbf\xbd' <<<"$ERR" || fail "stderr with NUL and invalid UTF-8: $ERR"

# 6. A task whose job failed while its command ran: the failure is refused
#    (55000), counted, and the worker goes on (it used to die with exit 2).
job race race 2 0
RC=$(work race 'read -r t; case "$t" in *\"n\":0*) sleep 1 ;; *) sleep 3 ;; esac; exit 1')
[ "$RC" = 1 ] || fail "refused failure: worker exit $RC, want 1: $(cat "$TMP/err")"
grep -q '"errors":0' "$TMP/out" && grep -q '"refused":1' "$TMP/out" \
  || fail "refused failure: $(cat "$TMP/out") $(cat "$TMP/err")"

echo "cli_exec: ok"
