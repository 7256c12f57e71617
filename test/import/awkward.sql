-- An application's SQLite database with every awkward type the import must
-- carry: foreign keys (one to an implicit primary key, one ON DELETE
-- CASCADE), an AUTOINCREMENT key, an enum kept as CHECKed text, booleans as
-- 0/1 and 't', timestamps as text (with T, Z, fractions, date only), REAL
-- beyond float4's range and 0.1 (exactness), -0.0, 64-bit integer limits,
-- BLOBs with zero bytes and empty, NULL beside '', unicode, quotes, tabs,
-- newlines and backslashes, a NUMERIC column, a WITHOUT ROWID table with a
-- text key. Used by import_sqlite_test.sh: `sqlite3 FILE < awkward.sql`.
PRAGMA foreign_keys = ON;
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  email TEXT NOT NULL UNIQUE,
  name TEXT,
  is_admin BOOLEAN NOT NULL DEFAULT 0,
  role TEXT NOT NULL CHECK (role IN ('student', 'teacher')),
  created_at TIMESTAMP,
  last_seen DATETIME,
  score REAL,
  avatar BLOB,
  big INTEGER
);
CREATE TABLE submissions (
  id INTEGER PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users,
  body TEXT,
  submitted_at TEXT,
  passed BOOLEAN
);
CREATE TABLE assessments (
  id INTEGER PRIMARY KEY,
  submission_id INTEGER REFERENCES submissions (id) ON DELETE CASCADE,
  grade NUMERIC(5, 2),
  comment TEXT
);
CREATE TABLE rate_limits (
  key TEXT PRIMARY KEY,
  window_start INTEGER NOT NULL,
  hits INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;

INSERT INTO users VALUES
  (1, 'a@example.org', 'Zoë "Q" O''Neil', 1, 'teacher', '2024-03-31 01:30:00',
   '2024-03-31T02:30:00.123Z', 0.1, x'00ff10', 9223372036854775807),
  (2, 'b@example.org', NULL, 0, 'student', '2024-10-27 01:00:00', NULL, -1e300, NULL,
   -9223372036854775808),
  (3, 'c@example.org', '', 't', 'student', NULL, '2024-01-01 00:00:00.5', 12345678.5, x'', 0),
  (7, 'd@example.org', '日本語 🎉', 0, 'student', '2024-02-29', '2024-02-29 23:59:59.999',
   -0.0, x'0000', 4611686018427387904);
INSERT INTO submissions VALUES
  (10, 1, 'tab	and
newline \ backslash', '2024-01-02 03:04:05', 1),
  (11, 2, '😀', NULL, NULL),
  (12, 2, 'x', '2024-01-02', 0),
  (13, 7, '  trailing spaces  ', 'not a date', 1);
INSERT INTO assessments VALUES (1, 10, 93.5, 'ok'), (2, 11, NULL, NULL), (3, 12, 100, '🎉'),
  (4, NULL, 0.01, 'no submission');
INSERT INTO rate_limits VALUES ('1.2.3.4', 1700000000, 5), ('user:2', 1700000060, 0),
  ('Ünïcode key', 0, 1);
