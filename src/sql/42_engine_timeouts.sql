-- Job -> Stage -> Task engine (1.4): task timeouts. A task added with a
-- timeout (add_tasks) gets a deadline when it is claimed (deadline_at = claim
-- time + timeout), separate from the lease: heartbeats extend the lease, not
-- the deadline. Past its deadline the attempt fails, as fail_task would with
-- the error 'timed out': the task is queued again after the backoff while it
-- has retries left, else it is dead. claim_tasks does it first (one probe of
-- the deadline index per claim), and workers may call
-- expire_timed_out_tasks. The worker that held it is fenced out: its
-- complete is 55000, its heartbeat false.

-- Fails up to max_tasks attempts whose deadline has passed, oldest first.
-- Lock order job -> task, neither waited for: a job or task busy elsewhere
-- is left for the next call.
CREATE OR REPLACE FUNCTION workflow._engine_expire_timeouts(max_tasks int)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = auto  -- not claim_tasks' generic plans (Citus plans with the values)
AS $$
DECLARE
  c record;
  t workflow.tasks;
  n int := 0;
BEGIN
  FOR c IN
    SELECT x.job_id, x.id FROM workflow.tasks x
     WHERE x.status = 'claimed' AND x.deadline_at <= now()
     ORDER BY x.deadline_at LIMIT max_tasks
  LOOP
    PERFORM 1 FROM workflow.jobs j WHERE j.id = c.job_id FOR NO KEY UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    SELECT * INTO t FROM workflow.tasks x
     WHERE x.job_id = c.job_id AND x.id = c.id AND x.status = 'claimed' AND x.deadline_at <= now()
       FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    PERFORM workflow._engine_fail_attempt(t, format('timed out after %s (deadline %s)', t.timeout, t.deadline_at),
                                          true, interval '2 seconds', interval '1 hour', t.claimed_by);
    n := n + 1;
  END LOOP;
  RETURN n;
END;
$$;
COMMENT ON FUNCTION workflow._engine_expire_timeouts(int) IS
  'Internal (claim_tasks, expire_timed_out_tasks): fails up to max_tasks claimed attempts whose deadline passed.';
REVOKE EXECUTE ON FUNCTION workflow._engine_expire_timeouts(int) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.expire_timed_out_tasks(max_tasks int DEFAULT 100)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_not_null('max_tasks', max_tasks);
  IF max_tasks NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'max_tasks % is out of range 1..10000', max_tasks USING ERRCODE = '22023';
  END IF;
  RETURN workflow._engine_expire_timeouts(max_tasks);
END;
$$;
COMMENT ON FUNCTION workflow.expire_timed_out_tasks(int) IS
  'Fails up to max_tasks (1..10000) claimed tasks whose deadline (claim time + the task''s timeout) has passed, '
  'as fail_task(error => ''timed out ...'', worker => its claimer) would: queued again after the backoff while '
  'retries are left, else dead. Returns how many. claim_tasks does it too, before it claims.';
REVOKE EXECUTE ON FUNCTION workflow.expire_timed_out_tasks(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.expire_timed_out_tasks(int) TO workflow_worker, workflow_admin;
