-- examples/tasks: who may call what. tasks_app_client (NOLOGIN; grant it to
-- the application's login role) reads the tables and history and calls the
-- functions; it cannot change the schema, delete tasks or write the tables
-- directly except through the functions' statements, which run with its own
-- rights (so it has INSERT/UPDATE on the tables they write). PUBLIC: nothing.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'tasks_app_client') THEN
    CREATE ROLE tasks_app_client NOLOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA tasks_app, workflow TO tasks_app_client;
GRANT SELECT ON ALL TABLES IN SCHEMA tasks_app TO tasks_app_client;
GRANT INSERT, UPDATE ON tasks_app.tasks, tasks_app.task_comments TO tasks_app_client;
DO $$ BEGIN
  EXECUTE format('GRANT TEMPORARY ON DATABASE %I TO tasks_app_client', current_database());
END $$;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA tasks_app FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA tasks_app TO tasks_app_client;
