// workflow.complete_tasks: many completions (of any jobs and stages) in one
// call, one statement, one transaction. Same fan-in as
// complete_task_and_check_stage (engine_complete.cpp), aggregated:
//
// 1. Check every argument before touching a row (22004/22023).
// 2. UPDATE each task, in (job_id, task_id) order (core/engine_batch.hpp),
//    with a kept plan; a task that does not change is diagnosed exactly as
//    the single call does: unknown P0002, wrong stage 22023, failed or
//    cancelled 55000 -> the whole call fails and nothing is written.
//    An already completed task is a repeat: it writes nothing.
// 3. Decrement each touched slot once, by its count, in (job, stage, slot)
//    order; then each stage once, by its slots that reached 0, in (job,
//    stage) order. The batch that brings a stage to 0 completes it and
//    records one of its tasks as completed_by_task (NOTIFY as usual).
// 4. One row per input position, in input order: stage_complete is true for
//    the task recorded as its stage's completer (now or by an earlier call),
//    so a repeated batch answers the same.
// Lock order task -> slot -> stage, each level in one global order: batches
// and single completes never deadlock with each other.
#include "core/engine_batch.hpp"
#include "core/engine_ids.hpp"
#include "extension/engine_fan_in_sql.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/tuplestore.h"
}

#include <string>
#include <string_view>
#include <vector>

namespace wp = workflow::pg;
namespace wc = workflow::core;

namespace {

constexpr int kMaxBatch = 10000;

wp::Statement complete_task{workflow::engine::kCompleteTaskSql,
                            {TEXTOID, TEXTOID, INT4OID, JSONBOID}};

wp::Statement decrement_slot{
    "UPDATE workflow.stage_slots SET remaining = remaining - $4 "
    "WHERE job_id = $1 AND stage = $2 AND slot = $3 RETURNING remaining",
    {TEXTOID, INT4OID, INT4OID, INT4OID}};

wp::Statement decrement_stage{
    "UPDATE workflow.stages SET pending_slots = pending_slots - $3, "
    "completed_by_task = CASE WHEN pending_slots = $3 THEN $4 END, "
    "completed_at = CASE WHEN pending_slots = $3 THEN now() END "
    "WHERE job_id = $1 AND stage = $2 RETURNING pending_slots",
    {TEXTOID, INT4OID, INT4OID, TEXTOID}};

wp::Statement lookup_task{workflow::engine::kLookupTaskSql, {TEXTOID, TEXTOID}};

struct Completion {
  Datum job;        // text
  Datum task;       // text
  Datum result;     // jsonb, unless result_null
  bool result_null;
  bool stage_complete = false;
};

std::string_view view_of(Datum d) {
  text* t = reinterpret_cast<text*>(DatumGetPointer(d));
  return {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)};
}

int32 get_int(uint64 row, int col) {
  bool isnull = false;
  Datum d = wp::column(row, col, &isnull);
  return isnull ? 0 : DatumGetInt32(d);
}

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

// Step 2 for a task whose UPDATE changed nothing: throws unless it is a
// repeat (already completed in the given stage); answers whether it is its
// stage's recorded completer.
bool diagnose(const Completion& item, const wc::BatchTask& t, std::size_t index) {
  Datum args[2] = {item.task, item.job};
  if (wp::execute(lookup_task, args, nullptr, false, 1) == 0)
    throw wc::error(wc::sqlstate::no_data_found,
                    element_name("task_ids", index) + " " + wc::sql_quote(t.task_id) +
                        " of job " + wc::sql_quote(t.job_id) + " not found");
  int32 actual_stage = get_int(0, 1);
  if (actual_stage != t.stage)
    throw wc::error(wc::sqlstate::invalid_parameter_value,
                    element_name("task_ids", index) + " " + wc::sql_quote(t.task_id) +
                        " belongs to stage " + std::to_string(actual_stage) + ", not stage " +
                        std::to_string(t.stage));
  bool isnull = false;
  std::string status = wp::pg_call([&] { return TextDatumGetCString(wp::column(0, 2, &isnull)); });
  bool is_completer = DatumGetBool(wp::column(0, 3, &isnull));
  if (isnull) is_completer = false;
  if (status != "completed")
    throw wc::error(wc::sqlstate::object_not_in_prerequisite_state,
                    element_name("task_ids", index) + " " + wc::sql_quote(t.task_id) + " is " +
                        status + ", it cannot complete (nothing of the batch was written)");
  return is_completer;
}

