// Entries under new keys of row-level key changes (see audit_deferred.hpp).
#include "extension/audit_deferred.hpp"

extern "C" {
#include "utils/datum.h"
}

#include "core/audit_rules.hpp"
#include "extension/audit_writer.hpp"

namespace workflow::audit {
namespace {

struct DeferredEntry {
  LogTable table;
  core::audit::Operation op;
  Datum key, old_values, new_row;  // jsonb; new_row is 0 for a DELETE
};

DeferredLevel* current = nullptr;  // the innermost statement being finished

Datum copy_varlena(Datum d) { return datumCopy(d, false, -1); }

}  // namespace

void deferred_enter(DeferredLevel* level, MemoryContext context) {
  level->outer = current;
  level->context = context;
  level->entries = NIL;
  level->cascaded = false;
  current = level;
}

void deferred_note_cascade() {
  if (current != nullptr) current->cascaded = true;
}

void deferred_leave(DeferredLevel* level) { current = level->outer; }

namespace {

void keep(const RelationInfo* info, core::audit::Operation op, Datum key, Datum old_values,
          Datum new_row) {
  MemoryContext old = MemoryContextSwitchTo(current->context);
  auto* e = static_cast<DeferredEntry*>(palloc(sizeof(DeferredEntry)));
  e->table = {info->table_id, copy_varlena(info->schema_name), copy_varlena(info->table_name)};
  e->op = op;
  e->key = copy_varlena(key);
  e->old_values = copy_varlena(old_values);
  e->new_row = new_row == 0 ? 0 : copy_varlena(new_row);
  current->entries = lappend(current->entries, e);
  MemoryContextSwitchTo(old);
}

}  // namespace

bool defer_new_key_entry(const RelationInfo* info, Datum key, Datum old_values, Datum new_row) {
  if (current == nullptr) return false;
  keep(info, core::audit::Operation::update, key, old_values, new_row);
  return true;
}

bool defer_cascaded_delete(const RelationInfo* info, Datum key, Datum old_row) {
  if (current == nullptr || !current->cascaded) return false;
  keep(info, core::audit::Operation::remove, key, old_row, 0);
  return true;
}

void deferred_write(DeferredLevel* level) {
  if (level->entries == NIL) return;
  List* entries = level->entries;
  level->entries = NIL;
  LogWriter writer;
  writer_open(&writer);
  ListCell* cell;
  foreach (cell, entries) {
    const auto* e = static_cast<const DeferredEntry*>(lfirst(cell));
    writer_add(&writer, e->table, e->op, e->key, false, e->old_values, false, e->new_row,
               e->new_row == 0);
  }
  writer_close(&writer);
}

}  // namespace workflow::audit
