# Throw-away PostgreSQL cluster for tests, benchmarks and the demo.
#   source scripts/lib/cluster.sh
#   cluster_start [postgres -c options...]   # exports PGHOST PGPORT PGUSER DATABASE_URL
#   cluster_restart | cluster_kill9 | cluster_stop
# PostgreSQL refuses to run as root, so as root the server runs as `postgres`.
# Every cluster lives in its own temp directory and socket; nothing is shared.

source "$(dirname "${BASH_SOURCE[0]}")/pgprefix.sh"
PG_BINDIR=$WF_PG_BINDIR

_wf_as_owner() {
  # From /, since the checkout may not be readable by the postgres user.
  if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}

# A free port below the kernel's ephemeral range: a port inside it can be
# taken by some client's outgoing connection while the server restarts.
# WF_PORT_RANGE="FIRST LAST" narrows it: scripts/test gives the suites it runs
# side by side ranges of their own, so that two of them never pick one port.
_wf_free_port() {
  local port low first=10000
  low=$(awk '{print $1}' /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
  [ "${low:-0}" -gt 11000 ] || low=32768
  if [ -n "${WF_PORT_RANGE:-}" ]; then read -r first low <<<"$WF_PORT_RANGE"; low=$((low + 1)); fi
  for _ in $(seq 1 50); do
    port=$((first + RANDOM % (low - first)))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then echo "$port"; return 0; fi
  done
  return 1
}

# The options every throw-away server gets (scripts/lib/citus.sh adds its own).
WF_PG_COMMON_OPTS="-c listen_addresses=127.0.0.1"
WF_PG_COMMON_OPTS+=" -c max_connections=250 -c shared_buffers=512MB -c fsync=on"
WF_PG_COMMON_OPTS+=" -c max_wal_size=4GB -c log_min_messages=warning"

# initdb into DIR/data (DIR: a new temp directory), as the server's owner.
#   _wf_initdb DIR [initdb options...]
_wf_initdb() {
  local dir=$1; shift
  chmod 755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  _wf_as_owner "$PG_BINDIR/initdb" -D "$dir/data" -U postgres --auth=trust \
    -E UTF8 --locale=C.UTF-8 "$@" >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; return 1; }
}

# Starts the server of DIR/data with the postgres options OPTS; log in DIR/server.log.
_wf_pg_start() {
  _wf_as_owner "$PG_BINDIR/pg_ctl" -D "$1/data" -l "$1/server.log" \
    -w -t 120 -o "$2" start >/dev/null \
    || { tail -20 "$1/server.log" >&2; return 1; }
}

# SIGKILL to the postmaster of DIR/data and every process it started, as if
# the machine lost power; returns when they are all gone.
_wf_pg_kill9() {
  local pid children p
  pid=$(head -1 "$1/data/postmaster.pid") || return 1
  children=$(pgrep -P "$pid" | tr '\n' ' ')
  kill -9 "$pid" $children 2>/dev/null
  for p in $pid $children; do
    while kill -0 "$p" 2>/dev/null; do sleep 0.05; done
  done
}

cluster_start() {
  wf_pg_prefix_ensure || return 1
  WF_CLUSTER_DIR=$(mktemp -d /tmp/workflow-cluster.XXXXXX)
  _wf_initdb "$WF_CLUSTER_DIR" || return 1
  WF_CLUSTER_PORT=$(_wf_free_port)
  WF_CLUSTER_OPTS="-k $WF_CLUSTER_DIR -p $WF_CLUSTER_PORT $WF_PG_COMMON_OPTS"
  local opt
  for opt in "$@"; do WF_CLUSTER_OPTS+=" -c $opt"; done
  export PGHOST=$WF_CLUSTER_DIR PGPORT=$WF_CLUSTER_PORT PGUSER=postgres PGDATABASE=postgres
  export DATABASE_URL="postgresql://postgres@127.0.0.1:$WF_CLUSTER_PORT/postgres"
  export WF_CLUSTER_DIR WF_CLUSTER_PORT WF_CLUSTER_OPTS
  _wf_cluster_start_server
}

_wf_cluster_start_server() {
  _wf_pg_start "$WF_CLUSTER_DIR" "$WF_CLUSTER_OPTS"
}

cluster_restart() {
  _wf_as_owner "$PG_BINDIR/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m fast -w stop >/dev/null 2>&1
  _wf_cluster_start_server
}

# A crash: SIGKILL to the postmaster and every process it started, as if the
# machine lost power; then start again so crash recovery runs.
cluster_kill9() {
  _wf_pg_kill9 "$WF_CLUSTER_DIR"
  _wf_cluster_start_server
}

cluster_stop() {
  [ -n "${WF_CLUSTER_DIR:-}" ] && [ -d "$WF_CLUSTER_DIR" ] || return 0
  _wf_as_owner "$PG_BINDIR/pg_ctl" -D "$WF_CLUSTER_DIR/data" -m immediate -w stop >/dev/null 2>&1
  rm -rf "$WF_CLUSTER_DIR"
}
