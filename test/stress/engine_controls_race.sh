#!/usr/bin/env bash
# Races of the 1.4 engine controls (test/stress/engine_controls_race.py says
# what it does and checks), on a fresh database of its own cluster: a
# concurrency limit under 16 racing claimers (never more than the limit
# claimed at once), and purge_jobs running through a completion storm
# (invariants hold, nothing left without its job), and 16 submitters racing
# create_job with one dedupe_key (one job per key, its tasks once), and a claim
# that may take a limited type in REPEATABLE READ (25001, as the README says).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers and their stop trap
cluster_start
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE controls_race" >/dev/null
psql -qX -d controls_race -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow" >/dev/null
timeout 900 "$PY" test/stress/engine_controls_race.py --dsn "postgresql://postgres@127.0.0.1:$PGPORT/controls_race" "$@" \
  || fail "engine controls race"
echo "engine controls race ok"
