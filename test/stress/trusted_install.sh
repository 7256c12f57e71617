#!/usr/bin/env bash
# Trusted install (workflow.control: trusted = true): a database owner that
# is not a superuser (nor CREATEROLE) runs CREATE EXTENSION workflow. Then:
# the extension is the owner's; the schema, every function (SECURITY DEFINER
# ones included), table and event trigger belong to the bootstrap superuser;
# apart from the extension's owner the catalog equals a superuser's install
# (test/stress/upgrade/catalog.sql); the owner cannot add objects to schema
# workflow (an overload there would run inside superuser-owned SECURITY
# DEFINER functions), so the attack that made it a superuser fails; a
# pre-made schema with an object in it is refused (42501); the owner can
# grant the workflow_* roles to its service role (ADMIN OPTION) and, when
# the roles' privileges are installed, the service uses them; DROP EXTENSION
# and CREATE EXTENSION again work for the owner. Needs the test cluster
# (scripts/test).
set -euo pipefail
: "${PGHOST:?no server: run via scripts/test}" "${PGPORT:?no server}"
cd "$(dirname "$0")/../.."
P=wf_trusted
TMP=
cleanup() {
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS ${P}_db" -c "DROP DATABASE IF EXISTS ${P}_su" \
       -c "DROP DATABASE IF EXISTS ${P}_pre" -c "DROP ROLE IF EXISTS ${P}_owner" \
       -c "DROP ROLE IF EXISTS ${P}_svc" >/dev/null 2>&1 || true
  if [ -n "$TMP" ]; then rm -rf "$TMP"; fi
}
trap cleanup EXIT
cleanup
TMP=$(mktemp -d /tmp/wf_trusted.XXXXXX)
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -qXAt -v ON_ERROR_STOP=1 "$@"; }
# as ROLE DB SQL: the statement run by that login role; prints the SQLSTATE on error.
as() { psql -qXAt -U "$1" -d "$2" -v ON_ERROR_STOP=1 -v VERBOSITY=sqlstate -c "$3" 2>&1; }
psql -qX -d postgres -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE ROLE ${P}_owner LOGIN;
CREATE ROLE ${P}_svc LOGIN;
CREATE DATABASE ${P}_db OWNER ${P}_owner;
CREATE DATABASE ${P}_su;
CREATE DATABASE ${P}_pre OWNER ${P}_owner;
SQL
bootstrap=$(q -d postgres -c "SELECT rolname FROM pg_roles WHERE oid = 10")

out=$(as ${P}_owner ${P}_db "CREATE EXTENSION workflow") || fail "owner could not CREATE EXTENSION: $out"
got=$(q -d ${P}_db -c "SELECT extowner::regrole FROM pg_extension WHERE extname = 'workflow'")
[ "$got" = ${P}_owner ] || fail "extension owned by $got"
got=$(q -d ${P}_db -c "SELECT string_agg(DISTINCT kind || '=' || owner, ' ' ORDER BY kind || '=' || owner) FROM (
         SELECT 'schema' AS kind, nspowner::regrole::text AS owner FROM pg_namespace WHERE nspname = 'workflow'
         UNION ALL SELECT 'function', proowner::regrole::text FROM pg_proc WHERE pronamespace = 'workflow'::regnamespace
         UNION ALL SELECT 'definer', proowner::regrole::text FROM pg_proc WHERE pronamespace = 'workflow'::regnamespace AND prosecdef
         UNION ALL SELECT 'relation', relowner::regrole::text FROM pg_class WHERE relnamespace = 'workflow'::regnamespace
         UNION ALL SELECT 'event_trigger', evtowner::regrole::text FROM pg_event_trigger) o")
[ "$got" = "definer=$bootstrap event_trigger=$bootstrap function=$bootstrap relation=$bootstrap schema=$bootstrap" ] \
  || fail "owners after a trusted install: $got"
echo "trusted install by ${P}_owner: extension its own; $got"

