// Pure planning of a batch completion (workflow.complete_tasks): the order in
// which the batch locks rows, and the aggregation of its counter decrements.
//
// Lock order of every completion, single or batch: task rows, then slot rows,
// then stage rows. Within each level a batch goes in one global order, so two
// concurrent batches (or a batch and single completes) never wait for each
// other in a cycle:
//   tasks  by (job_id, task_id)   -- batch_lock_order
//   slots  by (job_id, stage, slot), each decremented once by its count
//   stages by (job_id, stage), each decremented once by its zeroed slots
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace workflow::core {

struct BatchTask {
  std::string_view job_id;
  std::string_view task_id;
  int stage = 0;
};

// Indices of `tasks` sorted by (job_id, task_id), bytewise. Throws
// core::error 22023 naming both positions (1-based) when a task appears twice.
std::vector<std::size_t> batch_lock_order(const std::vector<BatchTask>& tasks);

// A task of the batch that this call moved to completed, and its slot.
struct CompletedTask {
  std::size_t index;  // into the batch
  int slot;
};

struct SlotDecrement {
  std::string_view job_id;
  int stage;
  int slot;
  int count;               // tasks of the batch completed in this slot
  std::size_t last_task;   // index of the last of them (in lock order)
};

// `completed` (in lock order) grouped by (job_id, stage, slot), in that order.
std::vector<SlotDecrement> group_by_slot(const std::vector<BatchTask>& tasks,
                                         const std::vector<CompletedTask>& completed);

struct StageDecrement {
  std::string_view job_id;
  int stage;
  int zeroed_slots;        // slots of the stage this batch brought to 0
  std::size_t completer;   // the task recorded as completed_by_task if it completes the stage
};

// The slots brought to 0 (a subsequence of group_by_slot's answer) grouped by
// (job_id, stage), in that order; the completer is the last task of the last slot.
std::vector<StageDecrement> group_by_stage(const std::vector<SlotDecrement>& zeroed);

// Counting by stage (1.2): a completion takes one unit from any counter of
// its stage that has one, so the batch needs, per stage, only how many.
struct StageUnits {
  std::string_view job_id;
  int stage;
  int units;               // tasks of the batch completed in this stage
  int preferred_slot;      // where the search for a counter starts: the first task's slot
  std::size_t last_task;   // the task recorded as completed_by_task if it completes the stage
};

// `completed` (in lock order) grouped by (job_id, stage), in that order.
std::vector<StageUnits> group_units_by_stage(const std::vector<BatchTask>& tasks,
                                             const std::vector<CompletedTask>& completed);

}  // namespace workflow::core
