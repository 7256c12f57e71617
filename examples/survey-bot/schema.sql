-- examples/survey-bot: the backend of a chat bot that runs a weekly survey
-- in chat channels, on the extension's survey steps (workflow.survey_sessions
-- and survey_steps: one session per channel, weeks cut in its time zone).
-- The bot's own table, survey_bot.channels, names the channels it serves;
-- each belongs to its survey session and goes when the session is cleaned
-- up. Every write is audited: the channels, and the extension's survey tables
-- (workflow.enable_audit; who answered is recorded as workflow.actor by the
-- functions). Run as the superuser that installed the extension (auditing
-- the extension's tables needs their owner). PUBLIC: nothing.
CREATE SCHEMA survey_bot;
REVOKE ALL ON SCHEMA survey_bot FROM PUBLIC;

CREATE TABLE survey_bot.channels (
  channel_id text PRIMARY KEY REFERENCES workflow.survey_sessions (session_id) ON DELETE CASCADE,
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  added_by   text NOT NULL CHECK (length(added_by) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER channels_updated_at BEFORE UPDATE ON survey_bot.channels
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at('updated_at', 'skip_noop');

SELECT workflow.enable_audit('survey_bot.channels', ARRAY['updated_at']);
SELECT workflow.enable_audit('workflow.survey_sessions');
SELECT workflow.enable_audit('workflow.survey_steps', ARRAY['updated_at']);
