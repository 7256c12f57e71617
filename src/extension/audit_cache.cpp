// Per-trigger metadata cache of audited tables (see audit_cache.hpp).
#include "extension/audit_cache.hpp"
#include "pg/spi_as_role.hpp"
#include "pg/relation.hpp"

#include "extension/audit_finish.hpp"
#include "extension/audit_writer.hpp"

extern "C" {
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/snapmgr.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "nodes/makefuncs.h"
#include "nodes/pg_list.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/relcache.h"
#include "utils/syscache.h"
}

#include <cstring>

namespace workflow::audit {
namespace {

struct CacheEntry {
  Oid trigger_oid;  // hash key
  RelationInfo* info;
};

// An acquire not yet released, and the subtransaction it was made in.
struct Acquisition {
  RelationInfo* info;
  SubTransactionId subxact;
};

HTAB* cache = nullptr;
char* actor_guc = nullptr;
Acquisition* acquisitions = nullptr;  // a stack, in TopMemoryContext
int acquisition_count = 0;
int acquisition_capacity = 0;

void free_info(RelationInfo* info) { MemoryContextDelete(info->context); }

// One use of info ends; a detached entry is freed by its last use.
void end_use(RelationInfo* info) {
  if (info->in_use > 0) info->in_use--;
  if (info->in_use == 0 && info->detached) free_info(info);
}

// Invalidation callbacks: never free (an invalidation may arrive while a
// trigger call is reading the entry); acquire() rebuilds invalid entries.
void invalidate_relation(Datum, Oid relid) {
  if (cache == nullptr) return;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cache);
  CacheEntry* entry;
  while ((entry = static_cast<CacheEntry*>(hash_seq_search(&status))) != nullptr) {
    RelationInfo* info = entry->info;
    if (info != nullptr && (relid == InvalidOid || info->relid == relid || info->root_relid == relid))
      info->valid = false;
  }
}

// A schema renamed (or any namespace change): the cached schema names may be stale.
void invalidate_namespace(Datum, int, uint32) { invalidate_relation(0, InvalidOid); }

// An error caught by a savepoint leaves the acquires of the aborted
// subtransaction unreleased: undo them here. At the end of the transaction
// no trigger call is running: undo all that are left.
void undo_acquisitions(SubTransactionId from) {
  while (acquisition_count > 0 &&
         (from == InvalidSubTransactionId || acquisitions[acquisition_count - 1].subxact >= from)) {
    --acquisition_count;
    end_use(acquisitions[acquisition_count].info);
  }
}

void on_subxact(SubXactEvent event, SubTransactionId subxact, SubTransactionId, void*) {
  if (event == SUBXACT_EVENT_ABORT_SUB) undo_acquisitions(subxact);
}

void on_xact(XactEvent event, void*) {
  if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT ||
      event == XACT_EVENT_COMMIT || event == XACT_EVENT_PARALLEL_COMMIT ||
      event == XACT_EVENT_PREPARE)
    undo_acquisitions(InvalidSubTransactionId);
}

ValueKind kind_of(Oid base_type) {
  switch (base_type) {
    case INT2OID: case INT4OID: case INT8OID: return ValueKind::integer;
    case NUMERICOID: return ValueKind::numeric;
    case BOOLOID: return ValueKind::boolean;
    case TEXTOID: case VARCHAROID: return ValueKind::text;
    case JSONBOID: return ValueKind::jsonb;
    case DATEOID: case TIMESTAMPOID: case TIMESTAMPTZOID: return ValueKind::datetime;
    // Built-in types that to_jsonb renders as their text output.
    case UUIDOID: case BPCHAROID: case NAMEOID: case INTERVALOID: case TIMEOID:
    case TIMETZOID: case INETOID: case CIDROID: case MACADDROID: case BYTEAOID:
    case OIDOID: case CHAROID: return ValueKind::output;
    default: return ValueKind::generic;  // arrays, composites, enums, json, floats...
  }
}

// Columns of the primary key, as attribute numbers offset like
// RelationGetIndexAttrBitmap's. Read from pg_index directly: the relcache's
// primary-key bitmap leaves out a DEFERRABLE primary key.
Bitmapset* primary_key_columns(Relation rel) {
  Bitmapset* columns = nullptr;
  List* indexes = RelationGetIndexList(rel);
  ListCell* cell;
  foreach (cell, indexes) {
    HeapTuple tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(lfirst_oid(cell)));
    if (!HeapTupleIsValid(tuple)) continue;
    Form_pg_index index = reinterpret_cast<Form_pg_index>(GETSTRUCT(tuple));
    if (index->indisprimary)
      for (int k = 0; k < index->indnkeyatts; ++k)
        columns = bms_add_member(columns,
                                 index->indkey.values[k] - FirstLowInvalidHeapAttributeNumber);
    ReleaseSysCache(tuple);
  }
  list_free(indexes);
  return columns;
}

