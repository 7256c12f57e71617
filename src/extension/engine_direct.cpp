// See engine_direct.hpp.
#include "extension/engine_direct.hpp"
#include "extension/engine_counter_tids.hpp"
#include "pg/citus.hpp"
#include "pg/compat.hpp"
#include "pg/relation.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/transam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_namespace.h"
#include "executor/executor.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "storage/lockdefs.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "tcop/utility.h"
#include "storage/lmgr.h"
}

#include <cstring>

namespace workflow::engine::direct {
namespace {

constexpr int kMaxColumns = 12;

// What a direct update of one table needs, built once per backend: the
// columns by name, the CHECK constraints and the index entries' expressions
// and predicates compiled. Dropped by a relcache invalidation of the table
// or one of its indexes (ALTER TABLE, CREATE TRIGGER, CREATE INDEX, ...) or
// a schema rename, rebuilt on next use (never inside the callback); an
// invalidation that arrives while it is being built makes it build again.
struct TableCache {
  const char* name;
  const char* const* columns;  // [0..ncolumns): looked up by name
  int ncolumns;
  const char* const* pk_columns;  // the primary key's columns, in order
  int npk;
  const char* const* changed;  // the columns an update sets
  int nchanged;

  bool valid;
  bool usable;  // false: the SQL path serves this table (see the header)
  uint64 generation;  // bumped by every invalidation that concerns the table
  Oid relid;
  MemoryContext context;
  // Evaluates the kept expression states. It lives as long as they do: what
  // an expression keeps per query (a hashed IN list, say) is allocated in
  // its per-query memory.
  EState* estate;
  AttrNumber attnum[kMaxColumns];
  int nchecks;
  ExprState** checks;
  const char** check_names;
  int nindexes;
  Oid* index_oids;
  IndexInfo** index_infos;
  bool* key_changes;  // an update changes the index's key (no "unchanged" hint)
  Oid pk;
};

const char* const kTaskColumns[] = {"job_id",      "id",          "stage",       "status",
                                    "slot",        "result_data", "claimed_by",  "lease_expires_at",
                                    "completed_at", "updated_at"};
enum TaskColumn { tJob, tId, tStage, tStatus, tSlot, tResult, tClaimedBy, tLease, tCompletedAt, tUpdatedAt };
const char* const kTaskKey[] = {"job_id", "id"};
const char* const kTaskChanged[] = {"status", "result_data", "lease_expires_at", "completed_at",
                                    "updated_at"};

const char* const kSlotColumns[] = {"job_id", "stage", "slot", "remaining"};
enum SlotColumn { sJob, sStage, sSlot, sRemaining };
const char* const kSlotKey[] = {"job_id", "stage", "slot"};
const char* const kSlotChanged[] = {"remaining"};

TableCache tasks_cache{"tasks", kTaskColumns, 10, kTaskKey, 2, kTaskChanged, 5};
TableCache slots_cache{"stage_slots", kSlotColumns, 4, kSlotKey, 3, kSlotChanged, 1};
TableCache* const kCaches[] = {&tasks_cache, &slots_cache};

void invalidate_relation(Datum, Oid relid) {
  for (TableCache* c : kCaches) {
    bool hit = relid == InvalidOid || relid == c->relid;
    for (int i = 0; !hit && i < c->nindexes; ++i) hit = c->index_oids[i] == relid;
    if (hit) {
      c->valid = false;
      ++c->generation;
      if (c == &slots_cache) counter_tids::forget_all();
    }
  }
}

void invalidate_all(Datum, int, uint32) {
  for (TableCache* c : kCaches) {
    c->valid = false;
    ++c->generation;
  }
  counter_tids::forget_all();
}

bool not_builtin(Oid func, void*) { return func >= FirstGenbkiObjectId; }

bool calls_non_builtin(Node* node, void* context) {
  if (node == nullptr) return false;
  if (check_functions_in_node(node, not_builtin, context)) return true;
  return expression_tree_walker(
      node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(calls_non_builtin)), context);
}

// Expressions whose kept states are safe to evaluate call after call: plain
// operators, functions, CASE, IN lists and the like over the row's own
// columns; no whole-row references, row types or subqueries.
bool is_simple(Node* node, void* context) {
  if (node == nullptr) return false;
  switch (nodeTag(node)) {
    case T_Var:
      if (reinterpret_cast<Var*>(node)->varattno <= 0) return true;
      break;
    case T_Const: case T_OpExpr: case T_FuncExpr: case T_BoolExpr: case T_NullTest:
    case T_BooleanTest: case T_ScalarArrayOpExpr: case T_RelabelType: case T_CoerceViaIO:
    case T_CaseExpr: case T_CaseWhen: case T_CaseTestExpr: case T_CoalesceExpr:
    case T_MinMaxExpr: case T_NullIfExpr: case T_DistinctExpr: case T_ArrayExpr: case T_List:
      break;
    default:
      return true;  // not simple: stop the walk
  }
  return expression_tree_walker(
      node, reinterpret_cast<bool (*)()>(reinterpret_cast<void (*)()>(is_simple)), context);
}

bool keepable(Node* node) {
  return !calls_non_builtin(node, nullptr) && !is_simple(node, nullptr);
}

bool changes_column(const TableCache& c, Bitmapset* attrs) {
  for (int i = 0; i < c.nchanged; ++i) {
    AttrNumber a = get_attnum(c.relid, c.changed[i]);
    if (bms_is_member(a - FirstLowInvalidHeapAttributeNumber, attrs)) return true;
  }
  return false;
}

// Builds c for rel (in a context of its own, replacing the old one). c is
// valid afterwards unless an invalidation concerning it arrived meanwhile.
void build(TableCache& c, Relation rel) {
  if (c.estate != nullptr) FreeExecutorState(c.estate);
  c.estate = nullptr;
  if (c.context != nullptr) MemoryContextDelete(c.context);
  c.context = nullptr;
  c.valid = false;
  c.usable = true;
  c.relid = RelationGetRelid(rel);
  c.nchecks = 0;
  c.nindexes = 0;
  const uint64 generation = c.generation;
  MemoryContext context =
      AllocSetContextCreate(CacheMemoryContext, "workflow engine direct update", ALLOCSET_SMALL_SIZES);
  c.context = context;
  MemoryContext old = MemoryContextSwitchTo(context);

  // The index list first, so that an invalidation of an index reaches us
  // while the rest is built.
  List* indexes = RelationGetIndexList(rel);
  int n = list_length(indexes);
  c.index_oids = static_cast<Oid*>(palloc0(sizeof(Oid) * (n + 1)));
  c.index_infos = static_cast<IndexInfo**>(palloc0(sizeof(IndexInfo*) * (n + 1)));
  c.key_changes = static_cast<bool*>(palloc0(sizeof(bool) * (n + 1)));
  ListCell* cell;
  foreach (cell, indexes) c.index_oids[c.nindexes++] = lfirst_oid(cell);
  c.pk = pg::compat::relation_primary_key_index(rel);
  c.estate = CreateExecutorState();

  for (int i = 0; i < c.ncolumns; ++i) {
    c.attnum[i] = get_attnum(c.relid, c.columns[i]);
    if (c.attnum[i] == InvalidAttrNumber) c.usable = false;
  }
  TupleDesc desc = RelationGetDescr(rel);
  TupleConstr* constr = desc->constr;
  if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relhassubclass ||
      rel->rd_rules != nullptr || (constr && constr->has_generated_stored) ||
      pg::is_citus_table(c.relid))
    c.usable = false;
  for (int i = 0; c.usable && i < desc->natts; ++i)
    if (get_typtype(TupleDescAttr(desc, i)->atttypid) == TYPTYPE_DOMAIN) c.usable = false;

