#!/usr/bin/env bash
# One-off A/B of the audit writer used for bench/RESULTS.md section 2 (issue 10):
# old and new workflow.so swapped in the private PostgreSQL copy between
# sessions, fresh log per timing. Expects /tmp/ap/workflow_{old,new}.so built
# by scripts/build at the two commits (OLD_SO, NEW_SO). Per round and build:
# a 300k-row UPDATE with and without audit (backend CPU ms), then 5000
# single-row UPDATEs each (backend CPU us per statement).
set -uo pipefail
cd "$(dirname "$0")/../.."; source scripts/lib/cluster.sh
OLD_SO=${OLD_SO:-/tmp/ap/workflow_old.so}; NEW_SO=${NEW_SO:-/tmp/ap/workflow_new.so}
LIB=$WF_PG_PREFIX$(pg_config --pkglibdir)/workflow.so
cluster_start synchronous_commit=off >/dev/null
trap 'cp $NEW_SO $LIB; cluster_stop' EXIT
export PGOPTIONS="-c client_min_messages=warning"
P() { psql -X -q -v ON_ERROR_STOP=1 "$@"; }
P -c "CREATE EXTENSION workflow" -c "CREATE FUNCTION cpu_us() RETURNS bigint LANGUAGE sql AS \$\$ SELECT (split_part(s, ' ', 14)::bigint + split_part(s, ' ', 15)::bigint) * 10000 FROM pg_read_file('/proc/' || pg_backend_pid() || '/stat') AS s \$\$"
for t in a_none a_native; do P -c "CREATE TABLE $t (id int PRIMARY KEY, status text NOT NULL, counter int NOT NULL, payload text, updated_at timestamptz NOT NULL DEFAULT now())" -c "INSERT INTO $t SELECT g, 'pending', 0, md5(g::text), now() FROM generate_series(1, 300000) g"; done
P -c "SELECT workflow.enable_audit('a_native')" >/dev/null
for r in 1 2 3 4; do
  for v in old new; do
    [ $v = old ] && cp "$OLD_SO" "$LIB" || cp "$NEW_SO" "$LIB"
    line="round $r $v:"
    for t in a_none a_native; do
      P -c "TRUNCATE workflow.audit_log" -c "VACUUM $t" -c CHECKPOINT
      ms=$(printf "SELECT cpu_us() AS c0 \\gset\nUPDATE $t SET counter = counter + 1, status = 'bulk';\nSELECT round((cpu_us() - :c0) / 1000.0);\n" | P -At | tail -1)
      line+=" bulk $t ${ms}ms"
    done
    us=$( { echo "SELECT cpu_us() AS c0 \gset"; for i in $(seq 1 5000); do echo "UPDATE a_native SET counter = counter + 1 WHERE id = $(( (i * 7919 + r * 131) % 300000 + 1 ));"; done; echo "SELECT round((cpu_us() - :c0)::numeric / 5000, 1);"; } | P -At | tail -1)
    us0=$( { echo "SELECT cpu_us() AS c0 \gset"; for i in $(seq 1 5000); do echo "UPDATE a_none SET counter = counter + 1 WHERE id = $(( (i * 7919 + r * 131) % 300000 + 1 ));"; done; echo "SELECT round((cpu_us() - :c0)::numeric / 5000, 1);"; } | P -At | tail -1)
    echo "$line single none ${us0}us native ${us}us  load $(uptime | sed 's/.*average: //')"
  done
done
