// import-sqlite: report forms (report.hpp).
#include "report.hpp"

#include <fmt/core.h>

namespace workflow::import {

bool Report::ok() const {
  if (!problems.empty()) return false;
  for (const auto& t : tables)
    if (!t.ok()) return false;
  for (const auto& f : foreign_keys)
    if (!f.ok()) return false;
  return true;
}

std::string Report::way_back() const {
  if (!swapped) return "";
  std::string sql = "BEGIN; ALTER SCHEMA \"" + target + "\" RENAME TO \"" + schema + "\";";
  if (!previous.empty()) sql += " ALTER SCHEMA \"" + previous + "\" RENAME TO \"" + target + "\";";
  return sql + " COMMIT;";
}

nlohmann::json to_json(const Report& r) {
  nlohmann::json j{{"source", r.source}, {"verified_schema", r.schema}, {"ok", r.ok()},
                   {"swapped", r.swapped}, {"problems", r.problems}};
  if (!r.target.empty()) j["target_schema"] = r.target;
  if (!r.previous.empty()) j["previous_schema"] = r.previous;
  if (r.swapped) j["way_back"] = r.way_back();
  j["tables"] = nlohmann::json::array();
  for (const auto& t : r.tables) {
    nlohmann::json cols = nlohmann::json::array();
    for (const auto& c : t.columns)
      cols.push_back({{"name", c.name}, {"sqlite_type", c.sqlite_type}, {"pg_type", c.pg_type},
                      {"compared_as", c.compared_as}, {"not_null_restored", c.not_null_restored}});
    j["tables"].push_back({{"name", t.name}, {"sqlite_rows", t.sqlite_rows},
                           {"pg_rows", t.pg_rows}, {"sqlite_checksum", t.sqlite_checksum},
                           {"pg_checksum", t.pg_checksum}, {"ok", t.ok()}, {"columns", cols}});
  }
  j["foreign_keys"] = nlohmann::json::array();
  for (const auto& f : r.foreign_keys)
    j["foreign_keys"].push_back(
        {{"table", f.table}, {"columns", f.columns}, {"references", f.parent},
         {"referenced_columns", f.parent_columns}, {"sqlite_violations", f.sqlite_violations},
         {"constraint_in_pg", f.constraint_in_pg}, {"added_by_import", f.added_by_import}, {"pg_orphans", f.pg_orphans}, {"ok", f.ok()}});
  return j;
}

std::string to_markdown(const Report& r) {
  std::string md = fmt::format("# SQLite import report: {}\n\n", r.ok() ? "OK" : "MISMATCH");
  md += fmt::format("- source: `{}`\n- verified schema: `{}`\n", r.source, r.schema);
  if (r.swapped) {
    md += fmt::format("- swapped into `{}`", r.target);
    md += r.previous.empty() ? "\n" : fmt::format(" (the old one is kept as `{}`)\n", r.previous);
    md += fmt::format("- way back: `{}`\n", r.way_back());
  } else if (!r.target.empty()) {
    md += fmt::format("- not swapped: `{}` is unchanged\n", r.target);
  }
  for (const auto& p : r.problems) md += fmt::format("- problem: {}\n", p);
  md += "\n## Tables\n\n| table | SQLite rows | PostgreSQL rows | SQLite checksum | "
        "PostgreSQL checksum | ok |\n|---|---:|---:|---|---|---|\n";
  for (const auto& t : r.tables)
    md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", t.name, t.sqlite_rows,
                      t.pg_rows < 0 ? std::string("missing") : std::to_string(t.pg_rows),
                      t.sqlite_checksum, t.pg_checksum, t.ok() ? "yes" : "**NO**");
  md += "\n## Type conversions\n\n| table | column | SQLite type | PostgreSQL type | compared as |"
        "\n|---|---|---|---|---|\n";
  for (const auto& t : r.tables)
    for (const auto& c : t.columns)
      md += fmt::format("| {} | {} | {} | {}{} | {} |\n", t.name, c.name,
                        c.sqlite_type.empty() ? "(none)" : c.sqlite_type,
                        c.pg_type.empty() ? "**missing**" : c.pg_type,
                        c.not_null_restored ? " (NOT NULL restored)" : "", c.compared_as);
  md += "\n## Foreign keys\n\n| table | columns | references | SQLite violations | "
        "constraint in PostgreSQL | orphans in PostgreSQL | ok |\n|---|---|---|---:|---|---:|---|\n";
  for (const auto& f : r.foreign_keys)
    md += fmt::format("| {} | {} | {}({}) | {} | {} | {} | {} |\n", f.table, f.columns, f.parent,
                      f.parent_columns, f.sqlite_violations,
                      f.constraint_in_pg ? (f.added_by_import ? "yes (added after pgloader)" : "yes") : "**no**",
                      f.pg_orphans, f.ok() ? "yes" : "**NO**");
  return md;
}

}  // namespace workflow::import
