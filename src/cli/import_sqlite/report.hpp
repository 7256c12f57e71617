// import-sqlite: the integrity report (per-table row counts and checksums,
// type conversions, foreign keys, problems) and its Markdown and JSON forms.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace workflow::import {

struct ColumnReport {
  std::string name;
  std::string sqlite_type;
  std::string pg_type;  // "" when the column is missing
  std::string compared_as;
  bool not_null_restored = false;  // NOT NULL in SQLite, set again after pgloader
};

struct TableReport {
  std::string name;
  long sqlite_rows = 0;
  long pg_rows = -1;  // -1: the table is missing
  std::string sqlite_checksum;
  std::string pg_checksum;
  std::vector<ColumnReport> columns;
  bool ok() const { return pg_rows == sqlite_rows && sqlite_checksum == pg_checksum; }
};

struct ForeignKeyReport {
  std::string table, columns, parent, parent_columns;
  long sqlite_violations = 0;  // PRAGMA foreign_key_check rows
  bool constraint_in_pg = false;
  bool added_by_import = false;  // pgloader could not make it (restore_foreign_keys)
  long pg_orphans = 0;
  bool ok() const { return sqlite_violations == 0 && constraint_in_pg && pg_orphans == 0; }
};

struct Report {
  std::string source;
  std::string schema;          // the schema that was verified
  std::string target;          // the schema it is swapped into ("" for --verify-only)
  std::string previous;        // the old target, kept under this name ("" when none)
  bool swapped = false;
  std::vector<TableReport> tables;
  std::vector<ForeignKeyReport> foreign_keys;
  std::vector<std::string> problems;  // each makes ok() false
  std::vector<std::string> restored_not_null;  // "table.column"
  std::vector<std::string> restored_foreign_keys;  // "table(columns)"
  bool ok() const;
  std::string way_back() const;  // SQL that undoes the swap
};

nlohmann::json to_json(const Report& r);
std::string to_markdown(const Report& r);

}  // namespace workflow::import
