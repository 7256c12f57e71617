#!/usr/bin/env bash
# examples/chat: per-user isolation on its own throw-away cluster. User A
# never reads or writes user B's sessions, messages or documents, through
# the functions, the tables directly, the audit log, injection attempts (in
# ids, texts, the user setting itself) or a forgotten set_user (nothing
# visible, writes 42501); bad input gets a SQLSTATE and writes nothing;
# every change is audited with its user; and chat_demo (the C++ program,
# $1) keeps every committed message across a server restart in the middle
# of a transaction (Client::transaction retries it on a new connection).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
source "$HERE/../lib/test_lib.sh"
DEMO=${1:-$ROOT/build/examples/chat_demo}
example_db wf_example_chat
for f in schema policies functions roles; do psql -qX -v ON_ERROR_STOP=1 -f "$HERE/$f.sql" >/dev/null; done
q "CREATE ROLE chat_web LOGIN IN ROLE chat_app_client; CREATE ROLE outsider LOGIN"
q "INSERT INTO chat_app.users (login, name) VALUES ('ann', 'Ann'), ('bob', 'Bob')"  # ids 1, 2

# as USER SQL: one transaction as chat_web acting for USER (chat_app.set_user);
# prints SQL's rows. try USER SQL: the same, output and errors (verbose) on stdout.
as() {
  { printf 'SET ROLE chat_web;\nBEGIN;\nSELECT chat_app.set_user(%s) \\gset ignored_\n' "$1"
    printf '%s;\nCOMMIT;\n' "$2"; } | psql -qXAt -v ON_ERROR_STOP=1
}
try() {
  { printf 'SET ROLE chat_web;\nBEGIN;\nSELECT chat_app.set_user(%s) \\gset ignored_\n' "$1"
    printf '%s;\nCOMMIT;\n' "$2"; } | psql -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose 2>&1
}
refused() {  # SQLSTATE USER SQL: the call fails with SQLSTATE
  local out
  out=$(try "$2" "$3") && fail "should have failed with $1 (user $2): $3"
  grep -q "ERROR:  $1:" <<<"$out" || fail "expected $1 (user $2) for: $3; got: $out"
}

# Each user's conversation: a session, messages, documents.
SA=$(as 1 "SELECT chat_app.create_session('Ann''s plans')")
SB=$(as 2 "SELECT chat_app.create_session('Bob''s secrets')")
as 1 "SELECT count(chat_app.add_message($SA, 'user', 'ann says ' || i)) FROM generate_series(1, 3) i" >/dev/null
as 2 "SELECT count(chat_app.add_message($SB, 'user', 'bob secret ' || i)) FROM generate_series(1, 4) i" >/dev/null
SHA=$(printf '%064d' 7)
DA=$(as 1 "SELECT chat_app.add_document('plan.pdf', 'application/pdf', 1000, '$SHA', 'k/ann/plan.pdf', $SA)")
DB=$(as 2 "SELECT chat_app.add_document('bob.txt', 'text/plain', 5, '$SHA', 'k/bob/bob.txt')")
MB=$(q "SELECT min(id) FROM chat_app.chat_messages WHERE user_id = 2")
B_ROWS="SELECT md5(string_agg(t::text, '|' ORDER BY t::text)) FROM (
          SELECT s::text FROM chat_app.chat_sessions s WHERE user_id = 2 UNION ALL
          SELECT m::text FROM chat_app.chat_messages m WHERE user_id = 2 UNION ALL
          SELECT d::text FROM chat_app.documents d WHERE user_id = 2 UNION ALL
          SELECT u::text FROM chat_app.users u WHERE id = 2) t(t)"
B_BEFORE=$(q "$B_ROWS")
AUDIT_BEFORE=$(q "SELECT count(*) FROM workflow.audit_log")

# A reads only A's rows, through every function and every table.
[ "$(as 1 "SELECT string_agg(id || ':' || title || ':' || messages, ',') FROM chat_app.list_sessions()")" = "$SA:Ann's plans:3" ] \
  || fail "list_sessions of A"
