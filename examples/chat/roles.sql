-- examples/chat: who may call what. chat_app_client (NOLOGIN; grant it to
-- the application's login role) calls the functions and reads and writes
-- the tables only as far as row-level security lets it: the rows of the
-- user it named with chat_app.set_user in the current transaction. Messages
-- cannot be changed or deleted (only with their session); no DDL; users are
-- created by the administrator. chat_app_owner owns the tables and obeys the
-- same policies (FORCE). The audit log shows these tables' history only to
-- their owner and workflow_auditor. PUBLIC: nothing.
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chat_app_client') THEN
    CREATE ROLE chat_app_client NOLOGIN;
  END IF;
END $$;
GRANT USAGE ON SCHEMA chat_app TO chat_app_client;
GRANT SELECT ON chat_app.users, chat_app.chat_sessions, chat_app.chat_messages, chat_app.documents
  TO chat_app_client;
GRANT UPDATE (name) ON chat_app.users TO chat_app_client;
GRANT INSERT, DELETE, UPDATE (title) ON chat_app.chat_sessions TO chat_app_client;
GRANT INSERT ON chat_app.chat_messages TO chat_app_client;
GRANT INSERT, DELETE ON chat_app.documents TO chat_app_client;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA chat_app FROM PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA chat_app TO chat_app_client;
