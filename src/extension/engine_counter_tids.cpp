// See engine_counter_tids.hpp.
#include "extension/engine_counter_tids.hpp"
#include "extension/stage_key_scan.hpp"
#include "pg/datum.hpp"

extern "C" {
#include "access/genam.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "storage/bufmgr.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include <cstring>

namespace workflow::engine::counter_tids {
namespace {

// A few stages per backend: a worker completes the tasks of one or two
// stages at a time. Replaced round-robin.
constexpr int kEntries = 8;

struct Entry {
  text* job;          // nullptr: a free entry
  int32 stage;
  int32 slot_count;   // the stage's (workflow.stages), read once
  bool whole;         // roots[0 .. slot_count) are the locations of every counter
  ItemPointerData* roots;  // by slot
};

Entry entries[kEntries];
int next_victim = 0;
MemoryContext context = nullptr;

Entry* find(Datum job, int32 stage) {
  for (Entry& e : entries)
    if (e.job != nullptr && e.stage == stage && pg::text_view(e.job) == pg::text_view(DatumGetTextPP(job))) return &e;
  return nullptr;
}

// workflow.stages.slot_count of (job, stage); -1 when there is no such row.
int32 stage_slot_count(Datum job, int32 stage) {
  StageKeyScan s;
  open_stage_key(&s, "stages");
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  start_stage_key_scan(&s, job, stage, snapshot);
  const AttrNumber column = get_attnum(RelationGetRelid(s.rel), "slot_count");
  int32 result = -1;
  if (column != InvalidAttrNumber && index_getnext_slot(s.scan, ForwardScanDirection, s.slot)) {
    bool isnull;
    Datum value = slot_getattr(s.slot, column, &isnull);
    if (!isnull) result = DatumGetInt32(value);
  }
  end_stage_key_scan(&s);
  UnregisterSnapshot(snapshot);
  return result;
}

}  // namespace

bool read(Relation rel, Snapshot snapshot, const Columns& columns, Datum job, int32 stage,
          Counter** out, int* n) {
  Entry* e = find(job, stage);
  if (e == nullptr || !e->whole) return false;
  const int count = e->slot_count;
  const BlockNumber nblocks = RelationGetNumberOfBlocks(rel);
  TupleDesc desc = RelationGetDescr(rel);
  Counter* counters = static_cast<Counter*>(palloc(sizeof(Counter) * count));
  Buffer buffer = InvalidBuffer;
  bool whole = true;
  for (int i = 0; whole && i < count; ++i) {
    ItemPointerData tid = e->roots[i];
    const BlockNumber block = ItemPointerGetBlockNumber(&tid);
    if (block >= nblocks) {  // the table was truncated below it (VACUUM)
      whole = false;
      break;
    }
    if (!BufferIsValid(buffer) || BufferGetBlockNumber(buffer) != block) {
      if (BufferIsValid(buffer)) UnlockReleaseBuffer(buffer);
      buffer = ReadBuffer(rel, block);
      heap_page_prune_opt(rel, buffer);  // as an index fetch does on each new page
      LockBuffer(buffer, BUFFER_LOCK_SHARE);
    }
    HeapTupleData tuple;
    bool all_dead = false;
    if (!heap_hot_search_buffer(&tid, rel, buffer, snapshot, &tuple, &all_dead, true)) {
      whole = false;
      break;
    }
    tuple.t_tableOid = RelationGetRelid(rel);
    bool null_job, null_stage, null_slot, null_remaining;
    Datum row_job = heap_getattr(&tuple, columns.job, desc, &null_job);
    Datum row_stage = heap_getattr(&tuple, columns.stage, desc, &null_stage);
    Datum row_slot = heap_getattr(&tuple, columns.slot, desc, &null_slot);
    Datum remaining = heap_getattr(&tuple, columns.remaining, desc, &null_remaining);
    // The chain may now hold another row (its line pointer reused).
    if (null_job || null_stage || null_slot || null_remaining || DatumGetInt32(row_stage) != stage ||
        DatumGetInt32(row_slot) != i || pg::text_view(DatumGetTextPP(job)) != pg::text_view(DatumGetTextPP(row_job))) {
      whole = false;
      break;
    }
    counters[i].slot = i;
    counters[i].tid = tid;
    counters[i].remaining = DatumGetInt32(remaining);
  }
  if (BufferIsValid(buffer)) UnlockReleaseBuffer(buffer);
  if (!whole) {
    e->whole = false;  // the next scan of the index remembers them again
    pfree(counters);
    return false;
  }
  *out = counters;
  *n = count;
  return true;
}

void remember(Datum job, int32 stage, const int32* slots, const ItemPointerData* roots, int n) {
  if (n <= 0 || n > kMaxSlots) return;
  for (int i = 0; i < n; ++i)
    if (slots[i] != i) return;  // not slots 0 .. n-1: some are missing
  Entry* e = find(job, stage);
  if (e != nullptr && e->slot_count != n) return;  // not every counter exists (yet)
  if (e == nullptr) {
    // May process invalidations (a lock), which may forget every entry.
    const int32 slot_count = stage_slot_count(job, stage);
    if (context == nullptr)
      context = AllocSetContextCreate(CacheMemoryContext, "workflow counter locations",
                                      ALLOCSET_SMALL_SIZES);
    e = &entries[next_victim];
    next_victim = (next_victim + 1) % kEntries;
    if (e->job != nullptr) pfree(e->job);
    if (e->roots != nullptr) pfree(e->roots);
    const text* t = DatumGetTextPP(job);
    const Size len = VARSIZE_ANY_EXHDR(t);
    text* copy = static_cast<text*>(MemoryContextAlloc(context, VARHDRSZ + len));
    SET_VARSIZE(copy, VARHDRSZ + len);
    memcpy(VARDATA(copy), VARDATA_ANY(t), len);
    e->job = copy;
    e->stage = stage;
    e->slot_count = slot_count;
    e->whole = false;
    e->roots = slot_count > 0 && slot_count <= kMaxSlots
                   ? static_cast<ItemPointerData*>(
                         MemoryContextAlloc(context, sizeof(ItemPointerData) * slot_count))
                   : nullptr;
    if (slot_count != n) return;  // remembered as a stage still missing counters
  }
  memcpy(e->roots, roots, sizeof(ItemPointerData) * n);
  e->whole = true;
}

void forget_all() {
  for (Entry& e : entries) e = Entry{};
  next_victim = 0;
  if (context != nullptr) MemoryContextReset(context);
}

}  // namespace workflow::engine::counter_tids
