#!/usr/bin/env bash
# examples/survey-bot on its own throw-away cluster: the weekly flow across
# both DST changes of Europe/Berlin (answers just before and after local
# midnight on the changeover Sundays land in the right local week, where
# weeks cut in UTC would not), per-channel time zones (one instant, three
# weeks), the weekly report's exact contents, clean-up of idle channels, an
# audit row for every write with who made it, bad input and privileges; and
# survey_bot_demo (the C++ program on the client library, $1).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib/test_lib.sh"
DEMO=${1:-$ROOT/build/examples/survey_bot_demo}
example_db wf_example_survey_bot
for f in schema functions roles; do psql -qX -v ON_ERROR_STOP=1 -f "$HERE/$f.sql" >/dev/null; done
q "CREATE ROLE bot LOGIN IN ROLE survey_bot_app; CREATE ROLE janitor LOGIN IN ROLE survey_bot_maintainer;
   CREATE ROLE outsider LOGIN"
bot() { qas bot "$1"; }
step() {  # CHANNEL STEP VALUE 'LOCAL TIME' -> week_start
  bot "SELECT week_start FROM survey_bot.record_step('$1', '$2', '$3', 'U0ANN', timestamptz '$4')"
}
week_of() { [ "$(step "$@")" = "$5" ] || fail "$1 $2 at $4: expected week $5, got $(step "$@")"; }

[ "$(bot "SELECT survey_bot.add_channel(' c0berlin1 ', 'Berlin team', 'europe/berlin', 'U0ANN')")" = C0BERLIN1 ] \
  || fail "add_channel normalises the id"
bot "SELECT survey_bot.add_channel('C0NEWYORK', 'New York team', 'America/New_York', 'U0ANN'),
            survey_bot.add_channel('C0TOKYO01', 'Tokyo team', 'Asia/Tokyo', 'U0ANN')" >/dev/null

# Spring: Sunday 2026-03-29 02:00 -> 03:00 in Berlin.
week_of C0BERLIN1 day_off_thisweek true '2026-03-23 00:00 Europe/Berlin' 2026-03-23   # Sunday 23:00Z
week_of C0BERLIN1 connects 3 '2026-03-29 01:59 Europe/Berlin' 2026-03-23              # before the change
week_of C0BERLIN1 'Workload Today' '{"hours": 6}' '2026-03-29 23:30 Europe/Berlin' 2026-03-23  # CEST, 21:30Z
week_of C0BERLIN1 workload_today '{"hours": 7}' '2026-03-30 00:30 Europe/Berlin' 2026-03-30   # Sunday 22:30Z
week_of C0BERLIN1 workload_today '{"hours": 8}' '2026-04-05 23:59 Europe/Berlin' 2026-03-30   # same week: replaces 7
# Autumn: Sunday 2026-10-25 03:00 -> 02:00.
week_of C0BERLIN1 workload_nextweek '{"hours": 30}' '2026-10-25 23:30 Europe/Berlin' 2026-10-19  # CET, 22:30Z
week_of C0BERLIN1 connects_thisweek 5 '2026-10-26 00:10 Europe/Berlin' 2026-10-26      # Sunday 23:10Z
# One instant, three channels, their own weeks: 2026-03-29 22:30Z.
week_of C0NEWYORK workload_today '{"hours": 5}' '2026-03-29 22:30Z' 2026-03-23   # Sunday 18:30 EDT
week_of C0TOKYO01 workload_today '{"hours": 4}' '2026-03-29 22:30Z' 2026-03-30   # Monday 07:30 JST
# The same in UTC would be the week of 2026-03-23 for all: the test can tell.
[ "$(q "SELECT workflow.survey_week_start('2026-03-29 22:30Z', 'UTC')")" = 2026-03-23 ] || fail "UTC week"

# A channel's week and the weekly reports.
[ "$(bot "SELECT string_agg(step_name || '=' || value, ',') FROM survey_bot.channel_week('C0BERLIN1', '2026-03-30 00:00 Europe/Berlin')")" \
  = 'workload_today={"hours": 8}' ] || fail "channel_week"
