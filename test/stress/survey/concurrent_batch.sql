-- One client's transaction: a batch over the same key space, in random order.
SELECT workflow.upsert_survey_steps(jsonb_agg(jsonb_build_object(
         'session_id', 'c' || lpad((floor(random() * 20))::int::text, 10, '0'),
         'step_name', (ARRAY['workload_today','workload_nextweek','connects_thisweek','day_off_nextweek','day_off_thisweek'])[floor(random() * 5)::int + 1],
         'value', jsonb_build_object('client', :client_id),
         'completed_at', timestamptz '2026-11-10 10:00Z' + (random() * 13) * interval '1 day') ORDER BY random()))
  FROM generate_series(1, 50);