// Columns of workflow.audit_tables, in table order (src/sql/20_audit_log.sql).
enum RegistryColumn {
  kRegId = 1, kRegSchema, kRegTable, kRegRelid, kRegAudited, kRegStatementLevel,
  kRegExcludeColumns, kRegExcludeAttnums, kRegRestorePending, kRegColumns = kRegRestorePending
};

// What the registry says about a table id, read below the SQL layer (no
// permission on the registry is needed to write an audited table).
struct RegistryRow {
  Oid relid;
  bool restore_pending;
  char* schema_name;
  char* table_name;
  List* excluded;  // names (char*): the registered ones and those of the attnums
};

int32 trigger_table_id(Trigger* trigger, Relation rel) {
  const char* arg = trigger->tgnargs >= 1 ? trigger->tgargs[0] : "";
  char* end = nullptr;
  long id = strtol(arg, &end, 10);
  if (arg[0] == '\0' || *end != '\0' || id <= 0 || id > PG_INT32_MAX)
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("workflow.audit_trigger on \"%s\" does not name a registered table",
                           RelationGetRelationName(rel)),
                    errhint("Attach it with workflow.enable_audit(table).")));
  return static_cast<int32>(id);
}

RegistryRow read_registry(int32 table_id) {
  Relation registry = table_open(workflow::pg::extension_table("audit_tables"), AccessShareLock);
  if (RelationGetDescr(registry)->natts != kRegColumns)
    ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                    errmsg("workflow.audit_tables does not have the shape this library reads"),
                    errhint("Update the workflow extension to the library's version.")));
  ScanKeyData key;
  ScanKeyInit(&key, kRegId, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(table_id));
  Snapshot snapshot = RegisterSnapshot(GetLatestSnapshot());
  SysScanDesc scan = systable_beginscan(registry, InvalidOid, false, snapshot, 1, &key);
  HeapTuple tuple = systable_getnext(scan);
  if (!HeapTupleIsValid(tuple))
    ereport(ERROR, (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
                    errmsg("workflow audit: table id %d is not in workflow.audit_tables", table_id),
                    errhint("Attach the trigger with workflow.enable_audit(table).")));
  TupleDesc desc = RelationGetDescr(registry);
  RegistryRow row{};
  bool isnull;
  Datum d = heap_getattr(tuple, kRegRelid, desc, &isnull);
  row.relid = isnull ? InvalidOid : DatumGetObjectId(d);
  d = heap_getattr(tuple, kRegRestorePending, desc, &isnull);
  row.restore_pending = !isnull && DatumGetBool(d);
  d = heap_getattr(tuple, kRegSchema, desc, &isnull);
  row.schema_name = isnull ? pstrdup("") : TextDatumGetCString(d);
  d = heap_getattr(tuple, kRegTable, desc, &isnull);
  row.table_name = isnull ? pstrdup("") : TextDatumGetCString(d);
  d = heap_getattr(tuple, kRegExcludeColumns, desc, &isnull);
  if (!isnull) {
    Datum* items;
    bool* nulls;
    int n;
    deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT, &items, &nulls, &n);
    for (int i = 0; i < n; ++i)
      if (!nulls[i]) row.excluded = lappend(row.excluded, TextDatumGetCString(items[i]));
  }
  // The numbers are what renames do not change: their current names count.
  d = heap_getattr(tuple, kRegExcludeAttnums, desc, &isnull);
  if (!isnull && OidIsValid(row.relid)) {
    Datum* items;
    bool* nulls;
    int n;
    deconstruct_array(DatumGetArrayTypeP(d), INT2OID, 2, true, TYPALIGN_SHORT, &items, &nulls, &n);
    for (int i = 0; i < n; ++i) {
      if (nulls[i]) continue;
      char* name = get_attname(row.relid, DatumGetInt16(items[i]), true);
      if (name != nullptr) row.excluded = lappend(row.excluded, name);
    }
  }
  systable_endscan(scan);
  UnregisterSnapshot(snapshot);
  table_close(registry, AccessShareLock);
  return row;
}

