#!/usr/bin/env bash
# /metrics of `workflow serve` (issue 14), self-contained: its own cluster,
# a serve process run by a role that holds workflow_monitor alone (no
# --allow-actions), and workers on a job. Checks: the exposition passes
# `promtool check metrics` while the workers run; with the workers stopped
# mid-job (the state then holds still) every figure equals what the views
# say; /healthz and /readyz answer; an action is refused (403) and writes
# nothing; GET /events streams a panel and is counted; a method a path does
# not serve is 405 with Allow; a request addressed to another host name
# (DNS rebinding) is 403 unless --allow-host names it. Prints "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
[ -x build/workflow ] || scripts/build
TMP=$(mktemp -d /tmp/wf_metrics.XXXXXX)
SERVE_PID=; SERVE2_PID=; WORKER_PID=
cleanup() {
  for p in $SERVE_PID $SERVE2_PID $WORKER_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null; cluster_stop; rm -rf "$TMP"
}
trap cleanup EXIT
cluster_start
PASSED=0; FAILED=0
check() {  # name, then a command that must succeed
  local name=$1; shift
  if "$@"; then PASSED=$((PASSED + 1)); echo "ok - $name"; else FAILED=$((FAILED + 1)); echo "not ok - $name"; fi
}

psql -qX -v ON_ERROR_STOP=1 -o /dev/null <<'SQL'
CREATE EXTENSION workflow;
CREATE ROLE wf_exporter LOGIN;
GRANT workflow_monitor TO wf_exporter;
-- A dead task (and so a failed job) and a stale claim.
SELECT workflow.create_job('etl', '{}', 1, 'dead-job');
SELECT workflow.add_tasks('dead-job', 1, 'boom', ARRAY['{}'::jsonb], true, 0, 0);
SELECT count(*) FROM workflow.claim_tasks('w0', 1, ARRAY['boom']);
SELECT workflow.fail_task('dead-job:1:0', 'dead-job', 'boom "quoted"\nsecond line');
SELECT workflow.create_job('etl', '{}', 1, 'stale-job');
SELECT workflow.add_tasks('stale-job', 1, 'slow "q"', ARRAY['{}'::jsonb, '{}'::jsonb]);
SELECT count(*) FROM workflow.claim_tasks('w-gone', 1, ARRAY['slow "q"'], '1 second');
SQL
JOB=$(build/workflow submit --type etl --tasks 200,3000,100 --task-type sleep)

build/workflow --db "postgresql://wf_exporter@127.0.0.1:$PGPORT/postgres" serve --listen 127.0.0.1:0 \
  --port-file "$TMP/port" --cache-ms 0 --scan-cache-ms 0 --count-cache-ms 0 >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
URL=http://127.0.0.1:$(cat "$TMP/port")

# --batch 1: stopped, each loop finishes the task it runs and gives back one
# it claimed but did not start (1 s lease: a stale claim until reclaimed).
build/workflow worker -c 2 --batch 1 --types sleep >/dev/null 2>&1 &
WORKER_PID=$!
sleep 3
curl -sf "$URL/metrics" >"$TMP/running.txt"
check "promtool check metrics, workers running" promtool check metrics <"$TMP/running.txt"
check "completions under way" grep -qE '^workflow_tasks\{task_type="sleep",status="completed"\} [1-9]' "$TMP/running.txt"
kill "$WORKER_PID"; wait "$WORKER_PID" 2>/dev/null || true; WORKER_PID=
# Stopped: a claim it held returns after its lease; nothing else moves.
sleep 1.5
curl -sf "$URL/metrics" >"$TMP/m.txt"
check "promtool check metrics, workers stopped" promtool check metrics <"$TMP/m.txt"

