#!/usr/bin/env bash
# Property test of the audit history (test/stress/audit_history_property.py says
# what it writes and checks): N seeded random workloads on audited tables, run
# directly and through PgBouncer in transaction mode, as the README's roles with
# only the README's grants. Runs on its OWN cluster and PgBouncer; exits non-zero
# on any mismatch. Usage: audit_history_property.sh [SEEDS=1-4] [STEPS=200]
set -euo pipefail
cd "$(dirname "$0")/../.."
SEEDS=${1:-1-4}
STEPS=${2:-200}
source scripts/lib/psycopg_pgbouncer.sh   # $PY, fail, build, cluster and PgBouncer helpers
cluster_start >/dev/null
psql -qX -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
-- prop_owner audits its own tables (README: EXECUTE on enable_audit and ownership);
-- prop_reader gets SELECT on them, prop_blind nothing, prop_auditor workflow_auditor.
CREATE ROLE prop_owner LOGIN;
CREATE ROLE prop_reader LOGIN;
CREATE ROLE prop_blind LOGIN;
CREATE ROLE prop_auditor LOGIN;
GRANT USAGE ON SCHEMA workflow TO prop_owner, prop_reader, prop_blind, prop_auditor;
GRANT workflow_auditor TO prop_auditor;
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                          workflow.disable_audit(regclass) TO prop_owner;
GRANT CREATE ON DATABASE postgres TO prop_owner;
SQL
WF_PGBOUNCER_USERS="prop_owner prop_reader prop_blind prop_auditor" pgbouncer_start transaction 4 >/dev/null
rc=0
dsn() { echo "postgresql://$1@127.0.0.1:$port/postgres"; }
for via in direct pgbouncer; do
  port=$PGPORT
  [ $via = pgbouncer ] && port=$PGBOUNCER_PORT
  timeout 1800 "$PY" test/stress/audit_history_property.py --seeds "$SEEDS" --steps "$STEPS" --via $via \
    --owner-dsn "$(dsn prop_owner)" --reader-dsn "$(dsn prop_reader)" \
    --blind-dsn "$(dsn prop_blind)" --auditor-dsn "$(dsn prop_auditor)" || rc=1
done
[ $rc = 0 ] || fail "the audit history differs from the snapshots (MISMATCH lines above)"
# The checker itself: with one expectation corrupted, the same run must fail.
port=$PGPORT
for m in stale-snapshot rolled-back; do
  if "$PY" test/stress/audit_history_property.py --seeds 1 --steps 40 --via direct --mutate $m \
       --owner-dsn "$(dsn prop_owner)" --reader-dsn "$(dsn prop_reader)" \
       --blind-dsn "$(dsn prop_blind)" --auditor-dsn "$(dsn prop_auditor)" >/tmp/prop-mutate.$$ 2>&1; then
    fail "self-test: --mutate $m went unnoticed"
  fi
  echo "self-test --mutate $m: caught ($(grep -c '^MISMATCH' /tmp/prop-mutate.$$) mismatches shown)"
done
rm -f /tmp/prop-mutate.$$
echo "audit history property ok"
