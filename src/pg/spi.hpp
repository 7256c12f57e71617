// Small guarded helpers over SPI: a connection scope and kept prepared plans.
//
//   static workflow::pg::Statement update_task{
//       "UPDATE workflow.tasks SET ... WHERE id = $1", {TEXTOID}};
//   workflow::pg::SpiScope spi;                       // SPI_connect / SPI_finish
//   uint64 n = workflow::pg::execute(update_task, args, nulls, /*read_only=*/false);
//   bool isnull; Datum d = workflow::pg::column(0, 1, &isnull);
//
// Every call that may ereport goes through pg_call, so a PostgreSQL error
// unwinds as workflow::pg::pg_error through live C++ objects. Results live
// in SPI's memory context until SpiScope ends; copy out with
// SPI_datumTransfer / SPI_palloc what must outlive it.
#pragma once

#include "pg/boundary.hpp"

extern "C" {
#include "executor/spi.h"
}

#include <exception>
#include <initializer_list>

namespace workflow::pg {

inline constexpr int kMaxStatementArgs = 16;

// An SQL statement prepared on first use and kept for the backend's life.
// Declare instances `static`; they hold no C++ resources.
struct Statement {
  Statement(const char* sql_text, std::initializer_list<Oid> types);
  const char* sql;
  int nargs;
  Oid argtypes[kMaxStatementArgs];
  SPIPlanPtr plan = nullptr;
};

class SpiScope {
 public:
  SpiScope();
  ~SpiScope();
  SpiScope(const SpiScope&) = delete;
  SpiScope& operator=(const SpiScope&) = delete;

 private:
  int exceptions_at_entry_;
};

// Runs the statement; returns SPI_processed. Throws pg_error on failure.
// `nulls` follows SPI's convention (' ' = not null, 'n' = null) or is nullptr.
uint64 execute(Statement& stmt, Datum* values, const char* nulls, bool read_only,
               long max_rows = 0);

// Value of column `col` (1-based) of result row `row` (0-based) of the last
// execute(). Throws core::error (XX000) when there is no such row or column.
// Never ereports, so it is safe inside a pg_call lambda.
Datum column(uint64 row, int col, bool* isnull);

}  // namespace workflow::pg
