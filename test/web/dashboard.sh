#!/usr/bin/env bash
# Browser test of `workflow serve` (issue 14), self-contained: its own
# cluster, a serve process with --allow-actions and a token, and headless
# Chromium (Debian's chromium, driven by playwright-core from test/web/
# package.json) running test/web/dashboard.mjs. A second serve process with
# --max-streams 0 (every /events answers 503) checks the pages' fallback to
# polling. Screenshots go to
# build/web-artifacts/ (WF_WEB_ARTIFACTS). Prints "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$(pwd)
source scripts/lib/cluster.sh
ART=${WF_WEB_ARTIFACTS:-$ROOT/build/web-artifacts}
mkdir -p "$ART"
[ -x build/workflow ] || scripts/build
(cd test/web && { [ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund >/dev/null; })
TMP=$(mktemp -d /tmp/wf_web.XXXXXX)
SERVE_PID=; POLL_PID=
cleanup() {
  for p in $SERVE_PID $POLL_PID; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null; cluster_stop; rm -rf "$TMP"
}
trap cleanup EXIT
cluster_start

# The dashboard's role: workflow_admin (it holds workflow_monitor, the
# auditor and survey roles, and may cancel and retry any job).
psql -qX -v ON_ERROR_STOP=1 -o /dev/null <<'SQL'
CREATE EXTENSION workflow;
CREATE ROLE wf_dashboard LOGIN;
GRANT workflow_admin TO wf_dashboard;
-- A failed job: its one task died with an error that looks like markup.
SELECT workflow.create_job('etl', '{}', 1, 'dead-job');
SELECT workflow.add_tasks('dead-job', 1, 'boom', ARRAY['{}'::jsonb], true, 0, 0);
SELECT count(*) FROM workflow.claim_tasks('w0', 1, ARRAY['boom']);
SELECT workflow.fail_task('dead-job:1:0', 'dead-job', 'boom: <b>bad</b> input <img src=x onerror=alert(3)>');
SQL
# A job whose id and type are markup, and that workers advance (sleep tasks,
# 10 ms each); a job nobody works on, to cancel.
build/workflow submit --id '<script>alert(1)</script>' --type 'xss<img src=x onerror=alert(2)>' \
  --tasks 3000,3000 --task-type sleep >/dev/null
build/workflow submit --id cancel-me --type idle --tasks 5 --task-type idle >/dev/null

TOKEN=test-token-$RANDOM$RANDOM
DASH_URL="postgresql://wf_dashboard@127.0.0.1:$PGPORT/postgres"
WORKFLOW_SERVE_TOKEN=$TOKEN build/workflow --db "$DASH_URL" serve --listen 127.0.0.1:0 \
  --port-file "$TMP/port" --allow-actions --refresh-ms 300 >"$TMP/serve.log" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port" ] && break; sleep 0.1; done
[ -s "$TMP/port" ] || { cat "$TMP/serve.log"; echo "serve did not start"; exit 1; }
build/workflow --db "$DASH_URL" serve --listen 127.0.0.1:0 --port-file "$TMP/port-poll" --refresh-ms 300 \
  --max-streams 0 >"$TMP/serve-poll.log" 2>&1 &
POLL_PID=$!
for _ in $(seq 1 100); do [ -s "$TMP/port-poll" ] && break; sleep 0.1; done
[ -s "$TMP/port-poll" ] || { cat "$TMP/serve-poll.log"; echo "serve --max-streams 0 did not start"; exit 1; }

rc=0
BASE="http://127.0.0.1:$(cat "$TMP/port")" BASE_POLL="http://127.0.0.1:$(cat "$TMP/port-poll")" TOKEN=$TOKEN ARTIFACTS=$ART CHROMIUM=${CHROMIUM:-/usr/bin/chromium} \
  WORKER="$ROOT/build/workflow" node test/web/dashboard.mjs || rc=$?
echo "serve log:"; tail -20 "$TMP/serve.log"
exit $rc
