// A query run with another role's rights (SetUserIdAndSecContext) must not
// resolve functions or operators through the caller's search_path: a caller
// could put its own `=` first and have it run with those rights. Between
// push and pop the search_path is `pg_catalog, pg_temp`, as in the
// extension's SECURITY DEFINER functions. Plain C-style calls: an error in
// between unwinds the setting with its (sub)transaction.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace workflow::pg {

// Returns the GUC nest level to give to pop_search_path.
int push_catalog_search_path();
void pop_search_path(int nest_level);

}  // namespace workflow::pg
