// import-sqlite: reading the SQLite file (sqlite_source.hpp).
#include "sqlite_source.hpp"

#include <sqlite3.h>

#include <cstdio>
#include <functional>
#include <map>
#include <stdexcept>

namespace workflow::import {
namespace {

// Runs `sql`, calling row(stmt) for each result row; throws on error.
void each_row(sqlite3* db, const std::string& sql, const std::function<void(sqlite3_stmt*)>& row) {
  sqlite3_stmt* stmt = nullptr;
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr) != SQLITE_OK)
    throw std::runtime_error("SQLite: " + std::string(sqlite3_errmsg(db)) + " in: " + sql);
  int rc;
  while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) row(stmt);
  const std::string err = rc == SQLITE_DONE ? "" : sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  if (!err.empty()) throw std::runtime_error("SQLite: " + err + " in: " + sql);
}

std::string text(sqlite3_stmt* s, int col) {
  const auto* t = sqlite3_column_text(s, col);
  return t ? reinterpret_cast<const char*>(t) : "";
}

// The SQL expression that reads a column in the form canonical() expects.
std::string reading_expression(const std::string& column, ValueKind kind) {
  const std::string c = quote_identifier(column);
  switch (kind) {
    case ValueKind::timestamp:
      return "CAST(strftime('%s'," + c + ") AS INTEGER) * 1000 + CAST(substr(strftime('%f'," + c +
             "), 4) AS INTEGER)";
    case ValueKind::bytes:
      return "CASE WHEN " + c + " IS NULL THEN NULL ELSE hex(" + c + ") END";
    default:
      return c;
  }
}

}  // namespace

std::string quote_identifier(const std::string& name) {
  std::string out = "\"";
  for (char ch : name) {
    if (ch == '"') out += '"';
    out += ch;
  }
  return out + "\"";
}

SqliteSource::SqliteSource(const std::string& path) {
  if (sqlite3_open_v2(path.c_str(), &db_, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    const std::string err = db_ ? sqlite3_errmsg(db_) : "out of memory";
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error("cannot open SQLite file " + path + ": " + err);
  }
  // A file that is not SQLite opens fine and fails on the first read.
  try {
    each_row(db_, "SELECT count(*) FROM sqlite_master", [](sqlite3_stmt*) {});
  } catch (const std::exception& e) {
    sqlite3_close(db_);
    db_ = nullptr;
    throw std::runtime_error(path + " is not a readable SQLite database (" + e.what() + ")");
  }
}

SqliteSource::~SqliteSource() { sqlite3_close(db_); }

std::vector<SqliteTable> SqliteSource::tables() {
  std::vector<SqliteTable> out;
  each_row(db_,
           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
           "ESCAPE '\\' ORDER BY name",
           [&](sqlite3_stmt* s) { out.push_back({text(s, 0), {}}); });
  for (auto& t : out)
    each_row(db_, "PRAGMA table_info(" + quote_identifier(t.name) + ")", [&](sqlite3_stmt* s) {
      t.columns.push_back({text(s, 1), text(s, 2), sqlite3_column_int(s, 3) != 0});
    });
  return out;
}

std::vector<std::string> SqliteSource::primary_key(const std::string& table) {
  std::map<int, std::string> by_position;
  each_row(db_, "PRAGMA table_info(" + quote_identifier(table) + ")", [&](sqlite3_stmt* s) {
    if (sqlite3_column_int(s, 5) > 0) by_position[sqlite3_column_int(s, 5)] = text(s, 1);
  });
  std::vector<std::string> out;
  for (auto& [pos, name] : by_position) out.push_back(name);
  return out;
}

std::vector<ForeignKey> SqliteSource::foreign_keys(const SqliteTable& table) {
  std::map<int, ForeignKey> by_id;
  std::map<int, bool> to_primary_key;  // REFERENCES parent without column names
  each_row(db_, "PRAGMA foreign_key_list(" + quote_identifier(table.name) + ")",
           [&](sqlite3_stmt* s) {
             const int id = sqlite3_column_int(s, 0);
             auto& fk = by_id[id];
             fk.id = id;
             fk.table = table.name;
             fk.parent = text(s, 2);
             fk.on_update = text(s, 5);
             fk.on_delete = text(s, 6);
             fk.columns.push_back(text(s, 3));
             if (sqlite3_column_type(s, 4) == SQLITE_NULL) to_primary_key[id] = true;
             else fk.parent_columns.push_back(text(s, 4));
           });
  std::vector<ForeignKey> out;
  for (auto& [id, fk] : by_id) {
    if (to_primary_key[id]) fk.parent_columns = primary_key(fk.parent);
    out.push_back(fk);
  }
  return out;
}

long SqliteSource::foreign_key_violations(const ForeignKey& fk) {
  long n = 0;
  each_row(db_, "PRAGMA foreign_key_check(" + quote_identifier(fk.table) + ")",
           [&](sqlite3_stmt* s) { n += sqlite3_column_int(s, 3) == fk.id; });
  return n;
}

TableChecksum SqliteSource::checksum(const SqliteTable& table, const std::vector<ValueKind>& kinds) {
  std::string sql = "SELECT ";
  for (std::size_t i = 0; i < table.columns.size(); ++i)
    sql += (i ? ", " : "") + reading_expression(table.columns[i].name, kinds[i]);
  sql += " FROM " + quote_identifier(table.name);
  TableChecksum sum;
  std::vector<std::optional<std::string>> row(table.columns.size());
  each_row(db_, sql, [&](sqlite3_stmt* s) {
    for (std::size_t i = 0; i < row.size(); ++i) {
      const int col = static_cast<int>(i);
      std::optional<std::string> raw;
      if (sqlite3_column_type(s, col) == SQLITE_NULL) {
        raw = std::nullopt;
      } else if (kinds[i] == ValueKind::floating) {
        // A double read as text would be cut to 15 digits: take it as a double.
        char buf[64];
        std::snprintf(buf, sizeof buf, "%.17g", sqlite3_column_double(s, col));
        raw = buf;
      } else {
        const auto* b = static_cast<const char*>(sqlite3_column_blob(s, col));
        raw = std::string(b ? b : "", static_cast<std::size_t>(sqlite3_column_bytes(s, col)));
      }
      row[i] = canonical(kinds[i], raw ? std::optional<std::string_view>(*raw) : std::nullopt);
    }
    sum.add_row(row);
  });
  return sum;
}

}  // namespace workflow::import
