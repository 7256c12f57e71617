#!/usr/bin/env bash
# ctest client.import_sqlite: `workflow import-sqlite` end to end against
# DATABASE_URL, in its own database. A SQLite file with every awkward type
# (awkward.sql) is imported over an existing schema and swapped in; the
# values are checked in PostgreSQL; a corrupted copy (a changed value, a
# deleted row, an orphan) is caught by --verify-only; a failed import (a row
# pgloader rejects, a source with orphans, a file that is not SQLite) leaves
# the old schema in use and no staging schema behind; the report's way back
# restores the old schema.
set -euo pipefail
CLI=$1
[ -n "${DATABASE_URL:-}" ] || { echo "FAIL: DATABASE_URL is not set"; exit 1; }
export PGOPTIONS="-c client_min_messages=warning"
HERE=$(cd "$(dirname "$0")" && pwd)
DB=wf_import_$$
TMP=$(mktemp -d /tmp/wf-import-test.XXXXXX)
psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB" -c "CREATE DATABASE $DB"
trap 'psql -qX "$DATABASE_URL" -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)"; rm -rf "$TMP"' EXIT
URL="${DATABASE_URL%/*}/$DB"
q() { psql -qXAt "$URL" -c "$1"; }
fail() { echo "FAIL: $*"; exit 1; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }
schemas() { q "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname LIKE 'app%'"; }

sqlite3 "$TMP/good.db" < "$HERE/awkward.sql"
q "CREATE SCHEMA app; CREATE TABLE app.previous_version (v int); INSERT INTO app.previous_version VALUES (1)"

# 1. The awkward file: imported, verified, swapped in; the old schema kept.
"$CLI" --db "$URL" import-sqlite "$TMP/good.db" --schema app --report "$TMP/r1" >"$TMP/out1" \
  || { cat "$TMP/out1"; fail "import of the awkward file failed"; }
[ "$(json "$TMP/r1.json" 'd["ok"] and d["swapped"]')" = True ] || fail "report: $(cat "$TMP/r1.md")"
[ "$(json "$TMP/r1.json" 'len(d["tables"])')" = 4 ] || fail "4 tables expected"
[ "$(json "$TMP/r1.json" '[t["pg_rows"] for t in d["tables"]]')" = "[4, 3, 4, 4]" ] || fail "row counts"
grep -q '^| users | 4 | 4 |' "$TMP/r1.md" || fail "markdown table row for users: $(cat "$TMP/r1.md")"
OLD=$(json "$TMP/r1.json" 'd["previous_schema"]')
[ "$(q "SELECT v FROM $OLD.previous_version")" = 1 ] || fail "old schema not kept as $OLD"
[ "$(q "SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'app_import_%'")" = 0 ] || fail "staging left"
# Values as the application reads them.
[ "$(q "SELECT big FROM app.users WHERE id = 1")" = 9223372036854775807 ] || fail "int64 max"
[ "$(q "SELECT big FROM app.users WHERE id = 2")" = -9223372036854775808 ] || fail "int64 min"
[ "$(q "SELECT score = -1e300 AND pg_typeof(score) = 'double precision'::regtype FROM app.users WHERE id = 2")" = t ] || fail "-1e300"
[ "$(q "SELECT score FROM app.users WHERE id = 1")" = 0.1 ] || fail "0.1"
[ "$(q "SELECT score FROM app.users WHERE id = 3")" = 12345678.5 ] || fail "12345678.5"
[ "$(q "SELECT string_agg(is_admin::text, ',' ORDER BY id) FROM app.users")" = "true,false,true,false" ] || fail "booleans"
[ "$(q "SELECT encode(avatar, 'hex') FROM app.users WHERE id = 1")" = 00ff10 ] || fail "blob"
[ "$(q "SELECT avatar = ''::bytea FROM app.users WHERE id = 3")" = t ] || fail "empty blob"
[ "$(q "SELECT name IS NULL FROM app.users WHERE id = 2")|$(q "SELECT name = '' FROM app.users WHERE id = 3")" = "t|t" ] || fail "NULL vs ''"
[ "$(q "SELECT last_seen = '2024-03-31 02:30:00.123+00' FROM app.users WHERE id = 1")" = t ] || fail "timestamptz"
[ "$(q "SELECT body FROM app.submissions WHERE id = 10")" = "$(printf 'tab\tand\nnewline \\ backslash')" ] || fail "text escapes"
[ "$(q "SELECT grade FROM app.assessments WHERE id = 1")" = 93.50 ] || fail "numeric"
[ "$(q "SELECT attnotnull FROM pg_attribute WHERE attrelid = 'app.users'::regclass AND attname = 'email'")" = t ] || fail "NOT NULL restored"
[ "$(q "SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND connamespace = 'app'::regnamespace")" = 2 ] || fail "2 foreign keys"
[ "$(q "SELECT confdeltype FROM pg_constraint WHERE conrelid = 'app.assessments'::regclass AND contype = 'f'")" = c ] || fail "ON DELETE CASCADE"
[ "$(q "SELECT nextval(pg_get_serial_sequence('app.users', 'id'))")" = 8 ] || fail "AUTOINCREMENT sequence reset"
q "SELECT setval(pg_get_serial_sequence('app.users', 'id'), 7)" >/dev/null
q "INSERT INTO app.submissions VALUES (99, 42, 'x', NULL, NULL)" 2>/dev/null && fail "FK not enforced"

