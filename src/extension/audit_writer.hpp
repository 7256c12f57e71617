// Batched writes to workflow.audit_log below the SQL layer: one open of the
// log and its indexes per trigger call, heap multi-inserts of up to
// kBatchRows rows, index entries through the executor's index code.
// Plain C-style state: PostgreSQL errors may longjmp through it.
#pragma once

#include "extension/audit_cache.hpp"

extern "C" {
#include "access/heapam.h"
#include "executor/executor.h"
}

#include "core/audit_rules.hpp"

namespace workflow::audit {

inline constexpr int kBatchRows = 500;
// Log ids taken per nextval: the sequence's INCREMENT BY (src/sql/20_audit_log.sql).
inline constexpr int64 kIdBlock = 512;

struct LogWriter {
  Relation log;
  Oid sequence;
  int64 next_id;   // next id of the current block
  int64 ids_left;  // ids left in it
  EState* estate;
  ResultRelInfo* result_rel;
  BulkInsertState bulk;
  CommandId cid;
  TupleTableSlot* slots[kBatchRows];
  int pending;
  bool uses_cache;  // indexes opened with the backend's cached IndexInfos
  bool uses_kept;   // estate, result_rel, slots, contexts are the backend's kept ones
  // What lives as long as the statement's writing (index arrays, the bulk
  // insert state, the identity texts): es_query_cxt of a fresh estate, or
  // the kept state's statement context, reset by the next writer_open.
  MemoryContext statement_context;
  int natts;  // kLogColumns, or kLogColumns10 on a log not yet updated from 1.0
  MemoryContext batch_context;  // jsonb and text of pending rows
  // Per statement, filled on the first row.
  bool have_statement_values;
  Datum actor;              // text: workflow.actor, else the session user
  Datum session_user_name;  // text: who logged in (GetSessionUserId)
  Datum current_user_name;  // text: whose privileges made the write (GetUserId)
  Datum txid;
  Datum changed_at;
};

// Called from _PG_init (via init_module): the log cache's invalidation callbacks.
void writer_init_module();
void writer_open(LogWriter* w);
// The audited table as the log records it: its registry id and its names.
struct LogTable {
  int32 table_id;
  Datum schema_name;  // text
  Datum table_name;   // text
};
inline LogTable log_table(const RelationInfo* info) {
  return {info->table_id, info->schema_name, info->table_name};
}

// Allocate row values in w->batch_context (switch to it first).
void writer_add(LogWriter* w, const LogTable& table, core::audit::Operation op, Datum key,
                bool key_null, Datum old_values, bool old_null, Datum new_values, bool new_null);
inline void writer_add(LogWriter* w, const RelationInfo* info, core::audit::Operation op, Datum key,
                       bool key_null, Datum old_values, bool old_null, Datum new_values,
                       bool new_null) {
  writer_add(w, log_table(info), op, key, key_null, old_values, old_null, new_values, new_null);
}
void writer_close(LogWriter* w);

}  // namespace workflow::audit
