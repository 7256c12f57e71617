// Batched writes to workflow.audit_log (see audit_writer.hpp).
#include "extension/audit_writer.hpp"
#include "pg/compat.hpp"

extern "C" {
#include "access/genam.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/catalog.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_sequence.h"
#include "nodes/nodeFuncs.h"
#include "utils/inval.h"
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

// What every trigger call would otherwise look up again: the log's and its
// sequence's OIDs and, per index of the log, its IndexInfo with the index
// expressions and predicate compiled (ExecOpenIndices builds and the first
// insert compiles them per call: a third of a single-row statement's audit
// cost). Kept in a context of its own, dropped by any relcache invalidation
// of the log or its indexes and rebuilt on next use.
struct LogCache {
  bool valid;
  MemoryContext context;
  Oid log_oid;
  Oid sequence_oid;
  int nindexes;
  Oid* index_oids;
  IndexInfo** index_infos;
  bool* compiled;  // expression states kept (built-in functions only)
  bool all_compiled;
  bool sequence_ok;  // the sequence's INCREMENT BY is kIdBlock (checked on build)
};
LogCache log_cache{};

// The executor state of a writer, kept for the backend's next trigger call
// instead of made and freed by each (about a fifth of what the trigger
// costs a single-row statement): an EState, the log's ResultRelInfo, the
// slots (on a copy of the log's descriptor, so no resource owner pins it
// between statements), the batch context, and a statement context reset by
// each use. One per backend: a nested writer (a trigger call while another
// is open) makes its own, as before. Dropped with the log cache (a relcache
// invalidation of the log, its sequence or an index) and rebuilt on next
// use; an error leaves it marked in use until the transaction ends, and its
// next user resets what the failed one left.
struct KeptState {
  bool valid;
  bool in_use;
  MemoryContext context;  // under TopMemoryContext: everything below
  Oid log_oid;
  TupleDesc desc;
  const TupleTableSlotOps* slot_ops;
  EState* estate;
  ResultRelInfo* result_rel;
  MemoryContext statement_context;
  MemoryContext batch_context;
  int nslots;  // slots[0 .. nslots - 1] made so far
  TupleTableSlot* slots[kBatchRows];
};
KeptState kept{};

void invalidate_log_cache(Datum, Oid relid) {
  if (!log_cache.valid) return;
  bool hit = relid == InvalidOid || relid == log_cache.log_oid || relid == log_cache.sequence_oid;
  for (int i = 0; !hit && i < log_cache.nindexes; ++i) hit = log_cache.index_oids[i] == relid;
  if (hit) log_cache.valid = kept.valid = false;  // freed on next use, never inside the callback
}

void invalidate_log_cache_syscache(Datum, int, uint32) { log_cache.valid = kept.valid = false; }

// Writers open with the cached IndexInfos. A rebuild while one is open (a
// nested trigger call after an invalidation) would free what it uses: that
// writer opens its indexes the executor's way instead. An error leaves the
// count high until the transaction ends, when no writer is open.
int log_cache_users = 0;

void on_xact_end(XactEvent event, void*) {
  if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT || event == XACT_EVENT_PREPARE ||
      event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT) {
    log_cache_users = 0;
    kept.in_use = false;
  }
}

bool not_builtin(Oid func, void*) { return func >= FirstGenbkiObjectId; }

bool calls_non_builtin(Node* node, void* context) {
  if (node == nullptr) return false;
  if (check_functions_in_node(node, not_builtin, context)) return true;
  return expression_tree_walker(node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(calls_non_builtin)),
                                context);
}

// Expression states may be kept across statements when they only call
// built-in functions (none of which keeps per-query state in fn_extra).
bool keepable(IndexInfo* info) {
  return !calls_non_builtin(reinterpret_cast<Node*>(info->ii_Expressions), nullptr) &&
         !calls_non_builtin(reinterpret_cast<Node*>(info->ii_Predicate), nullptr);
}

int64 sequence_increment(Oid sequence) {
  HeapTuple tuple = SearchSysCache1(SEQRELID, ObjectIdGetDatum(sequence));
  if (!HeapTupleIsValid(tuple)) return 0;
  int64 increment = reinterpret_cast<Form_pg_sequence>(GETSTRUCT(tuple))->seqincrement;
  ReleaseSysCache(tuple);
  return increment;
}

