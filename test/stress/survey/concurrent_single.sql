-- One client's transaction: a single upsert on a small key space (many conflicts).
\set s random(0, 19)
\set k random(0, 4)
SELECT workflow.upsert_survey_step('C' || lpad(:s::text, 10, '0'),
       (ARRAY['Workload Today','workloadNextweek','connects','Day Off Next Week','day_off_thisweek'])[:k + 1],
       jsonb_build_object('client', :client_id), timestamptz '2026-11-10 10:00Z' + (random() * 13) * interval '1 day');
