-- The reference: one hand-written INSERT ... ON CONFLICT per step (pgbench
-- script, one statement = one transaction). Each run takes the next number
-- from a sequence, so 100k runs write 100k distinct rows: session n/5, step n%5.
INSERT INTO workflow.survey_steps AS t (session_id, step_name, week_start, value, completed_at)
SELECT 'C' || lpad((n / 5)::text, 10, '0'),
       (ARRAY['workload_today','workload_nextweek','connects_thisweek','day_off_nextweek','day_off_thisweek'])[n % 5 + 1],
       date_trunc('week', timestamptz '2026-11-10 10:00Z' AT TIME ZONE 'UTC')::date,
       jsonb_build_object('n', n), timestamptz '2026-11-10 10:00Z'
  FROM (SELECT nextval('bench_seq') - 1 AS n) s
ON CONFLICT (session_id, week_start, step_name) DO UPDATE
  SET value = excluded.value, completed_at = excluded.completed_at, updated_at = now();