// The registry row a trigger names must be this table's or, for a partition,
// its root's. A trigger restored without its registry row (pg_dump --schema
// of the table's schema only, restored into another database) names an id
// that is absent there or another table's: logging under it would file this
// table's changes as that table's history (its names, its keys).
void check_registry_names(const RegistryRow& reg, int32 table_id, Relation rel) {
  Oid relid = RelationGetRelid(rel);
  if (reg.relid == relid) return;
  if (OidIsValid(reg.relid) && rel->rd_rel->relispartition &&
      list_member_oid(get_partition_ancestors(relid), reg.relid))
    return;
  ereport(ERROR,
          (errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
           errmsg("workflow audit: the trigger on \"%s.%s\" names workflow.audit_tables id %d, "
                  "which is %s.%s%s",
                  get_namespace_name(RelationGetNamespace(rel)), RelationGetRelationName(rel),
                  table_id, reg.schema_name, reg.table_name,
                  OidIsValid(reg.relid) ? "" : " (dropped)"),
           errdetail("The audit registry was not restored with this table (pg_dump of its "
                     "schema without the workflow extension's data?)."),
           errhint("Run workflow.enable_audit on the table again (with its exclude_columns).")));
}

bool is_excluded(const RegistryRow& row, const char* name) {
  ListCell* cell;
  foreach (cell, row.excluded)
    if (strcmp(static_cast<const char*>(lfirst(cell)), name) == 0) return true;
  return false;
}

// Builds the metadata in its own context, a child of CacheMemoryContext once
// complete (an error on the way frees it with the transaction).
RelationInfo* build(Trigger* trigger, Relation rel) {
  int32 table_id = trigger_table_id(trigger, rel);
  MemoryContext context = AllocSetContextCreate(CurrentMemoryContext, "workflow audit relation",
                                                ALLOCSET_SMALL_SIZES);
  MemoryContext old = MemoryContextSwitchTo(context);
  RegistryRow reg = read_registry(table_id);
  check_registry_names(reg, table_id, rel);
  TupleDesc desc = RelationGetDescr(rel);
  Bitmapset* key_attrs = primary_key_columns(rel);

  RelationInfo* info = static_cast<RelationInfo*>(palloc0(sizeof(RelationInfo)));
  info->trigger_oid = trigger->tgoid;
  info->relid = RelationGetRelid(rel);
  info->root_relid = OidIsValid(reg.relid) ? reg.relid : RelationGetRelid(rel);
  info->table_id = table_id;
  info->restore_pending = reg.restore_pending;
  info->context = context;
  info->natts = desc->natts;
  info->columns = static_cast<ColumnInfo*>(palloc0(sizeof(ColumnInfo) * desc->natts));
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    ColumnInfo& col = info->columns[i];
    col.name = pstrdup(NameStr(att->attname));
    col.name_len = static_cast<int>(strlen(col.name));
    col.skip = att->attisdropped || is_excluded(reg, col.name);
    col.is_key = !att->attisdropped &&
                 bms_is_member(att->attnum - FirstLowInvalidHeapAttributeNumber, key_attrs);
    if (col.is_key) info->nkeys++;
    col.typlen = att->attlen;
    col.typbyval = att->attbyval;
    if (att->attisdropped) continue;
    col.base_type = getBaseType(att->atttypid);
    col.kind = kind_of(col.base_type);
    if (col.kind == ValueKind::output) {
      Oid output_fn;
      bool varlena;
      getTypeOutputInfo(att->atttypid, &output_fn, &varlena);
      fmgr_info_cxt(output_fn, &col.convert, context);
    } else if (col.kind == ValueKind::generic) {
      // to_jsonb(anyelement) learns the argument type from its call
      // expression: give it one naming this column's type.
      fmgr_info_cxt(F_TO_JSONB, &col.convert, context);
      col.convert.fn_expr = reinterpret_cast<Node*>(makeFuncExpr(
          F_TO_JSONB, JSONBOID,
          list_make1(makeNullConst(att->atttypid, att->atttypmod, att->attcollation)),
          InvalidOid, InvalidOid, COERCE_EXPLICIT_CALL));
    }
  }
  // The audited table's current names (a partition logs its root's); the
  // registry's when the table is gone.
  char* table_name = OidIsValid(reg.relid) ? get_rel_name(reg.relid) : nullptr;
  char* schema_name = table_name ? get_namespace_name(get_rel_namespace(reg.relid)) : nullptr;
  if (table_name == nullptr || schema_name == nullptr) {
    table_name = reg.table_name;
    schema_name = reg.schema_name;
  }
  info->schema_name = PointerGetDatum(cstring_to_text(schema_name));
  info->table_name = PointerGetDatum(cstring_to_text(table_name));
  info->valid = true;
  MemoryContextSwitchTo(old);
  MemoryContextSetParent(context, CacheMemoryContext);
  return info;
}

