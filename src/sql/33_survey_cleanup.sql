-- Survey steps, part 4: the clean-up of idle sessions. CREATE OR REPLACE, so
-- that the upgrades re-run this file as it is (src/sql/upgrade/1.7--1.8.list,
-- 1.8--1.9.list).

CREATE OR REPLACE FUNCTION workflow.cleanup_survey_sessions(older_than interval) RETURNS integer
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cutoff timestamptz;
  v_deleted integer;
  v_locked text[];
BEGIN
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'older_than must not be null' USING ERRCODE = '22004';
  END IF;
  IF older_than < interval '0' OR NOT isfinite(older_than) THEN
    RAISE EXCEPTION 'older_than "%" must be a finite, non-negative interval', older_than USING ERRCODE = '22023';
  END IF;
  v_cutoff := now() - older_than;
  -- Lock the idle sessions first, skipping those a transaction in flight
  -- holds (an upsert holds its session FOR KEY SHARE until commit): they are
  -- in use, a later run takes them, and the clean-up never waits for an
  -- upsert (waiting deadlocked with a transaction upserting several sessions
  -- in another order). The DELETE, a new statement, deletes only the
  -- sessions locked here, and keeps those that a step committed since the
  -- lock's snapshot made active.
  SELECT coalesce(array_agg(x.session_id), '{}') INTO v_locked FROM (
    SELECT s.session_id FROM workflow.survey_sessions s
     WHERE s.created_at < v_cutoff
       AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                        WHERE t.session_id = s.session_id AND t.completed_at >= v_cutoff)
     ORDER BY s.session_id
       FOR UPDATE OF s SKIP LOCKED) x;
  DELETE FROM workflow.survey_sessions s
   WHERE s.session_id = ANY (v_locked)
     AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                      WHERE t.session_id = s.session_id AND t.completed_at >= v_cutoff);
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
COMMENT ON FUNCTION workflow.cleanup_survey_sessions(interval) IS
  'Deletes sessions (and their steps) created before now() - older_than that have no step completed since then; returns the number of sessions deleted. Sessions that a transaction in flight holds (an upsert into them) are skipped, not waited for: a later run takes them.';

REVOKE ALL ON FUNCTION workflow.cleanup_survey_sessions(interval) FROM PUBLIC;