void build_log_cache(Relation log, Oid sequence) {
  if (log_cache.context != nullptr) MemoryContextDelete(log_cache.context);
  log_cache = LogCache{};
  MemoryContext context = AllocSetContextCreate(CacheMemoryContext, "workflow audit log cache",
                                                ALLOCSET_SMALL_SIZES);
  log_cache.context = context;
  MemoryContext old = MemoryContextSwitchTo(context);
  List* indexes = RelationGetIndexList(log);
  int n = list_length(indexes);
  log_cache.index_oids = static_cast<Oid*>(palloc0(sizeof(Oid) * (n + 1)));
  log_cache.index_infos = static_cast<IndexInfo**>(palloc0(sizeof(IndexInfo*) * (n + 1)));
  log_cache.compiled = static_cast<bool*>(palloc0(sizeof(bool) * (n + 1)));
  ListCell* cell;
  int i = 0;
  foreach (cell, indexes) {
    Oid index_oid = lfirst_oid(cell);
    Relation index = index_open(index_oid, RowExclusiveLock);
    IndexInfo* info = BuildIndexInfo(index);
    if (keepable(info)) {
      if (info->ii_Expressions != NIL) info->ii_ExpressionsState = ExecInitExprList(info->ii_Expressions, nullptr);
      if (info->ii_Predicate != NIL) info->ii_PredicateState = ExecInitQual(info->ii_Predicate, nullptr);
      log_cache.compiled[i] = true;
    }
    index_close(index, NoLock);  // the lock is held to the transaction's end, as ExecOpenIndices does
    log_cache.index_oids[i] = index_oid;
    log_cache.index_infos[i] = info;
    ++i;
  }
  log_cache.nindexes = n;
  list_free(indexes);
  MemoryContextSwitchTo(old);
  log_cache.all_compiled = true;
  for (int k = 0; k < n; ++k) log_cache.all_compiled &= log_cache.compiled[k];
  log_cache.log_oid = RelationGetRelid(log);
  log_cache.sequence_oid = sequence;
  log_cache.sequence_ok = sequence_increment(sequence) == kIdBlock;
  log_cache.valid = true;
}

// Same index list as cached? (an index added or dropped invalidates the log
// anyway: this is a cheap second check).
bool same_indexes(Relation log) {
  List* indexes = RelationGetIndexList(log);
  bool same = list_length(indexes) == log_cache.nindexes;
  ListCell* cell;
  int i = 0;
  foreach (cell, indexes) {
    if (!same) break;
    same = lfirst_oid(cell) == log_cache.index_oids[i++];
  }
  list_free(indexes);
  return same;
}

void drop_kept_state() {
  if (kept.context != nullptr) MemoryContextDelete(kept.context);
  kept = KeptState{};
}

void build_kept_state(Relation log) {
  drop_kept_state();
  MemoryContext context = AllocSetContextCreate(TopMemoryContext, "workflow audit writer",
                                                ALLOCSET_DEFAULT_SIZES);
  kept.context = context;
  MemoryContext old = MemoryContextSwitchTo(context);
  kept.desc = CreateTupleDescCopy(RelationGetDescr(log));  // not reference-counted
  kept.slot_ops = table_slot_callbacks(log);
  kept.estate = CreateExecutorState();
  kept.result_rel = makeNode(ResultRelInfo);
  kept.statement_context = AllocSetContextCreate(context, "workflow audit statement",
                                                 ALLOCSET_SMALL_SIZES);
  kept.batch_context = AllocSetContextCreate(context, "workflow audit batch", ALLOCSET_DEFAULT_SIZES);
  MemoryContextSwitchTo(old);
  kept.log_oid = RelationGetRelid(log);
  kept.valid = true;
}

// The kept state, when this writer may use it: not in use by an outer
// writer, every cached index expression compiled (else the executor would
// compile them per statement into the kept EState), same log.
bool take_kept_state(LogWriter* w) {
  if (kept.in_use || !w->uses_cache || !log_cache.all_compiled) return false;
  if (!kept.valid || kept.log_oid != RelationGetRelid(w->log) ||
      kept.desc->natts != RelationGetDescr(w->log)->natts)
    build_kept_state(w->log);
  kept.in_use = true;
  MemoryContextReset(kept.statement_context);
  MemoryContextReset(kept.batch_context);
  ResetPerTupleExprContext(kept.estate);
  // What an earlier statement that failed left in the slots.
  for (int i = 0; i < kept.nslots; ++i) ExecClearTuple(kept.slots[i]);
  w->estate = kept.estate;
  w->result_rel = kept.result_rel;
  w->statement_context = kept.statement_context;
  w->batch_context = kept.batch_context;
  memcpy(w->slots, kept.slots, sizeof(TupleTableSlot*) * kept.nslots);
  w->uses_kept = true;
  return true;
}

