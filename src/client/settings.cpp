#include "workflow/settings.hpp"

#include <cstdlib>

#include "workflow/error.hpp"

namespace workflow::client {

StatementMode parse_statement_mode(std::string_view text) {
  if (text == "unnamed") return StatementMode::unnamed;
  if (text == "prepared") return StatementMode::prepared;
  if (text == "auto") return StatementMode::automatic;
  throw usage_error("statement mode must be unnamed, prepared or auto, not \"" +
                    std::string(text) + "\"");
}

WaitMode parse_wait_mode(std::string_view text) {
  if (text == "auto") return WaitMode::automatic;
  if (text == "listen") return WaitMode::listen;
  if (text == "poll") return WaitMode::poll;
  throw usage_error("wait mode must be auto, listen or poll, not \"" + std::string(text) + "\"");
}

Settings Settings::from_environment() {
  Settings s;
  if (const char* url = std::getenv("DATABASE_URL"); url && *url) s.conninfo = url;
  if (const char* m = std::getenv("WORKFLOW_STATEMENTS"); m && *m) s.statements = parse_statement_mode(m);
  if (const char* m = std::getenv("WORKFLOW_WAITS"); m && *m) s.waits = parse_wait_mode(m);
  return s;  // empty conninfo: libpq reads the PG* variables
}

Settings Settings::from_conninfo(std::string conninfo) {
  Settings s;
  s.conninfo = std::move(conninfo);
  return s;
}

}  // namespace workflow::client
