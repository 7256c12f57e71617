# Shared by run.sh and cpu.sh (sourced from the repository root): builds,
# starts a throw-away cluster (stopped on exit) and loads one 300k-task stage
# per design, plus the PL/pgSQL reference's counter row. SLOT_COUNT=n gives
# the stages n counter slots instead of add_tasks' default.
DESIGNS=(native native_nocount plpgsql bare)
TASKS=300000
source scripts/lib/cluster.sh
scripts/build
trap cluster_stop EXIT
cluster_start ${BENCH_PG_OPTS:-}   # e.g. BENCH_PG_OPTS="autovacuum=off" for a diagnosis
PSQL=(psql -X -q -v ON_ERROR_STOP=1)
"${PSQL[@]}" -c "CREATE EXTENSION workflow" -f bench/engine/reference.sql
for d in "${DESIGNS[@]}"; do
  "${PSQL[@]}" -c "SELECT workflow.create_job('bench', '{}', 1, 'bench-$d')" \
    -c "SELECT workflow.add_tasks('bench-$d', 1, 'bench', array_fill('{}'::jsonb, ARRAY[$TASKS])${SLOT_COUNT:+, slot_count => $SLOT_COUNT})" >/dev/null
done
"${PSQL[@]}" -c "INSERT INTO bench_ref.stage_counter VALUES ('bench-plpgsql', 1, $TASKS)" \
  -c "VACUUM ANALYZE"
