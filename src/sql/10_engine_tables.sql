-- Job -> Stage -> Task engine: tables.
--
-- Fan-in bookkeeping (exactly-once "stage complete", O(1) per task):
--   stage_slots.remaining  = a share of the stage's unfinished tasks: the
--                            counters of a stage sum to its unfinished tasks.
--                            add_tasks adds a task to slot task_index %
--                            stages.slot_count; a completion takes its unit
--                            from any counter of the stage that has one
--                            (1.2; 1.0 and 1.1 took it from the task's slot)
--   stages.pending_slots   = slots with remaining > 0, plus 1 while unsealed
-- Each level is a counter updated under a row lock held to commit; the
-- transaction that brings pending_slots to 0 is the one completer.
-- Lock order everywhere: job -> task -> slot -> stage.
-- Every unique key includes job_id, so the tables can be sharded by job.
-- tasks and stage_slots carry no foreign keys: a per-row RI check would
-- dominate bulk fan-out; add_tasks creates the stage row before its tasks.

CREATE TABLE workflow.jobs (
  id           text        PRIMARY KEY,
  job_type     text        NOT NULL,
  status       text        NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  stage        int         NOT NULL DEFAULT 1,
  total_stages int         NOT NULL,
  parameters   jsonb       NOT NULL DEFAULT '{}',
  metadata     jsonb       NOT NULL DEFAULT '{}',
  result_data  jsonb,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  -- How long the completer of a stage may take to advance the job before
  -- the stage is handed to another worker (claim_stage_handovers).
  handover_lease interval  NOT NULL DEFAULT '1 minute',
  -- The session user that created the job (create_job). NULL: a job from
  -- before 1.1, whose creator is unknown (admin-only). Last column: the
  -- 1.0 -> 1.1 upgrade adds it (src/sql/upgrade/1.0--1.1/10_jobs_owner.sql).
  owner        name,
  -- 1.4 (src/sql/upgrade/1.3--1.4/10_controls.sql adds them, in this order):
  -- the job's tasks are not claimed before run_at (add_tasks sets their
  -- run_after to it at the latest); paused_at: a paused job's tasks are not
  -- claimed (pause_job); dedupe_key: create_job's key, the id derived from it.
  run_at       timestamptz,
  paused_at    timestamptz,
  dedupe_key   text,
  -- 1.7 (src/sql/upgrade/1.6--1.7/10_final_advance.sql adds it): true when
  -- check_job_completion completed the job before anyone advanced its last
  -- stage; that advance still records the stage's results and is the one
  -- caller that gets true (advance_job_stage clears it).
  final_advance_pending boolean NOT NULL DEFAULT false,
  CHECK (total_stages BETWEEN 1 AND 10000),
  CHECK (stage BETWEEN 1 AND total_stages)
);
COMMENT ON TABLE workflow.jobs IS
  'A job: total_stages stages run one after another; stage is the current one (1-based).';
COMMENT ON COLUMN workflow.jobs.owner IS
  'The session user that created the job: it (and workflow_admin) may change and read the job. '
  'NULL for a job created before 1.1: only workflow_admin (and workers, for what they do) act on it.';
-- A producer reads its own jobs (row-level security, 18_engine_access.sql).
CREATE INDEX jobs_owner_idx ON workflow.jobs (owner);

CREATE TABLE workflow.stages (
  job_id            text        NOT NULL REFERENCES workflow.jobs (id) ON DELETE CASCADE,
  stage             int         NOT NULL,
  slot_count        int         NOT NULL CHECK (slot_count BETWEEN 1 AND 65536),
  pending_slots     int         NOT NULL CHECK (pending_slots >= 0),
  sealed            boolean     NOT NULL DEFAULT false,
  total_tasks       int         NOT NULL DEFAULT 0 CHECK (total_tasks >= 0),
  completed_by_task text,        -- the task whose completion completed the stage
  completed_by_seal boolean     NOT NULL DEFAULT false,  -- or the seal did
  completed_at      timestamptz,
  result_data       jsonb,       -- stage_results given to advance_job_stage
  created_at        timestamptz NOT NULL DEFAULT now(),
  sealed_at         timestamptz,
  -- Hand-over (claim_stage_handovers): a complete stage the job has not left
  -- belongs to its completer until completed_at + jobs.handover_lease, then
  -- to whoever claims it (handover_by) until handover_expires_at. Advancing
  -- the job into a stage that is complete already sets handover_expires_at
  -- to now(): nobody is known to be advancing it.
  handover_by         text,
  handover_expires_at timestamptz,
  left_at           timestamptz, -- the job moved past this stage (advanced, completed or ended)
  -- 1.4: dead tasks the stage tolerates instead of failing the job
  -- (tolerate_dead_tasks), and how many it has tolerated so far.
  max_dead_tasks    int         NOT NULL DEFAULT 0 CHECK (max_dead_tasks BETWEEN 0 AND 1000000),
  dead_tasks        int         NOT NULL DEFAULT 0 CHECK (dead_tasks >= 0),
  PRIMARY KEY (job_id, stage),
  CHECK ((completed_at IS NULL) = (pending_slots > 0))
);
COMMENT ON TABLE workflow.stages IS
  'Fan-in state of one stage of a job: sealed when its producer is done adding tasks; '
  'complete when sealed and every task completed (pending_slots = 0).';

