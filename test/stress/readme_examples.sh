#!/usr/bin/env bash
# Documentation that runs: every ```sql block of README.md, in order, in one
# psql session on a fresh database with the extension, its shown output
# (`-- -> ...` rows, `-- ERROR SQLSTATE: ...`) compared with what the server
# returns. The convention is in README.md ("Tests") and in readme_examples.py.
# Runs on its OWN throw-away cluster; needs `scripts/build` first (scripts/test
# builds). Standalone: scripts/build && test/stress/readme_examples.sh
# `--list` prints the statements and what each expects, without a server.
set -euo pipefail
cd "$(dirname "$0")/../.."
CHECK=test/stress/readme_examples.py
if [ "${1:-}" = --list ]; then exec /usr/bin/python3 "$CHECK" README.md --list; fi
source scripts/lib/cluster.sh
trap 'cluster_stop' EXIT
cluster_start
psql -qX -v ON_ERROR_STOP=1 -c "CREATE DATABASE readme" >/dev/null
psql -qX -v ON_ERROR_STOP=1 -d readme -c "CREATE EXTENSION workflow" >/dev/null
/usr/bin/python3 "$CHECK" README.md --db readme
