// Where a stage's counters are, remembered per backend, so that the exact
// count of a single completion (the sum of every counter of its stage)
// reads the rows directly instead of scanning workflow.stage_slots' primary
// key each time: the btree descent and its per-entry key checks were a
// third of that sum's cost (bench/RESULTS.md, section 8).
//
// What is remembered is the root line pointer of each counter's HOT chain,
// as its index entry holds it, and a read follows each chain to the version
// the snapshot sees, as an index fetch does. It is used only for a stage
// whose every counter exists (slot 0 .. slot_count - 1; add_tasks never
// adds a counter beyond slot_count - 1), and only when every chain still
// leads to a visible row of that job, stage and slot: one row per key is
// visible in a snapshot, so the read then saw the whole stage. Anything
// else (a counter that moved to another page, one deleted, a page beyond
// the table's end) answers false and the caller scans the index, which
// remembers the locations again. A relcache invalidation of the table
// (TRUNCATE, VACUUM FULL, CLUSTER: a new file) forgets everything.
//
// Plain C on PostgreSQL objects (no C++ destructors): call inside pg_call.
#pragma once

extern "C" {
#include "postgres.h"
#include "storage/itemptr.h"
#include "utils/relcache.h"
#include "utils/snapshot.h"
}

namespace workflow::engine::counter_tids {

struct Counter {
  int32 slot;
  ItemPointerData tid;  // the version the snapshot sees
  int32 remaining;
};

// The columns of workflow.stage_slots a read needs, by attribute number.
struct Columns {
  AttrNumber job, stage, slot, remaining;
};

// Every counter of (job, stage) as `snapshot` sees it, in slot order, into
// *out (palloc'd, *n of them); false (nothing read) unless all of them were
// found through the remembered locations. `rel` is open and locked.
bool read(Relation rel, Snapshot snapshot, const Columns& columns, Datum job, int32 stage,
          Counter** out, int* n);

// After a scan of the primary key that saw n counters of (job, stage) in
// slot order: slots[i] and the TID its index entry gave (roots[i]), for the
// first min(n, kMaxSlots). Remembered when they are the whole stage.
void remember(Datum job, int32 stage, const int32* slots, const ItemPointerData* roots, int n);

// The largest stage (slot_count) whose locations are remembered.
constexpr int kMaxSlots = 1024;

// Forgets every location (the table's relcache entry was invalidated).
void forget_all();

}  // namespace workflow::engine::counter_tids
