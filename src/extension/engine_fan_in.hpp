// The one fan-in path of the engine: completing tasks and detecting, exactly
// once, the completion of their stages. workflow.complete_tasks
// (engine_complete_batch.cpp) calls it with its batch;
// workflow.complete_task_and_check_stage (engine_complete.cpp) with a batch
// of one. One set of kept plans, one diagnosis, one wording of the errors.
//
// 1. UPDATE each task (queued/claimed -> completed), in (job_id, task_id)
//    order (core/engine_batch.hpp); its row lock is held to commit, so each
//    task is counted once. With a worker (fencing) only a task `claimed` by
//    that worker changes.
// 2. A task that did not change is diagnosed: unknown P0002, wrong stage
//    22023, failed/cancelled 55000, and with a worker: claimed by another
//    worker, queued (the lease was lost) or completed by another worker
//    55000. The call then fails as a whole and nothing is written. A task
//    already completed (by this worker, or by anyone when worker is NULL) is
//    a repeat: it writes nothing and answers whether it is its stage's
//    recorded completer, so a retry after a lost reply does not lose the stage.
// 3. 1.2 (FanIn::count_by_stage): each stage's completions are taken from
//    any of its counters that has some left, in (job, stage) order. 1.0 and
//    1.1: each touched slot is decremented once, by its count, in (job,
//    stage, slot) order. Then each stage once, by its counters that reached
//    0, in (job, stage) order. The call that brings a stage's pending_slots to 0 completes
//    it: records completed_by_task, NOTIFY workflow_stage_complete.
// Lock order task -> slot -> stage, each level in one global order, the same
// as add_tasks and seal_stage: completions never deadlock with each other.
#pragma once

#include "pg/boundary.hpp"

#include <optional>
#include <vector>

#include "core/engine_batch.hpp"

namespace workflow::engine {

struct Completion {
  Datum job;                 // text
  Datum task;                // text
  Datum result;              // jsonb, unless result_null
  bool result_null = true;
  // Fencing for this element alone (complete_claimed_tasks: one worker name
  // per element); nullptr: FanIn::worker.
  const text* worker = nullptr;
  bool stage_complete = false;  // out: this task is its stage's recorded completer
  // out, only with FanIn::count_remaining: unfinished tasks of the task's
  // stage after this call (a snapshot; 0 when the stage is complete).
  std::optional<int32> remaining;
};

struct FanIn {
  // Fencing: only tasks claimed by this worker complete (nullptr: any
  // queued or claimed task, the unfenced form). A text Datum's text.
  const text* worker = nullptr;
  // Messages name the element (task_ids[3]) and say the batch wrote nothing.
  bool batch = true;
  // Count `remaining` (meant for a batch of one): the stage's slot counters
  // summed right after the task's slot is decremented (engine_slot_sum.hpp).
  bool count_remaining = false;
  // 1.2: count by stage. A completion takes one unit from any counter of its
  // stage that has one (a single call skips counters other transactions
  // hold; a batch waits for each in ascending order), and the two row
  // updates run below the executor where they may (engine_direct.hpp).
  // false (the 1.0 and 1.1 SQL): each task decrements its own slot,
  // task_index % slot_count, through SQL.
  bool count_by_stage = false;
};

// Runs the fan-in for `items` (tasks[i] describes items[i]: ids and stage).
// Throws core::error / pg_error as described above; fills stage_complete
// (and remaining).
void complete(std::vector<Completion>& items, const std::vector<core::BatchTask>& tasks,
              const FanIn& options);

}  // namespace workflow::engine
