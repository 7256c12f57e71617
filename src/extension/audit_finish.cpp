// Statements stopped early by a row limit still fire the audit's AFTER
// STATEMENT triggers (see audit_finish.hpp).
//
// Why: ExecModifyTable queues a table's AFTER STATEMENT triggers only when its
// subplan is exhausted. An INSERT/UPDATE/DELETE ... RETURNING run with a row
// limit (SPI_execute_plan(..., tcount = 1), as the native completions do)
// returns its first RETURNING row and is never called again, so the
// statement-level audit trigger is never queued although the rows were
// written and captured in the transition tables. Row-level triggers are
// queued per row and do fire, which is why only the statement mode missed
// those writes.
//
// The fix: an ExecutorFinish hook. When the top plan node is a ModifyTable
// that did not finish and its target table carries a statement-level
// workflow.audit_trigger, queue the table's AFTER STATEMENT triggers the way
// ExecModifyTable would have (fireASTriggers), before the standard
// ExecutorFinish fires the queued events. The transition tables then hold
// exactly the rows the statement wrote. Other statement triggers of that
// table fire too, as PostgreSQL documents for every executed statement.
// Cost: one pointer test per query; the trigger scan runs only on the early
// stop path. The hook also frames each statement's row-level key changes
// (audit_deferred.hpp): a setjmp per query.
#include "extension/audit_finish.hpp"

#include "extension/audit_deferred.hpp"

extern "C" {
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "nodes/execnodes.h"
#include "nodes/plannodes.h"
#include "utils/rel.h"

PGDLLEXPORT Datum workflow_audit_trigger(PG_FUNCTION_ARGS);
}

namespace workflow::audit {
namespace {

ExecutorFinish_hook_type previous_finish = nullptr;

bool has_statement_audit_trigger(ResultRelInfo* rri, CmdType operation) {
  TriggerDesc* trigdesc = rri->ri_TrigDesc;
  if (trigdesc == nullptr) return false;
  for (int i = 0; i < trigdesc->numtriggers; ++i) {
    Trigger* t = &trigdesc->triggers[i];
    if (TRIGGER_FOR_ROW(t->tgtype) || !TRIGGER_FOR_AFTER(t->tgtype)) continue;
    if (t->tgenabled == TRIGGER_DISABLED) continue;
    bool fires = (operation == CMD_INSERT && TRIGGER_FOR_INSERT(t->tgtype)) ||
                 (operation == CMD_UPDATE && TRIGGER_FOR_UPDATE(t->tgtype)) ||
                 (operation == CMD_DELETE && TRIGGER_FOR_DELETE(t->tgtype)) ||
                 (operation == CMD_INSERT && TRIGGER_FOR_UPDATE(t->tgtype));  // ON CONFLICT
    if (!fires) continue;
    FmgrInfo finfo;
    fmgr_info(t->tgfoid, &finfo);
    if (finfo.fn_addr == workflow_audit_trigger) return true;
  }
  return false;
}

void finish(QueryDesc* query) {
  PlanState* top = query->planstate;
  EState* estate = query->estate;
  // A foreign key's action (SPI without its own trigger firing): its AFTER
  // STATEMENT events join those of the statement firing it (audit_deferred.hpp).
  if (estate != nullptr && (estate->es_top_eflags & EXEC_FLAG_SKIP_TRIGGERS) &&
      query->operation != CMD_SELECT)
    deferred_note_cascade();
  if (top != nullptr && IsA(top, ModifyTableState) && estate != nullptr &&
      !(estate->es_top_eflags & (EXEC_FLAG_SKIP_TRIGGERS | EXEC_FLAG_EXPLAIN_ONLY))) {
    ModifyTableState* node = reinterpret_cast<ModifyTableState*>(top);
    ResultRelInfo* root = node->rootResultRelInfo;
    if (!node->mt_done && root != nullptr && has_statement_audit_trigger(root, node->operation)) {
      MemoryContext old = MemoryContextSwitchTo(estate->es_query_cxt);
      const ModifyTable* plan = reinterpret_cast<const ModifyTable*>(node->ps.plan);
      switch (node->operation) {
        case CMD_INSERT:
          if (plan->onConflictAction == ONCONFLICT_UPDATE)
            ExecASUpdateTriggers(estate, root, node->mt_oc_transition_capture);
          ExecASInsertTriggers(estate, root, node->mt_transition_capture);
          break;
        case CMD_UPDATE:
          ExecASUpdateTriggers(estate, root, node->mt_transition_capture);
          break;
        case CMD_DELETE:
          ExecASDeleteTriggers(estate, root, node->mt_transition_capture);
          break;
        default:
          break;
      }
      node->mt_done = true;  // nothing more runs: AFTER STATEMENT queued once
      MemoryContextSwitchTo(old);
    }
  }
  // Row-level audit triggers fire in the finish: the entries they keep for
  // after all of them (audit_deferred.hpp) are written at its end.
  DeferredLevel level;
  deferred_enter(&level, estate != nullptr ? estate->es_query_cxt : CurrentMemoryContext);
  PG_TRY();
  {
    if (previous_finish != nullptr)
      previous_finish(query);
    else
      standard_ExecutorFinish(query);
    deferred_write(&level);
  }
  PG_FINALLY();
  {
    deferred_leave(&level);
  }
  PG_END_TRY();
}

}  // namespace

void install_finish_hook() {
  previous_finish = ExecutorFinish_hook;
  ExecutorFinish_hook = finish;
}

}  // namespace workflow::audit
