#!/usr/bin/env bash
# pg_upgrade of a database with the extension from an older PostgreSQL major
# to this one (scripts/test runs it in the trixie chroot: 15 -> 17). The old
# major is a private copy (scripts/lib/pgprefix.sh) with workflow built for it,
# at $WF_OLD_PG_PREFIX, plus the shared libraries this system lacks in its
# hostlib/. On the old server: CREATE EXTENSION, audited tables of every kind
# (test/stress/upgrade/setup.sql) and jobs in every state, claimed tasks,
# history and survey rows (fill.sql). Then pg_upgrade into a new cluster of
# this major; there the data, row_history and row_as_of read back the same
# (state.sql), the jobs in flight finish (finish.sql) with their changes
# audited, and check_invariants() is clean.
#   scripts/build && WF_OLD_PG_PREFIX=/opt/wf-pg15 test/pg_upgrade.sh
set -euo pipefail
cd "$(dirname "$0")/.."
U=test/stress/upgrade
OLD=${WF_OLD_PG_PREFIX:?the old major\'s prefix}
OLD_BIN=$(echo "$OLD"/usr/lib/postgresql/*/bin)
[ -x "$OLD_BIN/postgres" ] || { echo "FAIL: no old PostgreSQL at $OLD"; exit 1; }
export LD_LIBRARY_PATH=$OLD/hostlib   # only libraries this system has not got
source scripts/lib/cluster.sh
NEW_BIN=$PG_BINDIR
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -qXAt -d wf_pgup -v ON_ERROR_STOP=1 -c "$1"; }
run() { psql -qX -d wf_pgup -v ON_ERROR_STOP=1 -f "$1" >"$WF_CLUSTER_DIR/run.log" 2>&1 ||
          { cat "$WF_CLUSTER_DIR/run.log"; fail "$1"; }; }
state() { psql -qX -d wf_pgup -v ON_ERROR_STOP=1 -f $U/state.sql; }
trap 'cluster_stop' EXIT

# 1. The old major, filled.
PG_BINDIR=$OLD_BIN
cluster_start
old_version=$(psql -qXAt -d postgres -c "SHOW server_version")
psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE wf_pgup" >/dev/null
q "CREATE EXTENSION workflow" >/dev/null
run $U/setup.sql
run $U/fill.sql
state >"$WF_CLUSTER_DIR/before.state"
grep -q '^job up-running | up | running' "$WF_CLUSTER_DIR/before.state" || fail "fill: up-running is not running"
grep -q '^task up-running:1:0 .* | claimed | ' "$WF_CLUSTER_DIR/before.state" || fail "fill: no claimed task"
[ "$(grep -c '^history ' "$WF_CLUSTER_DIR/before.state")" -ge 30 ] || fail "fill: history too short"
[ "$(grep -c '^step ' "$WF_CLUSTER_DIR/before.state")" -gt 0 ] || fail "fill: no survey steps"
echo "PostgreSQL $old_version filled: $(grep -c '^job ' "$WF_CLUSTER_DIR/before.state") jobs," \
     "$(grep -c '^task ' "$WF_CLUSTER_DIR/before.state") tasks, $(grep -c '^history ' "$WF_CLUSTER_DIR/before.state") history rows," \
     "$(grep -c '^step ' "$WF_CLUSTER_DIR/before.state") survey steps"
_wf_as_owner "$OLD_BIN/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m fast -w stop >/dev/null

# 2. pg_upgrade into a new cluster of this major (run from a directory the
#    postgres user may write: its logs and sockets go there).
_wf_as_owner "$NEW_BIN/initdb" -D "$WF_CLUSTER_DIR/new" -U postgres --auth=trust -E UTF8 \
  --locale=C.UTF-8 >"$WF_CLUSTER_DIR/initdb-new.log" 2>&1 || { cat "$WF_CLUSTER_DIR/initdb-new.log"; fail "initdb"; }
mkdir -p "$WF_CLUSTER_DIR/up"; [ "$(id -u)" = 0 ] && chown postgres: "$WF_CLUSTER_DIR/up"
old_port=$(_wf_free_port); new_port=$old_port
while [ "$new_port" = "$old_port" ]; do new_port=$(_wf_free_port); done
if ! (cd "$WF_CLUSTER_DIR/up" && runuser -u postgres -- env LD_LIBRARY_PATH="$LD_LIBRARY_PATH" \
        "$NEW_BIN/pg_upgrade" -U postgres -b "$OLD_BIN" -B "$NEW_BIN" -d "$WF_CLUSTER_DIR/data" \
        -D "$WF_CLUSTER_DIR/new" -p "$old_port" -P "$new_port" -s "$WF_CLUSTER_DIR/up" \
        >"$WF_CLUSTER_DIR/pg_upgrade.log" 2>&1); then
  cat "$WF_CLUSTER_DIR/pg_upgrade.log"
  find "$WF_CLUSTER_DIR" -name '*.txt' -path '*pg_upgrade*' -exec tail -30 {} \; 2>/dev/null
  find "$WF_CLUSTER_DIR" -name '*.log' -path '*pg_upgrade_output*' -exec tail -30 {} \; 2>/dev/null
  fail "pg_upgrade"
fi
grep -q 'Upgrade Complete' "$WF_CLUSTER_DIR/pg_upgrade.log" || { cat "$WF_CLUSTER_DIR/pg_upgrade.log"; fail "pg_upgrade said no 'Upgrade Complete'"; }
mv "$WF_CLUSTER_DIR/data" "$WF_CLUSTER_DIR/data.old"; mv "$WF_CLUSTER_DIR/new" "$WF_CLUSTER_DIR/data"
PG_BINDIR=$NEW_BIN
_wf_cluster_start_server
new_version=$(q "SHOW server_version")
[ "${old_version%%.*}" != "${new_version%%.*}" ] || fail "still on $new_version"
echo "pg_upgrade $old_version -> $new_version: complete"

# 3. The data and history read back; the jobs in flight finish.
want=$(sed -n "s/^default_version *= *'\(.*\)'/\1/p" workflow.control)
[ "$(q "SELECT extversion FROM pg_extension WHERE extname = 'workflow'")" = "$want" ] || fail "extension not at $want"
state >"$WF_CLUSTER_DIR/after.state"
diff -u "$WF_CLUSTER_DIR/before.state" "$WF_CLUSTER_DIR/after.state" || fail "data or history differs after pg_upgrade"
echo "data, row_history and row_as_of read back the same ($(wc -l <"$WF_CLUSTER_DIR/after.state") lines)"
last=$(q "SELECT max(id) FROM workflow.audit_log")
run $U/finish.sql
got=$(q "SELECT string_agg(id || '=' || status, ' ' ORDER BY id) FROM workflow.jobs")
[ "$got" = "up-cancelled=cancelled up-completed=completed up-failed=failed up-handover=completed up-pending=completed up-retry=completed up-running=completed up-unsealed=completed" ] \
  || fail "jobs did not finish as expected: $got"
got=$(q "SELECT string_agg(check_name || ': ' || detail, '; ') FROM workflow.check_invariants() WHERE NOT ok")
[ -z "$got" ] || fail "check_invariants: $got"
[ "$(q "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'tasks' AND id > $last")" -gt 0 ] \
  || fail "task changes after pg_upgrade were not audited"
missing=$(comm -23 <(grep '^history ' "$WF_CLUSTER_DIR/before.state" | sort) <(state | grep '^history ' | sort) | wc -l)
[ "$missing" = 0 ] || fail "$missing history rows from before pg_upgrade are missing after the jobs finished"
echo "jobs finished, their changes audited, check_invariants clean: pg_upgrade $old_version -> $new_version ok"
