# A Citus cluster on loopback, for tests and benchmarks that run `workflow`
# scaled out: a coordinator and N workers, each a throw-away cluster like
# scripts/lib/cluster.sh's (own temp directory, socket and port; trust auth).
#   source scripts/lib/citus.sh
#   citus_build_ensure          # Citus 13.2.2 from ../shared/vendor/citus, built once
#                               # (build/citus/<key>/), installed into WF_PG_PREFIX
#   citus_cluster_start [N_WORKERS=2] [postgres -c options...]
#       -> CITUS_COORD_PORT CITUS_WORKER_PORTS CITUS_COORD_URL CITUS_WORKER_URLS
#          CITUS_DIRS CITUS_PORTS (node I = the I-th word: 0 coordinator, 1..N workers)
#   citus_url I [DB] | citus_psql I [psql args...]
#   citus_node_kill9 I | citus_node_start I | citus_cluster_stop
# citus_cluster_start 2 takes 3.5-4.5 s here (the nodes' initdb, start and
# CREATE EXTENSION citus side by side; one after the other it took 6 s). Citus' defaults hold: CREATE EXTENSION citus turns ssl
# on with a self-signed certificate and the nodes talk TLS to each other
# (citus.node_conninfo=sslmode=require); for benchmarks on loopback without
# TLS: citus_cluster_start 2 citus.node_conninfo=sslmode=disable.
# Needs scripts/build (workflow in the private copy) and citus_build_ensure first.
# Every node has database $CITUS_DB (default wf_citus) with the extensions
# citus and workflow; the workers are added to the coordinator's metadata.

source "$(dirname "${BASH_SOURCE[0]}")/cluster.sh"
WF_CITUS_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
WF_CITUS_VERSION=13.2.2
# In CI, shared/ is a read-only copy beside the clone: only ever read from it.
WF_CITUS_VENDOR=${WF_CITUS_VENDOR:-$WF_CITUS_ROOT/../shared/vendor/citus}
CITUS_DB=${CITUS_DB:-wf_citus}

# Builds Citus once per (tarball, patch, PostgreSQL build) into
# build/citus/<key>/ and installs it into the private copy of PostgreSQL
# (make install DESTDIR=$WF_PG_PREFIX), never into the system's. With the
# build cached and the same citus.so installed, it does nothing.
# Measured on the 2-core machine (shared, load ~3): a cold build 50 s (without
# JIT bitcode: with_llvm=no), the install of a cached build 2 s, nothing to do 0.1 s.
citus_build_ensure() {
  wf_pg_prefix_ensure || return 1
  local tarball=$WF_CITUS_VENDOR/citus-$WF_CITUS_VERSION.tar.gz
  local patch=$WF_CITUS_VENDOR/pg15-have_createdb_privilege.patch
  local f
  for f in "$tarball" "$patch"; do
    [ -r "$f" ] || { echo "citus_build_ensure: $f is missing" >&2; return 1; }
  done
  local key dir src log stamp lockfd rc
  key=$( { sha256sum <"$tarball"; sha256sum <"$patch"; pg_config --version; } | sha256sum | cut -c1-16)
  dir=$WF_CITUS_ROOT/build/citus/$key
  src=$dir/citus-$WF_CITUS_VERSION
  log=$dir/build.log
  stamp=$WF_PG_PREFIX/.citus
  mkdir -p "$WF_CITUS_ROOT/build/citus"
  # One build at a time per checkout (two test scripts may start together).
  exec {lockfd}>"$WF_CITUS_ROOT/build/citus/.lock"
  flock "$lockfd"
  rc=0
  _wf_citus_build "$tarball" "$patch" "$dir" "$src" "$log" || rc=1
  if [ $rc = 0 ] && ! { [ "$(cat "$stamp" 2>/dev/null)" = "$key" ] &&
      cmp -s "$src/src/backend/distributed/citus.so" "$WF_PG_PREFIX$(pg_config --pkglibdir)/citus.so"; }; then
    # with_llvm=no: no JIT bitcode (Debian's PGXS would build it with clang).
    if make -C "$src" -s install DESTDIR="$WF_PG_PREFIX" with_llvm=no >>"$log" 2>&1; then
      chmod -R a+rX "$WF_PG_PREFIX"
      echo "$key" >"$stamp"
      echo "citus: installed $WF_CITUS_VERSION into $WF_PG_PREFIX"
    else
      echo "citus_build_ensure: make install failed; the end of $log:" >&2
      tail -30 "$log" >&2
      rc=1
    fi
  fi
  exec {lockfd}>&-
  return $rc
}

# The build itself, when build/citus/<key>/ holds no finished one.
_wf_citus_build() {  # tarball patch dir src log
  local tarball=$1 patch=$2 dir=$3 src=$4 log=$5 t0
  [ -f "$dir/.built" ] && return 0
  rm -rf "$dir"
  mkdir -p "$dir"
  echo "citus: building $WF_CITUS_VERSION in $dir (log: $log)"
  t0=$(date +%s)
  # (&&, not set -e: errexit is off inside the condition of an if.)
  if ( cd "$dir" && tar xzf "$tarball" && cd "$src" && patch -p1 <"$patch" &&
       ./configure --without-libcurl && make -j2 with_llvm=no ) >"$log" 2>&1; then
    echo $(( $(date +%s) - t0 )) >"$dir/.built"
    echo "citus: built in $(cat "$dir/.built") s"
  else
    echo "citus_build_ensure: the build failed; the end of $log:" >&2
    tail -40 "$log" >&2
    return 1
  fi
}

