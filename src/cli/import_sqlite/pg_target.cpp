// import-sqlite: reading the PostgreSQL copy (pg_target.hpp).
#include "pg_target.hpp"

#include <cctype>

namespace workflow::import {
namespace {

std::string qualified(const std::string& schema, const std::string& table) {
  return quote_identifier(schema) + "." + quote_identifier(table);
}

std::string reading_expression(const std::string& column, ValueKind kind) {
  const std::string c = quote_identifier(column);
  switch (kind) {
    case ValueKind::timestamp: return "floor(extract(epoch FROM " + c + ") * 1000)::bigint::text";
    case ValueKind::bytes: return "encode(" + c + ", 'hex')";
    default: return c + "::text";
  }
}

std::string name_array(const std::vector<std::string>& names) {
  std::string out = "{";
  for (const auto& n : names) out += (out.size() > 1 ? "," : "") + quote_identifier(lower_name(n));
  return out + "}";
}

}  // namespace

std::string lower_name(const std::string& s) {
  std::string out = s;
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::map<std::string, std::vector<PgColumn>> pg_tables(client::Connection& conn,
                                                       const std::string& schema) {
  const auto r = conn.query(
      "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull "
      "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
      "WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname, a.attnum",
      {schema});
  std::map<std::string, std::vector<PgColumn>> out;
  for (int i = 0; i < r.rows(); ++i)
    out[lower_name(r.string(i, 0))].push_back({r.string(i, 1), r.string(i, 2), r.boolean(i, 3)});
  return out;
}

TableChecksum pg_checksum(client::Connection& conn, const std::string& schema,
                          const std::string& table, const std::vector<PgColumn>& columns,
                          const std::vector<ValueKind>& kinds) {
  std::string sql = "DECLARE wf_import_rows NO SCROLL CURSOR FOR SELECT ";
  for (std::size_t i = 0; i < columns.size(); ++i)
    sql += (i ? ", " : "") + reading_expression(columns[i].name, kinds[i]);
  sql += " FROM " + qualified(schema, table);
  conn.exec(sql);
  TableChecksum sum;
  std::vector<std::optional<std::string>> row(columns.size());
  for (;;) {
    const auto r = conn.exec("FETCH 5000 FROM wf_import_rows");
    for (int i = 0; i < r.rows(); ++i) {
      for (std::size_t c = 0; c < columns.size(); ++c) {
        const int col = static_cast<int>(c);
        row[c] = canonical(kinds[c], r.is_null(i, col) ? std::nullopt
                                                       : std::optional(r.text(i, col)));
      }
      sum.add_row(row);
    }
    if (r.rows() < 5000) break;
  }
  conn.exec("CLOSE wf_import_rows");
  return sum;
}

bool pg_has_foreign_key(client::Connection& conn, const std::string& schema, const ForeignKey& fk) {
  const auto r = conn.query(
      "SELECT count(*) FROM pg_constraint k "
      "JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
      "JOIN pg_class p ON p.oid = k.confrelid "
      "WHERE k.contype = 'f' AND k.convalidated AND n.nspname = $1 "
      "AND c.relname = $2 AND p.relname = $3 "
      "AND ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY u(num, ord) "
      "          JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num "
      "          ORDER BY u.ord) = $4::name[] "
      "AND ARRAY(SELECT a.attname FROM unnest(k.confkey) WITH ORDINALITY u(num, ord) "
      "          JOIN pg_attribute a ON a.attrelid = k.confrelid AND a.attnum = u.num "
      "          ORDER BY u.ord) = $5::name[]",
      {schema, lower_name(fk.table), lower_name(fk.parent), name_array(fk.columns),
       name_array(fk.parent_columns)});
  return r.int64(0, 0) > 0;
}

long pg_orphans(client::Connection& conn, const std::string& schema, const ForeignKey& fk) {
  std::string not_null, match;
  for (std::size_t i = 0; i < fk.columns.size(); ++i) {
    const std::string c = "c." + quote_identifier(lower_name(fk.columns[i]));
    not_null += (i ? " AND " : "") + c + " IS NOT NULL";
    match += (i ? " AND " : "") + std::string("p.") +
             quote_identifier(lower_name(fk.parent_columns.at(i))) + " = " + c;
  }
  const auto r = conn.exec("SELECT count(*) FROM " + qualified(schema, lower_name(fk.table)) +
                           " c WHERE " + not_null + " AND NOT EXISTS (SELECT 1 FROM " +
                           qualified(schema, lower_name(fk.parent)) + " p WHERE " + match + ")");
  return static_cast<long>(r.int64(0, 0));
}

void pg_add_foreign_key(client::Connection& conn, const std::string& schema, const ForeignKey& fk) {
  std::string cols, parent_cols;
  for (std::size_t i = 0; i < fk.columns.size(); ++i) {
    cols += (i ? ", " : "") + quote_identifier(lower_name(fk.columns[i]));
    parent_cols += (i ? ", " : "") + quote_identifier(lower_name(fk.parent_columns.at(i)));
  }
  auto action = [](const std::string& a) {
    for (const char* known : {"NO ACTION", "RESTRICT", "CASCADE", "SET NULL", "SET DEFAULT"})
      if (a == known) return a;
    return std::string("NO ACTION");
  };
  conn.exec("ALTER TABLE " + qualified(schema, lower_name(fk.table)) + " ADD FOREIGN KEY (" + cols +
            ") REFERENCES " + qualified(schema, lower_name(fk.parent)) + " (" + parent_cols +
            ") ON UPDATE " + action(fk.on_update) + " ON DELETE " + action(fk.on_delete));
}

void pg_set_not_null(client::Connection& conn, const std::string& schema, const std::string& table,
                     const std::string& column) {
  conn.exec("ALTER TABLE " + qualified(schema, table) + " ALTER COLUMN " +
            quote_identifier(column) + " SET NOT NULL");
}

}  // namespace workflow::import
