-- Survey steps: upserts, weeks in the session's zone (DST, UTC+14), batch
-- atomicity, clean-up, the completion view, privileges.
BEGIN;
SELECT plan(51);

-- Same week updates the row, next week makes a new one.
SELECT is((workflow.set_session_timezone('C0SAMEWEEK', 'UTC')).time_zone, 'UTC', 'session C0SAMEWEEK in UTC');
SELECT is((workflow.upsert_survey_step('C0SAMEWEEK', 'Workload Today', '{"h": 3}', '2026-11-10 09:00Z')).week_start,
          date '2026-11-09', 'week_start is the Monday of the week');
SELECT is((workflow.upsert_survey_step('c0sameweek', 'workloadToday', '{"h": 5}', '2026-11-15 23:59Z')).value,
          '{"h": 5}'::jsonb, 'a second upsert in the same week returns the updated row');
SELECT is((SELECT count(*)::int FROM workflow.survey_steps WHERE session_id = 'C0SAMEWEEK'), 1,
          'same week: still one row');
SELECT is((SELECT completed_at FROM workflow.survey_steps WHERE session_id = 'C0SAMEWEEK'),
          timestamptz '2026-11-15 23:59Z', 'same week: completed_at updated');
SELECT is((workflow.upsert_survey_step('C0SAMEWEEK', 'workload_today', '{"h": 1}', '2026-11-16 00:00Z')).week_start,
          date '2026-11-16', 'Monday 00:00 starts the next week');
SELECT is((SELECT count(*)::int FROM workflow.survey_steps WHERE session_id = 'C0SAMEWEEK'), 2,
          'next week: a new row');
SELECT is((SELECT array_agg(value->>'h' ORDER BY step_name) FROM workflow.get_weekly_survey_steps('C0SAMEWEEK', '2026-11-12 12:00Z')),
          ARRAY['5'], 'weekly query returns the week''s row only');
SELECT is((workflow.upsert_survey_step('C0SAMEWEEK', 'connects')).value, '{}'::jsonb,
          'defaults: value {} and completed_at now()');
SELECT is((SELECT count(*)::int FROM workflow.get_weekly_survey_steps('C0SAMEWEEK') WHERE step_name = 'connects_thisweek'), 1,
          'week_of defaults to now()');

-- America/New_York: spring forward on Sunday 2026-03-08, fall back on Sunday 2026-11-01.
SELECT is((workflow.set_session_timezone('C0NEWYORK1', 'America/New_York')).time_zone, 'America/New_York', 'session C0NEWYORK1 in America/New_York');
SELECT is((workflow.upsert_survey_step('C0NEWYORK1', 'workload_today', '{}', '2026-03-08 23:30 America/New_York')).week_start,
          date '2026-03-02', 'NY spring DST: Sunday 23:30 local is in the week of Monday 03-02');
SELECT is((workflow.upsert_survey_step('C0NEWYORK1', 'workload_today', '{}', '2026-03-09 00:30 America/New_York')).week_start,
          date '2026-03-09', 'NY spring DST: Monday 00:30 local starts a new week');
SELECT is((SELECT count(*)::int FROM workflow.survey_steps WHERE session_id = 'C0NEWYORK1'), 2,
          'NY spring DST: two rows');
SELECT is((workflow.upsert_survey_step('C0NEWYORK1', 'connects', '{}', '2026-03-02 00:00 America/New_York')).week_start,
          date '2026-03-02', 'NY: Monday 00:00 local (05:00Z) is in its own week');
SELECT is((workflow.upsert_survey_step('C0NEWYORK1', 'day_off_thisweek', '{}', '2026-03-01 23:59 America/New_York')).week_start,
          date '2026-02-23', 'NY: Sunday 23:59 local (04:59Z Monday) is in the previous week');
SELECT is((SELECT array_agg(completed_at ORDER BY completed_at) FROM workflow.get_weekly_survey_steps('C0NEWYORK1', '2026-03-05 12:00Z')),
          ARRAY[timestamptz '2026-03-02 05:00Z', '2026-03-09 03:30Z'],
          'NY: the 167-hour DST week holds Monday 00:00 EST to Sunday 23:30 EDT');
SELECT is((workflow.upsert_survey_step('C0NEWYORK1', 'workload_today', '{}', '2026-11-01 23:30 America/New_York')).week_start,
          date '2026-10-26', 'NY fall DST: Sunday 23:30 local');
