// `workflow history TABLE KEY`: a row's audit history (workflow.row_history),
// one JSON object per line, oldest first. KEY is the primary key as JSON,
// e.g. '{"id": 42}'; a bare value is taken as {"id": value}.
#include <fmt/core.h>

#include "commands.hpp"

namespace workflow::cli {

void add_history(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("history", "show the audit history of one row");
  auto table = std::make_shared<std::string>();
  auto key = std::make_shared<std::string>();
  cmd->add_option("table", *table, "audited table, e.g. public.accounts")->required();
  cmd->add_option("key", *key, "primary key as JSON, e.g. '{\"id\": 42}'")->required();
  cmd->callback([&g, table, key] {
    client::json k = client::json::parse(*key, nullptr, false);
    if (k.is_discarded() || !k.is_object()) k = {{"id", k.is_discarded() ? client::json(*key) : k}};
    client::Client c(g.options());
    const auto rows =
        c.run([&](client::Connection& conn) { return client::api::row_history(conn, *table, k); });
    for (const auto& r : rows) fmt::print("{}\n", r.dump());
    if (rows.empty()) {
      fmt::print(stderr, "no history for {} {}\n", *table, k.dump());
      g.exit_code = 1;
    }
  });
}

}  // namespace workflow::cli
