// PostgreSQL major-version differences, in one place (PG_VERSION_NUM).
// The supported majors are 15, 17 and 18 (README "Supported PostgreSQL");
// every call whose signature differs among them goes through a wrapper here,
// named after the call, so the rest of the code reads the same on each.
#pragma once

extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "executor/executor.h"
#include "utils/relcache.h"
}

#if PG_VERSION_NUM < 150000
#error "workflow needs PostgreSQL 15 or later"
#endif

namespace workflow::pg::compat {

// 16 added onlySummarizing (index only the summarizing indexes, for HOT
// updates); a plain insert indexes all.
inline List* insert_index_tuples(ResultRelInfo* rri, TupleTableSlot* slot, EState* estate) {
#if PG_VERSION_NUM >= 160000
  return ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL, false);
#else
  return ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL);
#endif
}

// 18 added the instrumentation argument (EXPLAIN ANALYZE's index searches).
inline IndexScanDesc index_beginscan(Relation heap, Relation index, Snapshot snapshot, int nkeys,
                                     int norderbys) {
#if PG_VERSION_NUM >= 180000
  return ::index_beginscan(heap, index, snapshot, nullptr, nkeys, norderbys);
#else
  return ::index_beginscan(heap, index, snapshot, nkeys, norderbys);
#endif
}

// 18 added deferrable_ok; false keeps what 15-17 return (an immediate key only).
inline Oid relation_primary_key_index(Relation rel) {
#if PG_VERSION_NUM >= 180000
  return RelationGetPrimaryKeyIndex(rel, false);
#else
  return RelationGetPrimaryKeyIndex(rel);
#endif
}

}  // namespace workflow::pg::compat