  int nchecks = constr ? constr->num_check : 0;
  c.checks = static_cast<ExprState**>(palloc0(sizeof(ExprState*) * (nchecks + 1)));
  c.check_names = static_cast<const char**>(palloc0(sizeof(char*) * (nchecks + 1)));
  for (int i = 0; c.usable && i < nchecks; ++i) {
    Expr* expr = expression_planner(static_cast<Expr*>(stringToNode(constr->check[i].ccbin)));
    if (!keepable(reinterpret_cast<Node*>(expr))) {
      c.usable = false;
      break;
    }
    c.checks[i] = ExecInitExpr(expr, nullptr);
    c.check_names[i] = pstrdup(constr->check[i].ccname);
    c.nchecks = i + 1;
  }

  for (int i = 0; c.usable && i < c.nindexes; ++i) {
    Relation index = index_open(c.index_oids[i], RowExclusiveLock);
    IndexInfo* info = BuildIndexInfo(index);
    if (info->ii_ExclusionOps != nullptr || !index->rd_index->indimmediate ||
        !keepable(reinterpret_cast<Node*>(info->ii_Expressions)) ||
        !keepable(reinterpret_cast<Node*>(info->ii_Predicate)))
      c.usable = false;
    if (c.index_oids[i] == c.pk) {
      if (info->ii_NumIndexKeyAttrs != c.npk) c.usable = false;
      for (int k = 0; c.usable && k < c.npk; ++k)
        if (info->ii_IndexAttrNumbers[k] != get_attnum(c.relid, c.pk_columns[k])) c.usable = false;
    }
    if (info->ii_Expressions != NIL)
      info->ii_ExpressionsState = ExecInitExprList(info->ii_Expressions, nullptr);
    if (info->ii_Predicate != NIL) info->ii_PredicateState = ExecInitQual(info->ii_Predicate, nullptr);
    // Is the index's key (or what its expressions read) set by the update?
    Bitmapset* attrs = nullptr;
    for (int k = 0; k < info->ii_NumIndexAttrs; ++k)
      if (info->ii_IndexAttrNumbers[k] != 0)
        attrs = bms_add_member(attrs, info->ii_IndexAttrNumbers[k] - FirstLowInvalidHeapAttributeNumber);
    pull_varattnos(reinterpret_cast<Node*>(info->ii_Expressions), 1, &attrs);
    c.key_changes[i] = changes_column(c, attrs);
    index_close(index, NoLock);  // locked to the transaction's end, as ExecOpenIndices does
    c.index_infos[i] = info;
  }
  if (!OidIsValid(c.pk)) c.usable = false;
  MemoryContextSwitchTo(old);
  c.valid = c.generation == generation;
}

