// import-sqlite: runs pgloader (Debian package `pgloader`) to copy a SQLite
// file into a PostgreSQL schema, with cast rules that keep every value:
// REAL/FLOAT/DOUBLE -> double precision (pgloader's default, real, is float4)
// written with float-to-string (3.6.9 writes doubles >= 1e7 as "1.0d7"), and
// INTEGER written with ~D (its integer-to-string refuses values beyond 2^62).
#pragma once

#include <string>

#include "workflow/connection.hpp"

namespace workflow::import {

struct PgloaderRun {
  int exit_code = 0;
  // ERROR lines of the log (rows rejected, constraints or indexes not made),
  // except pgloader's "FOREIGN KEY() REFERENCES parent()" for a SQLite key
  // without column names: those are counted in empty_foreign_keys (the
  // import adds the constraint itself, verify checks it).
  int error_lines = 0;
  int empty_foreign_keys = 0;
  std::string log_path;
};

// Loads `sqlite_path` into `schema` (which must exist) of the database `conn`
// is connected to, as the same user; the password, if any, goes through
// PGPASSWORD. pgloader's output goes to log_path.
PgloaderRun run_pgloader(const std::string& sqlite_path, client::Connection& conn,
                         const std::string& schema, const std::string& log_path);

}  // namespace workflow::import
