#!/usr/bin/env bash
# The job controls from second clients, in orders the README allows and the
# bundled worker does not use: test/stress/engine_second_clients.py (twelve
# scenarios, each counting outcomes against a README promise) as the grant
# recipe's login roles (a producer, two workers, an on-call admin), first on
# direct connections, then through PgBouncer in transaction mode. Own cluster;
# exits 1 when a promise is broken (FAIL lines say which).
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg_pgbouncer.sh   # $PY, fail, build, cluster and PgBouncer helpers
start=$(date +%s)
cluster_start >/dev/null || fail "cluster_start"
psql -X -q -v ON_ERROR_STOP=1 <<'SQL' || fail "setup"
CREATE EXTENSION workflow;
CREATE ROLE rv_producer LOGIN; GRANT workflow_producer TO rv_producer;
CREATE ROLE rv_worker1 LOGIN;  GRANT workflow_worker TO rv_worker1;
CREATE ROLE rv_worker2 LOGIN;  GRANT workflow_worker TO rv_worker2;
CREATE ROLE rv_oncall LOGIN;   GRANT workflow_admin TO rv_oncall;
SQL
WF_PGBOUNCER_USERS="rv_producer rv_worker1 rv_worker2 rv_oncall" pgbouncer_start transaction 20 || fail "pgbouncer_start"
rc=0
echo "--- direct connections"
timeout 600 "$PY" test/stress/engine_second_clients.py --dsn "host=127.0.0.1 port=$PGPORT dbname=postgres" "$@" || rc=1
echo "--- through PgBouncer (transaction mode)"
timeout 600 "$PY" test/stress/engine_second_clients.py --bouncer --dsn "host=127.0.0.1 port=$PGBOUNCER_PORT dbname=postgres" "$@" || rc=1
echo "engine_second_clients: $(( $(date +%s) - start )) s, exit $rc"
exit $rc