// One call's handle on a table: it and its indexes open, the cache's
// executor state for expression evaluation, a snapshot.
struct Open {
  TableCache* cache;
  Relation rel;
  Relation* indexes;
  Relation pk;
  EState* estate;
  Snapshot snapshot;
  CommandId cid;
};

// Which snapshot finds the rows: the transaction's (a task: the UPDATE's own
// semantics), or the latest committed state (the counters: internal
// bookkeeping, where a completion takes any unit there is).
enum SnapshotKind { kTransactionSnapshot, kLatestSnapshot };

Snapshot take_snapshot(SnapshotKind kind) {
  return RegisterSnapshot(kind == kLatestSnapshot ? GetLatestSnapshot() : GetTransactionSnapshot());
}

// Opens c's table for a direct update; false when the SQL path must serve it.
bool open_table(TableCache& c, SnapshotKind kind, Open* o) {
  memset(o, 0, sizeof(*o));
  // What the executor checks before an UPDATE (25006, 25000).
  PreventCommandIfReadOnly("UPDATE");
  PreventCommandIfParallelMode("UPDATE");
  Relation rel = c.valid ? try_table_open(c.relid, RowExclusiveLock) : nullptr;
  if (rel == nullptr) rel = table_open(workflow::pg::extension_table(c.name), RowExclusiveLock);
  for (int attempt = 0;; ++attempt) {
    // Taking the lock may have processed invalidations.
    if (!c.valid || c.relid != RelationGetRelid(rel)) build(c, rel);
    if (!c.usable || rel->trigdesc != nullptr || rel->rd_rules != nullptr ||
        (rel->rd_rel->relrowsecurity && check_enable_rls(c.relid, InvalidOid, true) == RLS_ENABLED)) {
      table_close(rel, NoLock);
      return false;
    }
    const uint64 generation = c.generation;
    o->indexes = static_cast<Relation*>(palloc(sizeof(Relation) * (c.nindexes + 1)));
    for (int i = 0; i < c.nindexes; ++i) o->indexes[i] = index_open(c.index_oids[i], RowExclusiveLock);
    if (c.valid && c.generation == generation) break;  // nothing changed while the indexes were locked
    for (int i = 0; i < c.nindexes; ++i) index_close(o->indexes[i], NoLock);
    pfree(o->indexes);
    if (attempt == 2) {  // the table keeps changing under us: let SQL do it
      table_close(rel, NoLock);
      return false;
    }
  }
  CheckCmdReplicaIdentity(rel, CMD_UPDATE);  // as the executor: 55000 without a replica identity
  o->cache = &c;
  o->rel = rel;
  for (int i = 0; i < c.nindexes; ++i) {
    if (c.index_oids[i] == c.pk) o->pk = o->indexes[i];
    c.index_infos[i]->ii_AmCache = nullptr;  // per call, as ExecOpenIndices makes it
    c.index_infos[i]->ii_Context = CurrentMemoryContext;
  }
  o->estate = c.estate;
  ResetPerTupleExprContext(o->estate);
  CommandCounterIncrement();  // this transaction's earlier changes are visible
  o->snapshot = take_snapshot(kind);
  o->cid = GetCurrentCommandId(true);
  return true;
}

// A newer snapshot of the same kind (the counters, after a wait).
void renew_snapshot(Open* o) {
  UnregisterSnapshot(o->snapshot);
  o->snapshot = take_snapshot(kLatestSnapshot);
}

void close_table(Open* o) {
  UnregisterSnapshot(o->snapshot);
  ResetPerTupleExprContext(o->estate);
  for (int i = 0; i < o->cache->nindexes; ++i) index_close(o->indexes[i], NoLock);
  pfree(o->indexes);
  table_close(o->rel, NoLock);
}

enum LockResult { kLocked, kGone, kSkipped };

