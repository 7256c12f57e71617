// One libpq connection: parameterised statements (unnamed by default; named and
// prepared once per connection when Settings::statements asks for it),
// pipelined batches, LISTEN with a deadline, pooler detection.
// Server errors become sql_error (connection_error when the link is gone).
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "workflow/result.hpp"
#include "workflow/settings.hpp"

struct pg_conn;

namespace workflow::client {

using Param = std::optional<std::string>;  // nullopt = SQL NULL; text format
using Params = std::vector<Param>;

struct Statement {  // one statement of a pipeline
  std::string sql;
  Params params;
};

struct Notification {
  std::string channel;
  std::string payload;
  int backend_pid = 0;
};

class Connection {
 public:
  // Connects now; throws connection_error on failure.
  explicit Connection(const Settings& settings, QueryHook hook = {});
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  // Simple statement (may hold several commands; no parameters).
  Result exec(const std::string& sql);
  // Parameterised statement. Settings::statements = unnamed (default): sent
  // unnamed (PQexecParams, one round trip, works through any pooler);
  // prepared: prepared on first use on this connection and kept.
  Result query(const std::string& sql, const Params& params = {});
  // The same statement with many parameter sets, sent in libpq
  // pipeline mode: one network round trip.
  // separate_transactions = false: all statements form one implicit
  //   transaction (all or nothing; statements after a failed one are skipped).
  // separate_transactions = true: a sync after each statement, so each commits
  //   on its own (row locks are held for one statement only; a failure touches
  //   only its own statement, the others still run and commit).
  // The first error is thrown after the whole batch has been read.
  std::vector<Result> pipeline(const std::string& sql, const std::vector<Params>& batches,
                               bool separate_transactions = false);
  // Different statements, pipelined the same way (one round trip).
  std::vector<Result> pipeline(const std::vector<Statement>& statements,
                               bool separate_transactions = false);

  // COPY ... TO STDOUT: each data chunk (a row in text/csv format) goes to sink.
  // Returns the number of rows.
  long copy_out(const std::string& copy_sql, const std::function<void(std::string_view)>& sink);

  void listen(const std::string& channel);
  void unlisten_all();
  // Next notification, waiting on the socket (poll) until the deadline; no polling of the server.
  std::optional<Notification> wait_notification(std::chrono::steady_clock::time_point deadline);

  bool ok() const noexcept;               // link up
  bool idle() const noexcept;             // link up and no transaction open
  bool in_failed_transaction() const noexcept;
  bool ping();                            // round trip; false (no throw) when the link is gone
  // True when a connection pooler (PgBouncer, ...) stands between this
  // connection and the server: the backend that runs our statements is not the
  // one the startup reply named (a pooler answers the startup with its own
  // cancel key). One round trip on first call, then cached. A session-mode
  // pooler is detected too (it cannot be told apart from transaction mode).
  bool behind_pooler();
  // Whether query/pipeline use named prepared statements on this connection
  // (Settings::statements; automatic: prepared unless behind_pooler()).
  bool uses_prepared_statements();
  const Settings& settings() const noexcept { return settings_; }
  int backend_pid() const noexcept;
  pg_conn* raw() const noexcept { return conn_; }
  void set_hook(QueryHook hook) { hook_ = std::move(hook); }

 private:
  const std::string& prepared_name(const std::string& sql, int nparams);
  Result check(pg_result* res, const std::string& sql, std::chrono::steady_clock::time_point t0,
               int statements = 1);
  [[noreturn]] void throw_error(pg_result* res);
  void report(const std::string& sql, std::chrono::steady_clock::time_point t0, bool ok,
              std::string_view sqlstate, int statements);

  pg_conn* conn_ = nullptr;
  Settings settings_;
  QueryHook hook_;
  std::optional<bool> behind_pooler_;
  std::optional<bool> prepared_mode_;
  std::unordered_map<std::string, std::string> prepared_;  // sql text -> statement name
};

// Readiness wait for a server that is still starting: PQping with exponential
// backoff until it accepts connections, the last attempt at the deadline;
// then timeout_error, whose message ends with libpq's reason (e.g.
// "Connection refused").
void wait_until_ready(const Settings& settings, std::chrono::milliseconds timeout);

}  // namespace workflow::client
