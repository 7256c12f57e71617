// workflow.row_history(target regclass, key jsonb): the history of one row,
// read natively.
//
// The checks (target, key, primary key names) and the registry lookup run
// below the SQL layer on catalog and index scans; the log itself is read with
// one plan prepared once per backend (generic: the hash key index with
// run-time keys), so the log's row-level security policy applies exactly as
// written. What the PL/pgSQL version spent (three PL/pgSQL calls, each with
// SET search_path, a pg_index/pg_attribute join, jsonb_object_keys, two
// registry subqueries, RETURN QUERY) is gone; see bench/RESULTS.md section 2.
//
// Plain C-style code: no C++ object with a destructor is alive while
// PostgreSQL may raise an error.
#include "pg/compat.hpp"
#include "pg/relation.hpp"
#include "pg/boundary.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "catalog/pg_am.h"
#include "executor/tuptable.h"
#include "utils/acl.h"
#include "utils/rls.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "catalog/indexing.h"
#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
}

#include <cstdlib>
#include <cstring>

namespace workflow::audit {
namespace {

constexpr const char* kCaller = "workflow.row_history";

// Columns of workflow.audit_tables used here (src/sql/20_audit_log.sql).
constexpr AttrNumber kRegId = 1, kRegSchema = 2, kRegTable = 3, kRegRelid = 4;

// The log rows of one key and the table's TRUNCATEs, oldest first, as whole
// rows of the log's row type (so added or dropped columns need no change here).
SPIPlanPtr history_plan = nullptr;
constexpr const char* kHistorySql =
    "SELECT h.l FROM ("
    " SELECT l, l.id FROM workflow.audit_log l"
    "  WHERE jsonb_hash_extended(l.row_key, l.table_id::bigint) = jsonb_hash_extended($2, $1::bigint)"
    "    AND l.table_id = $1 AND l.row_key = $2"
    " UNION ALL"
    " SELECT l, l.id FROM workflow.audit_log l"
    "  WHERE l.table_id = $1 AND l.row_key IS NULL AND l.operation = 'TRUNCATE'"
    ") h ORDER BY h.id";

// The table's name as the PL/pgSQL version printed a regclass under
// search_path = pg_catalog, pg_temp.
char* display_name(Oid relid, Form_pg_class rel) {
  const char* relname = NameStr(rel->relname);
  if (isAnyTempNamespace(rel->relnamespace) || rel->relnamespace == PG_CATALOG_NAMESPACE)
    return pstrdup(quote_identifier(relname));
  char* nsp = get_namespace_name(rel->relnamespace);
  return quote_qualified_identifier(nsp, relname);
}

// The key's text, at most 100 characters (as left(key::text, 100)).
char* key_text(Jsonb* key) {
  char* s = JsonbToCString(nullptr, &key->root, VARSIZE(key));
  int len = static_cast<int>(strlen(s));
  int clip = pg_mbcharcliplen(s, len, 100);
  s[clip] = '\0';
  return s;
}

int compare_names(const void* a, const void* b) {
  return strcmp(*static_cast<char* const*>(a), *static_cast<char* const*>(b));
}

// Raises 22023 unless the key's top-level names are exactly the primary key
// columns of the table (no check when it has no primary key any more).
void check_key_names(Oid relid, Form_pg_class rel, Jsonb* key) {
  Relation pg_index = table_open(IndexRelationId, AccessShareLock);
  ScanKeyData skey;
  ScanKeyInit(&skey, Anum_pg_index_indrelid, BTEqualStrategyNumber, F_OIDEQ,
              ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(pg_index, IndexIndrelidIndexId, true, nullptr, 1, &skey);
  HeapTuple tuple;
  int nkeys = -1;
  char** names = nullptr;
  while ((tuple = systable_getnext(scan)) != nullptr) {
    Form_pg_index index = reinterpret_cast<Form_pg_index>(GETSTRUCT(tuple));
    if (!index->indisprimary) continue;
    nkeys = index->indnkeyatts;
    names = static_cast<char**>(palloc(sizeof(char*) * (nkeys > 0 ? nkeys : 1)));
    for (int k = 0; k < nkeys; ++k) names[k] = get_attname(relid, index->indkey.values[k], false);
    break;
  }
  systable_endscan(scan);
  table_close(pg_index, AccessShareLock);
  if (nkeys < 0) return;  // lost its primary key after auditing began

  bool matches = static_cast<int>(JB_ROOT_COUNT(key)) == nkeys;
  for (int k = 0; matches && k < nkeys; ++k) {
    JsonbValue name;
    name.type = jbvString;
    name.val.string.val = names[k];
    name.val.string.len = static_cast<int>(strlen(names[k]));
    matches = findJsonbValueFromContainer(&key->root, JB_FOBJECT, &name) != nullptr;
  }
  if (matches) return;
  qsort(names, nkeys, sizeof(char*), compare_names);
  Datum* items = static_cast<Datum*>(palloc(sizeof(Datum) * (nkeys > 0 ? nkeys : 1)));
  for (int k = 0; k < nkeys; ++k) items[k] = CStringGetTextDatum(names[k]);
  ArrayType* expected = construct_array(items, nkeys, TEXTOID, -1, false, TYPALIGN_INT);
  char* expected_text = OidOutputFunctionCall(F_ARRAY_OUT, PointerGetDatum(expected));
  ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                  errmsg("%s: key %s does not name the primary key columns of %s", kCaller,
                         key_text(key), display_name(relid, rel)),
                  errhint("Expected the keys %s.", expected_text)));
}

bool text_equals(Datum d, const char* s) {
  text* t = DatumGetTextPP(d);
  size_t len = VARSIZE_ANY_EXHDR(t);
  return len == strlen(s) && memcmp(VARDATA_ANY(t), s, len) == 0;
}

// The table's registry id: its own row, else that of a dropped table of the
// same name (whose history it continues); 0 when it was never audited.
int32 registry_id(Oid relid, Form_pg_class rel, Oid* registered_relid) {
  Oid schema = get_namespace_oid("workflow", false);
  Relation registry = table_open(workflow::pg::extension_table("audit_tables"), AccessShareLock);
  TupleDesc desc = RelationGetDescr(registry);
  Snapshot snapshot = GetActiveSnapshot();
  int32 found = 0;
  *registered_relid = InvalidOid;

  ScanKeyData key;
  ScanKeyInit(&key, kRegRelid, BTEqualStrategyNumber, F_OIDEQ, ObjectIdGetDatum(relid));
  SysScanDesc scan = systable_beginscan(
      registry, get_relname_relid("audit_tables_relid_idx", schema), true, snapshot, 1, &key);
  HeapTuple tuple;
  bool isnull;
  while ((tuple = systable_getnext(scan)) != nullptr) {
    int32 id = DatumGetInt32(heap_getattr(tuple, kRegId, desc, &isnull));
    if (!isnull && (found == 0 || id < found)) {  // ORDER BY id LIMIT 1
      found = id;
      *registered_relid = relid;
    }
  }
  systable_endscan(scan);

  if (found == 0) {
    char* nsp = get_namespace_name(rel->relnamespace);
    ScanKeyData keys[2];
    ScanKeyInit(&keys[0], kRegSchema, BTEqualStrategyNumber, F_TEXTEQ, CStringGetTextDatum(nsp));
    ScanKeyInit(&keys[1], kRegTable, BTEqualStrategyNumber, F_TEXTEQ,
                CStringGetTextDatum(NameStr(rel->relname)));
    keys[0].sk_collation = keys[1].sk_collation = C_COLLATION_OID;
    scan = systable_beginscan(registry, get_relname_relid("audit_tables_name_idx", schema), true,
                              snapshot, 2, keys);
    while ((tuple = systable_getnext(scan)) != nullptr) {
      // The scan keys are rechecked here: equality of text is collation-blind.
      if (!text_equals(heap_getattr(tuple, kRegSchema, desc, &isnull), nsp) ||
          !text_equals(heap_getattr(tuple, kRegTable, desc, &isnull), NameStr(rel->relname)))
        continue;
      bool relid_null;
      Datum old_relid = heap_getattr(tuple, kRegRelid, desc, &relid_null);
      if (!relid_null && SearchSysCacheExists1(RELOID, old_relid)) continue;  // another live table
      int32 id = DatumGetInt32(heap_getattr(tuple, kRegId, desc, &isnull));
      if (!isnull && id > found) {  // ORDER BY id DESC LIMIT 1
        found = id;
        *registered_relid = relid_null ? InvalidOid : DatumGetObjectId(old_relid);
      }
    }
    systable_endscan(scan);
  }
  table_close(registry, AccessShareLock);
  return found;
}


// Columns of workflow.audit_log read here (src/sql/20_audit_log.sql).
constexpr AttrNumber kLogId = 1, kLogTableId = 2, kLogOperation = 5, kLogRowKey = 6;

// Whether the caller may read the log rows of registry entry reg_id, whose
// table is registered_relid: the log's SELECT privilege, then, where the
// log's row-level security applies to the caller, its policy
// audit_log_readable (src/sql/20_audit_log.sql) evaluated once for the table
// instead of once per row. The policy depends only on the row's table_id, so
// the two agree; test/pgtap/audit_hotpath.sql and audit_roles.sql compare them for several
// roles. A change of the policy must be made here too.
bool table_visible(Relation log, Oid registered_relid) {
  AclResult log_acl = pg_class_aclcheck(RelationGetRelid(log), GetUserId(), ACL_SELECT);
  if (log_acl != ACLCHECK_OK) aclcheck_error(log_acl, OBJECT_TABLE, RelationGetRelationName(log));
  if (check_enable_rls(RelationGetRelid(log), InvalidOid, false) != RLS_ENABLED) return true;
  // pg_has_role('workflow_auditor', 'USAGE'): every table, dropped or revoked ones too.
  Oid auditor = get_role_oid("workflow_auditor", true);
  if (OidIsValid(auditor) && has_privs_of_role(GetUserId(), auditor)) return true;
  // has_table_privilege(t.relid, 'SELECT'), false for a dropped table ...
  if (!OidIsValid(registered_relid)) return false;
  HeapTuple tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(registered_relid));
  if (!HeapTupleIsValid(tuple)) return false;
  Form_pg_class rel = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple));
  const bool row_security = rel->relrowsecurity;
  const Oid owner = rel->relowner;
  ReleaseSysCache(tuple);
  if (pg_class_aclcheck(registered_relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK) return false;
  // ... and of a table with row-level security only its owner's roles.
  return !row_security || has_privs_of_role(GetUserId(), owner);
}