# The server options of node I.
_wf_citus_opts() {
  local dirs=($CITUS_DIRS) ports=($CITUS_PORTS)
  echo "-k ${dirs[$1]} -p ${ports[$1]} $WF_CITUS_OPTS"
}

citus_url() { local ports=($CITUS_PORTS); echo "postgresql://postgres@127.0.0.1:${ports[$1]}/${2:-$CITUS_DB}"; }

# psql on node I, database $CITUS_DB, stopping at the first error.
citus_psql() {
  local i=$1; shift
  psql -X -v ON_ERROR_STOP=1 -d "$(citus_url "$i")" "$@"
}

citus_cluster_start() {
  local n=${1:-2} i dir port opt
  [ $# -gt 0 ] && shift
  wf_pg_prefix_ensure || return 1
  local libdir
  libdir=$WF_PG_PREFIX$(pg_config --pkglibdir)
  [ -f "$libdir/citus.so" ] || { echo "citus_cluster_start: Citus is not installed: run citus_build_ensure" >&2; return 1; }
  [ -f "$WF_PG_PREFIX$(pg_config --sharedir)/extension/workflow.control" ] \
    || { echo "citus_cluster_start: workflow is not installed: run scripts/build" >&2; return 1; }
  # max_prepared_transactions: Citus commits writes that span nodes with 2PC.
  WF_CITUS_OPTS="$WF_PG_COMMON_OPTS -c shared_preload_libraries=citus"
  WF_CITUS_OPTS+=" -c max_connections=300 -c max_prepared_transactions=300"
  WF_CITUS_OPTS+=" -c citus.local_hostname=127.0.0.1"
  for opt in "$@"; do WF_CITUS_OPTS+=" -c $opt"; done
  CITUS_DIRS="" CITUS_PORTS=""
  export WF_CITUS_OPTS CITUS_DIRS CITUS_PORTS CITUS_DB
  for i in $(seq 0 "$n"); do
    dir=$(mktemp -d "/tmp/workflow-citus$i.XXXXXX")
    CITUS_DIRS+="${CITUS_DIRS:+ }$dir"
  done
  local dirs=($CITUS_DIRS)
  for i in $(seq 0 "$n"); do
    port=$(_wf_free_port) || return 1
    while [[ " $CITUS_PORTS " == *" $port "* ]]; do port=$(_wf_free_port) || return 1; done
    CITUS_PORTS+="${CITUS_PORTS:+ }$port"
  done
  # The nodes come up side by side. initdb --no-sync (as pg_regress does):
  # its fsync of the new files is most of its 1.5 s here, and only an
  # operating system crash, never a server's kill -9, could lose them.
  # Citus itself is never propagated: every node creates it.
  local pids=() failed=0
  for i in $(seq 0 "$n"); do
    ( _wf_initdb "${dirs[$i]}" --no-sync && citus_node_start "$i" &&
      psql -qX -v ON_ERROR_STOP=1 -d "$(citus_url "$i" postgres)" -c "CREATE DATABASE $CITUS_DB" &&
      citus_psql "$i" -q -c "CREATE EXTENSION citus" ) >"${dirs[$i]}/setup.log" 2>&1 &
    pids+=($!)
  done
  for i in $(seq 0 "$n"); do
    wait "${pids[$i]}" || { failed=1; echo "citus_cluster_start: node $i:" >&2; cat "${dirs[$i]}/setup.log" >&2; }
  done
  [ $failed = 0 ] || return 1
  local ports=($CITUS_PORTS)
  CITUS_COORD_PORT=${ports[0]}
  CITUS_WORKER_PORTS=${ports[*]:1}
  CITUS_COORD_URL=$(citus_url 0)
  CITUS_WORKER_URLS=""
  for i in $(seq 1 "$n"); do CITUS_WORKER_URLS+="${CITUS_WORKER_URLS:+ }$(citus_url "$i")"; done
  export CITUS_COORD_PORT CITUS_WORKER_PORTS CITUS_COORD_URL CITUS_WORKER_URLS
  # workflow is created on the coordinator alone, after the workers joined:
  # Citus propagates CREATE EXTENSION to every worker (IF NOT EXISTS, same
  # version and schema), and citus_add_node to a node added later.
  {
    echo "SELECT citus_set_coordinator_host('127.0.0.1', $CITUS_COORD_PORT);"
    for port in $CITUS_WORKER_PORTS; do echo "SELECT citus_add_node('127.0.0.1', $port);"; done
    echo "CREATE EXTENSION workflow;"
  } | citus_psql 0 -q >/dev/null
}

# node I: 0 the coordinator, 1..N the workers.
citus_node_start() {
  local dirs=($CITUS_DIRS)
  _wf_pg_start "${dirs[$1]}" "$(_wf_citus_opts "$1")"
}

# A crash of node I (SIGKILL to its postmaster and children); no restart:
# citus_node_start I runs crash recovery.
citus_node_kill9() {
  local dirs=($CITUS_DIRS)
  _wf_pg_kill9 "${dirs[$1]}"
}

citus_cluster_stop() {
  local dir
  for dir in ${CITUS_DIRS:-}; do
    [ -d "$dir" ] || continue
    _wf_as_owner "$PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1
    rm -rf "$dir"
  done
  CITUS_DIRS=""
}
