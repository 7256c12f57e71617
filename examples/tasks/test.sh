#!/usr/bin/env bash
# examples/tasks: the task model on its own throw-away cluster. Filters,
# keyset pagination and search against the same question asked directly of
# the table; task_history has every change with old and new values and the
# acting user; CSV import via COPY (all records or none, with the problems
# listed); bad input gets a SQLSTATE and writes nothing; privileges; and the
# C++ program (tasks_demo) when its binary is given as $1.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib/test_lib.sh"
DEMO=${1:-$ROOT/build/examples/tasks_demo}
example_db wf_example_tasks
for f in schema functions import roles; do psql -qX -v ON_ERROR_STOP=1 -f "$HERE/$f.sql" >/dev/null; done
q "CREATE ROLE tasks_alice LOGIN IN ROLE tasks_app_client; CREATE ROLE outsider LOGIN"

# Users and sites (the admin's), then 300 tasks made by the application.
q "INSERT INTO tasks_app.users (telegram_id, name, timezone, role) VALUES
     (1001, 'Ann', 'Europe/Berlin', 'manager'), (1002, 'Bob', 'America/New_York', 'worker'),
     (1003, 'Cem', 'Asia/Tokyo', 'worker')"
q "INSERT INTO tasks_app.sites (name) VALUES ('North yard'), ('South depot')"
expect_error 22023 "INSERT INTO tasks_app.users (telegram_id, name, timezone) VALUES (9, 'x', 'Mars/Base')"
qas tasks_alice "SELECT count(tasks_app.create_task(1, 'task ' || i || CASE i % 10 WHEN 0 THEN ' boiler check' WHEN 1 THEN ' gas boiler service' ELSE ' routine' END,
    assignee => 1 + i % 3, site => CASE WHEN i % 4 = 0 THEN NULL ELSE 1 + i % 2 END,
    due_date => CASE WHEN i % 7 = 0 THEN NULL ELSE date '2025-03-01' + (i % 40) END,
    priority => (1 + i % 5)::smallint)) FROM generate_series(1, 300) i" >/dev/null
[ "$(q "SELECT count(*) FROM tasks_app.tasks")" = 300 ] || fail "300 tasks"
qas tasks_alice "SELECT count(tasks_app.set_status(2, id, CASE WHEN id % 5 = 0 THEN 'done' ELSE 'in_progress' END)) FROM tasks_app.tasks WHERE id % 3 = 0" >/dev/null

