-- pgTAP: the job ids a schedule's firings take (name@YYYY-MM-DDTHH:MIZ, src/sql/45_engine_schedule.sql)
-- belong to the schedule, as 'dedupe-' ids belong to dedupe keys. Another producer knows the id
-- of the next firing (the schedule's name and the minute); if it could create a job of that id
-- first, the firing would "find that id and create nothing": fire_schedule answered the other
-- role's job as the schedule's firing (another job type, parameters and owner), and the
-- schedule's owner got no job that night. Found by the sched20 review.
-- Runs without pg_cron: the schedule row is written directly, fire_schedule is what pg_cron calls.
-- The roles are created in this transaction and rolled back with it.
BEGIN;
SELECT plan(9);

CREATE ROLE sched_ids_owner LOGIN;
CREATE ROLE sched_ids_other LOGIN;
GRANT workflow_producer TO sched_ids_owner, sched_ids_other;
INSERT INTO workflow.schedules (name, cron, job_type, parameters, total_stages, task_type, tasks, owner)
VALUES ('sched-ids-nightly', '0 2 * * *', 'report', '{"kind": "daily"}', 1, 'export', ARRAY['{}']::jsonb[],
        'sched_ids_owner');
-- The id this minute's firing takes (now() is fixed in the transaction).
CREATE FUNCTION pg_temp.firing_id() RETURNS text LANGUAGE sql AS $$
  SELECT 'sched-ids-nightly@' || to_char(date_trunc('minute', now()) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI"Z"')
$$;
GRANT EXECUTE ON FUNCTION pg_temp.firing_id() TO PUBLIC;

SET SESSION AUTHORIZATION sched_ids_other;
SELECT throws_ok(format('SELECT workflow.create_job(%L, %L, 1, %L)', 'evil', '{"evil": true}', pg_temp.firing_id()),
                 '22023', NULL, 'another producer cannot create a job with the id of a schedule''s firing');
RESET SESSION AUTHORIZATION;
SELECT is((SELECT count(*) FROM workflow.jobs WHERE id = pg_temp.firing_id()), 0::bigint, 'nothing written');

SELECT is(workflow.fire_schedule('sched-ids-nightly'), pg_temp.firing_id(), 'the firing answers its id');
SELECT is((SELECT owner || ' ' || job_type || ' ' || (parameters->>'kind') FROM workflow.jobs WHERE id = pg_temp.firing_id()),
          'sched_ids_owner report daily', 'the job of that id is the schedule''s, owned by its owner');
SELECT is((SELECT count(*) FROM workflow.tasks WHERE job_id = pg_temp.firing_id()), 1::bigint,
          'with stage 1''s tasks');

-- A job of a firing's id made before 1.10 refused such ids (here written directly): the
-- firing is 23505, not that job answered as the schedule's, and the schedule is left as it was.
INSERT INTO workflow.schedules (name, cron, job_type, parameters, total_stages, owner)
VALUES ('sched-ids-squatted', '0 3 * * *', 'report', '{}', 1, 'sched_ids_owner');
INSERT INTO workflow.jobs (id, job_type, total_stages, parameters, owner)
VALUES (replace(pg_temp.firing_id(), 'sched-ids-nightly', 'sched-ids-squatted'), 'evil', 1, '{"evil": true}',
        'sched_ids_other');
SELECT throws_ok($$SELECT workflow.fire_schedule('sched-ids-squatted')$$, '23505', NULL,
                 'a firing whose id another role''s job holds is 23505');
SELECT is((SELECT owner || ' ' || job_type FROM workflow.jobs
            WHERE id = replace(pg_temp.firing_id(), 'sched-ids-nightly', 'sched-ids-squatted')),
          'sched_ids_other evil', 'that job is left as it was');
SELECT is((SELECT last_job_id FROM workflow.schedules WHERE name = 'sched-ids-squatted'), NULL,
          'the schedule records no firing');
-- A second firing of the same minute still answers the first's job.
SELECT is(workflow.fire_schedule('sched-ids-nightly'), pg_temp.firing_id(), 'a second firing answers the same id');

SELECT * FROM finish();
ROLLBACK;
