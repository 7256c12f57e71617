#!/usr/bin/env bash
# The fan-in (bench/engine/run.sh) and queue-cycle (bench/client/run)
# benchmarks on several PostgreSQL majors in one run, one after the other on
# the same machine, so a regression on a newer server shows side by side:
# 15 on the host, 17 (and 18) in the chroots scripts/test uses
# (scripts/lib/chroot.sh; made here when missing). Both benchmarks run with
# their own defaults unless given: FANIN_ARGS="6 3" CYCLE_ARGS="50000 8 3";
# CLIENTS="64" runs the fan-in at those client counts only (bench/engine/run.sh).
#   bench/versions.sh [majors="15 17"]    # log: bench/versions-last-run.log
set -uo pipefail
cd "$(dirname "$0")/.."
VERSIONS=${1:-15 17}
LOG=bench/versions-last-run.log
source scripts/lib/chroot.sh
scripts/install-deps >/dev/null || exit 1
HOST=$(pg_config --version | grep -oE '[0-9]+' | head -1)
suite_of() { case $1 in 17) echo trixie ;; 18) echo sid ;; esac; }

# bench CMD...: on the host for its major, else in that major's chroot (with
# Debian's nodejs and npm there for graphile-worker, the queue-cycle reference).
bench() {
  local v=$1; shift
  if [ "$v" = "$HOST" ]; then "$@"; return; fi
  local s; s=$(suite_of "$v"); [ -n "$s" ] || { echo "no chroot for PostgreSQL $v"; return 1; }
  wf_chroot_run "$s" bash -c 'command -v npm >/dev/null || { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null; }' || return 1
  wf_chroot_sync "$s" || return 1
  # graphile-worker (pure JavaScript) from the host's npm install: npm inside
  # the chroot lacks the host's CA certificates for the registry.
  (cd bench/client && { [ -d node_modules/graphile-worker ] || npm install --no-audit --no-fund >/dev/null; }) &&
    rsync -a --delete bench/client/node_modules/ "$(wf_chroot_dir "$s")/workflow/bench/client/node_modules/" &&
    wf_chroot_run "$s" env -C /workflow CLIENTS="${CLIENTS:-8 32 64}" "$@"
}

for v in $VERSIONS; do
  s=$(suite_of "$v"); [ "$v" = "$HOST" ] || wf_chroot_ensure "$s" || exit 1
done
{
  echo "bench/versions.sh $(date -u +%FT%TZ), majors: $VERSIONS, load: $(cut -d' ' -f1-3 /proc/loadavg)"
  for v in $VERSIONS; do
    echo; echo "=== PostgreSQL $v: fan-in (bench/engine/run.sh ${FANIN_ARGS:-})"
    # shellcheck disable=SC2086
    bench "$v" bench/engine/run.sh ${FANIN_ARGS:-} || echo "fan-in on $v FAILED"
    echo; echo "=== PostgreSQL $v: queue cycle (bench/client/run ${CYCLE_ARGS:-})"
    # shellcheck disable=SC2086
    bench "$v" bench/client/run ${CYCLE_ARGS:-} || echo "queue cycle on $v FAILED"
  done
} 2>&1 | tee "$LOG"
echo
echo "medians by major:"
awk '/^=== PostgreSQL/ {print} / -> median / || /^median of/ || (/ [0-9.]+x$/ && !/^round/) {print "  " $0}' "$LOG"
