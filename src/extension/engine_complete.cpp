// workflow.complete_task_and_check_stage: the fan-in hot path.
//
// 1. UPDATE the task (queued/claimed -> completed); the row lock is held to
//    commit, so each task is counted once.
// 2. If it changed, decrement its slot's `remaining`; if that reached 0,
//    decrement the stage's `pending_slots`; the caller that brings it to 0
//    completes the stage (records completed_by_task, NOTIFY).
//    Lock order task -> slot -> stage, the same as add_tasks and seal_stage.
// 3. Otherwise diagnose: unknown task P0002, wrong stage 22023, dead or
//    cancelled task 55000; an already completed task writes nothing and
//    answers stage_complete = (it is the stage's completer), so a retry after
//    a lost reply does not lose the stage.
// remaining_tasks is the sum of the stage's slot counters read after our
// update: O(slot_count), independent of the stage's size; a snapshot. It
// costs about as much as the rest of the call (bench/RESULTS-engine.md), so
// callers that do not need it pass count_remaining => false and get NULL
// (0 when the stage is complete).
#include "core/engine_ids.hpp"
#include "extension/engine_fan_in_sql.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

#include <string>
#include <string_view>

namespace wp = workflow::pg;
namespace wc = workflow::core;

namespace {

// The task (row lock held to commit: counted once), then its slot.
wp::Statement complete_task{workflow::engine::kCompleteTaskSql,
                            {TEXTOID, TEXTOID, INT4OID, JSONBOID}};

wp::Statement decrement_slot{
    "UPDATE workflow.stage_slots SET remaining = remaining - 1 "
    "WHERE job_id = $1 AND stage = $2 AND slot = $3 RETURNING remaining",
    {TEXTOID, INT4OID, INT4OID}};

wp::Statement decrement_stage{
    "UPDATE workflow.stages SET pending_slots = pending_slots - 1, "
    "completed_by_task = CASE WHEN pending_slots = 1 THEN $3 END, "
    "completed_at = CASE WHEN pending_slots = 1 THEN now() END "
    "WHERE job_id = $1 AND stage = $2 RETURNING pending_slots",
    {TEXTOID, INT4OID, TEXTOID}};

wp::Statement stage_remaining{
    "SELECT coalesce(sum(remaining), 0)::int4 FROM workflow.stage_slots "
    "WHERE job_id = $1 AND stage = $2",
    {TEXTOID, INT4OID}};

wp::Statement lookup_task{workflow::engine::kLookupTaskSql, {TEXTOID, TEXTOID}};

struct Outcome {
  bool stage_complete = false;
  int32 remaining = 0;
  bool remaining_known = true;
};

std::string_view view_of(text* t) { return {VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t)}; }

int32 get_int(uint64 row, int col) {
  bool isnull = false;
  Datum d = wp::column(row, col, &isnull);
  return isnull ? 0 : DatumGetInt32(d);
}

int32 read_remaining(Datum job, Datum stage) {
  Datum args[2] = {job, stage};
  wp::execute(stage_remaining, args, nullptr, false, 1);
  return get_int(0, 1);
}

// The call changed nothing: say why, or answer a repeated completion.
Outcome diagnose(Datum task, Datum job, int32 stage, bool count_remaining,
                 std::string_view task_id, std::string_view job_id) {
  Datum args[2] = {task, job};
  if (wp::execute(lookup_task, args, nullptr, false, 1) == 0)
    throw wc::error(wc::sqlstate::no_data_found,
                    "task " + wc::sql_quote(task_id) + " of job " + wc::sql_quote(job_id) +
                        " not found");
  int32 actual_stage = get_int(0, 1);
  if (actual_stage != stage)
    throw wc::error(wc::sqlstate::invalid_parameter_value,
                    "task " + wc::sql_quote(task_id) + " belongs to stage " +
                        std::to_string(actual_stage) + ", not stage " + std::to_string(stage));
  bool isnull = false;
  std::string status = wp::pg_call([&] {
    return TextDatumGetCString(wp::column(0, 2, &isnull));
  });
  bool is_completer = DatumGetBool(wp::column(0, 3, &isnull));
  if (isnull) is_completer = false;
  if (status != "completed")
    throw wc::error(wc::sqlstate::object_not_in_prerequisite_state,
                    "task " + wc::sql_quote(task_id) + " is " + status + ", it cannot complete");
  Outcome out;
  out.stage_complete = is_completer;
  if (count_remaining)
    out.remaining = read_remaining(job, Int32GetDatum(stage));
  else
    out.remaining_known = is_completer;  // a completed stage has 0 left
  return out;
}

