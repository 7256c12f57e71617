#!/usr/bin/env bash
# The `workflow` CLI as an outsider uses it, checked against README.md
# ("CLI `workflow`", "`workflow serve`"). Each check is a promise the README
# makes or what a serious CLI does; the script exits 1 when one is broken.
# Runs on its OWN throw-away cluster. About 15 s.
#   test/stress/cli_outside.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-cli-outside.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start >/dev/null || { echo "FAIL: cluster did not start"; exit 1; }
psql -qX -c "CREATE EXTENSION workflow" || exit 1

source scripts/lib/cli_checks.sh   # CLI, fail, ok, bad, sql

# 1. README "Exit status: ... 2 any error, printed on stderr ... (a bad argument ...)".
#    Argument errors exit with CLI11's own codes (105, 106, 109 ...).
for args in "" "--bogus health" "health extra" "worker --concurrency abc" \
            "worker --batch 0" "watch" "export --format xml" "pause"; do
  # shellcheck disable=SC2086
  timeout 10 $CLI $args >/dev/null 2>"$WORK/err"; rc=$?
  if [ "$rc" = 2 ] && [ -s "$WORK/err" ]; then ok "bad argument '$args': exit 2, message on stderr"
  else bad "bad argument '$args': exit $rc (README: 2), stderr: $(head -1 "$WORK/err")"; fi
done

# 2. `submit --tasks` takes counts of tasks: a negative count must be refused,
#    not stored as a job that can never end (no stage 1; or a stage 2 that never
#    gets tasks, so `worker --until-job` never returns).
for tasks in -1 2,-3; do
  id="neg${tasks//[,-]/_}"
  timeout 10 $CLI submit --tasks "$tasks" --id "$id" >/dev/null 2>"$WORK/err"; rc=$?
  n=$(sql "SELECT count(*) FROM workflow.jobs WHERE id = '$id'")
  if [ "$rc" != 0 ] && [ "$n" = 0 ]; then ok "submit --tasks $tasks refused (exit $rc)"
  else bad "submit --tasks $tasks: exit $rc, job created: $n (status $(sql "SELECT status FROM workflow.jobs WHERE id = '$id'"))"; fi
done

#    A count that is not a whole number >= 0 (or does not fit), or --params that
#    is not JSON: exit 2, a message naming the option and the value (it said
#    only 'stoi', or nlohmann's message without the option), no job created.
for tasks in a 1,,2 99999999999 1, ''; do
  timeout 10 $CLI submit --tasks "$tasks" --id badcount >/dev/null 2>"$WORK/err"; rc=$?
  if [ "$rc" = 2 ] && grep -qF -- "--tasks: '$tasks'" "$WORK/err" \
     && [ "$(sql "SELECT count(*) FROM workflow.jobs WHERE id = 'badcount'")" = 0 ]; then
    ok "submit --tasks '$tasks': exit 2, $(head -1 "$WORK/err")"
  else bad "submit --tasks '$tasks': exit $rc, stderr: $(head -1 "$WORK/err")"; fi
done
timeout 10 $CLI submit --params '[1' --id badparams >/dev/null 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && grep -q -- '--params: invalid JSON: .*parse error' "$WORK/err" \
   && [ "$(sql "SELECT count(*) FROM workflow.jobs WHERE id = 'badparams'")" = 0 ]; then
  ok "submit --params '[1': exit 2, $(head -1 "$WORK/err" | cut -c1-60)..."
else bad "submit --params '[1': exit $rc, stderr: $(head -1 "$WORK/err")"; fi

# 3. `worker` runs the built-in handlers noop, sleep, fail-once. Without
#    --types it must not report success for an application's task type it has
#    no handler for (it completed them with {} as if they were noop).
sql "SELECT workflow.create_job('thumbs', '{}', 1, 'appjob')" >/dev/null
sql "SELECT workflow.add_tasks('appjob', 1, 'thumbnail', ARRAY['{\"img\": 1}', '{\"img\": 2}']::jsonb[])" >/dev/null
timeout 20 $CLI worker --exit-when-idle 2 >"$WORK/w.json" 2>"$WORK/w.err"
done_n=$(sql "SELECT count(*) FROM workflow.tasks WHERE job_id = 'appjob' AND status = 'completed'")
queued_n=$(sql "SELECT count(*) FROM workflow.tasks WHERE job_id = 'appjob' AND status = 'queued' AND retry_count = 0")
if [ "$done_n" = 0 ] && [ "$queued_n" = 2 ]; then ok "worker left the 'thumbnail' tasks it has no handler for queued, untouched"
else bad "worker completed $done_n 'thumbnail' tasks it has no handler for, $queued_n left queued (job appjob: $(sql "SELECT status FROM workflow.jobs WHERE id = 'appjob'"))"; fi
#    A --types entry with no built-in handler and no --exec: exit 2, nothing claimed.
timeout 20 $CLI worker --types noop,thumbnail --exit-when-idle 1 >/dev/null 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && grep -q "thumbnail" "$WORK/err" \
   && [ "$(sql "SELECT count(*) FROM workflow.tasks WHERE job_id = 'appjob' AND status = 'queued'")" = 2 ]; then
  ok "worker --types noop,thumbnail without --exec: exit 2, $(head -1 "$WORK/err")"
