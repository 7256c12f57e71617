-- 1.0 -> 1.1, audit registry: written only by the SECURITY DEFINER
-- enable_audit / disable_audit and the event triggers now
-- (src/sql/23_audit_privileges.sql), so PUBLIC loses INSERT and UPDATE and
-- the owner policies that went with them (in 1.0 enable_audit ran as its
-- caller). Reading stays as it was.
DROP POLICY audit_tables_owner_inserts ON workflow.audit_tables;
DROP POLICY audit_tables_owner_updates ON workflow.audit_tables;
REVOKE INSERT, UPDATE ON workflow.audit_tables FROM PUBLIC;
REVOKE USAGE ON SEQUENCE workflow.audit_tables_id_seq FROM PUBLIC;