// ExecOpenIndices with the cached IndexInfos: the per-statement parts (the
// AM's insert cache, the context it allocates in) are reset, and states
// that are not kept are compiled again by the executor per statement.
void open_indexes(LogWriter* w) {
  int n = log_cache.nindexes;
  ResultRelInfo* rri = w->result_rel;
  rri->ri_NumIndices = n;
  if (n == 0) return;
  rri->ri_IndexRelationDescs = static_cast<RelationPtr>(palloc(sizeof(Relation) * n));
  rri->ri_IndexRelationInfo = static_cast<IndexInfo**>(palloc(sizeof(IndexInfo*) * n));
  for (int i = 0; i < n; ++i) {
    rri->ri_IndexRelationDescs[i] = index_open(log_cache.index_oids[i], RowExclusiveLock);
    IndexInfo* cached = log_cache.index_infos[i];
    IndexInfo* info = cached;
    if (!log_cache.compiled[i]) {
      info = makeNode(IndexInfo);
      memcpy(info, cached, sizeof(IndexInfo));
      info->ii_ExpressionsState = NIL;
      info->ii_PredicateState = nullptr;
    }
    info->ii_AmCache = nullptr;
    info->ii_Context = w->statement_context;
    rri->ri_IndexRelationInfo[i] = info;
  }
}

void flush(LogWriter* w) {
  if (w->pending == 0) return;
  if (w->pending == 1 && w->bulk == nullptr) {
    // A single-row statement: a plain insert, no bulk-insert ring.
    table_tuple_insert(w->log, w->slots[0], w->cid, 0, nullptr);
  } else {
    if (w->bulk == nullptr) {
      // Not in the batch context (reset below): it lives as long as the writer.
      MemoryContext old = MemoryContextSwitchTo(w->statement_context);
      w->bulk = GetBulkInsertState();
      MemoryContextSwitchTo(old);
    }
    table_multi_insert(w->log, w->slots, w->pending, w->cid, 0, w->bulk);
  }
  for (int i = 0; i < w->pending; ++i) {
    pg::compat::insert_index_tuples(w->result_rel, w->slots[i], w->estate);
    ResetPerTupleExprContext(w->estate);
    ExecClearTuple(w->slots[i]);
  }
  w->pending = 0;
  MemoryContextReset(w->batch_context);
}

// A role's name as a text datum (text, not name: a name is 64 bytes in
// every log row); a role dropped meanwhile by another session is written as
// its OID ("#16384") rather than failing the write.
Datum role_name(Oid role) {
  const char* found = GetUserNameFromId(role, true);
  if (found != nullptr) return PointerGetDatum(cstring_to_text(found));
  char oid_text[16];
  snprintf(oid_text, sizeof oid_text, "#%u", role);
  return PointerGetDatum(cstring_to_text(oid_text));
}

// The identities: the claimed actor (a setting anyone may SET) and the two
// the server knows. Inside a SECURITY DEFINER function the current user is
// the definer, the session user still the caller.
void statement_values(LogWriter* w) {
  Oid session_user = GetSessionUserId();
  Oid current_user = GetUserId();
  MemoryContext old = MemoryContextSwitchTo(w->statement_context);
  w->session_user_name = role_name(session_user);
  w->current_user_name =
      current_user == session_user ? w->session_user_name : role_name(current_user);
  const char* actor = actor_setting();
  w->actor = actor[0] == '\0' ? w->session_user_name : PointerGetDatum(cstring_to_text(actor));
  MemoryContextSwitchTo(old);
  w->txid = Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId())));
  w->changed_at = TimestampTzGetDatum(GetCurrentStatementStartTimestamp());
  w->have_statement_values = true;
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

void writer_init_module() {
  CacheRegisterRelcacheCallback(invalidate_log_cache, 0);
  CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_log_cache_syscache, 0);
  // ALTER SEQUENCE ... INCREMENT BY changes pg_sequence (checked on build).
  CacheRegisterSyscacheCallback(SEQRELID, invalidate_log_cache_syscache, 0);
  RegisterXactCallback(on_xact_end, nullptr);
}

