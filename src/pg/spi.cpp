// Guarded SPI helpers (see spi.hpp).
#include "pg/spi.hpp"

#include <string>

namespace workflow::pg {

Statement::Statement(const char* sql_text, std::initializer_list<Oid> types)
    : sql(sql_text), nargs(static_cast<int>(types.size())), argtypes{} {
  int i = 0;
  for (Oid t : types) {
    if (i < kMaxStatementArgs) argtypes[i++] = t;
  }
}

SpiScope::SpiScope() : exceptions_at_entry_(std::uncaught_exceptions()) {
  int rc = pg_call([] { return SPI_connect(); });
  if (rc != SPI_OK_CONNECT)
    throw core::error(core::sqlstate::internal_error, "SPI_connect failed");
}

SpiScope::~SpiScope() {
  // While an error unwinds, the transaction is aborting and AtEOXact_SPI
  // cleans up; calling SPI_finish then could ereport inside a destructor.
  if (std::uncaught_exceptions() > exceptions_at_entry_) return;
  try {
    pg_call([] { SPI_finish(); });
  } catch (...) {
    // Nothing to do: the boundary will see the transaction abort anyway.
  }
}

uint64 execute(Statement& stmt, Datum* values, const char* nulls, bool read_only,
               long max_rows) {
  if (stmt.nargs > kMaxStatementArgs)
    throw core::error(core::sqlstate::internal_error, "too many statement arguments");
  if (stmt.plan == nullptr) {
    stmt.plan = pg_call([&] {
      SPIPlanPtr plan = SPI_prepare(stmt.sql, stmt.nargs, stmt.argtypes);
      if (plan == nullptr)
        elog(ERROR, "SPI_prepare failed for \"%s\": %s", stmt.sql,
             SPI_result_code_string(SPI_result));
      SPI_keepplan(plan);
      return plan;
    });
  }
  int rc = pg_call([&] { return SPI_execute_plan(stmt.plan, values, nulls, read_only, max_rows); });
  if (rc < 0)
    throw core::error(core::sqlstate::internal_error,
                      std::string("SPI_execute_plan failed: ") + SPI_result_code_string(rc));
  return SPI_processed;
}

Datum column(uint64 row, int col, bool* isnull) {
  const SPITupleTable* table = SPI_tuptable;
  if (table == nullptr || row >= table->numvals || col < 1 || col > table->tupdesc->natts)
    throw core::error(core::sqlstate::internal_error,
                      "no column " + std::to_string(col) + " of row " + std::to_string(row) +
                          " in the last SPI result");
  // In range, heap_getattr of a user column cannot ereport: no pg_call, so
  // column() may be used inside a pg_call lambda without nesting.
  return SPI_getbinval(table->vals[row], table->tupdesc, col, isnull);
}

}  // namespace workflow::pg
