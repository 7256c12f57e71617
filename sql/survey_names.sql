-- Survey step names and session ids: spelling tables, accept and reject.
CREATE FUNCTION pg_temp.try_step(raw text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RETURN workflow.normalize_step_name(raw);
EXCEPTION WHEN OTHERS THEN
  RETURN 'ERROR ' || SQLSTATE;
END $$;
CREATE FUNCTION pg_temp.try_session(raw text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT p.kind || ' ' || p.session_id FROM workflow.parse_session_id(raw) p);
EXCEPTION WHEN OTHERS THEN
  RETURN 'ERROR ' || SQLSTATE;
END $$;

-- Normalisation table: registry names, spellings, legacy aliases and rejects.
SELECT format('%-34s', coalesce(to_json(left(spelling, 30))::text, 'NULL')) AS spelling, pg_temp.try_step(spelling) AS normalised
  FROM (VALUES
    ('workload_today'), ('Workload Today'), ('workloadToday'), ('WorkloadToday'), ('WORKLOAD_TODAY'),
    ('  workload-today  '), (E'\tworkload today\n'), ('workload__today'), ('workload.today'),
    ('workload'), ('Today Workload'),
    ('workload_nextweek'), ('workloadNextweek'), ('Workload Next Week'), ('workloadNextWeek'),
    ('workload-next-week'), ('next week workload'),
    ('connects_thisweek'), ('connectsThisWeek'), ('Connects This Week'), ('connects'), ('Weekly Connects'),
    ('day_off_nextweek'), ('dayOffNextWeek'), ('Day Off Next Week'), ('dayoff_nextweek'), ('DaysOffNextWeek'),
    ('day_off_thisweek'), ('day-off-this-week'), ('DAY OFF THIS WEEK'), ('dayoffThisweek'), ('days off this week'),
    -- rejects
    ('workload_tomorrow'), ('workloads today'), (''), ('   '), ('---'), ('workload''today'),
    ('workload"today'), ('wörkload_today'), ('工作量'), ('workload;DROP TABLE x'), (repeat('a', 201)), (NULL)
  ) AS v(spelling);

-- Error messages name the value and the accepted names.
SELECT workflow.normalize_step_name('Workload Tomorrow');
SELECT workflow.normalize_step_name('workload''today');
-- A non-ASCII character is named whole (not its first byte: the message stays valid UTF-8).
SELECT workflow.normalize_step_name('日本');
SELECT workflow.step_name_key('aé');
SELECT workflow.normalize_step_name('');
SELECT workflow.normalize_step_name(NULL);
SELECT workflow.normalize_step_name(repeat('x', 300));

-- The pure folding without the registry.
SELECT workflow.step_name_key('HTTPServer2Go'), workflow.step_name_key(' Day-Off  nextWeek ');

-- An administrator extends the registry and the aliases.
BEGIN;
INSERT INTO workflow.survey_step_names (name, description) VALUES ('mood_today', 'How the team feels');
INSERT INTO workflow.survey_step_aliases (alias, step_name) VALUES ('team_mood', 'mood_today');
SELECT workflow.normalize_step_name('Mood Today'), workflow.normalize_step_name('teamMood');
-- Only folded keys can be stored.
INSERT INTO workflow.survey_step_aliases (alias, step_name) VALUES ('Team Mood', 'mood_today');
ROLLBACK;
SELECT workflow.normalize_step_name('mood_today');

-- Session ids: accept and reject table.
SELECT format('%-26s', coalesce(to_json(left(raw, 24))::text, 'NULL')) AS raw,
       workflow.is_valid_session_id(raw) AS valid, pg_temp.try_session(raw) AS parsed
  FROM (VALUES ('C024BE91L'), ('G0123ABCD'), ('D0ABCDEFGH'), ('  c024be91l '), ('C12345678901234567890'),
               ('C1234567'), ('C123456789012345678901'), ('U024BE91L'), ('X024BE91L'), ('1C024BE91'),
               ('C024-BE91L'), ('C024 BE91L'), ('C024BE91L'''), ('C024BÉ91L'), (''), (E'C024BE91L\n'), (NULL)) AS v(raw);
SELECT * FROM workflow.parse_session_id('X024BE91L');
SELECT * FROM workflow.parse_session_id('C024BE91L''; DROP TABLE workflow.survey_steps; --');
SELECT * FROM workflow.parse_session_id(NULL);
