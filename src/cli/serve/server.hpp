// `workflow serve`: the HTTP server (cpp-httplib) of the dashboard, /metrics,
// /healthz, /readyz and the actions. Runs until SIGINT/SIGTERM.
#pragma once

#include <string>
#include <vector>

#include "workflow/client.hpp"

namespace workflow::serve {

struct ServeOptions {
  std::string listen = "127.0.0.1:8080";  // host:port; port 0 picks a free one
  bool allow_actions = false;
  std::string token;                      // required with allow_actions
  int refresh_ms = 1000;                  // live panels' refresh
  int cache_ms = 1000;                    // rendered panels and /metrics are reused this long
  int scan_cache_ms = 5000;               // open tasks by type, stale claims, stuck jobs (queues, /metrics)
  int count_cache_ms = 60000;             // finished tasks by type (/metrics): a whole-table count
  int threads = 16;                       // request threads (besides the event streams')
  int max_streams = 256;                  // open live-panel event streams at most (then 503: pages poll)
  int heartbeat_ms = 5000;                // a comment on an idle event stream this often
  std::string port_file;                  // write the bound port here once listening
  std::vector<std::string> allow_hosts;   // Host names answered besides IP literals and localhost
};

// Serves until a signal; returns the process exit code.
int serve(const ServeOptions& options, client::ClientOptions client_options);

}  // namespace workflow::serve