# Same catalog as a superuser's install, but for the extension's owner.
q -d ${P}_su -c "CREATE EXTENSION workflow" >/dev/null
psql -qX -d ${P}_db -v ON_ERROR_STOP=1 -f test/stress/upgrade/catalog.sql | grep -v '^extension workflow:' >"$TMP/trusted"
psql -qX -d ${P}_su -v ON_ERROR_STOP=1 -f test/stress/upgrade/catalog.sql | grep -v '^extension workflow:' >"$TMP/su"
diff -u --label superuser --label trusted "$TMP/su" "$TMP/trusted" || fail "a trusted install's catalog differs"
echo "catalog equals a superuser's install: $(wc -l <"$TMP/su") lines"

# The owner cannot plant an overload in the schema (the attack: an exact
# match for a call inside create_job, run as the superuser, makes it one).
out=$(as ${P}_owner ${P}_db "CREATE FUNCTION workflow._engine_check_not_null(arg_name text, value jsonb) RETURNS void
                              LANGUAGE plpgsql AS \$\$BEGIN EXECUTE 'ALTER ROLE ${P}_owner SUPERUSER'; END\$\$") \
  && fail "the owner created a function in schema workflow"
case "$out" in *42501*) ;; *) fail "planting an overload: $out";; esac
[ "$(q -d postgres -c "SELECT rolsuper FROM pg_roles WHERE rolname = '${P}_owner'")" = f ] || fail "owner became superuser"
for sql in "ALTER SCHEMA workflow RENAME TO wf2" "CREATE TABLE workflow.t (i int)" \
           "ALTER EXTENSION workflow DROP FUNCTION workflow.version()" "ALTER FUNCTION workflow.version() OWNER TO ${P}_owner"; do
  out=$(as ${P}_owner ${P}_db "$sql") && fail "the owner could: $sql"
  case "$out" in *42501*) ;; *) fail "$sql: $out";; esac
done
echo "owner cannot add to or rename the schema, nor take members: 42501"

# A schema prepared with something in it is refused; an empty one is taken over.
out=$(as ${P}_owner ${P}_pre "CREATE SCHEMA workflow") || fail "$out"
out=$(as ${P}_owner ${P}_pre "CREATE FUNCTION workflow._engine_check_not_null(arg_name text, value jsonb) RETURNS void LANGUAGE sql AS ''") || fail "$out"
out=$(as ${P}_owner ${P}_pre "CREATE EXTENSION workflow") && fail "installed into a prepared schema with a function in it"
case "$out" in *42501*) ;; *) fail "prepared schema: $out";; esac
out=$(as ${P}_owner ${P}_pre "DROP SCHEMA workflow CASCADE; CREATE SCHEMA workflow; CREATE EXTENSION workflow") || fail "empty prepared schema: $out"
[ "$(q -d ${P}_pre -c "SELECT nspowner::regrole FROM pg_namespace WHERE nspname = 'workflow'")" = "$bootstrap" ] \
  || fail "an empty prepared schema was not taken over"
echo "prepared schema: with an object 42501, empty taken over"

# The owner grants the roles to its service.
out=$(as ${P}_owner ${P}_db "GRANT workflow_producer, workflow_worker TO ${P}_svc") || fail "owner could not grant the roles: $out"
[ "$(q -d ${P}_db -c "SELECT pg_has_role('${P}_svc', 'workflow_producer', 'MEMBER') AND pg_has_role('${P}_svc', 'workflow_worker', 'MEMBER')")" = t ] \
  || fail "service is not a member"
if [ "$(q -d ${P}_db -c "SELECT has_schema_privilege('workflow_producer', 'workflow', 'USAGE')")" = t ]; then
  out=$(as ${P}_svc ${P}_db "SELECT workflow.create_job('trusted', '{}', 1, 'trusted-j1')") || fail "service could not create a job: $out"
  echo "owner granted workflow_producer, workflow_worker to ${P}_svc; the service created job $out"
else
  echo "owner granted workflow_producer, workflow_worker to ${P}_svc (the roles have no USAGE on the schema in this build)"
fi

# The owner can drop and create it again (the schema stays, the superuser's, empty).
out=$(as ${P}_owner ${P}_db "DROP EXTENSION workflow") || fail "owner could not drop: $out"
out=$(as ${P}_owner ${P}_db "CREATE EXTENSION workflow") || fail "owner could not create again: $out"
echo "trusted install: ok"