// The log's index of that name if it has the shape this reader scans: a hash
// index on one expression (the key's hash), or a partial btree on table_id.
Oid usable_index(Relation log, const char* name, bool hash) {
  Oid index_oid = get_relname_relid(name, RelationGetNamespace(log));
  if (!OidIsValid(index_oid)) return InvalidOid;
  HeapTuple tuple = SearchSysCache1(INDEXRELID, ObjectIdGetDatum(index_oid));
  if (!HeapTupleIsValid(tuple)) return InvalidOid;
  Form_pg_index index = reinterpret_cast<Form_pg_index>(GETSTRUCT(tuple));
  bool ok = index->indrelid == RelationGetRelid(log) && index->indisvalid && index->indnatts == 1 &&
            (hash ? index->indkey.values[0] == 0 : index->indkey.values[0] == kLogTableId);
  ReleaseSysCache(tuple);
  if (!ok) return InvalidOid;
  tuple = SearchSysCache1(RELOID, ObjectIdGetDatum(index_oid));
  if (!HeapTupleIsValid(tuple)) return InvalidOid;
  Oid am = reinterpret_cast<Form_pg_class>(GETSTRUCT(tuple))->relam;
  ReleaseSysCache(tuple);
  return am == (hash ? HASH_AM_OID : BTREE_AM_OID) ? index_oid : InvalidOid;
}

