// See engine_slot_sum.hpp.
#include "extension/engine_slot_sum.hpp"
#include "extension/stage_key_scan.hpp"
#include "pg/citus.hpp"
#include "pg/compat.hpp"
#include "pg/datum.hpp"
#include "pg/spi.hpp"
#include "pg/relation.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relation.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "storage/lockdefs.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
}

namespace workflow::engine {
namespace {

// stage_slots (job_id, stage, slot, remaining); its primary key (job_id, stage, slot).
constexpr AttrNumber kRemaining = 4;

// Plain C on PostgreSQL objects only (no C++ destructors): may ereport.
int32 sum_slots(Datum job, int32 stage) {
  StageKeyScan s;
  open_stage_key(&s, "stage_slots");
  CommandCounterIncrement();  // make this call's own slot UPDATE visible
  Snapshot snapshot = RegisterSnapshot(GetTransactionSnapshot());
  start_stage_key_scan(&s, job, stage, snapshot);
  int64 sum = 0;
  while (index_getnext_slot(s.scan, ForwardScanDirection, s.slot)) {
    bool isnull = false;
    Datum remaining = slot_getattr(s.slot, kRemaining, &isnull);
    if (!isnull) sum += DatumGetInt32(remaining);
  }
  end_stage_key_scan(&s);
  UnregisterSnapshot(snapshot);
  return static_cast<int32>(sum);
}

// On a Citus node the counters live in shards: SQL, which Citus routes there.
workflow::pg::Statement sum_by_sql{
    "SELECT coalesce(sum(remaining), 0)::int FROM workflow.stage_slots WHERE job_id = $1 AND stage = $2",
    {TEXTOID, INT4OID}};

}  // namespace

int32 stage_remaining(Datum job, int32 stage) {
  namespace wp = workflow::pg;
  if (!wp::pg_call([] { return wp::is_citus_table(wp::extension_table("stage_slots")); }))
    return wp::pg_call([&] { return sum_slots(job, stage); });
  Datum args[2] = {job, Int32GetDatum(stage)};
  wp::execute(sum_by_sql, args, nullptr, false, 0);  // not read-only: sees this call's own writes
  return wp::int_column(0, 1);
}

}  // namespace workflow::engine