else bad "worker --types noop,thumbnail without --exec: exit $rc, $(head -1 "$WORK/err")"; fi
#    With --exec the command runs every type it is given.
timeout 20 $CLI worker --types thumbnail --exec 'cat >/dev/null; echo "{\"done\": true}"' --until-job appjob >/dev/null 2>"$WORK/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(sql "SELECT count(*) FROM workflow.tasks WHERE job_id = 'appjob' AND status = 'completed' AND result_data = '{\"done\": true}'")" = 2 ]; then
  ok "worker --types thumbnail --exec CMD completed the 'thumbnail' tasks with CMD's result"
else bad "worker --types thumbnail --exec CMD: exit $rc, $(head -1 "$WORK/err")"; fi

# 4. `worker --until-job J --exit-when-idle N`: the worker loops stop after N
#    idle seconds, the process must too (it waited for J forever, no loop left).
sql "SELECT workflow.create_job('other', '{}', 1, 'idlejob')" >/dev/null
sql "SELECT workflow.add_tasks('idlejob', 1, 'not-mine', ARRAY['{}']::jsonb[])" >/dev/null
start=$(date +%s)
timeout 30 $CLI worker --types noop --exit-when-idle 2 --until-job idlejob >"$WORK/idle.json" 2>"$WORK/err"; rc=$?
took=$(( $(date +%s) - start ))
#    README: exit 1 (the job did not complete), "job_status" its status then.
if [ "$rc" = 1 ] && grep -qE '"job_status":"(pending|running)"' "$WORK/idle.json"; then
  ok "worker --until-job --exit-when-idle 2 exited after ${took}s (exit 1, job not ended: $(head -1 "$WORK/err" | sed 's/.*\] //'))"
else bad "worker --until-job idlejob --exit-when-idle 2: exit $rc after ${took}s (124: killed), $(cat "$WORK/idle.json")"; fi

# 5. README: "SIGINT/SIGTERM let the running commands finish" (--exec) and
#    start no new one. One loop claims all 5 tasks of 2 s (batch 32); a SIGINT
#    while the first runs must end the worker after that command (it ran all
#    5): 1 completed, the 4 not started given back at once with no attempt
#    counted ("released"), so a second worker finishes them long before their
#    300 s lease would end; nothing is completed twice.
sql "DELETE FROM workflow.jobs" >/dev/null
$CLI submit --type e --tasks 5 --task-type slow --id execjob >/dev/null
$CLI worker --types slow --concurrency 1 --exec "echo run >>'$WORK/runs'; sleep 2; echo '{}'" \
  >"$WORK/e1.json" 2>"$WORK/e1.err" &
pid=$!
for _ in $(seq 1 100); do [ -s "$WORK/runs" ] && break; sleep 0.1; done  # the first command runs
kill -INT "$pid"
timeout 30 tail --pid="$pid" -f /dev/null; wait "$pid"; rc=$?
field() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2" 2>/dev/null || echo '?'; }
runs=$(wc -l <"$WORK/runs" 2>/dev/null || echo 0)
c1=$(field "$WORK/e1.json" completed); r1=$(field "$WORK/e1.json" released)
if [ "$rc" = 0 ] && [ "$runs" = 1 ] && [ "$c1" = 1 ] && [ "$r1" = 4 ]; then
  ok "worker --exec after SIGINT: exit 0, ran 1 command, completed 1, released 4"
else bad "worker --exec after SIGINT: exit $rc, ran $runs of 5 commands, completed $c1, released $r1"; fi
timeout 60 $CLI worker --types slow --concurrency 2 --exec 'echo "{}"' --until-job execjob >"$WORK/e2.json" 2>&1
c2=$(field "$WORK/e2.json" completed)
if [ "$(sql "SELECT (SELECT count(*) FILTER (WHERE status = 'completed' AND retry_count = 0) = 5 FROM workflow.tasks WHERE job_id = 'execjob') AND (SELECT bool_and(ok) FROM workflow.check_invariants('execjob'))")" = t ] \
   && [ "$c1" != '?' ] && [ "$c2" != '?' ] && [ $((c1 + c2)) = 5 ]; then
  ok "after SIGINT: 5 tasks completed once ($c1 + $c2), none with an attempt counted, invariants hold"
else bad "after SIGINT: completed $c1 + $c2 (want 5), $(sql "SELECT string_agg(status || '/' || retry_count, ' ') FROM workflow.tasks WHERE job_id = 'execjob'"), invariants: $(sql "SELECT bool_and(ok) FROM workflow.check_invariants('execjob')")"; fi