struct Found {
  int64 id;
  HeapTuple tuple;
};

int compare_found(const void* a, const void* b) {
  int64 x = static_cast<const Found*>(a)->id, y = static_cast<const Found*>(b)->id;
  return x < y ? -1 : x > y ? 1 : 0;
}

// One index scan with one equality key; keeps the rows `accept` takes.
template <typename Accept>
void scan_index(Relation log, Oid index_oid, StrategyNumber strategy, RegProcedure eq, Datum value,
                TupleTableSlot* slot, Found** found, int* count, int* capacity, Accept accept) {
  Relation index = index_open(index_oid, AccessShareLock);
  ScanKeyData key;
  ScanKeyInit(&key, 1, strategy, eq, value);
  IndexScanDesc scan = pg::compat::index_beginscan(log, index, GetActiveSnapshot(), 1, 0);
  index_rescan(scan, &key, 1, nullptr, 0);
  while (index_getnext_slot(scan, ForwardScanDirection, slot)) {
    slot_getsomeattrs(slot, kLogRowKey);
    if (slot->tts_isnull[kLogId - 1] || !accept(slot)) continue;
    if (*count == *capacity) {
      *capacity *= 2;
      *found = static_cast<Found*>(repalloc(*found, sizeof(Found) * *capacity));
    }
    (*found)[*count].id = DatumGetInt64(slot->tts_values[kLogId - 1]);
    (*found)[*count].tuple = ExecCopySlotHeapTuple(slot);
    ++*count;
  }
  index_endscan(scan);
  index_close(index, AccessShareLock);
}

