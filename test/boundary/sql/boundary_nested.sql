-- A pg_call inside a pg_call: values pass through, an inner error (PostgreSQL
-- or C++) unwinds through the outer call and is reported unchanged.
SELECT pg_postmaster_start_time() AS start \gset
SELECT boundary_probe.nested('ok');
SELECT boundary_probe.nested('inner_pg');
SELECT boundary_probe.catch($$SELECT boundary_probe.nested('inner_pg')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.nested('inner_throw')$$);
SELECT boundary_probe.nested('outer_pg');
SELECT boundary_probe.nested('ok');
SELECT 1 / 0;
SELECT pg_postmaster_start_time() = :'start' AS same_postmaster;
