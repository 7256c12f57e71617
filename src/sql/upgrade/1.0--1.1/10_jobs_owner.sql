-- 1.0 -> 1.1: job ownership (src/sql/10_engine_tables.sql). A 1.0 job gets
-- owner NULL: its creator is not known (1.0 ran every call as the definer and
-- recorded nobody), so it is admin-only for what only owners may do (cancel,
-- fan out stage 1, seal, set_handover_lease); workers run it to the end as
-- before. workflow.set_job_owner() hands such a job to its producer.
ALTER TABLE workflow.jobs ADD COLUMN owner name;
COMMENT ON COLUMN workflow.jobs.owner IS
  'The session user that created the job: it (and workflow_admin) may change and read the job. '
  'NULL for a job created before 1.1: only workflow_admin (and workers, for what they do) act on it.';
CREATE INDEX jobs_owner_idx ON workflow.jobs (owner);
