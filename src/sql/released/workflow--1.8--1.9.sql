-- Upgrade workflow 1.8 -> 1.9 (ALTER EXTENSION workflow UPDATE TO '1.9').
-- Assembled from the files listed in src/sql/upgrade/1.8--1.9.list: parts of
-- the 1.9 install script that can be re-run on 1.8 as they are (CREATE OR
-- REPLACE, COMMENT, GRANT), and deltas in src/sql/upgrade/1.8--1.9/ for what
-- cannot. Older releases take their released scripts first, then this one.
\echo Use "ALTER EXTENSION workflow UPDATE TO '1.9'" to load this file. \quit
-- survey_week_start reads a legacy zone name as the zone it links to (the
-- library does; the SQL definition is unchanged): its comment says so.
COMMENT ON FUNCTION workflow.survey_week_start(timestamptz, text) IS
  'The local Monday (a date) starting the week that contains the instant in the given time zone. An IANA zone name wins over a time zone abbreviation of the same spelling; a legacy name that tzdata 2024b made a link (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT) is read as the zone it links to, on every system (CET: Europe/Brussels, with its summer time); other strings are read as timezone() reads them.';
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
-- Survey steps, part 4: a session's time zone. CREATE OR REPLACE, so that
-- the upgrades re-run this file as it is (src/sql/upgrade/1.7--1.8.list,
-- 1.8--1.9.list).

-- Internal (src/extension/survey_zone_link.cpp): the zone a legacy name
-- (CET, EST5EDT, ...) links to since tzdata 2024b, or NULL.
CREATE OR REPLACE FUNCTION workflow._survey_zone_link(zone text) RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'workflow_survey_zone_link';
COMMENT ON FUNCTION workflow._survey_zone_link(text) IS
  'Internal: the geographic zone that a legacy zone name (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT; any case) links to since tzdata 2024b, or NULL for any other name.';
REVOKE ALL ON FUNCTION workflow._survey_zone_link(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.set_session_timezone(session_id text, tz text)
  RETURNS workflow.survey_sessions
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_zone text;
  r workflow.survey_sessions;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(set_session_timezone.session_id) p;
  IF tz IS NULL THEN
    RAISE EXCEPTION 'time zone must not be null' USING ERRCODE = '22004';
  END IF;
  IF length(tz) <= 64 THEN
    -- A legacy name is stored as the zone it links to: some systems no
    -- longer ship it as a zone (Debian trixie without tzdata-legacy), and
    -- the session must keep its weeks when its database moves to one.
    tz := coalesce(workflow._survey_zone_link(btrim(tz)), tz);
    -- IANA names only (no abbreviations, offsets or POSIX strings); canonical
    -- spelling. localtime (the server's own zone, whatever it is), posixrules
    -- (a rules file) and Factory (no zone: "-00") are files of the zone
    -- database that pg_timezone_names lists, not zones a session is in.
    SELECT z.name INTO v_zone FROM pg_catalog.pg_timezone_names z
     WHERE lower(z.name) = lower(btrim(tz)) AND z.name !~ '^(posix|right)/'
       AND lower(z.name) NOT IN ('localtime', 'posixrules', 'factory')
     ORDER BY z.name = btrim(tz) DESC LIMIT 1;
  END IF;
  IF v_zone IS NULL THEN
    RAISE EXCEPTION 'unknown time zone "%"', left(tz, 64)
      USING ERRCODE = '22023', HINT = 'Use an IANA time zone name such as "Europe/Berlin" (see pg_timezone_names).';
  END IF;
  INSERT INTO workflow.survey_sessions AS s (session_id, time_zone) VALUES (v_session, v_zone)
  ON CONFLICT (session_id) DO UPDATE SET time_zone = excluded.time_zone
  RETURNING s.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION workflow.set_session_timezone(text, text) IS
  'Sets (creating the session if needed) the IANA time zone a session''s weeks are cut in; returns the session row. A legacy name that tzdata 2024b made a link (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT) is stored as the zone it links to (CET: Europe/Brussels). Rows already written keep their week. 22023 on an invalid session id or unknown zone, 22004 on NULL.';

REVOKE ALL ON FUNCTION workflow.set_session_timezone(text, text) FROM PUBLIC;
