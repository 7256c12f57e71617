#!/usr/bin/env bash
# Audit write costs in instructions, counted by valgrind's callgrind: a count,
# repeatable whatever else the shared machine is doing (bench/engine/instructions.sh
# does the same for the engine).
#
# Single row: autocommit `UPDATE t SET counter = counter + 1 WHERE id = k` of
# a random row of a $ROWS-row table, in a single-user backend (`postgres
# --single`, one transaction per line, synchronous_commit off), N and 2N
# statements; (2N run - N run) / N is one statement, start-up excluded.
# Designs: none, native (statement-level audit, what enable_audit attaches),
# native_row (row-level mode), plpgsql (bench/audit/reference.sql).
#
# Bulk: one `UPDATE t SET counter = counter + 1, status = 'bulk'` of all
# $BULK rows, counted inside PortalRun only (the statement, its triggers;
# not the session's start or its commit), after a warm-up UPDATE of no row
# (it loads the session's caches; its own count is subtracted), each from a
# copy of the same stopped cluster, so every count starts alike:
#   none         no trigger
#   fresh        native audit, empty log
#   grown        native audit, the log already holds $GROWN rows of another
#                table's history (hotpath.sh's bulk runs on such a log)
#   grown_same   as grown, and the log also holds one earlier UPDATE of these
#                very rows (the same keys again); the table was vacuumed after
#                it, so this UPDATE is a HOT one too: compared with none_hot
#   none_hot, native_hot: the table was updated once and vacuumed before, so
#                every page has room and the UPDATE is a HOT update (no new
#                primary-key index entries): hotpath.sh's bulk rounds 2 and
#                later, which VACUUM the table after each round's UPDATE
#
# Usage: bench/audit/instructions.sh [N=1000] [ROWS=300000] [BULK=30000] [GROWN=300000]
#   KEEP=dir keeps the callgrind files (callgrind_annotate --inclusive=yes them).
#   SINGLE=0 / BULKS=0 skip a part; SINGLE_DESIGNS="none native" / BULK_DESIGNS="none fresh"
#   pick designs. NOBUILD=1 skips scripts/build.
set -euo pipefail
cd "$(dirname "$0")/../.."
N=${1:-1000}
ROWS=${2:-300000}
BULK=${3:-30000}
GROWN=${4:-300000}
source scripts/lib/cluster.sh
[ -n "${NOBUILD:-}" ] || scripts/build
WORK=$(mktemp -d); chmod 777 "$WORK"
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start >/dev/null
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
export PGOPTIONS="-c client_min_messages=warning"
"${PSQL[@]}" -c "CREATE EXTENSION workflow" -f bench/audit/reference.sql >/dev/null
make_table() {  # name rows
  "${PSQL[@]}" -c "CREATE TABLE $1 (id int PRIMARY KEY, status text NOT NULL, counter int NOT NULL,
                                    payload text, updated_at timestamptz NOT NULL DEFAULT now())" \
               -c "INSERT INTO $1 SELECT g, 'pending', 0, md5(g::text), now() FROM generate_series(1, $2) g"
}
for t in s_none s_native s_native_row s_plpgsql; do make_table $t "$ROWS"; done
for t in b_none b_native b_native_same b_none_hot b_native_hot; do make_table $t "$BULK"; done
make_table g_native "$GROWN"
"${PSQL[@]}" >/dev/null <<SQL
SELECT workflow.enable_audit('s_native');
SELECT workflow.enable_audit('s_native_row', '{}', statement_level => false);
CREATE TRIGGER a AFTER INSERT OR UPDATE OR DELETE ON s_plpgsql FOR EACH ROW EXECUTE FUNCTION bench_plpgsql_audit();
SELECT workflow.enable_audit('b_native');
SELECT workflow.enable_audit('b_native_same');
SELECT workflow.enable_audit('b_native_hot');
SELECT workflow.enable_audit('g_native');
VACUUM ANALYZE;
CHECKPOINT;
SQL
stop() { _wf_as_owner "$PG_BINDIR/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m fast -w stop >/dev/null; }
stop
SINGLE_OPTS=(-c synchronous_commit=off -c shared_buffers=512MB -c max_wal_size=4GB)

run_cg() {  # out datadir [callgrind options...] <stdin: statements
  local out=$1 data=$2; shift 2
  _wf_as_owner valgrind --tool=callgrind --callgrind-out-file="$out" "$@" \
    "$PG_BINDIR/postgres" --single -D "$data" "${SINGLE_OPTS[@]}" postgres \
    >"$WORK/out.log" 2>"$WORK/vg.log" || { tail "$WORK/vg.log" "$WORK/out.log" >&2; return 1; }
  if grep -q ERROR "$WORK/out.log"; then grep ERROR "$WORK/out.log" >&2; return 1; fi
  grep -m1 '^summary:' "$out" | awk '{ print $2 }'
}

declare -A PER
if [ "${SINGLE:-1}" != 0 ]; then
  SDESIGNS=(${SINGLE_DESIGNS:-none native native_row plpgsql})
  for d in "${SDESIGNS[@]}"; do
    for calls in "$N" $((2 * N)); do
      seq 1 "$calls" | awk -v n="$ROWS" -v t="s_$d" -v c="$calls" \
        '{ printf "UPDATE %s SET counter = counter + 1 WHERE id = %d\n", t, ($1 * 7919 + c) % n + 1 }' >"$WORK/in.sql"
      cnt[$calls]=$(run_cg "$WORK/single.$d.$calls.cg" "$WF_CLUSTER_DIR/data" <"$WORK/in.sql")
    done
    PER[$d]=$(( (cnt[$((2 * N))] - cnt[$N]) / N ))
    echo "single $d: ${cnt[$N]} instructions for $N statements, ${cnt[$((2 * N))]} for $((2 * N)): ${PER[$d]} per statement"
  done
  echo
  echo "| single-row UPDATE | instructions per statement | vs none |"
  echo "|---|---:|---:|"
  for d in "${SDESIGNS[@]}"; do
    awk -v d="$d" -v p="${PER[$d]}" -v b="${PER[none]}" 'BEGIN { printf "| %s | %d | %.3fx |\n", d, p, p / b }'
  done
  echo
fi

if [ "${BULKS:-1}" != 0 ]; then
  # Templates: the stopped cluster with an empty log, and with the grown log.
  cp -a "$WF_CLUSTER_DIR/data" "$WORK/t_fresh"
  _wf_cluster_start_server
  "${PSQL[@]}" -c "TRUNCATE workflow.audit_log" -c "VACUUM workflow.audit_log" -c "CHECKPOINT" >/dev/null
  stop; rm -rf "$WORK/t_fresh"; cp -a "$WF_CLUSTER_DIR/data" "$WORK/t_fresh"
  _wf_cluster_start_server
  "${PSQL[@]}" -c "UPDATE g_native SET counter = counter + 1, status = 'done'" \
               -c "UPDATE b_native_same SET counter = counter + 1, status = 'done'" \
               -c "UPDATE b_none_hot SET counter = counter + 1, status = 'done'" \
               -c "UPDATE b_native_hot SET counter = counter + 1, status = 'done'" \
               -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null
  "${PSQL[@]}" -At -c "SELECT 'grown log: ' || count(*) || ' rows, ' || pg_size_pretty(pg_relation_size('workflow.audit_log')) || ' heap, key index ' || pg_size_pretty(pg_relation_size('workflow.audit_log_row_idx')) FROM workflow.audit_log"
  stop; cp -a "$WF_CLUSTER_DIR/data" "$WORK/t_grown"
  declare -A BULK_TABLE=([none]=b_none [fresh]=b_native [grown]=b_native [grown_same]=b_native_same
                         [none_hot]=b_none_hot [native_hot]=b_native_hot)
  declare -A BULK_TEMPLATE=([none]=t_fresh [fresh]=t_fresh [grown]=t_grown [grown_same]=t_grown
                            [none_hot]=t_grown [native_hot]=t_grown)
  declare -A BI
  BDESIGNS=(${BULK_DESIGNS:-none fresh grown grown_same none_hot native_hot})
  for d in "${BDESIGNS[@]}"; do
    warm="UPDATE ${BULK_TABLE[$d]} SET counter = counter + 1, status = 'bulk' WHERE id < 0"
    rm -rf "$WORK/run"; cp -a "$WORK/${BULK_TEMPLATE[$d]}" "$WORK/run"
    w=$(echo "$warm" | run_cg "$WORK/warm.$d.cg" "$WORK/run" --toggle-collect=PortalRun)
    rm -rf "$WORK/run"; cp -a "$WORK/${BULK_TEMPLATE[$d]}" "$WORK/run"
    b=$(printf '%s\nUPDATE %s SET counter = counter + 1, status = '"'bulk'"'\n' "$warm" "${BULK_TABLE[$d]}" |
        run_cg "$WORK/bulk.$d.cg" "$WORK/run" --toggle-collect=PortalRun)
    BI[$d]=$((b - w))
    echo "bulk $d: ${BI[$d]} instructions, $(( BI[$d] / BULK )) per row"
  done
  rm -rf "$WORK/run"
  echo
  echo "| bulk UPDATE of $BULK rows | instructions | per row | vs none (HOT ones: vs none_hot) |"
  echo "|---|---:|---:|---:|"
  for d in "${BDESIGNS[@]}"; do
    base=${BI[none]:-0}; case $d in *_hot|grown_same) base=${BI[none_hot]:-0} ;; esac
    awk -v d="$d" -v p="${BI[$d]}" -v b="$base" -v r="$BULK" \
      'BEGIN { printf "| %s | %d | %d | %s |\n", d, p, p / r, (b ? sprintf("%.3fx", p / b) : "-") }'
  done
fi
if [ -n "${KEEP:-}" ]; then mkdir -p "$KEEP"; cp "$WORK"/*.cg "$KEEP"/; fi
