#!/usr/bin/env bash
# Crash test of the fan-in bookkeeping. On its own throw-away cluster:
# 100 stages (25 jobs x 4) of 1..200 tasks; a pgbench completion storm
# (16 clients, random tasks, repeats included; 4 in 5 calls single completes,
# 1 in 5 complete_tasks batches of up to 8) logs every stage_complete = true in the
# same transaction; the postmaster and all backends are killed
# with SIGKILL mid-storm (twice), crash recovery runs, and
# workflow.check_invariants() must hold: no task lost or double-counted.
# Then every remaining task is completed and each stage must have been
# completed exactly once, by its recorded completer.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
trap cluster_stop EXIT
cluster_start
PSQL=(psql -X -q -v ON_ERROR_STOP=1 -d postgres)
fail() { echo "FAIL: $*"; exit 1; }

"${PSQL[@]}" >/dev/null <<'SQL'
CREATE EXTENSION workflow;
CREATE TABLE crash_log (job_id text, stage int, task_id text);  -- every "stage complete" answer
SELECT setseed(0.42);
SELECT workflow.create_job('crash', '{}', 4, 'crash-' || j) FROM generate_series(0, 24) j;
-- Nobody advances these jobs: a day's hand-over lease keeps their complete
-- stages from counting as stuck jobs in check_invariants.
SELECT workflow.set_handover_lease('crash-' || j, '1 day') FROM generate_series(0, 24) j;
SELECT workflow.add_tasks('crash-' || j, s, 'crash', array_fill('{}'::jsonb, ARRAY[1 + (random() * 199)::int]),
                          slot_count => (ARRAY[1, 4, 32, 256])[1 + (random() * 3)::int])
  FROM generate_series(0, 24) j, generate_series(1, 4) s;
SQL
TOTAL=$(psql -XAtc "SELECT count(*) FROM workflow.tasks")
echo "loaded $TOTAL tasks in 100 stages"

STORM=$(mktemp /tmp/engine-crash-storm.XXXXXX)
cat >"$STORM" <<'EOF2'
\set j random(0, 24)
\set s random(1, 4)
SELECT total_tasks - 1 AS last FROM workflow.stages WHERE job_id = 'crash-' || :j AND stage = :s \gset
\set i random(0, :last)
INSERT INTO crash_log (job_id, stage, task_id)
SELECT 'crash-' || :j, :s, 'crash-' || :j || ':' || :s || ':' || :i
  FROM workflow.complete_task_and_check_stage('crash-' || :j || ':' || :s || ':' || :i, 'crash-' || :j, :s, '{"by": "storm"}') r
 WHERE r.stage_complete;
EOF2
# The same storm as batches: complete_tasks of up to 8 consecutive tasks
# from a random start (repeats included), one statement per batch.
BATCH=$(mktemp /tmp/engine-crash-batch.XXXXXX)
cat >"$BATCH" <<'EOF2'
\set j random(0, 24)
\set s random(1, 4)
SELECT total_tasks - 1 AS last FROM workflow.stages WHERE job_id = 'crash-' || :j AND stage = :s \gset
\set a random(0, :last)
INSERT INTO crash_log (job_id, stage, task_id)
SELECT r.job_id, r.stage, r.task_id
  FROM workflow.complete_tasks(
         ARRAY(SELECT 'crash-' || :j FROM generate_series(0, least(:last - :a, 7)) i),
         ARRAY(SELECT 'crash-' || :j || ':' || :s || ':' || (:a + i) FROM generate_series(0, least(:last - :a, 7)) i ORDER BY i),
         ARRAY(SELECT :s FROM generate_series(0, least(:last - :a, 7)) i),
         ARRAY(SELECT '{"by": "batch"}'::jsonb FROM generate_series(0, least(:last - :a, 7)) i)) r
 WHERE r.stage_complete;
EOF2

check_invariants() {
  local bad
  bad=$(psql -XAtc "SELECT string_agg(check_name || ': ' || detail, E'\n') FROM workflow.check_invariants() WHERE NOT ok")
  [ -z "$bad" ] || fail "invariants after $1: $bad"
  echo "invariants hold after $1"
}

for round in 1 2; do
  before=$(psql -XAtc "SELECT count(*) FROM workflow.tasks WHERE status = 'completed'")
  "$WF_PG_BINDIR/pgbench" -n -c 16 -j 2 -T 60 -f "$STORM@4" -f "$BATCH@1" postgres >/tmp/engine-crash-pgbench.$$ 2>&1 &
  bench=$!
  sleep 5
  cluster_kill9
  wait "$bench" || true   # its connections died with the server
  after=$(psql -XAtc "SELECT count(*) FROM workflow.tasks WHERE status = 'completed'")
  echo "round $round: completed tasks $before -> $after of $TOTAL when killed"
  [ "$after" -gt "$before" ] || fail "the storm completed nothing before the kill"
  check_invariants "kill -9 #$round"
done
rm -f "$STORM" "$BATCH" /tmp/engine-crash-pgbench.$$
by=$(psql -XAtc "SELECT count(*) FILTER (WHERE result_data->>'by' = 'storm') || ' single, ' ||
                        count(*) FILTER (WHERE result_data->>'by' = 'batch') || ' batch'
                   FROM workflow.tasks WHERE status = 'completed'")
echo "completed by the storms: $by"
[[ "$by" =~ ^[1-9][0-9]*\ single,\ [1-9][0-9]*\ batch$ ]] || fail "both kinds of completion must have run: $by"

# Finish every remaining task, in random order, logging completers.
"${PSQL[@]}" >/dev/null <<'SQL'
DO $$
DECLARE t record;
BEGIN
  FOR t IN SELECT id, job_id, stage FROM workflow.tasks WHERE status <> 'completed' ORDER BY random() LOOP
    INSERT INTO crash_log
    SELECT t.job_id, t.stage, t.id
      FROM workflow.complete_task_and_check_stage(t.id, t.job_id, t.stage, '{"by": "finish"}') r
     WHERE r.stage_complete;
  END LOOP;
END $$;
SQL
check_invariants "finishing"

result=$(psql -XAt <<'SQL'
SELECT (SELECT count(*) FROM workflow.tasks WHERE status <> 'completed') AS unfinished,
       (SELECT count(*) FROM workflow.stages WHERE completed_at IS NULL) AS incomplete_stages,
       (SELECT count(*) FROM workflow.stages s
         WHERE (SELECT count(DISTINCT l.task_id) FROM crash_log l
                 WHERE l.job_id = s.job_id AND l.stage = s.stage) <> 1) AS stages_without_one_completer,
       (SELECT count(*) FROM workflow.stages s
         WHERE NOT EXISTS (SELECT 1 FROM crash_log l WHERE l.job_id = s.job_id AND l.stage = s.stage
                              AND l.task_id = s.completed_by_task)) AS completer_mismatch,
       (SELECT count(*) FROM workflow.stages) AS stages
SQL
)
echo "unfinished|incomplete stages|stages without exactly one completer|completer mismatch|stages = $result"
[ "$result" = "0|0|0|0|100" ] || fail "stages not completed exactly once: $result"
echo "PASS: $TOTAL tasks, 100 stages, each completed exactly once across two kill -9"
