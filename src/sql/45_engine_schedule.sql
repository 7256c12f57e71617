-- Recurring jobs on pg_cron (1.4): workflow.schedule() keeps a schedule here
-- and registers a pg_cron job in this database whose command is
-- `SELECT workflow.fire_schedule(name)`. Each firing creates one job whose id
-- is the schedule's name and the minute it fired (pg_cron's resolution), so
-- a double firing creates one job: the second INSERT finds the first's id.
-- pg_cron is optional: without it in this database (shared_preload_libraries
-- and cron.database_name name it) the extension installs and works, and
-- schedule() raises 55000. Re-runnable (IF NOT EXISTS, CREATE OR REPLACE):
-- the 1.3 -> 1.4 upgrade runs this file.

CREATE TABLE IF NOT EXISTS workflow.schedules (
  name         text        PRIMARY KEY,
  cron         text        NOT NULL,
  job_type     text        NOT NULL,
  parameters   jsonb       NOT NULL DEFAULT '{}',
  total_stages int         NOT NULL CHECK (total_stages BETWEEN 1 AND 10000),
  task_type    text,       -- stage 1's tasks, added (sealed) at each firing; NULL: none
  tasks        jsonb[],
  owner        name        NOT NULL,   -- the producer that scheduled it: owner of every job it fires
  cron_job_id  bigint,                 -- pg_cron's cron.job.jobid
  last_job_id  text,
  last_fired_at timestamptz,
  created_at   timestamptz NOT NULL DEFAULT now(),
  CHECK ((task_type IS NULL) = (tasks IS NULL))
);
COMMENT ON TABLE workflow.schedules IS
  'Recurring jobs (workflow.schedule): a pg_cron job fires workflow.fire_schedule(name) on cron; read it with '
  'workflow.list_schedules().';
SELECT pg_catalog.pg_extension_config_dump('workflow.schedules', '');
REVOKE ALL ON workflow.schedules FROM PUBLIC;

-- pg_cron's functions, or 55000 when pg_cron is not in this database.
CREATE OR REPLACE FUNCTION workflow._engine_require_cron()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
    RAISE EXCEPTION 'pg_cron is not installed in this database'
      USING ERRCODE = '55000',
            HINT = 'Set shared_preload_libraries = ''pg_cron'' and cron.database_name = ' ||
                   quote_literal(current_database()) || ', restart, then CREATE EXTENSION pg_cron.';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_require_cron() IS
  'Internal: 55000 unless the pg_cron extension is installed in this database.';
REVOKE EXECUTE ON FUNCTION workflow._engine_require_cron() FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.schedule(name text, cron text, job_type text, parameters jsonb DEFAULT '{}',
                                  total_stages int DEFAULT 1, task_type text DEFAULT NULL,
                                  tasks jsonb[] DEFAULT NULL)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  existing workflow.schedules;
  job bigint;
