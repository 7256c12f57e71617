-- workflow extension, version 1.9: generated from src/sql/*.sql in name order.
\echo Use "CREATE EXTENSION workflow" to load this file. \quit

-- Trusted install (workflow.control: trusted = true). A role with CREATE on
-- the database that is not a superuser may run CREATE EXTENSION; this script
-- then runs as the bootstrap superuser, which owns every object it creates,
-- but the schema was made by CREATE EXTENSION for the calling role (or made
-- by anyone beforehand). A schema owner may add functions to it, and an
-- overload that matches a call better (workflow.f(text, jsonb) beside
-- workflow.f(text, anyelement)) would run inside the superuser-owned
-- SECURITY DEFINER functions and event triggers: so a schema not owned by a
-- superuser must be empty and grant nothing, and the superuser takes it over.
DO $schema$
DECLARE
  ns pg_catalog.pg_namespace;
BEGIN
  SELECT * INTO ns FROM pg_catalog.pg_namespace n WHERE n.nspname = 'workflow';
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = ns.nspowner) THEN
    RETURN;
  END IF;
  IF ns.nspacl IS NOT NULL
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                 WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid = ns.oid
                   AND d.classid <> 'pg_catalog.pg_extension'::pg_catalog.regclass) THEN
    RAISE EXCEPTION 'schema workflow exists already, owned by %, with objects or privileges in it', ns.nspowner::pg_catalog.regrole
      USING ERRCODE = '42501', HINT = 'Drop the schema first: CREATE EXTENSION workflow makes it.';
  END IF;
  EXECUTE pg_catalog.format('ALTER SCHEMA workflow OWNER TO %I', current_user);
END
$schema$;

COMMENT ON SCHEMA workflow IS 'workflow extension: jobs/stages/tasks, survey steps, audit history';

CREATE FUNCTION workflow.version() RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_version';
COMMENT ON FUNCTION workflow.version() IS
  'Version of the loaded workflow shared library.';
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
-- Job -> Stage -> Task engine: tables.
--
-- Fan-in bookkeeping (exactly-once "stage complete", O(1) per task):
--   stage_slots.remaining  = a share of the stage's unfinished tasks: the
--                            counters of a stage sum to its unfinished tasks.
--                            add_tasks adds a task to slot task_index %
--                            stages.slot_count; a completion takes its unit
--                            from any counter of the stage that has one
--                            (1.2; 1.0 and 1.1 took it from the task's slot)
--   stages.pending_slots   = slots with remaining > 0, plus 1 while unsealed
-- Each level is a counter updated under a row lock held to commit; the
-- transaction that brings pending_slots to 0 is the one completer.
-- Lock order everywhere: job -> task -> slot -> stage.
-- Every unique key includes job_id, so the tables can be sharded by job.
-- tasks and stage_slots carry no foreign keys: a per-row RI check would
-- dominate bulk fan-out; add_tasks creates the stage row before its tasks.

CREATE TABLE workflow.jobs (
  id           text        PRIMARY KEY,
  job_type     text        NOT NULL,
  status       text        NOT NULL DEFAULT 'pending'
               CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled')),
  stage        int         NOT NULL DEFAULT 1,
  total_stages int         NOT NULL,
  parameters   jsonb       NOT NULL DEFAULT '{}',
  metadata     jsonb       NOT NULL DEFAULT '{}',
  result_data  jsonb,
  error        text,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  finished_at  timestamptz,
  -- How long the completer of a stage may take to advance the job before
  -- the stage is handed to another worker (claim_stage_handovers).
  handover_lease interval  NOT NULL DEFAULT '1 minute',
  -- The session user that created the job (create_job). NULL: a job from
  -- before 1.1, whose creator is unknown (admin-only). Last column: the
  -- 1.0 -> 1.1 upgrade adds it (src/sql/upgrade/1.0--1.1/10_jobs_owner.sql).
  owner        name,
  -- 1.4 (src/sql/upgrade/1.3--1.4/10_controls.sql adds them, in this order):
  -- the job's tasks are not claimed before run_at (add_tasks sets their
  -- run_after to it at the latest); paused_at: a paused job's tasks are not
  -- claimed (pause_job); dedupe_key: create_job's key, the id derived from it.
  run_at       timestamptz,
  paused_at    timestamptz,
  dedupe_key   text,
  -- 1.7 (src/sql/upgrade/1.6--1.7/10_final_advance.sql adds it): true when
  -- check_job_completion completed the job before anyone advanced its last
  -- stage; that advance still records the stage's results and is the one
  -- caller that gets true (advance_job_stage clears it).
  final_advance_pending boolean NOT NULL DEFAULT false,
  CHECK (total_stages BETWEEN 1 AND 10000),
  CHECK (stage BETWEEN 1 AND total_stages)
);
COMMENT ON TABLE workflow.jobs IS
  'A job: total_stages stages run one after another; stage is the current one (1-based).';
COMMENT ON COLUMN workflow.jobs.owner IS
  'The session user that created the job: it (and workflow_admin) may change and read the job. '
  'NULL for a job created before 1.1: only workflow_admin (and workers, for what they do) act on it.';
-- A producer reads its own jobs (row-level security, 18_engine_access.sql).
CREATE INDEX jobs_owner_idx ON workflow.jobs (owner);

CREATE TABLE workflow.stages (
  job_id            text        NOT NULL REFERENCES workflow.jobs (id) ON DELETE CASCADE,
  stage             int         NOT NULL,
  slot_count        int         NOT NULL CHECK (slot_count BETWEEN 1 AND 65536),
  pending_slots     int         NOT NULL CHECK (pending_slots >= 0),
  sealed            boolean     NOT NULL DEFAULT false,
  total_tasks       int         NOT NULL DEFAULT 0 CHECK (total_tasks >= 0),
  completed_by_task text,        -- the task whose completion completed the stage
  completed_by_seal boolean     NOT NULL DEFAULT false,  -- or the seal did
  completed_at      timestamptz,
  result_data       jsonb,       -- stage_results given to advance_job_stage
  created_at        timestamptz NOT NULL DEFAULT now(),
  sealed_at         timestamptz,
  -- Hand-over (claim_stage_handovers): a complete stage the job has not left
  -- belongs to its completer until completed_at + jobs.handover_lease, then
  -- to whoever claims it (handover_by) until handover_expires_at. Advancing
  -- the job into a stage that is complete already sets handover_expires_at
  -- to now(): nobody is known to be advancing it.
  handover_by         text,
  handover_expires_at timestamptz,
  left_at           timestamptz, -- the job moved past this stage (advanced, completed or ended)
  -- 1.4: dead tasks the stage tolerates instead of failing the job
  -- (tolerate_dead_tasks), and how many it has tolerated so far.
  max_dead_tasks    int         NOT NULL DEFAULT 0 CHECK (max_dead_tasks BETWEEN 0 AND 1000000),
  dead_tasks        int         NOT NULL DEFAULT 0 CHECK (dead_tasks >= 0),
  PRIMARY KEY (job_id, stage),
  CHECK ((completed_at IS NULL) = (pending_slots > 0))
);
COMMENT ON TABLE workflow.stages IS
  'Fan-in state of one stage of a job: sealed when its producer is done adding tasks; '
  'complete when sealed and every task completed (pending_slots = 0).';

CREATE TABLE workflow.stage_slots (
  job_id    text NOT NULL,
  stage     int  NOT NULL,
  slot      int  NOT NULL,
  remaining int  NOT NULL CHECK (remaining >= 0),
  PRIMARY KEY (job_id, stage, slot)
) WITH (fillfactor = 10);
-- fillfactor 10: every completion updates a counter and, with its exact
-- count, reads all of its stage's counters. With the default 100 a page
-- is pruned only when nearly full, so each counter's chain of dead
-- versions grows to about a hundred, and every read walks them all; at
-- 10 a page is pruned as soon as it is 10% full.
COMMENT ON TABLE workflow.stage_slots IS
  'Sharded counter of a stage''s unfinished tasks: one row per slot; the slots of a stage sum to its unfinished '
  'tasks (a task is added to slot task_index % slot_count, a completion takes from any slot with some left).';

CREATE TABLE workflow.tasks (
  id               text        NOT NULL,
  job_id           text        NOT NULL,
  task_type        text        NOT NULL,
  status           text        NOT NULL DEFAULT 'queued'
                   CHECK (status IN ('queued', 'claimed', 'completed', 'failed', 'cancelled')),
  stage            int         NOT NULL,
  task_index       int         NOT NULL CHECK (task_index >= 0),
  slot             int         NOT NULL,
  parameters       jsonb       NOT NULL DEFAULT '{}',
  result_data      jsonb,
  retry_count      int         NOT NULL DEFAULT 0,
  max_retries      int         NOT NULL DEFAULT 3 CHECK (max_retries BETWEEN 0 AND 1000),
  heartbeat        timestamptz,
  claimed_by       text,
  lease_expires_at timestamptz,
  run_after        timestamptz NOT NULL DEFAULT now(),
  last_error       text,
  created_at       timestamptz NOT NULL DEFAULT now(),
  updated_at       timestamptz NOT NULL DEFAULT now(),
  completed_at     timestamptz,
  -- 1.4: claims take higher priority first; timeout: a claim's deadline
  -- (deadline_at = claim time + timeout; past it the attempt fails);
  -- dead_tolerated: dead, and counted as finished by its stage's fan-in
  -- (the stage tolerates it); progress: report_progress's last report.
  priority         int         NOT NULL DEFAULT 0,
  timeout          interval,
  deadline_at      timestamptz,
  dead_tolerated   boolean     NOT NULL DEFAULT false,
  progress         jsonb,
  PRIMARY KEY (job_id, id),
  UNIQUE (job_id, stage, task_index)
);
COMMENT ON TABLE workflow.tasks IS
  'One unit of work of a stage; id = job_id || '':'' || stage || '':'' || task_index.';

-- Claimable tasks by priority (1.4, highest first), then in the order they become
-- available: queued ones by run_after (run_at, retry backoff), claimed ones by
-- lease expiry (reclaim). A claim walks the priorities present (a loose index
-- scan) and reads each one's due entries, so tasks not due yet cost it
-- nothing (14_engine_tasks.sql).
CREATE INDEX tasks_claimable_idx ON workflow.tasks
  (priority DESC, (CASE WHEN status = 'queued' THEN run_after ELSE lease_expires_at END))
  WHERE status IN ('queued', 'claimed');

-- 1.4: the claimed tasks of a type (concurrency limits count them), the
-- claimed tasks with a deadline (timeouts), dead tasks (workflow.dead_tasks).
-- (task_type IS NOT NULL, always true, keeps this index out of other
-- queries on claimed tasks: only a condition on task_type implies it.)
CREATE INDEX tasks_claimed_type_idx ON workflow.tasks (task_type)
  WHERE status = 'claimed' AND task_type IS NOT NULL;
CREATE INDEX tasks_deadline_idx ON workflow.tasks (deadline_at)
  WHERE status = 'claimed' AND deadline_at IS NOT NULL;
CREATE INDEX tasks_dead_idx ON workflow.tasks (updated_at) WHERE status = 'failed';
-- 1.4: finished jobs by finish time (purge_jobs).
CREATE INDEX jobs_finished_idx ON workflow.jobs (finished_at) WHERE finished_at IS NOT NULL;

-- 1.4: per task type controls (41_engine_controls.sql): a paused type is not
-- claimed; max_claimed caps its tasks claimed at once, exactly (claims of a
-- limited type serialise on its row).
CREATE TABLE workflow.task_type_settings (
  task_type   text        PRIMARY KEY,
  paused_at   timestamptz,
  max_claimed int         CHECK (max_claimed BETWEEN 0 AND 1000000),
  updated_at  timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workflow.task_type_settings IS
  'Per task type: paused (paused_at not NULL: claims skip the type) and max_claimed (at most that many of its '
  'tasks claimed at once; NULL: no limit). Written by pause_task_type, resume_task_type, set_task_type_limit.';

-- Stages awaiting their hand-over: complete and not yet left by the job.
-- Few at any time (the stages being advanced), so a hand-over claim scans
-- only these.
CREATE INDEX stages_handover_idx ON workflow.stages (job_id, stage)
  WHERE completed_at IS NOT NULL AND left_at IS NULL;

SELECT pg_catalog.pg_extension_config_dump('workflow.jobs', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.stages', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.stage_slots', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.task_type_settings', '');
-- Job -> Stage -> Task engine: argument checks and notifications shared by
-- the engine's functions. Hostile input gets a SQLSTATE error before
-- anything is written.

-- A required identifier-like text argument: not NULL (22004), not empty or
-- only spaces, at most max_len characters, no control characters (22023).
CREATE OR REPLACE FUNCTION workflow._engine_check_text(arg_name text, value text, max_len int DEFAULT 200)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', arg_name USING ERRCODE = '22004';
  END IF;
  IF value = '' THEN
    RAISE EXCEPTION '% must not be empty', arg_name USING ERRCODE = '22023';
  END IF;
  IF left(value, 1) = ' ' AND btrim(value, ' ') = '' THEN
    RAISE EXCEPTION '% must not be only spaces', arg_name USING ERRCODE = '22023';
  END IF;
  IF length(value) > max_len THEN
    RAISE EXCEPTION '% is too long (% characters, at most %)', arg_name, length(value), max_len
      USING ERRCODE = '22023';
  END IF;
  IF value ~ '[[:cntrl:]]' THEN
    RAISE EXCEPTION '% must not contain control characters: %', arg_name, quote_literal(value)
      USING ERRCODE = '22023';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_text(text, text, int) IS
  'Internal: raises 22004 for NULL, 22023 for an empty, only-spaces, too long or control-character text argument.';

-- A required argument of any type: not NULL (22004).
CREATE OR REPLACE FUNCTION workflow._engine_check_not_null(arg_name text, value anyelement)
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', arg_name USING ERRCODE = '22004';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_not_null(text, anyelement) IS
  'Internal: raises 22004 when a required argument is NULL.';

-- A lease-like interval argument: not NULL (22004), and the timestamp it
-- yields after now() within (now(), now() + max_value] (22023). Compares the
-- resulting timestamps, not the interval's fields: '12000 mons -359993 days'
-- equals '7 days' field by field (a month counts 30 days) but reaches 14
-- years ahead, so it is refused. Fields too large for any timestamp are
-- refused before the addition could overflow.
CREATE OR REPLACE FUNCTION workflow._engine_check_lease(arg_name text, value interval,
                                             max_value interval DEFAULT '7 days')
RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF value IS NULL THEN
    RAISE EXCEPTION '% must not be NULL', arg_name USING ERRCODE = '22004';
  END IF;
  IF abs(extract(year FROM value)) > 10000 OR abs(extract(day FROM value)) > 3660000
     OR abs(extract(hour FROM value)) > 87840000
     OR now() + value <= now() OR now() + value > now() + max_value THEN
    RAISE EXCEPTION '% % is out of range (0, %]', arg_name, value, max_value
      USING ERRCODE = '22023', DETAIL = 'The limit applies to now() + ' || arg_name || '.';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_lease(text, interval, interval) IS
  'Internal: raises 22004 for NULL, 22023 unless now() < now() + value <= now() + max_value (timestamps '
  'compared, so months and days count as the calendar has them).';

-- The job row, or P0002. Locks it in `lock_mode` ('share', 'update' or 'none').
CREATE OR REPLACE FUNCTION workflow._engine_job(job_id_param text, lock_mode text DEFAULT 'none')
RETURNS workflow.jobs
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs;
BEGIN
  PERFORM workflow._engine_check_text('job_id', job_id_param);
  IF lock_mode = 'share' THEN
    SELECT * INTO j FROM workflow.jobs WHERE id = job_id_param FOR SHARE;
  ELSIF lock_mode = 'update' THEN
    SELECT * INTO j FROM workflow.jobs WHERE id = job_id_param FOR NO KEY UPDATE;
  ELSE
    SELECT * INTO j FROM workflow.jobs WHERE id = job_id_param;
  END IF;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'job % not found', quote_literal(job_id_param) USING ERRCODE = 'P0002';
  END IF;
  RETURN j;
END;
$$;
COMMENT ON FUNCTION workflow._engine_job(text, text) IS
  'Internal: the job row (optionally locked FOR SHARE / FOR NO KEY UPDATE); P0002 when unknown.';

-- A stage number valid for the job, or 22004/22023.
CREATE OR REPLACE FUNCTION workflow._engine_check_stage(j workflow.jobs, stage_param int)
RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF stage_param IS NULL THEN
    RAISE EXCEPTION 'stage must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF stage_param < 1 OR stage_param > j.total_stages THEN
    RAISE EXCEPTION 'stage % is out of range 1..% for job %', stage_param, j.total_stages,
      quote_literal(j.id) USING ERRCODE = '22023';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_stage(workflow.jobs, int) IS
  'Internal: raises 22004/22023 unless the stage number is in 1..total_stages of the job.';

CREATE OR REPLACE FUNCTION workflow._engine_notify_stage_complete(job_id_param text, stage_param int)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.pg_notify('workflow_stage_complete',
    pg_catalog.json_build_object('job_id', job_id_param, 'stage', stage_param)::text);
$$;
COMMENT ON FUNCTION workflow._engine_notify_stage_complete(text, int) IS
  'Internal: NOTIFY workflow_stage_complete, payload {"job_id": ..., "stage": N}.';

CREATE OR REPLACE FUNCTION workflow._engine_notify_job_complete(job_id_param text, status_param text)
RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.pg_notify('workflow_job_complete',
    pg_catalog.json_build_object('job_id', job_id_param, 'status', status_param)::text);
$$;
COMMENT ON FUNCTION workflow._engine_notify_job_complete(text, text) IS
  'Internal: NOTIFY workflow_job_complete, payload {"job_id": ..., "status": ...}.';

-- Ends a job that is still pending/running with a terminal status; its
-- unfinished tasks are cancelled so claimers no longer see them. The caller
-- holds the job row lock (lock order job -> task).
CREATE OR REPLACE FUNCTION workflow._engine_end_job(job_id_param text, status_param text, error_param text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE workflow.jobs
     SET status = status_param, error = error_param, updated_at = now(), finished_at = now()
   WHERE id = job_id_param AND status IN ('pending', 'running');
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  UPDATE workflow.tasks
     SET status = 'cancelled', updated_at = now(), lease_expires_at = NULL
   WHERE job_id = job_id_param AND status IN ('queued', 'claimed');
  -- Nothing of an ended job is handed over (and it leaves the hand-over index).
  UPDATE workflow.stages
     SET left_at = now()
   WHERE job_id = job_id_param AND completed_at IS NOT NULL AND left_at IS NULL;
  PERFORM workflow._engine_notify_job_complete(job_id_param, status_param);
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow._engine_end_job(text, text, text) IS
  'Internal: moves a pending/running job to a terminal status, cancels its unfinished tasks, notifies.';

-- Who may act on a job (1.1). The caller of a SECURITY DEFINER function is
-- identified by session_user, the login role (behind a pooler the pooled
-- login role): inside the function current_user is the definer. A job's
-- owner is the session user that created it.
CREATE OR REPLACE FUNCTION workflow._is_admin()
RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT pg_catalog.pg_has_role(session_user, 'workflow_admin', 'MEMBER');
$$;
COMMENT ON FUNCTION workflow._is_admin() IS
  'Internal: whether the session user is a member of workflow_admin (superusers are).';

-- The session user may `action` the job: it owns it, is a member of
-- workflow_admin, or (workers_too) of workflow_worker. Otherwise 42501,
-- raised before anything is written. A job without owner (created before
-- 1.1) belongs to nobody: admins (and workers) only.
CREATE OR REPLACE FUNCTION workflow._engine_check_owner(j workflow.jobs, action text,
                                                        workers_too boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF j.owner = session_user
     OR (workers_too AND pg_has_role(session_user, 'workflow_worker', 'MEMBER'))
     OR workflow._is_admin() THEN
    RETURN;
  END IF;
  RAISE EXCEPTION 'permission denied to % job %: role % does not own it', action, quote_literal(j.id),
    quote_ident(session_user)
    USING ERRCODE = '42501',
          DETAIL = CASE WHEN j.owner IS NULL
                        THEN 'The job has no owner (it was created before 1.1): only workflow_admin may.'
                        ELSE 'A job is changed and read by the session user that created it.' END,
          HINT = 'Connect as the job''s owner, or as a member of workflow_admin'
                 || CASE WHEN workers_too THEN ' or workflow_worker' ELSE '' END || '.';
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_owner(workflow.jobs, text, boolean) IS
  'Internal: raises 42501 unless the session user owns the job, is a member of workflow_admin, or '
  '(workers_too) of workflow_worker.';

-- Fan-out into a job (add_tasks, seal_stage): its owner and admins into any
-- stage; a worker into the next stage only (2 .. the job's stage + 1: what a
-- stage_complete answer or a hand-over asks it to fan out), never stage 1,
-- which is the producer's.
CREATE OR REPLACE FUNCTION workflow._engine_check_fan_out(j workflow.jobs, stage_param int, action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF j.owner = session_user OR workflow._is_admin() THEN
    RETURN;
  END IF;
  IF pg_has_role(session_user, 'workflow_worker', 'MEMBER') THEN
    IF stage_param BETWEEN 2 AND j.stage + 1 THEN
      RETURN;
    END IF;
    RAISE EXCEPTION 'permission denied to % stage % of job %: a worker fans out only the next stage (2..%)',
      action, stage_param, quote_literal(j.id), least(j.stage + 1, j.total_stages)
      USING ERRCODE = '42501',
            DETAIL = format('The job is at stage %s; role %s does not own it.', j.stage, quote_ident(session_user)),
            HINT = 'Stage 1 and later stages are fanned out by the job''s owner or a member of workflow_admin.';
  END IF;
  PERFORM workflow._engine_check_owner(j, action);
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_fan_out(workflow.jobs, int, text) IS
  'Internal: raises 42501 unless the session user owns the job or is a member of workflow_admin, or is a '
  'member of workflow_worker and the stage is the next one (2 .. job stage + 1).';
-- Job -> Stage -> Task engine: job life cycle.

CREATE OR REPLACE FUNCTION workflow.create_job(job_type text, parameters jsonb, total_stages int,
                                    job_id text DEFAULT NULL, run_at timestamptz DEFAULT NULL,
                                    dedupe_key text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  new_id text := job_id;
BEGIN
  PERFORM workflow._engine_check_text('job_type', job_type);
  PERFORM workflow._engine_check_not_null('parameters', parameters);
  PERFORM workflow._engine_check_not_null('total_stages', total_stages);
  IF total_stages < 1 OR total_stages > 10000 THEN
    RAISE EXCEPTION 'total_stages % is out of range 1..10000', total_stages USING ERRCODE = '22023';
  END IF;
  IF run_at IS NOT NULL AND NOT isfinite(run_at) THEN
    RAISE EXCEPTION 'run_at must be a finite time (got %)', run_at USING ERRCODE = '22023';
  END IF;
  -- 1.4: a dedupe key names the job: its id is derived from the key and the
  -- session user, so a second submit with the key finds the first job.
  IF dedupe_key IS NOT NULL THEN
    PERFORM workflow._engine_check_text('dedupe_key', dedupe_key);
    IF job_id IS NOT NULL THEN
      RAISE EXCEPTION 'give job_id or dedupe_key, not both' USING ERRCODE = '22023';
    END IF;
    new_id := 'dedupe-' || md5(session_user || chr(31) || dedupe_key);
  END IF;
  new_id := coalesce(new_id, gen_random_uuid()::text);
  PERFORM workflow._engine_check_text('job_id', new_id);
  IF dedupe_key IS NOT NULL THEN
    INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner, run_at, dedupe_key)
    VALUES (new_id, create_job.job_type, create_job.total_stages, create_job.parameters, session_user,
            create_job.run_at, create_job.dedupe_key)
    ON CONFLICT (id) DO NOTHING;
    -- The job of that id is this role's job of that key, never another's
    -- (an id taken before 1.7 reserved the prefix, or a job re-owned since).
    IF NOT FOUND AND NOT EXISTS (SELECT 1 FROM workflow.jobs x WHERE x.id = new_id
                                  AND x.owner = session_user AND x.dedupe_key = create_job.dedupe_key) THEN
      RAISE EXCEPTION 'job % of dedupe key % exists but is not a job of role % with that key',
        quote_literal(new_id), quote_literal(dedupe_key), quote_ident(session_user)
        USING ERRCODE = '23505';
    END IF;
    RETURN new_id;
  END IF;
  -- Ids of this form belong to dedupe keys (another role could otherwise
  -- take the id a role's key derives and be handed its submissions).
  IF left(new_id, 7) = 'dedupe-' THEN
    RAISE EXCEPTION 'job_id % is reserved: ids starting with ''dedupe-'' are derived from dedupe keys',
      quote_literal(new_id) USING ERRCODE = '22023', HINT = 'Pass dedupe_key instead, or another job_id.';
  END IF;
  BEGIN
    INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner, run_at)
    VALUES (new_id, create_job.job_type, create_job.total_stages, create_job.parameters, session_user,
            create_job.run_at);
  EXCEPTION WHEN unique_violation THEN
    RAISE EXCEPTION 'job % already exists', quote_literal(new_id) USING ERRCODE = '23505';
  END;
  RETURN new_id;
END;
$$;
COMMENT ON FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text) IS
  'Creates a pending job at stage 1 of total_stages (1..10000), owned by the session user; returns its id '
  '(a UUID unless job_id is given). 23505 when job_id exists. run_at: its tasks are not claimed before then. '
  'dedupe_key (instead of job_id): the id is derived from the key and the session user, and a second call with '
  'the same key returns the existing job''s id and writes nothing (until that job is purged); 23505 if that id is '
  'another role''s job. A job_id starting with ''dedupe-'' is 22023 (reserved for dedupe keys).';
REVOKE EXECUTE ON FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.create_job(text, jsonb, int, text, timestamptz, text)
  TO workflow_producer, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.cancel_job(job_id text, reason text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF length(reason) > 10000 THEN
    RAISE EXCEPTION 'reason is too long (% characters, at most 10000)', length(reason)
      USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_owner(workflow._engine_job(cancel_job.job_id), 'cancel');
  PERFORM workflow._engine_job(cancel_job.job_id, 'update');
  RETURN workflow._engine_end_job(cancel_job.job_id, 'cancelled', reason);
END;
$$;
COMMENT ON FUNCTION workflow.cancel_job(text, text) IS
  'Cancels a pending or running job and its unfinished tasks; NOTIFY workflow_job_complete. '
  'False when the job had already ended; P0002 when unknown; 42501 unless the session user owns the job '
  'or is a member of workflow_admin.';

-- Compare-and-set: only the caller that sees the job at current_stage (and
-- that stage complete) moves it on; everybody else gets false.
-- next_stage = total_stages + 1 finishes the job (status completed).
CREATE OR REPLACE FUNCTION workflow.advance_job_stage(job_id_param text, current_stage int, next_stage int,
                                           stage_results_param jsonb)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(job_id_param);
  finishing boolean;
  moved boolean := false;
  -- Computed here, not inside the UPDATE's CASE: Citus refuses non-IMMUTABLE
  -- functions in CASE of a distributed UPDATE (workflow.distribute()).
  moved_at timestamptz := now();
  stage_result jsonb;
BEGIN
  PERFORM workflow._engine_check_owner(j, 'advance', workers_too => true);
  PERFORM workflow._engine_check_stage(j, current_stage);
  PERFORM workflow._engine_check_not_null('next_stage', next_stage);
  IF next_stage <> current_stage + 1 THEN
    RAISE EXCEPTION 'next_stage % must be current_stage + 1 (%)', next_stage, current_stage + 1
      USING ERRCODE = '22023';
  END IF;
  finishing := next_stage > j.total_stages;
  IF stage_results_param IS NOT NULL THEN  -- (after the checks: they say what is wrong first)
    stage_result := jsonb_build_object(current_stage::text, stage_results_param);
  END IF;

  -- The compare-and-set, looked at again when it found nothing but the job
  -- is at current_stage by the time it is re-read: a call made while the
  -- previous advance was committing saw the job one stage behind (a
  -- statement does not wait for a row that did not match its snapshot).
  FOR attempt IN 1..3 LOOP
    UPDATE workflow.jobs
       SET stage = least(next_stage, total_stages),
           status = CASE WHEN finishing THEN 'completed' ELSE 'running' END,
           finished_at = CASE WHEN finishing THEN moved_at END,
           result_data = CASE WHEN stage_result IS NULL THEN result_data
                              ELSE coalesce(result_data, '{}'::jsonb) || stage_result END,
           updated_at = moved_at
     WHERE id = job_id_param
       AND stage = current_stage
       AND status IN ('pending', 'running')
       AND EXISTS (SELECT 1 FROM workflow.stages s
                    WHERE s.job_id = job_id_param AND s.stage = current_stage
                      AND s.completed_at IS NOT NULL);
    moved := FOUND;
    EXIT WHEN moved;
    -- Lost the race, stale, repeated or premature: say which.
    j := workflow._engine_job(job_id_param);
    IF finishing AND j.status = 'completed' AND j.stage = current_stage AND j.final_advance_pending THEN
      -- check_job_completion completed the job before this advance of its
      -- last stage: the first such advance still records the stage's
      -- results and is the caller that gets true (the job's row lock and
      -- the flag make it one).
      UPDATE workflow.jobs
         SET final_advance_pending = false,
             result_data = CASE WHEN stage_result IS NULL THEN result_data
                                ELSE coalesce(result_data, '{}'::jsonb) || stage_result END,
             updated_at = moved_at
       WHERE id = job_id_param AND stage = current_stage AND status = 'completed'
         AND final_advance_pending;
      IF NOT FOUND THEN
        RETURN false;
      END IF;
      UPDATE workflow.stages SET result_data = stage_results_param
       WHERE job_id = job_id_param AND stage = current_stage;
      RETURN true;
    END IF;
    IF j.stage <> current_stage OR j.status NOT IN ('pending', 'running') THEN
      RETURN false;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM workflow.stages s
                    WHERE s.job_id = job_id_param AND s.stage = current_stage
                      AND s.completed_at IS NOT NULL) THEN
      RAISE EXCEPTION 'stage % of job % is not complete', current_stage, quote_literal(job_id_param)
        USING ERRCODE = '55000';
    END IF;
  END LOOP;
  IF moved THEN
    UPDATE workflow.stages SET result_data = stage_results_param, left_at = now()
     WHERE job_id = job_id_param AND stage = current_stage;
    -- Into a stage that is complete already (sealed empty, or its tasks were
    -- completed directly before the job got here): whoever completed it
    -- could not advance the job then, so its hand-over is claimable at once.
    -- A stage row locked by a completer still in its transaction is skipped
    -- (no wait, so no lock cycle with a completer that advances in its
    -- completing transaction): an advance it sends after this one waits for
    -- this job row lock and then wins; if it advanced too early (false) or
    -- never does, its hand-over lease (completed_at + jobs.handover_lease)
    -- runs out and the stage is handed over then.
    IF NOT finishing THEN
      PERFORM 1 FROM workflow.stages s
        WHERE s.job_id = job_id_param AND s.stage = next_stage AND s.completed_at IS NOT NULL
          FOR UPDATE SKIP LOCKED;
      IF FOUND THEN
        UPDATE workflow.stages s SET handover_by = NULL, handover_expires_at = now()
         WHERE s.job_id = job_id_param AND s.stage = next_stage;
      END IF;
    END IF;
    IF finishing THEN
      PERFORM workflow._engine_notify_job_complete(job_id_param, 'completed');
    END IF;
    RETURN true;
  END IF;
  RETURN false;  -- the job kept moving under three looks: another caller advances it
END;
$$;
COMMENT ON FUNCTION workflow.advance_job_stage(text, int, int, jsonb) IS
  'Compare-and-set move of a job from current_stage (which must be complete) to next_stage = current_stage + 1; '
  'next_stage = total_stages + 1 completes the job. Exactly one concurrent caller gets true; stale or '
  'repeated calls get false and write nothing; 55000 when current_stage is not complete yet. The advance of the '
  'last stage of a job that check_job_completion completed first still stores its results and gets true (once). Moving into a '
  'stage that is complete already makes its hand-over claimable at once (claim_stage_handovers). 42501 unless '
  'the session user owns the job or is a member of workflow_worker or workflow_admin.';

-- Completes the job when its last stage is complete (idempotent).
CREATE OR REPLACE FUNCTION workflow.check_job_completion(job_id_param text)
RETURNS TABLE(job_complete boolean, final_stage int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(job_id_param);
BEGIN
  PERFORM workflow._engine_check_owner(j, 'check the completion of', workers_too => true);
  IF j.status IN ('pending', 'running') AND j.stage = j.total_stages THEN
    -- Completed without the advance of its last stage (which stores the
    -- stage's results): that advance, if its completer still makes it,
    -- records them and gets true (advance_job_stage).
    UPDATE workflow.jobs
       SET status = 'completed', finished_at = now(), updated_at = now(), final_advance_pending = true
     WHERE id = job_id_param AND stage = total_stages AND status IN ('pending', 'running')
       AND EXISTS (SELECT 1 FROM workflow.stages s
                    WHERE s.job_id = job_id_param AND s.stage = jobs.total_stages
                      AND s.completed_at IS NOT NULL);
    IF FOUND THEN
      UPDATE workflow.stages s SET left_at = now()
       WHERE s.job_id = job_id_param AND s.stage = j.total_stages;
      PERFORM workflow._engine_notify_job_complete(job_id_param, 'completed');
    END IF;
    j := workflow._engine_job(job_id_param);
  END IF;
  RETURN QUERY SELECT j.status = 'completed', j.stage;
END;
$$;
COMMENT ON FUNCTION workflow.check_job_completion(text) IS
  'Whether the job is completed, and its current (final) stage. A running job whose last stage is '
  'complete is marked completed here (NOTIFY workflow_job_complete); the advance of that stage, if its completer '
  'still makes it, then stores the stage''s results and gets true. P0002 when unknown; 42501 unless the '
  'session user owns the job or is a member of workflow_worker or workflow_admin.';

-- Hands a job to another owner (administrators: a job from before 1.1 has
-- none; a service that moves to another login role). NULL: nobody (admin-only).
CREATE OR REPLACE FUNCTION workflow.set_job_owner(job_id text, new_owner name)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT workflow._is_admin() THEN
    RAISE EXCEPTION 'permission denied to change the owner of job %: role % is not a member of workflow_admin',
      quote_literal(set_job_owner.job_id), quote_ident(session_user) USING ERRCODE = '42501';
  END IF;
  PERFORM workflow._engine_job(set_job_owner.job_id);  -- 22004/22023/P0002
  IF new_owner IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = new_owner) THEN
    RAISE EXCEPTION 'role % does not exist', quote_ident(new_owner) USING ERRCODE = '22023';
  END IF;
  UPDATE workflow.jobs j SET owner = new_owner, updated_at = now() WHERE j.id = set_job_owner.job_id;
END;
$$;
COMMENT ON FUNCTION workflow.set_job_owner(text, name) IS
  'Makes new_owner (an existing role, or NULL: nobody, admin-only) the owner of the job. For workflow_admin '
  'only (42501 otherwise, also with EXECUTE): jobs created before 1.1 have no owner. P0002 when the job is '
  'unknown, 22023 when the role does not exist.';
-- Job -> Stage -> Task engine: fan-out (add_tasks) and sealing.
--
-- A stage is created by its first add_tasks (or seal_stage) with
-- pending_slots = 1: the phantom slot of an unsealed stage, removed by the
-- seal, so a stage filled by several calls is never complete before its
-- producer says so. Lock order: job (share) -> new tasks -> slots (ascending)
-- -> stage row, the same order completers use (task -> slot -> stage).

-- A tasks table that was never analysed (a fresh install's first fan-out)
-- has planner estimates of a few rows: claims then sort the whole stage for
-- every batch (measured 23-58 ms per claim of 32 on a 20k-task stage, against
-- about 1 ms) until autovacuum's first analyse, which can take a minute. The
-- first add_tasks that leaves the table over 1 MB (about 4,000 tasks) takes
-- the statistics itself. ANALYZE holds its lock to the end of the
-- transaction, so a concurrent producer that finds it taken skips (NOWAIT)
-- rather than waiting for that transaction.
CREATE OR REPLACE FUNCTION workflow._engine_analyze_new_tasks_table()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF (SELECT c.reltuples >= 0 FROM pg_catalog.pg_class c WHERE c.oid = 'workflow.tasks'::regclass)
     OR pg_catalog.pg_relation_size('workflow.tasks') < 1048576 THEN
    RETURN;
  END IF;
  BEGIN
    LOCK TABLE workflow.tasks IN SHARE UPDATE EXCLUSIVE MODE NOWAIT;
    ANALYZE workflow.tasks;
  EXCEPTION WHEN lock_not_available THEN
    NULL;  -- another session is analysing it
  END;
END;
$$;
COMMENT ON FUNCTION workflow._engine_analyze_new_tasks_table() IS
  'Internal (add_tasks): ANALYZE workflow.tasks once, when it was never analysed and has grown over 1 MB, so the first claims of a fresh install use the claim index.';
REVOKE EXECUTE ON FUNCTION workflow._engine_analyze_new_tasks_table() FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.add_tasks(job_id text, stage int, task_type text, parameters jsonb[],
                                   seal boolean DEFAULT true, first_index int DEFAULT 0,
                                   max_retries int DEFAULT 3, slot_count int DEFAULT 64,
                                   run_at timestamptz DEFAULT NULL, priority int DEFAULT 0,
                                   timeout interval DEFAULT NULL)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs;
  n_params int;
  k int;
  inserted int;
  newly_pending int;
  pending_after int;
  -- Not inside the UPDATE's CASE: Citus refuses non-IMMUTABLE functions there.
  ts timestamptz := now();
  first_run timestamptz;
BEGIN
  PERFORM workflow._engine_check_text('job_id', add_tasks.job_id);
  PERFORM workflow._engine_check_text('task_type', add_tasks.task_type);
  PERFORM workflow._engine_check_not_null('parameters', add_tasks.parameters);
  PERFORM workflow._engine_check_not_null('seal', seal);
  PERFORM workflow._engine_check_not_null('first_index', first_index);
  PERFORM workflow._engine_check_not_null('max_retries', add_tasks.max_retries);
  PERFORM workflow._engine_check_not_null('slot_count', add_tasks.slot_count);
  PERFORM workflow._engine_check_not_null('priority', add_tasks.priority);
  IF add_tasks.run_at IS NOT NULL AND NOT isfinite(add_tasks.run_at) THEN
    RAISE EXCEPTION 'run_at must be a finite time (got %)', add_tasks.run_at USING ERRCODE = '22023';
  END IF;
  IF add_tasks.timeout IS NOT NULL THEN
    PERFORM workflow._engine_check_lease('timeout', add_tasks.timeout);
  END IF;
  IF array_ndims(add_tasks.parameters) IS DISTINCT FROM 1 THEN
    RAISE EXCEPTION 'parameters must be a non-empty one-dimensional array (got % dimensions)',
      coalesce(array_ndims(add_tasks.parameters), 0) USING ERRCODE = '22023',
      HINT = 'To close a stage without tasks call workflow.seal_stage().';
  END IF;
  n_params := cardinality(add_tasks.parameters);
  IF n_params > 1000000 THEN
    RAISE EXCEPTION 'too many tasks in one call (%, at most 1000000)', n_params
      USING ERRCODE = '54000';
  END IF;
  IF array_position(add_tasks.parameters, NULL) IS NOT NULL THEN
    RAISE EXCEPTION 'parameters[%] is NULL', array_position(add_tasks.parameters, NULL)
      USING ERRCODE = '22004';
  END IF;
  IF first_index < 0 OR first_index::bigint + n_params > 2147483647 THEN
    RAISE EXCEPTION 'first_index % is out of range (0 .. 2147483647 - number of tasks)', first_index
      USING ERRCODE = '22023';
  END IF;
  IF add_tasks.max_retries NOT BETWEEN 0 AND 1000 THEN
    RAISE EXCEPTION 'max_retries % is out of range 0..1000', add_tasks.max_retries
      USING ERRCODE = '22023';
  END IF;
  IF add_tasks.slot_count NOT BETWEEN 1 AND 65536 THEN
    RAISE EXCEPTION 'slot_count % is out of range 1..65536', add_tasks.slot_count
      USING ERRCODE = '22023';
  END IF;

  -- Who may fan out into this job (42501 before anything is written). The
  -- job's stage only grows, so a worker's stage check holds once locked.
  j := workflow._engine_job(add_tasks.job_id);
  PERFORM workflow._engine_check_stage(j, add_tasks.stage);
  PERFORM workflow._engine_check_fan_out(j, add_tasks.stage, 'add tasks to');

  -- Mark the job running (first fan-out), then hold it against cancel/fail.
  UPDATE workflow.jobs SET status = 'running', updated_at = now()
   WHERE id = add_tasks.job_id AND status = 'pending';
  j := workflow._engine_job(add_tasks.job_id, 'share');
  PERFORM workflow._engine_check_stage(j, add_tasks.stage);
  IF j.status NOT IN ('pending', 'running') THEN
    RAISE EXCEPTION 'job % is %', quote_literal(j.id), j.status USING ERRCODE = '55000';
  END IF;

  INSERT INTO workflow.stages AS s (job_id, stage, slot_count, pending_slots)
  VALUES (add_tasks.job_id, add_tasks.stage, add_tasks.slot_count, 1)
  ON CONFLICT ON CONSTRAINT stages_pkey DO NOTHING;
  SELECT s.slot_count INTO k FROM workflow.stages s
   WHERE s.job_id = add_tasks.job_id AND s.stage = add_tasks.stage;
  -- Not claimed before the job's run_at nor the call's (greatest skips NULLs).
  first_run := greatest(ts, j.run_at, add_tasks.run_at);

  WITH ins AS (
    INSERT INTO workflow.tasks AS t
      (id, job_id, task_type, stage, task_index, slot, parameters, max_retries, run_after, priority, timeout)
    SELECT add_tasks.job_id || ':' || add_tasks.stage || ':' || (first_index + p.ord - 1),
           add_tasks.job_id, add_tasks.task_type, add_tasks.stage, first_index + p.ord - 1,
           (first_index + p.ord - 1) % k, p.params, add_tasks.max_retries, first_run, add_tasks.priority,
           add_tasks.timeout
      FROM unnest(add_tasks.parameters) WITH ORDINALITY AS p(params, ord)
     ORDER BY p.ord
    ON CONFLICT DO NOTHING
    RETURNING t.slot
  ), per_slot AS (
    SELECT ins.slot, count(*)::int AS n FROM ins GROUP BY ins.slot
  ), up AS (
    INSERT INTO workflow.stage_slots AS ss (job_id, stage, slot, remaining)
    SELECT add_tasks.job_id, add_tasks.stage, per_slot.slot, per_slot.n
      FROM per_slot ORDER BY per_slot.slot
    ON CONFLICT ON CONSTRAINT stage_slots_pkey
      DO UPDATE SET remaining = ss.remaining + excluded.remaining
    RETURNING ss.slot, ss.remaining
  )
  SELECT coalesce(sum(per_slot.n), 0)::int,
         count(*) FILTER (WHERE up.remaining = per_slot.n)::int  -- slot went 0 -> n
    INTO inserted, newly_pending
    FROM per_slot JOIN up ON up.slot = per_slot.slot;

  IF inserted = 0 AND NOT seal THEN
    RETURN 0;
  END IF;

  UPDATE workflow.stages s
     SET total_tasks = s.total_tasks + inserted,
         pending_slots = s.pending_slots + newly_pending - seal::int,
         sealed = seal,
         sealed_at = CASE WHEN seal THEN ts END,
         completed_by_seal = (s.pending_slots + newly_pending - seal::int = 0),
         completed_at = CASE WHEN s.pending_slots + newly_pending - seal::int = 0 THEN ts END
   WHERE s.job_id = add_tasks.job_id AND s.stage = add_tasks.stage AND NOT s.sealed
  RETURNING s.pending_slots INTO pending_after;
  IF NOT FOUND THEN
    IF inserted > 0 THEN
      RAISE EXCEPTION 'stage % of job % is sealed: no tasks can be added', add_tasks.stage,
        quote_literal(add_tasks.job_id) USING ERRCODE = '55000';
    END IF;
    RETURN 0;  -- a repeated call: every task exists already
  END IF;
  IF pending_after = 0 THEN
    PERFORM workflow._engine_notify_stage_complete(add_tasks.job_id, add_tasks.stage);
  END IF;
  PERFORM workflow._engine_analyze_new_tasks_table();
  RETURN inserted;
END;
$$;
COMMENT ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval) IS
  'Fans stage out into one queued task per element of parameters (task_index = first_index + position - 1, '
  'id = job_id:stage:task_index), in one statement; returns the number of tasks inserted (existing indices '
  'are skipped). seal (default true) closes the stage: no task can be added after (55000). Several calls with '
  'seal => false then workflow.seal_stage() fill a stage in batches. slot_count fixes the stage''s counter '
  'shards when the stage is created (default 64: a completion takes its unit from any counter no other '
  'transaction holds, and holds it to commit, so a stage needs about as many as transactions completing its '
  'tasks at once; remaining_tasks reads all of them). 42501 unless the session user owns the job or is a member of '
  'workflow_admin, or is a member of workflow_worker and stage is the next one (2 .. the job''s stage + 1). '
  '1.4: run_at: not claimed before then (nor before the job''s run_at); priority: claims take higher first; '
  'timeout ((0, 7 days]): each claim''s deadline, past which the attempt fails.';
REVOKE EXECUTE ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval)
  TO workflow_producer, workflow_worker, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.seal_stage(job_id text, stage int)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(seal_stage.job_id);
  pending_after int;
  by_seal boolean;
  ts timestamptz := now();  -- not inside the UPDATE's CASE (Citus)
BEGIN
  PERFORM workflow._engine_check_stage(j, seal_stage.stage);
  PERFORM workflow._engine_check_fan_out(j, seal_stage.stage, 'seal');
  j := workflow._engine_job(seal_stage.job_id, 'share');
  IF j.status NOT IN ('pending', 'running') THEN
    RAISE EXCEPTION 'job % is %', quote_literal(j.id), j.status USING ERRCODE = '55000';
  END IF;
  -- A stage nobody added tasks to: created here, empty.
  INSERT INTO workflow.stages (job_id, stage, slot_count, pending_slots)
  VALUES (seal_stage.job_id, seal_stage.stage, 1, 1)
  ON CONFLICT ON CONSTRAINT stages_pkey DO NOTHING;

  UPDATE workflow.stages s
     SET sealed = true, sealed_at = ts,
         pending_slots = s.pending_slots - 1,
         completed_by_seal = (s.pending_slots = 1),
         completed_at = CASE WHEN s.pending_slots = 1 THEN ts END
   WHERE s.job_id = seal_stage.job_id AND s.stage = seal_stage.stage AND NOT s.sealed
  RETURNING s.pending_slots INTO pending_after;
  IF FOUND THEN
    IF pending_after = 0 THEN
      PERFORM workflow._engine_notify_stage_complete(seal_stage.job_id, seal_stage.stage);
      RETURN true;
    END IF;
    RETURN false;
  END IF;
  -- Already sealed: a retry gets the answer the first call got.
  SELECT s.completed_by_seal INTO by_seal FROM workflow.stages s
   WHERE s.job_id = seal_stage.job_id AND s.stage = seal_stage.stage;
  RETURN by_seal;
END;
$$;
COMMENT ON FUNCTION workflow.seal_stage(text, int) IS
  'Closes a stage to new tasks; true when sealing completed it (every task was already done, or it has '
  'none): that caller advances the job. A repeated call returns the same answer. 42501 unless the session '
  'user owns the job or is a member of workflow_admin, or is a member of workflow_worker and stage is the '
  'next one (2 .. the job''s stage + 1).';
-- Job -> Stage -> Task engine: workers' calls (claim, heartbeat, fail).
-- complete_task_and_check_stage, the hot path, is in 15_engine_complete.sql.

-- task_types of a claim: NULL (any type) or a non-empty array of at most
-- 1000 types without NULLs.
CREATE OR REPLACE FUNCTION workflow._engine_check_task_types(task_types text[])
RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF task_types IS NOT NULL THEN
    IF cardinality(task_types) = 0 THEN
      RAISE EXCEPTION 'task_types must be NULL (any type) or non-empty' USING ERRCODE = '22023';
    END IF;
    IF cardinality(task_types) > 1000 THEN
      RAISE EXCEPTION 'task_types has % elements, at most 1000', cardinality(task_types)
        USING ERRCODE = '22023';
    END IF;
    IF array_ndims(task_types) > 1 THEN
      RAISE EXCEPTION 'task_types must be a one-dimensional array' USING ERRCODE = '22023';
    END IF;
    IF array_position(task_types, NULL) IS NOT NULL THEN
      RAISE EXCEPTION 'task_types[%] is NULL', array_position(task_types, NULL)
        USING ERRCODE = '22004';
    END IF;
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_task_types(text[]) IS
  'Internal: raises 22023 for an empty, multi-dimensional or over 1000 elements task_types array, 22004 for a NULL element (NULL means any type).';

CREATE OR REPLACE FUNCTION workflow.claim_tasks(worker text, max_tasks int DEFAULT 1,
                                     task_types text[] DEFAULT NULL,
                                     lease interval DEFAULT '5 minutes')
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('worker', worker);
  PERFORM workflow._engine_check_not_null('max_tasks', max_tasks);
  PERFORM workflow._engine_check_lease('lease', lease);
  IF max_tasks NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'max_tasks % is out of range 1..10000', max_tasks USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_task_types(task_types);
  RETURN QUERY SELECT * FROM workflow._engine_claim(ARRAY[worker], max_tasks, task_types, lease);
END;
$$;
COMMENT ON FUNCTION workflow.claim_tasks(text, int, text[], interval) IS
  'Claims up to max_tasks (1..10000) runnable tasks for worker, optionally only of task_types, for lease: '
  'queued tasks whose run_after has passed and claimed tasks whose lease expired (before their deadline), of '
  'pending/running jobs that are not paused, of task types that are not paused; highest priority first, then '
  'oldest. A type with a concurrency limit (set_task_type_limit) never has more than its limit claimed at once. '
  'Sets deadline_at = now() + the task''s timeout; first fails the attempts whose deadline has passed. '
  'FOR UPDATE SKIP LOCKED. Returns the claimed rows. On a Citus cluster (workflow.distribute()) '
  'the jobs of the best runnable tasks are read over every shard first, then each job''s tasks are claimed '
  'on the node that holds it (FOR UPDATE SKIP LOCKED there).';

-- 1.5: one claim for several worker loops of a process (the client's
-- WorkerGroup at batch 1): at most one task for each name in workers, in one
-- statement and one commit, each task fenced by its own loop's name.
CREATE OR REPLACE FUNCTION workflow.claim_tasks_for_workers(workers text[], task_types text[] DEFAULT NULL,
                                                 lease interval DEFAULT '5 minutes')
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_not_null('workers', workers);
  IF cardinality(workers) NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'workers has % elements, not 1..10000', cardinality(workers) USING ERRCODE = '22023';
  END IF;
  FOR i IN 1 .. cardinality(workers) LOOP  -- the check's statement only for a bad name (its error)
    IF workers[i] IS NULL OR workers[i] = '' OR length(workers[i]) > 200 OR workers[i] ~ '[[:cntrl:]]' THEN
      PERFORM workflow._engine_check_text(format('workers[%s]', i), workers[i]);
    END IF;
  END LOOP;
  PERFORM workflow._engine_check_lease('lease', lease);
  PERFORM workflow._engine_check_task_types(task_types);
  RETURN QUERY SELECT * FROM workflow._engine_claim(workers, cardinality(workers), task_types, lease);
END;
$$;
COMMENT ON FUNCTION workflow.claim_tasks_for_workers(text[], text[], interval) IS
  'claim_tasks for several workers at once: claims at most one task for each name in workers (1..10000 '
  'names), the same tasks in the same order as claim_tasks(max_tasks => cardinality(workers)) would, and '
  'the i-th claimed task is claimed by workers[i] (fenced by that name). Returns the claimed rows '
  '(claimed_by says whose each is; fewer rows than workers when fewer tasks are runnable). For a process '
  'whose worker loops each take one task at a time. 22004 NULL workers or element, 22023 an empty array, '
  'more than 10000 or a name that is empty, over 200 characters or has control characters; task_types and '
  'lease as claim_tasks.';

-- The claim itself (arguments checked by the callers): up to max_tasks
-- tasks; all for workers[1] when it has one name, else task i for workers[i].
CREATE OR REPLACE FUNCTION workflow._engine_claim(workers text[], max_tasks int, task_types text[],
                                                 lease interval)
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
-- One plan per session (generic): its shape is fixed by the query (the
-- claim index, in order, under the LIMIT), and planning it at every call
-- would cost more than the claim itself; never JIT-compiled.
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
-- The claim's filters multiply into an estimate of one row, for which the
-- planner prefers reading every claimable task of the priority (bitmap) and
-- sorting them: 75 ms a claim at 50k queued. The claim index read in order
-- under the LIMIT is what a claim must do: O(log n + claimed).
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
DECLARE
  excluded text[];   -- paused types (and types limited to 0)
  limited text[];    -- types with a concurrency limit
  timed_out boolean; -- a claimed task's deadline has passed
  prios int[];       -- the priorities of queued and claimed tasks, highest first
  prio int;
  got int := 0;
  n int;
  w text;
BEGIN
  -- On a Citus cluster a multi-shard FOR UPDATE (and the recursive walk of
  -- the priorities below) is refused: claim job by job (19_engine_citus.sql).
  IF workflow._engine_citus_table('workflow.tasks') THEN
    SELECT coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NOT NULL OR s.max_claimed = 0), '{}'),
           coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NULL AND s.max_claimed > 0), '{}')
      INTO excluded, limited
      FROM workflow.task_type_settings s;
    IF EXISTS (SELECT 1 FROM workflow.tasks x WHERE x.status = 'claimed' AND x.deadline_at <= now()) THEN
      PERFORM workflow._engine_expire_timeouts(100);
    END IF;
    IF cardinality(workers) = 1 THEN
      RETURN QUERY SELECT * FROM workflow._engine_claim_tasks_distributed(workers[1], max_tasks, task_types,
                                                                          lease, excluded, limited);
    ELSE
      FOREACH w IN ARRAY workers LOOP
        RETURN QUERY SELECT * FROM workflow._engine_claim_tasks_distributed(w, 1, task_types, lease,
                                                                            excluded, limited);
      END LOOP;
    END IF;
    RETURN;
  END IF;

  -- 1.4: one statement reads the task type controls (a small table, usually
  -- empty), probes the deadline index (empty unless tasks have timeouts) and
  -- walks the priorities present in the claim index from the highest, one
  -- index probe each (a loose index scan): O(log n) per priority present.
  SELECT coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NOT NULL OR s.max_claimed = 0), '{}'),
         coalesce(array_agg(s.task_type) FILTER (WHERE s.paused_at IS NULL AND s.max_claimed > 0), '{}'),
         coalesce((SELECT x.deadline_at FROM workflow.tasks x  -- the deadline index's first entry
                    WHERE x.status = 'claimed' AND x.deadline_at IS NOT NULL
                    ORDER BY x.deadline_at LIMIT 1) <= now(), false),
         ARRAY(WITH RECURSIVE prio AS (
                 (SELECT t.priority AS p FROM workflow.tasks t
                   WHERE t.status IN ('queued', 'claimed') ORDER BY t.priority DESC LIMIT 1)
                 UNION ALL
                 SELECT (SELECT t.priority FROM workflow.tasks t
                          WHERE t.status IN ('queued', 'claimed') AND t.priority < prio.p
                          ORDER BY t.priority DESC LIMIT 1)
                   FROM prio WHERE prio.p IS NOT NULL)
               SELECT prio.p FROM prio WHERE prio.p IS NOT NULL)
    INTO excluded, limited, timed_out, prios
    FROM workflow.task_type_settings s;
  IF timed_out THEN
    PERFORM workflow._engine_expire_timeouts(100);
  END IF;

  IF cardinality(prios) = 0 THEN
    RETURN;  -- nothing queued or claimed
  END IF;

  -- A type with a concurrency limit in reach: the exact path (41_engine_controls.sql).
  IF cardinality(limited) > 0 AND (task_types IS NULL OR task_types && limited) THEN
    IF cardinality(workers) = 1 THEN
      RETURN QUERY SELECT * FROM workflow._engine_claim_limited(workers[1], max_tasks, task_types, lease,
                                                                excluded, limited, prios);
    ELSE  -- one claim per name: each counts the others' under the type's lock
      FOREACH w IN ARRAY workers LOOP
        RETURN QUERY SELECT * FROM workflow._engine_claim_limited(w, 1, task_types, lease,
                                                                  excluded, limited, prios);
      END LOOP;
    END IF;
    RETURN;
  END IF;

  -- Per priority present, highest first, one statement: queued tasks whose
  -- run_after has come and claimed tasks whose lease expired (before their
  -- deadline), oldest first, of jobs still running and not paused; SKIP
  -- LOCKED so concurrent claimers never wait for or get the same task. With
  -- the priority an equality, the claim index (priority DESC, due) is read
  -- in its order and the LIMIT stops the scan: O(log n + claimed) per
  -- priority tried. (One statement over `priority = ANY (prios)` cannot read
  -- the index in order: its generic plan read and sorted every claimable
  -- task, 75 ms a claim at 50k queued.) A range ends at its first task not
  -- due: what waits for later costs nothing. The k-th task claimed is
  -- workers[k]'s (with one name, all are).
  FOREACH prio IN ARRAY prios LOOP
    RETURN QUERY
    WITH picked AS (
      SELECT t.job_id, t.id
        FROM workflow.tasks t
       WHERE t.status IN ('queued', 'claimed') AND t.priority = prio
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND t.task_type <> ALL (excluded)
         AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
         -- Only once the job has reached the task's stage: a stage fanned out
         -- before the advance into it has committed waits for that advance.
         -- (OFFSET 0: a subplan per candidate, never a join that the planner
         -- could start from the jobs.)
         AND EXISTS (SELECT 1 FROM workflow.jobs j
                      WHERE j.id = t.job_id AND j.status IN ('pending', 'running')
                        AND j.stage >= t.stage AND j.paused_at IS NULL OFFSET 0)
       ORDER BY t.priority DESC, (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
       LIMIT max_tasks - got
         FOR UPDATE OF t SKIP LOCKED
    ), numbered AS (
      SELECT picked.job_id, picked.id, got + row_number() OVER () AS k FROM picked
    )
    UPDATE workflow.tasks t
       SET status = 'claimed', claimed_by = workers[CASE WHEN cardinality(workers) = 1 THEN 1 ELSE numbered.k END],
           heartbeat = now(),
           lease_expires_at = now() + lease, deadline_at = now() + t.timeout, updated_at = now()
      FROM numbered
     WHERE t.job_id = numbered.job_id AND t.id = numbered.id
    RETURNING t.*;
    GET DIAGNOSTICS n = ROW_COUNT;
    got := got + n;
    EXIT WHEN got >= max_tasks;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim(text[], int, text[], interval) IS
  'Internal (claim_tasks, claim_tasks_for_workers): claims up to max_tasks runnable tasks, all for workers[1] '
  'when workers has one name, else the i-th for workers[i]; the arguments are checked by the callers.';

REVOKE EXECUTE ON FUNCTION workflow._engine_claim(text[], int, text[], interval),
                           workflow._engine_check_task_types(text[]) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION workflow.claim_tasks_for_workers(text[], text[], interval) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.claim_tasks_for_workers(text[], text[], interval)
  TO workflow_worker, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.heartbeat_task(task_id text, job_id text, worker text,
                                        lease interval DEFAULT '5 minutes')
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t_status text;
  holder text;
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  PERFORM workflow._engine_check_text('job_id', job_id);
  PERFORM workflow._engine_check_text('worker', worker);
  PERFORM workflow._engine_check_lease('lease', lease);
  UPDATE workflow.tasks t
     SET heartbeat = now(), lease_expires_at = now() + lease, updated_at = now()
   WHERE t.job_id = heartbeat_task.job_id AND t.id = heartbeat_task.task_id
     AND t.status = 'claimed' AND t.claimed_by = worker
     AND (t.deadline_at IS NULL OR t.deadline_at > now());
  IF FOUND THEN
    RETURN true;
  END IF;
  SELECT t.status, t.claimed_by INTO t_status, holder
    FROM workflow.tasks t WHERE t.job_id = heartbeat_task.job_id AND t.id = heartbeat_task.task_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  IF holder IS NOT DISTINCT FROM worker THEN
    -- this worker finished it (completed, failed, or cancelled with its
    -- job), or its deadline has passed (the attempt fails): stop
    RETURN false;
  END IF;
  RAISE EXCEPTION 'task % is %, not claimed by worker %', quote_literal(task_id),
    CASE WHEN t_status = 'claimed' THEN 'claimed by another worker' ELSE t_status END, quote_literal(worker)
    USING ERRCODE = '55000',
          DETAIL = CASE WHEN holder IS NULL THEN 'No worker holds it.'
                        ELSE format('Worker %s claimed it last.', quote_literal(holder)) END,
          HINT = 'Stop working on it: this worker does not hold the task (a lease that expired may have been claimed by another worker).';
END;
$$;
COMMENT ON FUNCTION workflow.heartbeat_task(text, text, text, interval) IS
  'Extends the lease of a task claimed by worker to now() + lease (at most 7 days ahead) and returns true. '
  'false (nothing written) when this worker finished the task itself (completed, failed, cancelled with its job) '
  'or the task''s deadline (claim time + timeout) has passed. '
  '55000 (nothing written) when the worker does not hold it: another worker claimed or finished it after the '
  'lease expired, or it is queued. P0002 when the task is unknown.';

-- Seconds before retry number `attempt` (1-based): base * 2^(attempt-1)
-- capped at cap, with equal jitter (src/core/backoff.hpp).
CREATE OR REPLACE FUNCTION workflow.retry_delay(attempt int, base interval DEFAULT '2 seconds',
                                     cap interval DEFAULT '1 hour', jitter boolean DEFAULT true)
RETURNS interval
LANGUAGE c STRICT VOLATILE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'workflow_retry_delay';
COMMENT ON FUNCTION workflow.retry_delay(int, interval, interval, boolean) IS
  'Backoff before retry number attempt: base * 2^(attempt-1), at most cap; with jitter a uniform '
  'point in [delay/2, delay].';

-- One failed attempt of task t (fail_task, and a claim's deadline passing:
-- 42_engine_timeouts.sql). The caller holds the job row (FOR NO KEY UPDATE)
-- and the task row: lock order job -> task. Retryable with retries left:
-- queued again after the backoff. Otherwise the task is dead
-- (_engine_task_died: its stage tolerates it, or the job fails).
CREATE OR REPLACE FUNCTION workflow._engine_fail_attempt(t workflow.tasks, error text, retryable boolean,
                                                        backoff_base interval, backoff_cap interval,
                                                        worker text)
RETURNS TABLE(will_retry boolean, retry_at timestamptz, job_failed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  retry_time timestamptz;
BEGIN
  IF retryable AND t.retry_count < t.max_retries THEN
    -- Never before the task was due: an unfenced fail_task of a queued task
    -- that waits for its run_at (1.8; before, the backoff replaced it).
    retry_time := greatest(now() + workflow.retry_delay(t.retry_count + 1, backoff_base, backoff_cap), t.run_after);
    UPDATE workflow.tasks x
       SET status = 'queued', retry_count = x.retry_count + 1, run_after = retry_time,
           claimed_by = worker, lease_expires_at = NULL, deadline_at = NULL, last_error = error,
           updated_at = now()
     WHERE x.job_id = t.job_id AND x.id = t.id;
    RETURN QUERY SELECT true, retry_time, false;
    RETURN;
  END IF;
  RETURN QUERY SELECT false, NULL::timestamptz, NOT workflow._engine_task_died(t, error, worker);
END;
$$;
COMMENT ON FUNCTION workflow._engine_fail_attempt(workflow.tasks, text, boolean, interval, interval, text) IS
  'Internal (fail_task, timeouts): records one failed attempt of a locked task: queued again after the backoff '
  '(and not before its run_after: a queued task waiting for its run_at keeps it) while retryable with retries left, '
  'else dead (_engine_task_died).';
REVOKE EXECUTE ON FUNCTION workflow._engine_fail_attempt(workflow.tasks, text, boolean, interval, interval, text)
  FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.fail_task(task_id text, job_id text, error text, retryable boolean DEFAULT true,
                                   backoff_base interval DEFAULT '2 seconds',
                                   backoff_cap interval DEFAULT '1 hour',
                                   worker text DEFAULT NULL)
RETURNS TABLE(will_retry boolean, retry_at timestamptz, job_failed boolean)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t workflow.tasks;
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  PERFORM workflow._engine_check_not_null('error', error);
  PERFORM workflow._engine_check_not_null('retryable', retryable);
  PERFORM workflow._engine_check_not_null('backoff_base', backoff_base);
  PERFORM workflow._engine_check_not_null('backoff_cap', backoff_cap);
  IF worker IS NOT NULL THEN
    PERFORM workflow._engine_check_text('worker', worker);
  END IF;
  IF length(error) > 10000 THEN
    RAISE EXCEPTION 'error is too long (% characters, at most 10000)', length(error)
      USING ERRCODE = '22023';
  END IF;
  IF backoff_base < interval '0' OR backoff_cap < backoff_base THEN
    RAISE EXCEPTION 'backoff must satisfy 0 <= base (%) <= cap (%)', backoff_base, backoff_cap
      USING ERRCODE = '22023';
  END IF;
  -- Lock order job -> task, as cancel_job: a dead task fails the job.
  PERFORM workflow._engine_job(fail_task.job_id, 'update');
  SELECT * INTO t FROM workflow.tasks x
   WHERE x.job_id = fail_task.job_id AND x.id = fail_task.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  -- With worker: only that worker's claim can fail. The worker's own repeat
  -- after a lost reply (the task is queued again or failed, and claimed_by,
  -- kept by the failure, still names it) answers the task's state and writes
  -- nothing, so one failed attempt counts once. A task another worker holds
  -- or finished, or one queued by someone else, is refused: 55000.
  IF worker IS NOT NULL AND NOT (t.status = 'claimed' AND t.claimed_by = worker) THEN
    IF t.status IN ('queued', 'failed') AND t.claimed_by IS NOT DISTINCT FROM worker THEN
      RETURN QUERY SELECT t.status <> 'failed',
                          CASE WHEN t.status = 'queued' THEN t.run_after END,
                          (SELECT j.status = 'failed' FROM workflow.jobs j WHERE j.id = fail_task.job_id);
      RETURN;
    END IF;
    IF t.status IN ('queued', 'claimed', 'completed') THEN
      RAISE EXCEPTION 'task % is %, not claimed by worker %', quote_literal(task_id),
        CASE WHEN t.status = 'claimed' THEN 'claimed by another worker' ELSE t.status END, quote_literal(worker)
        USING ERRCODE = '55000',
              DETAIL = CASE WHEN t.claimed_by IS NULL THEN 'No worker holds it.'
                            ELSE format('Worker %s claimed it last.', quote_literal(t.claimed_by)) END,
              HINT = 'Stop working on it: this worker does not hold the task (a lease that expired may have been claimed by another worker).';
    END IF;
  END IF;
  IF t.status NOT IN ('queued', 'claimed') THEN
    RAISE EXCEPTION 'task % is %, it cannot fail', quote_literal(task_id), t.status
      USING ERRCODE = '55000';
  END IF;

  RETURN QUERY SELECT * FROM workflow._engine_fail_attempt(t, error, retryable, backoff_base, backoff_cap,
                                                           fail_task.worker);
END;
$$;
COMMENT ON FUNCTION workflow.fail_task(text, text, text, boolean, interval, interval, text) IS
  'Records a failed attempt. Retryable and retry_count < max_retries: the task is queued again after '
  'retry_delay(retry_count + 1) (exponential, jittered), not before its run_after (run_at). Otherwise the task is dead (failed): when its stage '
  'tolerates another dead task (tolerate_dead_tasks) it counts as finished for the stage, else the job fails, '
  'its unfinished tasks are cancelled and workflow_job_complete is notified. With worker, only a task claimed '
  'by that worker fails; the failure keeps claimed_by = worker, so the worker''s own repeat (task queued again '
  'or failed by it) writes nothing and answers the task''s state and the attempt counts once; a task claimed or '
  'completed by another worker, or queued by someone else, raises 55000 and nothing is written. Without worker '
  'claimed_by is cleared.';
-- Job -> Stage -> Task engine: the fan-in hot path, native (C++):
-- src/extension/engine_fan_in.cpp, the one fan-in path, called by
-- complete_task_and_check_stage (engine_complete.cpp, a batch of one) and
-- complete_tasks (engine_complete_batch.cpp). 1.2 counts by stage (the
-- *_by_stage entry points): a completion takes its unit from any counter of
-- its stage that has one, below the executor (engine_direct.hpp). CREATE OR
-- REPLACE: the 1.1 -> 1.2 upgrade runs this file as it is.
--
-- Fencing (worker => the name the task was claimed with): only a task
-- currently claimed by that worker completes (also after its lease expired,
-- as long as no other worker claimed it). The worker's own repeat after a
-- lost reply (the task completed with its name) writes nothing and answers
-- the same. A task another worker holds or completed, or that is queued
-- again, raises 55000 and nothing is written. claimed_by is kept on
-- completion: it names the worker that completed the task. Without worker
-- (NULL): any queued or claimed task completes (unfenced).

CREATE OR REPLACE FUNCTION workflow.complete_task_and_check_stage(task_id_param text, job_id_param text,
                                                       stage_param int, result_data_param jsonb,
                                                       count_remaining boolean DEFAULT true,
                                                       worker text DEFAULT NULL)
RETURNS TABLE(stage_complete boolean, remaining_tasks int, job_id text)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS 'MODULE_PATHNAME', 'workflow_complete_task_and_check_stage_by_stage';
COMMENT ON FUNCTION workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text) IS
  'Completes a queued or claimed task and stores its result. Exactly one call per stage, whatever the '
  'concurrency, returns stage_complete = true (and NOTIFY workflow_stage_complete); O(1) in the stage size. '
  'A repeated call writes nothing and returns stage_complete = true again only for the task that completed '
  'the stage. remaining_tasks: unfinished tasks of the stage at the time of the call (sum of its '
  'counters, O(slot_count)); with count_remaining => false it is not counted (NULL, or 0 when the stage is '
  'complete). With worker: only a task claimed by that worker completes; a task another worker holds or '
  'completed, or one queued again, raises 55000 and nothing is written; the worker''s own repeat is '
  'answered as above. P0002 unknown task, 22023 wrong stage, 55000 failed/cancelled task.';

CREATE OR REPLACE FUNCTION workflow.complete_tasks(job_ids text[], task_ids text[], stages int[],
                                        results jsonb[] DEFAULT NULL,
                                        worker text DEFAULT NULL)
RETURNS TABLE(job_id text, task_id text, stage int, stage_complete boolean)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 32
AS 'MODULE_PATHNAME', 'workflow_complete_tasks_by_stage';
COMMENT ON FUNCTION workflow.complete_tasks(text[], text[], int[], jsonb[], text) IS
  'Completes many tasks (element i: task_ids[i] of job_ids[i] in stages[i], result results[i]) in one '
  'statement and transaction: the batch form of complete_task_and_check_stage, with the same exactly-once '
  'stage completion whatever the concurrency (also mixed with single completes); locks are taken in one '
  'global order (tasks by job and id, then each stage''s counters in ascending order, then stages), so '
  'concurrent batches do not deadlock. '
  'Returns one row per element in input order; stage_complete is true for the task recorded as its stage''s '
  'completer, also when the batch is repeated (a repeat writes nothing). All or nothing: any refused element '
  'fails the whole call and nothing is written: 22004 NULL array or element, 22023 empty or unequal arrays, '
  'more than 10000 elements, a task twice, a wrong stage; P0002 unknown task; 55000 failed/cancelled task, '
  'and with worker a task not claimed by that worker (held or completed by another, or queued again). '
  'results may be NULL (no results).';

-- 1.4: the batch of several worker loops of one process (the client's
-- WorkerGroup): element i is fenced by workers[i], all in one call, so the
-- loops share one statement and one commit and the lock order stays global.
CREATE OR REPLACE FUNCTION workflow.complete_claimed_tasks(job_ids text[], task_ids text[], stages int[],
                                                results jsonb[], workers text[])
RETURNS TABLE(job_id text, task_id text, stage int, stage_complete boolean)
LANGUAGE c VOLATILE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 32
AS 'MODULE_PATHNAME', 'workflow_complete_claimed_tasks';
COMMENT ON FUNCTION workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[]) IS
  'complete_tasks with one worker name per element: task_ids[i] completes only if it is claimed by workers[i] '
  '(or was completed by it: a repeat). For a process whose worker loops, each with its own name, complete '
  'their tasks in one call. Same answers, lock order and errors as complete_tasks; also 22004 a NULL '
  'workers array or element, 22023 workers of another length or a name over 200 characters.';
REVOKE EXECUTE ON FUNCTION workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.complete_claimed_tasks(text[], text[], int[], jsonb[], text[])
  TO workflow_worker, workflow_admin;
-- Job -> Stage -> Task engine: progress, self-check and invariants.

CREATE OR REPLACE FUNCTION workflow.job_progress(job_id text)
RETURNS TABLE(stage int, total_tasks int, completed_tasks int, failed_tasks int,
              sealed boolean, complete boolean)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(job_progress.job_id);
BEGIN
  PERFORM workflow._engine_check_owner(j, 'read the progress of', workers_too => true);
  RETURN QUERY
  SELECT n::int,
         coalesce(s.total_tasks, 0),
         coalesce(c.completed, 0),
         coalesce(c.failed, 0),
         coalesce(s.sealed, false),
         s.completed_at IS NOT NULL
    FROM generate_series(1, j.total_stages) AS n
    LEFT JOIN workflow.stages s ON s.job_id = j.id AND s.stage = n
    LEFT JOIN LATERAL (
      SELECT count(*) FILTER (WHERE t.status = 'completed')::int AS completed,
             count(*) FILTER (WHERE t.status = 'failed')::int AS failed
        FROM workflow.tasks t WHERE t.job_id = j.id AND t.stage = n) c ON true
   ORDER BY n;
END;
$$;
COMMENT ON FUNCTION workflow.job_progress(text) IS
  'One row per stage 1..total_stages of the job: tasks added, completed and dead, sealed, complete. '
  'Counts the tasks (O(tasks of the job)): for progress bars, not for the hot path. P0002 when unknown; '
  '42501 unless the session user owns the job or is a member of workflow_worker or workflow_admin.';

-- The extension's objects are present and intact: the errors the original
-- design could only discover at run time.
CREATE OR REPLACE FUNCTION workflow.validate()
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  fn text;
  tbl text;
  v text;
BEGIN
  FOREACH tbl IN ARRAY ARRAY['workflow.jobs', 'workflow.stages', 'workflow.stage_slots', 'workflow.tasks'] LOOP
    check_name := 'table ' || tbl;
    ok := to_regclass(tbl) IS NOT NULL;
    detail := CASE WHEN ok THEN 'present' ELSE 'missing' END;
    RETURN NEXT;
    IF ok THEN
      -- Every unique index includes job_id (sharding by job).
      check_name := 'unique keys of ' || tbl || ' include job_id';
      SELECT coalesce(string_agg(i.indexrelid::regclass::text, ', '), '') INTO detail
        FROM pg_index i
       WHERE i.indrelid = tbl::regclass AND i.indisunique
         AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                          WHERE a.attrelid = i.indrelid AND a.attname = 'job_id'
                            AND a.attnum = ANY (i.indkey));
      ok := detail = '' OR tbl = 'workflow.jobs';
      detail := CASE WHEN ok THEN 'yes' ELSE 'without job_id: ' || detail END;
      RETURN NEXT;
    END IF;
  END LOOP;

  check_name := 'index workflow.tasks_claimable_idx';
  SELECT i.indisvalid INTO ok FROM pg_index i
   WHERE i.indexrelid = to_regclass('workflow.tasks_claimable_idx');
  ok := coalesce(ok, false);
  detail := CASE WHEN ok THEN 'valid' ELSE 'missing or invalid' END;
  RETURN NEXT;

  FOREACH fn IN ARRAY ARRAY[
      'workflow.create_job(text,jsonb,integer,text,timestamp with time zone,text)',
      'workflow.add_tasks(text,integer,text,jsonb[],boolean,integer,integer,integer,timestamp with time zone,integer,interval)',
      'workflow.seal_stage(text,integer)',
      'workflow.claim_tasks(text,integer,text[],interval)',
      'workflow.claim_tasks_for_workers(text[],text[],interval)',
      'workflow.heartbeat_task(text,text,text,interval)',
      'workflow.complete_task_and_check_stage(text,text,integer,jsonb,boolean,text)',
      'workflow.complete_tasks(text[],text[],integer[],jsonb[],text)',
      'workflow.fail_task(text,text,text,boolean,interval,interval,text)',
      'workflow.cancel_job(text,text)',
      'workflow.advance_job_stage(text,integer,integer,jsonb)',
      'workflow.check_job_completion(text)',
      'workflow.job_progress(text)',
      'workflow.check_invariants(text)',
      'workflow.claim_stage_handovers(text,integer,interval)',
      'workflow.set_handover_lease(text,interval)',
      'workflow.set_job_owner(text,name)',
      'workflow.tolerate_dead_tasks(text,integer,integer)',
      'workflow.retry_task(text,text)',
      'workflow.retry_job(text)',
      'workflow.pause_task_type(text)',
      'workflow.resume_task_type(text)',
      'workflow.set_task_type_limit(text,integer)',
      'workflow.pause_job(text)',
      'workflow.resume_job(text)',
      'workflow.expire_timed_out_tasks(integer)',
      'workflow.purge_jobs(interval,text[],integer)',
      'workflow.report_progress(text,text,jsonb,text)'] LOOP
    check_name := 'function ' || fn;
    SELECT CASE WHEN p.oid IS NULL THEN 'missing'
                WHEN p.prosecdef AND NOT coalesce(p.proconfig::text[] @> ARRAY['search_path=pg_catalog, pg_temp'], false)
                  THEN 'SECURITY DEFINER without a safe search_path'
                ELSE 'present' END
      INTO detail
      FROM (SELECT to_regprocedure(fn) AS oid) r LEFT JOIN pg_proc p ON p.oid = r.oid;
    ok := detail = 'present';
    RETURN NEXT;
  END LOOP;

  -- The C++ library loads and its entry points resolve.
  check_name := 'native library';
  BEGIN
    v := workflow.version();
    PERFORM workflow.retry_delay(1, '1 second', '1 second', false);
    ok := true;
    detail := 'workflow.so ' || v;
  EXCEPTION WHEN OTHERS THEN
    ok := false;
    detail := SQLERRM;
  END;
  RETURN NEXT;
END;
$$;
COMMENT ON FUNCTION workflow.validate() IS
  'Self-check of the engine''s objects: tables, keys including job_id, the claim index, every API function '
  '(and its search_path when SECURITY DEFINER), the native library. One row per check.';

-- Stage bookkeeping matches the tasks. Used after a crash: every check must
-- be ok. job_id_param NULL checks every job. The violations, one row each
-- (check_invariants counts them). PL/pgSQL, not SQL: Citus plans no SQL
-- function that reads distributed tables, and it routes this query, its job
-- id bound, to the node holding the job.
CREATE OR REPLACE FUNCTION workflow._engine_invariant_violations(job_id_param text)
RETURNS TABLE(check_name text, what text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH t AS (
    SELECT * FROM workflow.tasks WHERE job_id_param IS NULL OR job_id = job_id_param
  ), s AS (
    SELECT * FROM workflow.stages WHERE job_id_param IS NULL OR job_id = job_id_param
  ), sl AS (
    SELECT * FROM workflow.stage_slots WHERE job_id_param IS NULL OR job_id = job_id_param
  ), slot_bad AS (
    -- A completion takes its unit from any counter of its stage (1.2), so
    -- the counters agree with the tasks per stage, not per slot.
    SELECT coalesce(c.job_id, u.job_id) || ':' || coalesce(c.stage, u.stage) || ' counters hold '
           || coalesce(c.remaining::text, 'nothing') || ' but ' || coalesce(u.unfinished, 0)
           || ' unfinished tasks' AS what
      FROM (SELECT job_id, stage, sum(remaining) AS remaining FROM sl GROUP BY job_id, stage) c
      FULL JOIN (SELECT job_id, stage,
                        count(*) FILTER (WHERE status <> 'completed' AND NOT dead_tolerated) AS unfinished
                   FROM t GROUP BY job_id, stage) u USING (job_id, stage)
     WHERE coalesce(c.remaining, 0) <> coalesce(u.unfinished, 0)
  ), stage_facts AS (
    SELECT s.*, coalesce(a.nonzero_slots, 0) AS nonzero_slots,
           coalesce(b.n_tasks, 0) AS n_tasks, coalesce(b.n_unfinished, 0) AS n_unfinished,
           coalesce(b.n_tolerated, 0) AS n_tolerated
      FROM s
      LEFT JOIN (SELECT job_id, stage, count(*) FILTER (WHERE remaining > 0) AS nonzero_slots
                   FROM sl GROUP BY job_id, stage) a USING (job_id, stage)
      LEFT JOIN (SELECT job_id, stage, count(*) AS n_tasks,
                        -- 1.4: a dead task its stage tolerates counts as finished
                        count(*) FILTER (WHERE status <> 'completed' AND NOT dead_tolerated) AS n_unfinished,
                        count(*) FILTER (WHERE dead_tolerated) AS n_tolerated
                   FROM t GROUP BY job_id, stage) b USING (job_id, stage)
  ), pending_bad AS (
    SELECT job_id || ':' || stage || ' pending_slots ' || pending_slots || ' but '
           || nonzero_slots || ' non-zero slots, sealed ' || sealed AS what
      FROM stage_facts WHERE pending_slots <> nonzero_slots + (NOT sealed)::int
  ), total_bad AS (
    SELECT job_id || ':' || stage || ' total_tasks ' || total_tasks || ' but ' || n_tasks
           || ' tasks' AS what
      FROM stage_facts WHERE total_tasks <> n_tasks
  ), completion_bad AS (
    SELECT job_id || ':' || stage || ' completed_at ' || coalesce(completed_at::text, 'null')
           || ', sealed ' || sealed || ', ' || n_unfinished || ' unfinished tasks' AS what
      FROM stage_facts
     WHERE (completed_at IS NOT NULL) <> (sealed AND n_unfinished = 0)
  ), completer_bad AS (
    SELECT f.job_id || ':' || f.stage || ' completed by '
           || coalesce(f.completed_by_task, 'nobody') || ' / seal ' || f.completed_by_seal AS what
      FROM stage_facts f
      LEFT JOIN t ct ON ct.job_id = f.job_id AND ct.id = f.completed_by_task
     WHERE (f.completed_at IS NOT NULL)
             <> ((f.completed_by_task IS NOT NULL) <> f.completed_by_seal)
        OR (f.completed_by_task IS NOT NULL
            AND (ct.id IS NULL OR ct.stage <> f.stage OR (ct.status <> 'completed' AND NOT ct.dead_tolerated)))
  ), orphan_bad AS (
    SELECT t.id AS what FROM t
     WHERE NOT EXISTS (SELECT 1 FROM s WHERE s.job_id = t.job_id AND s.stage = t.stage)
  ), task_bad AS (
    SELECT t.id AS what FROM t JOIN s USING (job_id, stage)
     WHERE t.id <> t.job_id || ':' || t.stage || ':' || t.task_index
        OR t.slot <> t.task_index % s.slot_count
        OR (t.status = 'completed') <> (t.completed_at IS NOT NULL)
        OR (t.dead_tolerated AND t.status <> 'failed')
  ), tolerated_bad AS (
    SELECT job_id || ':' || stage || ' dead_tasks ' || dead_tasks || ' but ' || n_tolerated
           || ' tolerated dead tasks, at most ' || max_dead_tasks AS what
      FROM stage_facts WHERE dead_tasks <> n_tolerated OR dead_tasks > max_dead_tasks
  ), job_bad AS (
    SELECT j.id AS what FROM workflow.jobs j
     WHERE (job_id_param IS NULL OR j.id = job_id_param)
       AND j.status = 'completed'
       AND NOT EXISTS (SELECT 1 FROM s WHERE s.job_id = j.id AND s.stage = j.total_stages
                          AND s.completed_at IS NOT NULL)
  ), stuck_bad AS (
    -- The job's current stage is complete and nobody holds its hand-over:
    -- nothing moves the job on until a worker calls claim_stage_handovers.
    SELECT j.id || ' at stage ' || j.stage || ' of ' || j.total_stages || ', complete since '
           || s.completed_at || ', hand-over lease ran out at '
           || coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
           || coalesce(' (last claimed by ' || s.handover_by || ')', '') AS what
      FROM workflow.jobs j JOIN s ON s.job_id = j.id AND s.stage = j.stage
     WHERE (job_id_param IS NULL OR j.id = job_id_param)
       AND j.status IN ('pending', 'running')
       AND s.completed_at IS NOT NULL
       AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now()
  ), checks AS (  -- (no column list: Citus' deparser drops it)
    SELECT 'counters = unfinished tasks of the stage'::text AS check_name, what FROM slot_bad
    UNION ALL SELECT 'pending_slots = non-zero slots + unsealed', what FROM pending_bad
    UNION ALL SELECT 'total_tasks = tasks of the stage', what FROM total_bad
    UNION ALL SELECT 'complete = sealed and every task completed', what FROM completion_bad
    UNION ALL SELECT 'exactly one completer, a completed task of the stage', what FROM completer_bad
    UNION ALL SELECT 'every task has its stage row', what FROM orphan_bad
    UNION ALL SELECT 'task id, slot and completed_at consistent', what FROM task_bad
    UNION ALL SELECT 'completed job has its last stage complete', what FROM job_bad
    UNION ALL SELECT 'stuck jobs', what FROM stuck_bad
    UNION ALL SELECT 'tolerated dead tasks counted', what FROM tolerated_bad
  )
  SELECT c.check_name, c.what FROM checks c;
END;
$$;
COMMENT ON FUNCTION workflow._engine_invariant_violations(text) IS
  'Internal (check_invariants): one row per violation of the fan-in bookkeeping, for one job or all (NULL).';
REVOKE EXECUTE ON FUNCTION workflow._engine_invariant_violations(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.check_invariants(job_id_param text DEFAULT NULL)
RETURNS TABLE(check_name text, ok boolean, detail text)
LANGUAGE plpgsql STABLE
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  names text[] := '{}';
  whats text[] := '{}';
  job text;
  job_names text[];
  job_whats text[];
BEGIN
  -- One job: a valid id of a job or of rows left without their job (which
  -- the checks report); an unknown one is P0002, not "all ok".
  IF job_id_param IS NOT NULL THEN
    PERFORM workflow._engine_check_text('job_id', job_id_param);
    IF NOT EXISTS (SELECT 1 FROM workflow.jobs x WHERE x.id = job_id_param)
       AND NOT EXISTS (SELECT 1 FROM workflow.stages x WHERE x.job_id = job_id_param)
       AND NOT EXISTS (SELECT 1 FROM workflow.stage_slots x WHERE x.job_id = job_id_param)
       AND NOT EXISTS (SELECT 1 FROM workflow.tasks x WHERE x.job_id = job_id_param) THEN
      RAISE EXCEPTION 'job % not found', quote_literal(job_id_param) USING ERRCODE = 'P0002';
    END IF;
  END IF;
  IF job_id_param IS NULL AND workflow._engine_citus_table('workflow.tasks') THEN
    -- On a Citus cluster job by job (every id that has a row anywhere): one
    -- job's query is routed to the node holding it.
    FOR job IN SELECT id FROM workflow.jobs UNION SELECT s.job_id FROM workflow.stages s
               UNION SELECT l.job_id FROM workflow.stage_slots l UNION SELECT k.job_id FROM workflow.tasks k
    LOOP
      SELECT coalesce(array_agg(v.check_name), '{}'), coalesce(array_agg(v.what), '{}')
        INTO job_names, job_whats FROM workflow._engine_invariant_violations(job) v;
      names := names || job_names;
      whats := whats || job_whats;
    END LOOP;
  ELSE
    SELECT coalesce(array_agg(v.check_name), '{}'), coalesce(array_agg(v.what), '{}')
      INTO names, whats FROM workflow._engine_invariant_violations(job_id_param) v;
  END IF;
  RETURN QUERY
  WITH checks AS (
    SELECT * FROM unnest(names, whats) AS c(check_name, what)
  ), listed(check_name, ord) AS (
    VALUES ('counters = unfinished tasks of the stage', 1),
           ('pending_slots = non-zero slots + unsealed', 2),
           ('total_tasks = tasks of the stage', 3),
           ('complete = sealed and every task completed', 4),
           ('exactly one completer, a completed task of the stage', 5),
           ('every task has its stage row', 6),
           ('task id, slot and completed_at consistent', 7),
           ('completed job has its last stage complete', 8),
           ('stuck jobs', 9),
           ('tolerated dead tasks counted', 10)
  )
  SELECT n.check_name, count(c.what) = 0,
         CASE WHEN count(c.what) = 0 THEN 'ok'
              ELSE count(c.what) || ' violations, e.g. '
                   || array_to_string((array_agg(c.what ORDER BY c.what)
                                       FILTER (WHERE c.what IS NOT NULL))[1:5], '; ') END
    FROM listed n LEFT JOIN checks c USING (check_name)
   GROUP BY n.check_name, n.ord
   ORDER BY n.ord;
END;
$$;
COMMENT ON FUNCTION workflow.check_invariants(text) IS
  'Checks that the fan-in bookkeeping matches the tasks (for one job, or all when NULL): each stage''s counters, '
  'pending_slots, total_tasks, completion state, the single completer, task ids and slots; and stuck jobs: a '
  'pending/running job whose current stage is complete and whose hand-over lease has run out (nobody is '
  'advancing it: a worker must call claim_stage_handovers). One row per check; all ok after any crash once '
  'the workers have caught up. P0002 for a job id with no row anywhere, 22023 for an empty or overlong one.';
-- Job -> Stage -> Task engine: hand-over of a stage that is complete but
-- whose job was never advanced past it (the completer died or lost its
-- connection between its completion and its advance_job_stage).
--
-- The completer of a stage holds an implicit hand-over lease from its
-- completion (stages.completed_at + jobs.handover_lease, default 1 minute).
-- After that, claim_stage_handovers gives the stage to one worker for
-- `lease` (stages.handover_by, handover_expires_at), like an expired task;
-- when that lease runs out too, the next claimer gets it. A job advanced into
-- a stage that is complete already makes it claimable at once. The claimer
-- does what a stage_complete = true answer asks for: fan out stage + 1,
-- advance_job_stage (compare-and-set: exactly one caller moves the job),
-- check_job_completion. The job always moves on, exactly once.

-- _engine_check_lease (11_engine_util.sql) judges leases by the timestamps they give.
REVOKE EXECUTE ON FUNCTION workflow._engine_check_lease(text, interval, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.claim_stage_handovers(worker text, max_stages int DEFAULT 1,
                                               lease interval DEFAULT '5 minutes')
RETURNS TABLE(job_id text, stage int)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
ROWS 1
AS $$
BEGIN
  PERFORM workflow._engine_check_text('worker', worker);
  PERFORM workflow._engine_check_not_null('max_stages', max_stages);
  IF max_stages NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'max_stages % is out of range 1..1000', max_stages USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_lease('lease', lease);

  IF workflow._engine_citus_table('workflow.stages') THEN  -- a Citus cluster (19_engine_citus.sql)
    RETURN QUERY SELECT * FROM workflow._engine_claim_handovers_distributed(worker, max_stages, lease);
    RETURN;
  END IF;

  -- One statement over the hand-over index (complete stages the job has not
  -- left: few), of pending/running jobs that are AT that stage, whose
  -- completer's or last claimer's lease has run out, oldest first. SKIP
  -- LOCKED: concurrent claimers never wait for or get the same stage; a
  -- stage another claimer (or an advance) changed meanwhile is re-checked.
  RETURN QUERY
  WITH picked AS (
    SELECT s.job_id, s.stage
      FROM workflow.stages s
      JOIN workflow.jobs j ON j.id = s.job_id
     WHERE s.completed_at IS NOT NULL AND s.left_at IS NULL
       AND j.stage = s.stage AND j.status IN ('pending', 'running')
       AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now()
     ORDER BY coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
     LIMIT max_stages
       FOR UPDATE OF s SKIP LOCKED
  )
  UPDATE workflow.stages s
     SET handover_by = worker, handover_expires_at = now() + lease
    FROM picked
   WHERE s.job_id = picked.job_id AND s.stage = picked.stage
  RETURNING s.job_id, s.stage;
END;
$$;
COMMENT ON FUNCTION workflow.claim_stage_handovers(text, int, interval) IS
  'Claims for worker, for lease ((0, 7 days]), up to max_stages (1..1000) stages that are complete, whose job is '
  'pending/running at that stage, and whose hand-over lease has run out: the completer''s (completed_at + the '
  'job''s handover_lease, default 1 minute; at once when the job was advanced into a stage already complete) '
  'or the previous claimer''s. Treat each row as a stage_complete = true answer: fan out stage + 1 (if any), '
  'advance_job_stage(job_id, stage, stage + 1, ...), check_job_completion. One statement, FOR UPDATE SKIP LOCKED.';
REVOKE EXECUTE ON FUNCTION workflow.claim_stage_handovers(text, int, interval) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.set_handover_lease(job_id text, lease interval)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job workflow.jobs;
BEGIN
  PERFORM workflow._engine_check_lease('lease', lease, interval '1 day');
  job := workflow._engine_job(set_handover_lease.job_id, 'update');  -- 22004/22023/P0002
  PERFORM workflow._engine_check_owner(job, 'set the hand-over lease of');
  IF job.status NOT IN ('pending', 'running') THEN  -- an ended job hands nothing over
    RAISE EXCEPTION 'job % is %', quote_literal(job.id), job.status USING ERRCODE = '55000';
  END IF;
  UPDATE workflow.jobs j SET handover_lease = lease, updated_at = now()
   WHERE j.id = set_handover_lease.job_id;
END;
$$;
COMMENT ON FUNCTION workflow.set_handover_lease(text, interval) IS
  'Sets how long the completer of each stage of the job may take, from its completion, to advance the job before '
  'the stage can be claimed by claim_stage_handovers (default 1 minute; (0, 1 day]). P0002 when the job is unknown; 55000 when it has ended; '
  '42501 unless the session user owns the job or is a member of workflow_admin.';
REVOKE EXECUTE ON FUNCTION workflow.set_handover_lease(text, interval) FROM PUBLIC;
-- Job -> Stage -> Task engine: who may call and read what (1.1). New in 1.1
-- and safe on a 1.0 database once jobs.owner exists: the 1.0 -> 1.1 upgrade
-- runs this file as it is (src/sql/upgrade/1.0--1.1.list).
--
-- Functions: nothing of the engine is executable by PUBLIC but the pure
-- ones (version, retry_delay) and validate (it reads only the catalog).
-- Each SECURITY DEFINER function is granted to the roles that call it and
-- checks the job's owner itself (_engine_check_owner, _engine_check_fan_out):
--   workflow_producer  create_job; on its own jobs: add_tasks, seal_stage,
--                      cancel_job, job_progress, advance_job_stage,
--                      check_job_completion, set_handover_lease
--   workflow_worker    on any job: claim_tasks, heartbeat_task,
--                      complete_task_and_check_stage, complete_tasks,
--                      fail_task, claim_stage_handovers, advance_job_stage,
--                      check_job_completion, job_progress; add_tasks and
--                      seal_stage into the next stage (2 .. job stage + 1)
--   workflow_admin     all of them on any job, check_invariants, set_job_owner
-- Tables: SELECT only (every write goes through the functions), filtered by
-- row-level security: a producer reads its own jobs and their stages and
-- tasks; workers and admins read every row.
-- 1.4: create_job and add_tasks (new signatures) and the functions of the
-- 4x_engine_*.sql files are granted in their own files. The functions are owned by the
-- tables' owner, which RLS does not apply to (no FORCE): the claim and
-- complete paths pay nothing for the policies.

GRANT USAGE ON SCHEMA workflow
  TO workflow_producer, workflow_worker, workflow_survey, workflow_auditor, workflow_admin;

-- Internal helpers: called by the SECURITY DEFINER functions (as their owner) only.
REVOKE EXECUTE ON FUNCTION
  workflow._engine_check_text(text, text, int),
  workflow._engine_check_not_null(text, anyelement),
  workflow._engine_check_lease(text, interval, interval),
  workflow._engine_job(text, text),
  workflow._engine_check_stage(workflow.jobs, int),
  workflow._engine_notify_stage_complete(text, int),
  workflow._engine_notify_job_complete(text, text),
  workflow._engine_end_job(text, text, text),
  workflow._is_admin(),
  workflow._engine_check_owner(workflow.jobs, text, boolean),
  workflow._engine_check_fan_out(workflow.jobs, int, text),
  workflow._engine_analyze_new_tasks_table()
  FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
  workflow.cancel_job(text, text),
  workflow.seal_stage(text, int),
  workflow.job_progress(text),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.set_handover_lease(text, interval),
  workflow.claim_tasks(text, int, text[], interval),
  workflow.heartbeat_task(text, text, text, interval),
  workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text),
  workflow.complete_tasks(text[], text[], int[], jsonb[], text),
  workflow.fail_task(text, text, text, boolean, interval, interval, text),
  workflow.claim_stage_handovers(text, int, interval),
  workflow.check_invariants(text),
  workflow.set_job_owner(text, name)
  FROM PUBLIC;

-- Producers (on their own jobs; the functions check the owner).
GRANT EXECUTE ON FUNCTION
  workflow.cancel_job(text, text),
  workflow.seal_stage(text, int),
  workflow.job_progress(text),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.set_handover_lease(text, interval)
  TO workflow_producer;

-- Workers (on any job; fan-out into the next stage only).
GRANT EXECUTE ON FUNCTION
  workflow.claim_tasks(text, int, text[], interval),
  workflow.heartbeat_task(text, text, text, interval),
  workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text),
  workflow.complete_tasks(text[], text[], int[], jsonb[], text),
  workflow.fail_task(text, text, text, boolean, interval, interval, text),
  workflow.claim_stage_handovers(text, int, interval),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.job_progress(text),
  workflow.seal_stage(text, int)
  TO workflow_worker;

-- Administrators: every engine function (also through producer and worker).
GRANT EXECUTE ON FUNCTION
  workflow.cancel_job(text, text),
  workflow.seal_stage(text, int),
  workflow.job_progress(text),
  workflow.advance_job_stage(text, int, int, jsonb),
  workflow.check_job_completion(text),
  workflow.set_handover_lease(text, interval),
  workflow.claim_tasks(text, int, text[], interval),
  workflow.heartbeat_task(text, text, text, interval),
  workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text),
  workflow.complete_tasks(text[], text[], int[], jsonb[], text),
  workflow.fail_task(text, text, text, boolean, interval, interval, text),
  workflow.claim_stage_handovers(text, int, interval),
  workflow.check_invariants(text),
  workflow.set_job_owner(text, name)
  TO workflow_admin;

-- Tables: read-only, row-level security by owner.
REVOKE ALL ON workflow.jobs, workflow.stages, workflow.stage_slots, workflow.tasks FROM PUBLIC;
GRANT SELECT ON workflow.jobs, workflow.stages, workflow.tasks
  TO workflow_producer, workflow_worker, workflow_admin;
GRANT SELECT ON workflow.stage_slots TO workflow_admin;

ALTER TABLE workflow.jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow.stages ENABLE ROW LEVEL SECURITY;
ALTER TABLE workflow.tasks ENABLE ROW LEVEL SECURITY;

CREATE POLICY jobs_owner_reads ON workflow.jobs FOR SELECT TO workflow_producer
  USING (owner = session_user);
CREATE POLICY jobs_all_reads ON workflow.jobs FOR SELECT TO workflow_worker, workflow_admin
  USING (true);
CREATE POLICY stages_owner_reads ON workflow.stages FOR SELECT TO workflow_producer
  USING (EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = stages.job_id AND j.owner = session_user));
CREATE POLICY stages_all_reads ON workflow.stages FOR SELECT TO workflow_worker, workflow_admin
  USING (true);
CREATE POLICY tasks_owner_reads ON workflow.tasks FOR SELECT TO workflow_producer
  USING (EXISTS (SELECT 1 FROM workflow.jobs j WHERE j.id = tasks.job_id AND j.owner = session_user));
CREATE POLICY tasks_all_reads ON workflow.tasks FOR SELECT TO workflow_worker, workflow_admin
  USING (true);
-- Job -> Stage -> Task engine on a Citus cluster (1.3): workflow.distribute()
-- shards jobs, stages, stage_slots and tasks by job id, colocated, and
-- registers the per-job functions for delegation, so a call on one job runs
-- whole on the node that holds that job. Claiming across jobs is the one
-- call that is not per job: a multi-shard SELECT ... FOR UPDATE is not
-- supported by Citus, so claim_tasks and claim_stage_handovers on a cluster
-- first read, without locks and over every shard, the jobs of the oldest
-- runnable work, then claim in each of those jobs with router statements
-- (FOR UPDATE SKIP LOCKED on the node holding it). README "Scaling out with
-- Citus". Survey steps and the audit log stay local to the coordinator.

-- Whether a table is hash-distributed by Citus here (workflow.tasks:
-- distribute() was run). pg_dist_partition exists only with Citus, hence the dynamic SQL.
CREATE OR REPLACE FUNCTION workflow._engine_citus_table(tab text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  found boolean;
BEGIN
  IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
    RETURN false;
  END IF;
  -- Hash-distributed (partmethod 'h'): a Citus-managed local table ('n') is
  -- a plain table on this node.
  EXECUTE 'SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition '
          'WHERE logicalrelid = $1::pg_catalog.regclass AND partmethod = ''h'')'
    INTO found USING tab;
  RETURN found;
END;
$$;
COMMENT ON FUNCTION workflow._engine_citus_table(text) IS
  'Internal: true when the named table is hash-distributed by Citus.';

-- One job's share of a claim: router statements only (every one filters on
-- the job id), so on a cluster they run on the node that holds the job. The
-- job's stage is read first: it only grows, so a task of a later stage than
-- the one read is never claimed too early.
CREATE OR REPLACE FUNCTION workflow._engine_claim_job_tasks(job text, worker text, max_tasks int,
                                                           task_types text[], lease interval,
                                                           excluded text[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job_stage int;
  picked text[] := '{}';
  task_id text;
  now_epoch double precision := extract(epoch FROM now());
BEGIN
  SELECT j.stage INTO job_stage FROM workflow.jobs j
   WHERE j.id = job AND j.status IN ('pending', 'running') AND j.paused_at IS NULL;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  FOR task_id IN
    SELECT t.id FROM workflow.tasks t
     WHERE t.job_id = job AND t.status IN ('queued', 'claimed') AND t.stage <= job_stage
       AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
       AND (task_types IS NULL OR t.task_type = ANY (task_types))
       AND t.task_type <> ALL (excluded)
       AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
     ORDER BY t.priority DESC, (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
     LIMIT max_tasks
       FOR UPDATE SKIP LOCKED
  LOOP
    picked := picked || task_id;
  END LOOP;
  IF cardinality(picked) = 0 THEN
    RETURN;
  END IF;
  RETURN QUERY
  UPDATE workflow.tasks t
     SET status = 'claimed', claimed_by = worker, heartbeat = now(),
         lease_expires_at = now() + lease, updated_at = now(),
         -- now() + t.timeout, in IMMUTABLE terms: Citus refuses a STABLE
         -- operator on a column in a distributed UPDATE (a day counts 24 hours)
         deadline_at = pg_catalog.to_timestamp(now_epoch + extract(epoch FROM t.timeout))
   WHERE t.job_id = job AND t.id = ANY (picked) AND t.status IN ('queued', 'claimed')
  RETURNING t.*;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_job_tasks(text, text, int, text[], interval, text[]) IS
  'Internal (claim_tasks on a Citus cluster): claims up to max_tasks runnable tasks of one job with router '
  'statements, FOR UPDATE SKIP LOCKED, highest priority first.';

-- The jobs of the best runnable tasks (of jobs running at or past the
-- task's stage, not paused), over every shard, and a claim in each of them.
CREATE OR REPLACE FUNCTION workflow._engine_claim_jobs_distributed(worker text, max_tasks int,
                                                                  task_types text[], lease interval,
                                                                  excluded text[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  job text;
  claimed int := 0;
  n int;
BEGIN
  -- Each shard reads its claim index, no lock; best first, the same order
  -- as on one node, so no node's jobs wait behind another's. More tasks than
  -- asked for are read, so that a job whose tasks other claimers hold (SKIP
  -- LOCKED) leaves others to try.
  FOR job IN
    SELECT c.job_id FROM (
      SELECT t.job_id, t.priority,
             (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) AS due
        FROM workflow.tasks t
        JOIN workflow.jobs j ON j.id = t.job_id
       WHERE t.status IN ('queued', 'claimed')
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND t.task_type <> ALL (excluded)
         AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
         AND j.status IN ('pending', 'running') AND j.stage >= t.stage AND j.paused_at IS NULL
       ORDER BY t.priority DESC, due
       LIMIT 4 * max_tasks + 16) c
     GROUP BY c.job_id
     ORDER BY max(c.priority) DESC, min(c.due)
  LOOP
    RETURN QUERY SELECT * FROM workflow._engine_claim_job_tasks(job, worker, max_tasks - claimed,
                                                                task_types, lease, excluded);
    GET DIAGNOSTICS n = ROW_COUNT;
    claimed := claimed + n;
    EXIT WHEN claimed >= max_tasks;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_jobs_distributed(text, int, text[], interval, text[]) IS
  'Internal (claim_tasks on a Citus cluster): the jobs of the best runnable tasks read over every shard '
  'without locks, then each job''s tasks claimed with router statements (_engine_claim_job_tasks).';

-- claim_tasks on a cluster (arguments checked by claim_tasks). Types with a
-- concurrency limit in reach first, one at a time in name order: its
-- settings row (local to the coordinator) locked, its claimed tasks counted
-- over every shard, at most the room left claimed. Then the other types.
CREATE OR REPLACE FUNCTION workflow._engine_claim_tasks_distributed(worker text, max_tasks int,
                                                                   task_types text[], lease interval,
                                                                   excluded text[], limited text[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
-- Not claim_tasks' generic plans: Citus plans these statements with their
-- parameters' values (it cannot distribute a generic plan of them).
SET plan_cache_mode = auto
AS $$
DECLARE
  typ text;
  cap int;
  room int;
  claimed int := 0;
  n int;
BEGIN
  FOR typ IN SELECT u.typ FROM unnest(limited) AS u(typ)
              WHERE task_types IS NULL OR u.typ = ANY (task_types) ORDER BY 1 LOOP
    EXIT WHEN claimed >= max_tasks;
    SELECT s.max_claimed INTO cap FROM workflow.task_type_settings s
     WHERE s.task_type = typ AND s.paused_at IS NULL FOR UPDATE;
    CONTINUE WHEN NOT FOUND OR cap IS NULL;
    room := cap - (SELECT count(*) FROM workflow.tasks x WHERE x.task_type = typ AND x.status = 'claimed')::int;
    CONTINUE WHEN room <= 0;
    RETURN QUERY SELECT * FROM workflow._engine_claim_jobs_distributed(worker, least(room, max_tasks - claimed),
                                                                       ARRAY[typ], lease, excluded);
    GET DIAGNOSTICS n = ROW_COUNT;
    claimed := claimed + n;
  END LOOP;
  IF claimed < max_tasks THEN
    RETURN QUERY SELECT * FROM workflow._engine_claim_jobs_distributed(worker, max_tasks - claimed, task_types,
                                                                       lease, excluded || limited);
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_tasks_distributed(text, int, text[], interval, text[], text[]) IS
  'Internal (claim_tasks on a Citus cluster): limited task types first, each under its settings row''s lock and '
  'within its room, then the others (_engine_claim_jobs_distributed). A lease that expired counts against its '
  'type''s room here.';

-- claim_stage_handovers on a cluster (arguments checked by the caller): the
-- candidate stages read over every shard without locks, then each one
-- locked (SKIP LOCKED) and checked again on the node that holds it.
CREATE OR REPLACE FUNCTION workflow._engine_claim_handovers_distributed(worker text, max_stages int,
                                                                       lease interval)
RETURNS TABLE(job_id text, stage int)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  c record;
  claimed int := 0;
BEGIN
  FOR c IN
    SELECT s.job_id AS job, s.stage AS stage_no
      FROM workflow.stages s
      JOIN workflow.jobs j ON j.id = s.job_id
     WHERE s.completed_at IS NOT NULL AND s.left_at IS NULL
       AND j.stage = s.stage AND j.status IN ('pending', 'running')
       AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now()
     ORDER BY coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
     LIMIT max_stages
  LOOP
    PERFORM 1 FROM workflow.stages s
      WHERE s.job_id = c.job AND s.stage = c.stage_no
        AND s.completed_at IS NOT NULL AND s.left_at IS NULL
        FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    -- Checked again under the lock: the job is still at this stage and the
    -- lease (the completer's or the last claimer's) has run out.
    PERFORM 1 FROM workflow.stages s JOIN workflow.jobs j ON j.id = s.job_id
      WHERE s.job_id = c.job AND j.id = c.job AND s.stage = c.stage_no
        AND s.completed_at IS NOT NULL AND s.left_at IS NULL
        AND j.stage = s.stage AND j.status IN ('pending', 'running')
        AND coalesce(s.handover_expires_at, s.completed_at + j.handover_lease) <= now();
    CONTINUE WHEN NOT FOUND;
    UPDATE workflow.stages s SET handover_by = worker, handover_expires_at = now() + lease
     WHERE s.job_id = c.job AND s.stage = c.stage_no;
    job_id := c.job;
    stage := c.stage_no;
    RETURN NEXT;
    claimed := claimed + 1;
    EXIT WHEN claimed >= max_stages;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_handovers_distributed(text, int, interval) IS
  'Internal (claim_stage_handovers on a Citus cluster): candidate stages read over every shard without '
  'locks, each then locked (SKIP LOCKED) and checked again with router statements.';

CREATE OR REPLACE FUNCTION workflow.distribute(shard_count int DEFAULT NULL)
RETURNS TABLE(object text, distributed_as text)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  t record;
  f record;
  is_coordinator boolean;
  moved text[] := '{}';  -- tables distributed by this call (their shells' rows go)
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'citus') THEN
    RAISE EXCEPTION 'Citus is not installed in this database' USING ERRCODE = '55000',
      HINT = 'Load citus (shared_preload_libraries), CREATE EXTENSION citus and add the worker nodes first.';
  END IF;
  EXECUTE 'SELECT pg_catalog.citus_is_coordinator()' INTO is_coordinator;
  IF NOT is_coordinator THEN
    RAISE EXCEPTION 'workflow.distribute() runs on the Citus coordinator' USING ERRCODE = '55000';
  END IF;
  IF shard_count IS NOT NULL AND shard_count NOT BETWEEN 1 AND 64000 THEN
    RAISE EXCEPTION 'shard_count % is out of range 1..64000', shard_count USING ERRCODE = '22023';
  END IF;

  -- Citus refuses subqueries in the policies of a distributed table: a
  -- producer's read of its own stages and tasks (a subquery on jobs) goes.
  -- Producers then read no stage or task row directly on a cluster (the
  -- remaining policies are for workers and admins); job_progress serves them.
  DROP POLICY IF EXISTS stages_owner_reads ON workflow.stages;
  DROP POLICY IF EXISTS tasks_owner_reads ON workflow.tasks;
  -- Nor triggers (1.4: the cascade of a direct DELETE FROM workflow.jobs,
  -- 43_engine_retention.sql): on a cluster a job's rows are deleted by job id.
  -- (Only while it is there: Citus refuses even DROP TRIGGER IF EXISTS on a
  -- table it distributed.)
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
              WHERE g.tgrelid = 'workflow.jobs'::pg_catalog.regclass AND g.tgname = 'jobs_delete_cascade') THEN
    DROP TRIGGER jobs_delete_cascade ON workflow.jobs;
  END IF;

  -- The tables, by job id, colocated with jobs (stages' foreign key to jobs
  -- needs it); jobs first. A table distributed already is left as it is.
  FOR t IN
    SELECT * FROM (VALUES (1, 'workflow.jobs', 'id'), (2, 'workflow.stages', 'job_id'),
                          (3, 'workflow.stage_slots', 'job_id'), (4, 'workflow.tasks', 'job_id')) v(ord, tab, col)
     ORDER BY ord
  LOOP
    IF workflow._engine_citus_table(t.tab) THEN
      object := t.tab; distributed_as := 'distributed already'; RETURN NEXT;
      CONTINUE;
    END IF;
    IF t.ord = 1 THEN
      EXECUTE format('SELECT pg_catalog.create_distributed_table(%L, %L, colocate_with => %L%s)',
                     t.tab, t.col, 'none',
                     CASE WHEN shard_count IS NOT NULL THEN ', shard_count => ' || shard_count ELSE '' END);
    ELSE
      EXECUTE format('SELECT pg_catalog.create_distributed_table(%L, %L, colocate_with => %L)',
                     t.tab, t.col, 'workflow.jobs');
    END IF;
    moved := moved || t.tab;
    object := t.tab; distributed_as := 'distributed by ' || t.col; RETURN NEXT;
  END LOOP;
  -- Rows that were there were copied into the shards; the shells' copies go,
  -- once no local table references them (the foreign key stages -> jobs).
  FOR t IN SELECT v.tab FROM unnest(ARRAY['workflow.tasks', 'workflow.stage_slots', 'workflow.stages',
                                         'workflow.jobs']) AS v(tab)
            WHERE v.tab = ANY (moved)
  LOOP
    EXECUTE format('SELECT pg_catalog.truncate_local_data_after_distributing_table(%L)', t.tab);
  END LOOP;

  -- The per-job functions: delegated whole to the node holding the job.
  FOR f IN
    SELECT * FROM (VALUES
      ('workflow.add_tasks(text, int, text, jsonb[], boolean, int, int, int, timestamptz, int, interval)', 'job_id'),
      ('workflow.seal_stage(text, int)', 'job_id'),
      ('workflow.cancel_job(text, text)', 'job_id'),
      ('workflow.advance_job_stage(text, int, int, jsonb)', 'job_id_param'),
      ('workflow.check_job_completion(text)', 'job_id_param'),
      ('workflow.complete_task_and_check_stage(text, text, int, jsonb, boolean, text)', 'job_id_param'),
      ('workflow.heartbeat_task(text, text, text, interval)', 'job_id'),
      ('workflow.fail_task(text, text, text, boolean, interval, interval, text)', 'job_id'),
      ('workflow.job_progress(text)', 'job_id'),
      ('workflow.set_handover_lease(text, interval)', 'job_id'),
      ('workflow.set_job_owner(text, name)', 'job_id')) v(fn, arg)
  LOOP
    EXECUTE format('SELECT pg_catalog.create_distributed_function(%L::regprocedure, %L, '
                   'colocate_with => %L, force_delegation => true)', f.fn, f.arg, 'workflow.jobs');
    object := f.fn; distributed_as := 'delegated by ' || f.arg; RETURN NEXT;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.distribute(int) IS
  'On a Citus coordinator: distributes workflow.jobs, stages, stage_slots and tasks by job id, colocated '
  '(shard_count: Citus'' default when NULL), copying existing rows into the shards, and registers the per-job '
  'functions (add_tasks, seal_stage, cancel_job, advance_job_stage, check_job_completion, '
  'complete_task_and_check_stage, heartbeat_task, fail_task, job_progress, set_handover_lease, set_job_owner) '
  'for delegation to the node holding the job. Idempotent (a table distributed already is left alone). 55000 '
  'without Citus or off the coordinator. Only a superuser (the owner of the tables) can run it. '
  'One row per object. Survey steps and the audit log stay on the coordinator. Drops the producers'' read '
  'policies of stages and tasks (Citus refuses their subqueries): on a cluster producers read them through '
  'job_progress only.';
REVOKE EXECUTE ON FUNCTION workflow.distribute(int) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
  workflow._engine_citus_table(text),
  workflow._engine_claim_job_tasks(text, text, int, text[], interval, text[]),
  workflow._engine_claim_jobs_distributed(text, int, text[], interval, text[]),
  workflow._engine_claim_tasks_distributed(text, int, text[], interval, text[], text[]),
  workflow._engine_claim_handovers_distributed(text, int, interval)
  FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Audit history: the log (written by the native trigger workflow.audit_trigger)
-- ---------------------------------------------------------------------------

-- One row per audited row change (or TRUNCATE). The native trigger fills id
-- in the order the changes are logged, so ORDER BY id is the order of changes
-- to a row (a later change to a row waits for the earlier one's commit, then
-- takes a larger id). Each trigger call takes one block of 512 ids with one
-- nextval (INCREMENT BY 512; kIdBlock in src/extension/audit_writer.hpp) and
-- numbers its rows within it: ids are unique and ordered, not dense.
-- The audited tables, by name: the log refers to a table by this registry's
-- id, which survives pg_dump/restore (the rows are dumped) and renames (an
-- event trigger keeps the names in step, src/sql/21_audit_triggers.sql). relid
-- is the table's OID in this database: remapped by name when the registry is
-- restored, NULL once the table is dropped. Excluded columns are kept both as
-- attribute numbers of the table (what the trigger reads: renaming a column
-- does not change it) and as names (what a restore maps back to numbers).
CREATE SEQUENCE workflow.audit_tables_id_seq AS integer;
CREATE TABLE workflow.audit_tables (
  id              integer  PRIMARY KEY DEFAULT nextval('workflow.audit_tables_id_seq'),
  schema_name     text     NOT NULL,
  table_name      text     NOT NULL,
  relid           oid,
  audited         boolean  NOT NULL DEFAULT true,
  statement_level boolean  NOT NULL DEFAULT true,
  exclude_columns text[]   NOT NULL DEFAULT '{}',
  exclude_attnums int2[]   NOT NULL DEFAULT '{}',
  -- Set when the registry of an extension table is restored: the restore's
  -- own load of the table's rows (whose history came back with the log) is
  -- not logged again. Cleared by the table's first UPDATE, DELETE or TRUNCATE.
  restore_pending boolean  NOT NULL DEFAULT false
);
ALTER SEQUENCE workflow.audit_tables_id_seq OWNED BY workflow.audit_tables.id;
CREATE INDEX audit_tables_relid_idx ON workflow.audit_tables (relid);
CREATE INDEX audit_tables_name_idx ON workflow.audit_tables (schema_name, table_name);
COMMENT ON TABLE workflow.audit_tables IS
  'Tables audited with workflow.enable_audit (also after disable_audit, for their history): id (workflow.audit_log.table_id), current schema and table name, OID in this database, mode, excluded columns';
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_tables', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_tables_id_seq', '');
-- Readable by all (the log's row-level security reads it); written only by
-- enable_audit, disable_audit and the event triggers (SECURITY DEFINER: see
-- src/sql/23_audit_privileges.sql for who may call them).
REVOKE ALL ON workflow.audit_tables FROM PUBLIC;
REVOKE ALL ON SEQUENCE workflow.audit_tables_id_seq FROM PUBLIC;
GRANT SELECT ON workflow.audit_tables TO PUBLIC;
ALTER TABLE workflow.audit_tables ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_tables_readable ON workflow.audit_tables FOR SELECT USING (true);

CREATE SEQUENCE workflow.audit_log_id_seq INCREMENT BY 512;

CREATE TABLE workflow.audit_log (
  -- Unique by construction (only the trigger writes, each row takes its own
  -- nextval); no unique index, as every index is paid on every audited row.
  id          bigint      NOT NULL DEFAULT nextval('workflow.audit_log_id_seq'),
  -- The table (workflow.audit_tables.id): survives restores and renames.
  table_id    integer     NOT NULL,
  -- Its names when the change was logged (partitions log their root's).
  schema_name text        NOT NULL,
  table_name  text        NOT NULL,
  operation   text        NOT NULL CHECK (operation IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')),
  row_key     jsonb,
  old_values  jsonb,
  new_values  jsonb,
  actor       text        NOT NULL,
  txid        bigint      NOT NULL,
  changed_at  timestamptz NOT NULL,
  -- Who made the change, as the server knows it (beside the claimed actor):
  -- NULL in rows logged by 1.0. Last, as ALTER TABLE adds them on upgrade.
  session_user_name text,
  current_user_name text
);
ALTER SEQUENCE workflow.audit_log_id_seq OWNED BY workflow.audit_log.id;

COMMENT ON TABLE workflow.audit_log IS
  'Row history of tables audited with workflow.enable_audit: key, changed columns (old/new), actor, txid, statement time';
COMMENT ON COLUMN workflow.audit_log.row_key IS 'primary key of the row as jsonb (NULL for TRUNCATE)';
COMMENT ON COLUMN workflow.audit_log.old_values IS 'UPDATE: old values of the changed columns; DELETE: the whole row';
COMMENT ON COLUMN workflow.audit_log.new_values IS 'UPDATE: new values of the changed columns; INSERT: the whole row';
COMMENT ON COLUMN workflow.audit_log.actor IS
  'Claimed actor: SET LOCAL workflow.actor when set (any role may set it), else the session user';
COMMENT ON COLUMN workflow.audit_log.session_user_name IS
  'session_user of the change: the login role (behind a pooler, its pooled role); NULL in rows logged before 1.1';
COMMENT ON COLUMN workflow.audit_log.current_user_name IS
  'current_user of the change: the role whose privileges made it (the owner inside a SECURITY DEFINER function); NULL in rows logged before 1.1';

-- History of one row: a hash index on the key's hash seeded with the table,
-- one int8 per log row. Measured cheaper to maintain on every audited row
-- than a btree on the same value (no descent, no page splits in key order)
-- or on (table_id, row_key) (jsonb comparisons). Queries recheck table_id/row_key.
CREATE INDEX audit_log_row_idx
  ON workflow.audit_log USING hash (jsonb_hash_extended(row_key, table_id::bigint));
-- TRUNCATE events (row_key NULL) of a table; the predicate keeps other rows out.
CREATE INDEX audit_log_truncate_idx
  ON workflow.audit_log (table_id) WHERE row_key IS NULL;

SELECT pg_catalog.pg_extension_config_dump('workflow.audit_log', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.audit_log_id_seq', '');

-- Only the trigger writes the log (it inserts below the SQL layer); only
-- workflow.purge_audit_log deletes from it. Who reads what (the policy):
-- members of workflow_auditor every row, also of tables dropped or revoked
-- since; anyone else the history of the tables it may SELECT now, except
-- of a table with row-level security, whose history only its owner reads
-- (the log has no row's policy to apply). Superusers and BYPASSRLS roles
-- read every row (PostgreSQL applies no policy for them, the log's neither).
-- Visibility depends on the table only: both tests are InitPlans, evaluated
-- once per query (the readable tables' ids as an array), not once per row.
REVOKE ALL ON workflow.audit_log FROM PUBLIC;
REVOKE ALL ON SEQUENCE workflow.audit_log_id_seq FROM PUBLIC;
GRANT SELECT ON workflow.audit_log TO PUBLIC;
ALTER TABLE workflow.audit_log ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_log_readable ON workflow.audit_log FOR SELECT
  USING ((SELECT pg_catalog.pg_has_role('workflow_auditor', 'USAGE'))
         OR table_id = ANY (ARRAY(SELECT t.id FROM workflow.audit_tables t
                                   WHERE pg_catalog.has_table_privilege(t.relid, 'SELECT')
                                     AND (SELECT NOT c.relrowsecurity OR pg_catalog.pg_has_role(c.relowner, 'USAGE')
                                            FROM pg_catalog.pg_class c WHERE c.oid = t.relid))));

-- ---------------------------------------------------------------------------
-- Audit history across pg_dump/restore: a restored workflow.audit_tables row
-- is mapped to the table of its name in the new database (the BEFORE INSERT
-- trigger is created in src/sql/21_audit_triggers.sql). Re-runnable (CREATE
-- OR REPLACE): src/sql/upgrade/1.7--1.8.list runs it.
-- ---------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION workflow.audit_tables_restore_row() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  existing workflow.audit_tables;
BEGIN
  IF current_setting('workflow.audit_registering', true) = 'on' THEN
    -- Written by enable_audit (or by someone who set the flag): the id is
    -- always the sequence's, so no one can take an id ahead of it.
    IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
      NEW.id := nextval('workflow.audit_tables_id_seq');
    END IF;
    RETURN NEW;
  END IF;
  -- A restored row: only the restore (a superuser) writes those.
  IF NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user) THEN
    RAISE EXCEPTION 'workflow.audit_tables: rows are written by workflow.enable_audit'
      USING ERRCODE = '42501';
  END IF;
  -- A row whose table was dropped in the dumped database (relid NULL there)
  -- stays a dropped table's, also when a live table of that name is restored
  -- (one renamed to it, audited under a row of its own): mapping both rows
  -- to it made row_history read the dropped table's history.
  IF NEW.relid IS NOT NULL THEN
    NEW.relid := to_regclass(format('%I.%I', NEW.schema_name, NEW.table_name));
  END IF;
  SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}') INTO NEW.exclude_attnums
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = NEW.relid AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname = ANY (NEW.exclude_columns);
  NEW.restore_pending := false;
  SELECT * INTO existing FROM workflow.audit_tables t WHERE t.id = NEW.id;
  IF FOUND THEN
    -- The row CREATE EXTENSION made (survey_steps): the dump's settings win.
    UPDATE workflow.audit_tables t
       SET schema_name = NEW.schema_name, table_name = NEW.table_name, relid = NEW.relid,
           audited = NEW.audited, statement_level = NEW.statement_level,
           exclude_columns = NEW.exclude_columns, exclude_attnums = NEW.exclude_attnums
     WHERE t.id = NEW.id;
    PERFORM workflow.audit_reattach_extension_table(NEW.id);
    RETURN NULL;
  END IF;
  RETURN NEW;
END;
$$;
COMMENT ON FUNCTION workflow.audit_tables_restore_row() IS
  'Internal trigger: a workflow.audit_tables row restored by pg_restore is mapped to the table of its name (OID, excluded column numbers); the row CREATE EXTENSION made is updated instead.';
REVOKE EXECUTE ON FUNCTION workflow.audit_tables_restore_row() FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Audit history: native triggers and enable/disable
-- ---------------------------------------------------------------------------

CREATE FUNCTION workflow.audit_trigger() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'workflow_audit_trigger';
COMMENT ON FUNCTION workflow.audit_trigger() IS
  'Native AFTER trigger writing workflow.audit_log; attach it with workflow.enable_audit. Argument: the table''s workflow.audit_tables id.';

CREATE FUNCTION workflow.set_updated_at() RETURNS trigger
  LANGUAGE c AS 'MODULE_PATHNAME', 'workflow_set_updated_at';
COMMENT ON FUNCTION workflow.set_updated_at() IS
  'Native BEFORE INSERT/UPDATE row trigger setting a timestamptz/timestamp column to now(). Arguments: column (default updated_at), then ''skip_noop'' to keep the stamp when nothing else changed.';

-- Checks shared by the audit functions; returns the table's pg_class row.
CREATE FUNCTION workflow.audit_check_table(target regclass, caller text)
RETURNS pg_catalog.pg_class
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  IF target IS NULL THEN
    RAISE EXCEPTION '%: target must not be NULL', caller USING ERRCODE = '22004';
  END IF;
  SELECT * INTO rel FROM pg_catalog.pg_class c WHERE c.oid = target;
  IF NOT FOUND THEN
    RAISE EXCEPTION '%: relation with OID % does not exist', caller, target::oid
      USING ERRCODE = '42P01';
  END IF;
  IF rel.relkind NOT IN ('r', 'p') THEN
    RAISE EXCEPTION '%: % is not a table', caller, target USING ERRCODE = '22023';
  END IF;
  RETURN rel;
END;
$$;
COMMENT ON FUNCTION workflow.audit_check_table(regclass, text) IS
  'Internal: raises 22004/42P01/22023 unless target is an existing ordinary or partitioned table.';

-- The workflow.audit_tables id a trigger of workflow.audit_trigger names (its
-- first argument), NULL for any other trigger.
CREATE FUNCTION workflow.audit_trigger_table_id(tgargs bytea, tgnargs int2)
RETURNS integer
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
  SELECT CASE WHEN tgnargs >= 1 AND split_part(encode(tgargs, 'escape'), '\000', 1) ~ '^[0-9]{1,9}$'
              THEN split_part(encode(tgargs, 'escape'), '\000', 1)::integer END
$$;
COMMENT ON FUNCTION workflow.audit_trigger_table_id(bytea, int2) IS
  'Internal: the workflow.audit_tables id named by an audit trigger''s arguments (pg_trigger.tgargs, tgnargs), else NULL.';
REVOKE EXECUTE ON FUNCTION workflow.audit_trigger_table_id(bytea, int2) FROM PUBLIC;

-- workflow.enable_audit and workflow.disable_audit, and who may call them:
-- src/sql/23_audit_privileges.sql.

CREATE FUNCTION workflow.audit_drop_triggers(target regclass)
RETURNS integer
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trg record;
  dropped integer := 0;
BEGIN
  -- The table's own triggers and its partitions' (clones of a row trigger go
  -- with their parent).
  FOR trg IN
    SELECT t.tgname, t.tgrelid::regclass AS rel FROM pg_catalog.pg_trigger t
    WHERE t.tgrelid IN (SELECT target UNION SELECT p.relid FROM pg_catalog.pg_partition_tree(target) p)
      AND NOT t.tgisinternal AND t.tgparentid = 0
      AND t.tgfoid = 'workflow.audit_trigger()'::regprocedure
    ORDER BY t.tgrelid = target DESC
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
    IF trg.rel = target THEN
      dropped := dropped + 1;
    END IF;
  END LOOP;
  RETURN dropped;
END;
$$;
COMMENT ON FUNCTION workflow.audit_drop_triggers(regclass) IS
  'Internal: drops every workflow.audit_trigger trigger of a table and of its partitions; returns how many the table itself had.';

-- ---------------------------------------------------------------------------
-- Audit history across pg_dump/restore: the registry's rows come back with
-- the log (pg_extension_config_dump). A restored row is mapped to the table
-- of that name in the new database; an extension table's audit triggers
-- (not dumped: the table belongs to the extension) are attached again.
-- ---------------------------------------------------------------------------

-- workflow.audit_tables_restore_row (the BEFORE INSERT trigger below):
-- src/sql/21_audit_restore_row.sql.

CREATE FUNCTION workflow.audit_tables_restored() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF current_setting('workflow.audit_registering', true) = 'on' THEN
    RETURN NULL;
  END IF;
  PERFORM workflow.audit_reattach_extension_table(NEW.id);
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION workflow.audit_tables_restored() IS
  'Internal trigger: after a workflow.audit_tables row is restored, an extension table''s audit triggers are attached again.';
REVOKE EXECUTE ON FUNCTION workflow.audit_tables_restored() FROM PUBLIC;

-- Attaches again the audit triggers of a restored, audited extension table
-- (pg_dump does not dump triggers of extension tables; user tables' triggers
-- are in the dump) and marks its own reload as not to be logged again.
CREATE FUNCTION workflow.audit_reattach_extension_table(reg_id integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  r workflow.audit_tables;
BEGIN
  SELECT * INTO r FROM workflow.audit_tables t WHERE t.id = reg_id;
  IF NOT FOUND OR r.relid IS NULL OR NOT r.audited THEN
    RETURN;
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                 WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = r.relid
                   AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e') THEN
    RETURN;
  END IF;
  PERFORM workflow.enable_audit(r.relid::regclass, r.exclude_columns, r.statement_level);
  UPDATE workflow.audit_tables t SET restore_pending = true WHERE t.id = reg_id;
END;
$$;
COMMENT ON FUNCTION workflow.audit_reattach_extension_table(integer) IS
  'Internal (restore): re-attaches the audit triggers of an audited extension table and sets its restore_pending.';
REVOKE EXECUTE ON FUNCTION workflow.audit_reattach_extension_table(integer) FROM PUBLIC;

CREATE TRIGGER audit_tables_restore_row BEFORE INSERT ON workflow.audit_tables
  FOR EACH ROW EXECUTE FUNCTION workflow.audit_tables_restore_row();
CREATE TRIGGER audit_tables_restored AFTER INSERT ON workflow.audit_tables
  FOR EACH ROW EXECUTE FUNCTION workflow.audit_tables_restored();

-- ---------------------------------------------------------------------------
-- Audit history across DDL (event triggers): the registry's names follow
-- renames of tables, schemas and excluded columns (so a dump restores by the
-- current names); partitions created or attached later get the statement
-- triggers, detached ones lose them; a dropped table's registry row keeps
-- its names, not its OID.
-- ---------------------------------------------------------------------------

CREATE FUNCTION workflow.audit_ddl_end() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  reg record;
  trg record;
BEGIN
  IF NOT EXISTS (SELECT 1 FROM workflow.audit_tables) THEN
    RETURN;
  END IF;
  UPDATE workflow.audit_tables t
     SET schema_name = n.nspname, table_name = c.relname,
         exclude_columns = coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
                                       FROM pg_catalog.pg_attribute a
                                      WHERE a.attrelid = c.oid AND a.attnum = ANY (t.exclude_attnums)
                                        AND NOT a.attisdropped), '{}')
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
   WHERE c.oid = t.relid
     AND (t.schema_name, t.table_name, t.exclude_columns) IS DISTINCT FROM
         (n.nspname::text, c.relname::text,
          coalesce((SELECT array_agg(a.attname::text ORDER BY a.attnum)
                      FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = c.oid AND a.attnum = ANY (t.exclude_attnums)
                       AND NOT a.attisdropped), '{}'));

  -- Partition trees touched by this command: a statement-level audited root
  -- whose partitions lack its triggers gets them again (only once the root
  -- has its own: during a restore, the dump brings the partitions' triggers).
  FOR reg IN
    SELECT DISTINCT t.id, t.relid
      FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
      CROSS JOIN LATERAL (SELECT cmd.objid AS relid
                          UNION SELECT a.relid FROM pg_catalog.pg_partition_ancestors(cmd.objid) a) anc
      JOIN workflow.audit_tables t ON t.relid = anc.relid
     WHERE cmd.classid = 'pg_catalog.pg_class'::regclass AND t.audited AND t.statement_level
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = cmd.objid AND c.relkind IN ('r', 'p'))
  LOOP
    IF EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                WHERE g.tgrelid = reg.relid AND g.tgfoid = 'workflow.audit_trigger()'::regprocedure
                  AND workflow.audit_trigger_table_id(g.tgargs, g.tgnargs) = reg.id)
       AND EXISTS (SELECT 1 FROM pg_catalog.pg_partition_tree(reg.relid) p
                    WHERE p.relid <> reg.relid
                      AND (SELECT count(*) FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid = p.relid AND g.tgfoid = 'workflow.audit_trigger()'::regprocedure
                              AND workflow.audit_trigger_table_id(g.tgargs, g.tgnargs) = reg.id) < 3) THEN
      PERFORM workflow.enable_audit(t.relid::regclass, t.exclude_columns, true)
         FROM workflow.audit_tables t WHERE t.id = reg.id;
    END IF;
  END LOOP;

  -- Tables that carry a root's statement triggers but are no longer in its
  -- tree (detached) lose them.
  FOR trg IN
    SELECT g.tgname, g.tgrelid::regclass AS rel
      FROM pg_catalog.pg_trigger g
      JOIN workflow.audit_tables t ON t.id = workflow.audit_trigger_table_id(g.tgargs, g.tgnargs)
     WHERE g.tgfoid = 'workflow.audit_trigger()'::regprocedure AND NOT g.tgisinternal
       AND g.tgparentid = 0 AND g.tgrelid <> t.relid AND t.relid IS NOT NULL
       AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(g.tgrelid) anc
                        WHERE anc.relid = t.relid)
  LOOP
    EXECUTE format('DROP TRIGGER %I ON %s', trg.tgname, trg.rel);
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.audit_ddl_end() IS
  'Internal event trigger (ddl_command_end): keeps workflow.audit_tables names in step with renames and the statement triggers of audited partition trees in step with CREATE/ATTACH/DETACH PARTITION.';
REVOKE EXECUTE ON FUNCTION workflow.audit_ddl_end() FROM PUBLIC;

CREATE FUNCTION workflow.audit_sql_drop() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  UPDATE workflow.audit_tables t SET relid = NULL, audited = false, restore_pending = false
   WHERE t.relid IN (SELECT d.objid FROM pg_catalog.pg_event_trigger_dropped_objects() d
                      WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objsubid = 0);
END;
$$;
COMMENT ON FUNCTION workflow.audit_sql_drop() IS
  'Internal event trigger (sql_drop): a dropped audited table''s workflow.audit_tables row keeps its names and history, not its OID.';
REVOKE EXECUTE ON FUNCTION workflow.audit_sql_drop() FROM PUBLIC;

CREATE EVENT TRIGGER workflow_audit_ddl_end ON ddl_command_end
  WHEN TAG IN ('ALTER TABLE', 'CREATE TABLE', 'ALTER SCHEMA')
  EXECUTE FUNCTION workflow.audit_ddl_end();
CREATE EVENT TRIGGER workflow_audit_sql_drop ON sql_drop
  WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
  EXECUTE FUNCTION workflow.audit_sql_drop();

-- ---------------------------------------------------------------------------
-- Audit history: reading (row_history, row_as_of, task_history) and retention
-- ---------------------------------------------------------------------------

-- Checks a key against the table's primary key columns (names only; values
-- are compared as jsonb, so {"id": 1} matches an integer key 1).
CREATE FUNCTION workflow.audit_check_key(target regclass, key jsonb, caller text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  expected text[];
  given text[];
BEGIN
  PERFORM workflow.audit_check_table(target, caller);
  IF key IS NULL THEN
    RAISE EXCEPTION '%: key must not be NULL', caller USING ERRCODE = '22004';
  END IF;
  IF jsonb_typeof(key) <> 'object' THEN
    RAISE EXCEPTION '%: key must be a jsonb object of the primary key columns, got %',
      caller, left(key::text, 100) USING ERRCODE = '22023';
  END IF;
  SELECT array_agg(a.attname::text ORDER BY a.attname::text) INTO expected
  FROM pg_catalog.pg_index i
  JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
  WHERE i.indrelid = target AND i.indisprimary;
  SELECT array_agg(k ORDER BY k) INTO given FROM jsonb_object_keys(key) AS k;
  IF expected IS NULL THEN
    -- The table may have lost its primary key after auditing began.
    RETURN;
  END IF;
  IF given IS DISTINCT FROM expected THEN
    RAISE EXCEPTION '%: key % does not name the primary key columns of %', caller,
      left(key::text, 100), target
      USING ERRCODE = '22023', HINT = format('Expected the keys %s.', expected);
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow.audit_check_key(regclass, jsonb, text) IS
  'Internal: raises 22004/22023 unless key is a jsonb object naming exactly the primary key columns of target.';

-- Native (src/extension/audit_history.cpp): the same checks and errors as
-- audit_check_key, the registry lookup below the SQL layer, and one kept plan
-- for the log query, which the log's row-level security applies to.
CREATE FUNCTION workflow.row_history(target regclass, key jsonb)
RETURNS SETOF workflow.audit_log
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'workflow_row_history';
COMMENT ON FUNCTION workflow.row_history(regclass, jsonb) IS
  'Log rows of one row of target (by primary key as jsonb, e.g. ''{"id": 7}''), plus the table''s TRUNCATEs, oldest first.';

CREATE FUNCTION workflow.row_as_of(target regclass, key jsonb, at timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  event record;
  state jsonb := NULL;
BEGIN
  PERFORM workflow.audit_check_key(target, key, 'workflow.row_as_of');
  IF at IS NULL THEN
    RAISE EXCEPTION 'workflow.row_as_of: at must not be NULL' USING ERRCODE = '22004';
  END IF;
  FOR event IN
    SELECT h.operation, h.new_values FROM workflow.row_history(target, key) h
    WHERE h.changed_at <= at
  LOOP
    CASE event.operation
      WHEN 'INSERT' THEN state := key || event.new_values;
      -- An UPDATE of a row that existed before auditing began: only the key
      -- and the changed columns are known.
      WHEN 'UPDATE' THEN
        state := coalesce(state, key) || event.new_values;
        -- A change of primary key moved the row away from this key (the
        -- trigger logs it again under the new key, with the whole row).
        IF NOT state @> key THEN
          state := NULL;
        END IF;
      ELSE state := NULL;  -- DELETE, TRUNCATE
    END CASE;
  END LOOP;
  RETURN state;
END;
$$;
COMMENT ON FUNCTION workflow.row_as_of(regclass, jsonb, timestamptz) IS
  'The row of target with this primary key as it was at a time, rebuilt from its history (jsonb, excluded columns absent); NULL if it did not exist then.';

-- The task model's history, in the shape of the original task_history table.
-- Filters on the registry's (current) names, not regclass, so it works
-- before workflow.tasks exists.
CREATE VIEW workflow.task_history WITH (security_invoker = true) AS
  SELECT l.row_key ->> 'id'  AS task_id,
         l.actor             AS user_id,
         lower(l.operation)  AS action,
         l.old_values,
         l.new_values,
         l.changed_at        AS created_at
  FROM workflow.audit_log l
  WHERE l.table_id IN (SELECT t.id FROM workflow.audit_tables t
                       WHERE t.schema_name = 'workflow' AND t.table_name = 'tasks');
COMMENT ON VIEW workflow.task_history IS
  'History of workflow.tasks (audit it with workflow.enable_audit(''workflow.tasks'')): task_id, user_id (actor), action (insert/update/delete/truncate), old/new values, created_at.';
GRANT SELECT ON workflow.task_history TO PUBLIC;
-- ---------------------------------------------------------------------------
-- Audit history: who may audit a table, purge the log and read it
-- ---------------------------------------------------------------------------
-- Only CREATE OR REPLACE FUNCTION, COMMENT and GRANT/REVOKE: the 1.0 -> 1.1
-- upgrade runs this file as it is (src/sql/upgrade/1.0--1.1.list).
--
-- enable_audit, disable_audit and purge_audit_log are SECURITY DEFINER (the
-- extension's owner attaches the triggers, writes the registry, deletes from
-- the log); EXECUTE on them is the right, not granted to PUBLIC. The caller
-- is identified by session_user (current_user is the definer inside them).
-- Reading (audit_log, task_history, row_history, row_as_of) runs as the
-- caller, under the log's row-level security (src/sql/20_audit_log.sql).

-- Raises 42501 unless the session user may act as the owner of target: a
-- member of the owning role (one that may SET ROLE to it), or, for a table of
-- this extension, of the extension's owner (CREATE EXTENSION, also when
-- trusted: the session user is the one who runs it). With reattach (the
-- table is audited with exactly the given settings: the call changes nothing
-- that is logged) it is also allowed inside an event trigger: the extension's
-- own re-attaches the triggers of a partition added to an audited table by
-- whoever adds it, SECURITY DEFINER maintenance functions included. Only
-- superusers create event triggers.
CREATE OR REPLACE FUNCTION workflow.audit_check_owner(target regclass, owner oid, caller text,
                                                      reattach boolean DEFAULT false)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF pg_catalog.pg_has_role(session_user, owner, 'MEMBER') THEN
    RETURN;
  END IF;
  IF EXISTS (SELECT 1 FROM pg_catalog.pg_depend d JOIN pg_catalog.pg_extension e ON e.oid = d.refobjid
              WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = target
                AND d.refclassid = 'pg_catalog.pg_extension'::regclass AND d.deptype = 'e'
                AND e.extname = 'workflow' AND pg_catalog.pg_has_role(session_user, e.extowner, 'MEMBER')) THEN
    RETURN;
  END IF;
  IF reattach THEN
    BEGIN
      PERFORM pg_catalog.pg_event_trigger_ddl_commands();
      RETURN;
    EXCEPTION WHEN event_trigger_protocol_violated THEN
      NULL;  -- not in an event trigger
    END;
  END IF;
  RAISE EXCEPTION '%: must be owner of table %', caller, target USING ERRCODE = '42501';
END;
$$;
COMMENT ON FUNCTION workflow.audit_check_owner(regclass, oid, text, boolean) IS
  'Internal: raises 42501 unless the session user is a member of the table''s owner (or of the extension''s owner, for an extension table); reattach => true also allows it inside an event trigger.';

CREATE OR REPLACE FUNCTION workflow.enable_audit(target regclass, exclude_columns text[] DEFAULT '{}',
                                      statement_level boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
  col text;
  reg_id integer;
  schema text;
  attnums int2[];
  names text[];
  part regclass;
  arg text;
BEGIN
  rel := workflow.audit_check_table(target, 'workflow.enable_audit');
  IF exclude_columns IS NULL THEN
    RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must not be NULL (use ''{}'')'
      USING ERRCODE = '22004';
  END IF;
  IF statement_level IS NULL THEN
    RAISE EXCEPTION 'workflow.enable_audit: statement_level must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF target IN ('workflow.audit_log'::regclass, 'workflow.audit_tables'::regclass) THEN
    RAISE EXCEPTION 'workflow.enable_audit: the audit log itself cannot be audited'
      USING ERRCODE = '22023';
  END IF;
  PERFORM workflow.audit_check_owner(target, rel.relowner, 'workflow.enable_audit',
    reattach => EXISTS (SELECT 1 FROM workflow.audit_tables t
                         WHERE t.relid = target AND t.audited
                           AND t.statement_level = enable_audit.statement_level
                           AND t.exclude_columns = enable_audit.exclude_columns));
  -- A temporary table's history would be filed under pg_temp_N, where a later
  -- session's temporary table of the same name would continue it (and read it).
  IF rel.relpersistence = 't' THEN
    RAISE EXCEPTION 'workflow.enable_audit: % is a temporary table', target
      USING ERRCODE = '0A000', HINT = 'Audit a permanent table; a temporary one ends with its session.';
  END IF;
  IF rel.relispartition THEN
    RAISE EXCEPTION 'workflow.enable_audit: % is a partition', target
      USING ERRCODE = '22023', HINT = 'Audit the partitioned table: its partitions are audited with it.';
  END IF;
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = target AND i.indisprimary) THEN
    RAISE EXCEPTION 'workflow.enable_audit: table % has no primary key', target
      USING ERRCODE = '55000',
            HINT = 'History is kept per primary key: add one (ALTER TABLE ... ADD PRIMARY KEY).';
  END IF;
  IF pg_catalog.array_ndims(exclude_columns) > 1 THEN
    RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must be a one-dimensional array'
      USING ERRCODE = '22023';
  END IF;
  FOREACH col IN ARRAY exclude_columns LOOP
    IF col IS NULL THEN
      RAISE EXCEPTION 'workflow.enable_audit: exclude_columns must not contain NULL'
        USING ERRCODE = '22004';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                   WHERE a.attrelid = target AND a.attname = col AND a.attnum > 0
                     AND NOT a.attisdropped) THEN
      RAISE EXCEPTION 'workflow.enable_audit: column "%" of table % does not exist', col, target
        USING ERRCODE = '42703';
    END IF;
  END LOOP;
  SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}'),
         coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
    INTO attnums, names
    FROM pg_catalog.pg_attribute a
   WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
     AND a.attname = ANY (exclude_columns);
  SELECT n.nspname INTO schema FROM pg_catalog.pg_namespace n WHERE n.oid = rel.relnamespace;

  -- The registry row: this table's, else that of a dropped table of the same
  -- name (its history continues), else a new one.
  PERFORM pg_catalog.set_config('workflow.audit_registering', 'on', true);
  SELECT t.id INTO reg_id FROM workflow.audit_tables t WHERE t.relid = target ORDER BY t.id LIMIT 1;
  IF reg_id IS NULL THEN
    SELECT t.id INTO reg_id FROM workflow.audit_tables t
     WHERE t.schema_name = schema AND t.table_name = rel.relname
       AND (t.relid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = t.relid))
     ORDER BY t.id DESC LIMIT 1;
  END IF;
  IF reg_id IS NULL THEN
    INSERT INTO workflow.audit_tables (schema_name, table_name, relid, statement_level,
                                       exclude_columns, exclude_attnums)
    VALUES (schema, rel.relname, target, enable_audit.statement_level, names, attnums)
    RETURNING id INTO reg_id;
  ELSE
    UPDATE workflow.audit_tables t
       SET schema_name = schema, table_name = rel.relname, relid = target, audited = true,
           statement_level = enable_audit.statement_level, exclude_columns = names,
           exclude_attnums = attnums, restore_pending = false
     WHERE t.id = reg_id;
  END IF;
  PERFORM pg_catalog.set_config('workflow.audit_registering', 'off', true);
  arg := pg_catalog.quote_literal(reg_id::text);

  PERFORM workflow.audit_drop_triggers(target);
  IF enable_audit.statement_level THEN
    -- One trigger call per statement; rows come from transition tables and
    -- are written to the log in batches. A partition gets its own statement
    -- triggers (a write made directly to it does not fire its root's), logging
    -- under the root's id; the event trigger gives them to partitions created
    -- or attached later.
    FOR part IN SELECT target UNION SELECT p.relid FROM pg_catalog.pg_partition_tree(target) p LOOP
      EXECUTE format('CREATE TRIGGER workflow_audit_insert AFTER INSERT ON %s '
                     'REFERENCING NEW TABLE AS workflow_new '
                     'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', part, arg);
      EXECUTE format('CREATE TRIGGER workflow_audit_update AFTER UPDATE ON %s '
                     'REFERENCING OLD TABLE AS workflow_old NEW TABLE AS workflow_new '
                     'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', part, arg);
      EXECUTE format('CREATE TRIGGER workflow_audit_delete AFTER DELETE ON %s '
                     'REFERENCING OLD TABLE AS workflow_old '
                     'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', part, arg);
    END LOOP;
  ELSE
    -- PostgreSQL clones a row trigger onto every partition, present and future.
    EXECUTE format('CREATE TRIGGER workflow_audit_row AFTER INSERT OR UPDATE OR DELETE ON %s '
                   'FOR EACH ROW EXECUTE FUNCTION workflow.audit_trigger(%s)', target, arg);
  END IF;
  EXECUTE format('CREATE TRIGGER workflow_audit_truncate AFTER TRUNCATE ON %s '
                 'FOR EACH STATEMENT EXECUTE FUNCTION workflow.audit_trigger(%s)', target, arg);
END;
$$;
COMMENT ON FUNCTION workflow.enable_audit(regclass, text[], boolean) IS
  'Attaches the native audit triggers to a permanent table with a primary key (and to its partitions; 0A000 for a temporary table) and registers it in workflow.audit_tables; exclude_columns never appear in the log, also after a rename. statement_level => false uses a row-level trigger instead of transition tables. Calling it again replaces the settings. SECURITY DEFINER: the session user must own the table; EXECUTE (the right to audit) is granted to workflow_admin, not PUBLIC.';

CREATE OR REPLACE FUNCTION workflow.disable_audit(target regclass)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  rel pg_catalog.pg_class;
BEGIN
  rel := workflow.audit_check_table(target, 'workflow.disable_audit');
  PERFORM workflow.audit_check_owner(target, rel.relowner, 'workflow.disable_audit');
  IF workflow.audit_drop_triggers(target) = 0 THEN
    RAISE EXCEPTION 'workflow.disable_audit: table % is not audited', target USING ERRCODE = 'P0002';
  END IF;
  -- The registry row stays: the history refers to it.
  UPDATE workflow.audit_tables t SET audited = false, restore_pending = false WHERE t.relid = target;
END;
$$;
COMMENT ON FUNCTION workflow.disable_audit(regclass) IS
  'Detaches the audit triggers from a table; its history stays in workflow.audit_log. P0002 if it was not audited. SECURITY DEFINER: the session user must own the table; EXECUTE granted to workflow_admin, not PUBLIC.';

CREATE OR REPLACE FUNCTION workflow.purge_audit_log(older_than interval)
RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  removed bigint;
BEGIN
  -- The grant is the delegation; it must reach the session user (not only
  -- the owner of some SECURITY DEFINER function that calls this one).
  IF NOT pg_catalog.has_function_privilege(session_user, 'workflow.purge_audit_log(interval)', 'EXECUTE') THEN
    RAISE EXCEPTION 'workflow.purge_audit_log: permission denied for session user %', session_user
      USING ERRCODE = '42501',
            HINT = 'GRANT EXECUTE ON FUNCTION workflow.purge_audit_log(interval) TO the retention role (or GRANT workflow_admin).';
  END IF;
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'workflow.purge_audit_log: older_than must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF older_than < interval '0' THEN
    RAISE EXCEPTION 'workflow.purge_audit_log: older_than must not be negative, got %', older_than
      USING ERRCODE = '22023';
  END IF;
  DELETE FROM workflow.audit_log WHERE changed_at < now() - older_than;
  GET DIAGNOSTICS removed = ROW_COUNT;
  RETURN removed;
END;
$$;
COMMENT ON FUNCTION workflow.purge_audit_log(interval) IS
  'Retention: deletes log rows older than now() - older_than (of every table, whoever may read them); returns how many. SECURITY DEFINER; delegated by GRANT EXECUTE (workflow_admin has it), which the session user must hold.';

-- Privileges, by role (README "Who may do what"). PUBLIC: reading only,
-- under the policy (SELECT granted with the log, the registry and the view;
-- EXECUTE on the readers by default); workflow_auditor: the same, explicitly
-- (so it keeps them if a DBA revokes PUBLIC's), which the policy turns into
-- every row; workflow_admin (a member of workflow_auditor): also auditing its
-- own tables, retention and updated_at triggers.
GRANT SELECT ON workflow.audit_log, workflow.audit_tables, workflow.task_history
  TO workflow_auditor;
GRANT EXECUTE ON FUNCTION workflow.row_history(regclass, jsonb),
                          workflow.row_as_of(regclass, jsonb, timestamptz),
                          workflow.audit_check_key(regclass, jsonb, text),
                          workflow.audit_check_table(regclass, text)
  TO workflow_auditor;
REVOKE ALL ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                       workflow.disable_audit(regclass),
                       workflow.purge_audit_log(interval),
                       workflow.set_updated_at(),
                       workflow.audit_trigger(),
                       workflow.audit_check_owner(regclass, oid, text, boolean),
                       workflow.audit_drop_triggers(regclass)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.enable_audit(regclass, text[], boolean),
                          workflow.disable_audit(regclass),
                          workflow.purge_audit_log(interval),
                          workflow.set_updated_at()
  TO workflow_admin;

-- ---------------------------------------------------------------------------
-- Audit history: an audited table keeps a primary key (1.8)
-- ---------------------------------------------------------------------------
-- History is kept per primary key: enable_audit refuses a table without one,
-- and this event trigger refuses an ALTER TABLE that takes it away (DROP
-- CONSTRAINT, DROP COLUMN ... CASCADE) while the table is audited. Without it
-- the trigger logged every row of the table under the key {} from then on, one
-- history for all rows. Changing the key in one ALTER TABLE (DROP CONSTRAINT
-- ..., ADD PRIMARY KEY ...) is allowed. Re-runnable (CREATE OR REPLACE, the
-- event trigger only when missing): src/sql/upgrade/1.7--1.8.list runs it.

CREATE OR REPLACE FUNCTION workflow.audit_keep_primary_key() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  lost record;
BEGIN
  SELECT t.schema_name, t.table_name INTO lost
    FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
    JOIN workflow.audit_tables t ON t.relid = cmd.objid
   WHERE cmd.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND t.audited
     AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = t.relid AND i.indisprimary)
   LIMIT 1;
  IF FOUND THEN
    RAISE EXCEPTION 'table %.% is audited and must keep a primary key',
      pg_catalog.quote_ident(lost.schema_name), pg_catalog.quote_ident(lost.table_name)
      USING ERRCODE = '55000',
            HINT = 'Change the key in one ALTER TABLE (DROP CONSTRAINT ..., ADD PRIMARY KEY (...)), or run workflow.disable_audit first.';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow.audit_keep_primary_key() IS
  'Internal event trigger (ddl_command_end, ALTER TABLE): refuses (55000) a command that leaves an audited table without a primary key.';
REVOKE EXECUTE ON FUNCTION workflow.audit_keep_primary_key() FROM PUBLIC;

DO $guard$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'workflow_audit_keep_primary_key') THEN
    CREATE EVENT TRIGGER workflow_audit_keep_primary_key ON ddl_command_end
      WHEN TAG IN ('ALTER TABLE')
      EXECUTE FUNCTION workflow.audit_keep_primary_key();
  END IF;
END
$guard$;

-- ---------------------------------------------------------------------------
-- Audit history: a restored audit trigger takes its dropped table's registry
-- row back (1.8)
-- ---------------------------------------------------------------------------
-- DROP TABLE (or DROP SCHEMA ... CASCADE) leaves the table's registry row with
-- relid NULL and audited false. When the table comes back with its audit
-- triggers from a dump of its schema (pg_dump --schema=app, restored into the
-- same database), each CREATE TRIGGER names that row: it is the table's again
-- when its names are the table's (or, for a partition's trigger, an
-- ancestor's), so its relid and audited flag are set and its excluded columns
-- mapped to the table's attribute numbers. A trigger whose row belongs to
-- another table is left alone: the trigger refuses to log (39P01) until
-- enable_audit is run. Only superusers (a restore) create audit triggers.
-- Re-runnable (CREATE OR REPLACE, the event trigger only when missing):
-- src/sql/upgrade/1.7--1.8.list runs it.

CREATE OR REPLACE FUNCTION workflow.audit_trigger_relink() RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  trg record;
  owner_rel oid;
BEGIN
  FOR trg IN
    SELECT g.tgrelid, r.id AS reg_id, r.schema_name, r.table_name
      FROM pg_catalog.pg_event_trigger_ddl_commands() cmd
      JOIN pg_catalog.pg_trigger g ON g.oid = cmd.objid
      JOIN workflow.audit_tables r ON r.id = workflow.audit_trigger_table_id(g.tgargs, g.tgnargs)
     WHERE cmd.classid = 'pg_catalog.pg_trigger'::pg_catalog.regclass
       AND g.tgfoid = 'workflow.audit_trigger()'::pg_catalog.regprocedure
       AND (r.relid IS NULL OR NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid = r.relid))
  LOOP
    SELECT c.oid INTO owner_rel
      FROM (SELECT trg.tgrelid AS relid UNION ALL
            SELECT a.relid FROM pg_catalog.pg_partition_ancestors(trg.tgrelid) a) t
      JOIN pg_catalog.pg_class c ON c.oid = t.relid
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = trg.schema_name AND c.relname = trg.table_name
     LIMIT 1;
    IF FOUND THEN
      UPDATE workflow.audit_tables t
         SET relid = owner_rel, audited = true,
             exclude_attnums = (SELECT coalesce(array_agg(a.attnum ORDER BY a.attnum), '{}')
                                  FROM pg_catalog.pg_attribute a
                                 WHERE a.attrelid = owner_rel AND a.attnum > 0 AND NOT a.attisdropped
                                   AND a.attname = ANY (t.exclude_columns))
       WHERE t.id = trg.reg_id;
    END IF;
  END LOOP;
END;
$$;
COMMENT ON FUNCTION workflow.audit_trigger_relink() IS
  'Internal event trigger (ddl_command_end, CREATE TRIGGER): a restored audit trigger whose registry row is that of a dropped table of the same name (or of a partition''s ancestor) links the row to the table again.';
REVOKE EXECUTE ON FUNCTION workflow.audit_trigger_relink() FROM PUBLIC;

DO $relink$
BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger e WHERE e.evtname = 'workflow_audit_trigger_relink') THEN
    CREATE EVENT TRIGGER workflow_audit_trigger_relink ON ddl_command_end
      WHEN TAG IN ('CREATE TRIGGER')
      EXECUTE FUNCTION workflow.audit_trigger_relink();
  END IF;
END
$relink$;
-- Survey steps, part 1: step names (registry + legacy aliases) and session ids.

CREATE FUNCTION workflow.step_name_key(raw text) RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_step_name_key';
COMMENT ON FUNCTION workflow.step_name_key(text) IS
  'Folds a survey step name spelling into its snake_case key (trim, case fold, spaces/hyphens/camelCase to "_") without consulting the registry; 22023 on an invalid spelling, 22004 on NULL.';

-- The registry of step names. Administrators extend it with INSERT.
CREATE TABLE workflow.survey_step_names (
  name        text PRIMARY KEY CHECK (workflow.step_name_key(name) = name),
  description text,
  builtin     boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE workflow.survey_step_names IS
  'Registry of survey step names (snake_case keys). Administrators add steps with INSERT; builtin rows ship with the extension.';

-- Legacy spellings, stored as their folded key, resolving to a registry name.
CREATE TABLE workflow.survey_step_aliases (
  alias     text PRIMARY KEY CHECK (workflow.step_name_key(alias) = alias),
  step_name text NOT NULL REFERENCES workflow.survey_step_names (name) ON UPDATE CASCADE ON DELETE CASCADE,
  builtin   boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE workflow.survey_step_aliases IS
  'Legacy step-name spellings (stored folded, see workflow.step_name_key) resolving to a registry name. A registry name wins over an alias with the same key.';

INSERT INTO workflow.survey_step_names (name, description, builtin) VALUES
  ('workload_today',    'Workload for today',               true),
  ('workload_nextweek', 'Expected workload next week',      true),
  ('connects_thisweek', 'Connects made this week',          true),
  ('day_off_nextweek',  'Days off planned next week',       true),
  ('day_off_thisweek',  'Days off taken this week',         true);

INSERT INTO workflow.survey_step_aliases (alias, step_name, builtin) VALUES
  ('workload_next_week',  'workload_nextweek', true),
  ('connects_this_week',  'connects_thisweek', true),
  ('day_off_next_week',   'day_off_nextweek',  true),
  ('day_off_this_week',   'day_off_thisweek',  true),
  ('workload',            'workload_today',    true),
  ('today_workload',      'workload_today',    true),
  ('next_week_workload',  'workload_nextweek', true),
  ('connects',            'connects_thisweek', true),
  ('weekly_connects',     'connects_thisweek', true),
  ('dayoff_nextweek',     'day_off_nextweek',  true),
  ('days_off_next_week',  'day_off_nextweek',  true),
  ('dayoff_thisweek',     'day_off_thisweek',  true),
  ('days_off_this_week',  'day_off_thisweek',  true);

-- Keep administrator-added rows in pg_dump; builtin rows come from CREATE EXTENSION.
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_step_names', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_step_aliases', 'WHERE NOT builtin');
GRANT SELECT ON workflow.survey_step_names, workflow.survey_step_aliases TO PUBLIC;

CREATE FUNCTION workflow.normalize_step_name(raw text) RETURNS text
  LANGUAGE c STABLE PARALLEL RESTRICTED
  AS 'MODULE_PATHNAME', 'workflow_normalize_step_name';
COMMENT ON FUNCTION workflow.normalize_step_name(text) IS
  'The registry name for a step-name spelling: folds it (see step_name_key), then resolves it in workflow.survey_step_names or workflow.survey_step_aliases. Unknown names raise 22023 naming the value and the accepted names; NULL raises 22004.';

CREATE FUNCTION workflow.parse_session_id(raw text, OUT kind text, OUT session_id text)
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_parse_session_id';
COMMENT ON FUNCTION workflow.parse_session_id(text) IS
  'Parses a chat channel id (C, G or D followed by letters and digits, 9 to 21 characters; trimmed and upper-cased): kind (channel, group, direct) and the normalised id. 22023 when invalid, 22004 on NULL.';

CREATE FUNCTION workflow.is_valid_session_id(raw text) RETURNS boolean
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_is_valid_session_id';
COMMENT ON FUNCTION workflow.is_valid_session_id(text) IS
  'True when workflow.parse_session_id would accept the value; false for NULL.';
-- Survey steps, part 2: sessions (with a time zone), steps, the upserts, the
-- weekly query, clean-up and the weekly completion view.

CREATE TABLE workflow.survey_sessions (
  session_id text PRIMARY KEY CHECK (session_id ~ '^[CGD][A-Z0-9]{8,20}$'),
  time_zone  text NOT NULL DEFAULT 'UTC',
  created_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE workflow.survey_sessions IS
  'Survey sessions (chat channels) and the IANA time zone their weeks are cut in. Created on first upsert with time zone UTC.';

-- One row per (session, week, step). week_start is the local Monday, in the
-- session's time zone, of the week containing completed_at.
CREATE TABLE workflow.survey_steps (
  id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id   text NOT NULL REFERENCES workflow.survey_sessions (session_id) ON DELETE CASCADE,
  step_name    text NOT NULL REFERENCES workflow.survey_step_names (name) ON UPDATE CASCADE,
  week_start   date NOT NULL CHECK (pg_catalog.date_part('isodow', week_start) = 1),
  value        jsonb NOT NULL DEFAULT '{}',
  completed_at timestamptz NOT NULL,
  created_at   timestamptz NOT NULL DEFAULT now(),
  updated_at   timestamptz NOT NULL DEFAULT now(),
  CONSTRAINT survey_steps_session_week_step_key UNIQUE (session_id, week_start, step_name)
);
COMMENT ON TABLE workflow.survey_steps IS
  'Completed survey steps: one row per session, week (Monday 00:00 to Monday 00:00 in the session''s time zone) and step.';

SELECT pg_catalog.pg_extension_config_dump('workflow.survey_sessions', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_steps', '');
SELECT pg_catalog.pg_extension_config_dump('workflow.survey_steps_id_seq', '');

-- The local Monday starting the week that contains `at` in time zone `zone`.
-- Native (src/extension/survey_week.cpp): the zone is looked up as an IANA
-- name first, not as an abbreviation as timezone(zone, at) does ('CET' is a
-- zone with summer time and an abbreviation of UTC+1).
CREATE FUNCTION workflow.survey_week_start(at timestamptz, zone text) RETURNS date
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'workflow_survey_week_start';
COMMENT ON FUNCTION workflow.survey_week_start(timestamptz, text) IS
  'The local Monday (a date) starting the week that contains the instant in the given time zone. An IANA zone name wins over a time zone abbreviation of the same spelling; a legacy name that tzdata 2024b made a link (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT) is read as the zone it links to, on every system (CET: Europe/Brussels, with its summer time); other strings are read as timezone() reads them.';

-- set_session_timezone: src/sql/34_survey_timezone.sql.
-- upsert_survey_step: src/sql/32_survey_upsert_step.sql.

CREATE FUNCTION workflow.upsert_survey_steps(steps jsonb) RETURNS integer
  LANGUAGE c VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
  SET work_mem = '64MB'  -- the batch's de-duplicating sort stays in memory up to ~200k steps
  AS 'MODULE_PATHNAME', 'workflow_upsert_survey_steps';
COMMENT ON FUNCTION workflow.upsert_survey_steps(jsonb) IS
  'Batch form of upsert_survey_step: a JSON array of {"session_id","step_name","value","completed_at"} objects (value defaults to {}, completed_at to now()). All or nothing: the first invalid element is named by its 0-based index and nothing is written. Elements for the same session, week and step collapse to the last one. Returns the number of rows written.';

CREATE FUNCTION workflow.get_weekly_survey_steps(session_id text, week_of timestamptz DEFAULT now())
  RETURNS SETOF workflow.survey_steps
  LANGUAGE plpgsql STABLE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_zone text;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(get_weekly_survey_steps.session_id) p;
  IF week_of IS NULL THEN
    RAISE EXCEPTION 'week_of must not be null' USING ERRCODE = '22004';
  END IF;
  IF NOT isfinite(week_of) THEN
    RAISE EXCEPTION 'week_of "%" must be finite', week_of USING ERRCODE = '22023';
  END IF;
  SELECT s.time_zone INTO v_zone FROM workflow.survey_sessions s WHERE s.session_id = v_session;
  IF NOT FOUND THEN
    RETURN;  -- a session with no steps yet
  END IF;
  RETURN QUERY
    SELECT t.* FROM workflow.survey_steps t
     WHERE t.session_id = v_session
       AND t.week_start = workflow.survey_week_start(week_of, v_zone)
     ORDER BY t.step_name;
END
$$;
COMMENT ON FUNCTION workflow.get_weekly_survey_steps(text, timestamptz) IS
  'The steps of a session in the week (Monday 00:00 to Monday 00:00 in the session''s time zone) containing week_of, ordered by step name; index-backed. Empty for an unknown session; 22023 on an invalid session id.';

-- cleanup_survey_sessions: src/sql/33_survey_cleanup.sql.

CREATE VIEW workflow.survey_weekly_completion AS
  SELECT t.week_start, t.step_name, count(*)::integer AS sessions_completed
    FROM workflow.survey_steps t
   GROUP BY t.week_start, t.step_name;
COMMENT ON VIEW workflow.survey_weekly_completion IS
  'Per week (local Monday of each session''s own time zone) and step: how many sessions completed the step.';

-- Writers and readers of survey data are granted explicitly by the administrator.
REVOKE ALL ON FUNCTION workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz) FROM PUBLIC;
-- Survey steps, part 3: the single upsert (the batch form, upsert_survey_steps,
-- is in 31_survey_steps.sql). CREATE OR REPLACE, so that the upgrade from 1.7
-- re-runs this file as it is (src/sql/upgrade/1.7--1.8.list).

CREATE OR REPLACE FUNCTION workflow.upsert_survey_step(session_id text, step_name text,
                                            value jsonb DEFAULT '{}',
                                            completed_at timestamptz DEFAULT now())
  RETURNS workflow.survey_steps
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_step text;
  v_size integer;
  r workflow.survey_steps;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(upsert_survey_step.session_id) p;
  v_step := workflow.normalize_step_name(upsert_survey_step.step_name);
  -- JSON null is refused as SQL NULL is, as the batch form refuses it.
  IF upsert_survey_step.value IS NULL OR jsonb_typeof(upsert_survey_step.value) = 'null' THEN
    RAISE EXCEPTION 'value must not be null (SQL NULL or JSON null)' USING ERRCODE = '22004';
  END IF;
  -- The size of the value itself, as the batch form measures it: a value
  -- read from a table may arrive compressed, and pg_column_size would give
  -- its compressed size. ->0 of a one-element array is a fresh, plain copy.
  v_size := pg_column_size(jsonb_build_array(upsert_survey_step.value) -> 0);
  IF v_size > 65536 THEN
    RAISE EXCEPTION 'value is % bytes, at most 65536 are accepted', v_size USING ERRCODE = '22023';
  END IF;
  IF upsert_survey_step.completed_at IS NULL THEN
    RAISE EXCEPTION 'completed_at must not be null' USING ERRCODE = '22004';
  END IF;
  IF NOT isfinite(upsert_survey_step.completed_at) THEN
    RAISE EXCEPTION 'completed_at "%" must be finite', upsert_survey_step.completed_at USING ERRCODE = '22023';
  END IF;

  -- The session row, locked FOR KEY SHARE until commit, so that
  -- cleanup_survey_sessions cannot delete it between this and the next
  -- statement (the insert below would then write nothing, without an error).
  LOOP
    PERFORM FROM workflow.survey_sessions s WHERE s.session_id = v_session FOR KEY SHARE;
    EXIT WHEN FOUND;
    INSERT INTO workflow.survey_sessions (session_id) VALUES (v_session) ON CONFLICT DO NOTHING;
  END LOOP;
  INSERT INTO workflow.survey_steps AS t (session_id, step_name, week_start, value, completed_at)
  SELECT v_session, v_step, workflow.survey_week_start(upsert_survey_step.completed_at, s.time_zone),
         upsert_survey_step.value, upsert_survey_step.completed_at
    FROM workflow.survey_sessions s WHERE s.session_id = v_session
  ON CONFLICT (session_id, week_start, step_name) DO UPDATE
    SET value = excluded.value, completed_at = excluded.completed_at, updated_at = now()
  RETURNING t.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) IS
  'Records a completed survey step: one row per (session, step, week in the session''s time zone); a second upsert in the same week updates the row. Validates and normalises the session id and step name. Returns the stored row. 22023/22004 on invalid input (22004 for a NULL or JSON null value; 22023 for a value over 64 kB uncompressed), nothing written.';

REVOKE ALL ON FUNCTION workflow.upsert_survey_step(text, text, jsonb, timestamptz) FROM PUBLIC;
-- Survey steps, part 4: the clean-up of idle sessions. CREATE OR REPLACE, so
-- that the upgrades re-run this file as it is (src/sql/upgrade/1.7--1.8.list,
-- 1.8--1.9.list).

CREATE OR REPLACE FUNCTION workflow.cleanup_survey_sessions(older_than interval) RETURNS integer
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  v_cutoff timestamptz;
  v_deleted integer;
  v_locked text[];
BEGIN
  IF older_than IS NULL THEN
    RAISE EXCEPTION 'older_than must not be null' USING ERRCODE = '22004';
  END IF;
  IF older_than < interval '0' OR NOT isfinite(older_than) THEN
    RAISE EXCEPTION 'older_than "%" must be a finite, non-negative interval', older_than USING ERRCODE = '22023';
  END IF;
  v_cutoff := now() - older_than;
  -- Lock the idle sessions first, skipping those a transaction in flight
  -- holds (an upsert holds its session FOR KEY SHARE until commit): they are
  -- in use, a later run takes them, and the clean-up never waits for an
  -- upsert (waiting deadlocked with a transaction upserting several sessions
  -- in another order). The DELETE, a new statement, deletes only the
  -- sessions locked here, and keeps those that a step committed since the
  -- lock's snapshot made active.
  SELECT coalesce(array_agg(x.session_id), '{}') INTO v_locked FROM (
    SELECT s.session_id FROM workflow.survey_sessions s
     WHERE s.created_at < v_cutoff
       AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                        WHERE t.session_id = s.session_id AND t.completed_at >= v_cutoff)
     ORDER BY s.session_id
       FOR UPDATE OF s SKIP LOCKED) x;
  DELETE FROM workflow.survey_sessions s
   WHERE s.session_id = ANY (v_locked)
     AND NOT EXISTS (SELECT 1 FROM workflow.survey_steps t
                      WHERE t.session_id = s.session_id AND t.completed_at >= v_cutoff);
  GET DIAGNOSTICS v_deleted = ROW_COUNT;
  RETURN v_deleted;
END
$$;
COMMENT ON FUNCTION workflow.cleanup_survey_sessions(interval) IS
  'Deletes sessions (and their steps) created before now() - older_than that have no step completed since then; returns the number of sessions deleted. Sessions that a transaction in flight holds (an upsert into them) are skipped, not waited for: a later run takes them.';

REVOKE ALL ON FUNCTION workflow.cleanup_survey_sessions(interval) FROM PUBLIC;
-- Survey steps, part 4: a session's time zone. CREATE OR REPLACE, so that
-- the upgrades re-run this file as it is (src/sql/upgrade/1.7--1.8.list,
-- 1.8--1.9.list).

-- Internal (src/extension/survey_zone_link.cpp): the zone a legacy name
-- (CET, EST5EDT, ...) links to since tzdata 2024b, or NULL.
CREATE OR REPLACE FUNCTION workflow._survey_zone_link(zone text) RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE STRICT
  AS 'MODULE_PATHNAME', 'workflow_survey_zone_link';
COMMENT ON FUNCTION workflow._survey_zone_link(text) IS
  'Internal: the geographic zone that a legacy zone name (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT; any case) links to since tzdata 2024b, or NULL for any other name.';
REVOKE ALL ON FUNCTION workflow._survey_zone_link(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.set_session_timezone(session_id text, tz text)
  RETURNS workflow.survey_sessions
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER
  SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
DECLARE
  v_session text;
  v_zone text;
  r workflow.survey_sessions;
BEGIN
  SELECT p.session_id INTO v_session FROM workflow.parse_session_id(set_session_timezone.session_id) p;
  IF tz IS NULL THEN
    RAISE EXCEPTION 'time zone must not be null' USING ERRCODE = '22004';
  END IF;
  IF length(tz) <= 64 THEN
    -- A legacy name is stored as the zone it links to: some systems no
    -- longer ship it as a zone (Debian trixie without tzdata-legacy), and
    -- the session must keep its weeks when its database moves to one.
    tz := coalesce(workflow._survey_zone_link(btrim(tz)), tz);
    -- IANA names only (no abbreviations, offsets or POSIX strings); canonical
    -- spelling. localtime (the server's own zone, whatever it is), posixrules
    -- (a rules file) and Factory (no zone: "-00") are files of the zone
    -- database that pg_timezone_names lists, not zones a session is in.
    SELECT z.name INTO v_zone FROM pg_catalog.pg_timezone_names z
     WHERE lower(z.name) = lower(btrim(tz)) AND z.name !~ '^(posix|right)/'
       AND lower(z.name) NOT IN ('localtime', 'posixrules', 'factory')
     ORDER BY z.name = btrim(tz) DESC LIMIT 1;
  END IF;
  IF v_zone IS NULL THEN
    RAISE EXCEPTION 'unknown time zone "%"', left(tz, 64)
      USING ERRCODE = '22023', HINT = 'Use an IANA time zone name such as "Europe/Berlin" (see pg_timezone_names).';
  END IF;
  INSERT INTO workflow.survey_sessions AS s (session_id, time_zone) VALUES (v_session, v_zone)
  ON CONFLICT (session_id) DO UPDATE SET time_zone = excluded.time_zone
  RETURNING s.* INTO r;
  RETURN r;
END
$$;
COMMENT ON FUNCTION workflow.set_session_timezone(text, text) IS
  'Sets (creating the session if needed) the IANA time zone a session''s weeks are cut in; returns the session row. A legacy name that tzdata 2024b made a link (CET, EET, MET, WET, EST, MST, HST, EST5EDT, CST6CDT, MST7MDT, PST8PDT) is stored as the zone it links to (CET: Europe/Brussels). Rows already written keep their week. 22023 on an invalid session id or unknown zone, 22004 on NULL.';

REVOKE ALL ON FUNCTION workflow.set_session_timezone(text, text) FROM PUBLIC;
-- Survey steps: who may call and read what (1.1). New in 1.1 and safe on a
-- 1.0 database: the 1.0 -> 1.1 upgrade runs this file as it is.
--   PUBLIC             the pure functions (step_name_key, normalize_step_name,
--                      parse_session_id, is_valid_session_id,
--                      survey_week_start) and the step-name registry (read)
--   workflow_survey    set_session_timezone, upsert_survey_step(s),
--                      get_weekly_survey_steps; reads sessions, steps and
--                      survey_weekly_completion
--   workflow_admin     all of that, cleanup_survey_sessions, and writes the
--                      step-name registry
-- Survey data has no owner: a session is a chat channel, shared by whoever
-- records it (the bot). Writes go through the SECURITY DEFINER functions.

REVOKE EXECUTE ON FUNCTION
  workflow.set_session_timezone(text, text),
  workflow.upsert_survey_step(text, text, jsonb, timestamptz),
  workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz),
  workflow.cleanup_survey_sessions(interval)
  FROM PUBLIC;

GRANT EXECUTE ON FUNCTION
  workflow.set_session_timezone(text, text),
  workflow.upsert_survey_step(text, text, jsonb, timestamptz),
  workflow.upsert_survey_steps(jsonb),
  workflow.get_weekly_survey_steps(text, timestamptz)
  TO workflow_survey, workflow_admin;
GRANT EXECUTE ON FUNCTION workflow.cleanup_survey_sessions(interval) TO workflow_admin;

REVOKE ALL ON workflow.survey_sessions, workflow.survey_steps, workflow.survey_weekly_completion
  FROM PUBLIC;
GRANT SELECT ON workflow.survey_sessions, workflow.survey_steps, workflow.survey_weekly_completion
  TO workflow_survey, workflow_admin;
GRANT INSERT, UPDATE, DELETE ON workflow.survey_step_names, workflow.survey_step_aliases
  TO workflow_admin;
-- Job -> Stage -> Task engine (1.4): dead work. A task is dead when it
-- failed for good (no retries left, or not retryable, or its deadline passed
-- on its last attempt). A stage may tolerate up to max_dead_tasks dead tasks
-- (tolerate_dead_tasks): such a task counts as finished for the stage's
-- fan-in (it takes its unit from the counters like a completion, and may
-- complete the stage); otherwise a dead task fails the job. The dead-letter
-- view lists dead tasks; retry_task and retry_job queue them again.

-- A task died: the caller holds the job row (FOR NO KEY UPDATE) and the task
-- row. Lock order job -> task -> slot -> stage, as completions. Returns
-- true when the stage tolerated it (the job goes on), false when the job failed.
CREATE OR REPLACE FUNCTION workflow._engine_task_died(t workflow.tasks, error text, worker text)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  tolerated boolean;
  unit_slot int;
  left_in_slot int;
  pending_after int;
  ts timestamptz := now();  -- not inside the UPDATE's CASE (Citus)
BEGIN
  -- Every death of this job's tasks holds the job row: dead_tasks is stable.
  SELECT s.dead_tasks < s.max_dead_tasks INTO tolerated
    FROM workflow.stages s WHERE s.job_id = t.job_id AND s.stage = t.stage;
  UPDATE workflow.tasks x
     SET status = 'failed', last_error = error, claimed_by = worker, lease_expires_at = NULL,
         deadline_at = NULL, dead_tolerated = coalesce(tolerated, false), updated_at = ts
   WHERE x.job_id = t.job_id AND x.id = t.id;
  IF NOT coalesce(tolerated, false) THEN
    PERFORM workflow._engine_end_job(t.job_id, 'failed', format('task %s failed: %s', t.id, error));
    RETURN false;
  END IF;
  -- The fan-in of a finished task: one unit from a counter of the stage
  -- (waiting, ascending: the order batches use), then the stage row.
  SELECT c.slot INTO unit_slot FROM workflow.stage_slots c
   WHERE c.job_id = t.job_id AND c.stage = t.stage AND c.remaining > 0
   ORDER BY c.slot LIMIT 1 FOR UPDATE;
  UPDATE workflow.stage_slots c SET remaining = c.remaining - 1
   WHERE c.job_id = t.job_id AND c.stage = t.stage AND c.slot = unit_slot
  RETURNING c.remaining INTO left_in_slot;
  -- A stage completed by a tolerated death is handed over at once: nobody
  -- was told stage_complete (claim_stage_handovers).
  UPDATE workflow.stages s
     SET dead_tasks = s.dead_tasks + 1,
         pending_slots = s.pending_slots - (left_in_slot = 0)::int,
         completed_by_task = CASE WHEN s.pending_slots - (left_in_slot = 0)::int = 0 THEN t.id END,
         completed_at = CASE WHEN s.pending_slots - (left_in_slot = 0)::int = 0 THEN ts END,
         handover_expires_at = CASE WHEN s.pending_slots - (left_in_slot = 0)::int = 0 THEN ts END
   WHERE s.job_id = t.job_id AND s.stage = t.stage
  RETURNING s.pending_slots INTO pending_after;
  IF pending_after = 0 THEN
    PERFORM workflow._engine_notify_stage_complete(t.job_id, t.stage);
  END IF;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow._engine_task_died(workflow.tasks, text, text) IS
  'Internal: a locked task is dead. Its stage tolerates it (dead_tasks < max_dead_tasks): it counts as finished '
  'for the stage (which it may complete; then handed over at once); returns true. Otherwise the job fails; false.';
REVOKE EXECUTE ON FUNCTION workflow._engine_task_died(workflow.tasks, text, text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.tolerate_dead_tasks(job_id text, stage int, max_dead int)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(tolerate_dead_tasks.job_id);
  dead_now int;
BEGIN
  PERFORM workflow._engine_check_stage(j, tolerate_dead_tasks.stage);
  PERFORM workflow._engine_check_not_null('max_dead', max_dead);
  IF max_dead NOT BETWEEN 0 AND 1000000 THEN
    RAISE EXCEPTION 'max_dead % is out of range 0..1000000', max_dead USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_owner(j, 'set the dead-task tolerance of');
  j := workflow._engine_job(tolerate_dead_tasks.job_id, 'update');  -- deaths hold it too
  IF j.status NOT IN ('pending', 'running') THEN
    RAISE EXCEPTION 'job % is %', quote_literal(j.id), j.status USING ERRCODE = '55000';
  END IF;
  -- A stage nobody added tasks to yet: created here (add_tasks keeps its
  -- slot_count: 64, the default).
  INSERT INTO workflow.stages (job_id, stage, slot_count, pending_slots)
  VALUES (tolerate_dead_tasks.job_id, tolerate_dead_tasks.stage, 64, 1)
  ON CONFLICT ON CONSTRAINT stages_pkey DO NOTHING;
  SELECT s.dead_tasks INTO dead_now FROM workflow.stages s
   WHERE s.job_id = tolerate_dead_tasks.job_id AND s.stage = tolerate_dead_tasks.stage;
  IF max_dead < dead_now THEN
    RAISE EXCEPTION 'stage % of job % has tolerated % dead tasks already: max_dead % is below that',
      tolerate_dead_tasks.stage, quote_literal(j.id), dead_now, max_dead USING ERRCODE = '22023';
  END IF;
  UPDATE workflow.stages s SET max_dead_tasks = max_dead
   WHERE s.job_id = tolerate_dead_tasks.job_id AND s.stage = tolerate_dead_tasks.stage;
END;
$$;
COMMENT ON FUNCTION workflow.tolerate_dead_tasks(text, int, int) IS
  'Lets stage of the job tolerate up to max_dead (0..1000000) dead tasks: each counts as finished for the stage '
  '(the stage may complete with it) instead of failing the job. Creates the stage (unsealed, 64 slots) if no task '
  'was added yet. 22023 below the dead tasks tolerated already; 55000 for an ended job; P0002 unknown job; 42501 '
  'unless the session user owns the job or is a member of workflow_admin.';

-- Dead tasks, newest first. security_invoker: a producer sees its own jobs'
-- (the tables' row-level security), workers and admins every one.
CREATE OR REPLACE VIEW workflow.dead_tasks WITH (security_invoker = true) AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.retry_count, t.last_error,
       t.updated_at AS died_at,
       t.dead_tolerated AS tolerated, j.job_type, j.status AS job_status, t.claimed_by AS worker,
       t.parameters
  FROM workflow.tasks t
  JOIN workflow.jobs j ON j.id = t.job_id
 WHERE t.status = 'failed';
COMMENT ON VIEW workflow.dead_tasks IS
  'Dead-letter view: tasks that failed for good (job_id, task_id, task_type, stage, retry_count, last_error, '
  'died_at; then tolerated: the stage counted it as finished, job_type, job_status, worker: the last to run it, '
  'parameters). Re-run one with retry_task, all of a job with retry_job. Rows of other owners'' jobs are hidden '
  'from producers.';
REVOKE ALL ON workflow.dead_tasks FROM PUBLIC;
GRANT SELECT ON workflow.dead_tasks TO workflow_producer, workflow_worker, workflow_admin;

-- Queues a dead task again (the caller holds the job row and the task row,
-- status failed). A tolerated one gives its unit back to its slot first:
-- only while its stage is not complete (a complete stage cannot reopen).
CREATE OR REPLACE FUNCTION workflow._engine_requeue_dead(t workflow.tasks)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  in_slot int;
BEGIN
  IF t.dead_tolerated THEN
    IF (SELECT s.completed_at IS NOT NULL FROM workflow.stages s
         WHERE s.job_id = t.job_id AND s.stage = t.stage) THEN
      RAISE EXCEPTION 'task % cannot run again: its stage % completed with it tolerated as dead',
        quote_literal(t.id), t.stage USING ERRCODE = '55000';
    END IF;
    UPDATE workflow.stage_slots c SET remaining = c.remaining + 1
     WHERE c.job_id = t.job_id AND c.stage = t.stage AND c.slot = t.slot
    RETURNING c.remaining INTO in_slot;
    -- A completion of the stage's last other task committing meanwhile
    -- (after the check above read the stage) completed it with this task
    -- dead: the stage row, read again once its lock is free, says so.
    UPDATE workflow.stages s
       SET dead_tasks = s.dead_tasks - 1, pending_slots = s.pending_slots + (in_slot = 1)::int
     WHERE s.job_id = t.job_id AND s.stage = t.stage AND s.completed_at IS NULL;
    IF NOT FOUND THEN
      RAISE EXCEPTION 'task % cannot run again: its stage % completed with it tolerated as dead',
        quote_literal(t.id), t.stage USING ERRCODE = '55000';
    END IF;
  END IF;
  UPDATE workflow.tasks x
     SET status = 'queued', retry_count = 0, run_after = now(), claimed_by = NULL,
         lease_expires_at = NULL, deadline_at = NULL, dead_tolerated = false, updated_at = now()
   WHERE x.job_id = t.job_id AND x.id = t.id;
END;
$$;
COMMENT ON FUNCTION workflow._engine_requeue_dead(workflow.tasks) IS
  'Internal (retry_task, retry_job): queues a locked dead task again with its retries reset; a tolerated one gives '
  'its unit back to the stage''s counters (55000 when the stage completed with it).';
REVOKE EXECUTE ON FUNCTION workflow._engine_requeue_dead(workflow.tasks) FROM PUBLIC;

-- A failed job runs again: the tasks its failure cancelled are queued, the
-- stages it left by ending are back in reach of hand-overs. Caller holds the job row.
-- A cancelled task keeps the run_after it had (the job's or add_tasks' run_at,
-- a retry's backoff): it is not claimed before that time (1.8; before, it was
-- queued due at once).
CREATE OR REPLACE FUNCTION workflow._engine_revive_job(job_id_param text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  at_stage int;
BEGIN
  UPDATE workflow.jobs j SET status = 'running', error = NULL, finished_at = NULL, updated_at = now()
   WHERE j.id = job_id_param AND j.status = 'failed'
  RETURNING j.stage INTO at_stage;
  IF NOT FOUND THEN
    RETURN;
  END IF;
  UPDATE workflow.tasks x
     SET status = 'queued', run_after = greatest(x.run_after, now()), lease_expires_at = NULL, deadline_at = NULL,
         updated_at = now()
   WHERE x.job_id = job_id_param AND x.status = 'cancelled';
  UPDATE workflow.stages s SET left_at = NULL, handover_by = NULL, handover_expires_at = now()
   WHERE s.job_id = job_id_param AND s.stage >= at_stage AND s.completed_at IS NOT NULL;
END;
$$;
COMMENT ON FUNCTION workflow._engine_revive_job(text) IS
  'Internal (retry_task, retry_job): a failed job back to running, the tasks its failure cancelled queued again '
  '(not claimed before the run_after they had: run_at, retry backoff).';
REVOKE EXECUTE ON FUNCTION workflow._engine_revive_job(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.retry_task(task_id text, job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs;
  t workflow.tasks;
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  j := workflow._engine_job(retry_task.job_id);
  PERFORM workflow._engine_check_owner(j, 'retry a task of');
  j := workflow._engine_job(retry_task.job_id, 'update');  -- lock order job -> task
  SELECT * INTO t FROM workflow.tasks x
   WHERE x.job_id = retry_task.job_id AND x.id = retry_task.task_id FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  IF t.status <> 'failed' THEN
    RETURN false;  -- not dead: nothing to re-run
  END IF;
  IF j.status = 'cancelled' THEN
    RAISE EXCEPTION 'job % is cancelled: its tasks do not run again', quote_literal(j.id)
      USING ERRCODE = '55000';
  END IF;
  PERFORM workflow._engine_requeue_dead(t);
  -- The task that failed the job: the job runs again.
  IF j.status = 'failed' AND NOT t.dead_tolerated THEN
    PERFORM workflow._engine_revive_job(j.id);
  END IF;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow.retry_task(text, text) IS
  'Queues a dead (failed) task again, its retries reset, and returns true; false (nothing written) when the task is '
  'not dead. When it is the task that failed its job, the job runs again (status running, the tasks its failure '
  'cancelled queued again, each not before the run_after it had: run_at, retry backoff). A tolerated dead task gives its unit back to its stage (55000 when the stage completed '
  'with it). 55000 for a cancelled job; P0002 unknown job or task; 42501 unless the session user owns the job or is '
  'a member of workflow_admin.';

CREATE OR REPLACE FUNCTION workflow.retry_job(job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  j workflow.jobs := workflow._engine_job(retry_job.job_id);
  t workflow.tasks;
  changed boolean := false;
BEGIN
  PERFORM workflow._engine_check_owner(j, 'retry');
  j := workflow._engine_job(retry_job.job_id, 'update');
  IF j.status = 'cancelled' THEN
    RAISE EXCEPTION 'job % is cancelled: its tasks do not run again', quote_literal(j.id)
      USING ERRCODE = '55000';
  END IF;
  -- Dead tasks, in id order (the lock order of batches); tolerated ones of
  -- stages that completed with them stay dead.
  FOR t IN
    SELECT * FROM workflow.tasks x
     WHERE x.job_id = retry_job.job_id AND x.status = 'failed'
       AND NOT (x.dead_tolerated AND EXISTS (SELECT 1 FROM workflow.stages s
                                             WHERE s.job_id = x.job_id AND s.stage = x.stage
                                               AND s.completed_at IS NOT NULL))
     ORDER BY x.id FOR UPDATE
  LOOP
    BEGIN
      PERFORM workflow._engine_requeue_dead(t);
      changed := true;
    EXCEPTION WHEN object_not_in_prerequisite_state THEN
      -- Its stage completed with it meanwhile (a completion committing
      -- after the query above): it stays dead, as the others of such stages.
      NULL;
    END;
  END LOOP;
  IF j.status = 'failed' THEN
    PERFORM workflow._engine_revive_job(j.id);
    changed := true;
  END IF;
  RETURN changed;
END;
$$;
COMMENT ON FUNCTION workflow.retry_job(text) IS
  'Re-runs a job''s dead work: every dead task is queued again (retries reset; tolerated ones of stages that '
  'completed with them stay), and a failed job runs again (status running, the tasks its failure cancelled queued '
  'again, each not before the run_after it had). true when anything changed; false for a job with nothing dead (running, pending, completed). 55000 for a '
  'cancelled job; P0002 unknown job; 42501 unless the session user owns the job or is a member of workflow_admin.';

REVOKE EXECUTE ON FUNCTION
  workflow.tolerate_dead_tasks(text, int, int),
  workflow.retry_task(text, text),
  workflow.retry_job(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  workflow.tolerate_dead_tasks(text, int, int),
  workflow.retry_task(text, text),
  workflow.retry_job(text)
  TO workflow_producer, workflow_admin;
-- Job -> Stage -> Task engine (1.4): pause and resume of a task type or a
-- job, and per-task-type concurrency limits. claim_tasks reads the task
-- type settings once per call; a paused type, a paused job: its tasks are
-- not claimed (claimed ones run on). A type with a limit is claimed by
-- _engine_claim_limited, exactly: the claims that would take its tasks
-- serialise on its settings row and count its claimed tasks under that lock.

-- Task types and their settings: admins only (they affect every producer).
CREATE OR REPLACE FUNCTION workflow._engine_check_admin(action text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  IF NOT workflow._is_admin() THEN
    RAISE EXCEPTION 'permission denied to %: role % is not a member of workflow_admin', action,
      quote_ident(session_user) USING ERRCODE = '42501';
  END IF;
END;
$$;
COMMENT ON FUNCTION workflow._engine_check_admin(text) IS
  'Internal: raises 42501 unless the session user is a member of workflow_admin.';
REVOKE EXECUTE ON FUNCTION workflow._engine_check_admin(text) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.pause_task_type(task_type text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  changed boolean;
BEGIN
  PERFORM workflow._engine_check_text('task_type', pause_task_type.task_type);
  PERFORM workflow._engine_check_admin('pause a task type');
  INSERT INTO workflow.task_type_settings AS s (task_type, paused_at)
  VALUES (pause_task_type.task_type, now())
  ON CONFLICT ON CONSTRAINT task_type_settings_pkey DO UPDATE SET paused_at = now(), updated_at = now()
   WHERE s.paused_at IS NULL
  RETURNING true INTO changed;
  RETURN coalesce(changed, false);
END;
$$;
COMMENT ON FUNCTION workflow.pause_task_type(text) IS
  'Stops claims of the task type (claimed tasks run on); true when this call paused it, false when it was paused '
  'already. For workflow_admin (42501 otherwise).';

CREATE OR REPLACE FUNCTION workflow.resume_task_type(task_type text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('task_type', resume_task_type.task_type);
  PERFORM workflow._engine_check_admin('resume a task type');
  UPDATE workflow.task_type_settings s SET paused_at = NULL, updated_at = now()
   WHERE s.task_type = resume_task_type.task_type AND s.paused_at IS NOT NULL;
  IF NOT FOUND THEN
    RETURN false;
  END IF;
  DELETE FROM workflow.task_type_settings s
   WHERE s.task_type = resume_task_type.task_type AND s.max_claimed IS NULL;
  RETURN true;
END;
$$;
COMMENT ON FUNCTION workflow.resume_task_type(text) IS
  'Lets claims take the task type again; true when this call resumed it, false when it was not paused. For '
  'workflow_admin (42501 otherwise).';

CREATE OR REPLACE FUNCTION workflow.set_task_type_limit(task_type text, max_claimed int)
RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('task_type', set_task_type_limit.task_type);
  IF max_claimed NOT BETWEEN 0 AND 1000000 THEN
    RAISE EXCEPTION 'max_claimed % is out of range 0..1000000 (NULL: no limit)', max_claimed
      USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_admin('limit a task type');
  INSERT INTO workflow.task_type_settings AS s (task_type, max_claimed)
  VALUES (set_task_type_limit.task_type, max_claimed)
  ON CONFLICT ON CONSTRAINT task_type_settings_pkey DO UPDATE SET max_claimed = excluded.max_claimed, updated_at = now();
  DELETE FROM workflow.task_type_settings s
   WHERE s.task_type = set_task_type_limit.task_type AND s.max_claimed IS NULL AND s.paused_at IS NULL;
END;
$$;
COMMENT ON FUNCTION workflow.set_task_type_limit(text, int) IS
  'At most max_claimed (0..1000000; NULL: no limit) tasks of the type claimed at once, enforced by claim_tasks '
  'exactly under any concurrency (claims that would take the type serialise on it). Lowering it below the tasks '
  'claimed now takes effect as they finish. For workflow_admin (42501 otherwise).';

CREATE OR REPLACE VIEW workflow.task_type_status WITH (security_invoker = true) AS
SELECT s.task_type, s.paused_at IS NOT NULL AS paused, s.paused_at, s.max_claimed,
       (SELECT count(*) FROM workflow.tasks t WHERE t.task_type = s.task_type AND t.status = 'claimed')::int
         AS claimed
  FROM workflow.task_type_settings s;
COMMENT ON VIEW workflow.task_type_status IS
  'Task types with settings: paused, max_claimed (NULL: no limit) and their tasks claimed now.';
REVOKE ALL ON workflow.task_type_status FROM PUBLIC;
REVOKE ALL ON workflow.task_type_settings FROM PUBLIC;
GRANT SELECT ON workflow.task_type_status, workflow.task_type_settings
  TO workflow_producer, workflow_worker, workflow_admin;

CREATE OR REPLACE FUNCTION workflow.pause_job(job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_owner(workflow._engine_job(pause_job.job_id), 'pause');
  UPDATE workflow.jobs j SET paused_at = now(), updated_at = now()
   WHERE j.id = pause_job.job_id AND j.paused_at IS NULL AND j.status IN ('pending', 'running');
  RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION workflow.pause_job(text) IS
  'Stops claims of the job''s tasks (claimed ones run on; stages still complete and hand over); true when this '
  'call paused it, false when it was paused already or has ended. P0002 unknown job; 42501 unless the session '
  'user owns the job or is a member of workflow_admin.';

CREATE OR REPLACE FUNCTION workflow.resume_job(job_id text)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_owner(workflow._engine_job(resume_job.job_id), 'resume');
  UPDATE workflow.jobs j SET paused_at = NULL, updated_at = now()
   WHERE j.id = resume_job.job_id AND j.paused_at IS NOT NULL;
  RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION workflow.resume_job(text) IS
  'Lets claims take the job''s tasks again; true when this call resumed it, false when it was not paused. '
  'P0002 unknown job; 42501 unless the session user owns the job or is a member of workflow_admin.';

-- claim_tasks when a type with a limit is in reach (arguments checked by
-- claim_tasks). 1. The queued tasks of types at their limit (counted
-- without a lock) are left out. 2. Candidates are locked (FOR UPDATE SKIP LOCKED), as by the plain
-- claim, best first, without claiming them. 3. Each limited type among them,
-- in name order, is locked (its settings row) and its claimed tasks counted
-- under that lock: every earlier claim of the type has committed. 4. Only
-- the candidates within each type's room are claimed; the others stay
-- queued (locked until this transaction ends). A lease that expired takes
-- no room: its task is counted as claimed already. Locks: tasks (SKIP
-- LOCKED: no wait) -> task type rows in name order; nobody holding a type
-- row waits for a task, so this cannot deadlock.
CREATE OR REPLACE FUNCTION workflow._engine_claim_limited(worker text, max_tasks int, task_types text[],
                                                         lease interval, excluded text[], limited text[],
                                                         prios int[])
RETURNS SETOF workflow.tasks
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = force_generic_plan
SET jit = off
-- The claim's filters multiply into an estimate of one row, for which the
-- planner prefers reading every claimable task of the priority (bitmap) and
-- sorting them: 75 ms a claim at 50k queued. The claim index read in order
-- under the LIMIT is what a claim must do: O(log n + claimed).
SET enable_bitmapscan = off
SET enable_sort = off
AS $$
DECLARE
  full_types text[];
  c_jobs text[];
  c_ids text[];
  c_types text[];
  c_queued boolean[];
  take boolean[];
  typ text;
  room int;
  cap int;
  paused boolean;
  prio int;
BEGIN
  -- The count under the type's lock sees every earlier claim only with a
  -- snapshot per statement.
  IF current_setting('transaction_isolation') <> 'read committed' THEN
    RAISE EXCEPTION 'a claim that may take a task type with a concurrency limit must run in READ COMMITTED (not %)',
      current_setting('transaction_isolation') USING ERRCODE = '25001';
  END IF;
  SELECT coalesce(array_agg(s.task_type), '{}') INTO full_types
    FROM workflow.task_type_settings s
   WHERE s.task_type = ANY (limited)
     AND (SELECT count(*) FROM workflow.tasks x WHERE x.task_type = s.task_type AND x.status = 'claimed')
         >= s.max_claimed;

  -- Per priority present, highest first (as claim_tasks: an equality reads
  -- the claim index in order and the LIMIT stops the scan).
  c_jobs := '{}'; c_ids := '{}'; c_types := '{}'; c_queued := '{}';
  FOREACH prio IN ARRAY prios LOOP
    WITH picked AS (
      SELECT t.job_id, t.id, t.task_type, t.status = 'queued' AS queued
        FROM workflow.tasks t
       WHERE t.status IN ('queued', 'claimed') AND t.priority = prio
         AND (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END) <= now()
         AND (task_types IS NULL OR t.task_type = ANY (task_types))
         AND t.task_type <> ALL (excluded)
         -- a type at its limit: only its expired leases (they take no room)
         AND (t.status = 'claimed' OR t.task_type <> ALL (full_types))
         AND (t.status = 'queued' OR t.deadline_at IS NULL OR t.deadline_at > now())
         AND EXISTS (SELECT 1 FROM workflow.jobs j
                      WHERE j.id = t.job_id AND j.status IN ('pending', 'running')
                        AND j.stage >= t.stage AND j.paused_at IS NULL OFFSET 0)
       ORDER BY t.priority DESC, (CASE WHEN t.status = 'queued' THEN t.run_after ELSE t.lease_expires_at END)
       LIMIT max_tasks - cardinality(c_ids)
         FOR UPDATE OF t SKIP LOCKED
    )
    SELECT c_jobs || coalesce(array_agg(p.job_id), '{}'), c_ids || coalesce(array_agg(p.id), '{}'),
           c_types || coalesce(array_agg(p.task_type), '{}'), c_queued || coalesce(array_agg(p.queued), '{}')
      INTO c_jobs, c_ids, c_types, c_queued FROM picked p;
    EXIT WHEN cardinality(c_ids) >= max_tasks;
  END LOOP;
  IF cardinality(c_ids) = 0 THEN
    RETURN;
  END IF;

  take := array_fill(true, ARRAY[cardinality(c_ids)]);
  FOR typ IN SELECT DISTINCT u.typ FROM unnest(c_types) AS u(typ) WHERE u.typ = ANY (limited) ORDER BY 1 LOOP
    SELECT s.max_claimed, s.paused_at IS NOT NULL INTO cap, paused
      FROM workflow.task_type_settings s WHERE s.task_type = typ FOR UPDATE;
    IF NOT FOUND OR cap IS NULL THEN
      CONTINUE;  -- the limit was removed meanwhile
    END IF;
    room := CASE WHEN paused THEN 0
                 ELSE cap - (SELECT count(*) FROM workflow.tasks x
                              WHERE x.task_type = typ AND x.status = 'claimed')::int END;
    FOR i IN 1 .. cardinality(c_ids) LOOP
      CONTINUE WHEN c_types[i] <> typ;
      IF paused THEN
        take[i] := false;
      ELSIF c_queued[i] THEN
        take[i] := room > 0;
        room := room - 1;
      END IF;
    END LOOP;
  END LOOP;

  RETURN QUERY
  UPDATE workflow.tasks t
     SET status = 'claimed', claimed_by = worker, heartbeat = now(),
         lease_expires_at = now() + lease, deadline_at = now() + t.timeout, updated_at = now()
    FROM unnest(c_jobs, c_ids, take) AS c(job_id, id, ok)
   WHERE c.ok AND t.job_id = c.job_id AND t.id = c.id
  RETURNING t.*;
END;
$$;
COMMENT ON FUNCTION workflow._engine_claim_limited(text, int, text[], interval, text[], text[], int[]) IS
  'Internal (claim_tasks): the claim when a task type with a concurrency limit is in reach; exact under '
  'concurrency (each limited type''s claims serialise on its settings row and count its claimed tasks).';
REVOKE EXECUTE ON FUNCTION workflow._engine_claim_limited(text, int, text[], interval, text[], text[], int[]) FROM PUBLIC;

REVOKE EXECUTE ON FUNCTION
  workflow.pause_task_type(text),
  workflow.resume_task_type(text),
  workflow.set_task_type_limit(text, int),
  workflow.pause_job(text),
  workflow.resume_job(text)
  FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
  workflow.pause_task_type(text),
  workflow.resume_task_type(text),
  workflow.set_task_type_limit(text, int)
  TO workflow_admin;
GRANT EXECUTE ON FUNCTION
  workflow.pause_job(text),
  workflow.resume_job(text)
  TO workflow_producer, workflow_admin;
-- Job -> Stage -> Task engine (1.4): task timeouts. A task added with a
-- timeout (add_tasks) gets a deadline when it is claimed (deadline_at = claim
-- time + timeout), separate from the lease: heartbeats extend the lease, not
-- the deadline. Past its deadline the attempt fails, as fail_task would with
-- the error 'timed out': the task is queued again after the backoff while it
-- has retries left, else it is dead. claim_tasks does it first (one probe of
-- the deadline index per claim), and workers may call
-- expire_timed_out_tasks. The worker that held it is fenced out: its
-- complete is 55000, its heartbeat false.

-- Fails up to max_tasks attempts whose deadline has passed, oldest first.
-- Lock order job -> task, neither waited for: a job or task busy elsewhere
-- is left for the next call.
CREATE OR REPLACE FUNCTION workflow._engine_expire_timeouts(max_tasks int)
RETURNS int
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET plan_cache_mode = auto  -- not claim_tasks' generic plans (Citus plans with the values)
AS $$
DECLARE
  c record;
  t workflow.tasks;
  n int := 0;
BEGIN
  FOR c IN
    SELECT x.job_id, x.id FROM workflow.tasks x
     WHERE x.status = 'claimed' AND x.deadline_at <= now()
     ORDER BY x.deadline_at LIMIT max_tasks
  LOOP
    PERFORM 1 FROM workflow.jobs j WHERE j.id = c.job_id FOR NO KEY UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    SELECT * INTO t FROM workflow.tasks x
     WHERE x.job_id = c.job_id AND x.id = c.id AND x.status = 'claimed' AND x.deadline_at <= now()
       FOR UPDATE SKIP LOCKED;
    CONTINUE WHEN NOT FOUND;
    PERFORM workflow._engine_fail_attempt(t, format('timed out after %s (deadline %s)', t.timeout, t.deadline_at),
                                          true, interval '2 seconds', interval '1 hour', t.claimed_by);
    n := n + 1;
  END LOOP;
  RETURN n;
END;
$$;
COMMENT ON FUNCTION workflow._engine_expire_timeouts(int) IS
  'Internal (claim_tasks, expire_timed_out_tasks): fails up to max_tasks claimed attempts whose deadline passed.';
REVOKE EXECUTE ON FUNCTION workflow._engine_expire_timeouts(int) FROM PUBLIC;

CREATE OR REPLACE FUNCTION workflow.expire_timed_out_tasks(max_tasks int DEFAULT 100)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_not_null('max_tasks', max_tasks);
  IF max_tasks NOT BETWEEN 1 AND 10000 THEN
    RAISE EXCEPTION 'max_tasks % is out of range 1..10000', max_tasks USING ERRCODE = '22023';
  END IF;
  RETURN workflow._engine_expire_timeouts(max_tasks);
END;
$$;
COMMENT ON FUNCTION workflow.expire_timed_out_tasks(int) IS
  'Fails up to max_tasks (1..10000) claimed tasks whose deadline (claim time + the task''s timeout) has passed, '
  'as fail_task(error => ''timed out ...'', worker => its claimer) would: queued again after the backoff while '
  'retries are left, else dead. Returns how many. claim_tasks does it too, before it claims.';
REVOKE EXECUTE ON FUNCTION workflow.expire_timed_out_tasks(int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.expire_timed_out_tasks(int) TO workflow_worker, workflow_admin;
-- Job -> Stage -> Task engine (1.4): retention. purge_jobs removes finished
-- jobs with their stages, counters and tasks, a bounded batch per call (one
-- short transaction each; call it until it returns 0, or every minute from
-- pg_cron). A job in use elsewhere (its row locked) is skipped, never
-- waited for. A direct DELETE FROM workflow.jobs cascades the same way: the
-- stages by their foreign key, the tasks and counters (no foreign key: a
-- per-row check would dominate fan-out) by the statement trigger below.

CREATE OR REPLACE FUNCTION workflow.purge_jobs(older_than interval,
                                    statuses text[] DEFAULT ARRAY['completed', 'failed', 'cancelled'],
                                    max_jobs int DEFAULT 1000)
RETURNS int
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
  cutoff timestamptz;
  ids text[];
BEGIN
  PERFORM workflow._engine_check_not_null('older_than', older_than);
  PERFORM workflow._engine_check_not_null('statuses', statuses);
  PERFORM workflow._engine_check_not_null('max_jobs', max_jobs);
  BEGIN
    cutoff := now() - older_than;
  EXCEPTION WHEN datetime_field_overflow THEN
    RAISE EXCEPTION 'older_than % is out of range', older_than USING ERRCODE = '22023';
  END;
  IF cutoff > now() OR NOT isfinite(cutoff) THEN
    RAISE EXCEPTION 'older_than % must not be negative', older_than USING ERRCODE = '22023';
  END IF;
  IF array_ndims(statuses) > 1 THEN
    RAISE EXCEPTION 'statuses must be a one-dimensional array' USING ERRCODE = '22023';
  END IF;
  IF cardinality(statuses) = 0 OR array_position(statuses, NULL) IS NOT NULL
     OR NOT statuses <@ ARRAY['completed', 'failed', 'cancelled'] THEN
    RAISE EXCEPTION 'statuses % must be a non-empty list of completed, failed, cancelled', statuses
      USING ERRCODE = '22023';
  END IF;
  IF max_jobs NOT BETWEEN 1 AND 100000 THEN
    RAISE EXCEPTION 'max_jobs % is out of range 1..100000', max_jobs USING ERRCODE = '22023';
  END IF;
  PERFORM workflow._engine_check_admin('purge jobs');

  SELECT array_agg(p.id) INTO ids FROM (
    SELECT j.id FROM workflow.jobs j
     WHERE j.finished_at IS NOT NULL AND j.finished_at < cutoff AND j.status = ANY (statuses)
     ORDER BY j.finished_at
     LIMIT max_jobs
       FOR UPDATE SKIP LOCKED) p;
  IF ids IS NULL THEN
    RETURN 0;
  END IF;
  -- Children first (lock order job -> task -> slot -> stage), then the jobs
  -- (their stages go by the foreign key).
  DELETE FROM workflow.tasks t WHERE t.job_id = ANY (ids);
  DELETE FROM workflow.stage_slots c WHERE c.job_id = ANY (ids);
  DELETE FROM workflow.jobs j WHERE j.id = ANY (ids);
  RETURN cardinality(ids);
END;
$$;
COMMENT ON FUNCTION workflow.purge_jobs(interval, text[], int) IS
  'Deletes up to max_jobs (1..100000) jobs that finished (statuses: any of completed, failed, cancelled) more '
  'than older_than (>= 0) ago, oldest first, with their stages, counters and tasks; returns how many. One '
  'bounded transaction per call: call it until it returns 0. Jobs locked elsewhere are skipped. For '
  'workflow_admin (42501 otherwise).';
REVOKE EXECUTE ON FUNCTION workflow.purge_jobs(interval, text[], int) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.purge_jobs(interval, text[], int) TO workflow_admin;

CREATE OR REPLACE FUNCTION workflow._engine_jobs_deleted()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  DELETE FROM workflow.tasks t WHERE t.job_id IN (SELECT g.id FROM gone_jobs g);
  DELETE FROM workflow.stage_slots c WHERE c.job_id IN (SELECT g.id FROM gone_jobs g);
  RETURN NULL;
END;
$$;
COMMENT ON FUNCTION workflow._engine_jobs_deleted() IS
  'Internal (trigger jobs_delete_cascade): deletes the tasks and stage counters of deleted jobs.';
REVOKE EXECUTE ON FUNCTION workflow._engine_jobs_deleted() FROM PUBLIC;

-- Not on a Citus cluster: workflow.distribute() drops it (Citus refuses
-- triggers on distributed tables), and purge_jobs' locking read over every
-- shard is refused there too (not supported on a cluster yet).
CREATE OR REPLACE TRIGGER jobs_delete_cascade
  AFTER DELETE ON workflow.jobs
  REFERENCING OLD TABLE AS gone_jobs
  FOR EACH STATEMENT EXECUTE FUNCTION workflow._engine_jobs_deleted();
-- Job -> Stage -> Task engine (1.4): a handler reports its progress on the
-- task it runs (tasks.progress, shown by `workflow watch` and job_progress's
-- readers). Fenced like heartbeat_task: only the worker holding the claim
-- writes.

CREATE OR REPLACE FUNCTION workflow.report_progress(task_id text, job_id text, progress jsonb,
                                         worker text DEFAULT NULL)
RETURNS boolean
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
  PERFORM workflow._engine_check_text('task_id', task_id, 300);
  PERFORM workflow._engine_check_text('job_id', job_id);
  PERFORM workflow._engine_check_not_null('progress', progress);
  IF worker IS NOT NULL THEN
    PERFORM workflow._engine_check_text('worker', worker);
  END IF;
  IF pg_column_size(progress) > 65536 THEN
    RAISE EXCEPTION 'progress is too large (% bytes, at most 65536)', pg_column_size(progress)
      USING ERRCODE = '22023';
  END IF;
  UPDATE workflow.tasks t SET progress = report_progress.progress, updated_at = now()
   WHERE t.job_id = report_progress.job_id AND t.id = report_progress.task_id AND t.status = 'claimed'
     AND (report_progress.worker IS NULL OR t.claimed_by = report_progress.worker);
  IF FOUND THEN
    RETURN true;
  END IF;
  PERFORM 1 FROM workflow.tasks t WHERE t.job_id = report_progress.job_id AND t.id = report_progress.task_id;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'task % of job % not found', quote_literal(task_id), quote_literal(job_id)
      USING ERRCODE = 'P0002';
  END IF;
  RETURN false;
END;
$$;
COMMENT ON FUNCTION workflow.report_progress(text, text, jsonb, text) IS
  'Stores progress (a jsonb of at most 64 kB) on a claimed task (tasks.progress), only when claimed by worker '
  'when given; true when written, false (nothing written) when the task is not claimed (by that worker). '
  'P0002 unknown task.';
REVOKE EXECUTE ON FUNCTION workflow.report_progress(text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION workflow.report_progress(text, text, jsonb, text) TO workflow_worker, workflow_admin;
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
  -- then finds its job and adds nothing.
  INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner)
  VALUES (new_id, s.job_type, s.total_stages, s.parameters, s.owner)
  ON CONFLICT (id) DO NOTHING;
  IF NOT FOUND THEN
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
  'the same id and writes nothing. P0002 unknown schedule. For workflow_admin (pg_cron runs it as the role that '
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
-- Monitoring views (1.4; stuck_jobs reworked in 1.5): what a dashboard (`workflow serve`) or a monitoring
-- system reads. Re-runnable as it is (CREATE OR REPLACE, GRANT, COMMENT): the
-- 1.3 -> 1.4 and 1.4 -> 1.5 upgrades run this file (src/sql/upgrade/*.list).
--
-- The views run with their owner's rights (not security_invoker): they show
-- every job, whoever owns it, and are readable by workflow_monitor (a new
-- NOLOGIN role: grant it to the login role of a dashboard or an exporter)
-- and workflow_admin only. Nothing here writes.

-- workflow_monitor is made in 01_roles.sql (the 1.3 -> 1.4 upgrade runs it too).
GRANT USAGE ON SCHEMA workflow TO workflow_monitor;

-- Tasks by type and status (every task the table holds, finished ones too).
CREATE OR REPLACE VIEW workflow.queue_depth AS
SELECT t.task_type, t.status, count(*) AS tasks
  FROM workflow.tasks t
 GROUP BY t.task_type, t.status;
COMMENT ON VIEW workflow.queue_depth IS
  'Tasks by task_type and status (queued, claimed, completed, failed, cancelled): the queue depth is status = queued.';

-- Queued tasks whose run_after has passed: claimable now.
CREATE OR REPLACE VIEW workflow.oldest_runnable_task AS
SELECT t.task_type, count(*) AS runnable_tasks, min(t.run_after) AS runnable_since,
       extract(epoch FROM now() - min(t.run_after))::float8 AS age_seconds
  FROM workflow.tasks t
 WHERE t.status = 'queued' AND t.run_after <= now()
 GROUP BY t.task_type;
COMMENT ON VIEW workflow.oldest_runnable_task IS
  'Per task_type: queued tasks that may be claimed now (run_after passed) and how long the oldest has waited '
  '(age_seconds, since its run_after). No row: nothing of that type is waiting.';

-- Claims whose lease ran out: the worker died or hangs; the next claim_tasks takes them back.
CREATE OR REPLACE VIEW workflow.stale_claims AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.claimed_by, t.heartbeat, t.lease_expires_at,
       now() - t.lease_expires_at AS expired_for
  FROM workflow.tasks t
 WHERE t.status = 'claimed' AND t.lease_expires_at < now();
COMMENT ON VIEW workflow.stale_claims IS
  'Claimed tasks whose lease has expired and that no worker has reclaimed yet (claim_tasks takes them back).';

-- One row per job with its task totals (from workflow.stages: no task scan).
CREATE OR REPLACE VIEW workflow.job_summary AS
SELECT j.id AS job_id, j.job_type, j.status, j.stage, j.total_stages, j.owner, j.parameters, j.error,
       j.created_at, j.updated_at, j.finished_at,
       coalesce(s.total_tasks, 0) AS total_tasks, coalesce(s.complete_stages, 0) AS complete_stages
  FROM workflow.jobs j
  LEFT JOIN LATERAL (SELECT sum(x.total_tasks)::bigint AS total_tasks,
                            count(*) FILTER (WHERE x.completed_at IS NOT NULL) AS complete_stages
                       FROM workflow.stages x WHERE x.job_id = j.id) s ON true;
COMMENT ON VIEW workflow.job_summary IS
  'Every job with its status, current stage, parameters, error, and the tasks added to its stages so far.';

-- Per stage of every job: tasks by status and completions in the last minute.
-- Filter by job_id (or job_status = 'running'): each row counts its stage's tasks.
CREATE OR REPLACE VIEW workflow.stage_progress AS
SELECT j.id AS job_id, j.job_type, j.status AS job_status, s.stage, s.stage = j.stage AS current,
       s.sealed, s.total_tasks, t.completed, t.failed, t.queued, t.claimed,
       s.completed_at IS NOT NULL AS complete, s.created_at, s.completed_at,
       t.completed_last_minute, (t.completed_last_minute / 60.0)::float8 AS completions_per_second
  FROM workflow.jobs j
  JOIN workflow.stages s ON s.job_id = j.id
  CROSS JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status = 'completed') AS completed,
           count(*) FILTER (WHERE x.status = 'failed') AS failed,
           count(*) FILTER (WHERE x.status = 'queued') AS queued,
           count(*) FILTER (WHERE x.status = 'claimed') AS claimed,
           count(*) FILTER (WHERE x.completed_at > now() - interval '1 minute') AS completed_last_minute
      FROM workflow.tasks x WHERE x.job_id = s.job_id AND x.stage = s.stage) t;
COMMENT ON VIEW workflow.stage_progress IS
  'Per stage of every job: tasks completed, failed, queued and claimed, and throughput (completions in the '
  'last minute, and per second over it). Filter by job_id or job_status: each row counts its stage''s tasks.';

-- Per stage of every job, from its counters alone (no task is read): what a
-- live progress bar needs, O(the stage's slot_count) however many tasks it has.
CREATE OR REPLACE VIEW workflow.stage_counters AS
SELECT s.job_id, s.stage, s.sealed, s.total_tasks, c.unfinished AS unfinished_tasks,
       s.total_tasks - c.unfinished AS finished_tasks, s.completed_at IS NOT NULL AS complete
  FROM workflow.stages s
  CROSS JOIN LATERAL (SELECT coalesce(sum(x.remaining), 0)::int AS unfinished
                        FROM workflow.stage_slots x WHERE x.job_id = s.job_id AND x.stage = s.stage) c;
COMMENT ON VIEW workflow.stage_counters IS
  'Per stage of every job, from its fan-in counters (no task scan): total_tasks added, unfinished_tasks (queued, '
  'claimed, cancelled, or dead in a stage that does not tolerate it), finished_tasks = total - unfinished (completed, or dead '
  'and tolerated by the stage). The dashboard''s live progress; stage_progress has the exact split by status.';

-- Completions per second of the last 10 minutes, per job (the dashboard's chart).
CREATE OR REPLACE VIEW workflow.task_completions AS
SELECT t.job_id, date_trunc('second', t.completed_at) AS second, count(*) AS completions
  FROM workflow.tasks t
 WHERE t.completed_at > now() - interval '10 minutes'
 GROUP BY t.job_id, date_trunc('second', t.completed_at);
COMMENT ON VIEW workflow.task_completions IS
  'Tasks completed per job and second over the last 10 minutes (seconds with none have no row).';

-- Tasks that failed and are not completed: retrying (queued again) or dead (failed).
-- The partial index holds only those (few) rows: the view reads it instead of
-- the whole table, and a claim or completion of a task that never failed
-- adds nothing to it.
CREATE INDEX IF NOT EXISTS tasks_failed_idx ON workflow.tasks (updated_at)
  WHERE last_error IS NOT NULL AND status IN ('queued', 'claimed', 'failed');
CREATE OR REPLACE VIEW workflow.failed_tasks AS
SELECT t.job_id, t.id AS task_id, t.task_type, t.stage, t.status, t.retry_count, t.max_retries,
       t.last_error, CASE WHEN t.status = 'queued' THEN t.run_after END AS next_attempt_at, t.updated_at
  FROM workflow.tasks t
 WHERE t.last_error IS NOT NULL AND t.status IN ('queued', 'claimed', 'failed');
COMMENT ON VIEW workflow.failed_tasks IS
  'Tasks whose last attempt failed and that have not completed since: status queued or claimed (being '
  'retried; next_attempt_at) or failed (dead: out of retries or not retryable), with last_error.';

-- Completed stages and how long each took from its creation (first add_tasks) to completion.
CREATE OR REPLACE VIEW workflow.stage_latency AS
SELECT s.job_id, j.job_type, s.stage, s.created_at, s.completed_at,
       extract(epoch FROM s.completed_at - s.created_at)::float8 AS seconds
  FROM workflow.stages s JOIN workflow.jobs j ON j.id = s.job_id
 WHERE s.completed_at IS NOT NULL;
COMMENT ON VIEW workflow.stage_latency IS
  'Every completed stage and its latency in seconds, from the stage''s creation to its completion.';

-- Jobs that are not ending by themselves: see the reasons in the comment.
-- 1.5: an unfinished stage's tasks are read only when it may be stuck: it
-- is 5 minutes old (created and sealed) and none of its tasks changed in
-- the last 5 minutes (the EXISTS stops at the first that did); a moving
-- stage costs no count of its tasks (before, every poll counted them all).
CREATE OR REPLACE VIEW workflow.stuck_jobs AS
SELECT j.id AS job_id, j.job_type, j.status, j.stage, r.reason, r.since
  FROM workflow.jobs j
  LEFT JOIN workflow.stages s ON s.job_id = j.id AND s.stage = j.stage
  CROSS JOIN LATERAL (
    SELECT s.job_id IS NOT NULL AND s.completed_at IS NULL
           AND greatest(s.created_at, s.sealed_at) < now() - interval '5 minutes'
           AND NOT EXISTS (SELECT FROM workflow.tasks y
                            WHERE y.job_id = s.job_id AND y.stage = s.stage
                              AND y.updated_at >= now() - interval '5 minutes') AS idle) i
  LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE x.status IN ('queued', 'claimed')) AS open_tasks,
           count(*) FILTER (WHERE x.status = 'claimed' OR (x.status = 'queued' AND x.run_after <= now()))
             AS due_tasks,
           max(x.updated_at) AS last_update
      FROM workflow.tasks x WHERE i.idle AND x.job_id = s.job_id AND x.stage = s.stage) t ON true
  CROSS JOIN LATERAL (
    SELECT CASE
             WHEN s.job_id IS NULL THEN 'current stage has no tasks'
             WHEN s.completed_at IS NOT NULL THEN 'stage complete, job not advanced'
             WHEN t.open_tasks = 0 AND NOT s.sealed THEN 'stage not sealed, no task to run'
             ELSE 'no task progress'
           END AS reason,
           CASE
             WHEN s.job_id IS NULL THEN j.updated_at
             WHEN s.completed_at IS NOT NULL
               THEN coalesce(s.handover_expires_at, s.completed_at + j.handover_lease)
             -- 1.8: open tasks that all wait for later (run_at, a retry's
             -- backoff) are a job waiting as asked, not a stuck one
             WHEN i.idle AND (t.open_tasks = 0 OR t.due_tasks > 0)
               THEN greatest(s.created_at, s.sealed_at, t.last_update)
             -- else NULL: moving, waiting for its tasks' time, or younger than 5 minutes; not stuck
           END AS since) r
 WHERE j.status IN ('pending', 'running')
   AND r.since < now() - CASE WHEN s.completed_at IS NOT NULL THEN interval '0' ELSE interval '5 minutes' END;
COMMENT ON VIEW workflow.stuck_jobs IS
  'Pending or running jobs that are not moving: their current stage has no tasks, or is complete but the job '
  'was not advanced past its hand-over lease, or is unsealed with no task to run, or no task of it changed, '
  'for 5 minutes (not when its open tasks all wait for a later run_after: run_at, retry backoff). since: when it '
  'stopped moving.';

REVOKE ALL ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs FROM PUBLIC;
GRANT SELECT ON workflow.queue_depth, workflow.oldest_runnable_task, workflow.stale_claims,
  workflow.job_summary, workflow.stage_progress, workflow.stage_counters, workflow.task_completions,
  workflow.failed_tasks, workflow.stage_latency, workflow.stuck_jobs TO workflow_monitor, workflow_admin;
-- Open tasks at a glance (1.5): what `workflow serve` polls for its queues
-- panel and /metrics, in one pass over the open (queued and claimed) tasks
-- instead of one pass per view (queue_depth, oldest_runnable_task,
-- stale_claims). The pass reads the claimable index's rows
-- (tasks_claimable_idx holds only open tasks), so it costs as much as there
-- are open tasks, however many finished ones the table keeps. Re-runnable as
-- it is: the 1.4 -> 1.5 upgrade runs this file (src/sql/upgrade/1.4--1.5.list).
CREATE OR REPLACE VIEW workflow.open_task_summary AS
SELECT t.task_type, t.status, count(*) AS tasks,
       count(*) FILTER (WHERE t.status = 'queued' AND t.run_after <= now()) AS runnable_tasks,
       min(t.run_after) FILTER (WHERE t.status = 'queued' AND t.run_after <= now()) AS runnable_since,
       count(*) FILTER (WHERE t.status = 'claimed' AND t.lease_expires_at < now()) AS stale_claims
  FROM workflow.tasks t
 WHERE t.status IN ('queued', 'claimed')
 GROUP BY t.task_type, t.status;
COMMENT ON VIEW workflow.open_task_summary IS
  'Per task_type and open status (queued, claimed), in one pass over the open tasks: tasks (as queue_depth), '
  'runnable_tasks and runnable_since (queued, run_after passed: as oldest_runnable_task), stale_claims (claimed, '
  'lease expired: as stale_claims counts them).';
REVOKE ALL ON workflow.open_task_summary FROM PUBLIC;
GRANT SELECT ON workflow.open_task_summary TO workflow_monitor, workflow_admin;
-- Wiring between features, run last: every survey step write is recorded in
-- the audit history (issue 4). Excluded: nothing; the log keeps the step's
-- value and completed_at changes, keyed by survey_steps.id.
SELECT workflow.enable_audit('workflow.survey_steps'::regclass);
