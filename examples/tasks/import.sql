-- examples/tasks: import of the spreadsheet's CSV export. The client loads
-- the file with COPY into a temporary table, then import_tasks validates
-- every record and inserts all of them, or raises 22023 listing the bad
-- records (record number, column, problem) and inserts none:
--   BEGIN;
--   SELECT tasks_app.begin_import();
--   COPY pg_temp.task_import (title, description, assignee_telegram_id, site,
--        due_date, due_time, reminder_date, reminder_time, status, priority,
--        repeat_interval) FROM STDIN (FORMAT csv, HEADER true);
--   SELECT tasks_app.import_tasks(<acting user id>);   -- the number inserted
--   COMMIT;

-- The staging table for this transaction (dropped at its end).
CREATE FUNCTION tasks_app.begin_import() RETURNS void LANGUAGE sql AS $$
  CREATE TEMP TABLE task_import (
    title text, description text, assignee_telegram_id text, site text,
    due_date text, due_time text, reminder_date text, reminder_time text,
    status text, priority text, repeat_interval text,
    record bigint GENERATED ALWAYS AS IDENTITY
  ) ON COMMIT DROP;
$$;

-- Whether `value` reads as `type` (NULL and '' count as absent: true).
CREATE FUNCTION tasks_app.reads_as(value text, type regtype) RETURNS boolean
LANGUAGE plpgsql STABLE AS $$
BEGIN
  IF value IS NULL OR btrim(value) = '' THEN RETURN true; END IF;
  EXECUTE format('SELECT %L::%s', btrim(value), type);
  RETURN true;
EXCEPTION WHEN data_exception THEN
  RETURN false;
END $$;

CREATE FUNCTION tasks_app.import_tasks(acting_user bigint) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE problems text[]; n bigint; total bigint;
BEGIN
  PERFORM tasks_app.act_as(acting_user);
  IF to_regclass('pg_temp.task_import') IS NULL THEN
    RAISE EXCEPTION 'tasks_app.import_tasks: call tasks_app.begin_import() and COPY first'
      USING ERRCODE = '55000';
  END IF;
  SELECT array_agg(format('record %s: %s', record, problem) ORDER BY record), count(*)
  INTO problems, n
  FROM (
    SELECT i.record, p.problem
    FROM pg_temp.task_import i
    CROSS JOIN LATERAL (VALUES
      (CASE WHEN coalesce(btrim(i.title), '') = '' THEN 'title is empty' END),
      (CASE WHEN length(i.title) > 500 THEN 'title is longer than 500 characters' END),
      (CASE WHEN i.assignee_telegram_id IS NOT NULL AND btrim(i.assignee_telegram_id) <> ''
                 AND NOT (btrim(i.assignee_telegram_id) ~ '^[0-9]{1,18}$'
                          AND EXISTS (SELECT 1 FROM tasks_app.users u
                                      WHERE u.telegram_id = btrim(i.assignee_telegram_id)::bigint))
            THEN format('assignee_telegram_id %s is not a known user', quote_literal(i.assignee_telegram_id)) END),
      (CASE WHEN coalesce(btrim(i.site), '') <> ''
                 AND NOT EXISTS (SELECT 1 FROM tasks_app.sites s WHERE s.name = btrim(i.site))
            THEN format('site %s is not a known site', quote_literal(i.site)) END),
      (CASE WHEN NOT tasks_app.reads_as(i.due_date, 'date') THEN format('due_date %s is not a date (YYYY-MM-DD)', quote_literal(i.due_date)) END),
      (CASE WHEN NOT tasks_app.reads_as(i.due_time, 'time') THEN format('due_time %s is not a time (HH:MM)', quote_literal(i.due_time)) END),
      (CASE WHEN NOT tasks_app.reads_as(i.reminder_date, 'date') THEN format('reminder_date %s is not a date', quote_literal(i.reminder_date)) END),
      (CASE WHEN NOT tasks_app.reads_as(i.reminder_time, 'time') THEN format('reminder_time %s is not a time', quote_literal(i.reminder_time)) END),
      (CASE WHEN coalesce(btrim(i.status), '') NOT IN ('', 'open', 'in_progress', 'done', 'cancelled')
            THEN format('status %s is not open, in_progress, done or cancelled', quote_literal(i.status)) END),
      (CASE WHEN coalesce(btrim(i.priority), '') <> '' AND btrim(i.priority) !~ '^[1-5]$'
            THEN format('priority %s is not 1..5', quote_literal(i.priority)) END),
      (CASE WHEN NOT tasks_app.reads_as(i.repeat_interval, 'interval')
            THEN format('repeat_interval %s is not an interval', quote_literal(i.repeat_interval)) END)
    ) p(problem)
    WHERE p.problem IS NOT NULL
  ) bad;
  IF n > 0 THEN
    RAISE EXCEPTION 'tasks_app.import_tasks: % problem(s) in the file; nothing imported', n
      USING ERRCODE = '22023', DETAIL = array_to_string(problems[1:50], E'\n');
  END IF;
  INSERT INTO tasks_app.tasks (assigner_id, assignee_id, site_id, title, description, due_date,
                               due_time, reminder_date, reminder_time, status, priority,
                               repeat_interval, completed_at, cancelled_at)
  SELECT acting_user,
         (SELECT u.id FROM tasks_app.users u WHERE u.telegram_id = nullif(btrim(i.assignee_telegram_id), '')::bigint),
         (SELECT s.id FROM tasks_app.sites s WHERE s.name = nullif(btrim(i.site), '')),
         btrim(i.title), nullif(i.description, ''),
         nullif(btrim(i.due_date), '')::date, nullif(btrim(i.due_time), '')::time,
         nullif(btrim(i.reminder_date), '')::date, nullif(btrim(i.reminder_time), '')::time,
         coalesce(nullif(btrim(i.status), ''), 'open'),
         coalesce(nullif(btrim(i.priority), '')::smallint, 3),
         nullif(btrim(i.repeat_interval), '')::interval,
         CASE WHEN btrim(i.status) = 'done' THEN now() END,
         CASE WHEN btrim(i.status) = 'cancelled' THEN now() END
  FROM pg_temp.task_import i ORDER BY i.record;
  GET DIAGNOSTICS total = ROW_COUNT;
  DROP TABLE pg_temp.task_import;
  RETURN total;
END $$;
