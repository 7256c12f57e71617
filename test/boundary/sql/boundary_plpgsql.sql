-- Errors from every probe caught by PL/pgSQL EXCEPTION blocks, many times in
-- one session; then later errors are reported correctly and the postmaster
-- never restarted.
SELECT pg_postmaster_start_time() AS start \gset
DO $$
DECLARE
  caught int := 0;
BEGIN
  FOR i IN 1..100 LOOP
    BEGIN PERFORM boundary_probe.throw_inside('std'); EXCEPTION WHEN internal_error THEN caught := caught + 1; END;
    BEGIN PERFORM boundary_probe.throw_inside('bad_alloc'); EXCEPTION WHEN out_of_memory THEN caught := caught + 1; END;
    BEGIN PERFORM boundary_probe.throw_inside('context'); EXCEPTION WHEN internal_error THEN caught := caught + 1; END;
    BEGIN PERFORM boundary_probe.nested('inner_pg'); EXCEPTION WHEN division_by_zero THEN caught := caught + 1; END;
    BEGIN PERFORM boundary_probe.nested('inner_throw'); EXCEPTION WHEN object_not_in_prerequisite_state THEN caught := caught + 1; END;
    BEGIN PERFORM boundary_probe.pg_error('22023', 'm', 'd', 'h'); EXCEPTION WHEN invalid_parameter_value THEN caught := caught + 1; END;
    BEGIN PERFORM boundary_probe.spi_error('P0001', 'm', NULL, NULL); EXCEPTION WHEN raise_exception THEN caught := caught + 1; END;
  END LOOP;
  RAISE NOTICE 'caught % errors', caught;
END $$;
-- a later error from PostgreSQL, from a probe, from PL/pgSQL: each reported as itself
SELECT 1 / 0;
SELECT boundary_probe.pg_error('22023', 'a later error', 'its detail', 'its hint');
DO $$ BEGIN RAISE EXCEPTION 'plain plpgsql error' USING ERRCODE = 'P0003', DETAIL = 'after the caught ones'; END $$;
SELECT boundary_probe.nested('ok');
SELECT pg_postmaster_start_time() = :'start' AS same_postmaster;
