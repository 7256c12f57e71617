-- examples/chat: row-level security. Every table shows, and accepts, only
-- the rows of chat_app.current_user_id() (NULL: none at all). FORCEd, so the
-- tables' owner (chat_app_owner) obeys it too; only superusers and BYPASSRLS
-- roles do not (the example grants BYPASSRLS to nobody). The sub-select makes
-- the user id one value per statement (an InitPlan), not a call per row.
ALTER TABLE chat_app.users ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE chat_app.chat_sessions ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE chat_app.chat_messages ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE chat_app.documents ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY own_row ON chat_app.users
  USING (id = (SELECT chat_app.current_user_id()))
  WITH CHECK (id = (SELECT chat_app.current_user_id()));
CREATE POLICY own_rows ON chat_app.chat_sessions
  USING (user_id = (SELECT chat_app.current_user_id()))
  WITH CHECK (user_id = (SELECT chat_app.current_user_id()));
CREATE POLICY own_rows ON chat_app.chat_messages
  USING (user_id = (SELECT chat_app.current_user_id()))
  WITH CHECK (user_id = (SELECT chat_app.current_user_id()));
CREATE POLICY own_rows ON chat_app.documents
  USING (user_id = (SELECT chat_app.current_user_id()))
  WITH CHECK (user_id = (SELECT chat_app.current_user_id()));
