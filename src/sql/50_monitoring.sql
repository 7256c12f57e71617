-- Monitoring views (1.4; stuck_jobs reworked in 1.5): what a dashboard (`workflow serve`) or a monitoring
-- system reads. Re-runnable as it is (CREATE OR REPLACE, GRANT, COMMENT): the
-- 1.3 -> 1.4 and 1.4 -> 1.5 upgrades run this file (src/sql/upgrade/*.list).
--
-- The views run with their owner's rights (not security_invoker): they show
-- every job, whoever owns it, and are readable by workflow_monitor (a new
-- NOLOGIN role: grant it to the login role of a dashboard or an exporter)
-- and workflow_admin only. Nothing here writes.

-- workflow_monitor is made in 01_roles.sql (the 1.3 -> 1.4 upgrade runs it too).
GRANT USAGE ON SCHEMA workflow TO workflow_monitor;

-- Tasks by type and status (every task the table holds, finished ones too).
CREATE OR REPLACE VIEW workflow.queue_depth AS
SELECT t.task_type, t.status, count(*) AS tasks
  FROM workflow.tasks t
 GROUP BY t.task_type, t.status;
COMMENT ON VIEW workflow.queue_depth IS
  'Tasks by task_type and status (queued, claimed, completed, failed, cancelled): the queue depth is status = queued.';

-- Queued tasks whose run_after has passed: claimable now.
CREATE OR REPLACE VIEW workflow.oldest_runnable_task AS
SELECT t.task_type, count(*) AS runnable_tasks, min(t.run_after) AS runnable_since,
       extract(epoch FROM now() - min(t.run_after))::float8 AS age_seconds
  FROM workflow.tasks t
 WHERE t.status = 'queued' AND t.run_after <= now()
 GROUP BY t.task_type;
COMMENT ON VIEW workflow.oldest_runnable_task IS
  'Per task_type: queued tasks that may be claimed now (run_after passed) and how long the oldest has waited '
  '(age_seconds, since its run_after). No row: nothing of that type is waiting.';

-- Claims whose lease ran out: the worker died or hangs; the next claim_tasks takes them back.
CREATE OR REPLACE VIEW workflow.stale_claims AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.claimed_by, t.heartbeat, t.lease_expires_at,
       now() - t.lease_expires_at AS expired_for
  FROM workflow.tasks t
 WHERE t.status = 'claimed' AND t.lease_expires_at < now();
COMMENT ON VIEW workflow.stale_claims IS
  'Claimed tasks whose lease has expired and that no worker has reclaimed yet (claim_tasks takes them back).';

-- One row per job with its task totals (from workflow.stages: no task scan).
CREATE OR REPLACE VIEW workflow.job_summary AS
SELECT j.id AS job_id, j.job_type, j.status, j.stage, j.total_stages, j.owner, j.parameters, j.error,
       j.created_at, j.updated_at, j.finished_at,
       coalesce(s.total_tasks, 0) AS total_tasks, coalesce(s.complete_stages, 0) AS complete_stages
  FROM workflow.jobs j
  LEFT JOIN LATERAL (SELECT sum(x.total_tasks)::bigint AS total_tasks,
                            count(*) FILTER (WHERE x.completed_at IS NOT NULL) AS complete_stages
                       FROM workflow.stages x WHERE x.job_id = j.id) s ON true;
COMMENT ON VIEW workflow.job_summary IS
  'Every job with its status, current stage, parameters, error, and the tasks added to its stages so far.';

-- Per stage of every job: tasks by status and completions in the last minute.
-- Filter by job_id (or job_status = 'running'): each row counts its stage's tasks.
CREATE OR REPLACE VIEW workflow.stage_progress AS
SELECT j.id AS job_id, j.job_type, j.status AS job_status, s.stage, s.stage = j.stage AS current,
       s.sealed, s.total_tasks, t.completed, t.failed, t.queued, t.claimed,
       s.completed_at IS NOT NULL AS complete, s.created_at, s.completed_at,
       t.completed_last_minute, (t.completed_last_minute / 60.0)::float8 AS completions_per_second
  FROM workflow.jobs j
  JOIN workflow.stages s ON s.job_id = j.id
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status = 'completed') AS completed,
           count(*) FILTER (WHERE x.status = 'failed') AS failed,
           count(*) FILTER (WHERE x.status = 'queued') AS queued,
           count(*) FILTER (WHERE x.status = 'claimed') AS claimed,
           count(*) FILTER (WHERE x.completed_at > now() - interval '1 minute') AS completed_last_minute
      FROM workflow.tasks x WHERE x.job_id = s.job_id AND x.stage = s.stage) t;
COMMENT ON VIEW workflow.stage_progress IS
  'Per stage of every job: tasks completed, failed, queued and claimed, and throughput (completions in the '
  'last minute, and per second over it). Filter by job_id or job_status: each row counts its stage''s tasks.';

-- Per stage of every job, from its counters alone (no task is read): what a
-- live progress bar needs, O(the stage's slot_count) however many tasks it has.
CREATE OR REPLACE VIEW workflow.stage_counters AS
SELECT s.job_id, s.stage, s.sealed, s.total_tasks, c.unfinished AS unfinished_tasks,
       s.total_tasks - c.unfinished AS finished_tasks, s.completed_at IS NOT NULL AS complete
  FROM workflow.stages s
  CROSS JOIN LATERAL (SELECT coalesce(sum(x.remaining), 0)::int AS unfinished
                        FROM workflow.stage_slots x WHERE x.job_id = s.job_id AND x.stage = s.stage) c;
COMMENT ON VIEW workflow.stage_counters IS
  'Per stage of every job, from its fan-in counters (no task scan): total_tasks added, unfinished_tasks (queued, '
  'claimed, cancelled, or dead in a stage that does not tolerate it), finished_tasks = total - unfinished (completed, or dead '
  'and tolerated by the stage). The dashboard''s live progress; stage_progress has the exact split by status.';

-- Completions per second of the last 10 minutes, per job (the dashboard's chart).
CREATE OR REPLACE VIEW workflow.task_completions AS
SELECT t.job_id, date_trunc('second', t.completed_at) AS second, count(*) AS completions
  FROM workflow.tasks t
 WHERE t.completed_at > now() - interval '10 minutes'
 GROUP BY t.job_id, date_trunc('second', t.completed_at);
COMMENT ON VIEW workflow.task_completions IS
  'Tasks completed per job and second over the last 10 minutes (seconds with none have no row).';

-- Tasks that failed and are not completed: retrying (queued again) or dead (failed).
-- The partial index holds only those (few) rows: the view reads it instead of
-- the whole table, and a claim or completion of a task that never failed
-- adds nothing to it.
CREATE INDEX IF NOT EXISTS tasks_failed_idx ON workflow.tasks (updated_at)
  WHERE last_error IS NOT NULL AND status IN ('queued', 'claimed', 'failed');
CREATE OR REPLACE VIEW workflow.failed_tasks AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.status, t.retry_count, t.max_retries,
       t.last_error, CASE WHEN t.status = 'queued' THEN t.run_after END AS next_attempt_at, t.updated_at
  FROM workflow.tasks t
 WHERE t.last_error IS NOT NULL AND t.status IN ('queued', 'claimed', 'failed');
COMMENT ON VIEW workflow.failed_tasks IS
  'Tasks whose last attempt failed and that have not completed since: status queued or claimed (being '
  'retried; next_attempt_at) or failed (dead: out of retries or not retryable), with last_error.';

-- Completed stages and how long each took from its creation (first add_tasks) to completion.
CREATE OR REPLACE VIEW workflow.stage_latency AS
SELECT s.job_id, j.job_type, s.stage, s.created_at, s.completed_at,
       extract(epoch FROM s.completed_at - s.created_at)::float8 AS seconds
  FROM workflow.stages s JOIN workflow.jobs j ON j.id = s.job_id
 WHERE s.completed_at IS NOT NULL;
COMMENT ON VIEW workflow.stage_latency IS
  'Every completed stage and its latency in seconds, from the stage''s creation to its completion.';

-- Jobs that are not ending by themselves: see the reasons in the comment.
-- 1.5: an unfinished stage's tasks are read only when it may be stuck: it
-- is 5 minutes old (created and sealed) and none of its tasks changed in
-- the last 5 minutes (the EXISTS stops at the first that did); a moving
-- stage costs no count of its tasks (before, every poll counted them all).
CREATE OR REPLACE VIEW workflow.stuck_jobs AS
SELECT j.id AS job_id, j.job_type, j.status, j.stage, r.reason, r.since
  FROM workflow.jobs j
  LEFT JOIN workflow.stages s ON s.job_id = j.id AND s.stage = j.stage
  CROSS JOIN LATERAL (
    SELECT s.job_id IS NOT NULL AND s.completed_at IS NULL
           AND greatest(s.created_at, s.sealed_at) < now() - interval '5 minutes'
           AND NOT EXISTS (SELECT FROM workflow.tasks y
                            WHERE y.job_id = s.job_id AND y.stage = s.stage
                              AND y.updated_at >= now() - interval '5 minutes') AS idle) i
  LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status IN ('queued', 'claimed')) AS open_tasks,
           count(*) FILTER (WHERE x.status = 'claimed' OR (x.status = 'queued' AND x.run_after <= now()))
             AS due_tasks,
           max(x.updated_at) AS last_update
      FROM workflow.tasks x WHERE i.idle AND x.job_id = s.job_id AND x.stage = s.stage) t ON true
  CROSS JOIN LATERAL (
    SELECT CASE
             WHEN s.job_id IS NULL THEN 'current stage has no tasks'
             WHEN s.completed_at IS NOT NULL THEN 'stage complete, job not advanced'
             WHEN t.open_tasks = 0 AND NOT s.sealed THEN 'stage not sealed, no task to run'
             ELSE 'no task progress'
           END AS reason,
           CASE
             WHEN s.job_id IS NULL THEN j.updated_at
             WHEN s.completed_at IS NOT NULL
               THEN coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
             -- 1.8: open tasks that all wait for later (run_at, a retry's
             -- backoff) are a job waiting as asked, not a stuck one
             WHEN i.idle AND (t.open_tasks = 0 OR t.due_tasks > 0)
               THEN greatest(s.created_at, s.sealed_at, t.last_update)
             -- else NULL: moving, waiting for its tasks' time, or younger than 5 minutes; not stuck
           END AS since) r
 WHERE j.status IN ('pending', 'running')
   AND r.since < now() - CASE WHEN s.completed_at IS NOT NULL THEN interval '0' ELSE interval '5 minutes' END;
COMMENT ON VIEW workflow.stuck_jobs IS
  'Pending or running jobs that are not moving: their current stage has no tasks, or is complete but the job '
  'was not advanced past its hand-over lease, or is unsealed with no task to run, or no task of it changed, '
  'for 5 minutes (not when its open tasks all wait for a later run_after: run_at, retry backoff). since: when it '
  'stopped moving.';

REVOKE ALL ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs FROM PUBLIC;
GRANT SELECT ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs TO workflow_monitor, workflow_admin;
