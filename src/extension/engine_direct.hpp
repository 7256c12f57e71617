// The fan-in's two row updates below the executor: a task's completion and
// a stage's counter decrement, done with the table AM, the tables' CHECK
// constraints and index entries kept compiled per backend, so a completion
// costs about what the row changes cost, not an executor start per
// statement (bench/RESULTS.md, section 1).
//
// Same effect as the SQL they replace (engine_fan_in.cpp keeps that SQL as
// the fallback): the row is found with a fresh snapshot, locked in its latest
// version (waiting for a concurrent writer, as UPDATE does under READ
// COMMITTED; 40001 under REPEATABLE READ or SERIALIZABLE when it changed),
// its conditions re-checked on that version, NOT NULL and CHECK constraints
// enforced, index entries added when the update is not HOT.
// A table the direct path cannot serve exactly answers kUnavailable and the
// caller runs the SQL: one with triggers (e.g. enable_audit on
// workflow.tasks), row-level security that applies to the caller, stored
// generated columns, deferrable or exclusion constraints, or a constraint or
// index expression that calls a non-built-in function.
//
// Plain C on PostgreSQL objects (no C++ destructors): call inside pg_call.
#pragma once

extern "C" {
#include "postgres.h"
}

namespace workflow::engine::direct {

enum Outcome { kDone, kNotChanged, kUnavailable };

// UPDATE tasks SET status = 'completed', result_data = result, completed_at
// = updated_at = now(), lease_expires_at = NULL WHERE job_id = job AND id =
// task AND stage = stage AND status IN ('queued', 'claimed') AND (worker IS
// NULL OR (status = 'claimed' AND claimed_by = worker)) RETURNING slot.
Outcome complete_task(Datum task, Datum job, int32 stage, Datum result, bool result_null,
                      const text* worker, int32* slot);

// Takes `units` from the counters of a stage (rows of stage_slots with
// remaining > 0), each counter as far as it goes:
//   skip_locked: first the free counters from `preferred` on (then from 0),
//                skipping those other transactions hold; only when all are
//                held, waits for one. For a single completion, which holds
//                no other counter while it waits.
//   otherwise:   counters in ascending order, waiting for each (a batch:
//                one order for every waiter, so batches never deadlock).
// Sets *zeroed to the number of counters this brought to 0. With `sum`
// (a single unit, skip_locked): *sum is the stage's counters summed in the
// same snapshot, after this call's unit, or -1 when it could not be counted
// on the way (every free counter was held: the caller counts).
Outcome take_units(Datum job, int32 stage, int32 units, int32 preferred, bool skip_locked,
                   int32* zeroed, int32* sum);

// Registers the cache's invalidation callbacks (once, from _PG_init).
void init_module();

}  // namespace workflow::engine::direct
