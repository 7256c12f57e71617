# Two databases and a dump file for a dump/restore test, on the test cluster
# that scripts/test runs (PGHOST/PGPORT set), removed again on exit:
#   source scripts/lib/dump_pair.sh; dump_pair NAME
# sets SRC=NAME_src, DST=NAME_dst (both created empty) and DUMP (a temp
# file), and defines fail MESSAGE and q DB SQL (one value, unaligned).
: "${PGHOST:?no server: run via scripts/test}" "${PGPORT:?no server}"
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -qXAt -d "$1" -v ON_ERROR_STOP=1 -c "$2"; }
_dump_pair_cleanup() {
  rm -f "$DUMP"
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $SRC" -c "DROP DATABASE IF EXISTS $DST" >/dev/null 2>&1 || true
}
dump_pair() {
  SRC=$1_src DST=$1_dst
  DUMP=$(mktemp "/tmp/$1.XXXXXX")
  trap _dump_pair_cleanup EXIT
  _dump_pair_cleanup
  psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $SRC" -c "CREATE DATABASE $DST" >/dev/null
}