# Each metric sample equals the view's figure, read right after.
metric() { K="$1 " awk 'index($0, ENVIRON["K"]) == 1 {print $NF; exit}' "$TMP/m.txt"; }
view() { psql -qXAt -c "$1"; }
same() {  # metric-line-prefix, sql
  local m v; m=$(metric "$1"); v=$(view "$2")
  [ -n "$m" ] && [ "$m" = "$v" ] || { echo "  $1: metrics say '$m', the view '$v'"; return 1; }
}
mismatch=0
while IFS='|' read -r type status n; do
  esc=${type//\"/\\\"}
  same "workflow_tasks{task_type=\"$esc\",status=\"$status\"}" \
       "SELECT tasks FROM workflow.queue_depth WHERE task_type = \$\$$type\$\$ AND status = '$status'" || mismatch=1
done < <(view "SELECT task_type, status, tasks FROM workflow.queue_depth")
check "workflow_tasks = workflow.queue_depth, every type and status" [ "$mismatch" = 0 ]
check "workflow_task_completions_total = completed tasks of the view" \
  same 'workflow_task_completions_total{task_type="sleep"}' \
       "SELECT tasks FROM workflow.queue_depth WHERE task_type = 'sleep' AND status = 'completed'"
check "workflow_task_failures_total = dead tasks of the view" \
  same 'workflow_task_failures_total{task_type="boom"}' \
       "SELECT tasks FROM workflow.queue_depth WHERE task_type = 'boom' AND status = 'failed'"
check "workflow_jobs{status=failed} = job_summary" \
  same 'workflow_jobs{status="failed"}' "SELECT count(*) FROM workflow.job_summary WHERE status = 'failed'"
check "workflow_jobs{status=running} = job_summary" \
  same 'workflow_jobs{status="running"}' "SELECT count(*) FROM workflow.job_summary WHERE status = 'running'"
check "workflow_stale_claims = stale_claims (the claim of w-gone, and any task the stopped worker gave back)" \
  same workflow_stale_claims "SELECT count(*) FROM workflow.stale_claims"
check "... w-gone's claim among them" \
  [ "$(psql -qXAt -c "SELECT count(*) FROM workflow.stale_claims WHERE claimed_by = 'w-gone'")" = 1 ]
check "... and no other but the stopped worker's sleep tasks" \
  [ "$(psql -qXAt -c "SELECT count(*) FROM workflow.stale_claims WHERE claimed_by <> 'w-gone' AND task_type <> 'sleep'")" = 0 ]
check "workflow_dead_tasks = dead tasks (1)" \
  same workflow_dead_tasks "SELECT count(*) FROM workflow.failed_tasks WHERE status = 'failed'"
check "workflow_stage_completion_seconds_count = stage_latency" \
  same workflow_stage_completion_seconds_count "SELECT count(*) FROM workflow.stage_latency"
check "at least one stage completed" [ "$(metric workflow_stage_completion_seconds_count)" -ge 1 ]
check "workflow_stage_completion_seconds_bucket le=60 = stage_latency" \
  same 'workflow_stage_completion_seconds_bucket{le="60"}' \
       "SELECT count(*) FROM workflow.stage_latency WHERE seconds <= 60"
check "workflow_runnable_tasks{sleep} = oldest_runnable_task" \
  same 'workflow_runnable_tasks{task_type="sleep"}' \
       "SELECT runnable_tasks FROM workflow.oldest_runnable_task WHERE task_type = 'sleep'"
check "oldest runnable age is a positive number" \
  awk '$1 ~ /^workflow_oldest_runnable_task_age_seconds\{task_type="sleep"\}$/ && $2 > 0 {f=1} END {exit !f}' "$TMP/m.txt"
check "workflow_up 1" [ "$(metric workflow_up)" = 1 ]
check "a label with quotes is escaped" grep -qF 'workflow_tasks{task_type="slow \"q\"",status="claimed"} 1' "$TMP/m.txt"
check "/healthz" curl -sf "$URL/healthz" -o /dev/null
check "/readyz (a workflow_monitor role may read the views)" curl -sf "$URL/readyz" -o /dev/null
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Authorization: Bearer x' \
       -d "{\"job_id\": \"$JOB\"}" "$URL/action/cancel-job")
check "an action without --allow-actions: 403" [ "$code" = 403 ]
check "... and the job was not cancelled" [ "$(view "SELECT status FROM workflow.jobs WHERE id = '$JOB'")" = running ]
check "the dashboard renders for a workflow_monitor role" curl -sf "$URL/job?id=$JOB" -o /dev/null
# A method a known path does not serve: 405 naming the ones it does (Allow),
# with or without a body; an unknown path stays 404.
answer() {  # METHOD PATH [curl options...] -> "CODE ALLOW"
  local m=$1 p=$2; shift 2
  curl -s -o /dev/null -D - -w '%{http_code}' -X "$m" "$@" "$URL$p" |
    awk -F': *' 'tolower($1) == "allow" {sub(/\r$/, "", $2); a=$2} /^[0-9]+$/ {c=$0} END {print c " " a}'
}
check "POST /metrics (no body): 405, Allow: GET, HEAD" [ "$(answer POST /metrics)" = "405 GET, HEAD" ]
check "POST /job with a body: 405, Allow: GET, HEAD" [ "$(answer POST "/job?id=$JOB" -d x=1)" = "405 GET, HEAD" ]
check "DELETE /: 405, Allow: GET, HEAD" [ "$(answer DELETE /)" = "405 GET, HEAD" ]
check "GET /action/cancel-job: 405, Allow: POST" [ "$(answer GET /action/cancel-job)" = "405 POST" ]
check "POST /no-such-page: 404" [ "$(answer POST /no-such-page)" = "404 " ]
# DNS rebinding: on loopback the server answers only requests addressed to an
# IP literal, localhost or a name under it, or a name given with --allow-host.
PORT=$(cat "$TMP/port")
host_code() {  # HOST [URL] -> the status of GET /healthz sent with that Host header
  curl -s -o /dev/null -w '%{http_code}' -H "Host: $1" "${2:-$URL}/healthz"
}
check "Host: rebound.example: 403" [ "$(host_code "rebound.example:$PORT")" = 403 ]
check "Host: rebound.example with a page path: 403" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' -H 'Host: rebound.example' "$URL/job?id=$JOB")" = 403 ]
check "Host: 127.0.0.1, localhost, app.localhost, [::1]: 200" \
  [ "$(host_code "127.0.0.1:$PORT") $(host_code "localhost:$PORT") $(host_code app.localhost) $(host_code "[::1]:$PORT")" = "200 200 200 200" ]
build/workflow --db "postgresql://wf_exporter@127.0.0.1:$PGPORT/postgres" serve --listen 127.0.0.1:0 \
  --port-file "$TMP/port2" --allow-host Dash.Example. >"$TMP/serve2.log" 2>&1 &
SERVE2_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port2" ] && break; sleep 0.1; done
URL2=http://127.0.0.1:$(cat "$TMP/port2")
check "--allow-host Dash.Example.: Host dash.example answered, rebound.example 403" \
  [ "$(host_code "dash.example:$(cat "$TMP/port2")" "$URL2") $(host_code rebound.example "$URL2")" = "200 403" ]
kill "$SERVE2_PID"; wait "$SERVE2_PID" 2>/dev/null || true
# A live panel as Server-Sent Events: its first event within a refresh, and
# the stream in the serve's own metrics; an unknown panel is 404.
curl -sN --max-time 3 "$URL/events?panel=%2Fpanel%2Fjob%3Fid%3D$JOB" >"$TMP/events.txt" || true
check "GET /events: a panel event with the job's stage rows" \
  grep -qE '^data: .*<tr class="stage"' "$TMP/events.txt"
check "GET /events?panel=/nope: 404" \
  [ "$(curl -s -o /dev/null -w '%{http_code}' "$URL/events?panel=%2Fnope")" = 404 ]
curl -sf "$URL/metrics" >"$TMP/m2.txt"
check "promtool check metrics, with the event stream counters" promtool check metrics <"$TMP/m2.txt"
check "workflow_serve_events_total counts the event" \
  awk '$1 == "workflow_serve_events_total" && $2 >= 1 {f=1} END {exit !f}' "$TMP/m2.txt"
echo "$PASSED passed, $FAILED failed"
[ "$FAILED" = 0 ]
