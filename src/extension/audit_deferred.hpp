// Row-level audit triggers fire once per row when the statement ends. A key
// change is logged under the row's new key only after every row's entry
// under its old key, as the statement mode does with its second pass: in
// `SET id = id + 1` the row that leaves key 2 is logged before the row that
// arrives there. The entries under new keys wait here, per statement, and
// are written once the statement's ExecutorFinish has fired its triggers
// (audit_finish.cpp), with ids after all of them.
// Plain C-style state: PostgreSQL errors may longjmp through it.
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/pg_list.h"
}

#include "extension/audit_cache.hpp"

namespace workflow::audit {

// One statement's waiting entries (in its executor memory).
struct DeferredLevel {
  DeferredLevel* outer;
  MemoryContext context;
  List* entries;
};

// Around a statement's ExecutorFinish (the hook): enter before the standard
// finish, write after it, leave in any case (also when an error unwinds).
void deferred_enter(DeferredLevel* level, MemoryContext context);
void deferred_write(DeferredLevel* level);
void deferred_leave(DeferredLevel* level);

// Keeps an UPDATE's entry under the new key (key, changed columns' old
// values, whole new row) for the statement being finished; false when no
// statement is being finished (COPY, logical replication apply): the caller
// writes it at once.
bool defer_new_key_entry(const RelationInfo* info, Datum key, Datum old_values, Datum new_row);

}  // namespace workflow::audit
