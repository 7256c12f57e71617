// import-sqlite: the SQLite side, read with libsqlite3 (read-only): tables,
// columns, foreign keys, PRAGMA foreign_key_check, and per-table checksums
// of the values in their canonical form (normalise.hpp).
#pragma once

#include <string>
#include <vector>

#include "normalise.hpp"

struct sqlite3;

namespace workflow::import {

struct SqliteColumn {
  std::string name;
  std::string declared_type;  // as written in CREATE TABLE ("" when none)
  bool not_null = false;
};

struct SqliteTable {
  std::string name;
  std::vector<SqliteColumn> columns;
};

struct ForeignKey {
  int id = 0;  // SQLite's foreign key id within the table
  std::string table;
  std::vector<std::string> columns;
  std::string parent;
  std::vector<std::string> parent_columns;
  std::string on_update, on_delete;  // NO ACTION, CASCADE, SET NULL, ...
};

class SqliteSource {
 public:
  // Opens read-only; std::runtime_error when the file is missing or not SQLite.
  explicit SqliteSource(const std::string& path);
  ~SqliteSource();
  SqliteSource(const SqliteSource&) = delete;
  SqliteSource& operator=(const SqliteSource&) = delete;

  std::vector<SqliteTable> tables();  // user tables, by name
  std::vector<ForeignKey> foreign_keys(const SqliteTable& table);
  // Rows that PRAGMA foreign_key_check reports for this key (orphans in the source).
  long foreign_key_violations(const ForeignKey& fk);
  // kinds[i] is how columns[i] is compared (from the PostgreSQL type).
  TableChecksum checksum(const SqliteTable& table, const std::vector<ValueKind>& kinds);

 private:
  std::vector<std::string> primary_key(const std::string& table);
  sqlite3* db_ = nullptr;
};

// "name" with embedded quotes doubled: an identifier for SQLite or PostgreSQL.
std::string quote_identifier(const std::string& name);

}  // namespace workflow::import
