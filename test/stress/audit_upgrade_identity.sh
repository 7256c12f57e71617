#!/usr/bin/env bash
# The audit log across ALTER EXTENSION workflow UPDATE 1.0 -> 1.1: a 1.0
# database runs the 1.1 library until it is updated, so the trigger must
# still write the 1.0 log (no session_user_name / current_user_name); the
# update adds both columns (rows logged before keep NULL in them), after it
# the writer fills them; the 1.0 history reads back; the registry and the
# log's privileges and policy are those of a fresh install (after updating
# on to the current version). Needs the
# test cluster (scripts/test).
set -euo pipefail
: "${PGHOST:?no server: run via scripts/test}" "${PGPORT:?no server}"
UP=wf_audit_upgrade FRESH=wf_audit_upgrade_fresh SESSION=wf_audit_upgrade_session
cleanup() {
  psql -qX -d postgres -c "DROP DATABASE IF EXISTS $UP" -c "DROP DATABASE IF EXISTS $FRESH" \
    -c "DROP DATABASE IF EXISTS $SESSION" >/dev/null 2>&1 || true
  psql -qX -d postgres -c "DROP ROLE IF EXISTS wf_audit_upgrade_writer" >/dev/null 2>&1 || true
}
trap cleanup EXIT
cleanup
fail() { echo "FAIL: $*"; exit 1; }
q() { psql -qXAt -d "$1" -v ON_ERROR_STOP=1 -c "$2"; }
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $UP" -c "CREATE DATABASE $FRESH" \
  -c "CREATE ROLE wf_audit_upgrade_writer" >/dev/null
psql -qX -d $UP -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow VERSION '1.0';
CREATE TABLE public.item (id int PRIMARY KEY, v text);
GRANT USAGE ON SCHEMA workflow TO wf_audit_upgrade_writer;
GRANT SELECT, UPDATE ON public.item TO wf_audit_upgrade_writer;
SELECT workflow.enable_audit('public.item');
INSERT INTO public.item VALUES (1, 'a');
SET ROLE wf_audit_upgrade_writer;
UPDATE public.item SET v = 'b';
RESET ROLE;
SQL
[ "$(q $UP "SELECT count(*) FROM workflow.audit_log WHERE table_name = 'item'")" = 2 ] \
  || fail "the 1.1 library did not write the 1.0 log"
psql -qX -d $UP -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
ALTER EXTENSION workflow UPDATE TO '1.1';
SET ROLE wf_audit_upgrade_writer;
UPDATE public.item SET v = 'c';
RESET ROLE;
SQL
got=$(q $UP "SELECT string_agg(concat_ws(',', operation, actor, coalesce(session_user_name, '-'), coalesce(current_user_name, '-')), ' ' ORDER BY id)
             FROM workflow.row_history('public.item', '{\"id\": 1}')")
want="INSERT,postgres,-,- UPDATE,postgres,-,- UPDATE,postgres,postgres,wf_audit_upgrade_writer"
[ "$got" = "$want" ] || fail "history after the update: got '$got', want '$want'"
psql -qX -d $FRESH -v ON_ERROR_STOP=1 -c "CREATE EXTENSION workflow" >/dev/null
# Compared with a fresh install of the current version: take the rest of the
# way first (later releases add audit functions, e.g. 1.8's key guard).
psql -qX -d $UP -v ON_ERROR_STOP=1 -c "ALTER EXTENSION workflow UPDATE" >/dev/null
catalog() {
  psql -qXAt -d "$1" -v ON_ERROR_STOP=1 <<'SQL'
SELECT polrelid::regclass, polname, polcmd, pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid)
  FROM pg_policy WHERE polrelid::regclass::text LIKE 'workflow.audit%';
SELECT c.oid::regclass, c.relacl, c.relrowsecurity FROM pg_class c
 WHERE c.relnamespace = 'workflow'::regnamespace AND c.relname LIKE '%audit%';
SELECT attname, atttypid::regtype, attnotnull, col_description(attrelid, attnum) FROM pg_attribute
 WHERE attrelid = 'workflow.audit_log'::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum;
SELECT p.oid::regprocedure, p.prosecdef, p.proconfig, p.proacl, md5(p.prosrc) FROM pg_proc p
 WHERE p.pronamespace = 'workflow'::regnamespace
   AND (p.proname LIKE '%audit%' OR p.proname IN ('row_history', 'row_as_of', 'set_updated_at'));
SQL
}
diff <(catalog $UP | sort) <(catalog $FRESH | sort) || fail "the upgraded audit catalog differs from a fresh install"
# The same update inside one session that has written the 1.0 log already:
# the writer's kept state (slots on the log's 11-column descriptor) is
# dropped with the log's relcache entry, and the next write fills the new
# columns.
psql -qX -d postgres -v ON_ERROR_STOP=1 -c "CREATE DATABASE $SESSION" >/dev/null
psql -qX -d $SESSION -v ON_ERROR_STOP=1 >/dev/null <<'SQL'
CREATE EXTENSION workflow VERSION '1.0';
CREATE TABLE public.item (id int PRIMARY KEY, v text);
SELECT workflow.enable_audit('public.item');
INSERT INTO public.item VALUES (1, 'a'), (2, 'a');
UPDATE public.item SET v = 'b' WHERE id = 1;
ALTER EXTENSION workflow UPDATE TO '1.1';
UPDATE public.item SET v = 'c' WHERE id = 1;
UPDATE public.item SET v = 'c';
SQL
got=$(q $SESSION "SELECT string_agg(concat_ws(',', operation, row_key->>'id', new_values->>'v', coalesce(session_user_name, '-'), coalesce(current_user_name, '-')), ' ' ORDER BY id)
                  FROM workflow.audit_log")
want="INSERT,1,a,-,- INSERT,2,a,-,- UPDATE,1,b,-,- UPDATE,1,c,postgres,postgres UPDATE,2,c,postgres,postgres"
[ "$got" = "$want" ] || fail "one session across the update: got '$got', want '$want'"
echo "audit upgrade identity ok"
