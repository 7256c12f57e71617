// import-sqlite: verification of a copy (verify.hpp).
#include "verify.hpp"

#include <algorithm>

#include "pg_target.hpp"
#include "workflow/transaction.hpp"

namespace workflow::import {
namespace {

std::string joined(const std::vector<std::string>& names) {
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

const PgColumn* find_column(const std::vector<PgColumn>& columns, const std::string& name) {
  const std::string key = lower_name(name);
  auto it = std::find_if(columns.begin(), columns.end(),
                         [&](const PgColumn& c) { return lower_name(c.name) == key; });
  return it == columns.end() ? nullptr : &*it;
}

}  // namespace

void restore_not_null(SqliteSource& source, client::Connection& conn, const std::string& schema,
                      Report& report) {
  const auto pg = pg_tables(conn, schema);
  for (const auto& table : source.tables()) {
    auto t = pg.find(lower_name(table.name));
    if (t == pg.end()) continue;
    for (const auto& c : table.columns) {
      const PgColumn* col = find_column(t->second, c.name);
      if (!c.not_null || !col || col->not_null) continue;
      pg_set_not_null(conn, schema, t->first, col->name);
      report.restored_not_null.push_back(table.name + "." + c.name);
    }
  }
}

void restore_foreign_keys(SqliteSource& source, client::Connection& conn,
                          const std::string& schema, Report& report) {
  const auto pg = pg_tables(conn, schema);
  for (const auto& table : source.tables())
    for (const auto& fk : source.foreign_keys(table)) {
      if (!pg.count(lower_name(fk.table)) || !pg.count(lower_name(fk.parent))) continue;
      if (pg_has_foreign_key(conn, schema, fk)) continue;
      pg_add_foreign_key(conn, schema, fk);
      report.restored_foreign_keys.push_back(fk.table + "(" + joined(fk.columns) + ")");
    }
}

void verify(SqliteSource& source, client::Connection& conn, const std::string& schema,
            Report& report) {
  client::Transaction tx(conn, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
  const auto pg = pg_tables(conn, schema);
  if (pg.empty()) report.problems.push_back("schema " + schema + " has no tables");
  for (const auto& table : source.tables()) {
    TableReport tr;
    tr.name = table.name;
    auto t = pg.find(lower_name(table.name));
    std::vector<ValueKind> kinds;
    std::vector<PgColumn> pg_columns;
    for (const auto& c : table.columns) {
      const PgColumn* col = t == pg.end() ? nullptr : find_column(t->second, c.name);
      // A column missing in PostgreSQL is read as text on the SQLite side and
      // as NULL on PostgreSQL's: any non-NULL value then makes a mismatch.
      const ValueKind kind = col ? kind_for_pg_type(col->type) : ValueKind::text;
      kinds.push_back(kind);
      const std::string qualified = table.name + "." + c.name;
      const bool restored = std::find(report.restored_not_null.begin(),
                                      report.restored_not_null.end(),
                                      qualified) != report.restored_not_null.end();
      tr.columns.push_back({c.name, c.declared_type, col ? col->type : "", kind_name(kind), restored});
      if (col) pg_columns.push_back(*col);
      else if (t != pg.end()) report.problems.push_back("column " + qualified + " is missing");
    }
    const TableChecksum src = source.checksum(table, kinds);
    tr.sqlite_rows = src.rows();
    tr.sqlite_checksum = src.hex();
    if (t != pg.end() && pg_columns.size() == table.columns.size()) {
      const TableChecksum dst = pg_checksum(conn, schema, t->first, pg_columns, kinds);
      tr.pg_rows = dst.rows();
      tr.pg_checksum = dst.hex();
    } else if (t == pg.end()) {
      report.problems.push_back("table " + table.name + " is missing");
    }
    for (const auto& fk : source.foreign_keys(table)) {
      ForeignKeyReport fr{fk.table, joined(fk.columns), fk.parent, joined(fk.parent_columns)};
      fr.added_by_import = std::find(report.restored_foreign_keys.begin(),
                                     report.restored_foreign_keys.end(),
                                     fk.table + "(" + fr.columns + ")") !=
                           report.restored_foreign_keys.end();
      fr.sqlite_violations = source.foreign_key_violations(fk);
      if (t != pg.end() && pg.count(lower_name(fk.parent))) {
        fr.constraint_in_pg = pg_has_foreign_key(conn, schema, fk);
        fr.pg_orphans = pg_orphans(conn, schema, fk);
      }
      report.foreign_keys.push_back(fr);
    }
    report.tables.push_back(tr);
  }
  tx.commit();
}

}  // namespace workflow::import
