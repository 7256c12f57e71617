-- examples/survey-bot: who may call what. PUBLIC: nothing.
--   survey_bot_app (the bot; a member of workflow_survey): add_channel,
--     set_time_zone, record_step, channel_week, weekly_report; reads the
--     channels; writes them only through add_channel; no DELETE, no DDL.
--   survey_bot_maintainer (a scheduled job): cleanup, and nothing else.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'survey_bot_app') THEN
    CREATE ROLE survey_bot_app NOLOGIN IN ROLE workflow_survey;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'survey_bot_maintainer') THEN
    CREATE ROLE survey_bot_maintainer NOLOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA survey_bot TO survey_bot_app, survey_bot_maintainer;
GRANT SELECT, INSERT, UPDATE (name) ON survey_bot.channels TO survey_bot_app;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA survey_bot FROM PUBLIC;
GRANT EXECUTE ON FUNCTION survey_bot.act_as(text), survey_bot.known_channel(text),
  survey_bot.add_channel(text, text, text, text), survey_bot.set_time_zone(text, text, text),
  survey_bot.record_step(text, text, jsonb, text, timestamptz),
  survey_bot.channel_week(text, timestamptz), survey_bot.weekly_report(date) TO survey_bot_app;
GRANT USAGE ON SCHEMA workflow TO survey_bot_maintainer;
GRANT EXECUTE ON FUNCTION survey_bot.act_as(text), survey_bot.cleanup(interval),
  workflow.cleanup_survey_sessions(interval) TO survey_bot_maintainer;
