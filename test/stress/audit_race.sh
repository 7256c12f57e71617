#!/usr/bin/env bash
# Audit under concurrency and crash, on a cluster of its own:
#   8 pgbench clients update (single rows and 3-row ranges) and insert into an
#   audited table; then, and again after a SIGKILL of the server mid-load:
#   - every committed update is logged exactly once (sum of counters = UPDATE rows)
#   - each row's history chains: every UPDATE's old counter is the previous
#     event's new counter, so ORDER BY id is the order of changes
#   - row_as_of(now) rebuilds every current row exactly (to_jsonb of the row)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
trap cluster_stop EXIT
cluster_start >/dev/null
export PGDATABASE=postgres
P() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }
P <<'SQL'
CREATE EXTENSION workflow;
CREATE TABLE race (id int PRIMARY KEY, counter int NOT NULL DEFAULT 0, note text, noise int DEFAULT 0);
INSERT INTO race (id) SELECT g FROM generate_series(1, 40) g;
SELECT workflow.enable_audit('race', '{noise}');
SQL
WORK=$(mktemp -d /tmp/audit-race.XXXXXX)
chmod 755 "$WORK"
cat >"$WORK/one.sql" <<'SQL'
\set id random(1, 40)
BEGIN;
SET LOCAL workflow.actor = 'client-:client_id';
UPDATE race SET counter = counter + 1, note = md5(random()::text), noise = noise + 1 WHERE id = :id;
END;
SQL
cat >"$WORK/range.sql" <<'SQL'
\set id random(1, 38)
UPDATE race SET counter = counter + 1 WHERE id BETWEEN :id AND :id + 2;
SQL
cat >"$WORK/insert.sql" <<'SQL'
INSERT INTO race (id) SELECT max(id) + 1 FROM race ON CONFLICT DO NOTHING;
SQL

check() {  # label
  local label=$1 bad
  bad=$(P <<'SQL'
WITH updates AS (SELECT count(*) AS n FROM workflow.audit_log WHERE table_name = 'race' AND operation = 'UPDATE')
SELECT 'logged updates ' || (SELECT n FROM updates) || ' <> sum of counters ' || sum(counter)
FROM race HAVING sum(counter) <> (SELECT n FROM updates)
UNION ALL
SELECT 'broken chain at log id ' || id FROM (
  SELECT id, operation, (old_values ->> 'counter')::int AS old_c, (new_values ->> 'counter')::int AS new_c,
         lag((new_values ->> 'counter')::int) OVER (PARTITION BY row_key ORDER BY id) AS prev_c
  FROM workflow.audit_log WHERE table_name = 'race') h
WHERE operation = 'UPDATE' AND (old_c <> coalesce(prev_c, 0) OR new_c <> old_c + 1)  -- rows start at 0
UNION ALL
SELECT 'row_as_of differs for id ' || r.id FROM race r
WHERE workflow.row_as_of('race', jsonb_build_object('id', r.id), clock_timestamp())
      IS DISTINCT FROM to_jsonb(r) - 'noise'
UNION ALL
SELECT 'noise logged' FROM workflow.audit_log WHERE table_name = 'race' AND (old_values ? 'noise' OR new_values ? 'noise')
SQL
)
  local rows
  rows=$(P -c "SELECT count(*) || ' log rows, ' || count(DISTINCT actor) || ' actors' FROM workflow.audit_log")
  if [ -n "$bad" ]; then echo "FAIL ($label): $rows"; echo "$bad" | head -20; exit 1; fi
  echo "ok ($label): $rows"
}

run_load() {  # seconds
  pgbench -n -c 8 -j 2 -T "$1" -f "$WORK/one.sql@8" -f "$WORK/range.sql@2" -f "$WORK/insert.sql@1" postgres
}

run_load 8 >"$WORK/pgbench1.log" 2>&1 || { cat "$WORK/pgbench1.log"; exit 1; }
grep -E "number of transactions actually processed" "$WORK/pgbench1.log"
check "after concurrent load"

# Crash mid-load: committed changes and their log rows survive together.
run_load 20 >"$WORK/pgbench2.log" 2>&1 &
LOAD_PID=$!
sleep 5
cluster_kill9
wait "$LOAD_PID" || true   # pgbench loses its connections: expected
check "after kill -9 and recovery"
run_load 3 >"$WORK/pgbench3.log" 2>&1 || { cat "$WORK/pgbench3.log"; exit 1; }
check "after more load on the recovered server"
rm -rf "$WORK"
