// See citus.hpp.
#include "pg/citus.hpp"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "catalog/pg_namespace.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
}

namespace workflow::pg {

bool is_citus_table(Oid relid) {
  // Without Citus there is no such catalog: one syscache lookup, no scan.
  Oid catalog = get_relname_relid("pg_dist_partition", PG_CATALOG_NAMESPACE);
  if (!OidIsValid(catalog)) return false;
  Relation rel = table_open(catalog, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, 1 /* logicalrelid */, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(rel, InvalidOid, false, nullptr, 1, &key);
  bool found = HeapTupleIsValid(systable_getnext(scan));
  systable_endscan(scan);
  table_close(rel, AccessShareLock);
  return found;
}

}  // namespace workflow::pg
