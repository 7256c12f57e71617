// Per-trigger metadata of an audited table, cached in a long-lived memory
// context and rebuilt after any relcache invalidation of the table (ALTER
// TABLE, CREATE/DROP TRIGGER, rename...). Plain C-style data: no destructors.
#pragma once

extern "C" {
#include "postgres.h"
#include "commands/trigger.h"
#include "fmgr.h"
#include "utils/rel.h"
}

namespace workflow::audit {

// How a column's value becomes a jsonb value (same result as to_jsonb).
enum class ValueKind : uint8 { integer, numeric, boolean, text, jsonb, datetime, output, generic };

struct ColumnInfo {
  bool skip;        // dropped or excluded: never logged
  bool is_key;      // part of the primary key
  ValueKind kind;
  Oid base_type;    // type after stripping domains
  int16 typlen;
  bool typbyval;
  const char* name;
  int name_len;
  FmgrInfo convert; // output function (kind output) or to_jsonb (kind generic)
};

struct RelationInfo {
  Oid trigger_oid;
  Oid relid;        // the table the trigger is on (a partition or the root)
  Oid root_relid;   // the audited table (workflow.audit_tables.relid)
  int32 table_id;   // workflow.audit_tables.id: what the log records
  bool restore_pending;  // see workflow.audit_tables.restore_pending
  bool valid;
  bool detached;    // replaced in the cache while in use: freed by its last release
  int in_use;       // >0 while a trigger call works with it: not freed then
  MemoryContext context;
  int natts;
  ColumnInfo* columns;  // natts entries
  int nkeys;
  Datum schema_name;    // text
  Datum table_name;     // text
};

// Cached metadata for this trigger on this relation (built on first use).
// Every acquire is undone by release, or by the abort of the (sub)transaction
// it was made in (an error caught by a savepoint), so an entry invalidated
// while in use is always freed.
RelationInfo* acquire(Trigger* trigger, Relation rel);
void release(RelationInfo* info);

// Clears restore_pending of the table in the registry and in the cache.
// `owner` is the role the registry is read and written as (the log's owner).
void clear_restore_pending(RelationInfo* info, Oid owner);

// Called from _PG_init: GUC workflow.actor, relcache / namespace callbacks,
// transaction callbacks, the ExecutorFinish hook.
void init_module();

// The workflow.actor setting, or "" when unset.
const char* actor_setting();

}  // namespace workflow::audit
