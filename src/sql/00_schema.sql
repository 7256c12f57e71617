-- workflow extension, version 1.1: generated from src/sql/*.sql in name order.
\echo Use "CREATE EXTENSION workflow" to load this file. \quit

COMMENT ON SCHEMA workflow IS 'workflow extension: jobs/stages/tasks, survey steps, audit history';

CREATE FUNCTION workflow.version() RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_version';
COMMENT ON FUNCTION workflow.version() IS
  'Version of the loaded workflow shared library.';