[ "$(as 1 "SELECT count(*) FROM chat_app.list_messages($SB)")" = 0 ] || fail "A lists B's messages"
[ "$(as 1 "SELECT count(*) FROM chat_app.list_documents($SB)")" = 0 ] || fail "A lists B's session documents"
[ "$(as 1 "SELECT string_agg(filename, ',') FROM chat_app.list_documents()")" = plan.pdf ] || fail "A's library"
[ "$(as 1 "SELECT (SELECT count(*) FROM chat_app.users) || '/' || (SELECT count(*) FROM chat_app.chat_sessions)
              || '/' || (SELECT count(*) FROM chat_app.chat_messages) || '/' || (SELECT count(*) FROM chat_app.documents)")" = 1/1/3/1 ] \
  || fail "A's direct reads see other rows"
[ "$(as 1 "SELECT count(*) FROM chat_app.chat_messages WHERE session_id = $SB OR user_id = 2 OR id = $MB")" = 0 ] \
  || fail "A reads B's messages by id"
# ... and writes nothing of B's, through the functions or the tables.
refused P0002 1 "SELECT chat_app.add_message($SB, 'user', 'hi from ann')"
refused P0002 1 "SELECT chat_app.rename_session($SB, 'mine now')"
refused P0002 1 "SELECT chat_app.delete_session($SB)"
refused P0002 1 "SELECT chat_app.add_document('x.txt', 'text/plain', 1, '$SHA', 'k', $SB)"
refused P0002 1 "SELECT chat_app.delete_document($DB)"
refused 42501 1 "INSERT INTO chat_app.chat_messages (session_id, user_id, role, content) VALUES ($SB, 2, 'user', 'forged')"
refused 23503 1 "INSERT INTO chat_app.chat_messages (session_id, role, content) VALUES ($SB, 'user', 'forged')"
refused 23503 1 "INSERT INTO chat_app.documents (session_id, filename, mime_type, size_bytes, sha256, storage_key) VALUES ($SB, 'f', 'text/plain', 1, '$SHA', 'k')"
refused 42501 1 "INSERT INTO chat_app.chat_sessions (user_id, title) VALUES (2, 'planted')"
refused 42501 1 "UPDATE chat_app.chat_sessions SET user_id = 2 WHERE id = $SA"
[ "$(as 1 "WITH u AS (UPDATE chat_app.chat_sessions SET title = 'x' WHERE id = $SB RETURNING 1),
               d AS (DELETE FROM chat_app.documents WHERE id = $DB RETURNING 1),
               s AS (DELETE FROM chat_app.chat_sessions WHERE user_id = 2 RETURNING 1),
               n AS (UPDATE chat_app.users SET name = 'x' WHERE id = 2 RETURNING 1)
             SELECT (SELECT count(*) FROM u) + (SELECT count(*) FROM d) + (SELECT count(*) FROM s) + (SELECT count(*) FROM n)")" = 0 ] \
  || fail "A's direct UPDATE/DELETE reached B's rows"

# Injection attempts: in ids, texts and the user setting.
refused 22P02 1 "SELECT * FROM chat_app.list_messages('$SB OR true')"
refused 22P02 "'2 OR true'" "SELECT 1"
refused 22P02 "'1; SET chat_app.user_id = 2'" "SELECT 1"
refused P0002 999 "SELECT 1"
refused 22004 NULL "SELECT 1"
refused 55000 1 "SELECT chat_app.set_user(2)"
EVIL="'); DELETE FROM chat_app.chat_messages; SELECT set_config('chat_app.user_id', '2', true); --"
M=$(as 1 "SELECT chat_app.add_message($SA, 'user', \$e\$$EVIL\$e\$)")
[ "$(as 1 "SELECT content FROM chat_app.chat_messages WHERE id = $M")" = "$EVIL" ] || fail "injection text not stored verbatim"
as 1 "SELECT chat_app.rename_session($SA, \$e\$$EVIL\$e\$)" >/dev/null
[ "$(as 1 "SELECT count(*) FROM chat_app.chat_messages WHERE user_id = 2")" = 0 ] || fail "after injected texts A sees B"
for setting in "'2'" "'2 OR true'" "'1'' OR ''1''=''1'" "'0x2'" "'-1'" "''"; do
  # a bare SET LOCAL of the id (not through set_user) makes nothing visible
  [ "$(as 1 "SET LOCAL chat_app.user_id = $setting; SELECT count(*) FROM chat_app.chat_messages")" = 0 ] \
    || fail "SET LOCAL chat_app.user_id = $setting shows rows"
  refused 42501 1 "SET LOCAL chat_app.user_id = $setting; SELECT chat_app.add_message($SA, 'user', 'x')"
