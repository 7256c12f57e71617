-- examples/tasks: the application's calls. Every write names the acting
-- user (tasks_app.users.id): it is checked and recorded as workflow.actor
-- for this transaction only, so task_history shows who did it. Bad input
-- gets an error with a SQLSTATE and writes nothing. Invoker rights: the
-- caller needs tasks_app_client (roles.sql).

-- The acting user for this transaction; P0002 when there is no such user.
CREATE FUNCTION tasks_app.act_as(acting_user bigint) RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
  IF acting_user IS NULL OR NOT EXISTS (SELECT 1 FROM tasks_app.users WHERE id = acting_user) THEN
    RAISE EXCEPTION 'tasks_app: no user with id %', coalesce(acting_user::text, 'NULL')
      USING ERRCODE = 'P0002';
  END IF;
  PERFORM set_config('workflow.actor', acting_user::text, true);
END $$;

CREATE FUNCTION tasks_app.create_task(
  acting_user bigint, title text, assignee bigint DEFAULT NULL, site bigint DEFAULT NULL,
  description text DEFAULT NULL, due_date date DEFAULT NULL, due_time time DEFAULT NULL,
  reminder_date date DEFAULT NULL, reminder_time time DEFAULT NULL,
  priority smallint DEFAULT 3, repeat_interval interval DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE new_id bigint;
BEGIN
  PERFORM tasks_app.act_as(acting_user);
  IF title IS NULL OR btrim(title) = '' THEN
    RAISE EXCEPTION 'tasks_app.create_task: title must not be empty' USING ERRCODE = '22023';
  END IF;
  INSERT INTO tasks_app.tasks (assigner_id, assignee_id, site_id, title, description, due_date,
                               due_time, reminder_date, reminder_time, priority, repeat_interval)
  VALUES (acting_user, assignee, site, btrim(title), description, due_date, due_time,
          reminder_date, reminder_time, priority, repeat_interval)
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;

-- Changes the fields named in `changes` (title, description, assignee_id,
-- site_id, due_date, due_time, reminder_date, reminder_time, priority,
-- repeat_interval); any other key is 22023. Status has its own call.
CREATE FUNCTION tasks_app.update_task(acting_user bigint, task bigint, changes jsonb)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE bad text;
BEGIN
  PERFORM tasks_app.act_as(acting_user);
  IF changes IS NULL OR jsonb_typeof(changes) <> 'object' THEN
    RAISE EXCEPTION 'tasks_app.update_task: changes must be a JSON object' USING ERRCODE = '22023';
  END IF;
  SELECT string_agg(k, ', ') INTO bad FROM jsonb_object_keys(changes) k
  WHERE k NOT IN ('title', 'description', 'assignee_id', 'site_id', 'due_date', 'due_time',
                  'reminder_date', 'reminder_time', 'priority', 'repeat_interval');
  IF bad IS NOT NULL THEN
    RAISE EXCEPTION 'tasks_app.update_task: fields that cannot be changed here: %', bad
      USING ERRCODE = '22023';
  END IF;
  UPDATE tasks_app.tasks t SET
    title = CASE WHEN changes ? 'title' THEN changes->>'title' ELSE t.title END,
    description = CASE WHEN changes ? 'description' THEN changes->>'description' ELSE t.description END,
    assignee_id = CASE WHEN changes ? 'assignee_id' THEN (changes->>'assignee_id')::bigint ELSE t.assignee_id END,
    site_id = CASE WHEN changes ? 'site_id' THEN (changes->>'site_id')::bigint ELSE t.site_id END,
    due_date = CASE WHEN changes ? 'due_date' THEN (changes->>'due_date')::date ELSE t.due_date END,
    due_time = CASE WHEN changes ? 'due_time' THEN (changes->>'due_time')::time ELSE t.due_time END,
    reminder_date = CASE WHEN changes ? 'reminder_date' THEN (changes->>'reminder_date')::date ELSE t.reminder_date END,
    reminder_time = CASE WHEN changes ? 'reminder_time' THEN (changes->>'reminder_time')::time ELSE t.reminder_time END,
    priority = CASE WHEN changes ? 'priority' THEN (changes->>'priority')::smallint ELSE t.priority END,
    repeat_interval = CASE WHEN changes ? 'repeat_interval' THEN (changes->>'repeat_interval')::interval ELSE t.repeat_interval END
  WHERE t.id = task;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tasks_app.update_task: no task with id %', task USING ERRCODE = 'P0002';
  END IF;
END $$;

-- open / in_progress / done / cancelled; sets or clears completed_at and
-- cancelled_at. A done task with a repeat_interval gets its next occurrence
-- (same fields, dates moved by the interval); its id is returned (else NULL).
CREATE FUNCTION tasks_app.set_status(acting_user bigint, task bigint, new_status text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE t tasks_app.tasks; next_id bigint;
BEGIN
  PERFORM tasks_app.act_as(acting_user);
  IF new_status IS NULL OR new_status NOT IN ('open', 'in_progress', 'done', 'cancelled') THEN
    RAISE EXCEPTION 'tasks_app.set_status: unknown status %', coalesce(quote_literal(new_status), 'NULL')
      USING ERRCODE = '22023';
  END IF;
  UPDATE tasks_app.tasks SET status = new_status,
    completed_at = CASE WHEN new_status = 'done' THEN coalesce(completed_at, now()) END,
    cancelled_at = CASE WHEN new_status = 'cancelled' THEN coalesce(cancelled_at, now()) END
  WHERE id = task RETURNING * INTO t;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'tasks_app.set_status: no task with id %', task USING ERRCODE = 'P0002';
  END IF;
  IF new_status = 'done' AND t.repeat_interval IS NOT NULL THEN
    INSERT INTO tasks_app.tasks (assigner_id, assignee_id, site_id, title, description, due_date,
                                 due_time, reminder_date, reminder_time, priority, repeat_interval)
    VALUES (t.assigner_id, t.assignee_id, t.site_id, t.title, t.description,
            (t.due_date + t.repeat_interval)::date, t.due_time,
            (t.reminder_date + t.repeat_interval)::date, t.reminder_time, t.priority,
            t.repeat_interval)
    RETURNING id INTO next_id;
  END IF;
  RETURN next_id;
END $$;

CREATE FUNCTION tasks_app.add_comment(acting_user bigint, task bigint, body text)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE new_id bigint;
BEGIN
  PERFORM tasks_app.act_as(acting_user);
  INSERT INTO tasks_app.task_comments (task_id, user_id, body)
  VALUES (task, acting_user, body) RETURNING id INTO new_id;
  RETURN new_id;
END $$;

-- Filters (each optional): assignee, status, site, due dates in
-- [due_from, due_to], text search (websearch syntax: words, "a phrase",
-- -excluded, or). Pages in (due_date, id) order, tasks without a due date
-- last: pass the last row's due_date and id as after_due / after_id for the
-- next page. The statement is built from the filters given (so each can use
-- its index) with the values as parameters, never as text.
-- A search takes one of two paths, so that neither can run away: first the
-- page order is walked for at most 2,000 tasks that pass the other filters;
-- when a full page matches among them, that is the page (frequent words).
-- Otherwise every match is found through the GIN index and sorted (rarer
-- words; "+ 0" in the ORDER BY keeps the planner from walking the page
-- order instead). Left to itself the planner walks the page order whenever
-- it expects many matches, and for a word it has no statistics for (a name,
-- a number) reads the whole table to fill a page: 2.9 s at 1M tasks.
-- (EXPLAIN ANALYZE figures: bench/RESULTS.md.)
CREATE FUNCTION tasks_app.list_tasks(
  assignee bigint DEFAULT NULL, status text DEFAULT NULL, site bigint DEFAULT NULL,
  due_from date DEFAULT NULL, due_to date DEFAULT NULL, search text DEFAULT NULL,
  after_due date DEFAULT NULL, after_id bigint DEFAULT NULL, page_size int DEFAULT 50)
RETURNS SETOF tasks_app.tasks LANGUAGE plpgsql STABLE AS $$
DECLARE
  sql text := 'SELECT * FROM tasks_app.tasks t WHERE true';
  page tasks_app.tasks[];
BEGIN
  IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 500 THEN
    RAISE EXCEPTION 'tasks_app.list_tasks: page_size must be 1..500, not %', coalesce(page_size::text, 'NULL')
      USING ERRCODE = '22023';
  END IF;
  IF status IS NOT NULL AND status NOT IN ('open', 'in_progress', 'done', 'cancelled') THEN
    RAISE EXCEPTION 'tasks_app.list_tasks: unknown status %', quote_literal(status) USING ERRCODE = '22023';
  END IF;
  IF (after_due IS NOT NULL OR after_id IS NOT NULL) AND after_id IS NULL THEN
    RAISE EXCEPTION 'tasks_app.list_tasks: after_due needs after_id' USING ERRCODE = '22023';
  END IF;
  IF assignee IS NOT NULL THEN sql := sql || ' AND t.assignee_id = $1'; END IF;
  IF status IS NOT NULL THEN sql := sql || ' AND t.status = $2'; END IF;
  IF site IS NOT NULL THEN sql := sql || ' AND t.site_id = $3'; END IF;
  IF due_from IS NOT NULL THEN sql := sql || ' AND t.due_date >= $4'; END IF;
  IF due_to IS NOT NULL THEN sql := sql || ' AND t.due_date <= $5'; END IF;
  IF after_id IS NOT NULL THEN
    -- rows after (after_due, after_id) in the order below; NULL dates sort last
    sql := sql || CASE WHEN after_due IS NULL
      THEN ' AND t.due_date IS NULL AND t.id > $8'
      ELSE ' AND (t.due_date > $7 OR t.due_date IS NULL OR (t.due_date = $7 AND t.id > $8))' END;
  END IF;
  IF search IS NULL THEN
    RETURN QUERY EXECUTE sql || ' ORDER BY t.due_date NULLS LAST, t.id LIMIT $9'
      USING assignee, status, site, due_from, due_to, search, after_due, after_id, page_size;
    RETURN;
  END IF;
  -- frequent words: a full page among the first 2,000 candidates in page order
  EXECUTE 'SELECT array(SELECT c::tasks_app.tasks FROM (' || sql
       || ' ORDER BY t.due_date NULLS LAST, t.id LIMIT 2000) c'
       || ' WHERE c.search @@ websearch_to_tsquery(''simple'', $6) ORDER BY c.due_date NULLS LAST, c.id LIMIT $9)'
    INTO page USING assignee, status, site, due_from, due_to, search, after_due, after_id, page_size;
  IF cardinality(page) = page_size THEN
    RETURN QUERY SELECT * FROM unnest(page);
    RETURN;
  END IF;
  -- rarer words: every match through the GIN index, sorted
  RETURN QUERY EXECUTE sql || ' AND t.search @@ websearch_to_tsquery(''simple'', $6)'
       || ' ORDER BY t.due_date + 0 NULLS LAST, t.id + 0 LIMIT $9'
    USING assignee, status, site, due_from, due_to, search, after_due, after_id, page_size;
END $$;
