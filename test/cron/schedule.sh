#!/usr/bin/env bash
# Recurring jobs on pg_cron (workflow.schedule, src/sql/45_engine_schedule.sql)
# on its own cluster with pg_cron preloaded: a producer schedules a job every
# minute; pg_cron really fires it (the job appears within ~75 s, owned by the
# producer, stage 1's tasks added); 16 connections firing the same schedule
# at once make one job with its tasks once; hostile input and other roles get
# their SQLSTATE and write nothing; a database without pg_cron gets 55000;
# pg_dump keeps the schedules; unschedule removes pg_cron's job.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "FAIL: $*"; exit 1; }
nice scripts/build
source scripts/lib/cluster.sh
trap cluster_stop EXIT
cluster_start shared_preload_libraries=pg_cron cron.database_name=wf_cron >/dev/null
psql -qX -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE DATABASE wf_cron;
CREATE DATABASE wf_no_cron;
CREATE ROLE cron_producer LOGIN;
CREATE ROLE cron_other LOGIN;
CREATE ROLE cron_admin LOGIN;
CREATE ROLE cron_plain LOGIN;
SQL
psql -qX -v ON_ERROR_STOP=1 -d wf_cron -c "CREATE EXTENSION workflow" -c "CREATE EXTENSION pg_cron"
psql -qX -v ON_ERROR_STOP=1 -d wf_no_cron -c "CREATE EXTENSION workflow"
psql -qX -v ON_ERROR_STOP=1 -d wf_cron -c "GRANT workflow_producer TO cron_producer, cron_other" \
  -c "GRANT workflow_admin TO cron_admin" -c "GRANT USAGE ON SCHEMA workflow TO cron_plain"
as() { local role=$1 db=$2; shift 2; psql -qXAt -v ON_ERROR_STOP=1 -U "$role" -d "$db" -c "$@"; }
# The SQLSTATE a statement raises as a role ("ok" when it succeeds).
state_of() {  # role db sql
  local out
  if out=$(psql -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -U "$1" -d "$2" -c "\\set VERBOSITY verbose" -c "$3" 2>&1); then
    echo ok
  else
    grep -oE 'ERROR: +[0-9A-Z]{5}' <<<"$out" | head -1 | grep -oE '[0-9A-Z]{5}$' || echo "?: $out"
  fi
}
expect() {  # state role db sql
  local got; got=$(state_of "$2" "$3" "$4")
  [ "$got" = "$1" ] || fail "$4 as $2: got $got, want $1"
}

# A producer schedules a job every minute, with stage 1's two tasks.
as cron_producer wf_cron "SELECT workflow.schedule('every-minute', '* * * * *', 'report', '{\"k\": 1}', 2,
                            'export', ARRAY['{}', '{\"part\": 2}']::jsonb[])" >/dev/null
[ "$(as postgres wf_cron "SELECT command FROM cron.job WHERE jobname = 'workflow:every-minute'")" = \
  "SELECT workflow.fire_schedule('every-minute')" ] || fail "pg_cron has no job for the schedule"
[ "$(as cron_producer wf_cron "SELECT name || ' ' || owner || ' ' || active FROM workflow.list_schedules()")" = \
  "every-minute cron_producer true" ] || fail "list_schedules as its owner"
[ "$(as cron_other wf_cron "SELECT count(*) FROM workflow.list_schedules()")" = 0 ] \
  || fail "another producer sees the schedule"

# Hostile input and other roles: a SQLSTATE, nothing written.
expect 22023 cron_producer wf_cron "SELECT workflow.schedule('bad', 'every full moon', 'report')"
expect 22023 cron_producer wf_cron "SELECT workflow.schedule('x', '* * * * *', 'report', task_type => 'a')"
expect 22023 cron_producer wf_cron "SELECT workflow.schedule(repeat('n', 101), '* * * * *', 'report')"
expect 22023 cron_producer wf_cron "SELECT workflow.schedule('x', '* * * * *', 'report', total_stages => 0)"
expect 22004 cron_producer wf_cron "SELECT workflow.schedule('x', NULL, 'report')"
expect 42501 cron_other wf_cron "SELECT workflow.schedule('every-minute', '0 * * * *', 'mine now')"
expect 42501 cron_other wf_cron "SELECT workflow.unschedule('every-minute')"
expect 42501 cron_plain wf_cron "SELECT workflow.schedule('y', '* * * * *', 'report')"
expect 42501 cron_producer wf_cron "SELECT workflow.fire_schedule('every-minute')"
expect P0002 cron_admin wf_cron "SELECT workflow.fire_schedule('no-such-schedule')"
expect 55000 cron_producer wf_no_cron "SELECT workflow.schedule('z', '* * * * *', 'report')"
[ "$(as postgres wf_cron "SELECT count(*) || ' ' || min(cron) FROM workflow.schedules")" = "1 * * * * *" ] \
  || fail "refused calls wrote: $(as postgres wf_cron "SELECT name, cron FROM workflow.schedules")"
