# What the tests that drive the project from Python through PgBouncer share
# (test/stress/psycopg_engine.sh, test/stress/audit_psycopg.sh): Debian's
# python3 with psycopg 3 and pgbouncer present (else FAIL with the package to
# install), a fresh build, scripts/lib/cluster.sh and pgbouncer.sh loaded, and
# a trap that stops both. Source from the repository root; then cluster_start.
PY=/usr/bin/python3   # Debian's, with psycopg 3; python3 on PATH may be a pyenv shim
fail() { echo "FAIL: $*"; exit 1; }
"$PY" -c 'import psycopg' 2>/dev/null || fail "psycopg 3 is missing: apt-get install python3-psycopg"
command -v pgbouncer >/dev/null || fail "pgbouncer is missing: apt-get install pgbouncer"
nice scripts/build
source scripts/lib/cluster.sh
source scripts/lib/pgbouncer.sh
trap 'pgbouncer_stop; cluster_stop' EXIT
