-- 1.6 -> 1.7: the job's flag for an advance of its last stage still to come
-- after check_job_completion completed it (src/sql/10_engine_tables.sql).
-- Jobs completed before the update keep false: a late advance of theirs
-- answers false, as in 1.6.
ALTER TABLE workflow.jobs ADD COLUMN final_advance_pending boolean NOT NULL DEFAULT false;