# Filters and pagination: list_tasks pages must concatenate to the direct answer.
ORDER="ORDER BY due_date NULLS LAST, id"
check_filter() {  # name list_tasks-args direct-where
  local want got="" after_due=NULL after_id=NULL page
  want=$(q "SELECT coalesce(string_agg(id::text, ',' $ORDER), '') FROM tasks_app.tasks WHERE $3")
  while :; do
    page=$(qas tasks_alice "SELECT coalesce(string_agg(id::text || '/' || coalesce(due_date::text, ''), ',' $ORDER), '')
                            FROM tasks_app.list_tasks($2 after_due => $after_due, after_id => $after_id, page_size => 7)")
    [ -z "$page" ] && break
    got+=${got:+,}$(sed 's#/[^,]*##g' <<<"$page")
    local last=${page##*,}
    after_id=${last%%/*}; after_due=${last#*/}
    after_due=${after_due:+"'$after_due'"}; after_due=${after_due:-NULL}
  done
  [ -n "$want" ] || fail "$1: the filter selects nothing (a test that cannot fail)"
  [ "$got" = "$want" ] || fail "$1: pages give $got, expected $want"
}
check_filter "assignee" "assignee => 2," "assignee_id = 2"
check_filter "status" "status => 'in_progress'," "status = 'in_progress'"
check_filter "site" "site => 1," "site_id = 1"
check_filter "date range" "due_from => '2025-03-10', due_to => '2025-03-20'," "due_date BETWEEN '2025-03-10' AND '2025-03-20'"
check_filter "all filters" "assignee => 3, status => 'open', site => 2, due_from => '2025-03-05', due_to => '2025-04-30'," \
  "assignee_id = 3 AND status = 'open' AND site_id = 2 AND due_date BETWEEN '2025-03-05' AND '2025-04-30'"
check_filter "search" "search => 'boiler'," "title LIKE '%boiler%'"
check_filter "search phrase" "search => '\"gas boiler\"'," "title LIKE '%gas boiler%'"
check_filter "search minus" "search => 'boiler -gas'," "title LIKE '%boiler%' AND title NOT LIKE '%gas%'"
check_filter "everything, NULL dates last" "" "true"
[ "$(qas tasks_alice "SELECT count(*) FROM tasks_app.list_tasks(search => \$\$'); DROP TABLE tasks_app.tasks; --\$\$)")" = 0 ] || fail "injection text found rows"
[ "$(q "SELECT count(*) FROM tasks_app.tasks")" = 300 ] || fail "tasks after an injection attempt"
expect_error 22023 "SELECT * FROM tasks_app.list_tasks(status => 'closed'' OR true --')" tasks_alice
expect_error 22023 "SELECT * FROM tasks_app.list_tasks(page_size => 100000)" tasks_alice

# History: every change, old and new values, acting user.
T=$(qas tasks_alice "SELECT tasks_app.create_task(1, 'Fix the gate', assignee => 2, due_date => '2025-06-01', repeat_interval => '7 days')")
qas tasks_alice "SELECT tasks_app.update_task(3, $T, '{\"title\": \"Fix the north gate\", \"priority\": 1}')" >/dev/null
qas tasks_alice "SELECT tasks_app.update_task(1, $T, '{\"assignee_id\": 3, \"description\": null}')" >/dev/null
qas tasks_alice "SELECT tasks_app.set_status(2, $T, 'in_progress')" >/dev/null
NEXT=$(qas tasks_alice "SELECT tasks_app.set_status(3, $T, 'done')")
HIST=$(qas tasks_alice "SELECT action || '|' || coalesce(user_id::text, '-') || '|' || coalesce((SELECT string_agg(k || '=' || coalesce(old_values->>k, 'null') || '>' || coalesce(new_values->>k, 'null'), ';' ORDER BY k) FROM jsonb_object_keys(coalesce(new_values, '{}')) k), '')
                         FROM tasks_app.history($T) WHERE action = 'update'")
WANT="update|3|priority=3>1;title=Fix the gate>Fix the north gate
update|1|assignee_id=2>3
update|2|status=open>in_progress
update|3|completed_at=null>$(q "SELECT to_jsonb(completed_at)#>>'{}' FROM tasks_app.tasks WHERE id = $T");status=in_progress>done"
[ "$HIST" = "$WANT" ] || fail "history of $T:
$HIST
expected:
$WANT"
[ "$(qas tasks_alice "SELECT action || '|' || user_id || '|' || (new_values->>'title') FROM tasks_app.history($T) WHERE action = 'insert'")" = "insert|1|Fix the gate" ] || fail "insert in history"
[ "$(q "SELECT due_date FROM tasks_app.tasks WHERE id = $NEXT")" = 2025-06-08 ] || fail "repeat: the next occurrence is due a week later"
[ "$(qas tasks_alice "SELECT count(*) FROM tasks_app.task_history WHERE task_id = $T")" = 5 ] || fail "task_history view"
# Bad input writes nothing, and leaves no history.
BEFORE=$(q "SELECT count(*) FROM workflow.audit_log")
expect_error P0002 "SELECT tasks_app.create_task(99, 'x')" tasks_alice
expect_error 22023 "SELECT tasks_app.create_task(1, '   ')" tasks_alice
expect_error 23514 "SELECT tasks_app.create_task(1, 'x', priority => 9::smallint)" tasks_alice
expect_error 23503 "SELECT tasks_app.create_task(1, 'x', site => 42)" tasks_alice
expect_error 22023 "SELECT tasks_app.update_task(1, $T, '{\"status\": \"done\"}')" tasks_alice
expect_error 22023 "SELECT tasks_app.set_status(1, $T, 'finished')" tasks_alice
expect_error P0002 "SELECT tasks_app.set_status(1, 123456, 'done')" tasks_alice
[ "$(q "SELECT count(*) FROM workflow.audit_log")" = "$BEFORE" ] || fail "failed calls wrote history"

# CSV import through COPY: all or nothing.
COUNT=$(q "SELECT count(*) FROM tasks_app.tasks")
COPY="COPY pg_temp.task_import (title, description, assignee_telegram_id, site, due_date, due_time, reminder_date, reminder_time, status, priority, repeat_interval) FROM STDIN (FORMAT csv, HEADER true)"
import() { psql -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "SET ROLE tasks_alice" -c "BEGIN" -c "SELECT tasks_app.begin_import()" -c "$COPY" -c "SELECT tasks_app.import_tasks(1)" -c "COMMIT" < "$1" 2>&1; }
OUT=$(import "$HERE/sample.csv") || fail "sample.csv: $OUT"
[ "$(tail -n1 <<<"$OUT")" = 4 ] || fail "sample.csv imported $OUT"
[ "$(q "SELECT description FROM tasks_app.tasks WHERE title = 'Order parts, \"urgent\"'")" = "$(printf 'line one\nline two')" ] || fail "quoted CSV fields"
[ "$(q "SELECT string_agg(status || '/' || (completed_at IS NOT NULL), ',' ORDER BY id) FROM tasks_app.tasks WHERE id > (SELECT max(id) - 4 FROM tasks_app.tasks)")" = "open/false,done/true,open/false,in_progress/false" ] || fail "statuses imported"
OUT=$(import "$HERE/sample_bad.csv") && fail "sample_bad.csv was imported: $OUT"
grep -q "ERROR:  22023: tasks_app.import_tasks: 5 problem(s)" <<<"$OUT" || fail "bad CSV error: $OUT"
for p in "record 1: due_date '2025-02-30' is not a date" "record 2: site 'Nowhere' is not a known site" \
         "record 3: priority '7' is not 1..5" "record 3: title is empty" "record 4: assignee_telegram_id '42' is not a known user"; do
  grep -qF "$p" <<<"$OUT" || fail "bad CSV: '$p' not listed in: $OUT"
done
[ "$(q "SELECT count(*) FROM tasks_app.tasks")" = $((COUNT + 4)) ] || fail "a failed import wrote rows"

# Privileges: the client may not delete or change the schema; others see nothing.
expect_error 42501 "DELETE FROM tasks_app.tasks" tasks_alice
expect_error 42501 "INSERT INTO tasks_app.users (telegram_id, name) VALUES (5, 'x')" tasks_alice
expect_error 42501 "CREATE TABLE tasks_app.x (i int)" tasks_alice
expect_error 42501 "SELECT * FROM tasks_app.tasks" outsider
expect_error 42501 "SELECT tasks_app.create_task(1, 'x')" outsider

# The C++ program on the client library.
if [ -x "$DEMO" ]; then
  OUT=$(DATABASE_URL=${DATABASE_URL/postgres@/tasks_alice@} "$DEMO" 1 "$HERE/sample.csv" 2>&1) || fail "tasks_demo: $OUT"
  grep -q '^created task [0-9]*$' <<<"$OUT" || fail "tasks_demo create: $OUT"
  grep -q '^imported 4$' <<<"$OUT" || fail "tasks_demo import: $OUT"
  grep -q '^history: insert by 1, update by 1$' <<<"$OUT" || fail "tasks_demo history: $OUT"
else
  fail "tasks_demo not built ($DEMO)"
fi
echo "examples/tasks: all checks passed"
