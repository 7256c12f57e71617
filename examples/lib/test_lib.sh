# Shared by examples/*/test.sh: a throw-away cluster (scripts/lib/cluster.sh)
# with a database that has the extension, and small helpers.
#   source examples/lib/test_lib.sh; example_db NAME
#   q SQL          run as the superuser, print unaligned tuples
#   qas ROLE SQL   run as ROLE (SET ROLE), same output
#   expect_error SQLSTATE SQL [ROLE]   the statement must fail with SQLSTATE
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
source "$ROOT/scripts/lib/cluster.sh"
export PGOPTIONS="-c client_min_messages=warning"
fail() { echo "FAIL: $*"; exit 1; }
example_db() {
  trap 'cluster_stop' EXIT
  cluster_start >/dev/null || fail "could not start PostgreSQL"
  psql -qX -d postgres -c "CREATE DATABASE $1" >/dev/null
  export PGDATABASE=$1
  DATABASE_URL="${DATABASE_URL%/*}/$1"
  export DATABASE_URL
  q "CREATE EXTENSION workflow" >/dev/null
}
q() { psql -qXAt -v ON_ERROR_STOP=1 -c "$1"; }
qas() { psql -qXAt -v ON_ERROR_STOP=1 -c "SET ROLE $1" -c "$2"; }
expect_error() {
  local out pre=()
  [ -n "${3:-}" ] && pre=(-c "SET ROLE $3")
  if out=$(psql -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose "${pre[@]}" -c "$2" 2>&1); then
    fail "should have failed with $1: $2"
  fi
  grep -q "ERROR:  $1:" <<<"$out" || fail "expected SQLSTATE $1 for: $2; got: $out"
}
