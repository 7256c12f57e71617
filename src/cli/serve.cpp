// `workflow serve`: the web dashboard, Prometheus /metrics, /healthz and
// /readyz (src/cli/serve/). Loopback by default; actions only with
// --allow-actions and a token.
#include <cstdlib>
#include <fstream>

#include "commands.hpp"
#include "serve/server.hpp"

namespace workflow::cli {

void add_serve(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("serve", "web dashboard, Prometheus /metrics, /healthz and /readyz");
  auto o = std::make_shared<serve::ServeOptions>();
  auto token_file = std::make_shared<std::string>();
  cmd->add_option("--listen", o->listen, "HOST:PORT to listen on (port 0: any free port)")
      ->capture_default_str();
  cmd->add_flag("--allow-actions", o->allow_actions,
                "allow retry, cancel and pause from the dashboard (POST /action/..., with the token)");
  cmd->add_option("--token-file", *token_file,
                  "file holding the action token (default: WORKFLOW_SERVE_TOKEN)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--refresh-ms", o->refresh_ms, "how often open pages refresh their live panels")
      ->check(CLI::Range(200, 600000))
      ->capture_default_str();
  cmd->add_option("--cache-ms", o->cache_ms, "reuse a rendered panel or /metrics this long (0: never)")
      ->check(CLI::Range(0, 60000))
      ->capture_default_str();
  cmd->add_option("--scan-cache-ms", o->scan_cache_ms,
                  "reuse the counts of open tasks, stale claims and stuck jobs (queues panel, /metrics) this long "
                  "(0: never)")
      ->check(CLI::Range(0, 600000))
      ->capture_default_str();
  cmd->add_option("--count-cache-ms", o->count_cache_ms,
                  "reuse the counts of finished tasks by type (/metrics; they read the whole task table) this long "
                  "(0: never)")
      ->check(CLI::Range(0, 3600000))
      ->capture_default_str();
  cmd->add_option("--threads", o->threads, "request threads (besides one per open event stream)")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  cmd->add_option("--max-streams", o->max_streams,
                  "open live-panel event streams (GET /events) at most; beyond, 503 and the page polls (0: pages "
                  "always poll)")
      ->check(CLI::Range(0, 4096))
      ->capture_default_str();
  cmd->add_option("--port-file", o->port_file, "write the port listened on to this file");
  cmd->add_option("--allow-host", o->allow_hosts,
                  "also answer requests addressed to this host name (repeatable); by default a loopback "
                  "server answers only IP literals and localhost (DNS rebinding)");
  cmd->callback([&g, o, token_file] {
    if (!token_file->empty()) {
      std::ifstream in(*token_file);
      std::getline(in, o->token);
    } else if (const char* t = std::getenv("WORKFLOW_SERVE_TOKEN")) {
      o->token = t;
    }
    auto opts = g.options();
    opts.pool.settings.application_name = "workflow-serve";
    g.exit_code = serve::serve(*o, opts);
  });
}

}  // namespace workflow::cli
