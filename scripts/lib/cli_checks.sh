# Checks of the built `workflow` CLI against the test's cluster:
#   source scripts/lib/cli_checks.sh
# sets CLI (build/workflow, which must exist) and fail=0, and defines
# ok TEXT, bad TEXT (sets fail=1) and sql QUERY (one value, unaligned).
CLI=build/workflow
[ -x "$CLI" ] || { echo "FAIL: $CLI not built"; exit 1; }
fail=0
ok()  { echo "ok   $*"; }
bad() { echo "FAIL $*"; fail=1; }
sql() { psql -qXAt -c "$1"; }
