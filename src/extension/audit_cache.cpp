// Per-trigger metadata cache of audited tables (see audit_cache.hpp).
#include "extension/audit_cache.hpp"

#include "extension/audit_finish.hpp"

extern "C" {
#include "access/htup_details.h"
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
  LocalTransactionId use_lxid;  // transaction of the last acquire
};

HTAB* cache = nullptr;
char* actor_guc = nullptr;

// Relcache callback: never frees (an invalidation may arrive while a trigger
// call is reading the entry); acquire() rebuilds invalid entries.
void invalidate_relation(Datum, Oid relid) {
  if (cache == nullptr) return;
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cache);
  CacheEntry* entry;
  while ((entry = static_cast<CacheEntry*>(hash_seq_search(&status))) != nullptr) {
    if (entry->info != nullptr && (relid == InvalidOid || entry->info->relid == relid))
      entry->info->valid = false;
  }
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

bool is_excluded(Trigger* trigger, const char* name) {
  for (int i = 0; i < trigger->tgnargs; ++i)
    if (strcmp(trigger->tgargs[i], name) == 0) return true;
  return false;
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

// Builds the metadata in its own context (child of CacheMemoryContext).
RelationInfo* build(Trigger* trigger, Relation rel) {
  MemoryContext context = AllocSetContextCreate(CacheMemoryContext, "workflow audit relation",
                                                ALLOCSET_SMALL_SIZES);
  MemoryContext old = MemoryContextSwitchTo(context);
  TupleDesc desc = RelationGetDescr(rel);
  Bitmapset* key_attrs = primary_key_columns(rel);

  RelationInfo* info = static_cast<RelationInfo*>(palloc0(sizeof(RelationInfo)));
  info->trigger_oid = trigger->tgoid;
  info->relid = RelationGetRelid(rel);
  info->context = context;
  info->natts = desc->natts;
  info->columns = static_cast<ColumnInfo*>(palloc0(sizeof(ColumnInfo) * desc->natts));
  for (int i = 0; i < desc->natts; ++i) {
    Form_pg_attribute att = TupleDescAttr(desc, i);
    ColumnInfo& col = info->columns[i];
    col.name = pstrdup(NameStr(att->attname));
    col.name_len = static_cast<int>(strlen(col.name));
    col.skip = att->attisdropped || is_excluded(trigger, col.name);
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
  // An excluded column renamed after enable_audit would silently be logged.
  for (int a = 0; a < trigger->tgnargs; ++a) {
    bool found = false;
    for (int i = 0; i < desc->natts && !found; ++i)
      found = !TupleDescAttr(desc, i)->attisdropped &&
              strcmp(NameStr(TupleDescAttr(desc, i)->attname), trigger->tgargs[a]) == 0;
    if (!found)
      ereport(WARNING, (errmsg("workflow audit: excluded column \"%s\" of table \"%s\" no longer exists",
                               trigger->tgargs[a], RelationGetRelationName(rel)),
                        errhint("After renaming an excluded column, run workflow.enable_audit again.")));
  }
  info->schema_name = PointerGetDatum(cstring_to_text(get_namespace_name(RelationGetNamespace(rel))));
  info->table_name = PointerGetDatum(cstring_to_text(RelationGetRelationName(rel)));
  info->valid = true;
  MemoryContextSwitchTo(old);
  return info;
}

// Frees entries of triggers that were dropped or whose table changed (their
// trigger OID may never be looked up again), unless a call still uses them.
void sweep_invalid() {
  HASH_SEQ_STATUS status;
  hash_seq_init(&status, cache);
  CacheEntry* entry;
  while ((entry = static_cast<CacheEntry*>(hash_seq_search(&status))) != nullptr) {
    RelationInfo* info = entry->info;
    if (info == nullptr || info->valid) continue;
    if (info->in_use > 0 && entry->use_lxid == MyProc->lxid) continue;
    MemoryContextDelete(info->context);
    Oid key = entry->trigger_oid;
    hash_search(cache, &key, HASH_REMOVE, nullptr);  // allowed during hash_seq_search
  }
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
    // A use left over from an aborted transaction does not count.
    bool busy = info->in_use > 0 && entry->use_lxid == MyProc->lxid;
    if (!busy) MemoryContextDelete(info->context);  // else: left to its caller
    entry->info = info = nullptr;
  }
  if (info == nullptr) {
    sweep_invalid();
    entry->info = nullptr;
    info = build(trigger, rel);
    entry->info = info;
  }
  if (entry->use_lxid != MyProc->lxid) info->in_use = 0;
  entry->use_lxid = MyProc->lxid;
  info->in_use++;
  return info;
}

void release(RelationInfo* info) {
  if (info->in_use > 0) info->in_use--;
}

void init_module() {
  DefineCustomStringVariable(
      "workflow.actor", "Application user recorded as actor in workflow.audit_log.",
      "Set it per transaction with SET LOCAL workflow.actor = '...'; when empty the "
      "database user is recorded.",
      &actor_guc, "", PGC_USERSET, 0, nullptr, nullptr, nullptr);
  CacheRegisterRelcacheCallback(invalidate_relation, 0);
  install_finish_hook();
}

const char* actor_setting() { return actor_guc != nullptr ? actor_guc : ""; }

}  // namespace workflow::audit
