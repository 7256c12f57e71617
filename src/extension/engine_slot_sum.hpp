// The exact remaining_tasks of a stage: the sum of its slot counters, read
// by a direct scan of the stage's range of stage_slots_pkey.
//
// Why not SQL: the planner sees a small stage_slots table and plans
// `sum(remaining) ... WHERE job_id = $1 AND stage = $2` as a sequential
// scan of every stage's slots (and their dead versions), many times the 256
// rows of one stage; the executor adds a per-row cost on top. The scan here
// reads exactly the stage's index range. See bench/RESULTS.md section 1.
// On a Citus node (a distributed stage_slots) the sum is SQL: Citus routes
// it to the shard. Call inside an SpiScope.
#pragma once

#include "pg/boundary.hpp"

namespace workflow::engine {

// Unfinished tasks of (job, stage): every slot counter as this transaction
// sees it after its own changes so far (a snapshot taken now, after a
// command counter increment), so the caller's own decrement is counted.
int32 stage_remaining(Datum job, int32 stage);

}  // namespace workflow::engine