BEGIN
  PERFORM workflow._engine_check_text('name', name, 100);
  PERFORM workflow._engine_check_text('cron', cron, 100);
  PERFORM workflow._engine_check_text('job_type', job_type);
  PERFORM workflow._engine_check_not_null('parameters', parameters);
  PERFORM workflow._engine_check_not_null('total_stages', total_stages);
  IF total_stages NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'total_stages % is out of range 1..10000', total_stages USING ERRCODE = '22023';
  END IF;
  IF (task_type IS NULL) <> (tasks IS NULL) THEN
    RAISE EXCEPTION 'give task_type and tasks together (stage 1''s tasks of every fired job), or neither'
      USING ERRCODE = '22023';
  END IF;
  IF task_type IS NOT NULL THEN
    PERFORM workflow._engine_check_text('task_type', task_type);
    IF coalesce(cardinality(tasks), 0) NOT BETWEEN 1 AND 10000 OR array_position(tasks, NULL) IS NOT NULL THEN
      RAISE EXCEPTION 'tasks must hold 1..10000 task parameters, none NULL' USING ERRCODE = '22023';
    END IF;
  END IF;
  PERFORM workflow._engine_require_cron();
  SELECT * INTO existing FROM workflow.schedules s WHERE s.name = schedule.name FOR UPDATE;
  IF FOUND AND existing.owner <> session_user
     AND NOT pg_has_role(session_user, 'workflow_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'schedule % belongs to %', quote_literal(name), quote_ident(existing.owner)
      USING ERRCODE = '42501';
  END IF;
  -- pg_cron checks the cron expression (22023 when it is not one) and, for a
  -- name it has, replaces that job's schedule and command.
  EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO job
    USING 'workflow:' || name, cron, format('SELECT workflow.fire_schedule(%L)', name);
  INSERT INTO workflow.schedules AS s (name, cron, job_type, parameters, total_stages, task_type, tasks, owner,
                                       cron_job_id)
  VALUES (name, cron, job_type, parameters, total_stages, task_type, tasks,
          coalesce(existing.owner, session_user), job)
  ON CONFLICT ON CONSTRAINT schedules_pkey DO UPDATE
     SET cron = excluded.cron, job_type = excluded.job_type, parameters = excluded.parameters,
         total_stages = excluded.total_stages, task_type = excluded.task_type, tasks = excluded.tasks,
         cron_job_id = excluded.cron_job_id;
  RETURN job;
END;
$$;
COMMENT ON FUNCTION workflow.schedule(text, text, text, jsonb, int, text, jsonb[]) IS
  'Creates or replaces the recurring job name (1..100 characters): on cron (pg_cron syntax, minute resolution) '
  'a job of job_type with parameters and total_stages is created, owned by the schedule''s owner (the session user '
  'that first scheduled it), with stage 1''s tasks (task_type, tasks) added and sealed when given. Its id is '
  'name@YYYY-MM-DDTHH:MIZ (the minute it fired, UTC), so a double firing creates one job. Returns pg_cron''s job id. '
  '55000 without pg_cron in this database; 22023 a bad cron expression or argument; 42501 a name another role owns.';
REVOKE EXECUTE ON FUNCTION workflow.schedule(text, text, text, jsonb, int, text, jsonb[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.schedule(text, text, text, jsonb, int, text, jsonb[])
  TO workflow_producer, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.fire_schedule(name text)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  s workflow.schedules;
  fired timestamptz := date_trunc('minute', now());
  new_id text;
BEGIN
  PERFORM workflow._engine_check_text('name', name, 100);
  SELECT * INTO s FROM workflow.schedules x WHERE x.name = fire_schedule.name;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'schedule % not found', quote_literal(name) USING ERRCODE = 'P0002';
  END IF;
  new_id := s.name || '@' || to_char(fired AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"');
  -- A second firing of the same minute waits here for the first to commit,
  -- then finds its job and adds nothing. A job of that id that is not the
  -- schedule's (create_job refuses such ids since 1.10; one made before) is
  -- not answered as the firing.
  INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner)
  VALUES (new_id, s.job_type, s.total_stages, s.parameters, s.owner)
  ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN
    IF NOT EXISTS (SELECT 1 FROM workflow.jobs j
                    WHERE j.id = new_id AND j.owner = s.owner AND j.job_type = s.job_type) THEN
      RAISE EXCEPTION 'job % exists but is not a firing of schedule %', quote_literal(new_id), quote_literal(s.name)
        USING ERRCODE = '23505';
    END IF;
    RETURN new_id;
  END IF;
  IF s.task_type IS NOT NULL THEN
    PERFORM workflow.add_tasks(new_id, 1, s.task_type, s.tasks);
  END IF;
  UPDATE workflow.schedules x SET last_job_id = new_id, last_fired_at = now() WHERE x.name = s.name;
  RETURN new_id;
END;
$$;
COMMENT ON FUNCTION workflow.fire_schedule(text) IS
  'What pg_cron runs for a schedule: creates this minute''s job of the schedule (id name@YYYY-MM-DDTHH:MIZ, owned '
  'by the schedule''s owner, stage 1''s tasks added) and returns its id; a second call in the same minute returns '
  'the same id and writes nothing; 23505 when a job of that id is not the schedule''s (another owner or job type). '
  'P0002 unknown schedule. For workflow_admin (pg_cron runs it as the role that '
  'installed the extension).';
REVOKE EXECUTE ON FUNCTION workflow.fire_schedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.fire_schedule(text) TO workflow_admin;

CREATE OR REPLACE FUNCTION workflow.unschedule(name text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  s workflow.schedules;
BEGIN
  PERFORM workflow._engine_check_text('name', name, 100);
  SELECT * INTO s FROM workflow.schedules x WHERE x.name = unschedule.name FOR UPDATE;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  IF s.owner <> session_user AND NOT pg_has_role(session_user, 'workflow_admin', 'MEMBER') THEN
    RAISE EXCEPTION 'schedule % belongs to %', quote_literal(name), quote_ident(s.owner) USING ERRCODE = '42501';
  END IF;
  PERFORM workflow._engine_require_cron();
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_class WHERE oid = to_regclass('cron.job')) THEN
    EXECUTE 'SELECT cron.unschedule(jobid) FROM cron.job WHERE jobname = $1' USING 'workflow:' || name;
  END IF;
  DELETE FROM workflow.schedules x WHERE x.name = s.name;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow.unschedule(text) IS
  'Removes the recurring job name and its pg_cron job; the jobs it fired stay. False when there is none; 42501 '
  'a schedule another role owns (unless workflow_admin).';
REVOKE EXECUTE ON FUNCTION workflow.unschedule(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.unschedule(text) TO workflow_producer, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.list_schedules()
RETURNS TABLE(name text, cron text, job_type text, total_stages int, task_type text, tasks int, owner name,
              active boolean, last_job_id text, last_fired_at timestamptz)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cron_jobs boolean := to_regclass('cron.job') IS NOT NULL;
BEGIN
  RETURN QUERY EXECUTE format(
    'SELECT s.name, s.cron, s.job_type, s.total_stages, s.task_type, cardinality(s.tasks), s.owner, %s, '
    '       s.last_job_id, s.last_fired_at '
    '  FROM workflow.schedules s '
    ' WHERE s.owner = session_user OR pg_has_role(session_user, ''workflow_admin'', ''MEMBER'') '
    ' ORDER BY s.name',
    CASE WHEN cron_jobs THEN '(SELECT j.active FROM cron.job j WHERE j.jobname = ''workflow:'' || s.name)'
         ELSE 'NULL::boolean' END);
END;
$$;
COMMENT ON FUNCTION workflow.list_schedules() IS
  'The caller''s recurring jobs (all of them for workflow_admin) with pg_cron''s active flag (NULL without its job) '
  'and the last job each fired.';
REVOKE EXECUTE ON FUNCTION workflow.list_schedules() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.list_schedules() TO workflow_producer, workflow_admin;
