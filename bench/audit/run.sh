#!/usr/bin/env bash
# Audit benchmark, one run on a fresh cluster (fsync on):
#   1M-row UPDATE with no trigger, native audit (statement and row level),
#   PL/pgSQL to_jsonb(OLD)/to_jsonb(NEW) audit, native set_updated_at,
#   PL/pgSQL updated_at, contrib moddatetime; each REPS times, median reported;
#   then single-row UPDATE latency with and without audit (pgbench).
#   Design alternatives for the log's key index (analysis of the 1.6x target,
#   bench/RESULTS.md section 2): no key index, only a btree on id (the
#   cheapest index PostgreSQL can maintain per row), a BRIN bloom key index
#   (maintained later by autovacuum), and the shipped design with a log that
#   already holds a 1M-row history; then row_history latency, hash vs BRIN.
#   Each timing also reports the WAL and temporary-file bytes it wrote.
# Usage: bench/audit/run.sh [rows=1000000] [reps=3] [pgbench_seconds=20]
#   AUDIT_VARIANTS="none native_audit ..." times only those (default: all);
#   AUDIT_TAIL=0 skips the pgbench latencies and the history lookups.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-1000000}
REPS=${2:-3}
PGBENCH_SECONDS=${3:-20}
source scripts/lib/cluster.sh
scripts/build
trap cluster_stop EXIT
cluster_start
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
P() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
P -c "CREATE EXTENSION workflow" -f bench/audit/reference.sql >/dev/null
TICK_MS=$((1000 / $(getconf CLK_TCK)))
P >/dev/null <<SQL
CREATE FUNCTION bench_cpu_ms() RETURNS bigint LANGUAGE sql AS \$\$
  SELECT (split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint) * $TICK_MS
  FROM pg_read_file('/proc/' || pg_backend_pid() || '/stat') AS s \$\$;
SQL

# The shipped key index of the log, restored before every timing (the
# design-alternative variants drop or replace it).
KEY_INDEX=$(P -At -c "SELECT indexdef FROM pg_indexes WHERE schemaname = 'workflow' AND indexname = 'audit_log_row_idx'")
BRIN_KEY_INDEX="CREATE INDEX audit_log_row_idx ON workflow.audit_log USING brin
  (jsonb_hash_extended(row_key, table_id::bigint) int8_bloom_ops(n_distinct_per_range = 200))
  WITH (pages_per_range = 4, autosummarize = on)"

# Fresh table of $ROWS rows, vacuumed, checkpointed: every timing starts alike.
# $1: SQL run before the checkpoint, one statement per line.
fresh_table() {
  P >/dev/null <<SQL
DROP INDEX IF EXISTS workflow.audit_log_row_idx, workflow.audit_log_id_only_idx;
$KEY_INDEX;
DROP TABLE IF EXISTS bench;
CREATE TABLE bench (id int PRIMARY KEY, status text NOT NULL, counter int NOT NULL,
                    payload text, updated_at timestamptz NOT NULL DEFAULT now());
INSERT INTO bench SELECT g, 'pending', 0, md5(g::text), now() FROM generate_series(1, $ROWS) g;
TRUNCATE workflow.audit_log, bench_plpgsql_log;
VACUUM ANALYZE bench; VACUUM workflow.audit_log; VACUUM bench_plpgsql_log;
SQL
  [ -n "$1" ] && P <<<"$1" >/dev/null
  P -c "CHECKPOINT" >/dev/null
}

# Milliseconds of one UPDATE of every row: "wall cpu wal_mb temp_mb", cpu =
# the backend's user+system time (/proc/PID/stat), which other load on the
# machine inflates much less than wall time; wal_mb and temp_mb what the
# statement wrote to the WAL and to temporary files (transition tables).
time_update() {
  fresh_table "$1"
  P -At <<SQL | awk '/^Time:/ {wall=$2} /^cpu / {cpu=$2; wal=$3; tmp=$4} END {print wall, cpu, wal, tmp}'
SELECT bench_cpu_ms() AS cpu0, pg_current_wal_insert_lsn() AS lsn0 \gset
SELECT pg_stat_reset();
\timing on
UPDATE bench SET counter = counter + 1, status = 'done';
\timing off
SELECT pg_stat_force_next_flush();
SELECT 'cpu ' || (bench_cpu_ms() - :cpu0) || ' '
    || round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0') / 1048576.0)
    || ' ' || (SELECT round(temp_bytes / 1048576.0) FROM pg_stat_database WHERE datname = current_database());
SQL
}

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