// The history read natively: the key's rows by the hash index (rechecked:
// hashes collide), the table's TRUNCATEs by the partial index, sorted by id.
// Returns false, having read nothing, when the log lacks those indexes.
bool read_native(Relation log, int32 reg_id, Jsonb* key, Tuplestorestate* out) {
  Oid row_idx = usable_index(log, "audit_log_row_idx", true);
  Oid truncate_idx = usable_index(log, "audit_log_truncate_idx", false);
  if (!OidIsValid(row_idx) || !OidIsValid(truncate_idx)) return false;
  TupleTableSlot* slot = table_slot_create(log, nullptr);
  int count = 0, capacity = 8;
  Found* found = static_cast<Found*>(palloc(sizeof(Found) * capacity));
  Datum hash = DirectFunctionCall2(jsonb_hash_extended, PointerGetDatum(key), Int64GetDatum(reg_id));
  scan_index(log, row_idx, HTEqualStrategyNumber, F_INT8EQ, hash, slot, &found, &count, &capacity,
             [&](TupleTableSlot* s) {
               return !s->tts_isnull[kLogTableId - 1] &&
                      DatumGetInt32(s->tts_values[kLogTableId - 1]) == reg_id &&
                      !s->tts_isnull[kLogRowKey - 1] &&
                      DatumGetBool(DirectFunctionCall2(jsonb_eq, s->tts_values[kLogRowKey - 1],
                                                       PointerGetDatum(key)));
             });
  scan_index(log, truncate_idx, BTEqualStrategyNumber, F_INT4EQ, Int32GetDatum(reg_id), slot, &found,
             &count, &capacity, [&](TupleTableSlot* s) {
               return !s->tts_isnull[kLogTableId - 1] &&
                      DatumGetInt32(s->tts_values[kLogTableId - 1]) == reg_id &&
                      s->tts_isnull[kLogRowKey - 1] && !s->tts_isnull[kLogOperation - 1] &&
                      text_equals(s->tts_values[kLogOperation - 1], "TRUNCATE");
             });
  ExecDropSingleTupleTableSlot(slot);
  if (count > 1) qsort(found, count, sizeof(Found), compare_found);
  for (int i = 0; i < count; ++i) tuplestore_puttuple(out, found[i].tuple);
  return true;
}

