// import-sqlite: the PostgreSQL side of the verification: the tables and
// column types pgloader made in a schema, checksums of their rows in the
// canonical form (normalise.hpp), foreign-key constraints and orphans.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "normalise.hpp"
#include "sqlite_source.hpp"
#include "workflow/connection.hpp"

namespace workflow::import {

struct PgColumn {
  std::string name;
  std::string type;  // format_type()
  bool not_null = false;
};

// Tables of `schema` by lower-cased name (pgloader downcases identifiers).
std::map<std::string, std::vector<PgColumn>> pg_tables(client::Connection& conn,
                                                       const std::string& schema);

// Checksum of schema.table over `columns` (in this order), read in batches
// through a cursor (call inside a transaction).
TableChecksum pg_checksum(client::Connection& conn, const std::string& schema,
                          const std::string& table, const std::vector<PgColumn>& columns,
                          const std::vector<ValueKind>& kinds);

// A validated FOREIGN KEY constraint child(columns) -> parent(parent_columns).
bool pg_has_foreign_key(client::Connection& conn, const std::string& schema, const ForeignKey& fk);

// ALTER TABLE ... ADD FOREIGN KEY, with SQLite's ON UPDATE / ON DELETE actions.
void pg_add_foreign_key(client::Connection& conn, const std::string& schema, const ForeignKey& fk);

// Child rows whose key (all columns non-NULL) has no parent row.
long pg_orphans(client::Connection& conn, const std::string& schema, const ForeignKey& fk);

// ALTER TABLE ... SET NOT NULL for a column NOT NULL in SQLite that pgloader
// left nullable.
void pg_set_not_null(client::Connection& conn, const std::string& schema,
                     const std::string& table, const std::string& column);

std::string lower_name(const std::string& s);

}  // namespace workflow::import
