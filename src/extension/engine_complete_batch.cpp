// workflow.complete_tasks: many completions (of any jobs and stages) in one
// call, one statement, one transaction, through the engine's one fan-in path
// (engine_fan_in.hpp):
//
// 1. Check every argument before touching a row (22004/22023).
// 2. Complete the batch (engine::complete): all or nothing; a repeat writes
//    nothing; with `worker` only tasks claimed by that worker complete, and
//    any task another worker holds or finished fails the whole call (55000).
// 3. One row per input position, in input order: stage_complete is true for
//    the task recorded as its stage's completer (now or by an earlier call),
//    so a repeated batch answers the same.
#include "core/engine_batch.hpp"
#include "core/engine_ids.hpp"
#include "extension/engine_fan_in.hpp"
#include "pg/datum.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
}

#include <string>
#include <vector>

namespace wp = workflow::pg;
namespace wc = workflow::core;
namespace we = workflow::engine;

namespace {

constexpr int kMaxBatch = 10000;

// The elements of a 1-D array argument (elements in the call's memory).
struct Elements {
  Datum* values = nullptr;
  bool* nulls = nullptr;
  int count = 0;
};

Elements elements_of(FunctionCallInfo fcinfo, int arg, const char* name, Oid elem_type) {
  if (PG_ARGISNULL(arg))
    throw wc::error(wc::sqlstate::null_value_not_allowed, std::string(name) + " must not be NULL");
  ArrayType* array = wp::pg_call([&] { return PG_GETARG_ARRAYTYPE_P(arg); });
  if (ARR_NDIM(array) > 1)
    throw wc::error(wc::sqlstate::invalid_parameter_value,
                    std::string(name) + " must be a one-dimensional array");
  Elements e;
  wp::pg_call([&] {
    int16 typlen;
    bool typbyval;
    char typalign;
    get_typlenbyvalalign(elem_type, &typlen, &typbyval, &typalign);
    deconstruct_array(array, elem_type, typlen, typbyval, typalign, &e.values, &e.nulls,
                      &e.count);
  });
  return e;
}

void check_length(const char* name, int count, int expected) {
  if (count != expected)
    throw wc::error(wc::sqlstate::invalid_parameter_value,
                    std::string(name) + " has " + std::to_string(count) +
                        " elements, task_ids has " + std::to_string(expected) +
                        ": the arrays must have the same length");
}

std::string element_name(const char* array, std::size_t i) {
  return std::string(array) + "[" + std::to_string(i + 1) + "]";
}

// The call, for either way of counting (engine_fan_in.hpp, FanIn::count_by_stage).
// Argument 5 is one worker name for the batch (complete_tasks) or, with
// workers_per_element, an array of one per element (complete_claimed_tasks:
// the claims of several worker loops of one process, completed in one call).
Datum complete_tasks(FunctionCallInfo fcinfo, bool count_by_stage, bool workers_per_element = false) {
  Elements jobs = elements_of(fcinfo, 0, "job_ids", TEXTOID);
  Elements task_ids = elements_of(fcinfo, 1, "task_ids", TEXTOID);
  Elements stages = elements_of(fcinfo, 2, "stages", INT4OID);
  const bool no_results = PG_ARGISNULL(3);
  Elements results = no_results ? Elements{} : elements_of(fcinfo, 3, "results", JSONBOID);
  const text* worker = nullptr;
  Elements workers;
  if (workers_per_element) {
    workers = elements_of(fcinfo, 4, "workers", TEXTOID);
  } else {
    worker = PG_NARGS() > 4 ? wp::text_arg_or_null(fcinfo, 4) : nullptr;
    if (worker) wc::check_required_text("worker", false, wp::text_view(worker), 200);
  }

  const int n = task_ids.count;
  if (n == 0)
    throw wc::error(wc::sqlstate::invalid_parameter_value, "task_ids must not be empty");
  if (n > kMaxBatch)
    throw wc::error(wc::sqlstate::invalid_parameter_value,
                    "the batch has " + std::to_string(n) + " tasks, at most " +
                        std::to_string(kMaxBatch));
  check_length("job_ids", jobs.count, n);
  check_length("stages", stages.count, n);
  if (!no_results) check_length("results", results.count, n);
  if (workers_per_element) check_length("workers", workers.count, n);

  std::vector<we::Completion> items(n);
  std::vector<wc::BatchTask> tasks(n);
  for (int i = 0; i < n; ++i) {
    we::Completion& item = items[i];
    item.job = jobs.values[i];
    item.task = task_ids.values[i];
    wc::BatchTask& t = tasks[i];
    if (!jobs.nulls[i]) t.job_id = wp::text_view(item.job);
    if (!task_ids.nulls[i]) t.task_id = wp::text_view(item.task);
    wc::check_required_text(element_name("task_ids", i), task_ids.nulls[i], t.task_id, 300);
    wc::check_required_text(element_name("job_ids", i), jobs.nulls[i], t.job_id, 200);
    if (stages.nulls[i])
      throw wc::error(wc::sqlstate::null_value_not_allowed,
                      element_name("stages", i) + " must not be NULL");
    t.stage = DatumGetInt32(stages.values[i]);
    item.result_null = no_results || results.nulls[i];
    item.result = item.result_null ? Datum(0) : results.values[i];
    if (workers_per_element) {
      const bool null = workers.nulls[i];
      if (!null) item.worker = reinterpret_cast<const text*>(DatumGetPointer(workers.values[i]));
      wc::check_required_text(element_name("workers", i), null,
                              null ? std::string_view() : wp::text_view(item.worker), 200);
    }
  }

  we::FanIn options;
  options.worker = worker;
  options.batch = true;
  options.count_by_stage = count_by_stage;
  we::complete(items, tasks, options);

  // One row per input position, materialized in the per-query context.
  wp::pg_call([&] {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (int i = 0; i < n; ++i) {
      Datum values[4] = {items[i].job, items[i].task, Int32GetDatum(tasks[i].stage),
                         BoolGetDatum(items[i].stage_complete)};
      bool nulls[4] = {false, false, false, false};
      tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
  });
  return Datum(0);
}

}  // namespace

// 1.2: counting by stage.
WF_FUNCTION(workflow_complete_tasks_by_stage) { return complete_tasks(fcinfo, true); }

// 1.4: one worker name per element.
WF_FUNCTION(workflow_complete_claimed_tasks) { return complete_tasks(fcinfo, true, true); }

// 1.0 and 1.1 (their SQL calls this symbol): a task's own slot.
WF_FUNCTION(workflow_complete_tasks) { return complete_tasks(fcinfo, false); }
