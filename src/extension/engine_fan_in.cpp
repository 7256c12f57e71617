// The engine's one fan-in path (see engine_fan_in.hpp).
#include "extension/engine_fan_in.hpp"
#include "extension/engine_direct.hpp"
#include "extension/engine_slot_sum.hpp"

#include "core/engine_ids.hpp"
#include "pg/datum.hpp"
#include "pg/spi.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/async.h"
#include "utils/timestamp.h"
}

#include <string>

namespace workflow::engine {
namespace {

namespace wp = workflow::pg;
namespace wc = workflow::core;

// Every statement below reads or writes one row by key, and runs with no row
// limit (count 0): a limit stops an UPDATE ... RETURNING after its first row,
// and Citus' executor (a distributed table) then fails SPI's check of the
// row count.

// Queued or claimed -> completed, storing the result; with a worker ($5) only
// a task claimed by it. claimed_by is kept: it names the worker that
// completed the task, so its repeat is recognised (and another worker's
// refused). Returns the task's counter slot, or no row when the task did not
// change (then diagnose() says why).
wp::Statement complete_task{
    "UPDATE workflow.tasks SET status = 'completed', result_data = $4, completed_at = now(), "
    "updated_at = now(), lease_expires_at = NULL "
    "WHERE job_id = $2 AND id = $1 AND stage = $3 AND status IN ('queued', 'claimed') "
    "AND ($5::text IS NULL OR (status = 'claimed' AND claimed_by = $5)) "
    "RETURNING slot",
    {TEXTOID, TEXTOID, INT4OID, JSONBOID, TEXTOID}};

// Why a task did not complete: its stage, its status, whether it is its
// stage's recorded completer, and who claimed it last.
wp::Statement lookup_task{
    "SELECT t.stage, t.status, s.completed_by_task = t.id, t.claimed_by "
    "FROM workflow.tasks t LEFT JOIN workflow.stages s "
    "ON s.job_id = t.job_id AND s.stage = t.stage "
    "WHERE t.job_id = $2 AND t.id = $1",
    {TEXTOID, TEXTOID}};

wp::Statement decrement_slot{
    "UPDATE workflow.stage_slots SET remaining = remaining - $4 "
    "WHERE job_id = $1 AND stage = $2 AND slot = $3 RETURNING remaining",
    {TEXTOID, INT4OID, INT4OID, INT4OID}};

// Counting by stage (1.2), for a stage_slots table the direct path cannot
// serve (engine_direct.hpp): one unit from any counter of the stage that has
// one, from slot $3 on and then from 0; the first form skips counters other
// transactions hold, the second waits (with $3 = 0: in ascending order).
// Two statements, not one UPDATE ... FROM (that SELECT): through a Citus
// coordinator that form updated nothing (recursively planned subquery).
wp::Statement pick_unit_skip_locked{
    "SELECT c.slot FROM workflow.stage_slots c WHERE c.job_id = $1 AND c.stage = $2 "
    "AND c.remaining > 0 ORDER BY c.slot < $3, c.slot LIMIT 1 FOR UPDATE SKIP LOCKED",
    {TEXTOID, INT4OID, INT4OID}};

wp::Statement pick_unit_waiting{
    "SELECT c.slot FROM workflow.stage_slots c WHERE c.job_id = $1 AND c.stage = $2 "
    "AND c.remaining > 0 ORDER BY c.slot < $3, c.slot LIMIT 1 FOR UPDATE",
    {TEXTOID, INT4OID, INT4OID}};

// The picked counter, locked by the pick: remaining > 0.
wp::Statement take_unit{
    "UPDATE workflow.stage_slots SET remaining = remaining - 1 "
    "WHERE job_id = $1 AND stage = $2 AND slot = $3 RETURNING remaining",
    {TEXTOID, INT4OID, INT4OID}};

// $5 is now() (the transaction's start), passed in: Citus refuses
// non-IMMUTABLE functions inside CASE of a distributed UPDATE.
wp::Statement decrement_stage{
    "UPDATE workflow.stages SET pending_slots = pending_slots - $3, "
    "completed_by_task = CASE WHEN pending_slots = $3 THEN $4 END, "
    "completed_at = CASE WHEN pending_slots = $3 THEN $5 END "
    "WHERE job_id = $1 AND stage = $2 RETURNING pending_slots",
    {TEXTOID, INT4OID, INT4OID, TEXTOID, TIMESTAMPTZOID}};

// "task_ids[3] 'x'" in a batch, "task 'x'" for the single call.
std::string subject(const FanIn& options, const wc::BatchTask& t, std::size_t index) {
  return (options.batch ? "task_ids[" + std::to_string(index + 1) + "] " : std::string("task ")) +
         wc::sql_quote(t.task_id);
}

[[noreturn]] void refuse(const FanIn& options, const std::string& why) {
  throw wc::error(wc::sqlstate::object_not_in_prerequisite_state,
                  options.batch ? why + " (nothing of the batch was written)" : why);
}

// Step 2 for a task whose UPDATE changed nothing: throws unless it is a
// repeat; answers whether it is its stage's recorded completer.
bool diagnose(const Completion& item, const wc::BatchTask& t, std::size_t index,
              const FanIn& options, const text* fence) {
  Datum args[2] = {item.task, item.job};
  const std::string who = subject(options, t, index);
  if (wp::execute(lookup_task, args, nullptr, false, 0) == 0)
    throw wc::error(wc::sqlstate::no_data_found,
                    who + " of job " + wc::sql_quote(t.job_id) + " not found");
  const int32 actual_stage = wp::int_column(0, 1);
  if (actual_stage != t.stage)
    throw wc::error(wc::sqlstate::invalid_parameter_value,
                    who + " belongs to stage " + std::to_string(actual_stage) + ", not stage " +
                        std::to_string(t.stage));
  const std::string status = wp::text_column(0, 2);
  const bool is_completer = wp::bool_column(0, 3);
  bool no_claimer = false;
  const std::string claimed_by = wp::text_column(0, 4, &no_claimer);
  if (fence == nullptr) {
    if (status == "completed") return is_completer;
    refuse(options, who + " is " + status + ", it cannot complete");
  }
  const std::string_view worker = wp::text_view(fence);
  const bool ours = !no_claimer && claimed_by == worker;
  if (status == "completed") {
    if (ours) return is_completer;  // our own repeat
    refuse(options, who + " was completed by " +
                        (no_claimer ? std::string("a caller without a worker name")
                                    : "worker " + wc::sql_quote(claimed_by)) +
                        ", not by worker " + wc::sql_quote(worker));
  }
  if (status == "claimed")
    refuse(options, who + " is claimed by worker " + wc::sql_quote(claimed_by) +
                        ", not by worker " + wc::sql_quote(worker) +
                        " (its lease expired and the task was claimed again)");
  if (status == "queued")
    refuse(options, who + " is queued, not claimed by worker " + wc::sql_quote(worker) +
                        " (claim it first; a lease that expired may have been lost)");
  refuse(options, who + " is " + status + ", it cannot complete");
}

// take_units through SQL (see pick_unit_skip_locked): the counters it brought to 0.
// A statement that finds no counter with a unit left runs again (a new
// snapshot under READ COMMITTED: a counter refilled meanwhile); under
// REPEATABLE READ its snapshot cannot see one: 40001.
int32 take_units_sql(Datum job, int32 stage, int32 units, int32 preferred, bool skip_locked) {
  constexpr int kLooks = 100;
  int32 zeroed = 0;
  for (int32 u = 0; u < units; ++u) {
    Datum args[3] = {job, Int32GetDatum(stage), Int32GetDatum(skip_locked ? preferred : 0)};
    bool took = skip_locked && wp::execute(pick_unit_skip_locked, args, nullptr, false, 0) == 1;
    for (int look = 0; !took && look < kLooks; ++look) {
      took = wp::execute(pick_unit_waiting, args, nullptr, false, 0) == 1;
      if (!took && IsolationUsesXactSnapshot())
        throw wc::error(wc::sqlstate::serialization_failure,
                        "could not serialize access due to concurrent update of the counters of stage " +
                            std::to_string(stage) + " of job " +
                            wc::sql_quote(std::string(wp::text_view(job))));
    }
    if (!took)
      throw wc::error(wc::sqlstate::internal_error,
                      "the counters of stage " + std::to_string(stage) + " of job " +
                          wc::sql_quote(std::string(wp::text_view(job))) +
                          " hold fewer unfinished tasks than were completed");
    Datum take[3] = {job, Int32GetDatum(stage), Int32GetDatum(wp::int_column(0, 1))};
    if (wp::execute(take_unit, take, nullptr, false, 0) != 1)
      throw wc::error(wc::sqlstate::internal_error,
                      "a locked counter of stage " + std::to_string(stage) + " of job " +
                          wc::sql_quote(std::string(wp::text_view(job))) + " is missing");
    if (wp::int_column(0, 1) == 0) ++zeroed;
  }
  return zeroed;
}

// Step 1 for one task, 1.2: below the executor where it may (engine_direct.hpp).
bool complete_one(const Completion& item, const wc::BatchTask& t, const text* fence,
                  const FanIn& options, int32* slot) {
  if (options.count_by_stage) {
    namespace d = workflow::engine::direct;
    d::Outcome outcome = wp::pg_call([&] {
      return d::complete_task(item.task, item.job, t.stage, item.result, item.result_null, fence, slot);
    });
    if (outcome != d::kUnavailable) return outcome == d::kDone;
  }
  Datum args[5] = {item.task, item.job, Int32GetDatum(t.stage), item.result, PointerGetDatum(fence)};
  const char nulls[5] = {' ', ' ', ' ', item.result_null ? 'n' : ' ', fence ? ' ' : 'n'};
  if (wp::execute(complete_task, args, nulls, false, 0) != 1) return false;
  *slot = wp::int_column(0, 1);
  return true;
}

// Step 3, 1.2: each stage's units from any of its counters; the stages
// whose counters this brought to 0 (in (job, stage) order).
std::vector<wc::StageDecrement> take_stage_units(std::vector<Completion>& items,
                                                 const std::vector<wc::BatchTask>& tasks,
                                                 const std::vector<wc::CompletedTask>& completed,
                                                 const FanIn& options) {
  namespace d = workflow::engine::direct;
  std::vector<wc::StageDecrement> stages;
  for (const wc::StageUnits& st : wc::group_units_by_stage(tasks, completed)) {
    const Datum job = items[st.last_task].job;
    const bool skip_locked = !options.batch;  // a batch waits in ascending order
    int32 zeroed = 0, sum = -1;
    int32* count = options.count_remaining ? &sum : nullptr;
    d::Outcome outcome = wp::pg_call([&] {
      return d::take_units(job, st.stage, st.units, st.preferred_slot, skip_locked, &zeroed, count);
    });
    if (outcome == d::kUnavailable) {
      zeroed = take_units_sql(job, st.stage, st.units, st.preferred_slot, skip_locked);
      sum = -1;
    }
    if (zeroed > 0) stages.push_back({st.job_id, st.stage, zeroed, st.last_task});
    if (options.count_remaining)
      items[st.last_task].remaining = sum >= 0 ? sum : stage_remaining(job, st.stage);
  }
  return stages;
}

// Step 3, 1.0 and 1.1: each touched slot (task_index % slot_count) by its
// count; the stages whose slots this brought to 0.
std::vector<wc::StageDecrement> decrement_task_slots(std::vector<Completion>& items,
                                                     const std::vector<wc::BatchTask>& tasks,
                                                     const std::vector<wc::CompletedTask>& completed,
                                                     const FanIn& options) {
  std::vector<wc::SlotDecrement> zeroed;
  for (const wc::SlotDecrement& s : wc::group_by_slot(tasks, completed)) {
    Datum args[4] = {items[s.last_task].job, Int32GetDatum(s.stage), Int32GetDatum(s.slot),
                     Int32GetDatum(s.count)};
    if (wp::execute(decrement_slot, args, nullptr, false, 0) != 1)
      throw wc::error(wc::sqlstate::internal_error,
                      "counter slot " + std::to_string(s.slot) + " of stage " +
                          std::to_string(s.stage) + " of job " + wc::sql_quote(s.job_id) +
                          " is missing");
    if (wp::int_column(0, 1) == 0) zeroed.push_back(s);
    if (options.count_remaining)
      items[s.last_task].remaining = stage_remaining(items[s.last_task].job, s.stage);
  }
  return wc::group_by_stage(zeroed);
}

}  // namespace

void complete(std::vector<Completion>& items, const std::vector<wc::BatchTask>& tasks,
              const FanIn& options) {
  const std::vector<std::size_t> order = wc::batch_lock_order(tasks);
  wp::SpiScope spi;

  std::vector<wc::CompletedTask> completed;
  completed.reserve(items.size());
  std::vector<std::size_t> repeats;
  for (std::size_t i : order) {
    Completion& item = items[i];
    int32 slot = 0;
    const text* fence = item.worker ? item.worker : options.worker;
    if (complete_one(item, tasks[i], fence, options, &slot)) {
      completed.push_back({i, slot});
    } else {
      item.stage_complete = diagnose(item, tasks[i], i, options, fence);
      repeats.push_back(i);
    }
  }

  const std::vector<wc::StageDecrement> zeroed_stages =
      options.count_by_stage ? take_stage_units(items, tasks, completed, options)
                             : decrement_task_slots(items, tasks, completed, options);
  for (const wc::StageDecrement& st : zeroed_stages) {
    Completion& completer = items[st.completer];
    Datum args[5] = {completer.job, Int32GetDatum(st.stage), Int32GetDatum(st.zeroed_slots),
                     completer.task, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp())};
    if (wp::execute(decrement_stage, args, nullptr, false, 0) != 1)
      throw wc::error(wc::sqlstate::internal_error,
                      "stage " + std::to_string(st.stage) + " of job " + wc::sql_quote(st.job_id) +
                          " is missing");
    if (wp::int_column(0, 1) == 0) {
      completer.stage_complete = true;
      completer.remaining = 0;
      std::string payload = wc::stage_complete_payload(st.job_id, st.stage);
      wp::pg_call([&] { Async_Notify("workflow_stage_complete", payload.c_str()); });
    }
  }

  if (!options.count_remaining) return;
  for (std::size_t i : repeats) {
    if (items[i].stage_complete) {
      items[i].remaining = 0;  // a complete stage has nothing left
      continue;
    }
    items[i].remaining = stage_remaining(items[i].job, tasks[i].stage);
  }
}

}  // namespace workflow::engine
