-- examples/chat: the application's calls. Each transaction starts with
-- chat_app.set_user(<user id>): the application user for this transaction
-- only (SET LOCAL semantics), checked against chat_app.users, also recorded
-- as workflow.actor for the audit log. Every other call runs with the
-- caller's rights (SECURITY INVOKER) under row-level security, so it reaches
-- the rows of that user and no other. Writes without a user: 42501. Bad
-- input: an error with a SQLSTATE, nothing written. Values are parameters,
-- never statement text. Caller: a member of chat_app_client (roles.sql).
-- (#variable_conflict use_column: a name that is both a column and a
-- parameter means the column; parameters are qualified by function name.)

CREATE FUNCTION chat_app.set_user(app_user bigint) RETURNS void LANGUAGE plpgsql AS $$
DECLARE already bigint := chat_app.current_user_id();
BEGIN
  IF app_user IS NULL THEN
    RAISE EXCEPTION 'chat_app.set_user: the user id must not be NULL' USING ERRCODE = '22004';
  END IF;
  IF already IS NOT NULL AND already <> app_user THEN
    RAISE EXCEPTION 'chat_app.set_user: this transaction already acts for user %', already
      USING ERRCODE = '55000';
  END IF;
  PERFORM set_config('chat_app.user_id', app_user::text, true),
          set_config('chat_app.user_txn', chat_app.transaction_tag() || '/' || app_user, true),
          set_config('workflow.actor', app_user::text, true);
  -- under row-level security: true only for the user's own row
  IF NOT EXISTS (SELECT 1 FROM chat_app.users WHERE id = app_user) THEN
    RAISE EXCEPTION 'chat_app.set_user: no user with id %', app_user USING ERRCODE = 'P0002';
  END IF;
END $$;

-- The current user id, or 42501 when set_user was not called in this transaction.
CREATE FUNCTION chat_app.require_user() RETURNS bigint LANGUAGE plpgsql STABLE AS $$
DECLARE uid bigint := chat_app.current_user_id();
BEGIN
  IF uid IS NULL THEN
    RAISE EXCEPTION 'chat_app: no application user in this transaction (call chat_app.set_user first)'
      USING ERRCODE = '42501';
  END IF;
  RETURN uid;
END $$;

CREATE FUNCTION chat_app.create_session(title text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE new_id bigint;
BEGIN
  INSERT INTO chat_app.chat_sessions (user_id, title)
  VALUES (chat_app.require_user(), btrim(create_session.title)) RETURNING id INTO new_id;
  RETURN new_id;
END $$;

CREATE FUNCTION chat_app.rename_session(session bigint, title text) RETURNS void LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  PERFORM chat_app.require_user();
  UPDATE chat_app.chat_sessions SET title = btrim(rename_session.title) WHERE id = session;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'chat_app: no session % of this user', session USING ERRCODE = 'P0002';
  END IF;
END $$;

-- Deletes the session with its messages; its documents stay in the library.
CREATE FUNCTION chat_app.delete_session(session bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM chat_app.require_user();
  DELETE FROM chat_app.chat_sessions WHERE id = session;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'chat_app: no session % of this user', session USING ERRCODE = 'P0002';
  END IF;
END $$;

-- Appends a message; with a client_key, sending it again (a retry after a
-- lost reply) returns the first message's id and stores nothing.
CREATE FUNCTION chat_app.add_message(session bigint, role text, content text, client_key text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE new_id bigint;
BEGIN
  PERFORM chat_app.require_user();
  IF NOT EXISTS (SELECT 1 FROM chat_app.chat_sessions WHERE id = session) THEN
    RAISE EXCEPTION 'chat_app: no session % of this user', session USING ERRCODE = 'P0002';
  END IF;
  INSERT INTO chat_app.chat_messages (session_id, role, content, client_key)
  VALUES (session, add_message.role, add_message.content, add_message.client_key)
  ON CONFLICT (session_id, client_key) DO NOTHING
  RETURNING id INTO new_id;
  IF new_id IS NULL THEN
    SELECT id INTO new_id FROM chat_app.chat_messages
    WHERE session_id = session AND client_key = add_message.client_key;
  END IF;
  RETURN new_id;
END $$;

-- The user's sessions, most recently active first.
CREATE FUNCTION chat_app.list_sessions()
RETURNS TABLE (id bigint, title text, created_at timestamptz, messages bigint, last_message_at timestamptz)
LANGUAGE sql STABLE AS $$
  SELECT s.id, s.title, s.created_at, m.n, m.last
  FROM chat_app.chat_sessions s
  CROSS JOIN LATERAL (SELECT count(*), max(created_at) FROM chat_app.chat_messages
                      WHERE session_id = s.id) m(n, last)
  ORDER BY coalesce(m.last, s.created_at) DESC, s.id DESC
$$;

-- A session's messages in order, page by page (after_id: the last id seen).
CREATE FUNCTION chat_app.list_messages(session bigint, after_id bigint DEFAULT 0, page_size int DEFAULT 100)
RETURNS TABLE (id bigint, role text, content text, created_at timestamptz)
LANGUAGE plpgsql STABLE AS $$
#variable_conflict use_column
BEGIN
  IF page_size IS NULL OR page_size NOT BETWEEN 1 AND 1000 THEN
    RAISE EXCEPTION 'chat_app.list_messages: page_size must be 1..1000' USING ERRCODE = '22023';
  END IF;
  RETURN QUERY
  SELECT m.id, m.role, m.content, m.created_at FROM chat_app.chat_messages m
  WHERE m.session_id = session AND m.id > coalesce(after_id, 0)
  ORDER BY m.id LIMIT page_size;
END $$;

-- Metadata of a stored file, in the library or attached to a session.
CREATE FUNCTION chat_app.add_document(filename text, mime_type text, size_bytes bigint, sha256 text,
                                      storage_key text, session bigint DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE new_id bigint;
BEGIN
  PERFORM chat_app.require_user();
  IF session IS NOT NULL AND NOT EXISTS (SELECT 1 FROM chat_app.chat_sessions WHERE id = session) THEN
    RAISE EXCEPTION 'chat_app: no session % of this user', session USING ERRCODE = 'P0002';
  END IF;
  INSERT INTO chat_app.documents (session_id, filename, mime_type, size_bytes, sha256, storage_key)
  VALUES (session, add_document.filename, add_document.mime_type, add_document.size_bytes,
          lower(add_document.sha256), add_document.storage_key)
  RETURNING id INTO new_id;
  RETURN new_id;
END $$;

-- The user's documents: of one session, or all (session NULL).
CREATE FUNCTION chat_app.list_documents(session bigint DEFAULT NULL)
RETURNS SETOF chat_app.documents LANGUAGE sql STABLE AS $$
  SELECT * FROM chat_app.documents d
  WHERE session IS NULL OR d.session_id = session ORDER BY d.id
$$;

CREATE FUNCTION chat_app.delete_document(document bigint) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  PERFORM chat_app.require_user();
  DELETE FROM chat_app.documents WHERE id = document;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'chat_app: no document % of this user', document USING ERRCODE = 'P0002';
  END IF;
END $$;