// Locks the latest version of the row at *tid (following its updates) into
// `slot`, as UPDATE does for a row a concurrent transaction changed. With
// `serializable` (a task) a change since a REPEATABLE READ or SERIALIZABLE
// snapshot is 40001, as for UPDATE. A row another transaction holds, with
// LockWaitSkip, is kSkipped and *holder names that transaction (when one
// transaction holds it).
LockResult lock_latest(Open* o, ItemPointer tid, TupleTableSlot* slot, LockWaitPolicy wait,
                       bool serializable, TransactionId* holder = nullptr) {
  TM_FailureData tmfd;
  TM_Result result = table_tuple_lock(o->rel, tid, o->snapshot, slot, o->cid, LockTupleNoKeyExclusive,
                                      wait, TUPLE_LOCK_FLAG_FIND_LAST_VERSION, &tmfd);
  switch (result) {
    case TM_Ok:
      if (serializable && tmfd.traversed && IsolationUsesXactSnapshot())
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("could not serialize access due to concurrent update")));
      return kLocked;
    case TM_Deleted:
      if (serializable && IsolationUsesXactSnapshot())
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("could not serialize access due to concurrent delete")));
      return kGone;
    case TM_WouldBlock:
      if (holder != nullptr && !TransactionIdIsValid(*holder) && TransactionIdIsNormal(tmfd.xmax))
        *holder = tmfd.xmax;
      return kSkipped;
    case TM_SelfModified:  // changed by this very call (a counter it emptied)
      return kSkipped;
    default:
      elog(ERROR, "workflow: unexpected result %d locking a row of workflow.%s", static_cast<int>(result),
           o->cache->name);
  }
  return kGone;
}

// Index entries for the new version in `slot`, as ExecInsertIndexTuples
// makes them (partial indexes by their predicate, unique ones checked).
void insert_index_entries(Open* o, TupleTableSlot* slot, bool summarizing_only) {
  TableCache& c = *o->cache;
  ExprContext* econtext = GetPerTupleExprContext(o->estate);
  econtext->ecxt_scantuple = slot;
  for (int i = 0; i < c.nindexes; ++i) {
    IndexInfo* info = c.index_infos[i];
    Relation index = o->indexes[i];
    if (!info->ii_ReadyForInserts) continue;
#if PG_VERSION_NUM >= 160000
    if (summarizing_only && !info->ii_Summarizing) continue;
#endif
    if (info->ii_Predicate != NIL && !ExecQual(info->ii_PredicateState, econtext)) continue;
    Datum values[INDEX_MAX_KEYS];
    bool isnull[INDEX_MAX_KEYS];
    FormIndexDatum(info, slot, o->estate, values, isnull);
    index_insert(index, values, isnull, &slot->tts_tid, o->rel,
                 index->rd_index->indisunique ? UNIQUE_CHECK_YES : UNIQUE_CHECK_NO, !c.key_changes[i],
                 info);
  }
}

// Writes `row` (virtual, complete) as the new version of the row at *tid:
// NOT NULL and CHECK constraints first, then the heap, then indexes. As
// UPDATE does, it needs no lock beforehand: when *tid is no longer the
// latest version (TM_Updated, TM_Deleted), or, without `wait`, another
// transaction holds it (TM_BeingModified, tmfd->xmax names it), nothing is
// written and the caller locks the latest version or moves on. Writing
// straight away saves a row lock and its WAL record per row.
TM_Result write_version(Open* o, ItemPointer tid, TupleTableSlot* row, bool wait, TM_FailureData* tmfd) {
  TableCache& c = *o->cache;
  TupleDesc desc = RelationGetDescr(o->rel);
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    if (att->attnotnull && row->tts_isnull[i])
      ereport(ERROR, (errcode(ERRCODE_NOT_NULL_VIOLATION),
                      errmsg("null value in column \"%s\" of relation \"%s\" violates not-null constraint",
                             NameStr(att->attname), RelationGetRelationName(o->rel)),
                      errtablecol(o->rel, i + 1)));
  }
  ExprContext* econtext = GetPerTupleExprContext(o->estate);
  econtext->ecxt_scantuple = row;
  for (int i = 0; i < c.nchecks; ++i)
    if (!ExecCheck(c.checks[i], econtext))
      ereport(ERROR, (errcode(ERRCODE_CHECK_VIOLATION),
                      errmsg("new row for relation \"%s\" violates check constraint \"%s\"",
                             RelationGetRelationName(o->rel), c.check_names[i]),
                      errtableconstraint(o->rel, c.check_names[i])));
  ExecMaterializeSlot(row);
  LockTupleMode lockmode;
#if PG_VERSION_NUM >= 160000
  TU_UpdateIndexes update_indexes;
#else
  bool update_indexes;
#endif
  TM_Result result = table_tuple_update(o->rel, tid, row, o->cid, o->snapshot, InvalidSnapshot, wait,
                                        tmfd, &lockmode, &update_indexes);
  if (result == TM_Ok) {
#if PG_VERSION_NUM >= 160000
    if (update_indexes != TU_None) insert_index_entries(o, row, update_indexes == TU_Summarizing);
#else
    if (update_indexes) insert_index_entries(o, row, false);
#endif
  }
  ResetPerTupleExprContext(o->estate);
  return result;
}