CREATE TABLE workflow.stage_slots (
  job_id    text NOT NULL,
  stage     int  NOT NULL,
  slot      int  NOT NULL,
  remaining int  NOT NULL CHECK (remaining >= 0),
  PRIMARY KEY (job_id, stage, slot)
) WITH (fillfactor = 10);
-- fillfactor 10: every completion updates a counter and, with its exact
-- count, reads all of its stage's counters. With the default 100 a page
-- is pruned only when nearly full, so each counter's chain of dead
-- versions grows to about a hundred, and every read walks them all; at
-- 10 a page is pruned as soon as it is 10% full.
COMMENT ON TABLE workflow.stage_slots IS
  'Sharded counter of a stage''s unfinished tasks: one row per slot; the slots of a stage sum to its unfinished '
  'tasks (a task is added to slot task_index % slot_count, a completion takes from any slot with some left).';

CREATE TABLE workflow.tasks (
  id               text        NOT NULL,
  job_id           text        NOT NULL,
  task_type        text        NOT NULL,
  status           text        NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'claimed', 'completed', 'failed', 'cancelled')),
  stage            int         NOT NULL,
  task_index       int         NOT NULL CHECK (task_index >= 0),
  slot             int         NOT NULL,
  parameters       jsonb       NOT NULL DEFAULT '{}',
  result_data      jsonb,
  retry_count      int         NOT NULL DEFAULT 0,
  max_retries      int         NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 1000),
  heartbeat        timestamptz,
  claimed_by       text,
  lease_expires_at timestamptz,
  run_after        timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  -- 1.4: claims take higher priority first; timeout: a claim's deadline
  -- (deadline_at = claim time + timeout; past it the attempt fails);
  -- dead_tolerated: dead, and counted as finished by its stage's fan-in
  -- (the stage tolerates it); progress: report_progress's last report.
  priority         int         NOT NULL DEFAULT 0,
  timeout          interval,
  deadline_at      timestamptz,
  dead_tolerated   boolean     NOT NULL DEFAULT false,
  progress         jsonb,
  PRIMARY KEY (job_id, id),
  UNIQUE (job_id, stage, task_index)
);
COMMENT ON TABLE workflow.tasks IS
  'One unit of work of a stage; id = job_id || '':'' || stage || '':'' || task_index.';

-- Claimable tasks by priority (1.4, highest first), then in the order they become
-- available: queued ones by run_after (run_at, retry backoff), claimed ones by
-- lease expiry (reclaim). A claim walks the priorities present (a loose index
-- scan) and reads each one's due entries, so tasks not due yet cost it
-- nothing (14_engine_tasks.sql).
CREATE INDEX tasks_claimable_idx ON workflow.tasks
  (priority DESC, (CASE WHEN status = 'queued' THEN run_after ELSE lease_expires_at END))
  WHERE status IN ('queued', 'claimed');

-- 1.4: the claimed tasks of a type (concurrency limits count them), the
-- claimed tasks with a deadline (timeouts), dead tasks (workflow.dead_tasks).
-- (task_type IS NOT NULL, always true, keeps this index out of other
-- queries on claimed tasks: only a condition on task_type implies it.)
CREATE INDEX tasks_claimed_type_idx ON workflow.tasks (task_type)
  WHERE status = 'claimed' AND task_type IS NOT NULL;
CREATE INDEX tasks_deadline_idx ON workflow.tasks (deadline_at)
  WHERE status = 'claimed' AND deadline_at IS NOT NULL;
CREATE INDEX tasks_dead_idx ON workflow.tasks (updated_at) WHERE status = 'failed';
-- 1.4: finished jobs by finish time (purge_jobs).
CREATE INDEX jobs_finished_idx ON workflow.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- 1.4: per task type controls (41_engine_controls.sql): a paused type is not
-- claimed; max_claimed caps its tasks claimed at once, exactly (claims of a
-- limited type serialise on its row).
CREATE TABLE workflow.task_type_settings (
  task_type   text        PRIMARY KEY,
  paused_at   timestamptz,
  max_claimed int         CHECK (max_claimed BETWEEN 0 AND 1000000),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workflow.task_type_settings IS
  'Per task type: paused (paused_at not NULL: claims skip the type) and max_claimed (at most that many of its '
  'tasks claimed at once; NULL: no limit). Written by pause_task_type, resume_task_type, set_task_type_limit.';

-- Stages awaiting their hand-over: complete and not yet left by the job.
-- Few at any time (the stages being advanced), so a hand-over claim scans
-- only these.
CREATE INDEX stages_handover_idx ON workflow.stages (job_id, stage)
  WHERE completed_at IS NOT NULL AND left_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('workflow.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.stages', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.stage_slots', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.task_type_settings', '');
