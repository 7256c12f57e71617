-- Survey steps: who may call and read what (1.1). New in 1.1 and safe on a
-- 1.0 database: the 1.0 -> 1.1 upgrade runs this file as it is.
--   PUBLIC             the pure functions (step_name_key, normalize_step_name,
--                      parse_session_id, is_valid_session_id,
--                      survey_week_start) and the step-name registry (read)
--   workflow_survey    set_session_timezone, upsert_survey_step(s),
--                      get_weekly_survey_steps; reads sessions, steps and
--                      survey_weekly_completion
--   workflow_admin     all of that, cleanup_survey_sessions, and writes the
--                      step-name registry
-- Survey data has no owner: a session is a chat channel, shared by whoever
-- records it (the bot). Writes go through the SECURITY DEFINER functions.

REVOKE EXECUTE ON FUNCTION
  workflow.set_session_timezone(text, text),
  workflow.upsert_survey_step(text, text, jsonb, timestamptz),
  workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz),
  workflow.cleanup_survey_sessions(interval)
  FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
  workflow.set_session_timezone(text, text),
  workflow.upsert_survey_step(text, text, jsonb, timestamptz),
  workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz)
  TO workflow_survey, workflow_admin;
GRANT EXECUTE ON FUNCTION workflow.cleanup_survey_sessions(interval) TO workflow_admin;

REVOKE ALL ON workflow.survey_sessions, workflow.survey_steps, workflow.survey_weekly_completion
  FROM PUBLIC;
GRANT SELECT ON workflow.survey_sessions, workflow.survey_steps, workflow.survey_weekly_completion
  TO workflow_survey, workflow_admin;
GRANT INSERT, UPDATE, DELETE ON workflow.survey_step_names, workflow.survey_step_aliases
  TO workflow_admin;
