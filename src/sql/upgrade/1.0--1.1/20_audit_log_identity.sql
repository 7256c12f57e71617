-- 1.0 -> 1.1, audit log: the session user and the current user of each
-- change beside the claimed actor (src/sql/20_audit_log.sql). Rows logged by
-- 1.0 keep what they had and get NULL in both: 1.0 did not record them, and
-- their actor (workflow.actor, else 1.0's current_user) cannot tell. Nullable
-- columns without a default: no rewrite of the log. Until this runs, the 1.1
-- library writes a 1.0 log in its 1.0 shape.
ALTER TABLE workflow.audit_log ADD COLUMN session_user_name text, ADD COLUMN current_user_name text;
COMMENT ON COLUMN workflow.audit_log.actor IS
  'Claimed actor: SET LOCAL workflow.actor when set (any role may set it), else the session user';
COMMENT ON COLUMN workflow.audit_log.session_user_name IS
  'session_user of the change: the login role (behind a pooler, its pooled role); NULL in rows logged before 1.1';
COMMENT ON COLUMN workflow.audit_log.current_user_name IS
  'current_user of the change: the role whose privileges made it (the owner inside a SECURITY DEFINER function); NULL in rows logged before 1.1';

-- Who reads what: the policy of src/sql/20_audit_log.sql (1.0 showed the
-- history of a table with row-level security to all its readers, and that of
-- a dropped or revoked table to no one but superusers).
ALTER POLICY audit_log_readable ON workflow.audit_log
  USING ((SELECT pg_catalog.pg_has_role('workflow_auditor', 'USAGE'))
         OR table_id = ANY (ARRAY(SELECT t.id FROM workflow.audit_tables t
                                   WHERE pg_catalog.has_table_privilege(t.relid, 'SELECT')
                                     AND (SELECT NOT c.relrowsecurity OR pg_catalog.pg_has_role(c.relowner, 'USAGE')
                                            FROM pg_catalog.pg_class c WHERE c.oid = t.relid))));