# 2. --verify-only on the intact copy passes, and catches each corruption.
"$CLI" --db "$URL" import-sqlite "$TMP/good.db" --schema app --verify-only >/dev/null || fail "verify of an intact copy"
expect_mismatch() {  # what corrupt-sql restore-sql check
  q "$2"
  set +e; "$CLI" --db "$URL" import-sqlite "$TMP/good.db" --schema app --verify-only --report "$TMP/v" >/dev/null; local rc=$?; set -e
  [ "$rc" = 1 ] || fail "$1: exit status $rc, expected 1"
  [ "$(json "$TMP/v.json" "$4")" = True ] || fail "$1: $(cat "$TMP/v.md")"
  q "$3"
  "$CLI" --db "$URL" import-sqlite "$TMP/good.db" --schema app --verify-only >/dev/null || fail "$1: not restored"
}
expect_mismatch "a changed value" "UPDATE app.users SET name = 'Zoe' WHERE id = 1" \
  "UPDATE app.users SET name = 'Zoë \"Q\" O''Neil' WHERE id = 1" \
  '[(t["name"], t["sqlite_rows"] == t["pg_rows"], t["ok"]) for t in d["tables"] if not t["ok"]] == [("users", True, False)]'
expect_mismatch "a NULL for ''" "UPDATE app.users SET name = NULL WHERE id = 3" \
  "UPDATE app.users SET name = '' WHERE id = 3" \
  '[t["name"] for t in d["tables"] if not t["ok"]] == ["users"]'
expect_mismatch "a lost row" "DELETE FROM app.rate_limits WHERE key = 'user:2'" \
  "INSERT INTO app.rate_limits VALUES ('user:2', 1700000060, 0)" \
  '[(t["name"], t["pg_rows"]) for t in d["tables"] if not t["ok"]] == [("rate_limits", 2)]'
expect_mismatch "a swapped pair" "UPDATE app.rate_limits SET hits = CASE hits WHEN 5 THEN 1 ELSE 5 END WHERE hits IN (5, 1)" \
  "UPDATE app.rate_limits SET hits = CASE hits WHEN 5 THEN 1 ELSE 5 END WHERE hits IN (5, 1)" \
  '[t["name"] for t in d["tables"] if not t["ok"]] == ["rate_limits"]'
expect_mismatch "an orphan" "ALTER TABLE app.assessments DROP CONSTRAINT assessments_submission_id_fkey; UPDATE app.assessments SET submission_id = 404 WHERE id = 4" \
  "UPDATE app.assessments SET submission_id = NULL WHERE id = 4; ALTER TABLE app.assessments ADD FOREIGN KEY (submission_id) REFERENCES app.submissions (id) ON DELETE CASCADE" \
  '[(f["table"], f["constraint_in_pg"], f["pg_orphans"]) for f in d["foreign_keys"] if not f["ok"]] == [("assessments", False, 1)]'
