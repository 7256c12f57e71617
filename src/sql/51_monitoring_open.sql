-- Open tasks at a glance (1.5): what `workflow serve` polls for its queues
-- panel and /metrics, in one pass over the open (queued and claimed) tasks
-- instead of one pass per view (queue_depth, oldest_runnable_task,
-- stale_claims). The pass reads the claimable index's rows
-- (tasks_claimable_idx holds only open tasks), so it costs as much as there
-- are open tasks, however many finished ones the table keeps. Re-runnable as
-- it is: the 1.4 -> 1.5 upgrade runs this file (src/sql/upgrade/1.4--1.5.list).
CREATE OR REPLACE VIEW workflow.open_task_summary AS
SELECT t.task_type, t.status, count(*) AS tasks,
       count(*) FILTER (WHERE t.status = 'queued' AND t.run_after <= now()) AS runnable_tasks,
       min(t.run_after) FILTER (WHERE t.status = 'queued' AND t.run_after <= now()) AS runnable_since,
       count(*) FILTER (WHERE t.status = 'claimed' AND t.lease_expires_at < now()) AS stale_claims
  FROM workflow.tasks t
 WHERE t.status IN ('queued', 'claimed')
 GROUP BY t.task_type, t.status;
COMMENT ON VIEW workflow.open_task_summary IS
  'Per task_type and open status (queued, claimed), in one pass over the open tasks: tasks (as queue_depth), '
  'runnable_tasks and runnable_since (queued, run_after passed: as oldest_runnable_task), stale_claims (claimed, '
  'lease expired: as stale_claims counts them).';
REVOKE ALL ON workflow.open_task_summary FROM PUBLIC;
GRANT SELECT ON workflow.open_task_summary TO workflow_monitor, workflow_admin;
