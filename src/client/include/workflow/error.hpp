// Exceptions thrown by the client library. Every server error carries its
// SQLSTATE, so callers branch on sqlstate() instead of parsing messages.
#pragma once

#include <stdexcept>
#include <string>

namespace workflow::client {

// Any error reported by the server (or by libpq for a statement).
class sql_error : public std::runtime_error {
 public:
  sql_error(std::string sqlstate, const std::string& message, std::string detail = {},
            std::string hint = {})
      : std::runtime_error(message),
        sqlstate_(std::move(sqlstate)),
        detail_(std::move(detail)),
        hint_(std::move(hint)) {}
  const std::string& sqlstate() const noexcept { return sqlstate_; }
  const std::string& detail() const noexcept { return detail_; }
  const std::string& hint() const noexcept { return hint_; }

  // 40001 serialization_failure, 40P01 deadlock_detected: the transaction may be retried.
  bool is_transient() const noexcept { return sqlstate_ == "40001" || sqlstate_ == "40P01"; }

 private:
  std::string sqlstate_;
  std::string detail_;
  std::string hint_;
};

// The connection is gone or could not be made (class 08, admin shutdown 57P01,
// server starting 57P03, or libpq reporting CONNECTION_BAD). Retry on a new one
// (is_retryable), except when the connect was refused: 28000 / 28P01 (role,
// authentication), 3D000 (database), derived from the message at connect.
class connection_error : public sql_error {
 public:
  explicit connection_error(const std::string& message, std::string sqlstate = "08006")
      : sql_error(std::move(sqlstate), message) {}
};

// Pool::acquire waited checkout_timeout and no connection became free.
class pool_timeout : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A wait (readiness, LISTEN) reached its deadline.
class timeout_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Misuse of the library itself (e.g. a transaction used after commit).
class usage_error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

}  // namespace workflow::client
