// workflow.set_updated_at(): native BEFORE INSERT/UPDATE row trigger that
// stamps a timestamptz/timestamp column (default "updated_at") with now().
// With the 'skip_noop' argument an UPDATE that changes no other column keeps
// the old stamp. The column's position is remembered per trigger and checked
// by name on every call, so ALTER TABLE needs no invalidation.
#include "pg/boundary.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/tupmacs.h"
#include "access/xact.h"
#include "executor/tuptable.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <string>

#include "core/audit_rules.hpp"

namespace {

constexpr const char* kTriggerProtocolViolated = "39P01";

struct LastColumn {  // the column found by the previous call
  Oid trigger_oid = InvalidOid;
  int attnum = 0;
};
LastColumn last;

bool names_column(TupleDesc desc, int attnum, std::string_view name) {
  if (attnum < 1 || attnum > desc->natts) return false;
  Form_pg_attribute att = TupleDescAttr(desc, attnum - 1);
  return !att->attisdropped && name == NameStr(att->attname);
}

int find_column(Trigger* trigger, TupleDesc desc, std::string_view name) {
  if (last.trigger_oid == trigger->tgoid && names_column(desc, last.attnum, name))
    return last.attnum;
  for (int i = 1; i <= desc->natts; ++i) {
    if (names_column(desc, i, name)) {
      last.trigger_oid = trigger->tgoid;
      last.attnum = i;
      return i;
    }
  }
  return 0;
}

// True when every column but `skip_attnum` is equal in both tuples.
bool only_stamp_differs(HeapTuple a, HeapTuple b, TupleDesc desc, int skip_attnum) {
  for (int i = 1; i <= desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i - 1);
    if (i == skip_attnum || att->attisdropped) continue;
    bool a_null, b_null;
    Datum av = heap_getattr(a, i, desc, &a_null);
    Datum bv = heap_getattr(b, i, desc, &b_null);
    if (a_null != b_null) return false;
    if (!a_null && !datum_image_eq(av, bv, att->attbyval, att->attlen)) return false;
  }
  return true;
}

// Writes the stamp into the tuple's own bytes when the column holds a stored,
// non-null 8-byte value. The trigger manager hands BEFORE row triggers a
// private, materialized copy of the new row, and returning that same pointer
// spares it storing a rebuilt tuple back into the slot (measured: the
// heap_modify_tuple path costs about as much as the rest of the trigger).
// The slot's cached column value, if deformed, is updated to match.
bool stamp_in_place(HeapTuple tuple, TupleTableSlot* slot, TupleDesc desc, int attnum, Datum stamp) {
  HeapTupleHeader header = tuple->t_data;
  Form_pg_attribute target = TupleDescAttr(desc, attnum - 1);
  bool has_nulls = HeapTupleHasNulls(tuple);
  if (target->attlen != 8 || !target->attbyval || attnum > HeapTupleHeaderGetNatts(header) ||
      (has_nulls && att_isnull(attnum - 1, header->t_bits)))
    return false;
  char* data = reinterpret_cast<char*>(header) + header->t_hoff;
  uint32 off = 0;
  for (int i = 0; i < attnum - 1; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (has_nulls && att_isnull(i, header->t_bits)) continue;
    off = att_align_pointer(off, att->attalign, att->attlen, data + off);
    off = att_addlength_pointer(off, att->attlen, data + off);
  }
  off = att_align_nominal(off, target->attalign);
  store_att_byval(data + off, stamp, 8);
  if (slot != nullptr && slot->tts_nvalid >= attnum) slot->tts_values[attnum - 1] = stamp;
  return true;
}

}  // namespace

using workflow::core::error;

WF_FUNCTION(workflow_set_updated_at) {
  if (!CALLED_AS_TRIGGER(fcinfo))
    throw error(kTriggerProtocolViolated, "workflow.set_updated_at: not called by trigger manager");
  TriggerData* td = reinterpret_cast<TriggerData*>(fcinfo->context);
  TriggerEvent event = td->tg_event;
  if (!TRIGGER_FIRED_BEFORE(event) || !TRIGGER_FIRED_FOR_ROW(event))
    throw error(kTriggerProtocolViolated,
                "workflow.set_updated_at: must be fired BEFORE ... FOR EACH ROW");
  bool is_update = TRIGGER_FIRED_BY_UPDATE(event);
  if (!is_update && !TRIGGER_FIRED_BY_INSERT(event))
    throw error(kTriggerProtocolViolated,
                "workflow.set_updated_at: must be fired for INSERT or UPDATE");

  Trigger* trigger = td->tg_trigger;
  workflow::core::audit::UpdatedAtOptions options =
      workflow::core::audit::parse_updated_at_args(trigger->tgnargs, trigger->tgargs);
  Relation rel = td->tg_relation;
  TupleDesc desc = RelationGetDescr(rel);
  HeapTuple tuple = is_update ? td->tg_newtuple : td->tg_trigtuple;

  int attnum = find_column(trigger, desc, options.column);
  if (attnum == 0)
    throw error("42703", "workflow.set_updated_at: column \"" + std::string(options.column) +
                             "\" of table \"" + RelationGetRelationName(rel) + "\" does not exist");
  Oid type = TupleDescAttr(desc, attnum - 1)->atttypid;
  if (type != TIMESTAMPTZOID && type != TIMESTAMPOID) {
    const char* type_name = workflow::pg::pg_call([&] { return format_type_be(type); });
    throw error("42804", "workflow.set_updated_at: column \"" + std::string(options.column) +
                             "\" must be timestamptz or timestamp, not " + type_name);
  }

  if (is_update && options.skip_noop && only_stamp_differs(td->tg_trigtuple, tuple, desc, attnum))
    return PointerGetDatum(tuple);

  Datum stamp = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());  // now()
  if (type == TIMESTAMPOID) stamp = DirectFunctionCall1(timestamptz_timestamp, stamp);
  TupleTableSlot* slot = is_update ? td->tg_newslot : td->tg_trigslot;
  if (stamp_in_place(tuple, slot, desc, attnum, stamp)) return PointerGetDatum(tuple);
  bool isnull = false;
  return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 1, &attnum, &stamp, &isnull));
}
