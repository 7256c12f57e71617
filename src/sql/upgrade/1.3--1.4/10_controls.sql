-- 1.3 -> 1.4: the columns, indexes and table of scheduling, priorities,
-- limits, timeouts, dead work and retention (src/sql/10_engine_tables.sql,
-- which says what each is for). Columns in the order CREATE TABLE has them.
ALTER TABLE workflow.jobs
  ADD COLUMN run_at timestamptz,
  ADD COLUMN paused_at timestamptz,
  ADD COLUMN dedupe_key text;
ALTER TABLE workflow.stages
  ADD COLUMN max_dead_tasks int NOT NULL DEFAULT 0 CHECK (max_dead_tasks BETWEEN 0 AND 1000000),
  ADD COLUMN dead_tasks int NOT NULL DEFAULT 0 CHECK (dead_tasks >= 0);
ALTER TABLE workflow.tasks
  ADD COLUMN priority int NOT NULL DEFAULT 0,
  ADD COLUMN timeout interval,
  ADD COLUMN deadline_at timestamptz,
  ADD COLUMN dead_tolerated boolean NOT NULL DEFAULT false,
  ADD COLUMN progress jsonb;

DROP INDEX workflow.tasks_claimable_idx;
CREATE INDEX tasks_claimable_idx ON workflow.tasks
  (priority DESC, (CASE WHEN status = 'queued' THEN run_after ELSE lease_expires_at END))
  WHERE status IN ('queued', 'claimed');
CREATE INDEX tasks_claimed_type_idx ON workflow.tasks (task_type)
  WHERE status = 'claimed' AND task_type IS NOT NULL;
CREATE INDEX tasks_deadline_idx ON workflow.tasks (deadline_at)
  WHERE status = 'claimed' AND deadline_at IS NOT NULL;
CREATE INDEX tasks_dead_idx ON workflow.tasks (updated_at) WHERE status = 'failed';
CREATE INDEX jobs_finished_idx ON workflow.jobs (finished_at) WHERE finished_at IS NOT NULL;

CREATE TABLE workflow.task_type_settings (
  task_type   text        PRIMARY KEY,
  paused_at   timestamptz,
  max_claimed int         CHECK (max_claimed BETWEEN 0 AND 1000000),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workflow.task_type_settings IS
  'Per task type: paused (paused_at not NULL: claims skip the type) and max_claimed (at most that many of its '
  'tasks claimed at once; NULL: no limit). Written by pause_task_type, resume_task_type, set_task_type_limit.';
SELECT pg_catalog.pg_extension_config_dump('workflow.task_type_settings', '');
