// See stage_key_scan.hpp.
#include "extension/stage_key_scan.hpp"
#include "pg/compat.hpp"
#include "pg/relation.hpp"

extern "C" {
#include "access/genam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "utils/fmgroids.h"
#include "utils/rel.h"
}

namespace workflow::engine {

void open_stage_key(StageKeyScan* s, const char* table) {
  s->rel = table_open(workflow::pg::extension_table(table), AccessShareLock);
  Oid pk = pg::compat::relation_primary_key_index(s->rel);
  if (!OidIsValid(pk))
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR), errmsg("workflow.%s has no primary key", table)));
  s->index = index_open(pk, AccessShareLock);
}

void start_stage_key_scan(StageKeyScan* s, Datum job, int32 stage, Snapshot snapshot) {
  ScanKeyData keys[2];
  ScanKeyEntryInitialize(&keys[0], 0, 1, BTEqualStrategyNumber, InvalidOid,
                         s->index->rd_indcollation[0], F_TEXTEQ, job);
  ScanKeyEntryInitialize(&keys[1], 0, 2, BTEqualStrategyNumber, InvalidOid,
                         s->index->rd_indcollation[1], F_INT4EQ, Int32GetDatum(stage));
  s->scan = pg::compat::index_beginscan(s->rel, s->index, snapshot, 2, 0);
  index_rescan(s->scan, keys, 2, nullptr, 0);
  s->slot = table_slot_create(s->rel, nullptr);
}

void end_stage_key_scan(StageKeyScan* s) {
  ExecDropSingleTupleTableSlot(s->slot);
  index_endscan(s->scan);
  index_close(s->index, AccessShareLock);
  table_close(s->rel, AccessShareLock);
}

}  // namespace workflow::engine
