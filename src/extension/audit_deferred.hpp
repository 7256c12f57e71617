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
  // A query that skips triggers (a foreign key's ON DELETE / ON UPDATE
  // action) ran while this statement fired its triggers: PostgreSQL adds
  // its rows to one transition table per table and operation at this level,
  // whose AFTER STATEMENT triggers fire once, at the end, in the order the
  // operations were last queued, so a row a cascade SET NULL updated and
  // another cascade deleted can reach the log as DELETE, then UPDATE.
  bool cascaded;
};

// A statement that skips triggers finishes inside the current level.
void deferred_note_cascade();

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

// Keeps a statement-level DELETE's entry (key, whole old row) for the end of
// the statement being finished when foreign-key actions ran in it
// (DeferredLevel::cascaded): such actions only UPDATE and DELETE, and a
// deleted row is never updated again, so every DELETE belongs after the
// cascaded UPDATEs. false when it is to be written at once.
bool defer_cascaded_delete(const RelationInfo* info, Datum key, Datum old_row);

}  // namespace workflow::audit
