// The fan-in's two row updates below the executor: a task's completion and
// a stage's counter decrement, done with the table AM, the tables' CHECK
// constraints and index entries kept compiled per backend, so a completion
// costs about what the row changes cost, not an executor start per
// statement (bench/RESULTS.md, section 1).
//
// Same effect as the SQL they replace (engine_fan_in.cpp keeps that SQL as
// the fallback). The task row: found with the statement's snapshot and, if
// it qualifies there, written as UPDATE writes it, with no row lock first;
// when a concurrent writer changed it (waited for, as UPDATE waits), 40001
// under REPEATABLE READ or SERIALIZABLE, else its latest version is locked
// and its conditions checked again on it. The counters (internal
// bookkeeping): read in their latest committed state and written the same
// way (a held one skipped or waited for), never 40001. Both: NOT NULL and CHECK constraints
// enforced, index entries added when the update is not HOT, 25006 in a
// read-only transaction.
// A table the direct path cannot serve exactly answers kUnavailable and the
// caller runs the SQL: a Citus table (its rows are in shards), one with
// triggers (e.g. enable_audit on workflow.tasks) or rules, row-level
// security that applies to the caller, inheritance children, stored
// generated columns, domain-typed columns,
// deferrable or exclusion constraints, or a constraint or index expression
// beyond plain operators and built-in functions on the row's own columns.
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
//                held, waits for one holder's transaction to end (holding
//                no counter) and looks again. For a single completion.
//   otherwise:   counters in ascending order, waiting for each (a batch:
//                one order for every waiter, so batches never deadlock).
// Sets *zeroed to the number of counters this brought to 0. With `sum`
// (a single unit, skip_locked): *sum is the stage's counters summed in the
// snapshot the unit was taken in, after it; -1 when not counted (the
// caller counts).
Outcome take_units(Datum job, int32 stage, int32 units, int32 preferred, bool skip_locked,
                   int32* zeroed, int32* sum);

// Registers the cache's invalidation callbacks (once, from _PG_init).
void init_module();

}  // namespace workflow::engine::direct
