#!/usr/bin/env bash
# Audit hot paths, project and anchors side by side in one run (issue 10):
#
# Reading: row_history of one row on a log holding the history of a
# $ROWS-row UPDATE, against the same UPDATE logged by
#   - plpgsql:  the usual PL/pgSQL to_jsonb(OLD)/to_jsonb(NEW) log with a btree on
#               (table, row id) (bench/audit/reference.sql), read by that index;
#   - supa:     supa_audit's design (bench/audit/supa_audit.sql), read by its
#               record_id / old_record_id indexes;
#   - v1_0:     1.0's PL/pgSQL row_history on the native log (before this change);
#   - native:   workflow.row_history as superuser, and native_role: as a role with
#               only SELECT on the table (the log's row-level security applies).
# Each round opens a new session per design: its first call is the "first
# call", then $CALLS more keys give the warm median. Per call: execution time
# (EXPLAIN ANALYZE, as in the issue's figures) and the server's whole time for
# the statement (log_min_duration_statement: parse, plan, execute).
#
# Writing: backend CPU (/proc/<pid>/stat) per single-row autocommit UPDATE
# (synchronous_commit off), $WRITES random rows of a $ROWS-row table per
# round and design: none, native audit, PL/pgSQL audit; then the bulk ratio:
# one UPDATE of every row, none vs native, each of a table freshly loaded,
# vacuumed and checkpointed in that round (as bench/audit/run.sh does: an
# UPDATE of a table that was updated and vacuumed before is a HOT update,
# much cheaper without audit, while the log's writing is not, so reusing
# the tables made the ratio of later rounds larger; the log itself keeps
# growing: bench/audit/instructions.sh counts no difference between a fresh
# and a grown log). Rounds interleave the designs.
#
# Usage: bench/audit/hotpath.sh [rows=300000] [rounds=3] [calls=200] [writes=5000]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROWS=${1:-300000}
ROUNDS=${2:-3}
CALLS=${3:-200}
WRITES=${4:-5000}
source scripts/lib/cluster.sh
scripts/build
trap cluster_stop EXIT
cluster_start synchronous_commit=off
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
P() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
LOG=$WF_CLUSTER_DIR/server.log
TICK_US=$((1000000 / $(getconf CLK_TCK)))
echo "# $(date -u +%FT%TZ) $(nproc) cores, start: $(uptime | sed 's/.*load/load/')"

P -c "CREATE EXTENSION workflow" -f bench/audit/reference.sql -f bench/audit/supa_audit.sql >/dev/null
# 1.0's row_history, verbatim but for its name (src/sql/released/workflow--1.0.sql).
sed -n '/^CREATE FUNCTION workflow.row_history(target regclass, key jsonb)/,/^\$\$;/p' \
    src/sql/released/workflow--1.0.sql | sed 's/workflow.row_history(target/bench_row_history_1_0(target/' | P >/dev/null
P >/dev/null <<SQL
CREATE FUNCTION bench_cpu_us() RETURNS bigint LANGUAGE sql AS \$\$
  SELECT (split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint) * $TICK_US
  FROM pg_read_file('/proc/' || pg_backend_pid() || '/stat') AS s \$\$;
CREATE ROLE bench_reader LOGIN;
ALTER ROLE bench_reader SET log_min_duration_statement = 0;
GRANT USAGE ON SCHEMA workflow TO bench_reader;
SQL
make_table() {  # name
  P -c "CREATE TABLE $1 (id int PRIMARY KEY, status text NOT NULL, counter int NOT NULL,
                         payload text, updated_at timestamptz NOT NULL DEFAULT now())" \
    -c "INSERT INTO $1 SELECT g, 'pending', 0, md5(g::text), now() FROM generate_series(1, $ROWS) g"
}

# ---- the logs: one UPDATE of every row of each design's table
for t in h_native h_plpgsql h_supa; do make_table $t; done
P -c "GRANT SELECT ON h_native TO bench_reader" >/dev/null
P -c "SELECT workflow.enable_audit('h_native')" >/dev/null
P -c "CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON h_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_audit()"
P -c "UPDATE h_native SET counter = counter + 1, status = 'done'"
P -c "UPDATE h_plpgsql SET counter = counter + 1, status = 'done'"
# supa_audit's row trigger takes ~4 minutes for these 300k changes here; its
# rows are written by one INSERT with the trigger's own expressions instead.
P <<'SQL'
INSERT INTO audit.record_version (record_id, old_record_id, op, table_oid, table_schema, table_name, record, old_record)
SELECT rid, rid, 'UPDATE', 'h_supa'::regclass, 'public', 'h_supa',
       to_jsonb(r) || '{"counter": 1, "status": "done"}', to_jsonb(r)
