-- column() inside a pg_call lambda (the engine's pattern): in range it reads
-- the value, out of range it is an internal_error, never a wild read.
SELECT pg_postmaster_start_time() AS start \gset
SELECT boundary_probe.spi_column(0, 1), boundary_probe.spi_column(0, 2);
SELECT boundary_probe.spi_column(0, 3);
SELECT boundary_probe.spi_column(0, 0);
SELECT boundary_probe.catch($$SELECT boundary_probe.spi_column(1, 1)$$);
SELECT boundary_probe.catch($$SELECT boundary_probe.spi_column(1000000, 1)$$);
SELECT boundary_probe.spi_column(0, 2);
SELECT pg_postmaster_start_time() = :'start' AS same_postmaster;
