#!/usr/bin/env bash
# Races of the 1.4 engine controls (test/stress/engine_controls_race.py says
# what it does and checks), on a fresh database of its own cluster: a
# concurrency limit under 16 racing claimers (never more than the limit
# claimed at once), and purge_jobs running through a completion storm
# (invariants hold, nothing left without its job), and 16 submitters racing
# create_job with one dedupe_key (one job per key, its tasks once).
set -euo pipefail
cd "$(dirname "$0")/../.."
PY=/usr/bin/python3   # Debian's, with psycopg 3; python3 on PATH may be a pyenv shim
fail() { echo "FAIL: $*"; exit 1; }
"$PY" -c 'import psycopg' 2>/dev/null || fail "psycopg 3 is missing: apt-get install python3-psycopg"
nice scripts/build
source scripts/lib/cluster.sh
trap 'cluster_stop' EXIT
cluster_start
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE controls_race" >/dev/null
psql -qX -d controls_race -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow" >/dev/null
timeout 900 "$PY" test/stress/engine_controls_race.py --dsn "postgresql://postgres@127.0.0.1:$PGPORT/controls_race" "$@" \
  || fail "engine controls race"
echo "engine controls race ok"
