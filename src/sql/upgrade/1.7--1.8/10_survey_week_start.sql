-- 1.7 -> 1.8: survey_week_start is native (src/extension/survey_week.cpp), so
-- that an IANA zone wins over an abbreviation of the same name (CET, EET,
-- MET, WET: 1.7 cut their summer weeks an hour early). Rows already written
-- keep their week_start (as after a zone change); to recompute those of
-- sessions in these zones:
--   UPDATE workflow.survey_steps t SET week_start = workflow.survey_week_start(t.completed_at, s.time_zone)
--     FROM workflow.survey_sessions s WHERE s.session_id = t.session_id AND s.time_zone IN ('CET', 'EET', 'MET', 'WET');
-- (a key that then collides with another row of the same week and step is refused).
CREATE OR REPLACE FUNCTION workflow.survey_week_start(at timestamptz, zone text) RETURNS date
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'workflow_survey_week_start';
COMMENT ON FUNCTION workflow.survey_week_start(timestamptz, text) IS
  'The local Monday (a date) starting the week that contains the instant in the given time zone. An IANA zone name wins over a time zone abbreviation of the same spelling (CET, EET, MET, WET keep their summer time); other strings are read as timezone() reads them.';