// A virtual copy of the locked row, to change and write back.
TupleTableSlot* copy_row(Open* o, TupleTableSlot* locked) {
  TupleTableSlot* row = MakeSingleTupleTableSlot(RelationGetDescr(o->rel), &TTSOpsVirtual);
  slot_getallattrs(locked);
  int natts = RelationGetDescr(o->rel)->natts;
  memcpy(row->tts_values, locked->tts_values, sizeof(Datum) * natts);
  memcpy(row->tts_isnull, locked->tts_isnull, sizeof(bool) * natts);
  return row;
}

bool text_equals(Datum a, const char* b, size_t blen) {
  text* t = DatumGetTextPP(a);
  return static_cast<size_t>(VARSIZE_ANY_EXHDR(t)) == blen && memcmp(VARDATA_ANY(t), b, blen) == 0;
}

bool text_equals(Datum a, const text* b) {
  return text_equals(a, VARDATA_ANY(b), VARSIZE_ANY_EXHDR(b));
}

void key_equal(ScanKeyData* key, Relation index, int column, RegProcedure eq, Datum value) {
  ScanKeyEntryInitialize(key, 0, column, BTEqualStrategyNumber, InvalidOid,
                         index->rd_indcollation[column - 1], eq, value);
}

}  // namespace

void init_module() {
  CacheRegisterRelcacheCallback(invalidate_relation, 0);
  CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_all, 0);
}

namespace {

// The UPDATE's conditions on a version of the task row: the same task (its
// key, on a later version), the stage, queued or claimed, and with a worker
// claimed by it.
bool task_qualifies(TupleTableSlot* row, Datum task, Datum job, int32 stage, const text* worker) {
  const AttrNumber* at = tasks_cache.attnum;
  bool isnull;
  Datum v = slot_getattr(row, at[tJob], &isnull);
  if (isnull || !text_equals(v, DatumGetTextPP(job))) return false;
  v = slot_getattr(row, at[tId], &isnull);
  if (isnull || !text_equals(v, DatumGetTextPP(task))) return false;
  v = slot_getattr(row, at[tStage], &isnull);
  if (isnull || DatumGetInt32(v) != stage) return false;
  Datum status = slot_getattr(row, at[tStatus], &isnull);
  if (isnull) return false;
  const bool claimed = text_equals(status, "claimed", 7);
  if (!claimed && !text_equals(status, "queued", 6)) return false;
  if (worker == nullptr) return true;
  Datum claimed_by = slot_getattr(row, at[tClaimedBy], &isnull);
  return claimed && !isnull && text_equals(claimed_by, worker);
}

}  // namespace

namespace {

// The completed version of task row `current`: status, result, timestamps; no lease.
TupleTableSlot* completed_row(Open* o, TupleTableSlot* current, Datum result, bool result_null) {
  const AttrNumber* at = tasks_cache.attnum;
  TupleTableSlot* row = copy_row(o, current);
  Datum now = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
  Datum* values = row->tts_values;
  bool* nulls = row->tts_isnull;
  values[at[tStatus] - 1] = CStringGetTextDatum("completed");
  values[at[tResult] - 1] = result;
  nulls[at[tResult] - 1] = result_null;
  values[at[tCompletedAt] - 1] = now;
  nulls[at[tCompletedAt] - 1] = false;
  values[at[tUpdatedAt] - 1] = now;
  nulls[at[tUpdatedAt] - 1] = false;
  nulls[at[tLease] - 1] = true;
  ExecStoreVirtualTuple(row);
  return row;
}

}  // namespace

