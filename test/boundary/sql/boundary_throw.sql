-- A C++ exception thrown inside pg_call's lambda: mapped to a SQLSTATE and
-- reported, and the backend lives on (the stacks were restored).
SELECT pg_postmaster_start_time() AS start \gset
SELECT boundary_probe.throw_inside('core');
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_inside('core')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_inside('std')$$);
-- std::bad_alloc is out_of_memory, anything else internal_error
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_inside('bad_alloc')$$);
SELECT boundary_probe.throw_inside('bad_alloc');
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_inside('int')$$);
SELECT boundary_probe.throw_inside('struct');
-- a context callback pushed by the lambda is gone when the error is reported
SELECT boundary_probe.throw_inside('context');
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_inside('context')$$);
-- the same for a callback the function body pushed before throwing
SELECT boundary_probe.throw_outside('context');
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_outside('context')$$);
-- the session goes on, and PostgreSQL's own errors are still reported
SELECT 1 / 0;
SELECT 'still alive' AS session;
SELECT pg_postmaster_start_time() = :'start' AS same_postmaster;
