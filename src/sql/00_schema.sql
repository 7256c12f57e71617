-- workflow extension, version 1.10: generated from src/sql/*.sql in name order.
\echo Use "CREATE EXTENSION workflow" to load this file. \quit

-- Trusted install (workflow.control: trusted = true). A role with CREATE on
-- the database that is not a superuser may run CREATE EXTENSION; this script
-- then runs as the bootstrap superuser, which owns every object it creates,
-- but the schema was made by CREATE EXTENSION for the calling role (or made
-- by anyone beforehand). A schema owner may add functions to it, and an
-- overload that matches a call better (workflow.f(text, jsonb) beside
-- workflow.f(text, anyelement)) would run inside the superuser-owned
-- SECURITY DEFINER functions and event triggers: so a schema not owned by a
-- superuser must be empty and grant nothing, and the superuser takes it over.
DO $schema$
DECLARE
  ns pg_catalog.pg_namespace;
BEGIN
  SELECT * INTO ns FROM pg_catalog.pg_namespace n WHERE n.nspname = 'workflow';
  IF (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid = ns.nspowner) THEN
    RETURN;
  END IF;
  IF ns.nspacl IS NOT NULL
     OR EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                 WHERE d.refclassid = 'pg_catalog.pg_namespace'::pg_catalog.regclass AND d.refobjid = ns.oid
                   AND d.classid <> 'pg_catalog.pg_extension'::pg_catalog.regclass) THEN
    RAISE EXCEPTION 'schema workflow exists already, owned by %, with objects or privileges in it', ns.nspowner::pg_catalog.regrole
      USING ERRCODE = '42501', HINT = 'Drop the schema first: CREATE EXTENSION workflow makes it.';
  END IF;
  EXECUTE pg_catalog.format('ALTER SCHEMA workflow OWNER TO %I', current_user);
END
$schema$;

COMMENT ON SCHEMA workflow IS 'workflow extension: jobs/stages/tasks, survey steps, audit history';

CREATE FUNCTION workflow.version() RETURNS text
  LANGUAGE c IMMUTABLE PARALLEL SAFE
  AS 'MODULE_PATHNAME', 'workflow_version';
COMMENT ON FUNCTION workflow.version() IS
  'Version of the loaded workflow shared library.';