void complete_batch(std::vector<Completion>& items, const std::vector<wc::BatchTask>& tasks) {
  const std::vector<std::size_t> order = wc::batch_lock_order(tasks);
  wp::SpiScope spi;

  std::vector<wc::CompletedTask> completed;
  completed.reserve(items.size());
  for (std::size_t i : order) {
    Completion& item = items[i];
    Datum args[4] = {item.task, item.job, Int32GetDatum(tasks[i].stage), item.result};
    const char nulls[4] = {' ', ' ', ' ', item.result_null ? 'n' : ' '};
    if (wp::execute(complete_task, args, nulls, false, 1) == 1)
      completed.push_back({i, get_int(0, 1)});
    else
      item.stage_complete = diagnose(item, tasks[i], i);
  }

  std::vector<wc::SlotDecrement> zeroed;
  for (const wc::SlotDecrement& s : wc::group_by_slot(tasks, completed)) {
    Datum args[4] = {items[s.last_task].job, Int32GetDatum(s.stage), Int32GetDatum(s.slot),
                     Int32GetDatum(s.count)};
    if (wp::execute(decrement_slot, args, nullptr, false, 1) != 1)
      throw wc::error(wc::sqlstate::internal_error,
                      "counter slot " + std::to_string(s.slot) + " of stage " +
                          std::to_string(s.stage) + " of job " + wc::sql_quote(s.job_id) +
                          " is missing");
    if (get_int(0, 1) == 0) zeroed.push_back(s);
  }

  for (const wc::StageDecrement& st : wc::group_by_stage(zeroed)) {
    Completion& completer = items[st.completer];
    Datum args[4] = {completer.job, Int32GetDatum(st.stage), Int32GetDatum(st.zeroed_slots),
                     completer.task};
    if (wp::execute(decrement_stage, args, nullptr, false, 1) != 1)
      throw wc::error(wc::sqlstate::internal_error,
                      "stage " + std::to_string(st.stage) + " of job " + wc::sql_quote(st.job_id) +
                          " is missing");
    if (get_int(0, 1) == 0) {
      completer.stage_complete = true;
      std::string payload = wc::stage_complete_payload(st.job_id, st.stage);
      wp::pg_call([&] { Async_Notify("workflow_stage_complete", payload.c_str()); });
    }
  }
}

}  // namespace

WF_FUNCTION(workflow_complete_tasks) {
  Elements jobs = elements_of(fcinfo, 0, "job_ids", TEXTOID);
  Elements task_ids = elements_of(fcinfo, 1, "task_ids", TEXTOID);
  Elements stages = elements_of(fcinfo, 2, "stages", INT4OID);
  const bool no_results = PG_ARGISNULL(3);
  Elements results = no_results ? Elements{} : elements_of(fcinfo, 3, "results", JSONBOID);

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

  std::vector<Completion> items(n);
  std::vector<wc::BatchTask> tasks(n);
  for (int i = 0; i < n; ++i) {
    Completion& item = items[i];
    item.job = jobs.values[i];
    item.task = task_ids.values[i];
    wc::BatchTask& t = tasks[i];
    if (!jobs.nulls[i]) t.job_id = view_of(item.job);
    if (!task_ids.nulls[i]) t.task_id = view_of(item.task);
    wc::check_required_text(element_name("task_ids", i), task_ids.nulls[i], t.task_id, 300);
    wc::check_required_text(element_name("job_ids", i), jobs.nulls[i], t.job_id, 200);
    if (stages.nulls[i])
      throw wc::error(wc::sqlstate::null_value_not_allowed,
                      element_name("stages", i) + " must not be NULL");
    t.stage = DatumGetInt32(stages.values[i]);
    item.result_null = no_results || results.nulls[i];
    item.result = item.result_null ? Datum(0) : results.values[i];
  }

  complete_batch(items, tasks);

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
