-- Exclusions and history survive renames: an excluded column renamed stays
-- excluded (statement and row mode, partitioned tables too); the registry
-- follows table, column and schema renames; the log records the current
-- schema name after ALTER SCHEMA ... RENAME (the cache is invalidated).
SET client_min_messages = warning;
CREATE SCHEMA audit_r;
CREATE TABLE audit_r.account (id int PRIMARY KEY, email text, password_hash text);
SELECT workflow.enable_audit('audit_r.account', '{password_hash}');
INSERT INTO audit_r.account VALUES (1, 'a@example.com', 'h1');
ALTER TABLE audit_r.account RENAME COLUMN password_hash TO pw_hash;
INSERT INTO audit_r.account VALUES (2, 'b@example.com', 'h2');
UPDATE audit_r.account SET pw_hash = 'h3', email = 'c@example.com' WHERE id = 1;
UPDATE audit_r.account SET pw_hash = 'h4';  -- only the excluded column: nothing logged
SELECT operation, row_key, old_values, new_values FROM workflow.audit_log
 WHERE schema_name = 'audit_r' AND table_name = 'account' ORDER BY id;
SELECT table_name, exclude_columns FROM workflow.audit_tables WHERE schema_name = 'audit_r';

-- row-level mode, and a partitioned table (the rename reaches the partitions)
CREATE TABLE audit_r.member (id int PRIMARY KEY, secret text, note text);
SELECT workflow.enable_audit('audit_r.member', '{secret}', statement_level => false);
ALTER TABLE audit_r.member RENAME COLUMN secret TO token;
INSERT INTO audit_r.member VALUES (1, 'tok', 'n');
CREATE TABLE audit_r.shard (id int, k int, secret text, PRIMARY KEY (id, k)) PARTITION BY RANGE (k);
CREATE TABLE audit_r.shard_1 PARTITION OF audit_r.shard FOR VALUES FROM (0) TO (10);
SELECT workflow.enable_audit('audit_r.shard', '{secret}');
ALTER TABLE audit_r.shard RENAME COLUMN secret TO token;
INSERT INTO audit_r.shard VALUES (1, 1, 'tok');
INSERT INTO audit_r.shard_1 VALUES (2, 2, 'tok');
SELECT table_name, new_values FROM workflow.audit_log
 WHERE schema_name = 'audit_r' AND table_name IN ('member', 'shard') ORDER BY id;
SELECT count(*) AS leaked FROM workflow.audit_log
 WHERE schema_name = 'audit_r' AND (new_values ?| '{password_hash,pw_hash,secret,token}'
                                    OR old_values ?| '{password_hash,pw_hash,secret,token}');

-- a table rename: the history follows, the registry knows the new name
ALTER TABLE audit_r.account RENAME TO login;
UPDATE audit_r.login SET email = 'd@example.com' WHERE id = 1;
SELECT table_name, operation, new_values FROM workflow.row_history('audit_r.login', '{"id": 1}');
SELECT table_name FROM workflow.audit_tables WHERE schema_name = 'audit_r' ORDER BY id;

-- a schema rename: new log rows carry the new schema name (the cached one is
-- dropped), the registry follows, the history is the same
ALTER SCHEMA audit_r RENAME TO audit_r2;
UPDATE audit_r2.login SET email = 'e@example.com' WHERE id = 1;
INSERT INTO audit_r2.shard_1 VALUES (3, 3, 'tok');
SELECT schema_name, table_name, new_values FROM workflow.row_history('audit_r2.login', '{"id": 1}');
SELECT schema_name, table_name, new_values FROM workflow.row_history('audit_r2.shard', '{"id": 3, "k": 3}');
SELECT schema_name, table_name FROM workflow.audit_tables WHERE schema_name LIKE 'audit_r%' ORDER BY id;

-- a dropped table keeps its registry row (names, history), not its OID
DROP TABLE audit_r2.member;
SELECT table_name, relid IS NULL AS relid_cleared, audited FROM workflow.audit_tables
 WHERE schema_name = 'audit_r2' ORDER BY id;
DROP SCHEMA audit_r2 CASCADE;
