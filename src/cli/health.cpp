// `workflow health`: waits for the server, then checks the connection, the
// extension and its self-check (workflow.validate()). Exit 0 only when all pass.
#include <fmt/core.h>

#include "commands.hpp"

namespace workflow::cli {

void add_health(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("health", "check server, extension and its self-check");
  auto wait_ms = std::make_shared<int>(5000);
  cmd->add_option("--wait-ms", *wait_ms, "wait this long for a starting server")->capture_default_str();
  cmd->callback([&g, wait_ms] {
    auto opts = g.options();
    client::wait_until_ready(opts.pool.settings, std::chrono::milliseconds(*wait_ms));
    client::Client c(opts);
    const auto server = c.run([](client::Connection& conn) {
      return conn.query("SHOW server_version").string(0, 0);
    });
    fmt::print("server      ok (PostgreSQL {})\n", server);
    const auto version = c.extension_version();
    if (!version) {
      fmt::print("extension   MISSING (run CREATE EXTENSION workflow)\n");
      g.exit_code = 1;
      return;
    }
    fmt::print("extension   ok (workflow {})\n", *version);
    const auto checks = c.run([](client::Connection& conn) { return client::api::validate(conn); });
    for (const auto& k : checks) {
      fmt::print("  {:<30} {}{}\n", k.name, k.ok ? "ok" : "FAILED",
                 k.detail.empty() ? "" : "  " + k.detail);
      if (!k.ok) g.exit_code = 1;
    }
    const auto m = c.pool().metrics();
    fmt::print("pool        in_use={} idle={} created={} waits={} errors={}\n", m.in_use, m.idle,
               m.created, m.waits, m.errors);
  });
}

}  // namespace workflow::cli
