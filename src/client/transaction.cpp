#include "workflow/transaction.hpp"

#include <libpq-fe.h>

#include <cstring>

#include "workflow/error.hpp"

namespace workflow::client {

Transaction::Transaction(Connection& conn, const std::string& begin) : conn_(conn) {
  conn_.exec(begin);
}

Transaction::~Transaction() {
  if (!open_ || !conn_.ok()) return;
  try {
    conn_.exec("ROLLBACK");
  } catch (...) {
    // The lease sees the connection is not idle and discards it.
  }
}

void Transaction::commit() {
  if (!open_) throw usage_error("commit() on a finished transaction");
  open_ = false;
  Result r = conn_.exec("COMMIT");
  // COMMIT of a transaction that already failed answers ROLLBACK, not an error.
  if (std::strcmp(PQcmdStatus(r.raw()), "ROLLBACK") == 0)
    throw sql_error("25P02", "transaction was rolled back: an earlier statement failed");
}

void Transaction::rollback() {
  if (!open_) return;
  open_ = false;
  conn_.exec("ROLLBACK");
}

}  // namespace workflow::client
