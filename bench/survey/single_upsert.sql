-- The project's single-step function, one call per transaction (pgbench).
SELECT workflow.upsert_survey_step('C' || lpad((n / 5)::text, 10, '0'),
       (ARRAY['workload_today','workload_nextweek','connects_thisweek','day_off_nextweek','day_off_thisweek'])[n % 5 + 1],
       jsonb_build_object('n', n), timestamptz '2026-11-10 10:00Z')
  FROM (SELECT nextval('bench_seq') - 1 AS n) s;