// The same history through the SQL layer (the log's row-level security
// applies as written): used when the log's indexes are not the shipped ones.
void read_sql(int32 reg_id, Jsonb* key, Tuplestorestate* out) {
  if (SPI_connect() != SPI_OK_CONNECT) elog(ERROR, "%s: SPI_connect failed", kCaller);
  if (history_plan == nullptr) {
    Oid types[2] = {INT4OID, JSONBOID};
    SPIPlanPtr plan = SPI_prepare_cursor(kHistorySql, 2, types, CURSOR_OPT_GENERIC_PLAN);
    if (plan == nullptr)
      elog(ERROR, "%s: could not prepare the history query: %s", kCaller,
           SPI_result_code_string(SPI_result));
    if (SPI_keepplan(plan) != 0) elog(ERROR, "%s: SPI_keepplan failed", kCaller);
    history_plan = plan;
  }
  Datum values[2] = {Int32GetDatum(reg_id), PointerGetDatum(key)};
  int rc = SPI_execute_plan(history_plan, values, nullptr, true, 0);
  if (rc != SPI_OK_SELECT)
    elog(ERROR, "%s: history query failed: %s", kCaller, SPI_result_code_string(rc));
  for (uint64 i = 0; i < SPI_processed; ++i) {
    bool isnull;
    Datum row = SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, 1, &isnull);
    if (isnull) continue;
    HeapTupleHeader header = DatumGetHeapTupleHeader(row);
    HeapTupleData tuple;
    tuple.t_len = HeapTupleHeaderGetDatumLength(header);
    ItemPointerSetInvalid(&tuple.t_self);
    tuple.t_tableOid = InvalidOid;
    tuple.t_data = header;
    tuplestore_puttuple(out, &tuple);
  }
  SPI_finish();
}

}  // namespace
}  // namespace workflow::audit

using namespace workflow::audit;

WF_FUNCTION(workflow_row_history) {
  if (PG_ARGISNULL(0))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("%s: target must not be NULL", kCaller)));
  Oid relid = PG_GETARG_OID(0);
  HeapTuple class_tuple = SearchSysCacheCopy1(RELOID, ObjectIdGetDatum(relid));
  if (!HeapTupleIsValid(class_tuple))
    ereport(ERROR, (errcode(ERRCODE_UNDEFINED_TABLE),
                    errmsg("%s: relation with OID %u does not exist", kCaller, relid)));
  Form_pg_class rel = reinterpret_cast<Form_pg_class>(GETSTRUCT(class_tuple));
  if (rel->relkind != RELKIND_RELATION && rel->relkind != RELKIND_PARTITIONED_TABLE)
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("%s: %s is not a table", kCaller, display_name(relid, rel))));
  if (PG_ARGISNULL(1))
    ereport(ERROR, (errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
                    errmsg("%s: key must not be NULL", kCaller)));
  Jsonb* key = PG_GETARG_JSONB_P(1);
  if (!JB_ROOT_IS_OBJECT(key) || JB_ROOT_IS_SCALAR(key))
    ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                    errmsg("%s: key must be a jsonb object of the primary key columns, got %s",
                           kCaller, key_text(key))));
  check_key_names(relid, rel, key);

  InitMaterializedSRF(fcinfo, 0);
  ReturnSetInfo* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
  Oid registered_relid;
  int32 reg_id = registry_id(relid, rel, &registered_relid);
  if (reg_id == 0) return static_cast<Datum>(0);  // never audited: no history

  Relation log = table_open(workflow::pg::extension_table("audit_log"), AccessShareLock);
  if (table_visible(log, registered_relid) && !read_native(log, reg_id, key, rsinfo->setResult))
    read_sql(reg_id, key, rsinfo->setResult);
  table_close(log, AccessShareLock);
  return static_cast<Datum>(0);
}