declare -A SETUP=(
  [none]=""
  [native_audit]="SELECT workflow.enable_audit('bench')"
  [native_audit_row]="SELECT workflow.enable_audit('bench', '{}', statement_level => false)"
  [plpgsql_audit]="CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON bench FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_audit()"
  [native_updated_at]="CREATE TRIGGER u BEFORE UPDATE ON bench FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at()"
  [plpgsql_updated_at]="CREATE TRIGGER u BEFORE UPDATE ON bench FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_updated_at()"
  [moddatetime]="CREATE TRIGGER u BEFORE UPDATE ON bench FOR EACH ROW EXECUTE FUNCTION moddatetime(updated_at)"
  # Design alternatives (the log's key index), native audit in each.
  [alt_no_key_index]="DROP INDEX workflow.audit_log_row_idx;
SELECT workflow.enable_audit('bench')"
  [alt_id_btree_only]="DROP INDEX workflow.audit_log_row_idx;
CREATE INDEX audit_log_id_only_idx ON workflow.audit_log (id);
SELECT workflow.enable_audit('bench')"
  [alt_brin_key_index]="DROP INDEX workflow.audit_log_row_idx;
$BRIN_KEY_INDEX;
SELECT workflow.enable_audit('bench')"
  [alt_grown_log]="SELECT workflow.enable_audit('bench');
UPDATE bench SET counter = counter - 1;
VACUUM bench"
)
ORDER=(none native_audit native_audit_row plpgsql_audit native_updated_at plpgsql_updated_at moddatetime
       alt_no_key_index alt_id_btree_only alt_brin_key_index alt_grown_log)
[ -n "${AUDIT_VARIANTS:-}" ] && read -r -a ORDER <<<"$AUDIT_VARIANTS"
declare -A WALL CPU
for rep in $(seq 1 "$REPS"); do     # interleaved, so drift hits every variant alike
  for v in "${ORDER[@]}"; do
    read -r wall cpu wal tmp < <(time_update "${SETUP[$v]}")
    WALL[$v]+="$wall "; CPU[$v]+="$cpu "
    echo "rep $rep $v: wall $wall ms, backend cpu $cpu ms, wal $wal MB, temp files $tmp MB" >&2
  done
done

echo "# $(nproc) cores, $(uptime | sed 's/.*load/load/')"
echo "# $ROWS-row UPDATE, median of $REPS: wall ms (ratio to no trigger), backend cpu ms (ratio)"
wbase=$(echo ${WALL[none]} | tr ' ' '\n' | median)
cbase=$(echo ${CPU[none]} | tr ' ' '\n' | median)
for v in "${ORDER[@]}"; do
  w=$(echo ${WALL[$v]} | tr ' ' '\n' | median)
  c=$(echo ${CPU[$v]} | tr ' ' '\n' | median)
  printf '%-20s wall %8.0f ms %5.2fx   cpu %8.0f ms %5.2fx   wall runs: %s\n' "$v" "$w" \
    "$(echo "$w / $wbase" | bc -l)" "$c" "$(echo "$c / $cbase" | bc -l)" "${WALL[$v]}"
done

[ "${AUDIT_TAIL:-1}" = 0 ] && exit 0
# Single-row UPDATE latency: 1 client, random row of a 100k-row table.
echo "# single-row UPDATE latency (pgbench, 1 client, ${PGBENCH_SECONDS}s each)"
cat >/tmp/wf_bench_one.$$.sql <<'SQL'
\set id random(1, 100000)
UPDATE bench SET counter = counter + 1 WHERE id = :id;
SQL
for v in none native_audit native_audit_row plpgsql_audit; do
  ROWS_SAVED=$ROWS; ROWS=100000; fresh_table "${SETUP[$v]}"; ROWS=$ROWS_SAVED
  lat=$(pgbench -n -c 1 -T "$PGBENCH_SECONDS" -f /tmp/wf_bench_one.$$.sql postgres 2>/dev/null \
        | awk -F'= ' '/latency average/ {print $2}')
  printf '%-20s latency average %s\n' "$v" "$lat"
done
rm -f /tmp/wf_bench_one.$$.sql

# History lookup latency: the same 5M-row log (5 UPDATEs of 1M rows) with the
# shipped hash key index and with the BRIN alternative; 200 random keys each.
lookup_ms() {
  P -At <<SQL | awk '/^Time:/ {t += $2; n++} END {printf "%.3f", t / n}'
\\timing on
$(for i in $(seq 200); do echo "SELECT count(*) FROM workflow.row_history('bench', jsonb_build_object('id', $(( (i * 7919) % ROWS + 1 ))));"; done)
SQL
}
echo "# row_history latency on a 5-update history of $ROWS rows (mean of 200 random keys)"
for v in hash brin; do
  setup="SELECT workflow.enable_audit('bench')"
  [ $v = brin ] && setup="DROP INDEX workflow.audit_log_row_idx;
$BRIN_KEY_INDEX;
$setup"
  fresh_table "$setup"
  for i in 1 2 3 4 5; do P -c "UPDATE bench SET counter = counter + 1" >/dev/null; done
  P -c "VACUUM workflow.audit_log" >/dev/null   # BRIN: summarises the ranges, as autovacuum would
  printf '%-20s %s rows in the log, row_history %s ms\n' "$v" \
    "$(P -At -c 'SELECT count(*) FROM workflow.audit_log')" "$(lookup_ms)"
done
fresh_table ""
