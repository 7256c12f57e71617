#!/usr/bin/env bash
# The fan-in's direct row updates (src/extension/engine_direct.cpp) from
# concurrent sessions through the SQL API alone, with psycopg 3:
# test/stress/engine_direct_sessions.py says what each scenario checks
# (a held counter skipped, all held -> wait, a concurrent repeat, 40001 under
# REPEATABLE READ). Its own cluster and database.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers and their stop trap
cluster_start
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE wf_direct" >/dev/null
psql -qX -d wf_direct -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow" >/dev/null
DATABASE_URL="postgresql://postgres@127.0.0.1:$PGPORT/wf_direct" "$PY" test/stress/engine_direct_sessions.py
