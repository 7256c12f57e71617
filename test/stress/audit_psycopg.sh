#!/usr/bin/env bash
# The audit log written and read from a second language: psycopg 3 (Debian
# python3-psycopg) through PgBouncer in transaction mode, as the README's
# orders_svc and support_desk roles with only the README's grants
# (test/stress/audit_psycopg.py says what it writes and checks). Runs on its
# OWN cluster and PgBouncer.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg_pgbouncer.sh   # $PY, fail, build, cluster and PgBouncer helpers
cluster_start >/dev/null
psql -qX -d postgres -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow;
-- The README's recipe (Audit history: roles), the parts these two roles need.
CREATE ROLE orders_svc LOGIN;
CREATE ROLE support_desk LOGIN;
GRANT USAGE ON SCHEMA workflow TO orders_svc, support_desk;
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                          workflow.disable_audit(regclass) TO orders_svc;
CREATE SCHEMA orders AUTHORIZATION orders_svc;
GRANT USAGE ON SCHEMA orders TO support_desk;
SQL
WF_PGBOUNCER_USERS="orders_svc support_desk" pgbouncer_start transaction 4 >/dev/null
timeout 600 "$PY" test/stress/audit_psycopg.py \
  --owner-dsn "postgresql://orders_svc@127.0.0.1:$PGBOUNCER_PORT/postgres" \
  --reader-dsn "postgresql://support_desk@127.0.0.1:$PGBOUNCER_PORT/postgres" \
  --super-dsn "postgresql://postgres@127.0.0.1:$PGPORT/postgres" || fail "the audit log through psycopg and PgBouncer"
echo "audit psycopg ok"
