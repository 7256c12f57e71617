// import-sqlite: compares a PostgreSQL schema with the SQLite file it was
// copied from and fills the report (row counts, checksums, type conversions,
// foreign keys). Nothing here writes, except restore_not_null().
#pragma once

#include <string>

#include "report.hpp"
#include "sqlite_source.hpp"
#include "workflow/connection.hpp"

namespace workflow::import {

// pgloader leaves SQLite's NOT NULL columns nullable (primary keys aside):
// sets NOT NULL again on each; notes each one in the report. A NULL in such
// a column fails the ALTER (the import is then refused).
void restore_not_null(SqliteSource& source, client::Connection& conn, const std::string& schema,
                      Report& report);

// pgloader 3.6.9 fails on `REFERENCES parent` without columns (it writes
// "FOREIGN KEY() REFERENCES parent()"): adds each foreign key of the SQLite
// file that has no constraint in `schema`; notes each one in the report. An
// orphan row fails the ALTER (the import is then refused).
void restore_foreign_keys(SqliteSource& source, client::Connection& conn,
                          const std::string& schema, Report& report);

// Adds the tables' and foreign keys' results to `report` (reads in one
// REPEATABLE READ snapshot).
void verify(SqliteSource& source, client::Connection& conn, const std::string& schema,
            Report& report);

}  // namespace workflow::import
