# PgBouncer in front of the throw-away cluster (scripts/lib/cluster.sh), the
# way most production PostgreSQL is reached. Source after cluster_start:
#   source scripts/lib/pgbouncer.sh
#   pgbouncer_start [transaction|session] [pool_size]
#       -> PGBOUNCER_PORT, PGBOUNCER_URL (postgresql://postgres@127.0.0.1:PORT/postgres)
#   pgbouncer_url DBNAME   # the same URL for another database
#   pgbouncer_stop
# Roles other than postgres that connect through it: WF_PGBOUNCER_USERS="a b".
# Like the server, PgBouncer refuses to run as root: as root it runs as postgres.

pgbouncer_start() {
  local mode=${1:-transaction} pool=${2:-20}
  command -v pgbouncer >/dev/null || { echo "pgbouncer is not installed" >&2; return 1; }
  [ -n "${WF_CLUSTER_DIR:-}" ] || { echo "pgbouncer_start: start the cluster first" >&2; return 1; }
  WF_PGBOUNCER_DIR=$(mktemp -d /tmp/workflow-pgbouncer.XXXXXX)
  chmod 755 "$WF_PGBOUNCER_DIR"
  PGBOUNCER_PORT=$(_wf_free_port)
  cat >"$WF_PGBOUNCER_DIR/pgbouncer.ini" <<EOF
[databases]
* = host=$WF_CLUSTER_DIR port=$WF_CLUSTER_PORT
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $PGBOUNCER_PORT
unix_socket_dir = $WF_PGBOUNCER_DIR
auth_type = trust
auth_file = $WF_PGBOUNCER_DIR/users.txt
pool_mode = $mode
default_pool_size = $pool
max_client_conn = 500
ignore_startup_parameters = extra_float_digits,options
logfile = $WF_PGBOUNCER_DIR/pgbouncer.log
pidfile = $WF_PGBOUNCER_DIR/pgbouncer.pid
EOF
  # trust still needs each user listed: postgres plus $WF_PGBOUNCER_USERS.
  local u
  for u in postgres ${WF_PGBOUNCER_USERS:-}; do echo "\"$u\" \"\""; done >"$WF_PGBOUNCER_DIR/users.txt"
  [ "$(id -u)" = 0 ] && chown -R postgres: "$WF_PGBOUNCER_DIR"
  _wf_as_owner pgbouncer -d "$WF_PGBOUNCER_DIR/pgbouncer.ini" \
    || { cat "$WF_PGBOUNCER_DIR/pgbouncer.log" >&2; return 1; }
  local i
  for i in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$PGBOUNCER_PORT") 2>/dev/null && break
    sleep 0.1
  done
  PGBOUNCER_URL=$(pgbouncer_url postgres)
  export PGBOUNCER_PORT PGBOUNCER_URL WF_PGBOUNCER_DIR
}

pgbouncer_url() { echo "postgresql://postgres@127.0.0.1:$PGBOUNCER_PORT/${1:-postgres}"; }

pgbouncer_stop() {
  [ -n "${WF_PGBOUNCER_DIR:-}" ] && [ -f "$WF_PGBOUNCER_DIR/pgbouncer.pid" ] || return 0
  kill "$(cat "$WF_PGBOUNCER_DIR/pgbouncer.pid")" 2>/dev/null
  sleep 0.2
  rm -rf "$WF_PGBOUNCER_DIR"
}
