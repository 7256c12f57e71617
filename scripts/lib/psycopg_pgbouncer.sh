# What the tests that drive the project from Python through PgBouncer share
# (test/stress/psycopg_engine.sh, audit_psycopg.sh, engine_second_clients.sh,
# audit_history_property.sh): scripts/lib/psycopg.sh, pgbouncer present (else
# FAIL with the package to install), scripts/lib/pgbouncer.sh loaded, and a
# trap that stops both. Source from the repository root; then cluster_start.
source scripts/lib/psycopg.sh
command -v pgbouncer >/dev/null || fail "pgbouncer is missing: apt-get install pgbouncer"
source scripts/lib/pgbouncer.sh
trap 'pgbouncer_stop; cluster_stop' EXIT
