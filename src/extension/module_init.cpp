// _PG_init for the whole workflow.so: the one place that registers GUCs and
// cache callbacks when the library is loaded. Features add their init call here.
#include "pg/boundary.hpp"

#include "extension/audit_cache.hpp"
#include "extension/engine_direct.hpp"

extern "C" {
PGDLLEXPORT void _PG_init(void);
}

void _PG_init(void) {
  workflow::audit::init_module();
  workflow::engine::direct::init_module();
}
