-- The workflow extension's catalog as text, one fact per line, each line
-- prefixed with the object it describes, in a stable order: what
-- test/stress/upgrade.sh compares between an upgraded database, a fresh
-- install and a restored dump. Nothing here depends on OIDs, so two
-- databases of one cluster give the same text when their schemas agree.
-- Covered: the schema; the extension row, its members (pg_depend 'e') and its
-- dump registration (extconfig/extcondition); functions (full definition:
-- signature, result, language, volatility, strictness, parallel safety,
-- SECURITY DEFINER, SET options, body), their owner, ACL and comment;
-- relations (tables, views, sequences, indexes, types) in schema workflow:
-- kind, owner, ACL, RLS flags, options, comment; columns (position, type,
-- default, NOT NULL, identity, generated, collation, ACL, comment);
-- constraints; index definitions; triggers on every table of the database
-- (extension tables and the user tables enable_audit / set_updated_at
-- touched), with their enabled state; policies; rules; view definitions;
-- sequences' parameters and owning columns; event triggers; types and
-- domains; default privileges; operators, casts and statistics objects of
-- the extension; the rows the install script writes (builtin step names
-- and aliases) and the audit registry (the same user setup on both sides).
\pset format unaligned
\pset tuples_only on
\pset footer off
SET search_path = pg_catalog;
-- Role names, not OIDs, in ACLs: same cluster, same names.
WITH ns AS (SELECT oid FROM pg_namespace WHERE nspname = 'workflow'),
ext AS (SELECT * FROM pg_extension WHERE extname = 'workflow'),
facts(k, line) AS (
  SELECT 'schema', format('schema workflow: owner=%s acl=%s comment=%s', pg_get_userbyid(n.nspowner),
                          n.nspacl, obj_description(n.oid, 'pg_namespace'))
    FROM pg_namespace n WHERE n.nspname = 'workflow'
  UNION ALL
  SELECT 'extension', format('extension workflow: version=%s owner=%s schema=%s relocatable=%s',
                             e.extversion, pg_get_userbyid(e.extowner), e.extnamespace::regnamespace,
                             e.extrelocatable) FROM ext e
  UNION ALL
  -- Dump registration: the tables/sequences whose rows pg_dump keeps, and filters.
  SELECT 'extconfig', format('extconfig %s: condition=%L', c.cfg::regclass, c.cond)
    FROM ext e, unnest(e.extconfig, e.extcondition) AS c(cfg, cond)
  UNION ALL
  -- Membership: every object the extension owns.
  SELECT 'member', 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
    FROM pg_depend d, ext e
   WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid AND d.deptype = 'e'
  UNION ALL
  -- Functions: attributes, then the whole definition, line by line.
  SELECT 'function', format('function %s: kind=%s owner=%s acl=%s comment=%s', p.oid::regprocedure,
                            p.prokind, pg_get_userbyid(p.proowner), p.proacl, obj_description(p.oid, 'pg_proc'))
    FROM pg_proc p, ns WHERE p.pronamespace = ns.oid
  UNION ALL
  SELECT 'function', format('function %s: def %s: %s', p.oid::regprocedure, lpad(l.n::text, 4, '0'), l.line)
    FROM pg_proc p, ns,
         LATERAL (SELECT CASE WHEN p.prokind = 'a' THEN 'aggregate' ELSE pg_get_functiondef(p.oid) END) f(def),
         LATERAL unnest(string_to_array(f.def, E'\n')) WITH ORDINALITY l(line, n)
   WHERE p.pronamespace = ns.oid
  UNION ALL
  -- Relations of the schema.
  SELECT 'relation', format('relation %s: kind=%s owner=%s acl=%s rls=%s force_rls=%s persistence=%s options=%s comment=%s',
                            c.oid::regclass, c.relkind, pg_get_userbyid(c.relowner), c.relacl,
                            c.relrowsecurity, c.relforcerowsecurity, c.relpersistence, c.reloptions,
                            obj_description(c.oid, 'pg_class'))
    FROM pg_class c, ns WHERE c.relnamespace = ns.oid
  UNION ALL
  -- Columns by position among the live ones (an upgrade's ADD COLUMN lands
  -- last: a fresh install must put the column last too).
  SELECT 'column', format('column %s.%s: position=%s type=%s not_null=%s default=%s identity=%s generated=%s collation=%s acl=%s comment=%s',
                          c.oid::regclass, quote_ident(a.attname),
                          row_number() OVER (PARTITION BY c.oid ORDER BY a.attnum),
                          format_type(a.atttypid, a.atttypmod), a.attnotnull,
                          pg_get_expr(ad.adbin, ad.adrelid), nullif(a.attidentity, ''), nullif(a.attgenerated, ''),
                          CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
                          a.attacl, col_description(c.oid, a.attnum))
    FROM pg_class c JOIN ns ON c.relnamespace = ns.oid
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = c.oid AND ad.adnum = a.attnum
   WHERE c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
  UNION ALL
  SELECT 'constraint', format('constraint %s on %s: %s deferrable=%s deferred=%s validated=%s comment=%s',
                              quote_ident(co.conname), coalesce(co.conrelid::regclass::text, co.contypid::regtype::text),
                              pg_get_constraintdef(co.oid), co.condeferrable, co.condeferred, co.convalidated,
                              obj_description(co.oid, 'pg_constraint'))
    FROM pg_constraint co, ns WHERE co.connamespace = ns.oid
  UNION ALL
  SELECT 'index', format('index %s: %s valid=%s comment=%s', i.indexrelid::regclass, pg_get_indexdef(i.indexrelid),
                         i.indisvalid, obj_description(i.indexrelid, 'pg_class'))
    FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN ns ON c.relnamespace = ns.oid
  UNION ALL
  -- Triggers of every table in the database (not internal ones, nor the
  -- clones partitions inherit), with their enabled state.
  SELECT 'trigger', format('trigger %s on %s: %s enabled=%s comment=%s', quote_ident(t.tgname), t.tgrelid::regclass,
                           pg_get_triggerdef(t.oid), t.tgenabled, obj_description(t.oid, 'pg_trigger'))
    FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
    JOIN pg_namespace n ON n.oid = c.relnamespace
   WHERE NOT t.tgisinternal AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  UNION ALL
  SELECT 'policy', format('policy %s on %s: cmd=%s permissive=%s roles=%s using=%s check=%s',
                          quote_ident(p.polname), p.polrelid::regclass, p.polcmd, p.polpermissive,
                          (SELECT string_agg(CASE WHEN r = 0 THEN 'public' ELSE pg_get_userbyid(r)::text END, ',' ORDER BY 1)
                             FROM unnest(p.polroles) r),
                          pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid))
    FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN ns ON c.relnamespace = ns.oid
  UNION ALL
  SELECT 'rule', format('rule %s on %s: %s', quote_ident(r.rulename), r.ev_class::regclass, pg_get_ruledef(r.oid))
    FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN ns ON c.relnamespace = ns.oid
   WHERE r.rulename <> '_RETURN'
  UNION ALL
  SELECT 'view', format('view %s: def %s: %s', c.oid::regclass, lpad(l.n::text, 4, '0'), l.line)
    FROM pg_class c JOIN ns ON c.relnamespace = ns.oid,
         LATERAL unnest(string_to_array(pg_get_viewdef(c.oid), E'\n')) WITH ORDINALITY l(line, n)
   WHERE c.relkind IN ('v', 'm')
  UNION ALL
  SELECT 'sequence', format('sequence %s: type=%s start=%s increment=%s min=%s max=%s cache=%s cycle=%s owned_by=%s',
                            s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart, s.seqincrement, s.seqmin,
                            s.seqmax, s.seqcache, s.seqcycle,
                            (SELECT d.refobjid::regclass || '.' || a.attname
                               FROM pg_depend d JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = s.seqrelid
                                AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')))
    FROM pg_sequence s JOIN pg_class c ON c.oid = s.seqrelid JOIN ns ON c.relnamespace = ns.oid
  UNION ALL
  SELECT 'event trigger', format('event trigger %s: event=%s function=%s enabled=%s tags=%s owner=%s comment=%s',
                                 quote_ident(e.evtname), e.evtevent, e.evtfoid::regprocedure, e.evtenabled,
                                 e.evttags, pg_get_userbyid(e.evtowner), obj_description(e.oid, 'pg_event_trigger'))
    FROM pg_event_trigger e
  UNION ALL
  SELECT 'type', format('type %s: type=%s owner=%s acl=%s base=%s not_null=%s default=%s enum=%s comment=%s',
                        t.oid::regtype, t.typtype, pg_get_userbyid(t.typowner), t.typacl,
                        CASE WHEN t.typbasetype <> 0 THEN format_type(t.typbasetype, t.typtypmod) END,
                        t.typnotnull, t.typdefault,
                        (SELECT string_agg(enumlabel, ',' ORDER BY enumsortorder) FROM pg_enum WHERE enumtypid = t.oid),
                        obj_description(t.oid, 'pg_type'))
    FROM pg_type t, ns
   WHERE t.typnamespace = ns.oid AND t.typtype IN ('d', 'e', 'r', 'm', 'b')
      OR (t.typnamespace = (SELECT oid FROM ns) AND t.typtype = 'c'
          AND (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c')
  UNION ALL
  SELECT 'default acl', format('default acl in %s for %s on %s: %s', d.defaclnamespace::regnamespace,
                               pg_get_userbyid(d.defaclrole), d.defaclobjtype, d.defaclacl)
    FROM pg_default_acl d, ns WHERE d.defaclnamespace IN (0, ns.oid)
  UNION ALL
  SELECT 'operator', format('operator %s: %s', o.oid::regoperator, o.oprcode)
    FROM pg_operator o, ns WHERE o.oprnamespace = ns.oid
  UNION ALL
  SELECT 'statistics', format('statistics %s: %s', s.oid, pg_get_statisticsobjdef(s.oid))
    FROM pg_statistic_ext s, ns WHERE s.stxnamespace = ns.oid
  UNION ALL
  -- Rows the install script writes (a 1.1 builtin must reach upgraded databases).
  SELECT 'data', format('builtin step name %s', to_jsonb(s)) FROM workflow.survey_step_names s WHERE s.builtin
  UNION ALL
  SELECT 'data', format('builtin step alias %s', to_jsonb(s)) FROM workflow.survey_step_aliases s WHERE s.builtin
  UNION ALL
  -- The audit registry: the same enable_audit calls were made on both sides
  -- (restore_pending is a restore's transient state, not schema).
  SELECT 'data', format('audit_tables row %s', to_jsonb(a) - 'relid' - 'restore_pending'
                                               || jsonb_build_object('relid', a.relid::regclass))
    FROM workflow.audit_tables a
)
SELECT line FROM facts ORDER BY k, line COLLATE "C";
