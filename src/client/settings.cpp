#include "workflow/settings.hpp"

#include <cstdlib>

namespace workflow::client {

Settings Settings::from_environment() {
  Settings s;
  if (const char* url = std::getenv("DATABASE_URL"); url && *url) s.conninfo = url;
  return s;  // empty conninfo: libpq reads the PG* variables
}

Settings Settings::from_conninfo(std::string conninfo) {
  Settings s;
  s.conninfo = std::move(conninfo);
  return s;
}

}  // namespace workflow::client
