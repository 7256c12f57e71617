#include "core/engine_batch.hpp"

#include <algorithm>
#include <string>
#include <tuple>

#include "core/engine_ids.hpp"
#include "core/error.hpp"

namespace workflow::core {

std::vector<std::size_t> batch_lock_order(const std::vector<BatchTask>& tasks) {
  std::vector<std::size_t> order(tasks.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = i;
  auto key = [&](std::size_t i) { return std::tie(tasks[i].job_id, tasks[i].task_id); };
  // Stable: of two equal tasks the first position comes first in the message.
  std::stable_sort(order.begin(), order.end(),
                   [&](std::size_t a, std::size_t b) { return key(a) < key(b); });
  for (std::size_t k = 1; k < order.size(); ++k) {
    if (key(order[k - 1]) == key(order[k])) {
      const BatchTask& t = tasks[order[k]];
      throw error(sqlstate::invalid_parameter_value,
                  "task_ids[" + std::to_string(order[k] + 1) + "] " + sql_quote(t.task_id) +
                      " of job " + sql_quote(t.job_id) + " repeats task_ids[" +
                      std::to_string(order[k - 1] + 1) + "]: each task at most once per batch");
    }
  }
  return order;
}

std::vector<SlotDecrement> group_by_slot(const std::vector<BatchTask>& tasks,
                                         const std::vector<CompletedTask>& completed) {
  std::vector<SlotDecrement> slots;
  slots.reserve(completed.size());
  for (const CompletedTask& c : completed) {
    const BatchTask& t = tasks[c.index];
    slots.push_back({t.job_id, t.stage, c.slot, 1, c.index});
  }
  auto key = [](const SlotDecrement& s) { return std::tie(s.job_id, s.stage, s.slot); };
  // Stable: within a slot, tasks stay in lock order, so last_task is the last.
  std::stable_sort(slots.begin(), slots.end(),
                   [&](const SlotDecrement& a, const SlotDecrement& b) { return key(a) < key(b); });
  std::vector<SlotDecrement> grouped;
  for (const SlotDecrement& s : slots) {
    if (!grouped.empty() && key(grouped.back()) == key(s)) {
      grouped.back().count += 1;
      grouped.back().last_task = s.last_task;
    } else {
      grouped.push_back(s);
    }
  }
  return grouped;
}

std::vector<StageDecrement> group_by_stage(const std::vector<SlotDecrement>& zeroed) {
  std::vector<StageDecrement> stages;
  for (const SlotDecrement& s : zeroed) {
    if (!stages.empty() && stages.back().job_id == s.job_id && stages.back().stage == s.stage) {
      stages.back().zeroed_slots += 1;
      stages.back().completer = s.last_task;
    } else {
      stages.push_back({s.job_id, s.stage, 1, s.last_task});
    }
  }
  return stages;
}

std::vector<StageUnits> group_units_by_stage(const std::vector<BatchTask>& tasks,
                                             const std::vector<CompletedTask>& completed) {
  std::vector<StageUnits> units;
  units.reserve(completed.size());
  for (const CompletedTask& c : completed) {
    const BatchTask& t = tasks[c.index];
    units.push_back({t.job_id, t.stage, 1, c.slot, c.index});
  }
  auto key = [](const StageUnits& s) { return std::tie(s.job_id, s.stage); };
  // Stable: within a stage, tasks stay in lock order (first slot, last task).
  std::stable_sort(units.begin(), units.end(),
                   [&](const StageUnits& a, const StageUnits& b) { return key(a) < key(b); });
  std::vector<StageUnits> grouped;
  for (const StageUnits& s : units) {
    if (!grouped.empty() && key(grouped.back()) == key(s)) {
      grouped.back().units += 1;
      grouped.back().last_task = s.last_task;
    } else {
      grouped.push_back(s);
    }
  }
  return grouped;
}

}  // namespace workflow::core
