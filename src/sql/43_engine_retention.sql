-- Job -> Stage -> Task engine (1.4): retention. purge_jobs removes finished
-- jobs with their stages, counters and tasks, a bounded batch per call (one
-- short transaction each; call it until it returns 0, or every minute from
-- pg_cron). A job in use elsewhere (its row locked) is skipped, never
-- waited for. A direct DELETE FROM workflow.jobs cascades the same way: the
-- stages by their foreign key, the tasks and counters (no foreign key: a
-- per-row check would dominate fan-out) by the statement trigger below.

CREATE OR REPLACE FUNCTION workflow.purge_jobs(older_than interval,
                                    statuses text[] DEFAULT ARRAY['completed', 'failed', 'cancelled'],
                                    max_jobs int DEFAULT 1000)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cutoff timestamptz;
  ids text[];
BEGIN
  PERFORM workflow._engine_check_not_null('older_than', older_than);
  PERFORM workflow._engine_check_not_null('statuses', statuses);
  PERFORM workflow._engine_check_not_null('max_jobs', max_jobs);
  BEGIN
    cutoff := now() - older_than;
  EXCEPTION WHEN datetime_field_overflow THEN
    RAISE EXCEPTION 'older_than % is out of range', older_than USING ERRCODE = '22023';
  END;
  IF cutoff > now() OR NOT isfinite(cutoff) THEN
    RAISE EXCEPTION 'older_than % must not be negative', older_than USING ERRCODE = '22023';
  END IF;
  IF array_ndims(statuses) > 1 THEN
    RAISE EXCEPTION 'statuses must be a one-dimensional array' USING ERRCODE = '22023';
  END IF;
  IF cardinality(statuses) = 0 OR array_position(statuses, NULL) IS NOT NULL
     OR NOT statuses <@ ARRAY['completed', 'failed', 'cancelled'] THEN
    RAISE EXCEPTION 'statuses % must be a non-empty list of completed, failed, cancelled', statuses
      USING ERRCODE = '22023';
  END IF;
  IF max_jobs NOT BETWEEN 1 AND 100000 THEN
    RAISE EXCEPTION 'max_jobs % is out of range 1..100000', max_jobs USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_admin('purge jobs');

  SELECT array_agg(p.id) INTO ids FROM (
    SELECT j.id FROM workflow.jobs j
     WHERE j.finished_at IS NOT NULL AND j.finished_at < cutoff AND j.status = ANY (statuses)
     ORDER BY j.finished_at
     LIMIT max_jobs
       FOR UPDATE SKIP LOCKED) p;
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  -- Children first (lock order job -> task -> slot -> stage), then the jobs
  -- (their stages go by the foreign key).
  DELETE FROM workflow.tasks t WHERE t.job_id = ANY (ids);
  DELETE FROM workflow.stage_slots c WHERE c.job_id = ANY (ids);
  DELETE FROM workflow.jobs j WHERE j.id = ANY (ids);
  RETURN cardinality(ids);
END;
$$;
COMMENT ON FUNCTION workflow.purge_jobs(interval, text[], int) IS
  'Deletes up to max_jobs (1..100000) jobs that finished (statuses: any of completed, failed, cancelled) more '
  'than older_than (>= 0) ago, oldest first, with their stages, counters and tasks; returns how many. One '
  'bounded transaction per call: call it until it returns 0. Jobs locked elsewhere are skipped. For '
  'workflow_admin (42501 otherwise).';
REVOKE EXECUTE ON FUNCTION workflow.purge_jobs(interval, text[], int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.purge_jobs(interval, text[], int) TO workflow_admin;

CREATE OR REPLACE FUNCTION workflow._engine_jobs_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  DELETE FROM workflow.tasks t WHERE t.job_id IN (SELECT g.id FROM gone_jobs g);
  DELETE FROM workflow.stage_slots c WHERE c.job_id IN (SELECT g.id FROM gone_jobs g);
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION workflow._engine_jobs_deleted() IS
  'Internal (trigger jobs_delete_cascade): deletes the tasks and stage counters of deleted jobs.';
REVOKE EXECUTE ON FUNCTION workflow._engine_jobs_deleted() FROM PUBLIC;

-- Not on a Citus cluster: workflow.distribute() drops it (Citus refuses
-- triggers on distributed tables), and purge_jobs' locking read over every
-- shard is refused there too (not supported on a cluster yet).
CREATE OR REPLACE TRIGGER jobs_delete_cascade
  AFTER DELETE ON workflow.jobs
  REFERENCING OLD TABLE AS gone_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION workflow._engine_jobs_deleted();