done

# Forgetting set_user: nothing visible, every write 42501; also for the owner,
# and a session-level SET left on the connection does not count.
none() { psql -qXAt -v ON_ERROR_STOP=1 -v VERBOSITY=verbose -c "SET ROLE ${2:-chat_web}" -c "$1" 2>&1; }
for role in chat_web chat_app_owner; do
  [ "$(none "SELECT (SELECT count(*) FROM chat_app.users) + (SELECT count(*) FROM chat_app.chat_sessions)
             + (SELECT count(*) FROM chat_app.chat_messages) + (SELECT count(*) FROM chat_app.documents)" $role)" = 0 ] \
    || fail "$role without set_user sees rows"
done
[ "$(none "SELECT count(*) FROM chat_app.list_sessions()")" = 0 ] || fail "list_sessions without set_user"
[ "$(psql -qXAt -c "SET ROLE chat_web" -c "SET chat_app.user_id = '1'" -c "SELECT count(*) FROM chat_app.chat_messages")" = 0 ] \
  || fail "a session-level SET chat_app.user_id counts"
[ "$(psql -qXAt -c "SET ROLE chat_web" -c "SELECT chat_app.set_user(1)" -c "SELECT count(*) FROM chat_app.chat_messages" | tail -1)" = 0 ] \
  || fail "set_user outside a transaction block lasts beyond its statement"
for sql in "SELECT chat_app.create_session('t')" "SELECT chat_app.add_message($SA, 'user', 'x')" \
           "SELECT chat_app.add_document('a', 'text/plain', 1, '$SHA', 'k')" \
           "INSERT INTO chat_app.chat_sessions (title) VALUES ('t')" \
           "INSERT INTO chat_app.chat_messages (session_id, user_id, role, content) VALUES ($SA, 1, 'user', 'x')"; do
  out=$(none "$sql") && fail "without set_user: $sql"
  grep -q "ERROR:  42501:" <<<"$out" || fail "without set_user, $sql: expected 42501, got $out"
done
[ "$(none "SELECT count(*) FROM chat_app.chat_messages" chat_app_owner)" = 0 ] || fail "owner without user"

# The audit log does not show another user's history (the tables have RLS).
q "GRANT USAGE ON SCHEMA workflow TO chat_web"
[ "$(as 1 "SELECT count(*) FROM workflow.audit_log WHERE schema_name = 'chat_app'")" = 0 ] || fail "audit_log readable by the client"
[ "$(as 1 "SELECT count(*) FROM workflow.row_history('chat_app.chat_messages', '{\"id\": $MB}')")" = 0 ] \
  || fail "row_history shows B's message to A"

# Bad input: a SQLSTATE, nothing written.
refused 23514 1 "SELECT chat_app.create_session('   ')"
refused 23514 1 "SELECT chat_app.add_message($SA, 'robot', 'x')"
refused 23514 1 "SELECT chat_app.add_message($SA, 'user', '')"
refused 23514 1 "SELECT chat_app.add_document('../etc/passwd', 'text/plain', 1, '$SHA', 'k')"
refused 23514 1 "SELECT chat_app.add_document('a.txt', 'text/plain', 1, 'not-a-hash', 'k')"
refused 23514 1 "SELECT chat_app.add_document('a.txt', 'text/plain', -1, '$SHA', 'k')"
refused 22023 1 "SELECT * FROM chat_app.list_messages($SA, page_size => 0)"
refused 42501 1 "UPDATE chat_app.chat_messages SET content = 'rewritten' WHERE id = $M"
refused 42501 1 "DELETE FROM chat_app.chat_messages WHERE id = $M"
refused 42501 1 "CREATE TABLE chat_app.x (i int)"
[ "$(q "$B_ROWS")" = "$B_BEFORE" ] || fail "B's rows changed"
[ "$(q "SELECT count(*) FROM workflow.audit_log")" = $((AUDIT_BEFORE + 2)) ] \
  || fail "failed calls were logged (expected only A's message and rename)"

