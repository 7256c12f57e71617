// workflow.complete_task_and_check_stage: the fan-in hot path, a batch of
// one through the engine's one fan-in path (engine_fan_in.hpp): same plans,
// same diagnosis, same fencing as complete_tasks.
//
// remaining_tasks is the sum of the stage's slot counters, read right after
// the task's slot is decremented, in one snapshot that includes that
// decrement (engine_slot_sum.hpp): O(slot_count), independent of the stage's size.
// 0 when the call completed the stage or repeats its completer. Callers that
// do not need it pass count_remaining => false and get NULL (0 when the
// stage is complete).
#include "core/engine_batch.hpp"
#include "core/engine_ids.hpp"
#include "extension/engine_fan_in.hpp"
#include "pg/datum.hpp"

extern "C" {
#include "funcapi.h"
#include "utils/tuplestore.h"
}

#include <string_view>
#include <vector>

namespace wp = workflow::pg;
namespace wc = workflow::core;
namespace we = workflow::engine;

namespace {

// The call, for either way of counting (engine_fan_in.hpp, FanIn::count_by_stage).
Datum complete_task_and_check_stage(FunctionCallInfo fcinfo, bool count_by_stage) {
  text* task = wp::text_arg_or_null(fcinfo, 0);
  text* job = wp::text_arg_or_null(fcinfo, 1);
  std::vector<wc::BatchTask> tasks(1);
  if (task) tasks[0].task_id = wp::text_view(task);
  if (job) tasks[0].job_id = wp::text_view(job);
  wc::check_required_text("task_id", task == nullptr, tasks[0].task_id, 300);
  wc::check_required_text("job_id", job == nullptr, tasks[0].job_id, 200);
  if (PG_ARGISNULL(2))
    throw wc::error(wc::sqlstate::null_value_not_allowed, "stage must not be NULL");
  tasks[0].stage = PG_GETARG_INT32(2);
  if (PG_ARGISNULL(4))
    throw wc::error(wc::sqlstate::null_value_not_allowed, "count_remaining must not be NULL");
  const text* worker = PG_NARGS() > 5 ? wp::text_arg_or_null(fcinfo, 5) : nullptr;
  if (worker) wc::check_required_text("worker", false, wp::text_view(worker), 200);

  std::vector<we::Completion> items(1);
  items[0].task = PointerGetDatum(task);
  items[0].job = PointerGetDatum(job);
  items[0].result_null = PG_ARGISNULL(3);
  items[0].result = items[0].result_null ? Datum(0) : PG_GETARG_DATUM(3);

  we::FanIn options;
  options.worker = worker;
  options.batch = false;
  options.count_remaining = PG_GETARG_BOOL(4);
  options.count_by_stage = count_by_stage;
  we::complete(items, tasks, options);

  const we::Completion& out = items[0];
  const bool remaining_known = out.remaining.has_value() || out.stage_complete;
  const int32 remaining = out.stage_complete ? 0 : out.remaining.value_or(0);

  // One result row, materialized in the per-query context.
  wp::pg_call([&] {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Datum values[3] = {BoolGetDatum(out.stage_complete), Int32GetDatum(remaining),
                       PointerGetDatum(job)};
    bool nulls[3] = {false, !remaining_known, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  });
  return Datum(0);
}

}  // namespace

// 1.2: counting by stage.
WF_FUNCTION(workflow_complete_task_and_check_stage_by_stage) {
  return complete_task_and_check_stage(fcinfo, true);
}

// 1.0 and 1.1 (their SQL calls this symbol): a task's own slot.
WF_FUNCTION(workflow_complete_task_and_check_stage) {
  return complete_task_and_check_stage(fcinfo, false);
}
