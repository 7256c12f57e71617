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
SELECT workflow.upsert_survey_steps('[{"session_id": "C0REGRESS1", "step_name": "connects", "value": null}]');
\echo :LAST_ERROR_SQLSTATE
SELECT workflow.get_weekly_survey_steps('C0REGRESS1', NULL);
\echo :LAST_ERROR_SQLSTATE

-- Leave nothing behind for other tests.
DELETE FROM workflow.survey_sessions WHERE session_id LIKE 'C0REGRESS%';
