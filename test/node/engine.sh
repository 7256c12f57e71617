#!/usr/bin/env bash
# The engine from node-postgres (test/node/engine.mjs says what it does and
# checks), on its own cluster, twice: workers connected directly, then through
# PgBouncer 1.18 in transaction mode. The producer and the workers are login
# roles granted only workflow_producer / workflow_worker, as the README's
# grant recipe says; the checks run as a workflow_admin role.
# npm's `pg` is installed into test/node/node_modules from package-lock.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
fail() { echo "FAIL: $*"; exit 1; }
command -v node >/dev/null || fail "node is missing (scripts/install-deps installs nodejs)"
(cd test/node && [ -d node_modules/pg ] || npm ci --no-audit --no-fund >/dev/null) || fail "npm ci in test/node failed"

nice scripts/build
source scripts/lib/cluster.sh
source scripts/lib/pgbouncer.sh
trap 'pgbouncer_stop; cluster_stop' EXIT
cluster_start
psql -qX -v ON_ERROR_STOP=1 -d postgres <<'SQL'
CREATE DATABASE node_direct;
CREATE DATABASE node_pooled;
CREATE ROLE node_producer LOGIN;
CREATE ROLE node_workers LOGIN;
CREATE ROLE node_oncall LOGIN;
SQL
for db in node_direct node_pooled; do
  psql -qX -v ON_ERROR_STOP=1 -d $db -c "CREATE EXTENSION workflow"
done
# The recipe (README, Roles and privileges), after CREATE EXTENSION made the roles.
psql -qX -v ON_ERROR_STOP=1 -d postgres -c "GRANT workflow_producer TO node_producer" \
  -c "GRANT workflow_worker TO node_workers" -c "GRANT workflow_admin TO node_oncall"
WF_PGBOUNCER_USERS="node_producer node_workers node_oncall" pgbouncer_start transaction 20

url() { echo "postgresql://$1@127.0.0.1:$2/$3"; }
run() {  # label port db
  local out
  out=$(timeout 300 node test/node/engine.mjs --producer "$(url node_producer "$2" "$3")" \
        --worker "$(url node_workers "$2" "$3")" --admin "$(url node_oncall "$PGPORT" "$3")") \
    || fail "$1: $out"
  echo "ok   $1: $out"
}
run direct "$PGPORT" node_direct
run "through PgBouncer (transaction mode)" "$PGBOUNCER_PORT" node_pooled
echo "node-postgres engine test: ok"
