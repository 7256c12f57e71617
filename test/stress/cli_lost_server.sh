#!/usr/bin/env bash
# The `workflow` CLI when the server goes away (README "CLI `workflow`": exit 2
# for a lost server, with the reason on stderr). Its OWN throw-away cluster.
#  1. `export` whose connection is terminated mid-stream, after rows were
#     written: no row may be written twice (a retry on a new connection would
#     stream them all again), so it fails with exit 2 and says why.
#  2. `health` against a stopped server: exit 2 with libpq's reason.
#   test/stress/cli_lost_server.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-cli-lost.XXXXXX)
EXPORT_PID=
trap '[ -n "$EXPORT_PID" ] && kill "$EXPORT_PID" 2>/dev/null; cluster_stop; rm -rf "$WORK"' EXIT
cluster_start >/dev/null || { echo "FAIL: cluster did not start"; exit 1; }
psql -qX -c "CREATE EXTENSION workflow" -c "CREATE TABLE killed (at timestamptz)" || exit 1

source scripts/lib/cli_checks.sh   # CLI, fail, ok, bad, sql

# 1. 4,000 rows of ~110 bytes; the 2,000th sleeps until the table `killed`
#    has a row, so the rows before it are streamed and written first. The
#    backend is terminated during that sleep; a second attempt would not sleep.
Q="SELECT g, repeat('x', 100) AS pad,
          pg_sleep(CASE WHEN g = 2000 AND NOT EXISTS (SELECT FROM killed) THEN 60 ELSE 0 END) AS s
   FROM generate_series(1, 4000) g"
$CLI export --query "$Q" --format csv -o "$WORK/out.csv" 2>"$WORK/err" &
EXPORT_PID=$!
for _ in $(seq 1 300); do
  [ -s "$WORK/out.csv" ] && [ "$(sql "SELECT count(*) FROM pg_stat_activity
      WHERE application_name = 'workflow-cli' AND wait_event = 'PgSleep'")" = 1 ] && break
  sleep 0.1
done
sql "INSERT INTO killed VALUES (now())"
sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
     WHERE application_name = 'workflow-cli' AND wait_event = 'PgSleep'" >/dev/null
wait "$EXPORT_PID"; rc=$?; EXPORT_PID=
dups=$(cut -d, -f1 "$WORK/out.csv" | sort | uniq -d | wc -l)
rows=$(($(wc -l <"$WORK/out.csv") - 1))
if [ "$dups" = 0 ]; then ok "export with its connection lost mid-stream: no row written twice ($rows rows)"
else bad "export with its connection lost mid-stream: $dups rows written twice ($rows rows, exit $rc)"; fi
cat "$WORK/err"
if [ "$rc" = 2 ] && grep -q "not retried" "$WORK/err" && grep -q "SQLSTATE" "$WORK/err"; then
  ok "... and it fails (exit 2) saying it was not retried, with the SQLSTATE"
else bad "... exit $rc (want 2), stderr: $(cat "$WORK/err")"; fi

# 2. A stopped server: `health` names libpq's reason and exits 2.
_wf_as_owner "$PG_BINDIR/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1
$CLI health --wait-ms 300 >/dev/null 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && grep -q "Connection refused" "$WORK/err"; then
  ok "health against a stopped server: exit 2 with libpq's reason"
else bad "health against a stopped server: exit $rc (want 2), stderr: $(cat "$WORK/err")"; fi

[ "$fail" = 0 ] && echo "PASS cli_lost_server" || echo "FAIL cli_lost_server"
exit "$fail"
