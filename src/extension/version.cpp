// workflow.version(): the library's version, proving the C++ module loads.
#include "pg/boundary.hpp"

extern "C" {
#include "utils/builtins.h"
PG_MODULE_MAGIC;
}

WF_FUNCTION(workflow_version) {
  return PointerGetDatum(cstring_to_text("1.10"));
}
