-- The extension's roles (NOLOGIN; a DBA grants them to login roles). Roles
-- belong to the cluster, not to a database: a second database's CREATE
-- EXTENSION finds them made, and DROP EXTENSION leaves them.
--   workflow_producer  creates, fans out, seals, cancels and watches its own jobs
--   workflow_worker    claims, heartbeats, completes, fails and advances any job's tasks
--   workflow_survey    records and reads survey steps
--   workflow_auditor   reads the whole audit log
--   workflow_monitor   reads the monitoring views (1.4, 50_monitoring.sql)
--   workflow_admin     all of the above, other owners' jobs, purges, invariants
DO $roles$
DECLARE
  r text;
BEGIN
  FOREACH r IN ARRAY ARRAY['workflow_producer', 'workflow_worker', 'workflow_survey',
                           'workflow_auditor', 'workflow_monitor', 'workflow_admin'] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r) THEN
      EXECUTE format('CREATE ROLE %I NOLOGIN', r);
    END IF;
  END LOOP;
END
$roles$;
GRANT workflow_producer, workflow_worker, workflow_survey, workflow_auditor, workflow_monitor TO workflow_admin;
-- Trusted install by a role that is not a superuser (a database owner): it
-- owns the extension and may grant the roles to its service roles. Roles
-- are the cluster's: see README "Installing" (CONNECT per database).
DO $owner$
DECLARE
  owner name;
BEGIN
  SELECT r.rolname INTO owner
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_roles r ON r.oid = e.extowner
   WHERE e.extname = 'workflow' AND NOT r.rolsuper;
  IF FOUND THEN
    EXECUTE pg_catalog.format('GRANT workflow_producer, workflow_worker, workflow_survey, workflow_auditor, '
                              'workflow_monitor, workflow_admin TO %I WITH ADMIN OPTION', owner);
  END IF;
END
$owner$;
