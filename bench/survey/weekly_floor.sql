\set s random(0, 199999)
SELECT * FROM workflow.survey_steps WHERE session_id = 'C' || lpad(:s::text, 10, '0') AND week_start = '2026-11-09';
