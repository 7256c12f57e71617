#!/usr/bin/env bash
# The `workflow` CLI when the server goes away (README "CLI `workflow`": exit 2
# for a lost server, with the reason on stderr). Its OWN throw-away cluster.
#  1. `export` whose connection is terminated mid-stream, after rows were
#     written: no row may be written twice (a retry on a new connection would
#     stream them all again), so it fails with exit 2 and says why; with
#     -o FILE, FILE is left as it was (the export goes to FILE.partial-PID,
#     renamed over FILE only when complete).
#  2. `health` against a stopped server: exit 2 with libpq's reason, after
#     trying for the whole --wait-ms.
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
killed_export() {  # file_being_written_glob export_args... -> exit code of the export
  sql "DELETE FROM killed" >/dev/null
  $CLI export --query "$Q" --format csv "${@:2}" 2>"$WORK/err" &
  EXPORT_PID=$!
  for _ in $(seq 1 300); do
    compgen -G "$1" >/dev/null && [ -s "$(compgen -G "$1" | head -1)" ] &&
      [ "$(sql "SELECT count(*) FROM pg_stat_activity
        WHERE application_name = 'workflow-cli' AND wait_event = 'PgSleep'")" = 1 ] && break
    sleep 0.1
  done
  sql "INSERT INTO killed VALUES (now())"
  sql "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
       WHERE application_name = 'workflow-cli' AND wait_event = 'PgSleep'" >/dev/null
  wait "$EXPORT_PID"; local rc=$?; EXPORT_PID=
  return $rc
}
#  a. To stdout: no row written twice, exit 2 saying why.
killed_export "$WORK/out.csv" >"$WORK/out.csv"; rc=$?
dups=$(cut -d, -f1 "$WORK/out.csv" | sort | uniq -d | wc -l)
rows=$(($(wc -l <"$WORK/out.csv") - 1))
if [ "$dups" = 0 ]; then ok "export with its connection lost mid-stream: no row written twice ($rows rows)"
else bad "export with its connection lost mid-stream: $dups rows written twice ($rows rows, exit $rc)"; fi
cat "$WORK/err"
if [ "$rc" = 2 ] && grep -q "not retried" "$WORK/err" && grep -q "SQLSTATE" "$WORK/err"; then
  ok "... and it fails (exit 2) saying it was not retried, with the SQLSTATE"
else bad "... exit $rc (want 2), stderr: $(cat "$WORK/err")"; fi
#  b. With -o FILE over an earlier export: FILE is left as it was, and no
#     partial file stays behind (it was written in place, truncated, before).
printf 'earlier export\n' >"$WORK/keep.csv"
killed_export "$WORK/keep.csv.partial-*" -o "$WORK/keep.csv"; rc=$?
left=$(compgen -G "$WORK/keep.csv.partial-*" | wc -l)
if [ "$rc" = 2 ] && [ "$(cat "$WORK/keep.csv")" = "earlier export" ] && [ "$left" = 0 ] &&
   grep -q "was left as it was" "$WORK/err"; then
  ok "export -o FILE with its connection lost mid-stream: exit 2, FILE as it was, no partial file left"
else bad "export -o FILE lost mid-stream: exit $rc, FILE now $(wc -l <"$WORK/keep.csv") lines, $left partial files, stderr: $(cat "$WORK/err")"; fi
#  c. And a complete one replaces FILE with all 4,000 rows and the header,
#     keeping FILE's mode.
chmod 600 "$WORK/keep.csv"
$CLI export --query "SELECT g FROM generate_series(1, 4000) g" -o "$WORK/keep.csv" 2>"$WORK/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(wc -l <"$WORK/keep.csv")" = 4001 ] && [ "$(compgen -G "$WORK/keep.csv.partial-*" | wc -l)" = 0 ] &&
   [ "$(stat -c %a "$WORK/keep.csv")" = 600 ]; then
  ok "export -o FILE that completes: FILE replaced (4,001 lines, mode 600 kept), no partial file left"
else bad "export -o FILE: exit $rc, $(wc -l <"$WORK/keep.csv") lines, mode $(stat -c %a "$WORK/keep.csv"), stderr: $(cat "$WORK/err")"; fi
#  d. A symbolic link and /dev/stdout are written in place: the link stays a
#     link (a rename would have replaced it, or /dev/stdout, with a file).
ln -s keep.csv "$WORK/link.csv"
$CLI export --query "SELECT 7 AS x" -o "$WORK/link.csv" 2>"$WORK/err"; rc=$?
out=$($CLI export --query "SELECT 8 AS y" -o /dev/stdout 2>/dev/null)
if [ "$rc" = 0 ] && [ -L "$WORK/link.csv" ] && [ "$(cat "$WORK/keep.csv")" = $'x\n7' ] && [ "$out" = $'y\n8' ] &&
   [ -L /dev/stdout ] && [ "$(compgen -G "/dev/stdout.partial-*" | wc -l)" = 0 ]; then
  ok "export -o LINK and -o /dev/stdout: written in place, the links kept"
else bad "export -o LINK / /dev/stdout: exit $rc, link.csv $(stat -c %F "$WORK/link.csv"), keep.csv '$(cat "$WORK/keep.csv")', stdout '$out', /dev/stdout $(stat -c %F /dev/stdout)"; fi

# 2. A stopped server: `health` names libpq's reason and exits 2.
_wf_as_owner "$PG_BINDIR/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1
t0=$(date +%s%N)
$CLI health --wait-ms 1500 >/dev/null 2>"$WORK/err"; rc=$?
waited_ms=$(( ($(date +%s%N) - t0) / 1000000 ))
# Behaviour, not speed: it may not give up before the time it was given
# (it used to give up one backoff before the deadline).
if [ "$waited_ms" -ge 1500 ]; then ok "health --wait-ms 1500 against a stopped server tried until the end ($waited_ms ms)"
else bad "health --wait-ms 1500 gave up after $waited_ms ms"; fi
if [ "$rc" = 2 ] && grep -q "Connection refused" "$WORK/err"; then
  ok "health against a stopped server: exit 2 with libpq's reason"
else bad "health against a stopped server: exit $rc (want 2), stderr: $(cat "$WORK/err")"; fi

[ "$fail" = 0 ] && echo "PASS cli_lost_server" || echo "FAIL cli_lost_server"
exit "$fail"