SELECT is((workflow.upsert_survey_step('C0NEWYORK1', 'workload_today', '{}', '2026-11-02 00:30 America/New_York')).week_start,
          date '2026-11-02', 'NY fall DST: Monday 00:30 local starts a new week');
SELECT is((SELECT count(*)::int FROM workflow.get_weekly_survey_steps('C0NEWYORK1', '2026-11-02 04:59Z')), 1,
          'NY fall DST: 04:59Z Monday (Sunday 23:59 EST) still finds the previous week''s row');

-- Europe/Berlin: spring forward on Sunday 2026-03-29, fall back on Sunday 2026-10-25.
SELECT is((workflow.set_session_timezone('G0BERLIN01', 'Europe/Berlin')).time_zone, 'Europe/Berlin', 'session G0BERLIN01 in Europe/Berlin');
SELECT is((workflow.upsert_survey_step('G0BERLIN01', 'day_off_nextweek', '{}', '2026-03-29 23:30 Europe/Berlin')).week_start,
          date '2026-03-23', 'Berlin spring DST: Sunday 23:30 local (21:30Z)');
SELECT is((workflow.upsert_survey_step('G0BERLIN01', 'day_off_nextweek', '{}', '2026-03-30 00:30 Europe/Berlin')).week_start,
          date '2026-03-30', 'Berlin spring DST: Monday 00:30 local (22:30Z Sunday) is the next week');
SELECT is((workflow.upsert_survey_step('G0BERLIN01', 'day_off_thisweek', '{}', '2026-10-25 23:30 Europe/Berlin')).week_start,
          date '2026-10-19', 'Berlin fall DST: Sunday 23:30 local');
SELECT is((workflow.upsert_survey_step('G0BERLIN01', 'day_off_thisweek', '{}', '2026-10-26 00:30 Europe/Berlin')).week_start,
          date '2026-10-26', 'Berlin fall DST: Monday 00:30 local');
SELECT is((SELECT count(*)::int FROM workflow.survey_steps WHERE session_id = 'G0BERLIN01'), 4,
          'Berlin: four rows, one per week');
SELECT is((SELECT count(*)::int FROM workflow.get_weekly_survey_steps('G0BERLIN01', '2026-03-29 22:15Z')), 1,
          'Berlin: 22:15Z Sunday is already Monday 00:15 local: the new week');

-- A zone east of UTC+12: Pacific/Kiritimati is UTC+14.
SELECT is((workflow.set_session_timezone('D0KIRITI01', 'Pacific/Kiritimati')).time_zone, 'Pacific/Kiritimati', 'session D0KIRITI01 in Pacific/Kiritimati');
SELECT is((workflow.upsert_survey_step('D0KIRITI01', 'connects_thisweek', '{}', '2026-11-22 09:30Z')).week_start,
          date '2026-11-16', 'UTC+14: Sunday 09:30Z is Sunday 23:30 local');
SELECT is((workflow.upsert_survey_step('D0KIRITI01', 'connects_thisweek', '{}', '2026-11-22 10:30Z')).week_start,
          date '2026-11-23', 'UTC+14: Sunday 10:30Z is already Monday 00:30 local: next week');
SELECT is((SELECT count(*)::int FROM workflow.get_weekly_survey_steps('D0KIRITI01', '2026-11-22 10:00Z')), 1,
          'UTC+14: the weekly query cuts at local Monday 00:00 (Sunday 10:00Z)');

-- Batch: atomic, one bad element -> error names it, nothing written.
SELECT is(workflow.upsert_survey_steps('[
   {"session_id": "C0BATCH001", "step_name": "Workload Today", "value": {"h": 1}, "completed_at": "2026-11-10T10:00:00Z"},
   {"session_id": "c0batch001", "step_name": "workloadToday",  "value": {"h": 2}, "completed_at": "2026-11-11T10:00:00Z"},
   {"session_id": "C0BATCH002", "step_name": "connects",       "completed_at": "2026-11-11T10:00:00Z"}]'), 2,
   'batch: three elements, two rows (same session/week/step collapse)');
SELECT is((SELECT value FROM workflow.survey_steps WHERE session_id = 'C0BATCH001'), '{"h": 2}'::jsonb,
          'batch: the last element for a row wins');
SELECT throws_ok($$SELECT workflow.upsert_survey_steps('[
   {"session_id": "C0BATCH003", "step_name": "workload_today"},
   {"session_id": "C0BATCH003", "step_name": "connects"},
   {"session_id": "C0BATCH003", "step_name": "workload_tomorrow"}]')$$,
   '22023', NULL, 'batch: an unknown step name fails the batch');
