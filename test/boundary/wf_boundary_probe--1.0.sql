-- Test-only probes of the workflow extension's C++/PostgreSQL boundary.
\echo Use "CREATE EXTENSION wf_boundary_probe" to load this file. \quit

CREATE FUNCTION boundary_probe.pg_error(sqlstate text, message text, detail text, hint text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'boundary_probe_pg_error';
COMMENT ON FUNCTION boundary_probe.pg_error(text, text, text, text) IS
  'Raises a PostgreSQL error inside pg_call (test probe)';

CREATE FUNCTION boundary_probe.throw_inside(kind text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'boundary_probe_throw_inside';
COMMENT ON FUNCTION boundary_probe.throw_inside(text) IS
  'Throws a C++ exception (core, std, bad_alloc, int, struct, context) inside pg_call''s lambda (test probe)';

CREATE FUNCTION boundary_probe.throw_outside(kind text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'boundary_probe_throw_outside';
COMMENT ON FUNCTION boundary_probe.throw_outside(text) IS
  'Throws a C++ exception (same kinds) from the function body, outside pg_call (test probe)';

CREATE FUNCTION boundary_probe.nested(mode text)
RETURNS int LANGUAGE c AS 'MODULE_PATHNAME', 'boundary_probe_nested';
COMMENT ON FUNCTION boundary_probe.nested(text) IS
  'A pg_call inside a pg_call: ok (42), inner_pg, inner_throw, outer_pg (test probe)';

CREATE FUNCTION boundary_probe.spi_column(row_index int, col int)
RETURNS text STRICT LANGUAGE c AS 'MODULE_PATHNAME', 'boundary_probe_spi_column';
COMMENT ON FUNCTION boundary_probe.spi_column(int, int) IS
  'Reads column col of row row_index of a one-row, two-column SPI result inside pg_call (test probe)';

CREATE FUNCTION boundary_probe.spi_error(sqlstate text, message text, detail text, hint text)
RETURNS void LANGUAGE c AS 'MODULE_PATHNAME', 'boundary_probe_spi_error';
COMMENT ON FUNCTION boundary_probe.spi_error(text, text, text, text) IS
  'Runs boundary_probe.raise through the SPI helpers (test probe)';

CREATE FUNCTION boundary_probe.raise(sqlstate text, message text, detail text, hint text)
RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  RAISE EXCEPTION USING ERRCODE = sqlstate, MESSAGE = message,
    DETAIL = coalesce(detail, ''), HINT = coalesce(hint, '');
END $$;
COMMENT ON FUNCTION boundary_probe.raise(text, text, text, text) IS
  'RAISE with the given fields (test probe)';

-- Runs sql and describes the error it raised: sqlstate | message | detail | hint.
CREATE FUNCTION boundary_probe.catch(sql text)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  st text; msg text; det text; hin text;
BEGIN
  EXECUTE sql;
  RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT,
                          det = PG_EXCEPTION_DETAIL, hin = PG_EXCEPTION_HINT;
  RETURN st || ' | ' || msg || ' | ' || coalesce(nullif(det, ''), '-') || ' | ' || coalesce(nullif(hin, ''), '-');
END $$;
COMMENT ON FUNCTION boundary_probe.catch(text) IS
  'Runs sql in an EXCEPTION block and returns sqlstate | message | detail | hint (test probe)';