REPORT=$(bot "SELECT channel_id || '|' || name || '|' || time_zone || '|' || answered || '|' || steps || '|' || array_to_string(missing, ',')
              FROM survey_bot.weekly_report('2026-03-23')")
WANT='C0BERLIN1|Berlin team|Europe/Berlin|3|{"workload_today": {"hours": 6}, "day_off_thisweek": true, "connects_thisweek": 3}|day_off_nextweek,workload_nextweek
C0NEWYORK|New York team|America/New_York|1|{"workload_today": {"hours": 5}}|connects_thisweek,day_off_nextweek,day_off_thisweek,workload_nextweek
C0TOKYO01|Tokyo team|Asia/Tokyo|0|{}|connects_thisweek,day_off_nextweek,day_off_thisweek,workload_nextweek,workload_today'
[ "$REPORT" = "$WANT" ] || fail "report of 2026-03-23:
$REPORT
expected:
$WANT"
[ "$(bot "SELECT string_agg(channel_id || ':' || answered, ',') FROM survey_bot.weekly_report('2026-03-30')")" = C0BERLIN1:1,C0NEWYORK:0,C0TOKYO01:1 ] \
  || fail "report of 2026-03-30"
[ "$(bot "SELECT string_agg(channel_id || ':' || answered, ',') FROM survey_bot.weekly_report('2026-10-26')")" = C0BERLIN1:1,C0NEWYORK:0,C0TOKYO01:0 ] \
  || fail "report of 2026-10-26"
# A new zone applies to later answers; recorded weeks stay.
bot "SELECT survey_bot.set_time_zone('C0TOKYO01', 'America/Los_Angeles', 'U0BOB')" >/dev/null
week_of C0TOKYO01 workload_today '{"hours": 3}' '2026-03-29 22:30Z' 2026-03-23   # Sunday 15:30 PDT
[ "$(q "SELECT string_agg(week_start || '=' || (value->>'hours'), ',' ORDER BY week_start) FROM workflow.survey_steps WHERE session_id = 'C0TOKYO01'")" \
  = 2026-03-23=3,2026-03-30=4 ] || fail "zone change moved recorded weeks"

# Every write is audited, with who answered.
[ "$(q "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'survey_steps' AND actor = 'U0ANN'")" = 10 ] \
  || fail "step writes audited: $(q "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'survey_steps'")"
[ "$(q "SELECT (old_values->'value')::text || '>' || (new_values->'value')::text FROM workflow.audit_log WHERE table_name = 'survey_steps'
        AND operation = 'UPDATE' AND new_values->'value' = '{\"hours\": 8}'")" = '{"hours": 7}>{"hours": 8}' ] \
  || fail "the replaced answer's audit row"
[ "$(q "SELECT string_agg(operation || ':' || actor || ':' || coalesce(old_values->>'time_zone', '') || '>' || (new_values->>'time_zone'), ',' ORDER BY id)
        FROM workflow.audit_log WHERE table_name = 'survey_sessions' AND row_key->>'session_id' = 'C0TOKYO01'")" \
  = "INSERT:U0ANN:>Asia/Tokyo,UPDATE:U0BOB:Asia/Tokyo>America/Los_Angeles" ] || fail "zone changes audited"
[ "$(q "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'channels' AND operation = 'INSERT' AND actor = 'U0ANN'")" = 3 ] \
  || fail "channels audited"

# Bad input: a SQLSTATE, nothing written.
AUDIT=$(q "SELECT count(*) FROM workflow.audit_log")
expect_error 22023 "SELECT * FROM survey_bot.record_step('C0BERLIN1', 'Workload Tomorrow', '1', 'U0ANN')" bot
expect_error 22023 "SELECT * FROM survey_bot.record_step('U0BERLIN1', 'workload_today', '1', 'U0ANN')" bot
expect_error P0002 "SELECT * FROM survey_bot.record_step('C0UNKNOWN', 'workload_today', '1', 'U0ANN')" bot
expect_error 22023 "SELECT * FROM survey_bot.record_step('C0BERLIN1', 'workload_today', '1', ''' OR true --')" bot
expect_error 22023 "SELECT survey_bot.add_channel('C0MARSBASE', 'Mars', 'Mars/Olympus', 'U0ANN')" bot
expect_error 22023 "SELECT * FROM survey_bot.weekly_report('2026-03-24')" bot
expect_error 22004 "SELECT * FROM survey_bot.record_step('C0BERLIN1', 'workload_today', NULL, 'U0ANN')" bot
[ "$(q "SELECT count(*) FROM workflow.audit_log")" = "$AUDIT" ] || fail "failed calls wrote"
[ "$(q "SELECT count(*) FROM workflow.survey_sessions")" = 3 ] || fail "a failed call created a session"

# Privileges.
expect_error 42501 "SELECT survey_bot.cleanup('1 day')" bot
expect_error 42501 "DELETE FROM survey_bot.channels" bot
expect_error 42501 "DELETE FROM workflow.survey_steps" bot
expect_error 42501 "SELECT * FROM survey_bot.weekly_report('2026-03-23')" janitor
expect_error 42501 "SELECT * FROM survey_bot.weekly_report('2026-03-23')" outsider
expect_error 42501 "SELECT survey_bot.add_channel('C0EVIL0001', 'x', 'UTC', 'U0X')" outsider

# Clean-up: an idle channel goes with its answers; an active one stays.
bot "SELECT survey_bot.add_channel('C0IDLE001', 'Idle', 'UTC', 'U0ANN'), survey_bot.add_channel('C0ACTIVE1', 'Active', 'UTC', 'U0ANN')" >/dev/null
bot "SELECT count(*) FROM survey_bot.record_step('C0IDLE001', 'workload_today', '1', 'U0ANN', now() - interval '200 days') a,
            survey_bot.record_step('C0ACTIVE1', 'workload_today', '1', 'U0ANN', now() - interval '1 day') b" >/dev/null
# (the fixture: both channels were added 400 days ago)
q "UPDATE workflow.survey_sessions SET created_at = now() - interval '400 days' WHERE session_id IN ('C0IDLE001', 'C0ACTIVE1')"
[ "$(qas janitor "SELECT survey_bot.cleanup('90 days')")" = 1 ] || fail "cleanup count"
[ "$(q "SELECT string_agg(channel_id, ',' ORDER BY channel_id) FROM survey_bot.channels")" = C0ACTIVE1,C0BERLIN1,C0NEWYORK,C0TOKYO01 ] \
  || fail "channels after clean-up"
[ "$(q "SELECT count(*) FROM workflow.survey_steps WHERE session_id = 'C0IDLE001'")" = 0 ] || fail "idle answers kept"
[ "$(q "SELECT string_agg(table_name, ',' ORDER BY table_name) FROM workflow.audit_log WHERE operation = 'DELETE'
        AND actor = 'survey-bot-maintenance' AND (row_key->>'session_id' = 'C0IDLE001' OR row_key->>'channel_id' = 'C0IDLE001'
                                                  OR old_values->>'session_id' = 'C0IDLE001')")" = channels,survey_sessions,survey_steps ] \
  || fail "clean-up audited"
expect_error 22023 "SELECT survey_bot.cleanup('-1 day')" janitor

# The C++ program: pool, retries, health; records from several threads, reports.
[ -x "$DEMO" ] || fail "survey_bot_demo not built ($DEMO)"
OUT=$(DATABASE_URL=${DATABASE_URL/postgres@/bot@} "$DEMO" C0DEMO001 Europe/Berlin 2>&1) || fail "survey_bot_demo: $OUT"
grep -q '^health: workflow [0-9.]*, validate ok$' <<<"$OUT" || fail "demo health: $OUT"
grep -q '^C0DEMO001 (Europe/Berlin): 3 answered, missing day_off_nextweek,day_off_thisweek$' <<<"$OUT" || fail "demo report: $OUT"
[ "$(q "SELECT count(*) FROM workflow.survey_steps WHERE session_id = 'C0DEMO001'")" = 3 ] || fail "demo rows"
[ "$(q "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'survey_steps' AND actor LIKE 'U0DEMO%'")" = 3 ] || fail "demo audit"
echo "$OUT" | sed "s/^/  demo: /"
echo "examples/survey-bot: all checks passed"