Outcome complete_task(Datum task, Datum job, int32 stage, Datum result, bool result_null,
                      const text* worker, int32* slot_out) {
  Open o;
  if (!open_table(tasks_cache, kTransactionSnapshot, &o)) return kUnavailable;
  const AttrNumber* at = tasks_cache.attnum;
  ScanKeyData keys[2];
  key_equal(&keys[0], o.pk, 1, F_TEXTEQ, job);
  key_equal(&keys[1], o.pk, 2, F_TEXTEQ, task);
  TupleTableSlot* found = table_slot_create(o.rel, nullptr);
  IndexScanDesc scan = pg::compat::index_beginscan(o.rel, o.pk, o.snapshot, 2, 0);
  index_rescan(scan, keys, 2, nullptr, 0);
  // As UPDATE: only a row whose snapshot version qualifies is written; when
  // a concurrent transaction changed it, the conditions are checked again on
  // its latest version.
  bool candidate = index_getnext_slot(scan, ForwardScanDirection, found) &&
                   task_qualifies(found, task, job, stage, worker);
  ItemPointerData tid = found->tts_tid;
  index_endscan(scan);

  Outcome outcome = kNotChanged;
  TupleTableSlot* locked = table_slot_create(o.rel, nullptr);
  TupleTableSlot* current = found;
  for (bool is_locked = false; candidate; is_locked = true) {
    TupleTableSlot* row = completed_row(&o, current, result, result_null);
    ItemPointerData version = current->tts_tid;
    TM_FailureData tmfd;
    TM_Result written = write_version(&o, &version, row, true, &tmfd);
    ExecDropSingleTupleTableSlot(row);
    if (written == TM_Ok) {
      bool isnull;
      *slot_out = DatumGetInt32(slot_getattr(current, at[tSlot], &isnull));
      outcome = kDone;
      break;
    }
    if (is_locked)
      elog(ERROR, "workflow: unexpected result %d updating a locked row of workflow.tasks",
           static_cast<int>(written));
    if (written != TM_Updated && written != TM_Deleted) break;  // changed by this very call
    if (IsolationUsesXactSnapshot())  // as UPDATE under REPEATABLE READ and SERIALIZABLE
      ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                      errmsg(written == TM_Updated ? "could not serialize access due to concurrent update"
                                                   : "could not serialize access due to concurrent delete")));
    // Changed since the snapshot: lock the latest version and check the
    // conditions again on it, as UPDATE does under READ COMMITTED.
    candidate = lock_latest(&o, &tid, locked, LockWaitBlock, true) == kLocked &&
                task_qualifies(locked, task, job, stage, worker);
    current = locked;
  }
  ExecDropSingleTupleTableSlot(locked);
  ExecDropSingleTupleTableSlot(found);
  close_table(&o);
  return outcome;
}

