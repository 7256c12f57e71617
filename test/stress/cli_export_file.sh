#!/usr/bin/env bash
# `workflow export -o FILE` the way users point it at files (README: "a
# failed export leaves an existing FILE as it was"). Its OWN throw-away
# cluster; runs as root (it exports as `nobody` to check permissions).
#  1. -o LINK (a symbolic link, written in place) with a query that fails:
#     the link's target is left as it was (it was truncated before the query).
#  2. A FILE we may not write (mode 444) is refused, not replaced.
#  3. A writable FILE in a directory we cannot write is written (in place).
#  4. root exporting over another user's FILE keeps its owner and group.
#  5. A FILE with another hard link: both names keep showing one content.
#  6. A symbolic link planted at FILE.partial-PID is not followed.
#   test/stress/cli_export_file.sh        (CLI=path overrides build/workflow)
set -uo pipefail
cd "$(dirname "$0")/../.."
[ "$(id -u)" = 0 ] || { echo "FAIL: needs root (it exports as nobody to check permissions; the test command runs as root)"; exit 1; }
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-cli-export-file.XXXXXX)
chmod 755 "$WORK"
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start >/dev/null || { echo "FAIL: cluster did not start"; exit 1; }
psql -qX -c "CREATE EXTENSION workflow" || exit 1
want_cli=${CLI:-}
source scripts/lib/cli_checks.sh   # CLI, fail, ok, bad, sql
[ -n "$want_cli" ] && CLI=$want_cli
CLI=$(realpath "$CLI")
as_nobody() { runuser -u nobody -- env PGHOST="$PGHOST" PGPORT="$PGPORT" PGUSER=postgres "$@"; }

# 1.
printf 'precious\n' >"$WORK/target.csv"
ln -s target.csv "$WORK/link.csv"
$CLI export --query "SELEC 1" -o "$WORK/link.csv" 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && [ "$(cat "$WORK/target.csv")" = precious ] && [ -L "$WORK/link.csv" ]; then
  ok "export -o LINK with a failing query: exit 2, the link's target left as it was"
else bad "export -o LINK with a failing query: exit $rc, target now '$(cat "$WORK/target.csv")'"; fi

# 2.
mkdir "$WORK/rw"; chmod 777 "$WORK/rw"
printf 'read-only\n' >"$WORK/rw/ro.csv"; chmod 444 "$WORK/rw/ro.csv"; chown nobody: "$WORK/rw/ro.csv"
as_nobody "$CLI" export --query "SELECT 1 AS x" -o "$WORK/rw/ro.csv" 2>"$WORK/err"; rc=$?
if [ "$rc" = 2 ] && [ "$(cat "$WORK/rw/ro.csv")" = read-only ] && grep -q "Permission denied" "$WORK/err" &&
   [ "$(compgen -G "$WORK/rw/ro.csv.partial-*" | wc -l)" = 0 ]; then
  ok "export -o FILE that we may not write (444): refused (exit 2), FILE as it was"
else bad "export -o read-only FILE: exit $rc, FILE now '$(cat "$WORK/rw/ro.csv")', stderr: $(cat "$WORK/err")"; fi

# 3.
mkdir "$WORK/ro"; printf 'old\n' >"$WORK/ro/out.csv"; chmod 666 "$WORK/ro/out.csv"; chmod 755 "$WORK/ro"
as_nobody "$CLI" export --query "SELECT 2 AS y" -o "$WORK/ro/out.csv" 2>"$WORK/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$WORK/ro/out.csv")" = $'y\n2' ]; then
  ok "export -o FILE (writable) in a directory we cannot write: written"
else bad "export -o FILE in a read-only directory: exit $rc, FILE '$(cat "$WORK/ro/out.csv")', stderr: $(cat "$WORK/err")"; fi

# 4.
printf 'old\n' >"$WORK/theirs.csv"; chown nobody:nogroup "$WORK/theirs.csv"; chmod 600 "$WORK/theirs.csv"
$CLI export --query "SELECT 3 AS z" -o "$WORK/theirs.csv" 2>"$WORK/err"; rc=$?
own=$(stat -c '%U:%G %a' "$WORK/theirs.csv")
if [ "$rc" = 0 ] && [ "$own" = "nobody:nogroup 600" ] && [ "$(cat "$WORK/theirs.csv")" = $'z\n3' ]; then
  ok "root exporting over nobody's FILE: owner, group and mode kept ($own)"
else bad "root exporting over nobody's FILE: exit $rc, now $own (nobody can no longer read it), stderr: $(cat "$WORK/err")"; fi

# 5.
printf 'old\n' >"$WORK/a.csv"; ln "$WORK/a.csv" "$WORK/b.csv"
$CLI export --query "SELECT 4 AS w" -o "$WORK/a.csv" 2>"$WORK/err"; rc=$?
if [ "$rc" = 0 ] && [ "$(cat "$WORK/a.csv")" = $'w\n4' ] && [ "$(cat "$WORK/b.csv")" = $'w\n4' ]; then
  ok "export -o FILE with another hard link: both names show the export"
else bad "export -o hard-linked FILE: exit $rc, a.csv '$(cat "$WORK/a.csv")', b.csv '$(cat "$WORK/b.csv")'"; fi

# 6. The partial file is FILE.partial-PID: a subshell plants the link at
#    its own PID, then execs the CLI (which keeps that PID).
printf 'victim\n' >"$WORK/victim"; printf 'old\n' >"$WORK/p.csv"
( ln -s victim "$WORK/p.csv.partial-$BASHPID"
  exec "$CLI" export --query "SELECT 5 AS v" -o "$WORK/p.csv" 2>"$WORK/err" ); rc=$?
if [ "$(cat "$WORK/victim")" = victim ] && [ "$(cat "$WORK/p.csv")" = old ] && [ "$rc" = 2 ]; then
  ok "a symbolic link planted at FILE.partial-PID is not followed: exit 2, FILE as it was"
else bad "a symbolic link at FILE.partial-PID: exit $rc, its target now '$(cat "$WORK/victim")', FILE '$(cat "$WORK/p.csv")'"; fi

[ $fail = 0 ] && echo "all promises kept" || echo "some promises broken"
exit $fail