Outcome complete(Datum task, Datum job, int32 stage, Datum result, bool result_null,
                 bool count_remaining, std::string_view task_id, std::string_view job_id) {
  wp::SpiScope spi;
  Datum args[4] = {task, job, Int32GetDatum(stage), result};
  const char nulls[4] = {' ', ' ', ' ', result_null ? 'n' : ' '};
  if (wp::execute(complete_task, args, nulls, false, 1) == 0)
    return diagnose(task, job, stage, count_remaining, task_id, job_id);
  int32 slot = get_int(0, 1);
  Datum slot_args[3] = {job, Int32GetDatum(stage), Int32GetDatum(slot)};
  if (wp::execute(decrement_slot, slot_args, nullptr, false, 1) != 1)
    throw wc::error(wc::sqlstate::internal_error,
                    "the counter slot of task " + wc::sql_quote(task_id) + " is missing");
  int32 slot_remaining = get_int(0, 1);
  Outcome out;
  if (slot_remaining == 0) {
    Datum stage_args[3] = {job, Int32GetDatum(stage), task};
    if (wp::execute(decrement_stage, stage_args, nullptr, false, 1) != 1)
      throw wc::error(wc::sqlstate::internal_error,
                      "stage " + std::to_string(stage) + " of job " + wc::sql_quote(job_id) +
                          " is missing");
    if (get_int(0, 1) == 0) {
      out.stage_complete = true;
      std::string payload = wc::stage_complete_payload(job_id, stage);
      wp::pg_call([&] { Async_Notify("workflow_stage_complete", payload.c_str()); });
    }
  }
  if (out.stage_complete) {
    out.remaining = 0;
  } else if (count_remaining) {
    out.remaining = read_remaining(job, Int32GetDatum(stage));
  } else {
    out.remaining_known = false;
  }
  return out;
}

}  // namespace

WF_FUNCTION(workflow_complete_task_and_check_stage) {
  text* task = PG_ARGISNULL(0) ? nullptr : PG_GETARG_TEXT_PP(0);
  text* job = PG_ARGISNULL(1) ? nullptr : PG_GETARG_TEXT_PP(1);
  std::string_view task_id = task ? view_of(task) : std::string_view{};
  std::string_view job_id = job ? view_of(job) : std::string_view{};
  wc::check_required_text("task_id", task == nullptr, task_id, 300);
  wc::check_required_text("job_id", job == nullptr, job_id, 200);
  if (PG_ARGISNULL(2))
    throw wc::error(wc::sqlstate::null_value_not_allowed, "stage must not be NULL");
  int32 stage = PG_GETARG_INT32(2);
  bool result_null = PG_ARGISNULL(3);
  Datum result = result_null ? Datum(0) : PG_GETARG_DATUM(3);
  if (PG_ARGISNULL(4))
    throw wc::error(wc::sqlstate::null_value_not_allowed, "count_remaining must not be NULL");
  bool count_remaining = PG_GETARG_BOOL(4);

  Outcome out = complete(PointerGetDatum(task), PointerGetDatum(job), stage, result, result_null,
                         count_remaining, task_id, job_id);

  // One result row, materialized in the per-query context.
  wp::pg_call([&] {
    InitMaterializedSRF(fcinfo, 0);
    ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Datum values[3] = {BoolGetDatum(out.stage_complete), Int32GetDatum(out.remaining),
                       PointerGetDatum(job)};
    bool nulls[3] = {false, !out.remaining_known, false};
    tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
  });
  return Datum(0);
}
