-- Survey steps, part 4: a session's time zone. CREATE OR REPLACE, so that
-- the upgrade from 1.7 re-runs this file as it is (src/sql/upgrade/1.7--1.8.list).

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
  'Sets (creating the session if needed) the IANA time zone a session''s weeks are cut in; returns the session row. Rows already written keep their week. 22023 on an invalid session id or unknown zone, 22004 on NULL.';

REVOKE ALL ON FUNCTION workflow.set_session_timezone(text, text) FROM PUBLIC;