void writer_open(LogWriter* w) {
  memset(w, 0, sizeof(*w));
  Oid log_oid, schema;
  if (log_cache.valid) {
    log_oid = log_cache.log_oid;
    w->sequence = log_cache.sequence_oid;
  } else {
    schema = get_namespace_oid("workflow", false);
    log_oid = get_relname_relid("audit_log", schema);
    w->sequence = get_relname_relid("audit_log_id_seq", schema);
  }
  if (!OidIsValid(log_oid) || !OidIsValid(w->sequence))
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("workflow.audit_log or its sequence is missing")));
  w->log = table_open(log_oid, RowExclusiveLock);
  w->natts = RelationGetDescr(w->log)->natts;
  // Taking the lock may have processed an invalidation of the cache.
  bool stale = !log_cache.valid || log_cache.log_oid != log_oid || !same_indexes(w->log);
  if (!stale || log_cache_users == 0) {
    if (stale) build_log_cache(w->log, w->sequence);
    w->uses_cache = true;
  }
  bool sequence_ok =
      w->uses_cache ? log_cache.sequence_ok : sequence_increment(w->sequence) == kIdBlock;
  if ((w->natts != kLogColumns && w->natts != kLogColumns10) ||
      w->log->rd_rel->relkind != RELKIND_RELATION || !sequence_ok)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("workflow.audit_log does not have the shape this library writes"),
                    errhint("Update the workflow extension to the library's version.")));
  if (!take_kept_state(w)) {
    w->estate = CreateExecutorState();
    w->result_rel = makeNode(ResultRelInfo);
    w->statement_context = w->estate->es_query_cxt;
    w->batch_context = AllocSetContextCreate(CurrentMemoryContext, "workflow audit batch",
                                             ALLOCSET_DEFAULT_SIZES);
  }
  InitResultRelInfo(w->result_rel, w->log, 1, nullptr, 0);
  if (w->uses_cache) {
    MemoryContext old = MemoryContextSwitchTo(w->statement_context);
    open_indexes(w);
    MemoryContextSwitchTo(old);
    ++log_cache_users;
  } else {
    ExecOpenIndices(w->result_rel, false);
  }
  w->bulk = nullptr;  // made by the first flush of more than one row
  w->cid = GetCurrentCommandId(true);
}

void writer_add(LogWriter* w, const LogTable& table, core::audit::Operation op, Datum key,
                bool key_null, Datum old_values, bool old_null, Datum new_values, bool new_null) {
  if (!w->have_statement_values) statement_values(w);
  TupleTableSlot*& slot = w->slots[w->pending];
  if (slot == nullptr) {
    if (w->uses_kept) {
      MemoryContext old = MemoryContextSwitchTo(kept.context);
      slot = MakeSingleTupleTableSlot(kept.desc, kept.slot_ops);
      MemoryContextSwitchTo(old);
      kept.slots[w->pending] = slot;  // slots are made in order: pending == nslots
      kept.nslots = w->pending + 1;
    } else {
      MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);
      slot = table_slot_create(w->log, nullptr);
      MemoryContextSwitchTo(old);
    }
  }
  ExecClearTuple(slot);
  Datum* values = slot->tts_values;
  bool* nulls = slot->tts_isnull;
  std::string_view op_name = core::audit::operation_name(op);
  memset(nulls, 0, sizeof(bool) * w->natts);
  values[kId] = Int64GetDatum(next_log_id(w));
  values[kTableId] = Int32GetDatum(table.table_id);
  values[kSchemaName] = table.schema_name;
  values[kTableName] = table.table_name;
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
  ExecCloseIndices(w->result_rel);
  if (w->uses_cache && log_cache_users > 0) --log_cache_users;
  if (w->bulk != nullptr) FreeBulkInsertState(w->bulk);
  if (w->uses_kept) {
    // Kept for the next statement, which sets ri_RelationDesc and the
    // indexes again (nothing else in it refers to this statement's relations).
    MemoryContextReset(w->statement_context);
    kept.in_use = false;
  } else {
    for (TupleTableSlot* slot : w->slots)
      if (slot != nullptr) ExecDropSingleTupleTableSlot(slot);
    FreeExecutorState(w->estate);
    MemoryContextDelete(w->batch_context);
  }
  table_close(w->log, NoLock);
}

}  // namespace workflow::audit
