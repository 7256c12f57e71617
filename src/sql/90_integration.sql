-- Wiring between features, run last: every survey step write is recorded in
-- the audit history (issue 4). Excluded: nothing; the log keeps the step's
-- value and completed_at changes, keyed by survey_steps.id.
SELECT workflow.enable_audit('workflow.survey_steps'::regclass);
