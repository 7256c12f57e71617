// workflow.audit_trigger(): the native row-audit trigger.
//
// Statement level (what enable_audit attaches): AFTER INSERT / UPDATE / DELETE
// with transition tables, so one call per statement writes every log row in
// batches. Row level (enable_audit(..., statement_level => false)): one call
// per row. AFTER TRUNCATE (statement level) records one TRUNCATE event.
// UPDATE logs only the changed, non-excluded columns and nothing for a no-op.
#include "pg/boundary.hpp"
#include "pg/spi_as_role.hpp"

extern "C" {
#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"
}

#include <cstring>

#include "core/audit_rules.hpp"
#include "extension/audit_cache.hpp"
#include "extension/audit_deferred.hpp"
#include "extension/audit_jsonb.hpp"
#include "extension/audit_writer.hpp"

namespace workflow::audit {
namespace {

using core::audit::Operation;
constexpr const char* kTriggerProtocolViolated = "39P01";

bool same_value(const ColumnInfo& col, Datum a, Datum b) {
  if (col.typbyval) return a == b;
  if (col.typlen == -1) {
    // Cheap check first: unchanged columns usually carry identical bytes
    // (including the same TOAST pointer); otherwise compare detoasted images.
    const varlena* va = reinterpret_cast<const varlena*>(DatumGetPointer(a));
    const varlena* vb = reinterpret_cast<const varlena*>(DatumGetPointer(b));
    Size la = VARSIZE_ANY(va);
    if (la == VARSIZE_ANY(vb) && VARATT_IS_EXTENDED(va) == VARATT_IS_EXTENDED(vb) &&
        memcmp(va, vb, la) == 0)
      return true;
  }
  return datum_image_eq(a, b, col.typbyval, col.typlen);
}

// While a restored extension table is reloaded (restore_pending), a row
// whose key the restored log already shows as existing is the restore's copy
// of it: its INSERT is in the log already. As the log's owner.
bool key_has_live_history(const LogWriter* w, const RelationInfo* info, Datum key) {
  bool live = false;
  workflow::pg::spi_as_role(w->log->rd_rel->relowner, [&] {
    Oid types[2] = {INT4OID, JSONBOID};
    Datum values[2] = {Int32GetDatum(info->table_id), key};
    int rc = SPI_execute_with_args(
        "SELECT h.operation IN ('INSERT', 'UPDATE') FROM ("
        " SELECT l.id, l.operation FROM workflow.audit_log l"
        "  WHERE jsonb_hash_extended(l.row_key, l.table_id::bigint) = jsonb_hash_extended($2, $1::bigint)"
        "    AND l.table_id = $1 AND l.row_key = $2"
        " UNION ALL"
        " SELECT l.id, l.operation FROM workflow.audit_log l WHERE l.table_id = $1 AND l.row_key IS NULL"
        ") h ORDER BY h.id DESC LIMIT 1",
        2, types, values, nullptr, true, 1);
    if (rc == SPI_OK_SELECT && SPI_processed == 1) {
      bool isnull;
      Datum d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
      live = !isnull && DatumGetBool(d);
    }
  });
  return live;
}

// A statement-level DELETE waits for the end of the statement when foreign
// key actions ran in it (defer_cascaded_delete).
void log_whole_row(LogWriter* w, const RelationInfo* info, Operation op, const Datum* values,
                   const bool* isnull, bool statement_level = false) {
  MemoryContext old = MemoryContextSwitchTo(w->batch_context);
  Datum key = row_object(info, values, isnull, Pick::key);
  if (op == Operation::insert && info->restore_pending && key_has_live_history(w, info, key)) {
    MemoryContextSwitchTo(old);
    return;
  }
  Datum row = row_object(info, values, isnull, Pick::all_logged);
  if (op == Operation::insert)
    writer_add(w, info, op, key, false, 0, true, row, false);
  else if (!(statement_level && defer_cascaded_delete(info, key, row)))
    writer_add(w, info, op, key, false, row, false, 0, true);
  MemoryContextSwitchTo(old);
}

bool column_changed(const ColumnInfo& col, Datum a, bool a_null, Datum b, bool b_null) {
  if (a_null || b_null) return a_null != b_null;
  return !same_value(col, a, b);
}

bool key_changed(const RelationInfo* info, const Datum* old_values, const bool* old_null,
                 const Datum* new_values, const bool* new_null) {
  for (int i = 0; i < info->natts; ++i)
    if (info->columns[i].is_key &&
        column_changed(info->columns[i], old_values[i], old_null[i], new_values[i], new_null[i]))
      return true;
  return false;
}

// Which log rows an UPDATE writes. A change of primary key is logged under
// both keys: under the old key the changed columns (the row "moves away"),
// under the new key the changed columns' old values and the whole new row
// (its history there starts complete), so row_as_of is right for both keys.
enum class UpdateEntry { under_old_key, under_new_key };

// Logs the changed, non-excluded columns; nothing when there are none.
// Returns whether the primary key changed. With `defer`, an entry under the
// new key waits for the end of the statement (audit_deferred.hpp).
bool log_update(LogWriter* w, const RelationInfo* info, const Datum* old_values,
                const bool* old_null, const Datum* new_values, const bool* new_null,
                UpdateEntry entry, bool defer = false) {
  int first_changed = -1;
  for (int i = 0; i < info->natts && first_changed < 0; ++i) {
    const ColumnInfo& col = info->columns[i];
    if (!col.skip && column_changed(col, old_values[i], old_null[i], new_values[i], new_null[i]))
      first_changed = i;
  }
  if (first_changed < 0) return false;
  const bool moved = key_changed(info, old_values, old_null, new_values, new_null);
  if (entry == UpdateEntry::under_new_key && !moved) return false;

  MemoryContext old = MemoryContextSwitchTo(w->batch_context);
  ObjectBuilder before(info->natts - first_changed);
  ObjectBuilder after(info->natts - first_changed);
  for (int i = first_changed; i < info->natts; ++i) {
    const ColumnInfo& col = info->columns[i];
    if (col.skip || !column_changed(col, old_values[i], old_null[i], new_values[i], new_null[i]))
      continue;
    before.add(col, old_values[i], old_null[i]);
    after.add(col, new_values[i], new_null[i]);
  }
  Datum old_diff = before.finish();
  Datum new_diff = after.finish();
  if (entry == UpdateEntry::under_old_key) {
    writer_add(w, info, Operation::update, row_object(info, old_values, old_null, Pick::key),
               false, old_diff, false, new_diff, false);
  } else {
    Datum key = row_object(info, new_values, new_null, Pick::key);
    Datum row = row_object(info, new_values, new_null, Pick::all_logged);
    if (!(defer && defer_new_key_entry(info, key, old_diff, row)))
      writer_add(w, info, Operation::update, key, false, old_diff, false, row, false);
  }
  MemoryContextSwitchTo(old);
  return moved;
}

// Positions a private read pointer of a transition table at its start, so
// other triggers reading the same tuplestore are not disturbed.
void rewind_transition_table(Tuplestorestate* table) {
  int pointer = tuplestore_alloc_read_pointer(table, EXEC_FLAG_REWIND);
  tuplestore_select_read_pointer(table, pointer);
  tuplestore_rescan(table);
}

// One pass over the transition tables. For UPDATE, entry picks which log
// rows are written; returns whether any updated row changed its key.
bool log_transition_tables(LogWriter* w, const RelationInfo* info, Operation op,
                           TriggerData* td, UpdateEntry entry) {
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  Tuplestorestate* old_table = td->tg_oldtable;
  Tuplestorestate* new_table = td->tg_newtable;
  TupleTableSlot* old_slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
  TupleTableSlot* new_slot = MakeSingleTupleTableSlot(desc, &TTSOpsMinimalTuple);
  if (old_table) rewind_transition_table(old_table);
  if (new_table) rewind_transition_table(new_table);
  bool any_moved = false;
  for (;;) {
    bool have_old = old_table && tuplestore_gettupleslot(old_table, true, false, old_slot);
    bool have_new = new_table && tuplestore_gettupleslot(new_table, true, false, new_slot);
    if (!have_old && !have_new) break;
    if (have_old) slot_getallattrs(old_slot);
    if (have_new) slot_getallattrs(new_slot);
    if (op == Operation::update) {
      // Both tables get one tuple per updated row, in the same order.
      if (!have_old || !have_new) elog(ERROR, "workflow audit: transition tables out of step");
      any_moved |= log_update(w, info, old_slot->tts_values, old_slot->tts_isnull,
                              new_slot->tts_values, new_slot->tts_isnull, entry);
    } else if (have_new) {
      log_whole_row(w, info, op, new_slot->tts_values, new_slot->tts_isnull);
    } else {
      log_whole_row(w, info, op, old_slot->tts_values, old_slot->tts_isnull, true);
    }
  }
  if (old_table) tuplestore_select_read_pointer(old_table, 0);
  if (new_table) tuplestore_select_read_pointer(new_table, 0);
  ExecDropSingleTupleTableSlot(old_slot);
  ExecDropSingleTupleTableSlot(new_slot);
  return any_moved;
}

// Rows that changed their key are logged under their new keys in a second
// pass, after every row's entry under its old key: in `SET id = id + 1` the
// row that moves away from key 2 is logged before the row that moves into it.
void log_statement(LogWriter* w, const RelationInfo* info, Operation op, TriggerData* td) {
  if (log_transition_tables(w, info, op, td, UpdateEntry::under_old_key))
    log_transition_tables(w, info, op, td, UpdateEntry::under_new_key);
}

void log_row(LogWriter* w, const RelationInfo* info, Operation op, TriggerData* td) {
  TupleDesc desc = RelationGetDescr(td->tg_relation);
  Datum* a_values = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
  bool* a_null = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
  heap_deform_tuple(td->tg_trigtuple, desc, a_values, a_null);
  if (op == Operation::update) {
    Datum* b_values = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
    bool* b_null = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
    heap_deform_tuple(td->tg_newtuple, desc, b_values, b_null);
    // Under the new key after every row's entry under its old key: at the
    // end of the statement (the rows' triggers fire one by one).
    if (log_update(w, info, a_values, a_null, b_values, b_null, UpdateEntry::under_old_key))
      log_update(w, info, a_values, a_null, b_values, b_null, UpdateEntry::under_new_key, true);
  } else {
    log_whole_row(w, info, op, a_values, a_null);
  }
}

Operation operation_of(TriggerEvent event) {
  if (TRIGGER_FIRED_BY_INSERT(event)) return Operation::insert;
  if (TRIGGER_FIRED_BY_UPDATE(event)) return Operation::update;
  if (TRIGGER_FIRED_BY_DELETE(event)) return Operation::remove;
  return Operation::truncate;
}

}  // namespace
}  // namespace workflow::audit

