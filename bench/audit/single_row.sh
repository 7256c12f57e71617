#!/usr/bin/env bash
# Single-row autocommit UPDATE, backend CPU per statement: none, native audit,
# PL/pgSQL audit, blocks interleaved on one throw-away cluster (what and how:
# bench/audit/single_row.py). synchronous_commit off, as bench/audit/hotpath.sh
# measures it, so the commit's WAL flush is not timed.
# Usage: bench/audit/single_row.sh [rows=300000] [rounds=30] [block=1000]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-300000}
source scripts/lib/psycopg.sh   # $PY, fail, build, cluster helpers
cluster_start synchronous_commit=off >/dev/null
export PGDATABASE=postgres
P() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
echo "# $(date -u +%FT%TZ) $(nproc) cores, $(git rev-parse --short HEAD), start: $(uptime | sed 's/.*load/load/')"
P -c "CREATE EXTENSION workflow" -f bench/audit/reference.sql >/dev/null
for d in none native plpgsql; do
  P -c "CREATE TABLE w_$d (id int PRIMARY KEY, status text NOT NULL, counter int NOT NULL,
                           payload text, updated_at timestamptz NOT NULL DEFAULT now())" \
    -c "INSERT INTO w_$d SELECT g, 'pending', 0, md5(g::text), now() FROM generate_series(1, $ROWS) g" >/dev/null
done
P -c "SELECT workflow.enable_audit('w_native')" >/dev/null
P -c "CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON w_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_audit()"
P -c "VACUUM ANALYZE w_none, w_native, w_plpgsql" -c "CHECKPOINT"
"$PY" bench/audit/single_row.py --dsn "dbname=postgres" --rows "$ROWS" --rounds "${2:-30}" --block "${3:-1000}"
echo "# end: $(uptime | sed 's/.*load/load/')"
