-- An audited table keeps its primary key (src/sql/24_audit_key_guard.sql):
-- an ALTER TABLE that takes it away is refused (55000) and changes nothing,
-- so the trigger never logs rows under the key {}; a key changed in one
-- ALTER TABLE, or dropped after disable_audit, is allowed.
BEGIN;
SELECT plan(12);

CREATE TABLE public.keyguard (id int PRIMARY KEY, code text NOT NULL UNIQUE, v text);
SELECT workflow.enable_audit('public.keyguard');
INSERT INTO public.keyguard VALUES (1, 'c1', 'v1'), (2, 'c2', 'v2');

SELECT throws_ok($$ ALTER TABLE public.keyguard DROP CONSTRAINT keyguard_pkey $$, '55000',
                 'table public.keyguard is audited and must keep a primary key',
                 'dropping the primary key of an audited table is refused');
SELECT throws_ok($$ ALTER TABLE public.keyguard DROP COLUMN id CASCADE $$, '55000', NULL,
                 'dropping the key column with CASCADE is refused');
SELECT ok(EXISTS (SELECT 1 FROM pg_index WHERE indrelid = 'public.keyguard'::regclass AND indisprimary),
          'the key is still there');
SELECT ok(EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = 'public.keyguard'::regclass AND attname = 'id'
                   AND NOT attisdropped), 'the key column is still there');
UPDATE public.keyguard SET v = v || '!';
SELECT is((SELECT count(*)::int FROM workflow.audit_log l JOIN workflow.audit_tables t ON t.id = l.table_id
            WHERE t.relid = 'public.keyguard'::regclass AND l.row_key = '{}'), 0,
          'nothing is logged under an empty key');
SELECT is((SELECT count(*)::int FROM workflow.row_history('public.keyguard', '{"id": 2}')), 2,
          'each row keeps its own history');

-- the key changed in one statement: history continues under the new key
SELECT lives_ok($$ ALTER TABLE public.keyguard DROP CONSTRAINT keyguard_pkey, ADD PRIMARY KEY (code) $$,
                'the key may change in one ALTER TABLE');
UPDATE public.keyguard SET v = 'v3' WHERE code = 'c1';
SELECT is((SELECT new_values FROM workflow.row_history('public.keyguard', '{"code": "c1"}')),
          '{"v": "v3"}'::jsonb, 'changes are logged under the new key');

-- other tables' keys are theirs
CREATE TABLE public.keyguard_plain (id int PRIMARY KEY);
SELECT lives_ok($$ ALTER TABLE public.keyguard_plain DROP CONSTRAINT keyguard_plain_pkey $$,
                'an unaudited table may drop its key');

-- after disable_audit the key is the owner's again
SELECT workflow.disable_audit('public.keyguard');
SELECT lives_ok($$ ALTER TABLE public.keyguard DROP CONSTRAINT keyguard_pkey $$,
                'a table no longer audited may drop its key');
SELECT is((SELECT count(*)::int FROM workflow.row_history('public.keyguard', '{"code": "c1"}')), 1,
          'its history stays');
SELECT has_function('workflow', 'audit_keep_primary_key', '{}'::name[]);

SELECT * FROM finish();
ROLLBACK;