using workflow::core::error;
using workflow::core::audit::Operation;
using namespace workflow::audit;

WF_FUNCTION(workflow_audit_trigger) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw error(kTriggerProtocolViolated, "workflow.audit_trigger: not called by trigger manager",
                {}, "Attach it with workflow.enable_audit(table).");
  TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  TriggerEvent event = td->tg_event;
  if (!TRIGGER_FIRED_AFTER(event))
    throw error(kTriggerProtocolViolated, "workflow.audit_trigger: must be fired AFTER the change");
  Operation op = operation_of(event);
  bool row_level = TRIGGER_FIRED_FOR_ROW(event);
  if (!row_level && op != Operation::truncate) {
    bool needs_old = op != Operation::insert, needs_new = op != Operation::remove;
    if ((needs_old && td->tg_oldtable == nullptr) || (needs_new && td->tg_newtable == nullptr))
      throw error(kTriggerProtocolViolated,
                  "workflow.audit_trigger: a statement-level trigger needs its transition tables",
                  {}, "Attach it with workflow.enable_audit(table).");
  }

  // Open the log first: taking its locks may process invalidations, which
  // is harmless before the metadata is in hand.
  LogWriter writer;
  writer_open(&writer);
  RelationInfo* info = acquire(td->tg_trigger, td->tg_relation);
  // Normal use of a restored extension table has begun.
  if (info->restore_pending && op != Operation::insert)
    clear_restore_pending(info, writer.log->rd_rel->relowner);
  if (op == Operation::truncate) {
    writer_add(&writer, info, op, 0, true, 0, true, 0, true);
  } else if (row_level) {
    log_row(&writer, info, op, td);
  } else {
    log_statement(&writer, info, op, td);
  }
  writer_close(&writer);
  release(info);
  return PointerGetDatum(nullptr);
}
