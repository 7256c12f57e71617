#!/usr/bin/env bash
# The CLI (build/workflow) on a job of 300 stages x 2 tasks with 8 workers:
# each stage is fanned out by the completer of the one before, before its
# advance commits, while seven other workers poll for tasks. Before claim_tasks
# waited for the job to reach a task's stage, another worker completed the new
# stage before the advance, lost its own advance, and the job stopped for
# good (seen at stage 173 of 300, every stage complete, check_invariants ok).
# Must: the job completed, every stage complete and advanced exactly once,
# invariants clean; then the same for three such jobs at once. Runs on its
# OWN cluster.
set -euo pipefail
cd "$(dirname "$0")/../.."
source scripts/lib/cluster.sh
WORK=$(mktemp -d /tmp/wf-cli-stages.XXXXXX)
trap 'cluster_stop; rm -rf "$WORK"' EXIT
cluster_start
q() { psql -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
fail() { echo "FAIL: $*"; exit 1; }
q "CREATE EXTENSION workflow"
# Witness of the race itself (the stop is timing-dependent): every claim of a
# task whose job has not reached the task's stage yet is logged.
psql -XAtq -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE TABLE public.early_claims (task_id text, task_stage int, job_stage int);
CREATE FUNCTION public.note_early_claim() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO public.early_claims
  SELECT NEW.id, NEW.stage, j.stage FROM workflow.jobs j WHERE j.id = NEW.job_id AND j.stage < NEW.stage;
  RETURN NEW;
END $$;
CREATE TRIGGER note_early_claim BEFORE UPDATE OF status ON workflow.tasks FOR EACH ROW
  WHEN (NEW.status = 'claimed' AND OLD.status = 'queued') EXECUTE FUNCTION public.note_early_claim();
SQL

CLI=build/workflow
[ -x "$CLI" ] || fail "$CLI not built"
TASKS=$(printf '2%.0s,' $(seq 1 300)); TASKS=${TASKS%,}
JOB=$($CLI submit --type stages --tasks "$TASKS" --task-type noop --id cli-300)
if ! timeout 240 $CLI worker --concurrency 8 --until-job "$JOB" >"$WORK/worker.json" 2>"$WORK/worker.err"; then
  echo "FAIL: the workers did not see the job end: $(q "SELECT status, stage FROM workflow.jobs WHERE id = '$JOB'")"
  q "SELECT check_name, ok, detail FROM workflow.check_invariants('$JOB') WHERE NOT ok"
  tail -5 "$WORK/worker.err"
  exit 1
fi
cat "$WORK/worker.json"

ok=0
check() {  # description, SQL returning true
  local got; got=$(q "$2")
  if [ "$got" = t ]; then echo "ok   $1"; else echo "FAIL $1 (got '$got')"; ok=1; fi
}
json() { grep -oE "\"$1\":[0-9.]+" "$WORK/worker.json" | head -1 | cut -d: -f2; }
check "job completed at stage 300" "SELECT status = 'completed' AND stage = 300 FROM workflow.jobs WHERE id = '$JOB'"
check "300 stages, every one complete" \
  "SELECT count(*) = 300 AND bool_and(complete) FROM workflow.job_progress('$JOB')"
check "600 tasks, all completed" \
  "SELECT count(*) = 600 AND bool_and(status = 'completed') FROM workflow.tasks WHERE job_id = '$JOB'"
check "invariants hold" "SELECT bool_and(ok) FROM workflow.check_invariants()"
check "no task claimed before its job reached its stage" "SELECT count(*) = 0 FROM public.early_claims"
[ "$(json advances)" = 300 ] && echo "ok   300 winning advances" || { echo "FAIL advances: $(json advances)"; ok=1; }
[ "$(json stage_completions)" = 300 ] && echo "ok   300 stage_complete answers" \
  || { echo "FAIL stage_complete answers: $(json stage_completions)"; ok=1; }

# The race is timing-dependent (it did not stop every run of the old code):
# once more with three such jobs at once, the same 8 workers, until idle.
for j in 1 2 3; do $CLI submit --type stages --tasks "$TASKS" --task-type noop --id "cli-300-$j" >/dev/null; done
if ! timeout 300 $CLI worker --concurrency 8 --exit-when-idle 10 >"$WORK/worker.json" 2>"$WORK/worker.err"; then
  echo "FAIL: the workers did not exit"; tail -5 "$WORK/worker.err"; exit 1
fi
cat "$WORK/worker.json"
check "three more jobs completed at stage 300" \
  "SELECT count(*) = 3 AND bool_and(status = 'completed' AND stage = 300) FROM workflow.jobs WHERE id LIKE 'cli-300-_'"
check "invariants hold" "SELECT bool_and(ok) FROM workflow.check_invariants()"
check "no task claimed before its job reached its stage" "SELECT count(*) = 0 FROM public.early_claims"
[ "$(json advances)" = 900 ] && echo "ok   900 winning advances" || { echo "FAIL advances: $(json advances)"; ok=1; }
exit $ok