FROM h_supa r, LATERAL (SELECT audit.to_record_id('h_supa'::regclass, audit.primary_key_columns('h_supa'::regclass), to_jsonb(r)) AS rid) x;
UPDATE h_supa SET counter = counter + 1, status = 'done';
SQL
P -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
P -At -c "SELECT 'log rows: native ' || (SELECT count(*) FROM workflow.audit_log) || ', plpgsql ' || (SELECT count(*) FROM bench_plpgsql_log) || ', supa ' || (SELECT count(*) FROM audit.record_version)"

declare -A READ=(
  [native]="SELECT * FROM workflow.row_history('h_native', jsonb_build_object('id', %k))"
  [native_role]="SELECT * FROM workflow.row_history('h_native', jsonb_build_object('id', %k))"
  [v1_0]="SELECT * FROM bench_row_history_1_0('h_native', jsonb_build_object('id', %k))"
  [plpgsql]="SELECT * FROM bench_plpgsql_log WHERE table_name = 'h_plpgsql' AND row_id = %k ORDER BY id"
  [supa]="SELECT * FROM audit.record_version WHERE record_id = audit.to_record_id('h_supa'::regclass, ARRAY['id'], jsonb_build_object('id', %k)) OR old_record_id = audit.to_record_id('h_supa'::regclass, ARRAY['id'], jsonb_build_object('id', %k)) ORDER BY id"
)
READ_ORDER=(native native_role plpgsql supa v1_0)
median() { sort -g | awk '{a[NR]=$1} END {if (NR == 0) print "nan"; else print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }

# One session: first call + $CALLS warm calls. Prints
# "first_exec first_total warm_exec_median warm_total_median rows_of_first".
read_session() {  # design round
  local d=$1 r=$2 sql=${READ[$1]} user=postgres opts="-c client_min_messages=warning -c log_min_duration_statement=0"
  [ "$d" = native_role ] && { user=bench_reader; opts="-c client_min_messages=warning"; }
  local start out
  start=$(wc -l <"$LOG")
  out=$(for i in $(seq 0 "$CALLS"); do
          k=$(( (i * 7919 + r * 104729) % ROWS + 1 ))
          echo "/*hp:$d:$r:$i*/ EXPLAIN (ANALYZE, TIMING OFF, COSTS OFF) ${sql//%k/$k};"
        done | PGOPTIONS="$opts" psql -X -At -U "$user" | grep -E 'Execution Time|rows=' )
  sleep 0.3
  local exec_times totals
  exec_times=$(grep 'Execution Time' <<<"$out" | awk '{print $3}')
  totals=$(tail -n +"$((start + 1))" "$LOG" | grep -F "statement: /*hp:$d:$r:" |
           sed -E 's/.*duration: ([0-9.]+) ms.*hp:[a-z_0-9]+:[0-9]+:([0-9]+)\*\/.*/\2 \1/' | sort -n | awk '{print $2}')
  local rows
  rows=$(grep -m1 -oE 'rows=[0-9]+' <<<"$out" | head -1)
  echo "$(head -1 <<<"$exec_times") $(head -1 <<<"$totals") $(tail -n +2 <<<"$exec_times" | median) $(tail -n +2 <<<"$totals" | median) $rows"
}

declare -A R_FIRST R_FIRST_TOTAL R_WARM R_WARM_TOTAL
for r in $(seq 1 "$ROUNDS"); do
  load=$(uptime | sed 's/.*load average: //')
  for d in "${READ_ORDER[@]}"; do
    read -r fe ft we wt rows < <(read_session "$d" "$r")
    R_FIRST[$d]+="$fe "; R_FIRST_TOTAL[$d]+="$ft "; R_WARM[$d]+="$we "; R_WARM_TOTAL[$d]+="$wt "
    printf 'read round %d %-12s first call exec %7.3f ms (server total %7.3f)  warm median exec %6.3f ms (server total %6.3f)  %s  load %s\n' \
      "$r" "$d" "$fe" "${ft:-nan}" "$we" "${wt:-nan}" "$rows" "$load"
  done
done

# ---- writes
for t in w_none w_native w_plpgsql; do make_table $t >/dev/null; done
P -c "SELECT workflow.enable_audit('w_native')" >/dev/null
P -c "CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON w_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_audit()" >/dev/null
P -c "VACUUM ANALYZE w_none, w_native, w_plpgsql" -c "CHECKPOINT" >/dev/null
single_us() {  # table round -> backend CPU us per statement
  { echo "SELECT bench_cpu_us() AS c0 \\gset"
    for i in $(seq 1 "$WRITES"); do
      echo "UPDATE $1 SET counter = counter + 1 WHERE id = $(( (i * 7919 + $2 * 15485863) % ROWS + 1 ));"
    done
    echo "SELECT round((bench_cpu_us() - :c0)::numeric / $WRITES, 1);"
  } | P -At
}
bulk_ms() {  # table -> "ms wal_mb": backend CPU ms of one UPDATE of every row of a fresh
             # copy of it, and the MB of WAL it wrote (full-page images of the pages it
             # touches first after the checkpoint included)
  P -q -c "DROP TABLE IF EXISTS $1_bulk" >/dev/null
  make_table "$1_bulk" >/dev/null
  [ "$1" = w_native ] && P -c "SELECT workflow.enable_audit('$1_bulk')" >/dev/null
  P -c "VACUUM ANALYZE $1_bulk" -c "CHECKPOINT" >/dev/null
  P -At <<SQL
SELECT bench_cpu_us() AS c0, pg_current_wal_insert_lsn() AS l0 \gset
UPDATE $1_bulk SET counter = counter + 1, status = 'bulk';
SELECT round((bench_cpu_us() - :c0) / 1000.0) || ' '
       || round(pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'l0') / 1048576.0);
SQL
}
declare -A W_SINGLE W_BULK
WRITE_ORDER=(none native plpgsql)
for r in $(seq 1 "$ROUNDS"); do
  load=$(uptime | sed 's/.*load average: //')
  line="write round $r single-row UPDATE backend CPU us:"
  for d in "${WRITE_ORDER[@]}"; do
    us=$(single_us "w_$d" "$r"); W_SINGLE[$d]+="$us "; line+=" $d $us"
  done
  line+=" | key index $(P -At -c "SELECT pg_size_pretty(pg_relation_size('workflow.audit_log_row_idx'))")"
  for d in none native; do
    read -r ms wal < <(bulk_ms "w_$d"); W_BULK[$d]+="$ms "; line+=" | bulk $d ${ms} ms (WAL ${wal} MB)"
  done
  echo "$line  load $load"
