#!/usr/bin/env bash
# Where a new session's first row_history goes (issue 10): server time
# (log_min_duration_statement) of the first statements of fresh sessions,
# the library loaded on demand against preloaded (shared_preload_libraries,
# a restart in each round), rounds interleaved. Per session kind:
#   load:    LOAD 'workflow' as the first statement, then row_history
#   cold:    row_history as the first statement
#   anchor:  a plain indexed SELECT of the audited table as the first statement
# Usage: bench/audit/first_call.sh [rounds=3] [sessions=15]
set -euo pipefail
cd "$(dirname "$0")/../.."
ROUNDS=${1:-3}
SESSIONS=${2:-15}
source scripts/lib/cluster.sh
scripts/build
trap cluster_stop EXIT
cluster_start synchronous_commit=off log_min_duration_statement=0 >/dev/null
export PGDATABASE=postgres PGOPTIONS="-c client_min_messages=warning"
P() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
LOG=$WF_CLUSTER_DIR/server.log
echo "# $(date -u +%FT%TZ) $(nproc) cores, start: $(uptime | sed 's/.*load/load/')"
P -c "CREATE EXTENSION workflow" \
  -c "CREATE TABLE h (id int PRIMARY KEY, status text NOT NULL, counter int NOT NULL, payload text)" \
  -c "INSERT INTO h SELECT g, 'pending', 0, md5(g::text) FROM generate_series(1, 100000) g" \
  -c "SELECT workflow.enable_audit('h')" -c "UPDATE h SET counter = counter + 1" \
  -c "VACUUM ANALYZE" -c "CHECKPOINT" >/dev/null

HISTORY="SELECT count(*) FROM workflow.row_history('h', jsonb_build_object('id', %k))"
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
durations() {  # tag -> server ms of the statements tagged /*tag*/
  grep -oE "duration: [0-9.]+ ms  statement: /\*$1\*/" "$LOG" | awk '{print $2}'
}

for r in $(seq 1 "$ROUNDS"); do
  for mode in on_demand preloaded; do
    if [ $mode = preloaded ]; then P -c "ALTER SYSTEM SET shared_preload_libraries = 'workflow'"
    else P -c "ALTER SYSTEM RESET shared_preload_libraries"; fi
    cluster_restart >/dev/null
    for i in $(seq 1 "$SESSIONS"); do
      k=$(( (i * 7919 + r * 104729) % 100000 + 1 ))
      psql -X -At -c "/*$mode:$r:load*/ LOAD 'workflow'" -c "/*$mode:$r:after_load*/ ${HISTORY//%k/$k}" >/dev/null
      psql -X -At -c "/*$mode:$r:cold*/ ${HISTORY//%k/$k}" >/dev/null
      psql -X -At -c "/*$mode:$r:anchor*/ SELECT * FROM h WHERE id = $k" >/dev/null
    done
    sleep 0.3
    printf 'round %d %-9s  medians of %d sessions, ms: LOAD %s, then row_history %s; row_history first %s; anchor first %s\n' \
      "$r" $mode "$SESSIONS" "$(durations $mode:$r:load | median)" "$(durations $mode:$r:after_load | median)" \
      "$(durations $mode:$r:cold | median)" "$(durations $mode:$r:anchor | median)"
  done
done
