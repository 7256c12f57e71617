#!/usr/bin/env bash
# Hostile-input sweep of the SQL API (test/stress/api_bad_input.py says what it calls and
# checks), on its OWN throw-away cluster. Fails on a server crash, an internal error (XX000)
# or a call that hangs past 5 s; prints P0001, NULLs accepted and writes on edge values for
# review. Extra arguments go to the python (e.g. --only add_tasks).
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers and their stop trap
cluster_start >/dev/null
psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE api_bad_input" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -d api_bad_input -c "CREATE EXTENSION workflow" >/dev/null
timeout 600 "$PY" test/stress/api_bad_input.py --dsn "postgresql://postgres@127.0.0.1:$PGPORT/api_bad_input" \
  --log "$WF_CLUSTER_DIR/server.log" "$@"