done

echo "# end: $(uptime | sed 's/.*load/load/')"
echo "# medians of $ROUNDS rounds"
for d in "${READ_ORDER[@]}"; do
  printf 'read %-12s first call exec %7.3f ms, server total %7.3f ms; warm exec %6.3f ms, server total %6.3f ms\n' "$d" \
    "$(echo ${R_FIRST[$d]} | tr ' ' '\n' | median)" "$(echo ${R_FIRST_TOTAL[$d]} | tr ' ' '\n' | median)" \
    "$(echo ${R_WARM[$d]} | tr ' ' '\n' | median)" "$(echo ${R_WARM_TOTAL[$d]} | tr ' ' '\n' | median)"
done
none=$(echo ${W_SINGLE[none]} | tr ' ' '\n' | median)
for d in "${WRITE_ORDER[@]}"; do
  m=$(echo ${W_SINGLE[$d]} | tr ' ' '\n' | median)
  printf 'write single-row %-8s %7.1f us  %5.2fx\n' "$d" "$m" "$(echo "$m / $none" | bc -l)"
done
bn=$(echo ${W_BULK[none]} | tr ' ' '\n' | median); ba=$(echo ${W_BULK[native]} | tr ' ' '\n' | median)
printf 'write bulk %d rows   none %s ms, native %s ms  %5.2fx\n' "$ROWS" "$bn" "$ba" "$(echo "$ba / $bn" | bc -l)"
