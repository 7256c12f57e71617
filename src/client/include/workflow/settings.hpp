// Where to connect. from_environment() takes DATABASE_URL when it is set,
// otherwise an empty conninfo, which makes libpq read PGHOST, PGPORT, PGUSER,
// PGDATABASE, PGPASSWORD... itself.
#pragma once

#include <chrono>
#include <functional>
#include <string>

namespace workflow::client {

// One statement's outcome, given to the query hook (logging, timing, metrics).
struct QueryEvent {
  std::string_view sql;        // statement text (or the prepared statement's text)
  std::chrono::microseconds duration{0};
  bool ok = true;
  std::string_view sqlstate;   // empty when ok
  int statements = 1;          // > 1 for a pipelined batch
};
using QueryHook = std::function<void(const QueryEvent&)>;

struct Settings {
  std::string conninfo;  // "postgresql://..." or "host=... dbname=..."; empty = PG* variables
  std::string application_name = "workflow-client";
  std::string database;  // when set, overrides the database named by conninfo/PGDATABASE

  static Settings from_environment();
  static Settings from_conninfo(std::string conninfo);
};

}  // namespace workflow::client
