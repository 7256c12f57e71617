// The rows of one stage in one of the extension's tables whose primary key
// starts with (job_id text, stage int): stage_slots (its counters) and
// stages (its one row), read through that key below the SQL layer.
//
// Plain C on PostgreSQL objects (no C++ destructors): call inside pg_call.
#pragma once

extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "executor/tuptable.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
}

namespace workflow::engine {

struct StageKeyScan {
  Relation rel;
  Relation index;
  IndexScanDesc scan;
  TupleTableSlot* slot;  // each row read, for index_getnext_slot(scan, ..., slot)
};

// Opens workflow.<table> and its primary key (AccessShareLock); ERROR when
// the table has no primary key.
void open_stage_key(StageKeyScan* s, const char* table);
// Starts the scan for (job, stage) in `snapshot`, which the caller takes
// after open_stage_key (the locks) and keeps registered until the end.
void start_stage_key_scan(StageKeyScan* s, Datum job, int32 stage, Snapshot snapshot);
void end_stage_key_scan(StageKeyScan* s);

}  // namespace workflow::engine
