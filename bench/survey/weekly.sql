\set s random(0, 199999)
SELECT * FROM workflow.get_weekly_survey_steps('C' || lpad(:s::text, 10, '0'), '2026-11-11 12:00Z');
