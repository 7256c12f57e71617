#!/usr/bin/env bash
# Every release -> the current version, on its own throw-away cluster. For
# each released version V (src/sql/released/workflow--V.sql, as shipped):
#  1. CREATE EXTENSION workflow VERSION 'V', the user side (test/stress/upgrade/
#     setup.sql: audited tables of every kind, an updated_at trigger, audit on
#     workflow.tasks) and data (fill.sql: jobs in every state, audit history
#     with updates and deletes, survey steps); then ALTER EXTENSION workflow
#     UPDATE (1.0 takes the released 1.0 -> 1.1 script, then the current one).
#  2. The upgraded catalog equals a fresh install with the same setup.sql
#     (upgrade/catalog.sql: functions with definitions, ACLs and comments,
#     tables, columns, constraints, indexes, triggers, policies, RLS, event
#     triggers, sequences, views, extension members, dump registration...);
#     a difference is printed as a diff and fails the test. The comparison
#     checks itself: each of a list of small changes to the upgraded database
#     (made in a transaction that is rolled back) must show up in the diff.
#  3. The data reads back the same through the old columns and row_history /
#     row_as_of (upgrade/state.sql); the old jobs finish (finish.sql) and
#     check_invariants() is clean; the whole pgTAP suite passes on the
#     upgraded database.
#  4. pg_dump -Fc / pg_restore round-trips a filled database of the current
#     version (each upgraded one, and a fresh one filled by fill.sql): same
#     data, same catalog, and the restored jobs finish.
# Needs `scripts/build` first (scripts/test builds). Standalone:
#   scripts/build && test/stress/upgrade.sh [versions...]   (default: every release)
set -euo pipefail
cd "$(dirname "$0")/../.."
U=test/stress/upgrade
source scripts/lib/cluster.sh
TMP=$(mktemp -d /tmp/wf_upgrade.XXXXXX)
trap 'cluster_stop; rm -rf "$TMP"' EXIT
cluster_start
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -qXAt -d "$1" -v ON_ERROR_STOP=1 -c "$2"; }
run() { psql -qX -d "$1" -v ON_ERROR_STOP=1 -f "$2" >"$TMP/run.log" 2>&1 || { cat "$TMP/run.log"; fail "$2 on $1"; }; }
catalog() { psql -qX -d "$1" -v ON_ERROR_STOP=1 -f $U/catalog.sql; }
state() { psql -qX -d "$1" -v ON_ERROR_STOP=1 -f $U/state.sql; }
# same_catalog DB1 DB2: fails with a unified diff of the two catalogs.
same_catalog() {
  catalog "$1" >"$TMP/$1.catalog"; catalog "$2" >"$TMP/$2.catalog"
  if ! diff -u --label "$1" --label "$2" "$TMP/$1.catalog" "$TMP/$2.catalog" >"$TMP/catalog.diff"; then
    echo "catalog of $1 (-) differs from $2 (+):"
    grep -E '^[-+][^-+]' "$TMP/catalog.diff" | sed -n 1,200p
    fail "catalog of $1 differs from $2 ($(grep -cE '^[-+][^-+]' "$TMP/catalog.diff") lines)"
  fi
  echo "catalog of $1 = $2: $(wc -l <"$TMP/$1.catalog") lines"
}
same_state() {  # label file1 file2
  diff -u --label "$2" --label "$3" "$2" "$3" >"$TMP/state.diff" || { cat "$TMP/state.diff"; fail "$1"; }
}
# The jobs fill.sql made, after finish.sql.
check_finished() {
  local got
  got=$(q "$1" "SELECT string_agg(id || '=' || status, ' ' ORDER BY id) FROM workflow.jobs")
  [ "$got" = "up-cancelled=cancelled up-completed=completed up-failed=failed up-handover=completed up-pending=completed up-retry=completed up-running=completed up-unsealed=completed" ] \
    || fail "jobs in $1 did not finish as expected: $got"
  got=$(q "$1" "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants() WHERE NOT ok")
  [ -z "$got" ] || fail "check_invariants in $1: $got"
  echo "jobs in $1 finished: $(q "$1" "SELECT count(*) FROM workflow.tasks") tasks, invariants ok"
}

