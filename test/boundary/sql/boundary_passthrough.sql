-- A PostgreSQL error raised inside pg_call reaches the client unchanged:
-- SQLSTATE, message, DETAIL and HINT, directly and through the SPI helpers.
SELECT pg_postmaster_start_time() AS start \gset
SELECT boundary_probe.pg_error('22023', 'probe message', 'probe detail', 'probe hint');
SELECT boundary_probe.pg_error('P0001', 'only a message', NULL, NULL);
SELECT boundary_probe.catch($$SELECT boundary_probe.pg_error('23505', 'duplicate probe', 'key (x)=(1)', 'try another')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.pg_error('40001', 'serialization probe', NULL, 'retry')$$);
-- through SpiScope + execute(): the RAISE inside the statement
SELECT boundary_probe.spi_error('22P02', 'raised in SPI', 'spi detail', 'spi hint');
SELECT boundary_probe.catch($$SELECT boundary_probe.spi_error('55000', 'raised in SPI', 'spi detail', NULL)$$);
-- C++ exceptions thrown by the function body (outside pg_call) map to SQLSTATEs
SELECT boundary_probe.throw_outside('core');
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_outside('core')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_outside('std')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_outside('bad_alloc')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_outside('int')$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.throw_outside('struct')$$);
SELECT pg_postmaster_start_time() = :'start' AS same_postmaster;