// The entry's info is replaced or dropped: free it now, or by its last use.
void retire(RelationInfo* info) {
  if (info->in_use > 0)
    info->detached = true;
  else
    free_info(info);
}

// Frees entries of triggers that were dropped or whose table changed (their
// trigger OID may never be looked up again).
void sweep_invalid() {
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cache);
  CacheEntry* entry;
  while ((entry = static_cast<CacheEntry*>(hash_seq_search(&status))) != nullptr) {
    RelationInfo* info = entry->info;
    if (info != nullptr && info->valid) continue;
    if (info != nullptr) retire(info);
    Oid key = entry->trigger_oid;
    hash_search(cache, &key, HASH_REMOVE, nullptr);  // allowed during hash_seq_search
  }
}

void push_acquisition(RelationInfo* info) {
  if (acquisition_count == acquisition_capacity) {
    int capacity = acquisition_capacity == 0 ? 16 : acquisition_capacity * 2;
    Size size = sizeof(Acquisition) * capacity;
    acquisitions = static_cast<Acquisition*>(
        acquisitions == nullptr ? MemoryContextAlloc(TopMemoryContext, size)
                                : repalloc(acquisitions, size));
    acquisition_capacity = capacity;
  }
  acquisitions[acquisition_count++] = Acquisition{info, GetCurrentSubTransactionId()};
}

}  // namespace

RelationInfo* acquire(Trigger* trigger, Relation rel) {
  if (cache == nullptr) {
    HASHCTL ctl;
    memset(&ctl, 0, sizeof(ctl));
    ctl.keysize = sizeof(Oid);
    ctl.entrysize = sizeof(CacheEntry);
    ctl.hcxt = CacheMemoryContext;
    cache = hash_create("workflow audit cache", 64, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
  }
  bool found;
  CacheEntry* entry = static_cast<CacheEntry*>(hash_search(cache, &trigger->tgoid, HASH_ENTER, &found));
  if (!found) entry->info = nullptr;
  RelationInfo* info = entry->info;
  if (info != nullptr && (!info->valid || info->natts != RelationGetDescr(rel)->natts)) {
    retire(info);  // in use by an outer call: freed when that call ends
    entry->info = info = nullptr;
  }
  if (info == nullptr) {
    Oid key = trigger->tgoid;
    sweep_invalid();  // may remove this entry (its info was NULL)
    info = build(trigger, rel);
    entry = static_cast<CacheEntry*>(hash_search(cache, &key, HASH_ENTER, &found));
    entry->info = info;
  }
  info->in_use++;
  push_acquisition(info);
  return info;
}

void release(RelationInfo* info) {
  for (int i = acquisition_count - 1; i >= 0; --i) {
    if (acquisitions[i].info != info) continue;
    // The top one, as a rule; keep the stack in subtransaction order.
    memmove(&acquisitions[i], &acquisitions[i + 1], sizeof(Acquisition) * (acquisition_count - i - 1));
    --acquisition_count;
    break;
  }
  end_use(info);
}

void clear_restore_pending(RelationInfo* info, Oid owner) {
  info->restore_pending = false;
  workflow::pg::spi_as_role(owner, [&] {
    Oid types[1] = {INT4OID};
    Datum values[1] = {Int32GetDatum(info->table_id)};
    SPI_execute_with_args(
        "UPDATE workflow.audit_tables SET restore_pending = false WHERE id = $1 AND restore_pending",
        1, types, values, nullptr, false, 0);
  });
}

void init_module() {
  DefineCustomStringVariable(
      "workflow.actor", "Application user recorded as the claimed actor in workflow.audit_log.",
      "Set it per transaction with SET LOCAL workflow.actor = '...'; when empty the "
      "session user is recorded. Any role may set it: the log also records "
      "session_user_name and current_user_name.",
      &actor_guc, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
  CacheRegisterRelcacheCallback(invalidate_relation, 0);
  CacheRegisterSyscacheCallback(NAMESPACEOID, invalidate_namespace, 0);
  RegisterXactCallback(on_xact, nullptr);
  RegisterSubXactCallback(on_subxact, nullptr);
  install_finish_hook();
  writer_init_module();
}

const char* actor_setting() { return actor_guc != nullptr ? actor_guc : ""; }

}  // namespace workflow::audit
