-- Survey steps at top level (autocommit): a failing batch leaves no trace,
-- a good one writes every row; the weekly query in the session's zone.
SELECT (workflow.set_session_timezone('C0REGRESS1', 'Europe/Berlin')).time_zone;
SELECT workflow.upsert_survey_steps('[
  {"session_id": "C0REGRESS1", "step_name": "Workload Today",  "value": {"hours": 6}, "completed_at": "2026-03-29T21:30:00Z"},
  {"session_id": "C0REGRESS2", "step_name": "connects",        "value": 3,           "completed_at": "2026-03-29T21:30:00Z"},
  {"session_id": "C0REGRESS1", "step_name": "dayOffNextWeek",  "value": "yes",       "completed_at": "2026-03-29T23:30:00+02:00"},
  {"session_id": "C0REGRESS1", "step_name": "no such step"}
]');
SELECT count(*) AS sessions FROM workflow.survey_sessions WHERE session_id LIKE 'C0REGRESS%';
SELECT count(*) AS steps FROM workflow.survey_steps WHERE session_id LIKE 'C0REGRESS%';

SELECT workflow.upsert_survey_steps('[
  {"session_id": "C0REGRESS1", "step_name": "Workload Today",  "value": {"hours": 6}, "completed_at": "2026-03-29T21:30:00Z"},
  {"session_id": "C0REGRESS2", "step_name": "connects",        "value": 3,           "completed_at": "2026-03-29T21:30:00Z"},
  {"session_id": "C0REGRESS1", "step_name": "dayOffNextWeek",  "value": "yes",       "completed_at": "2026-03-29T23:30:00+02:00"}
]') AS written;
-- Berlin: 21:30Z on Sunday 29 March (the DST day) is 23:30 CEST, still the week of Monday 23 March.
SELECT session_id, step_name, week_start, value, completed_at AT TIME ZONE 'UTC' AS completed_utc
  FROM workflow.survey_steps WHERE session_id LIKE 'C0REGRESS%' ORDER BY session_id, step_name;
SELECT step_name, week_start, value
  FROM workflow.get_weekly_survey_steps('c0regress1', '2026-03-25 12:00Z');
SELECT (workflow.upsert_survey_step(' c0regress1 ', 'WORKLOAD-TODAY', '{"hours": 7}', '2026-03-23 00:00 Europe/Berlin')).value;
SELECT step_name, week_start, value FROM workflow.get_weekly_survey_steps('C0REGRESS1', '2026-03-29 21:59Z');
SELECT week_start, step_name, sessions_completed FROM workflow.survey_weekly_completion
 WHERE week_start = '2026-03-23' ORDER BY step_name;

-- Errors carry SQLSTATEs and name the value.
SELECT workflow.upsert_survey_step('C0REGRESS1', 'Workload Tmrw');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.set_session_timezone('C0REGRESS1', 'Europe/Berlln');
\echo :LAST_ERROR_SQLSTATE
-- Files of the zone database that pg_timezone_names lists are no session's zone.
DO $$
DECLARE z text;
BEGIN
  FOREACH z IN ARRAY ARRAY['localtime', 'posixrules', 'Factory', 'FACTORY'] LOOP
    BEGIN
      PERFORM workflow.set_session_timezone('C0REGRESS1', z);
      RAISE NOTICE '%: accepted', z;
    EXCEPTION WHEN OTHERS THEN
      RAISE NOTICE '%: %', z, SQLSTATE;
    END;
  END LOOP;
END $$;
SELECT workflow.upsert_survey_steps('[{"session_id": "C0REGRESS1", "step_name": "connects", "value": null}]');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.get_weekly_survey_steps('C0REGRESS1', NULL);
\echo :LAST_ERROR_SQLSTATE

-- The single form refuses a JSON null value as the batch does (22004), and
-- measures a value uncompressed, as the batch does: a 100 kB value read from
-- a table (stored compressed, about 1 kB) is refused by both (22023).
SELECT workflow.upsert_survey_step('C0REGRESS1', 'connects', 'null');
\echo :LAST_ERROR_SQLSTATE
CREATE TEMP TABLE big_value AS SELECT to_jsonb(repeat('ab', 50000)) AS v;
SELECT pg_column_size(v) < 65536 AS stored_small FROM big_value;
SELECT workflow.upsert_survey_step('C0REGRESS1', 'connects', v) FROM big_value;
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.upsert_survey_steps(jsonb_build_array(jsonb_build_object(
  'session_id', 'C0REGRESS1', 'step_name', 'connects', 'value', v))) FROM big_value;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM workflow.survey_steps WHERE session_id = 'C0REGRESS1' AND step_name = 'connects_thisweek';

-- CET is a time zone abbreviation of UTC+1 and a legacy zone name, which
-- tzdata 2024b made a link to Europe/Brussels (with summer time); some
-- systems no longer ship it as a zone (Debian trixie without tzdata-legacy).
-- The session stores the link's target, and survey_week_start reads every
-- such name as its target on every system: Monday 00:30 CEST is Sunday 22:30
-- UTC, also when the session's abbreviations make EST UTC+10 (EST links to
-- America/Panama, UTC-5 all year). WET links to Europe/Lisbon, which kept
-- Central European time in 1992-1996: 1995-07-09 22:30 UTC was Monday there.
SELECT (workflow.set_session_timezone('C0REGRESS2', 'cet')).time_zone,
       (workflow.set_session_timezone('C0REGRESS3', ' EST5EDT ')).time_zone;
SELECT week_start FROM workflow.upsert_survey_step('C0REGRESS2', 'connects', '1', '2026-06-14 22:30Z');
SELECT workflow.upsert_survey_steps('[{"session_id": "C0REGRESS2", "step_name": "workload_today",
                                      "completed_at": "2026-06-14T22:30:00Z"}]');
SELECT step_name, week_start FROM workflow.get_weekly_survey_steps('C0REGRESS2', '2026-06-14 22:30Z');
SET timezone_abbreviations = 'Australia';
SELECT workflow.survey_week_start('2026-06-14 20:00Z', 'EST') AS est,
       workflow.survey_week_start('2026-06-14 22:30Z', 'CET') AS cet,
       workflow.survey_week_start('2026-06-14 22:30Z', 'cet') AS cet_lower,
       workflow.survey_week_start('1995-07-09 22:30Z', 'WET') AS wet_1995;
RESET timezone_abbreviations;
SELECT workflow._survey_zone_link('MET'), workflow._survey_zone_link('Europe/Berlin') IS NULL AS not_legacy;

-- Leave nothing behind for other tests.
DELETE FROM workflow.survey_sessions WHERE session_id LIKE 'C0REGRESS%';
