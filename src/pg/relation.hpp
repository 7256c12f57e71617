// The OID of one of the extension's own tables (schema workflow), for code
// that opens it below the SQL layer. Plain C: may ereport (55000 when the
// table is missing, e.g. dropped by hand).
#pragma once

extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "utils/lsyscache.h"
}

namespace workflow::pg {

inline Oid extension_table(const char* name) {
  Oid relid = get_relname_relid(name, get_namespace_oid("workflow", false));
  if (!OidIsValid(relid))
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("workflow.%s is missing", name)));
  return relid;
}

}  // namespace workflow::pg