# 6. `serve --listen HOST:PORT` with a port above 65535 must be refused; it
#    announced (and wrote to --port-file) 99999 while listening on 99999-65536.
#    A port that is no number said only 'stoi'. Both: exit 2 naming --listen.
for port in 99999 65536 -1 abc ''; do
  rm -f "$WORK/port"
  timeout 3 $CLI serve --listen "127.0.0.1:$port" --port-file "$WORK/port" >"$WORK/serve.out" 2>"$WORK/err"; rc=$?
  if [ "$rc" = 2 ] && grep -qF -- "--listen: port '$port'" "$WORK/err" && [ ! -e "$WORK/port" ]; then
    ok "serve --listen 127.0.0.1:$port refused (exit 2): $(head -1 "$WORK/err" | sed 's/.*\] //')"
  else bad "serve --listen 127.0.0.1:$port: exit $rc (port file: $(cat "$WORK/port" 2>/dev/null); $(head -1 "$WORK/serve.out") $(head -1 "$WORK/err"))"; fi
done
#    Port 0 stays "any free port": the port file names the one listened on.
timeout 2 $CLI serve --listen 127.0.0.1:0 --port-file "$WORK/port" >/dev/null 2>&1
p=$(cat "$WORK/port" 2>/dev/null)
if [ -n "$p" ] && [ "$p" -gt 0 ] && [ "$p" -le 65535 ]; then ok "serve --listen 127.0.0.1:0 listened on free port $p"
else bad "serve --listen 127.0.0.1:0: port file '$p'"; fi

# 7. README: `export --query` takes "a SELECT to export". A query that writes
#    ran (and deleted the jobs): it runs READ ONLY, 25006, exit 2, nothing
#    deleted, the -o file untouched. --table with --query: exit 2 (as pause
#    refuses --type with --job).
$CLI submit --tasks 1 --id keepme >/dev/null
echo keep >"$WORK/export.out"
$CLI export --query "DELETE FROM workflow.jobs RETURNING id" -o "$WORK/export.out" >/dev/null 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && grep -q 'SQLSTATE 25006' "$WORK/err" && [ "$(cat "$WORK/export.out")" = keep ] \
   && [ "$(sql "SELECT count(*) FROM workflow.jobs WHERE id = 'keepme'")" = 1 ]; then
  ok "export --query 'DELETE ... RETURNING': exit 2, 25006, nothing deleted, -o file untouched"
else bad "export --query 'DELETE ... RETURNING': exit $rc, jobs left $(sql "SELECT count(*) FROM workflow.jobs"), $(head -1 "$WORK/err")"; fi
$CLI export --table workflow.tasks --query "SELECT 1" >"$WORK/out" 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && [ ! -s "$WORK/out" ] && grep -q -- '--table excludes --query' "$WORK/err"; then
  ok "export --table with --query: exit 2, $(head -1 "$WORK/err")"
else bad "export --table with --query: exit $rc, $(head -1 "$WORK/err")"; fi
out=$($CLI export --query "SELECT id FROM workflow.jobs WHERE id = 'keepme'" --format json 2>/dev/null); rc=$?
if [ "$rc" = 0 ] && [ "$out" = '{"id":"keepme"}' ]; then ok "export --query SELECT still exports: $out"
else bad "export --query SELECT: exit $rc, '$out'"; fi

# 8. Connection settings libpq cannot parse are refused with libpq's reason,
#    never echoed: a connection string may hold a password.
$CLI --db 'host=127.0.0.1 password=s3cret-pw no_such_option=1' health --wait-ms 100 >/dev/null 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && ! grep -q 's3cret-pw' "$WORK/err" && grep -q 'no_such_option' "$WORK/err"; then
  ok "health with unparsable settings: exit 2, libpq's reason, no password echoed"
else bad "health with unparsable settings: exit $rc, stderr: $(cat "$WORK/err")"; fi

# 9. Settings libpq refuses before trying a server (a port that is not a
#    number, an unknown option) are refused at once by every command, not
#    retried as a lost connection: exit 2 with libpq's reason.
for db in 'postgresql://127.0.0.1:abc/postgres' 'host=127.0.0.1 no_such_option=1'; do
  timeout 20 $CLI --db "$db" submit --type bad-settings --tasks 1 >/dev/null 2>"$WORK/err"; rc=$?
  if [ "$rc" = 2 ] && grep -q 'invalid connection settings' "$WORK/err"; then
    ok "submit --db '$db': exit 2 at once, $(head -1 "$WORK/err")"
  else bad "submit --db '$db': exit $rc (124: still retrying after 20 s), not refused as invalid settings: $(head -3 "$WORK/err")"; fi
done

[ $fail = 0 ] && echo "all promises kept" || echo "some promises broken"
exit $fail
