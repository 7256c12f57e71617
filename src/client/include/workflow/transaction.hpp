// RAII transaction: BEGIN in the constructor, commit() explicitly; a
// transaction destroyed without commit (e.g. the caller threw) rolls back.
#pragma once

#include <string>

#include "workflow/connection.hpp"

namespace workflow::client {

class Transaction {
 public:
  explicit Transaction(Connection& conn, const std::string& begin = "BEGIN");
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  Connection& connection() noexcept { return conn_; }
  void commit();
  void rollback();

 private:
  Connection& conn_;
  bool open_ = true;
};

}  // namespace workflow::client
