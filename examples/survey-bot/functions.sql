-- examples/survey-bot: the bot's calls, on the extension's survey functions
-- (SECURITY INVOKER: the caller needs survey_bot_app, roles.sql). `acting`
-- is the chat user the bot acts for; it is recorded as workflow.actor for
-- the transaction, so the audit log says who answered. Channel ids, step
-- names and zones are checked by the extension (22023, nothing written).

-- The acting chat user for this transaction; 22023 when empty.
CREATE FUNCTION survey_bot.act_as(acting text) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF acting IS NULL OR acting !~ '^[A-Za-z0-9._@-]{1,100}$' THEN
    RAISE EXCEPTION 'survey_bot: acting user must be 1-100 of A-Z a-z 0-9 . _ @ -, not %',
      coalesce(quote_literal(acting), 'NULL') USING ERRCODE = '22023';
  END IF;
  PERFORM set_config('workflow.actor', acting, true);
END $$;

-- Adds (or renames) a channel with its time zone; returns the normalised id.
CREATE FUNCTION survey_bot.add_channel(channel text, name text, time_zone text, acting text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE id text;
BEGIN
  PERFORM survey_bot.act_as(acting);
  SELECT s.session_id INTO id FROM workflow.set_session_timezone(channel, time_zone) s;
  INSERT INTO survey_bot.channels AS c (channel_id, name, added_by)
  VALUES (id, btrim(add_channel.name), acting)
  ON CONFLICT (channel_id) DO UPDATE SET name = excluded.name;
  RETURN id;
END $$;

-- The channel's normalised id; P0002 when the bot does not serve it.
CREATE FUNCTION survey_bot.known_channel(channel text) RETURNS text LANGUAGE plpgsql STABLE AS $$
DECLARE id text := (workflow.parse_session_id(channel)).session_id;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM survey_bot.channels c WHERE c.channel_id = id) THEN
    RAISE EXCEPTION 'survey_bot: channel % is not served (add_channel first)', id USING ERRCODE = 'P0002';
  END IF;
  RETURN id;
END $$;

-- Weeks already recorded keep their week; later steps are cut in the new zone.
CREATE FUNCTION survey_bot.set_time_zone(channel text, time_zone text, acting text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM survey_bot.act_as(acting);
  PERFORM workflow.set_session_timezone(survey_bot.known_channel(channel), time_zone);
END $$;

-- Records an answer: one row per channel, local week and step (a second
-- answer in the same week replaces the value). Returns the step's name and week.
CREATE FUNCTION survey_bot.record_step(channel text, step text, value jsonb, acting text,
                                       answered_at timestamptz DEFAULT now())
RETURNS TABLE (step_name text, week_start date) LANGUAGE plpgsql AS $$
BEGIN
  PERFORM survey_bot.act_as(acting);
  RETURN QUERY SELECT s.step_name, s.week_start
  FROM workflow.upsert_survey_step(survey_bot.known_channel(channel), step, value, answered_at) s;
END $$;

-- One channel's answers in the local week containing `at`.
CREATE FUNCTION survey_bot.channel_week(channel text, at timestamptz DEFAULT now())
RETURNS TABLE (step_name text, value jsonb, completed_at timestamptz) LANGUAGE sql STABLE AS $$
  SELECT s.step_name, s.value, s.completed_at
  FROM workflow.get_weekly_survey_steps(survey_bot.known_channel(channel), at) s
$$;

-- The weekly report: every channel, its answers in the week starting on the
-- Monday `week` (each channel's own local week), and the steps still missing.
CREATE FUNCTION survey_bot.weekly_report(week date)
RETURNS TABLE (channel_id text, name text, time_zone text, answered int, steps jsonb, missing text[])
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF week IS NULL OR extract(isodow FROM week) <> 1 THEN
    RAISE EXCEPTION 'survey_bot.weekly_report: week must be a Monday, not %', coalesce(week::text, 'NULL')
      USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  SELECT c.channel_id, c.name, s.time_zone,
         (SELECT count(*)::int FROM workflow.survey_steps t WHERE t.session_id = c.channel_id AND t.week_start = week),
         (SELECT coalesce(jsonb_object_agg(t.step_name, t.value), '{}') FROM workflow.survey_steps t
           WHERE t.session_id = c.channel_id AND t.week_start = week),
         ARRAY(SELECT n.name FROM workflow.survey_step_names n
               WHERE n.builtin AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                   WHERE t.session_id = c.channel_id AND t.week_start = week AND t.step_name = n.name)
               ORDER BY n.name)
  FROM survey_bot.channels c JOIN workflow.survey_sessions s ON s.session_id = c.channel_id
  ORDER BY c.channel_id;
END $$;

-- Clean-up: channels added before now() - older_than with no answer since
-- go, with their answers (workflow.cleanup_survey_sessions; the channel row
-- follows its session). Returns how many. For survey_bot_maintainer.
CREATE FUNCTION survey_bot.cleanup(older_than interval) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
  PERFORM survey_bot.act_as('survey-bot-maintenance');
  RETURN workflow.cleanup_survey_sessions(older_than);
END $$;
