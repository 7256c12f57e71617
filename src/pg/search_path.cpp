#include "pg/search_path.hpp"

extern "C" {
#include "utils/guc.h"
}

namespace workflow::pg {

int push_catalog_search_path() {
  int level = NewGUCNestLevel();
  (void)set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET, PGC_S_SESSION,
                          GUC_ACTION_SAVE, true, 0, false);
  return level;
}

void pop_search_path(int nest_level) { AtEOXact_GUC(true, nest_level); }

}  // namespace workflow::pg