SELECT throws_like($$SELECT workflow.upsert_survey_steps('[
   {"session_id": "C0BATCH003", "step_name": "workload_today"},
   {"session_id": "C0BATCH003", "step_name": "connects"},
   {"session_id": "C0BATCH003", "step_name": "workload_tomorrow"}]')$$,
   'steps element 2 (0-based): unknown survey step name "workload_tomorrow"%', 'batch: the error names the element');
SELECT throws_like($$SELECT workflow.upsert_survey_steps('[{"session_id": "C0BATCH003", "step_name": "connects"},
   {"session_id": "X0BAD", "step_name": "connects"}]')$$, 'steps element 1 (0-based): invalid session id "X0BAD"%',
   'batch: an invalid session id names the element');
SELECT throws_ok($$SELECT workflow.upsert_survey_steps('[{"session_id": "C0BATCH003", "step_name": "connects", "completed_at": "never"}]')$$,
   '22023', NULL, 'batch: an invalid completed_at fails the batch');
SELECT throws_ok($$SELECT workflow.upsert_survey_steps('[{"session_id": "C0BATCH003", "step_name": null}]')$$,
   '22004', 'steps element 0 (0-based): step_name is missing or null', 'batch: null step name');
SELECT is((SELECT count(*)::int FROM workflow.survey_sessions WHERE session_id = 'C0BATCH003'), 0,
          'batch: failed batches wrote nothing, not even the session');

-- Hostile input: SQLSTATE errors, nothing written.
-- A session at UTC+14, where the last instants of timestamptz have no local time.
DO $$ BEGIN PERFORM workflow.set_session_timezone('C0HOSTILEK', 'Pacific/Kiritimati'); END $$;
CREATE TEMP TABLE before_hostile AS SELECT (SELECT count(*) FROM workflow.survey_steps) AS steps,
                                           (SELECT count(*) FROM workflow.survey_sessions) AS sessions;