namespace {

// How often a completion looks again, with a newer snapshot, when it found
// no counter with a unit left that it could take or wait for: each time
// some other transaction has committed in between (a counter refilled by
// add_tasks, or emptied by completions that held it).
constexpr int kFreshLooks = 100;

// Takes up to *left units from the counter row `found` (as read), with
// `wait` for a transaction that holds it; false when it is held (skip:
// *holder is set to who holds it, if known), gone or empty. *value: its
// remaining after. As UPDATE: the version read is written to at once; only
// when it has been changed since is its latest version locked and used.
bool try_take(Open* o, TupleTableSlot* found, TupleTableSlot* locked, LockWaitPolicy wait, int32* left,
              int32* zeroed, int32* value, TransactionId* holder, ItemPointerData* held) {
  const AttrNumber* at = slots_cache.attnum;
  ItemPointerData tid = found->tts_tid;
  auto lock_it = [&]() {  // its latest version, locked into `locked`
    TransactionId before = holder ? *holder : InvalidTransactionId;
    if (lock_latest(o, &tid, locked, wait, false, holder) == kLocked) return true;
    if (holder && !TransactionIdIsValid(before) && TransactionIdIsValid(*holder)) *held = tid;
    return false;
  };
  // A counter an earlier scan saw is known by its TID alone: lock it first.
  bool is_locked = TTS_EMPTY(found);
  if (is_locked && !lock_it()) return false;
  TupleTableSlot* current = is_locked ? locked : found;
  for (;; is_locked = true) {
    bool isnull;
    int32 remaining = DatumGetInt32(slot_getattr(current, at[sRemaining], &isnull));
    if (isnull || remaining <= 0) return false;
    int32 take = remaining < *left ? remaining : *left;
    TupleTableSlot* row = copy_row(o, current);
    row->tts_values[at[sRemaining] - 1] = Int32GetDatum(remaining - take);
    ExecStoreVirtualTuple(row);
    tid = current->tts_tid;
    TM_FailureData tmfd;
    // (A row this transaction locked counts as held without `wait`.)
    TM_Result result = write_version(o, &tid, row, wait == LockWaitBlock || is_locked, &tmfd);
    ExecDropSingleTupleTableSlot(row);
    if (result == TM_Ok) {
      *left -= take;
      *value = remaining - take;
      if (*value == 0) ++*zeroed;
      return true;
    }
    if (is_locked)
      elog(ERROR, "workflow: unexpected result %d updating a locked row of workflow.%s",
           static_cast<int>(result), o->cache->name);
    if (result == TM_BeingModified) {  // held by another transaction, and we do not wait
      if (holder && !TransactionIdIsValid(*holder) && TransactionIdIsNormal(tmfd.xmax)) {
        *holder = tmfd.xmax;
        *held = tid;
      }
      return false;
    }
    if (result != TM_Updated || !lock_it()) return false;  // deleted, emptied by this call, or held
    current = locked;
  }
}

IndexScanDesc scan_counters(Open* o, Datum job, int32 stage, int32 from, int32 below) {
  ScanKeyData keys[4];
  int nkeys = 0;
  key_equal(&keys[nkeys++], o->pk, 1, F_TEXTEQ, job);
  key_equal(&keys[nkeys++], o->pk, 2, F_INT4EQ, Int32GetDatum(stage));
  if (from > 0)
    ScanKeyEntryInitialize(&keys[nkeys++], 0, 3, BTGreaterEqualStrategyNumber, InvalidOid,
                           o->pk->rd_indcollation[2], F_INT4GE, Int32GetDatum(from));
  if (below >= 0)
    ScanKeyEntryInitialize(&keys[nkeys++], 0, 3, BTLessStrategyNumber, InvalidOid,
                           o->pk->rd_indcollation[2], F_INT4LT, Int32GetDatum(below));
  IndexScanDesc scan = pg::compat::index_beginscan(o->rel, o->pk, o->snapshot, nkeys, 0);
  index_rescan(scan, keys, nkeys, nullptr, 0);
  return scan;
}

// take_one_skipping's look when the stage's counters are where they were
// last seen (engine_counter_tids.hpp): the same unit taken, from the same
// counter order, and the same sum, without scanning the primary key. False
// when they are not all there (nothing taken: the caller scans) or when
// every counter with a unit left is held (*holder, *held as below).
bool take_one_remembered(Open* o, Datum job, int32 stage, int32 preferred, TupleTableSlot* found,
                         TupleTableSlot* locked, int32* zeroed, int32* sum, TransactionId* holder,
                         ItemPointerData* held) {
  const AttrNumber* at = slots_cache.attnum;
  const counter_tids::Columns columns{at[sJob], at[sStage], at[sSlot], at[sRemaining]};
  counter_tids::Counter* counters;
  int n;
  if (!counter_tids::read(o->rel, o->snapshot, columns, job, stage, &counters, &n)) return false;
  int64 total = 0;
  for (int i = 0; i < n; ++i) total += counters[i].remaining;
  int32 left = 1;
  // From `preferred` on, then the ones before it (counters are in slot order).
  const int first = preferred >= 0 && preferred < n ? preferred : 0;
  for (int k = 0; k < n && left > 0; ++k) {
    const counter_tids::Counter& c = counters[(first + k) % n];
    if (c.remaining <= 0) continue;
    ItemPointerData tid = c.tid;
    if (!table_tuple_fetch_row_version(o->rel, &tid, o->snapshot, found)) continue;
    int32 value;
    if (try_take(o, found, locked, LockWaitSkip, &left, zeroed, &value, holder, held))
      total += value - c.remaining;
  }
  pfree(counters);
  if (left > 0) return false;
  *sum = static_cast<int32>(total);
  return true;
}

// A single completion's look at the counters, without waiting: takes its
// unit from the first free counter at or after `preferred` (else the first
// free one before it). With `sum`, the same scan sums every counter in its
// snapshot, with the new value of the one it took. False when it took
// nothing: *holder then names a transaction holding a counter with units
// left (if any), *held that row.
bool take_one_skipping(Open* o, Datum job, int32 stage, int32 preferred, TupleTableSlot* found,
                       TupleTableSlot* locked, int32* zeroed, int32* sum, TransactionId* holder,
                       ItemPointerData* held) {
  const AttrNumber* at = slots_cache.attnum;
  if (sum != nullptr) {  // the stage's counters where they were last seen, if they still are
    int32 total = 0;
    if (take_one_remembered(o, job, stage, preferred, found, locked, zeroed, &total, holder, held)) {
      *sum = total;
      return true;
    }
  }
  int64 total = 0;
  int32 left = 1;
  int nearly = 0, cap = 16;
  ItemPointerData* early = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * cap));
  int32* early_value = static_cast<int32*>(palloc(sizeof(int32) * cap));
  // With a sum, where each counter is (its index entry's TID), to remember;
  // `seen` counts them all, also beyond the kMaxSlots remembered.
  int seen = 0;
  int32* seen_slots = nullptr;
  ItemPointerData* seen_roots = nullptr;
  if (sum != nullptr) {
    seen_slots = static_cast<int32*>(palloc(sizeof(int32) * counter_tids::kMaxSlots));
    seen_roots = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * counter_tids::kMaxSlots));
  }
  // Without a sum, the scan starts at `preferred`; then the ones before it.
  IndexScanDesc scan = scan_counters(o, job, stage, sum ? 0 : preferred, -1);
  for (;;) {
    ItemPointer root = index_getnext_tid(scan, ForwardScanDirection);
    if (root == nullptr) break;
    const ItemPointerData root_tid = *root;  // the fetch moves it to the visible version
    if (!index_fetch_heap(scan, found)) continue;
    bool isnull;
    int32 v = DatumGetInt32(slot_getattr(found, at[sRemaining], &isnull));
    if (isnull) continue;
    if (sum != nullptr && seen++ < counter_tids::kMaxSlots) {
      seen_slots[seen - 1] = DatumGetInt32(slot_getattr(found, at[sSlot], &isnull));
      seen_roots[seen - 1] = root_tid;
    }
    total += v;
    if (left == 0 && sum == nullptr) break;
    if (left == 0 || v <= 0) continue;
    if (DatumGetInt32(slot_getattr(found, at[sSlot], &isnull)) < preferred) {
      if (nearly == cap) {
        cap *= 2;
        early = static_cast<ItemPointerData*>(repalloc(early, sizeof(ItemPointerData) * cap));
        early_value = static_cast<int32*>(repalloc(early_value, sizeof(int32) * cap));
      }
      early[nearly] = found->tts_tid;
      early_value[nearly++] = v;
      continue;
    }
    int32 value;
    if (try_take(o, found, locked, LockWaitSkip, &left, zeroed, &value, holder, held)) total += value - v;
  }
  index_endscan(scan);
  if (left > 0 && sum == nullptr && preferred > 0) {  // the counters before `preferred`
    scan = scan_counters(o, job, stage, 0, preferred);
    while (left > 0 && index_getnext_slot(scan, ForwardScanDirection, found)) {
      bool isnull;
      if (DatumGetInt32(slot_getattr(found, at[sRemaining], &isnull)) <= 0 || isnull) continue;
      int32 value;
      try_take(o, found, locked, LockWaitSkip, &left, zeroed, &value, holder, held);
    }
    index_endscan(scan);
  }
  for (int i = 0; i < nearly && left > 0; ++i) {
    ExecClearTuple(found);
    found->tts_tid = early[i];
    int32 value;
    if (try_take(o, found, locked, LockWaitSkip, &left, zeroed, &value, holder, held))
      total += value - early_value[i];
  }
  pfree(early);
  pfree(early_value);
  if (sum != nullptr) {
    counter_tids::remember(job, stage, seen_slots, seen_roots, seen);
    pfree(seen_slots);
    pfree(seen_roots);
  }
  if (left > 0) return false;
  if (sum != nullptr) *sum = static_cast<int32>(total);
  return true;
}

