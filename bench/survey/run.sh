#!/usr/bin/env bash
# Survey benchmarks (issue 4, Must show 3), in one run on a fresh cluster:
#  1. 100k steps: one workflow.upsert_survey_steps() call vs 100k single
#     INSERT ... ON CONFLICT statements (pgbench, 1 client) - target >= 5x;
#     also 100k workflow.upsert_survey_step() calls for information.
#  2. get_weekly_survey_steps on 1M rows (200k sessions x 5 steps): latency
#     p50/p99, server-side (clock_timestamp() around each call, in a loop in
#     the server) and client-side (pgbench per-transaction log) - target p99 <= 1 ms.
# Usage: bench/survey/run.sh   (prints a summary; details in $OUT)
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
scripts/build
OUT=$(mktemp -d /tmp/survey-bench.XXXXXX); chmod 777 "$OUT"
trap cluster_stop EXIT
trap 'exit 1' INT TERM HUP
cluster_start
B=bench/survey
N=${SURVEY_BENCH_STEPS:-100000}
psql() { command psql -qX -v ON_ERROR_STOP=1 "$@"; }
psql -c "CREATE EXTENSION workflow"

ms_now() { echo $(( $(date +%s%N) / 1000000 )); }
reset_tables() {
  psql -c "TRUNCATE workflow.survey_steps, workflow.survey_sessions" -c "DROP SEQUENCE IF EXISTS bench_seq" \
       -c "CREATE SEQUENCE bench_seq" -c "CHECKPOINT"
}
# The sessions the reference needs (its INSERT does not create them).
make_sessions() {
  psql -c "INSERT INTO workflow.survey_sessions (session_id) SELECT 'C' || lpad(g::text, 10, '0') FROM generate_series(0, $N / 5 - 1) g" -c "CHECKPOINT"
}

echo "== 1. $N steps: batch vs single statements"
psql -At -c "SELECT jsonb_agg(jsonb_build_object('session_id', 'C' || lpad((g / 5)::text, 10, '0'),
  'step_name', (ARRAY['Workload Today','workloadNextweek','connects_thisweek','Day Off Next Week','day-off-thisweek'])[g % 5 + 1],
  'value', jsonb_build_object('n', g), 'completed_at', '2026-11-10T10:00:00Z')) FROM generate_series(0, $N - 1) g" >"$OUT/batch.json"
echo "batch input: $(wc -c <"$OUT/batch.json") bytes"
# psql reads the JSON into a variable itself (no argument-length limit) and sends it as one literal.
printf '\\set j `cat %s`\nSELECT workflow.upsert_survey_steps(:%s);\n' "$OUT/batch.json" "'j'" >"$OUT/batch.sql"

reset_tables
t0=$(ms_now)
psql -At -f "$OUT/batch.sql" >"$OUT/batch.out"
t1=$(ms_now); BATCH_MS=$((t1 - t0))
echo "batch (new rows, sessions created): rows=$(cat "$OUT/batch.out") ${BATCH_MS} ms"
t0=$(ms_now)
psql -At -f "$OUT/batch.sql" >"$OUT/batch2.out"
t1=$(ms_now); BATCH2_MS=$((t1 - t0))
echo "batch (same rows again: all conflicts): rows=$(cat "$OUT/batch2.out") ${BATCH2_MS} ms"

reset_tables; make_sessions
t0=$(ms_now)
pgbench -n -c 1 -t "$N" -f $B/reference_insert.sql >"$OUT/reference.log" 2>&1
t1=$(ms_now); REF_MS=$((t1 - t0))
echo "reference: $N single INSERT ... ON CONFLICT (pgbench -c 1): ${REF_MS} ms ($(grep -E '^tps' "$OUT/reference.log" | head -1))"
psql -At -c "SELECT 'rows after reference: ' || count(*) FROM workflow.survey_steps"

reset_tables; make_sessions
t0=$(ms_now)
pgbench -n -c 1 -t "$N" -f $B/single_upsert.sql >"$OUT/single.log" 2>&1
t1=$(ms_now); SINGLE_MS=$((t1 - t0))
echo "info: $N workflow.upsert_survey_step() calls (pgbench -c 1): ${SINGLE_MS} ms"

awk -v r="$REF_MS" -v b="$BATCH_MS" -v s="$SINGLE_MS" 'BEGIN {
  printf "RATIO batch vs single INSERT ON CONFLICT: %.1fx (target >= 5x)\n", r / b;
  printf "info: batch vs single upsert_survey_step calls: %.1fx\n", s / b }'

echo "== 2. get_weekly_survey_steps on 1M rows"
psql -c "TRUNCATE workflow.survey_steps, workflow.survey_sessions" \
     -c "INSERT INTO workflow.survey_sessions (session_id, time_zone)
         SELECT 'C' || lpad(g::text, 10, '0'), (ARRAY['UTC','America/New_York','Europe/Berlin','Pacific/Kiritimati'])[g % 4 + 1]
           FROM generate_series(0, 199999) g" \
     -c "INSERT INTO workflow.survey_steps (session_id, step_name, week_start, value, completed_at)
         SELECT s.session_id, n.name, workflow.survey_week_start(timestamptz '2026-11-11 12:00Z', s.time_zone),
                jsonb_build_object('n', 1), timestamptz '2026-11-11 12:00Z'
           FROM workflow.survey_sessions s CROSS JOIN workflow.survey_step_names n" \
     -c "VACUUM ANALYZE workflow.survey_sessions, workflow.survey_steps"
psql -At -c "SELECT 'rows: ' || count(*) FROM workflow.survey_steps"
# Server-side: time each call inside the server, 20000 calls on random sessions.
psql -At >"$OUT/server.txt" <<'SQL'
CREATE TEMP TABLE lat (ms float8);
DO $$
DECLARE t0 timestamptz; n int; s text;
BEGIN
  FOR i IN 1..20000 LOOP
    s := 'C' || lpad((floor(random() * 200000))::int::text, 10, '0');
    t0 := clock_timestamp();
    SELECT count(*) INTO n FROM workflow.get_weekly_survey_steps(s, '2026-11-11 12:00Z');
    INSERT INTO lat VALUES (extract(epoch FROM clock_timestamp() - t0) * 1000);
    IF n <> 5 THEN RAISE EXCEPTION 'expected 5 rows for %, got %', s, n; END IF;
  END LOOP;
END $$;
SELECT format('server-side get_weekly_survey_steps: n=%s p50=%s ms p99=%s ms max=%s ms',
  count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 4),
  round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 4), round(max(ms)::numeric, 3)) FROM lat;
SQL
cat "$OUT/server.txt"
pct() {  # pgbench log -> p50/p99 in ms (column 3 is latency in microseconds)
  cat "$@" | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {
    printf "n=%d p50=%.3f ms p99=%.3f ms\n", NR, a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000 }'
}
for script in weekly weekly_floor; do
  (cd "$OUT" && pgbench -n -c 1 -T 20 -M prepared -l --log-prefix="$script" -f "$OLDPWD/$B/$script.sql" >"$script.pgbench" 2>&1)
  echo "client-side $script (pgbench -c 1 -M prepared, 20 s): $(pct "$OUT"/$script.*[0-9])"
done
echo "details: $OUT"
