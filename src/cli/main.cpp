// `workflow`: command-line client of the workflow extension.
#include <spdlog/spdlog.h>

#include "commands.hpp"

namespace workflow::cli {

client::ClientOptions Global::options() const {
  client::ClientOptions o;
  if (!conninfo.empty()) o.pool.settings = client::Settings::from_conninfo(conninfo);
  o.pool.settings.application_name = "workflow-cli";
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
  CLI::App app{"workflow: jobs, stages and tasks in PostgreSQL"};
  app.require_subcommand(1);
  Global g;
  app.add_option("--db", g.conninfo, "connection string (default: DATABASE_URL or PG* variables)");
  app.add_flag("-v,--verbose", g.verbose, "log every statement and its duration");
  add_health(app, g);
  add_submit(app, g);
  add_worker(app, g);
  add_watch(app, g);
  add_history(app, g);
  add_export(app, g);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const workflow::client::sql_error& e) {
    spdlog::error("{} (SQLSTATE {}){}", e.what(), e.sqlstate(),
                  e.detail().empty() ? "" : " - " + e.detail());
    return 2;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 2;
  }
  return g.exit_code;
}
