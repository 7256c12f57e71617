// Batched writes to workflow.audit_log (see audit_writer.hpp).
#include "extension/audit_writer.hpp"

extern "C" {
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_sequence.h"
#include "commands/sequence.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
}

#include <cstring>
#include <string_view>

namespace workflow::audit {
namespace {

// Columns of workflow.audit_log, in table order (src/sql/20_audit_log.sql).
// A 1.0 log (before ALTER EXTENSION UPDATE) ends at changed_at.
enum LogColumn {
  kId, kTableId, kSchemaName, kTableName, kOperation, kRowKey, kOldValues, kNewValues,
  kActor, kTxid, kChangedAt, kLogColumns10, kSessionUserName = kLogColumns10, kCurrentUserName,
  kLogColumns
};

void flush(LogWriter* w) {
  if (w->pending == 0) return;
  table_multi_insert(w->log, w->slots, w->pending, w->cid, 0, w->bulk);
  for (int i = 0; i < w->pending; ++i) {
    ExecInsertIndexTuples(w->result_rel, w->slots[i], w->estate, false, false, nullptr, NIL);
    ResetPerTupleExprContext(w->estate);
    ExecClearTuple(w->slots[i]);
  }
  w->pending = 0;
  MemoryContextReset(w->batch_context);
}

// A role's name as a name datum; a role dropped meanwhile by another
// session is written as its OID ("#16384") rather than failing the write.
Datum role_name(Oid role) {
  Name name = static_cast<Name>(palloc0(NAMEDATALEN));
  const char* found = GetUserNameFromId(role, true);
  if (found != nullptr)
    namestrcpy(name, found);
  else
    snprintf(NameStr(*name), NAMEDATALEN, "#%u", role);
  return NameGetDatum(name);
}

// The identities: the claimed actor (a setting anyone may SET) and the two
// the server knows. Inside a SECURITY DEFINER function the current user is
// the definer, the session user still the caller.
void statement_values(LogWriter* w) {
  Oid session_user = GetSessionUserId();
  Oid current_user = GetUserId();
  MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);
  w->session_user_name = role_name(session_user);
  w->current_user_name =
      current_user == session_user ? w->session_user_name : role_name(current_user);
  const char* actor = actor_setting();
  if (actor[0] == '\0') actor = NameStr(*DatumGetName(w->session_user_name));
  w->actor = PointerGetDatum(cstring_to_text(actor));
  MemoryContextSwitchTo(old);
  w->txid = Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId())));
  w->changed_at = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
  w->have_statement_values = true;
}

int64 sequence_increment(Oid sequence) {
  HeapTuple tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(sequence));
  if (!HeapTupleIsValid(tuple)) return 0;
  int64 increment = reinterpret_cast<Form_pg_sequence>(GETSTRUCT(tuple))->seqincrement;
  ReleaseSysCache(tuple);
  return increment;
}

// One nextval per kIdBlock log rows (per trigger call at least).
int64 next_log_id(LogWriter* w) {
  if (w->ids_left == 0) {
    w->next_id = nextval_internal(w->sequence, false);
    w->ids_left = kIdBlock;
  }
  --w->ids_left;
  return w->next_id++;
}

}  // namespace

void writer_open(LogWriter* w) {
  memset(w, 0, sizeof(*w));
  Oid schema = get_namespace_oid("workflow", false);
  Oid log_oid = get_relname_relid("audit_log", schema);
  w->sequence = get_relname_relid("audit_log_id_seq", schema);
  if (!OidIsValid(log_oid) || !OidIsValid(w->sequence))
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("workflow.audit_log or its sequence is missing")));
  w->log = table_open(log_oid, RowExclusiveLock);
  w->natts = RelationGetDescr(w->log)->natts;
  if ((w->natts != kLogColumns && w->natts != kLogColumns10) ||
      w->log->rd_rel->relkind != RELKIND_RELATION || sequence_increment(w->sequence) != kIdBlock)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("workflow.audit_log does not have the shape this library writes"),
                    errhint("Update the workflow extension to the library's version.")));
  w->estate = CreateExecutorState();
  w->result_rel = makeNode(ResultRelInfo);
  InitResultRelInfo(w->result_rel, w->log, 1, nullptr, 0);
  ExecOpenIndices(w->result_rel, false);
  w->bulk = GetBulkInsertState();
  w->cid = GetCurrentCommandId(true);
  w->batch_context = AllocSetContextCreate(CurrentMemoryContext, "workflow audit batch",
                                           ALLOCSET_DEFAULT_SIZES);
}

void writer_add(LogWriter* w, const RelationInfo* info, core::audit::Operation op, Datum key,
                bool key_null, Datum old_values, bool old_null, Datum new_values, bool new_null) {
  if (!w->have_statement_values) statement_values(w);
  TupleTableSlot*& slot = w->slots[w->pending];
  if (slot == nullptr) {
    MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);
    slot = table_slot_create(w->log, nullptr);
    MemoryContextSwitchTo(old);
  }
  ExecClearTuple(slot);
  Datum* values = slot->tts_values;
  bool* nulls = slot->tts_isnull;
  std::string_view op_name = core::audit::operation_name(op);
  memset(nulls, 0, sizeof(bool) * w->natts);
  values[kId] = Int64GetDatum(next_log_id(w));
  values[kTableId] = Int32GetDatum(info->table_id);
  values[kSchemaName] = info->schema_name;
  values[kTableName] = info->table_name;
  values[kOperation] = PointerGetDatum(cstring_to_text_with_len(op_name.data(), op_name.size()));
  values[kRowKey] = key;
  nulls[kRowKey] = key_null;
  values[kOldValues] = old_values;
  nulls[kOldValues] = old_null;
  values[kNewValues] = new_values;
  nulls[kNewValues] = new_null;
  values[kActor] = w->actor;
  values[kTxid] = w->txid;
  values[kChangedAt] = w->changed_at;
  if (w->natts == kLogColumns) {
    values[kSessionUserName] = w->session_user_name;
    values[kCurrentUserName] = w->current_user_name;
  }
  ExecStoreVirtualTuple(slot);
  if (++w->pending == kBatchRows) flush(w);
}

void writer_close(LogWriter* w) {
  flush(w);
  for (TupleTableSlot* slot : w->slots)
    if (slot != nullptr) ExecDropSingleTupleTableSlot(slot);
  ExecCloseIndices(w->result_rel);
  FreeBulkInsertState(w->bulk);
  FreeExecutorState(w->estate);
  table_close(w->log, NoLock);
  MemoryContextDelete(w->batch_context);
}

}  // namespace workflow::audit
