-- Survey steps, part 2: sessions (with a time zone), steps, the upserts, the
-- weekly query, clean-up and the weekly completion view.

CREATE TABLE workflow.survey_sessions (
  session_id text PRIMARY KEY CHECK (session_id ~ '^[CGD][A-Z0-9]{8,20}$'),
  time_zone  text NOT NULL DEFAULT 'UTC',
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workflow.survey_sessions IS
  'Survey sessions (chat channels) and the IANA time zone their weeks are cut in. Created on first upsert with time zone UTC.';

-- One row per (session, week, step). week_start is the local Monday, in the
-- session's time zone, of the week containing completed_at.
CREATE TABLE workflow.survey_steps (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id   text NOT NULL REFERENCES workflow.survey_sessions (session_id) ON DELETE CASCADE,
  step_name    text NOT NULL REFERENCES workflow.survey_step_names (name) ON UPDATE CASCADE,
  week_start   date NOT NULL CHECK (pg_catalog.date_part('isodow', week_start) = 1),
  value        jsonb NOT NULL DEFAULT '{}',
  completed_at timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT survey_steps_session_week_step_key UNIQUE (session_id, week_start, step_name)
);
COMMENT ON TABLE workflow.survey_steps IS
  'Completed survey steps: one row per session, week (Monday 00:00 to Monday 00:00 in the session''s time zone) and step.';

SELECT pg_catalog.pg_extension_config_dump('workflow.survey_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_steps', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_steps_id_seq', '');

-- The local Monday starting the week that contains `at` in time zone `zone`.
-- Native (src/extension/survey_week.cpp): the zone is looked up as an IANA
-- name first, not as an abbreviation as timezone(zone, at) does ('CET' is a
-- zone with summer time and an abbreviation of UTC+1).
CREATE FUNCTION workflow.survey_week_start(at timestamptz, zone text) RETURNS date
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'workflow_survey_week_start';
COMMENT ON FUNCTION workflow.survey_week_start(timestamptz, text) IS
  'The local Monday (a date) starting the week that contains the instant in the given time zone. An IANA zone name wins over a time zone abbreviation of the same spelling; a legacy name that tzdata 2024b made a link (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT) is read as the zone it links to, on every system (CET: Europe/Brussels, with its summer time); other strings are read as timezone() reads them.';

-- set_session_timezone: src/sql/34_survey_timezone.sql.
-- upsert_survey_step: src/sql/32_survey_upsert_step.sql.

CREATE FUNCTION workflow.upsert_survey_steps(steps jsonb) RETURNS integer
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  SET work_mem = '64MB'  -- the batch's de-duplicating sort stays in memory up to ~200k steps
  AS 'MODULE_PATHNAME', 'workflow_upsert_survey_steps';
COMMENT ON FUNCTION workflow.upsert_survey_steps(jsonb) IS
  'Batch form of upsert_survey_step: a JSON array of {"session_id","step_name","value","completed_at"} objects (value defaults to {}, completed_at to now()). All or nothing: the first invalid element is named by its 0-based index and nothing is written. Elements for the same session, week and step collapse to the last one. Returns the number of rows written.';

CREATE FUNCTION workflow.get_weekly_survey_steps(session_id text, week_of timestamptz DEFAULT now())
  RETURNS SETOF workflow.survey_steps
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_zone text;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(get_weekly_survey_steps.session_id) p;
  IF week_of IS NULL THEN
    RAISE EXCEPTION 'week_of must not be null' USING ERRCODE = '22004';
  END IF;
  IF NOT isfinite(week_of) THEN
    RAISE EXCEPTION 'week_of "%" must be finite', week_of USING ERRCODE = '22023';
  END IF;
  SELECT s.time_zone INTO v_zone FROM workflow.survey_sessions s WHERE s.session_id = v_session;
  IF NOT FOUND THEN
    RETURN;  -- a session with no steps yet
  END IF;
  RETURN QUERY
    SELECT t.* FROM workflow.survey_steps t
     WHERE t.session_id = v_session
       AND t.week_start = workflow.survey_week_start(week_of, v_zone)
     ORDER BY t.step_name;
END
$$;
COMMENT ON FUNCTION workflow.get_weekly_survey_steps(text, timestamptz) IS
  'The steps of a session in the week (Monday 00:00 to Monday 00:00 in the session''s time zone) containing week_of, ordered by step name; index-backed. Empty for an unknown session; 22023 on an invalid session id.';

-- cleanup_survey_sessions: src/sql/33_survey_cleanup.sql.

CREATE VIEW workflow.survey_weekly_completion AS
  SELECT t.week_start, t.step_name, count(*)::integer AS sessions_completed
    FROM workflow.survey_steps t
   GROUP BY t.week_start, t.step_name;
COMMENT ON VIEW workflow.survey_weekly_completion IS
  'Per week (local Monday of each session''s own time zone) and step: how many sessions completed the step.';

-- Writers and readers of survey data are granted explicitly by the administrator.
REVOKE ALL ON FUNCTION workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz) FROM PUBLIC;