# Released versions to start from: every src/sql/released/workflow--V.sql.
if [ $# -gt 0 ]; then VERSIONS=("$@"); else
  mapfile -t VERSIONS < <(ls src/sql/released | sed -n 's/^workflow--\([0-9.]*\)\.sql$/\1/p' | sort -V)
fi
[ ${#VERSIONS[@]} -gt 0 ] || fail "no released versions found"
want=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" workflow.control)
# wf_fresh: a fresh install with the same setup.sql, made after the first
# upgrade (so that upgrade, not the fresh install, creates the cluster's roles).
make_fresh() {
  [ -n "${FRESH_MADE:-}" ] && return 0
  psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE wf_fresh" >/dev/null
  q wf_fresh "CREATE EXTENSION workflow" >/dev/null
  run wf_fresh $U/setup.sql
  FRESH_MADE=1
}
restore() {  # dump database
  psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $2" >/dev/null
  pg_restore -d "$2" "$1" >"$TMP/restore.log" 2>&1 || true
  [ -s "$TMP/restore.log" ] && { cat "$TMP/restore.log"; fail "pg_restore into $2 reported errors"; }
  return 0
}

upgrade_from() {  # V: install release V, fill, upgrade, compare, finish, dump/restore
  local V=$1 DB=wf_up_${1//./_} roles_upgraded roles_fresh last missing got seen expect sql m
  psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE $DB" >/dev/null
  # 1. V as released, filled, then upgraded.
  q $DB "CREATE EXTENSION workflow VERSION '$V'" >/dev/null
  [ "$(q $DB "SELECT extversion FROM pg_extension WHERE extname = 'workflow'")" = "$V" ] || fail "$V not installed"
  run $DB $U/setup.sql
  run $DB $U/fill.sql
  state $DB >"$TMP/$DB.before"
  grep -q '^job up-running | up | running' "$TMP/$DB.before" || fail "fill: up-running is not running"
  grep -q '^task up-running:1:0 .* | claimed | ' "$TMP/$DB.before" || fail "fill: no claimed task"
  [ "$(grep -c '^history ' "$TMP/$DB.before")" -ge 30 ] || fail "fill: history too short"
  echo "$V filled: $(grep -c '^job ' "$TMP/$DB.before") jobs, $(grep -c '^task ' "$TMP/$DB.before") tasks," \
       "$(grep -c '^history ' "$TMP/$DB.before") history rows, $(grep -c '^step ' "$TMP/$DB.before") survey steps"
  # The old SQL runs on the new library until the update (README "Upgrading",
  # Order): its own check_invariants agrees with what the library wrote.
  got=$(q $DB "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants()
               WHERE NOT ok AND check_name NOT LIKE 'stuck%'")
  [ -z "$got" ] || fail "$V's check_invariants on the new library: $got"
  q $DB "ALTER EXTENSION workflow UPDATE" >/dev/null
  [ "$(q $DB "SELECT extversion FROM pg_extension WHERE extname = 'workflow'")" = "$want" ] || fail "not updated to $want"
  echo "$V updated to $want"
  # The cluster's roles the upgrade made: a fresh install must find them all
  # made, with the same attributes and memberships.
  ROLES="SELECT string_agg(format('%s login=%s super=%s inherit=%s members=%s', r.rolname, r.rolcanlogin, r.rolsuper, r.rolinherit,
                                  (SELECT string_agg(m.member::regrole || CASE WHEN m.admin_option THEN '(admin)' ELSE '' END, ',' ORDER BY 1)
                                     FROM pg_auth_members m WHERE m.roleid = r.oid)), E'\n' ORDER BY r.rolname)
           FROM pg_roles r WHERE r.rolname LIKE 'workflow\_%'"
  roles_upgraded=$(q $DB "$ROLES")

  # 2. The upgraded catalog is a fresh install's.
  make_fresh
  roles_fresh=$(q wf_fresh "$ROLES")
  [ "$roles_upgraded" = "$roles_fresh" ] || { diff <(echo "$roles_upgraded") <(echo "$roles_fresh") || true; fail "the fresh install changed the cluster's roles"; }
  [ -n "$roles_fresh" ] || fail "no workflow_* roles"
  echo "roles made by the upgrade, as a fresh install wants them: $(echo "$roles_fresh" | wc -l)"
  same_catalog $DB wf_fresh

  # The comparison sees what it must: each change below (rolled back) shows up
  # in the diff on a line naming the object.
  mutations=(
    "function workflow.create_job(|ALTER FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text) SECURITY INVOKER"
    "function workflow.create_job(|ALTER FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text) RESET search_path"
    "function workflow.version()|ALTER FUNCTION workflow.version() STABLE"
    "function workflow.purge_audit_log(interval): kind|GRANT EXECUTE ON FUNCTION workflow.purge_audit_log(interval) TO PUBLIC"
    "function workflow.retry_delay(|COMMENT ON FUNCTION workflow.retry_delay(int, interval, interval, boolean) IS 'changed'"
    "function workflow.normalize_step_name(text): def|CREATE OR REPLACE FUNCTION workflow.normalize_step_name(raw text) RETURNS text LANGUAGE sql AS 'SELECT raw'"
    "member function workflow.step_name_key(text)|ALTER EXTENSION workflow DROP FUNCTION workflow.step_name_key(text)"
    "column workflow.jobs.|ALTER TABLE workflow.jobs ADD COLUMN upgrade_test_extra int"
    "column workflow.jobs.handover_lease|ALTER TABLE workflow.jobs ALTER COLUMN handover_lease SET DEFAULT '2 minutes'"
    "column workflow.tasks.run_after|ALTER TABLE workflow.tasks ALTER COLUMN run_after DROP NOT NULL"
    "constraint tasks_max_retries_check|ALTER TABLE workflow.tasks DROP CONSTRAINT tasks_max_retries_check"
    "index workflow.jobs_job_type_idx|CREATE INDEX jobs_job_type_idx ON workflow.jobs (job_type)"
    "trigger audit_tables_restored on workflow.audit_tables|DROP TRIGGER audit_tables_restored ON workflow.audit_tables"
    "trigger account_updated_at on app.account|ALTER TABLE app.account DISABLE TRIGGER account_updated_at"
    "policy audit_log_readable|DROP POLICY audit_log_readable ON workflow.audit_log"
    "relation workflow.audit_log:|ALTER TABLE workflow.audit_log DISABLE ROW LEVEL SECURITY"
    "relation workflow.audit_tables:|GRANT TRUNCATE ON workflow.audit_tables TO PUBLIC"
    "event trigger workflow_audit_sql_drop|ALTER EVENT TRIGGER workflow_audit_sql_drop DISABLE"
    "sequence workflow.audit_log_id_seq|ALTER SEQUENCE workflow.audit_log_id_seq INCREMENT BY 1"
    "view workflow.survey_weekly_completion|CREATE OR REPLACE VIEW workflow.survey_weekly_completion AS SELECT t.week_start, t.step_name, count(*)::integer AS sessions_completed FROM workflow.survey_steps t WHERE t.value IS NOT NULL GROUP BY t.week_start, t.step_name"
    "extconfig workflow.survey_steps|UPDATE pg_extension SET extcondition[array_position(extconfig, 'workflow.survey_steps'::regclass)] = 'WHERE true' WHERE extname = 'workflow'"
    "schema workflow|GRANT USAGE ON SCHEMA workflow TO PUBLIC"
    "builtin step alias|DELETE FROM workflow.survey_step_aliases WHERE builtin AND alias = (SELECT min(alias) FROM workflow.survey_step_aliases WHERE builtin)"
  )
  seen=0
  for m in "${mutations[@]}"; do
    expect=${m%%|*}; sql=${m#*|}
    { echo "BEGIN;"; echo "$sql;"; cat $U/catalog.sql; echo "ROLLBACK;"; } \
      | psql -qX -d $DB -v ON_ERROR_STOP=1 >"$TMP/mutated.catalog" 2>"$TMP/mutated.err" \
      || { cat "$TMP/mutated.err"; fail "self-check: could not run: $sql"; }
    diff "$TMP/$DB.catalog" "$TMP/mutated.catalog" >"$TMP/mutated.diff" || true
    grep -E '^[<>]' "$TMP/mutated.diff" | grep -F -- "$expect" >/dev/null \
      || { sed -n 1,20p "$TMP/mutated.diff"; fail "self-check: the comparison missed: $sql"; }
    seen=$((seen + 1))
  done
  same_catalog $DB wf_fresh >/dev/null   # the changes were rolled back
  echo "catalog comparison self-check: $seen of ${#mutations[@]} changes reported"

  # 3. Data carried over; old jobs finish; the pgTAP suite passes.
  state $DB >"$TMP/$DB.after"
  same_state "data or history differs after the upgrade" "$TMP/$DB.before" "$TMP/$DB.after"
  echo "data and history read back the same after the upgrade ($(wc -l <"$TMP/$DB.after") lines)"
  pg_dump -Fc -d $DB -f "$TMP/$DB.dump"          # a filled current database, jobs in flight (for 4.)
  last=$(q $DB "SELECT max(id) FROM workflow.audit_log")
  run $DB $U/finish.sql
  check_finished $DB
  [ "$(q $DB "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'tasks' AND id > $last")" -gt 0 ] \
    || fail "task changes after the upgrade were not audited"
  grep '^history ' "$TMP/$DB.before" >"$TMP/$DB.before.history"
  state $DB | grep '^history ' >"$TMP/$DB.finished.history"
  missing=$(comm -23 <(sort "$TMP/$DB.before.history") <(sort "$TMP/$DB.finished.history") | wc -l)
  [ "$missing" = 0 ] || fail "$missing pre-upgrade history rows missing after the jobs finished"
  echo "history after the jobs finished: $(wc -l <"$TMP/$DB.finished.history") rows (all $(wc -l <"$TMP/$DB.before.history") pre-upgrade rows kept)"

  q $DB "CREATE EXTENSION pgtap" >/dev/null
  if pg_prove -d $DB test/pgtap/*.sql >"$TMP/$DB.pgtap.log" 2>&1; then
    echo "pgTAP on the database upgraded from $V: $(grep -E '^(Files|Result)' "$TMP/$DB.pgtap.log" | tr '\n' ' ')"
  else
    cat "$TMP/$DB.pgtap.log"; fail "the pgTAP suite fails on the upgraded database"
  fi

  # 4. Dump and restore of the upgraded database.
  restore "$TMP/$DB.dump" ${DB}_restored
  state ${DB}_restored >"$TMP/$DB.restored"
  same_state "data or history differs after dump/restore of the upgraded database" "$TMP/$DB.after" "$TMP/$DB.restored"
  same_catalog ${DB}_restored wf_fresh
  run ${DB}_restored $U/finish.sql
  check_finished ${DB}_restored

  echo "upgrade $V -> $want: ok"
}

for V in "${VERSIONS[@]}"; do
  [ "$V" = "$want" ] && continue   # the current version, when released, is the fresh install
  upgrade_from "$V"
done

# A fresh install of the current version, filled: dump and restore.
make_fresh
run wf_fresh $U/fill.sql
state wf_fresh >"$TMP/fresh.state"
pg_dump -Fc -d wf_fresh -f "$TMP/fresh.dump"
restore "$TMP/fresh.dump" wf_fresh_restored
state wf_fresh_restored >"$TMP/fresh_restored.state"
same_state "data or history differs after dump/restore of a filled $want database" "$TMP/fresh.state" "$TMP/fresh_restored.state"
echo "dump/restore of the filled $want database: $(wc -l <"$TMP/fresh.state") lines of data and history the same"
same_catalog wf_fresh_restored wf_fresh
run wf_fresh_restored $U/finish.sql
check_finished wf_fresh_restored
echo "upgrade test: ok (from ${VERSIONS[*]})"