# A send repeated with its client_key stores one message.
K1=$(as 1 "SELECT chat_app.add_message($SA, 'user', 'once', 'key-1')")
K2=$(as 1 "SELECT chat_app.add_message($SA, 'user', 'once', 'key-1')")
[ "$K1" = "$K2" ] && [ "$(q "SELECT count(*) FROM chat_app.chat_messages WHERE client_key = 'key-1'")" = 1 ] \
  || fail "client_key: $K1 vs $K2"

# Audit: who did what, with old and new values.
as 2 "SELECT chat_app.rename_session($SB, 'Bob''s plans')" >/dev/null
[ "$(q "SELECT actor || '|' || (old_values->>'title') || '|' || (new_values->>'title') FROM workflow.audit_log
        WHERE table_name = 'chat_sessions' AND operation = 'UPDATE' AND row_key->>'id' = '$SB'")" = "2|Bob's secrets|Bob's plans" ] \
  || fail "audit of B's rename"
[ "$(q "SELECT string_agg(DISTINCT actor, ',') FROM workflow.audit_log WHERE table_name = 'chat_messages'")" = 1,2 ] \
  || fail "message inserts logged with their users"
as 1 "SELECT chat_app.delete_session($SA)" >/dev/null
[ "$(q "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'chat_messages' AND operation = 'DELETE' AND actor = '1'")" = 5 ] \
  || fail "deleting a session logs its messages' deletion"
[ "$(q "SELECT session_id IS NULL FROM chat_app.documents WHERE id = $DA")" = t ] || fail "document kept without session"

# Others: no grant, nothing.
expect_error 42501 "SELECT count(*) FROM chat_app.chat_messages" outsider
expect_error 42501 "SELECT chat_app.set_user(1)" outsider

# The C++ program: a restart of the server in the middle of a transaction.
[ -x "$DEMO" ] || fail "chat_demo not built ($DEMO)"
PAUSE=$(mktemp -d /tmp/chat-pause.XXXXXX)
OUT="$PAUSE/out"
DATABASE_URL=${DATABASE_URL/postgres@/chat_web@} "$DEMO" 1 40 "$PAUSE" >"$OUT" 2>&1 &
DEMO_PID=$!
for _ in $(seq 600); do [ -e "$PAUSE/paused" ] || ! kill -0 $DEMO_PID 2>/dev/null && break; sleep 0.1; done
[ -e "$PAUSE/paused" ] || fail "chat_demo did not reach its pause: $(cat "$OUT")"
S=$(q "SELECT max(id) FROM chat_app.chat_sessions WHERE user_id = 1")
[ "$(q "SELECT count(*) FROM chat_app.chat_messages WHERE session_id = $S")" = 19 ] || fail "before the restart: 19 committed"
cluster_restart || fail "restart"
touch "$PAUSE/go"
wait $DEMO_PID || fail "chat_demo: $(cat "$OUT")"
grep -q "^session $S: 40 messages in order, documents: notes.txt$" "$OUT" || fail "chat_demo: $(cat "$OUT")"
R=$(sed -n 's/^retried transactions: //p' "$OUT")
[ "${R:-0}" -ge 1 ] || fail "chat_demo retried nothing (the restart did not hit its transaction): $(cat "$OUT")"
[ "$(q "SELECT count(*) || '/' || count(DISTINCT content) FROM chat_app.chat_messages WHERE session_id = $S")" = 40/40 ] \
  || fail "after the restart: $(q "SELECT count(*) FROM chat_app.chat_messages WHERE session_id = $S") messages"
rm -rf "$PAUSE"
echo "examples/chat: all checks passed"
