
-- 1.0 -> 1.1, audit read path: row_history becomes native (same signature,
-- result, checks and errors; src/extension/audit_history.cpp). The function's
-- privileges are kept by CREATE OR REPLACE.
CREATE OR REPLACE FUNCTION workflow.row_history(target regclass, key jsonb)
RETURNS SETOF workflow.audit_log
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'workflow_row_history';
COMMENT ON FUNCTION workflow.row_history(regclass, jsonb) IS
  'Log rows of one row of target (by primary key as jsonb, e.g. ''{"id": 7}''), plus the table''s TRUNCATEs, oldest first.';
