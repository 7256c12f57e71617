# What the tests that drive the project from Python share: Debian's python3
# with psycopg 3 (else FAIL with the package to install), a fresh build,
# scripts/lib/cluster.sh loaded and a trap that stops the cluster. Source
# from the repository root; then cluster_start. With PgBouncer too:
# scripts/lib/psycopg_pgbouncer.sh.
PY=/usr/bin/python3   # Debian's, with psycopg 3; python3 on PATH may be a pyenv shim
fail() { echo "FAIL: $*"; exit 1; }
"$PY" -c 'import psycopg' 2>/dev/null || fail "psycopg 3 is missing: apt-get install python3-psycopg"
nice scripts/build
source scripts/lib/cluster.sh
trap cluster_stop EXIT
