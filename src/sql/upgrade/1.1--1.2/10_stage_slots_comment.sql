-- 1.1 -> 1.2: a completion takes its unit from any counter of its stage
-- (src/sql/10_engine_tables.sql; the table itself is unchanged).
COMMENT ON TABLE workflow.stage_slots IS
  'Sharded counter of a stage''s unfinished tasks: one row per slot; the slots of a stage sum to its unfinished '
  'tasks (a task is added to slot task_index % slot_count, a completion takes from any slot with some left).';