expect_mismatch "timestamps read in another zone" \
  "ALTER TABLE app.users ALTER created_at TYPE timestamptz USING created_at AT TIME ZONE 'Europe/Berlin'" \
  "ALTER TABLE app.users ALTER created_at TYPE timestamp USING created_at AT TIME ZONE 'Europe/Berlin'" \
  '[t["name"] for t in d["tables"] if not t["ok"]] == ["users"]'

# 3. Failed imports leave `app` as it is and no staging schema.
BEFORE=$(schemas)
SUM=$(json "$TMP/r1.json" '[t["pg_checksum"] for t in d["tables"]]')
sqlite3 "$TMP/rejected.db" < "$HERE/awkward.sql"
sqlite3 "$TMP/rejected.db" "UPDATE users SET big = 'not a number' WHERE id = 3"
set +e; "$CLI" --db "$URL" import-sqlite "$TMP/rejected.db" --schema app --report "$TMP/r2" >/dev/null; rc=$?; set -e
[ "$rc" = 1 ] || fail "a row pgloader rejects: exit $rc"
[ "$(json "$TMP/r2.json" '[(t["name"], t["sqlite_rows"] > t["pg_rows"]) for t in d["tables"] if not t["ok"]]')" = "[('users', True)]" ] \
  || fail "rejected row not reported: $(cat "$TMP/r2.md")"
[ "$(json "$TMP/r2.json" 'd["swapped"]')" = False ] || fail "swapped after a mismatch"
sqlite3 "$TMP/orphans.db" < "$HERE/awkward.sql"
sqlite3 "$TMP/orphans.db" "INSERT INTO submissions VALUES (50, 999, 'orphan', NULL, NULL)"
set +e; "$CLI" --db "$URL" import-sqlite "$TMP/orphans.db" --schema app --report "$TMP/r3" >/dev/null; rc=$?; set -e
[ "$rc" = 1 ] || fail "a source with an orphan: exit $rc"
[ "$(json "$TMP/r3.json" '[(f["table"], f["sqlite_violations"]) for f in d["foreign_keys"] if not f["ok"]]')" = "[('submissions', 1)]" ] \
  || fail "source orphan not reported: $(cat "$TMP/r3.md")"
echo "not a database" > "$TMP/text.db"
set +e; "$CLI" --db "$URL" import-sqlite "$TMP/text.db" --schema app 2>"$TMP/err" >/dev/null; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "not a readable SQLite database" "$TMP/err" || fail "a text file: exit $rc $(cat "$TMP/err")"
set +e; "$CLI" --db "$URL" import-sqlite "$TMP/good.db" --schema 'App; DROP' 2>"$TMP/err" >/dev/null; rc=$?; set -e
[ "$rc" = 2 ] && grep -q "22023" "$TMP/err" || fail "a bad schema name: exit $rc $(cat "$TMP/err")"
[ "$(schemas)" = "$BEFORE" ] || fail "schemas changed by failed imports: $BEFORE -> $(schemas)"
"$CLI" --db "$URL" import-sqlite "$TMP/good.db" --schema app --verify-only --report "$TMP/v2" >/dev/null || fail "app changed"
[ "$(json "$TMP/v2.json" '[t["pg_checksum"] for t in d["tables"]]')" = "$SUM" ] || fail "app's checksums changed"

# 4. --keep-staging keeps the rejected copy for inspection.
set +e; "$CLI" --db "$URL" import-sqlite "$TMP/rejected.db" --schema app --keep-staging --report "$TMP/r4" >/dev/null; set -e
KEPT=$(json "$TMP/r4.json" 'd["verified_schema"]')
# (pgloader 3.6.9 drops the whole COPY batch with the bad row: 0 of 4 rows here)
[ "$(q "SELECT count(*) < 4 FROM $KEPT.users")" = t ] || fail "--keep-staging: $KEPT"
q "DROP SCHEMA $KEPT CASCADE"

# 5. The way back: the report's SQL puts the previous schema back.
q "$(json "$TMP/r1.json" 'd["way_back"]')"
[ "$(q "SELECT v FROM app.previous_version")" = 1 ] || fail "way back"
echo "import-sqlite: all checks passed"
