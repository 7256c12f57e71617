-- examples/chat: chat persistence with per-user isolation, on the workflow
-- extension. Schema chat_app: users, chat_sessions, chat_messages, documents
-- (metadata only: the files live elsewhere). Every row carries its user_id;
-- row-level security (policies.sql) shows and accepts only the rows of the
-- application user of the current transaction (chat_app.set_user), FORCEd so
-- that the tables' owner obeys it too. A message or document can only belong
-- to a session of the same user (composite foreign keys). Every change is
-- audited (workflow.enable_audit) with the acting user as workflow.actor.
-- Run as a superuser; the schema and tables belong to chat_app_owner (NOLOGIN).
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'chat_app_owner') THEN
    CREATE ROLE chat_app_owner NOLOGIN;
  END IF;
END $$;
CREATE SCHEMA chat_app AUTHORIZATION chat_app_owner;
REVOKE ALL ON SCHEMA chat_app FROM PUBLIC;

-- A tag of this transaction: the backend and the transaction's start time.
CREATE FUNCTION chat_app.transaction_tag() RETURNS text LANGUAGE sql STABLE AS $$
  SELECT pg_backend_pid() || '/' || (extract(epoch FROM now()) * 1000000)::bigint
$$;

-- The application user of this transaction (set by chat_app.set_user,
-- functions.sql), or NULL: not set, not a user id, or not set by set_user
-- in this transaction. set_user stores beside the id a tag of the transaction
-- and the id (chat_app.user_txn); a value left by an earlier transaction (a
-- session-level SET on a pooled connection) or an id changed by a bare SET
-- does not match it, and then no row is visible. This guards against
-- mistakes, not against the application role itself: it is trusted to name
-- the user it has authenticated.
CREATE FUNCTION chat_app.current_user_id() RETURNS bigint LANGUAGE sql STABLE AS $$
  SELECT CASE WHEN current_setting('chat_app.user_id', true) ~ '^[1-9][0-9]{0,17}$'
               AND current_setting('chat_app.user_txn', true)
                   = chat_app.transaction_tag() || '/' || current_setting('chat_app.user_id', true)
              THEN current_setting('chat_app.user_id', true)::bigint END
$$;
ALTER FUNCTION chat_app.transaction_tag() OWNER TO chat_app_owner;
ALTER FUNCTION chat_app.current_user_id() OWNER TO chat_app_owner;
SET ROLE chat_app_owner;

CREATE TABLE chat_app.users (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  login      text NOT NULL UNIQUE CHECK (login ~ '^[a-z0-9._@-]{1,100}$'),
  name       text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE chat_app.chat_sessions (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id    bigint NOT NULL DEFAULT chat_app.current_user_id() REFERENCES chat_app.users,
  title      text NOT NULL CHECK (length(title) BETWEEN 1 AND 200),
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  UNIQUE (id, user_id)  -- the target of the composite keys below
);
CREATE INDEX chat_sessions_user_idx ON chat_app.chat_sessions (user_id, updated_at DESC, id);

CREATE TABLE chat_app.chat_messages (
  id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  session_id bigint NOT NULL,
  user_id    bigint NOT NULL DEFAULT chat_app.current_user_id(),
  role       text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
  content    text NOT NULL CHECK (length(content) BETWEEN 1 AND 100000),
  -- the client's id for the message: a retried send that did commit is not
  -- stored twice (add_message returns the first one's id)
  client_key text CHECK (length(client_key) BETWEEN 1 AND 100),
  created_at timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (session_id, user_id) REFERENCES chat_app.chat_sessions (id, user_id) ON DELETE CASCADE,
  UNIQUE (session_id, client_key)
);
CREATE INDEX chat_messages_session_idx ON chat_app.chat_messages (session_id, id);

CREATE TABLE chat_app.documents (
  id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  user_id     bigint NOT NULL DEFAULT chat_app.current_user_id() REFERENCES chat_app.users,
  session_id  bigint,  -- NULL: in the user's library, not attached to a session
  filename    text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255 AND filename !~ '[/\\[:cntrl:]]'),
  mime_type   text NOT NULL CHECK (mime_type ~ '^[a-z]+/[a-z0-9.+-]{1,100}$'),
  size_bytes  bigint NOT NULL CHECK (size_bytes >= 0),
  sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
  storage_key text NOT NULL CHECK (length(storage_key) BETWEEN 1 AND 500),
  created_at  timestamptz NOT NULL DEFAULT now(),
  FOREIGN KEY (session_id, user_id) REFERENCES chat_app.chat_sessions (id, user_id) ON DELETE SET NULL (session_id)
);
CREATE INDEX documents_user_idx ON chat_app.documents (user_id, session_id, id);

RESET ROLE;

CREATE TRIGGER users_updated_at BEFORE UPDATE ON chat_app.users
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();
CREATE TRIGGER chat_sessions_updated_at BEFORE UPDATE ON chat_app.chat_sessions
  FOR EACH ROW EXECUTE FUNCTION workflow.set_updated_at();

-- The audit log shows a table with row-level security only to its owner and
-- to workflow_auditor: the application role cannot read others' history there.
SELECT workflow.enable_audit('chat_app.users', ARRAY['updated_at']);
SELECT workflow.enable_audit('chat_app.chat_sessions', ARRAY['updated_at']);
SELECT workflow.enable_audit('chat_app.chat_messages');
SELECT workflow.enable_audit('chat_app.documents');