[ "$(as postgres wf_cron "SELECT count(*) FROM cron.job")" = 1 ] || fail "refused calls left pg_cron jobs"
[ "$(as postgres wf_no_cron "SELECT count(*) FROM workflow.schedules")" = 0 ] || fail "55000 wrote a schedule"

# pg_cron fires it: a job named after the minute, the producer's, with its tasks.
for _ in $(seq 1 40); do
  [ "$(as postgres wf_cron "SELECT count(*) FROM workflow.jobs WHERE id LIKE 'every-minute@%'")" -ge 1 ] && break
  sleep 2
done
FIRED=$(as postgres wf_cron "SELECT id FROM workflow.jobs WHERE id LIKE 'every-minute@%' ORDER BY created_at LIMIT 1")
[ -n "$FIRED" ] || fail "pg_cron did not fire the schedule within 80 s: $(as postgres wf_cron \
  "SELECT string_agg(status || ' ' || coalesce(return_message, ''), '; ') FROM cron.job_run_details")"
[ "$(as postgres wf_cron "SELECT owner || ' ' || job_type || ' ' || total_stages || ' ' || (parameters->>'k')
                          FROM workflow.jobs WHERE id = '$FIRED'")" = "cron_producer report 2 1" ] \
  || fail "the fired job $FIRED: $(as postgres wf_cron "SELECT * FROM workflow.jobs WHERE id = '$FIRED'")"
[ "$(as postgres wf_cron "SELECT total_tasks || ' ' || sealed FROM workflow.stages WHERE job_id = '$FIRED' AND stage = 1")" = "2 true" ] \
  || fail "stage 1 of $FIRED was not filled and sealed"
grep -qE '^every-minute@[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}Z$' <<<"$FIRED" || fail "job id $FIRED"
[ "$(as cron_producer wf_cron "SELECT last_job_id IS NOT NULL FROM workflow.list_schedules()")" = t ] \
  || fail "list_schedules does not show the last firing"

# A double (here: 16-fold) firing in one minute makes one job, its tasks once.
while [ "$(date +%S | sed 's/^0//')" -gt 45 ]; do sleep 1; done   # all 16 inside one minute
pids=()
for i in $(seq 1 16); do
  as cron_admin wf_cron "SELECT workflow.fire_schedule('every-minute')" >"/tmp/cron_fire.$$.$i" &
  pids+=($!)
done
for p in "${pids[@]}"; do wait "$p" || fail "a concurrent firing failed"; done
IDS=$(cat /tmp/cron_fire.$$.* | sort -u); rm -f /tmp/cron_fire.$$.*
[ "$(wc -l <<<"$IDS")" = 1 ] || fail "16 firings in one minute answered different ids: $IDS"
[ "$(as postgres wf_cron "SELECT count(*) FROM workflow.jobs WHERE id = '$IDS'")" = 1 ] || fail "not one job $IDS"
[ "$(as postgres wf_cron "SELECT count(*) FROM workflow.tasks WHERE job_id = '$IDS'")" = 2 ] \
  || fail "the raced job's tasks were added more than once"
INV=$(as postgres wf_cron "SELECT count(*) FROM workflow.check_invariants() WHERE NOT ok")
[ "$INV" = 0 ] || fail "invariants: $(as postgres wf_cron "SELECT * FROM workflow.check_invariants() WHERE NOT ok")"

# pg_dump keeps the schedules (an extension configuration table).
pg_dump -d wf_cron --data-only -t workflow.schedules | grep -q 'every-minute' || fail "pg_dump lost the schedules"

# Unschedule: pg_cron's job goes, the fired jobs stay.
[ "$(as cron_producer wf_cron "SELECT workflow.unschedule('every-minute')")" = t ] || fail "unschedule"
[ "$(as postgres wf_cron "SELECT count(*) FROM cron.job")" = 0 ] || fail "pg_cron's job is still there"
[ "$(as cron_producer wf_cron "SELECT workflow.unschedule('every-minute')")" = f ] || fail "unschedule twice"
[ "$(as postgres wf_cron "SELECT count(*) >= 1 FROM workflow.jobs WHERE id LIKE 'every-minute@%'")" = t ] \
  || fail "the fired jobs went with the schedule"
echo "cron schedule test: ok (pg_cron fired $FIRED; 16 concurrent firings made $IDS once)"