CREATE FUNCTION pg_temp.sqlstate_of(stmt text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  EXECUTE stmt;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  RETURN SQLSTATE;
END $$;
SELECT is(array_agg(pg_temp.sqlstate_of(stmt) ORDER BY n),
          ARRAY['22004','22004','22004','22004','22023','22023','22023','22023','22023','22023',
                '22023','22023','22023','22004','22023','22023','22023','22023','22023','22004','22023','22023',
                '22008','22008'],
          'hostile input raises the documented SQLSTATEs')
  FROM (VALUES
    (1,  $$SELECT workflow.upsert_survey_step(NULL, 'connects')$$),
    (2,  $$SELECT workflow.upsert_survey_step('C0HOSTILE1', NULL)$$),
    (3,  $$SELECT workflow.upsert_survey_step('C0HOSTILE1', 'connects', NULL)$$),
    (4,  $$SELECT workflow.upsert_survey_step('C0HOSTILE1', 'connects', '{}', NULL)$$),
    (5,  $$SELECT workflow.upsert_survey_step('', 'connects')$$),
    (6,  $$SELECT workflow.upsert_survey_step('C0HOSTILE1', '')$$),
    (7,  $$SELECT workflow.upsert_survey_step(repeat('C', 100000), 'connects')$$),
    (8,  $$SELECT workflow.upsert_survey_step('C0HOSTILE1', repeat('a', 100000))$$),
    (9,  $$SELECT workflow.upsert_survey_step('C0HÖSTILE1', 'connects')$$),
    (10, $$SELECT workflow.upsert_survey_step('C0HOSTILE1', 'connects'' OR ''1''=''1')$$),
    (11, $$SELECT workflow.upsert_survey_step('C0HOSTILE1', 'connects', jsonb_build_object('x', repeat('y', 70000)))$$),
    (12, $$SELECT workflow.upsert_survey_step('C0HOSTILE1', 'connects', '{}', 'infinity')$$),
    (13, $$SELECT workflow.upsert_survey_step('C0HOSTILE1', '日本語')$$),
    (14, $$SELECT workflow.upsert_survey_steps(NULL)$$),
    (15, $$SELECT workflow.upsert_survey_steps('{"session_id": "C0HOSTILE1"}')$$),
    (16, $$SELECT workflow.upsert_survey_steps('[1, 2]')$$),
    (17, $$SELECT workflow.upsert_survey_steps('[{"session_id": "C0HOSTILE1", "step_name": "connects", "extra": 1}]')$$),
    (18, $$SELECT workflow.upsert_survey_steps('[{"session_id": 42, "step_name": "connects"}]')$$),
    (19, $$SELECT workflow.set_session_timezone('C0HOSTILE1', 'Mars/Olympus_Mons')$$),
    (20, $$SELECT workflow.set_session_timezone('C0HOSTILE1', NULL)$$),
    (21, $$SELECT workflow.set_session_timezone('C0HOSTILE1', '+03:00')$$),
    (22, $$SELECT * FROM workflow.get_weekly_survey_steps('C0HOSTILE1''--')$$),
    (23, $$SELECT workflow.upsert_survey_step('C0HOSTILEK', 'connects', '{}', '294276-12-31 23:00:00+00')$$),
    (24, $$SELECT workflow.upsert_survey_steps('[{"session_id": "C0HOSTILEK", "step_name": "connects",
                                                  "completed_at": "294276-12-31 23:00:00+00"}]')$$)
  ) AS v(n, stmt);
SELECT is((SELECT (count(*), (SELECT count(*) FROM workflow.survey_sessions))::text FROM workflow.survey_steps),
          (SELECT (steps, sessions)::text FROM before_hostile), 'hostile input wrote nothing');

-- Time zones: IANA names only, stored in canonical spelling.
SELECT is((workflow.set_session_timezone('C0ZONECASE', ' europe/berlin ')).time_zone, 'Europe/Berlin',
          'zone names are matched case-insensitively and stored canonically');
SELECT is((SELECT count(*)::int FROM workflow.get_weekly_survey_steps('C0UNKNOWN1')), 0,
          'an unknown (valid) session has no steps');

-- Completion view: per step and week, sessions that completed it.
SELECT is((SELECT sessions_completed FROM workflow.survey_weekly_completion
            WHERE week_start = '2026-11-09' AND step_name = 'workload_today'),
          (SELECT count(DISTINCT session_id)::int FROM workflow.survey_steps
            WHERE week_start = '2026-11-09' AND step_name = 'workload_today'),
          'completion view counts sessions per step and week');
SELECT cmp_ok((SELECT sessions_completed FROM workflow.survey_weekly_completion
                WHERE week_start = '2026-11-09' AND step_name = 'workload_today'), '>=', 2,
              'completion view sees both sessions of that week');

CREATE FUNCTION pg_temp.explain_lines() RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE $q$EXPLAIN SELECT * FROM workflow.survey_steps
                          WHERE session_id = 'C0SAMEWEEK' AND week_start = '2026-11-09'$q$ LOOP
    RETURN NEXT line;
  END LOOP;
END $$;

-- The weekly query is backed by the (session, week, step) index.
SET LOCAL enable_seqscan = off;
SELECT ok((SELECT string_agg(line, ' ') FROM (SELECT * FROM pg_temp.explain_lines()) e(line)) LIKE '%survey_steps_session_week_step_key%',
          'weekly lookup uses the unique (session_id, week_start, step_name) index');
RESET enable_seqscan;

-- Clean-up: sessions with no step since the cut-off go, with their steps.
UPDATE workflow.survey_sessions SET created_at = now() - interval '400 days';
UPDATE workflow.survey_steps SET completed_at = now() - interval '400 days';
SELECT lives_ok($$SELECT workflow.upsert_survey_step('C0RECENT01', 'connects')$$, 'a recent step');
UPDATE workflow.survey_sessions SET created_at = now() - interval '400 days' WHERE session_id = 'C0RECENT01';
SELECT is(workflow.cleanup_survey_sessions('30 days'),
          (SELECT count(*)::int FROM workflow.survey_sessions WHERE session_id <> 'C0RECENT01'),
          'clean-up deletes every session idle for 30 days');
SELECT is((SELECT array_agg(DISTINCT session_id) FROM workflow.survey_steps), ARRAY['C0RECENT01'],
          'clean-up removed the idle sessions'' steps and kept the recent one');
SELECT throws_ok($$SELECT workflow.cleanup_survey_sessions('-1 day')$$, '22023', NULL, 'negative interval rejected');

-- Privileges: writers are granted explicitly.
CREATE ROLE survey_tap_nobody;
SELECT ok(NOT has_function_privilege('survey_tap_nobody', 'workflow.upsert_survey_steps(jsonb)', 'EXECUTE')
          AND NOT has_table_privilege('survey_tap_nobody', 'workflow.survey_steps', 'INSERT')
          AND has_function_privilege('survey_tap_nobody', 'workflow.normalize_step_name(text)', 'EXECUTE'),
          'PUBLIC may normalise names but not write survey steps');

SELECT * FROM finish();
ROLLBACK;
