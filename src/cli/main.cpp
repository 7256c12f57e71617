// `workflow`: command-line client of the workflow extension.
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "commands.hpp"

namespace workflow::cli {

client::ClientOptions Global::options() const {
  client::ClientOptions o;
  if (!conninfo.empty()) o.pool.settings = client::Settings::from_conninfo(conninfo);
  o.pool.settings.application_name = "workflow-cli";
  if (!statements.empty()) o.pool.settings.statements = client::parse_statement_mode(statements);
  if (!waits.empty()) o.pool.settings.waits = client::parse_wait_mode(waits);
  if (verbose) {
    spdlog::set_level(spdlog::level::debug);
    o.pool.hook = [](const client::QueryEvent& e) {
      spdlog::debug("{} {:.3f} ms {}{}", e.ok ? "ok" : "ERROR", e.duration.count() / 1000.0,
                    e.statements > 1 ? fmt::format("[x{}] ", e.statements) : "", e.sql);
    };
  }
  return o;
}

}  // namespace workflow::cli

int main(int argc, char** argv) {
  using namespace workflow::cli;
  // Errors and -v logging go to stderr; stdout carries only results (job ids,
  // JSON summaries, CSV), so a script can keep the two apart.
  spdlog::set_default_logger(spdlog::stderr_color_mt("workflow"));
  CLI::App app{"workflow: jobs, stages and tasks in PostgreSQL"};
  app.require_subcommand(1);
  Global g;
  app.add_option("--db", g.conninfo, "connection string (default: DATABASE_URL or PG* variables)");
  app.add_flag("-v,--verbose", g.verbose, "log every statement and its duration");
  app.add_option("--statements", g.statements,
                 "unnamed (default; works behind PgBouncer in transaction mode), prepared "
                 "(named prepared statements: direct or session-mode connections only) or auto")
      ->envname("WORKFLOW_STATEMENTS")
      ->check(CLI::IsMember({"unnamed", "prepared", "auto"}));
  app.add_option("--waits", g.waits,
                 "auto (default: LISTEN on a direct connection, poll behind a pooler), listen "
                 "(direct or session-mode connections only) or poll")
      ->envname("WORKFLOW_WAITS")
      ->check(CLI::IsMember({"auto", "listen", "poll"}));
  add_health(app, g);
  add_submit(app, g);
  add_worker(app, g);
  add_watch(app, g);
  add_history(app, g);
  add_export(app, g);
  add_controls(app, g);
  add_serve(app, g);
  add_import_sqlite(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    // CLI11 prints the message (or the help) and has its own exit codes
    // (105, 106, 109...); README promises 2 for any error. --help stays 0.
    return app.exit(e) == 0 ? 0 : 2;
  } catch (const workflow::client::sql_error& e) {
    spdlog::error("{} (SQLSTATE {}){}", e.what(), e.sqlstate(),
                  e.detail().empty() ? "" : " - " + e.detail());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  } catch (...) {
    spdlog::error("unknown exception");
    return 2;
  }
  return g.exit_code;
}