// A batch's units, from the counters in ascending order, waiting for each.
// Returns the units it could not take in this snapshot.
int32 take_ascending(Open* o, Datum job, int32 stage, int32 left, TupleTableSlot* found,
                     TupleTableSlot* locked, int32* zeroed) {
  IndexScanDesc scan = scan_counters(o, job, stage, 0, -1);
  while (left > 0 && index_getnext_slot(scan, ForwardScanDirection, found)) {
    bool isnull;
    if (DatumGetInt32(slot_getattr(found, slots_cache.attnum[sRemaining], &isnull)) <= 0 || isnull)
      continue;
    int32 value;
    try_take(o, found, locked, LockWaitBlock, &left, zeroed, &value, nullptr, nullptr);
  }
  index_endscan(scan);
  return left;
}

}  // namespace

Outcome take_units(Datum job, int32 stage, int32 units, int32 preferred, bool skip_locked,
                   int32* zeroed, int32* sum) {
  Open o;
  if (!open_table(slots_cache, kLatestSnapshot, &o)) return kUnavailable;
  TupleTableSlot* found = table_slot_create(o.rel, nullptr);
  TupleTableSlot* locked = table_slot_create(o.rel, nullptr);
  int32 left = units;
  *zeroed = 0;
  if (sum != nullptr) *sum = -1;
  if (skip_locked && units != 1) skip_locked = false;  // (one unit at a time only)
  int empty_looks = 0;  // looks that found nothing to take or wait for
  for (bool first = true; left > 0 && empty_looks < kFreshLooks; first = false) {
    if (!first) renew_snapshot(&o);  // what committed while we waited or looked
    if (!skip_locked) {
      int32 before = left;
      left = take_ascending(&o, job, stage, left, found, locked, zeroed);
      if (left == before) ++empty_looks;
      continue;
    }
    // A single completion never waits for a counter's row lock: when every
    // counter with a unit left is held, it waits for one holder to finish,
    // holding no counter itself, then looks again with a newer snapshot.
    TransactionId holder = InvalidTransactionId;
    ItemPointerData held;
    ItemPointerSetInvalid(&held);
    if (take_one_skipping(&o, job, stage, preferred, found, locked, zeroed, sum, &holder, &held))
      left = 0;
    else if (TransactionIdIsValid(holder))
      XactLockTableWait(holder, o.rel, &held, XLTW_Lock);
    else
      ++empty_looks;
  }
  ExecDropSingleTupleTableSlot(locked);
  ExecDropSingleTupleTableSlot(found);
  close_table(&o);
  if (left > 0)
    ereport(ERROR, (errcode(ERRCODE_INTERNAL_ERROR),
                    errmsg("the counters of stage %d of job \"%s\" hold %d fewer unfinished tasks "
                           "than were completed",
                           stage, text_to_cstring(DatumGetTextPP(job)), left),
                    errhint("SELECT * FROM workflow.check_invariants(job_id) shows the difference.")));
  return kDone;
}

}  // namespace workflow::engine::direct
