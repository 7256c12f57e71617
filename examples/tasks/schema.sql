-- examples/tasks: a task and reminder model moving off a spreadsheet, on the
-- workflow extension. Schema tasks_app: users (telegram_id, timezone, role),
-- sites, tasks, task_comments; task_history in the plan's shape as a view of
-- workflow.audit_log (workflow.enable_audit on tasks: every change with its
-- old and new values, the acting user from SET LOCAL workflow.actor, which
-- the write functions below set); updated_at by workflow.set_updated_at.
-- Run as a superuser or the database owner with workflow_admin; the
-- application connects as a member of tasks_app_client (roles.sql). Nothing
-- here is writable by PUBLIC.
CREATE SCHEMA tasks_app;
REVOKE ALL ON SCHEMA tasks_app FROM PUBLIC;

CREATE TABLE tasks_app.users (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  telegram_id bigint NOT NULL UNIQUE,
  name        text   NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  -- an unknown zone fails here with 22023 ("time zone ... not recognized")
  timezone    text   NOT NULL DEFAULT 'UTC' CHECK (now() AT TIME ZONE timezone IS NOT NULL),
  role        text   NOT NULL DEFAULT 'worker' CHECK (role IN ('admin', 'manager', 'worker')),
  created_at  timestamptz NOT NULL DEFAULT now(),
  updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks_app.sites (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  name       text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 200),
  address    text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks_app.tasks (
  id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  assigner_id     bigint NOT NULL REFERENCES tasks_app.users,
  assignee_id     bigint REFERENCES tasks_app.users,
  site_id         bigint REFERENCES tasks_app.sites,
  title           text   NOT NULL CHECK (length(title) BETWEEN 1 AND 500),
  description     text   CHECK (length(description) <= 10000),
  due_date        date,
  due_time        time,
  reminder_date   date,
  reminder_time   time,
  status          text   NOT NULL DEFAULT 'open'
                  CHECK (status IN ('open', 'in_progress', 'done', 'cancelled')),
  priority        smallint NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 5),
  repeat_interval interval CHECK (repeat_interval > interval '0'),
  completed_at    timestamptz,
  cancelled_at    timestamptz,
  created_at      timestamptz NOT NULL DEFAULT now(),
  updated_at      timestamptz NOT NULL DEFAULT now(),
  -- text search over title and description (the 'simple' configuration:
  -- no stemming, so it works the same for every language in the sheet)
  search          tsvector GENERATED ALWAYS AS
                  (to_tsvector('simple', title || ' ' || coalesce(description, ''))) STORED,
  CHECK ((status = 'done') = (completed_at IS NOT NULL)),
  CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL)),
  CHECK (due_time IS NULL OR due_date IS NOT NULL),
  CHECK (reminder_time IS NULL OR reminder_date IS NOT NULL)
);
-- Each filter of list_tasks pages by (due_date, id): one index per filter.
-- (A site is mostly asked for with a date range: (site_id, due_date, id)
-- reads that range in page order; a status with it is checked on the way.)
CREATE INDEX tasks_assignee_idx ON tasks_app.tasks (assignee_id, status, due_date, id);
CREATE INDEX tasks_site_idx ON tasks_app.tasks (site_id, due_date, id);
CREATE INDEX tasks_status_idx ON tasks_app.tasks (status, due_date, id);
CREATE INDEX tasks_due_idx ON tasks_app.tasks (due_date, id);
CREATE INDEX tasks_search_idx ON tasks_app.tasks USING gin (search);
CREATE INDEX tasks_reminder_idx ON tasks_app.tasks (reminder_date, reminder_time)
  WHERE status IN ('open', 'in_progress');

CREATE TABLE tasks_app.task_comments (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  task_id    bigint NOT NULL REFERENCES tasks_app.tasks ON DELETE CASCADE,
  user_id    bigint NOT NULL REFERENCES tasks_app.users,
  body       text   NOT NULL CHECK (length(body) BETWEEN 1 AND 10000),
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_comments_task_idx ON tasks_app.task_comments (task_id, id);

CREATE TRIGGER users_updated_at BEFORE UPDATE ON tasks_app.users
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
CREATE TRIGGER sites_updated_at BEFORE UPDATE ON tasks_app.sites
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
CREATE TRIGGER tasks_updated_at BEFORE UPDATE ON tasks_app.tasks
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
-- updated_at and the derived search column would only repeat other changes.
SELECT workflow.enable_audit('tasks_app.tasks', ARRAY['updated_at', 'search']);

-- The plan's task_history, read from the audit log under the caller's rights
-- (the log shows a role the history of the tables it may read).
CREATE VIEW tasks_app.task_history WITH (security_invoker = true) AS
SELECT l.id,
       (l.row_key->>'id')::bigint AS task_id,
       CASE WHEN l.actor ~ '^[0-9]{1,18}$' THEN l.actor::bigint END AS user_id,
       lower(l.operation) AS action,
       l.old_values,
       l.new_values,
       l.changed_at AS created_at
FROM workflow.audit_log l
WHERE l.schema_name = 'tasks_app' AND l.table_name = 'tasks';

-- One task's history, through the log's index on the row key.
CREATE FUNCTION tasks_app.history(task bigint)
RETURNS TABLE (task_id bigint, user_id bigint, action text, old_values jsonb,
               new_values jsonb, created_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT (l.row_key->>'id')::bigint,
         CASE WHEN l.actor ~ '^[0-9]{1,18}$' THEN l.actor::bigint END,
         lower(l.operation), l.old_values, l.new_values, l.changed_at
  FROM workflow.row_history('tasks_app.tasks', jsonb_build_object('id', task)) l
  ORDER BY l.id
$$;
