// `workflow export`: a table or query out as CSV (with header) or JSON lines,
// streamed with COPY ... TO STDOUT.
#include <fmt/core.h>

#include <cstdio>

#include "commands.hpp"

namespace workflow::cli {
namespace {

std::string quote_ident_path(client::Connection& conn, const std::string& table) {
  // regclass text is the server's own correctly quoted, schema-qualified name.
  return conn.query("SELECT $1::regclass::text", {table}).string(0, 0);
}

}  // namespace

void add_export(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("export", "export a table or query as CSV or JSON (COPY)");
  struct Args {
    std::string table = "workflow.jobs";
    std::string query;
    std::string format = "csv";
    std::string output;
  };
  auto a = std::make_shared<Args>();
  auto* table = cmd->add_option("--table", a->table, "table to export (default workflow.jobs)");
  auto* query = cmd->add_option("--query", a->query,
                                "a SELECT to export instead of a table (run read-only: a statement "
                                "that writes fails with SQLSTATE 25006)");
  table->excludes(query);
  cmd->add_option("--format", a->format, "csv or json (one object per line)")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", a->output, "file (default stdout)");
  cmd->callback([&g, a] {
    client::Client c(g.options());
    // -o FILE is opened with the first bytes of the export (or at its end, for
    // nothing): a query that fails leaves an existing FILE as it was.
    FILE* out = a->output.empty() ? stdout : nullptr;
    const auto open_output = [&] {
      if (!out) out = std::fopen(a->output.c_str(), "w");
      if (!out) throw std::runtime_error("cannot open " + a->output);
    };
    long written = 0;  // lines (COPY rows, the CSV header included) already written
    const auto export_once = [&](client::Connection& conn) {
      // Read-only, so --query cannot change anything (a DELETE ... RETURNING: 25006).
      client::Transaction tx(conn, "BEGIN READ ONLY");
      const std::string source =
          a->query.empty() ? "SELECT * FROM " + quote_ident_path(conn, a->table) : a->query;
      // JSON through CSV format with quote/delimiter bytes that never occur in
      // JSON text: the rows come out verbatim (text format would escape backslashes).
      const std::string copy =
          a->format == "csv"
              ? "COPY (" + source + ") TO STDOUT WITH (FORMAT csv, HEADER true)"
              : "COPY (SELECT row_to_json(t) FROM (" + source +
                    ") t) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')";
      const long n = conn.copy_out(copy, [&](std::string_view chunk) {
        open_output();
        std::fwrite(chunk.data(), 1, chunk.size(), out);
        ++written;
      });
      tx.commit();
      return n;
    };
    const long rows = c.run([&](client::Connection& conn) {
      try {
        return export_once(conn);
      } catch (const client::sql_error& e) {
        // A lost connection is retried only while nothing is out: a new
        // attempt would write the rows already written a second time. After
        // that, fail (a plain sql_error is not retried: exit 2).
        if (written == 0) throw;
        throw client::sql_error(
            e.sqlstate(), fmt::format("{} (after {} lines were written; not retried, so that no line "
                                      "is written twice: the output may be incomplete)",
                                      e.what(), written));
      }
    });
    open_output();
    if (out != stdout) std::fclose(out);
    fmt::print(stderr, "exported {} {}\n", a->format == "csv" ? rows - 1 : rows,
               a->format == "csv" ? "rows (+ header)" : "rows");
  });
}

}  // namespace workflow::cli
