// `workflow import-sqlite FILE --schema NAME`: copies a SQLite database into
// PostgreSQL with pgloader, into a new schema NAME_import_<time>; verifies it
// against the file (row counts, order-independent checksums after type
// normalisation, foreign keys: src/cli/import_sqlite/); only when everything
// matches renames an existing NAME to NAME_before_<time> and the new schema
// to NAME, in one transaction (the report prints the SQL that undoes it).
// On any mismatch NAME is left as it was, the new schema is dropped (kept
// with --keep-staging) and the exit status is 1. --verify-only compares an
// existing schema with the file and writes nothing.
#include <fmt/core.h>

#include <climits>
#include <cstdlib>
#include <fstream>
#include <regex>

#include "commands.hpp"
#include "import_sqlite/pgloader.hpp"
#include "import_sqlite/verify.hpp"

namespace workflow::cli {
namespace {

struct ImportArgs {
  std::string file;
  std::string schema;
  std::string report;  // path prefix: PREFIX.md, PREFIX.json, PREFIX.pgloader.log
  bool verify_only = false;
  bool keep_staging = false;
};

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

bool schema_exists(client::Connection& conn, const std::string& name) {
  return conn.query("SELECT count(*) FROM pg_namespace WHERE nspname = $1", {name}).int64(0, 0) > 0;
}

// Load into a new schema, verify, swap when everything matches.
void load_verify_swap(const ImportArgs& a, import::SqliteSource& source, client::Connection& conn,
                      import::Report& report) {
  const std::string stamp =
      conn.exec("SELECT to_char(clock_timestamp(), 'YYYYMMDDHH24MISS')").string(0, 0);
  report.schema = a.schema + "_import_" + stamp;
  report.target = a.schema;
  conn.exec("CREATE SCHEMA " + import::quote_identifier(report.schema));
  char dir_template[] = "/tmp/workflow-import.XXXXXX";
  const std::string log = a.report.empty()
                              ? std::string(mkdtemp(dir_template)) + "/pgloader.log"
                              : a.report + ".pgloader.log";
  const auto run = import::run_pgloader(a.file, conn, report.schema, log);
  if (run.exit_code != 0)
    report.problems.push_back(fmt::format("pgloader exited with status {} (log: {})",
                                          run.exit_code, run.log_path));
  if (run.error_lines > 0)
    report.problems.push_back(fmt::format("pgloader reported {} ERROR lines (log: {})",
                                          run.error_lines, run.log_path));
  if (run.exit_code == 0) {
    try {
      import::restore_not_null(source, conn, report.schema, report);
    } catch (const client::sql_error& e) {
      report.problems.push_back(fmt::format("NOT NULL could not be restored: {} (SQLSTATE {})",
                                            e.what(), e.sqlstate()));
    }
    try {
      import::restore_foreign_keys(source, conn, report.schema, report);
    } catch (const client::sql_error& e) {
      report.problems.push_back(fmt::format("a foreign key could not be added: {} (SQLSTATE {})",
                                            e.what(), e.sqlstate()));
    }
    import::verify(source, conn, report.schema, report);
  }
  if (!report.ok()) {
    if (!a.keep_staging)
      conn.exec("DROP SCHEMA " + import::quote_identifier(report.schema) + " CASCADE");
    return;
  }
  conn.exec("BEGIN");
  if (schema_exists(conn, a.schema)) {
    report.previous = a.schema + "_before_" + stamp;
    conn.exec("ALTER SCHEMA " + import::quote_identifier(a.schema) + " RENAME TO " +
              import::quote_identifier(report.previous));
  }
  conn.exec("ALTER SCHEMA " + import::quote_identifier(report.schema) + " RENAME TO " +
            import::quote_identifier(a.schema));
  conn.exec("COMMIT");
  report.swapped = true;
}

}  // namespace

void add_import_sqlite(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand(
      "import-sqlite", "copy a SQLite database into a schema with pgloader, verify, swap in");
  auto a = std::make_shared<ImportArgs>();
  cmd->add_option("file", a->file, "the SQLite database file")->required()->check(CLI::ExistingFile);
  cmd->add_option("--schema", a->schema, "target schema (lower case letters, digits, _)")
      ->required();
  cmd->add_option("--report", a->report, "write PREFIX.md, PREFIX.json (and PREFIX.pgloader.log)");
  cmd->add_flag("--verify-only", a->verify_only, "compare the existing schema with the file");
  cmd->add_flag("--keep-staging", a->keep_staging, "keep the new schema when verification fails");
  cmd->callback([&g, a] {
    // NAME_import_<14 digits> must fit PostgreSQL's 63-byte identifiers.
    if (!std::regex_match(a->schema, std::regex("[a-z_][a-z0-9_]{0,39}")))
      throw client::sql_error("22023", "import-sqlite: invalid schema name \"" + a->schema +
                                           "\" (1-40 characters: a-z, 0-9, _; not a digit first)");
    char resolved[PATH_MAX];
    if (!realpath(a->file.c_str(), resolved)) throw std::runtime_error("cannot resolve " + a->file);
    a->file = resolved;
    import::SqliteSource source(a->file);  // fails before anything is written
    client::Client c(g.options());
    auto lease = c.pool().acquire();
    import::Report report;
    report.source = a->file;
    if (a->verify_only) {
      report.schema = a->schema;
      if (!schema_exists(*lease, a->schema))
        throw client::sql_error("3F000", "import-sqlite: schema \"" + a->schema + "\" does not exist");
      import::verify(source, *lease, a->schema, report);
    } else {
      load_verify_swap(*a, source, *lease, report);
    }
    const std::string md = import::to_markdown(report);
    fmt::print("{}", md);
    if (!a->report.empty()) {
      write_file(a->report + ".md", md);
      write_file(a->report + ".json", import::to_json(report).dump(2) + "\n");
    }
    if (!report.ok()) g.exit_code = 1;
  });
}

}  // namespace workflow::cli
