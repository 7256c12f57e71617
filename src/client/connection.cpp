#include "workflow/connection.hpp"

#include <libpq-fe.h>
#include <poll.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <thread>

#include "core/backoff.hpp"
#include "deadline.hpp"
#include "workflow/error.hpp"

namespace workflow::client {
namespace {

using Clock = std::chrono::steady_clock;

void quiet_notices(void*, const char*) {}

// A SQLSTATE that means the link (not the statement) failed.
bool is_connection_state(const std::string& s) {
  return s.empty() || s.rfind("08", 0) == 0 || s == "57P01" || s == "57P02" || s == "57P03";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// libpq gives no SQLSTATE for a failed connection attempt: derive one from
// the server's (or the pooler's) message. Class 28 and 3D000 are refusals that
// a retry does not cure (see is_retryable); anything else is the link (08001)
// or a server that is starting or stopping (57P03), worth another attempt.
std::string connect_failure_state(const std::string& msg) {
  auto has = [&](const char* text) { return msg.find(text) != std::string::npos; };
  if (has("starting up") || has("shutting down")) return "57P03";
  if (has("password authentication failed")) return "28P01";
  if ((has("role \"") && has("does not exist")) || has("no pg_hba.conf entry") ||
      has("no such user") || has("authentication failed"))
    return "28000";
  if (has("database \"") && has("does not exist")) return "3D000";
  return "08001";
}

// libpq's own complaints about the settings, as opposed to a server's or the
// network's (those name the server: "connection to server at ...").
bool settings_refused(const std::string& msg) {
  if (msg.find("connection to server") != std::string::npos) return false;
  for (const char* start : {"invalid ", "missing \"=\"", "unterminated quoted string"})
    if (msg.rfind(start, 0) == 0) return true;
  return false;
}

struct ParamArrays {
  std::vector<const char*> values;
  explicit ParamArrays(const Params& params) {
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
  }
};

}  // namespace

Connection::Connection(const Settings& settings, QueryHook hook)
    : settings_(settings), hook_(std::move(hook)) {
  // The first dbname may be a URL or conninfo string (expanded); a second one,
  // when set, overrides just the database name.
  const char* keys[] = {"dbname", "application_name", "connect_timeout",
                        settings.database.empty() ? nullptr : "dbname", nullptr};
  const char* vals[] = {settings.conninfo.c_str(), settings.application_name.c_str(), "10",
                        settings.database.c_str(), nullptr};
  conn_ = PQconnectdbParams(keys, vals, /*expand_dbname=*/1);
  if (!conn_) throw connection_error("out of memory creating a connection");
  if (PQstatus(conn_) != CONNECTION_OK) {
    std::string msg = trim(PQerrorMessage(conn_));
    PQfinish(conn_);
    conn_ = nullptr;
    // Settings libpq refused before trying any server (an unknown option, a
    // port that is not a number): no retry can cure them, so not a
    // connection_error. libpq's reason only: the settings may hold a password.
    if (settings_refused(msg)) throw usage_error("invalid connection settings: " + msg);
    throw connection_error("could not connect: " + msg, connect_failure_state(msg));
  }
  PQsetNoticeProcessor(conn_, quiet_notices, nullptr);
}

Connection::~Connection() {
  if (conn_) PQfinish(conn_);
}

bool Connection::ok() const noexcept { return conn_ && PQstatus(conn_) == CONNECTION_OK; }

bool Connection::idle() const noexcept {
  return ok() && PQtransactionStatus(conn_) == PQTRANS_IDLE &&
         PQpipelineStatus(conn_) == PQ_PIPELINE_OFF;
}

bool Connection::in_failed_transaction() const noexcept {
  return ok() && PQtransactionStatus(conn_) == PQTRANS_INERROR;
}

int Connection::backend_pid() const noexcept { return conn_ ? PQbackendPID(conn_) : 0; }

bool Connection::ping() {
  try {
    exec("");
    return ok();
  } catch (const std::exception&) {
    return false;
  }
}

void Connection::report(const std::string& sql, Clock::time_point t0, bool ok,
                        std::string_view sqlstate, int statements) {
  if (!hook_) return;
  QueryEvent ev;
  ev.sql = sql;
  ev.duration = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t0);
  ev.ok = ok;
  ev.sqlstate = sqlstate;
  ev.statements = statements;
  try {
    hook_(ev);
  } catch (...) {
    // A logging hook must not turn a good statement into a failure.
  }
}

void Connection::throw_error(pg_result* res) {
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  const char* primary = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : nullptr;
  const char* detail = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_DETAIL) : nullptr;
  const char* hint = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_HINT) : nullptr;
  std::string sqlstate = state ? state : "";
  std::string message = primary ? primary : trim(conn_ ? PQerrorMessage(conn_) : "no connection");
  if (res) PQclear(res);
  if (!ok() || is_connection_state(sqlstate))
    throw connection_error(message, sqlstate.empty() ? "08006" : sqlstate);
  throw sql_error(sqlstate, message, detail ? detail : "", hint ? hint : "");
}

Result Connection::check(pg_result* res, const std::string& sql, Clock::time_point t0,
                         int statements) {
  const auto status = res ? PQresultStatus(res) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK || status == PGRES_EMPTY_QUERY ||
      status == PGRES_COPY_OUT || status == PGRES_COPY_IN) {
    report(sql, t0, true, {}, statements);
    return Result(res);
  }
  const char* state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : nullptr;
  report(sql, t0, false, state ? state : "08006", statements);
  throw_error(res);
}

Result Connection::exec(const std::string& sql) {
  if (!conn_) throw connection_error("connection is closed");
  const auto t0 = Clock::now();
  return check(PQexec(conn_, sql.c_str()), sql, t0);
}

bool Connection::behind_pooler() {
  if (!behind_pooler_) {
    if (!conn_) throw connection_error("connection is closed");
    Result r = exec("SELECT pg_catalog.pg_backend_pid()");
    behind_pooler_ = r.int32(0, 0) != PQbackendPID(conn_);
  }
  return *behind_pooler_;
}

bool Connection::uses_prepared_statements() {
  if (!prepared_mode_) {
    switch (settings_.statements) {
      case StatementMode::unnamed: prepared_mode_ = false; break;
      case StatementMode::prepared: prepared_mode_ = true; break;
      case StatementMode::automatic: prepared_mode_ = !behind_pooler(); break;
    }
  }
  return *prepared_mode_;
}

const std::string& Connection::prepared_name(const std::string& sql, int nparams) {
  auto it = prepared_.find(sql);
  if (it != prepared_.end()) return it->second;
  std::string name = "wf_" + std::to_string(prepared_.size() + 1);
  const auto t0 = Clock::now();
  check(PQprepare(conn_, name.c_str(), sql.c_str(), nparams, nullptr), sql, t0);
  return prepared_.emplace(sql, std::move(name)).first->second;
}

Result Connection::query(const std::string& sql, const Params& params) {
  if (!conn_) throw connection_error("connection is closed");
  const int n = static_cast<int>(params.size());
  if (!uses_prepared_statements()) {
    ParamArrays p(params);
    const auto t0 = Clock::now();
    return check(PQexecParams(conn_, sql.c_str(), n, nullptr, p.values.data(), nullptr, nullptr, 0),
                 sql, t0);
  }
  const std::string& name = prepared_name(sql, n);
  ParamArrays p(params);
  const auto t0 = Clock::now();
  return check(PQexecPrepared(conn_, name.c_str(), n, p.values.data(), nullptr, nullptr, 0), sql,
               t0);
}

std::vector<Result> Connection::pipeline(const std::string& sql,
                                         const std::vector<Params>& batches,
                                         bool separate_transactions) {
  std::vector<Statement> statements;
  statements.reserve(batches.size());
  for (const auto& params : batches) statements.push_back({sql, params});
  return pipeline(statements, separate_transactions);
}

std::vector<Result> Connection::pipeline(const std::vector<Statement>& statements,
                                         bool separate_transactions) {
  std::vector<Result> out;
  if (statements.empty()) return out;
  if (!conn_) throw connection_error("connection is closed");
  const bool named = uses_prepared_statements();
  std::vector<const std::string*> names;  // prepared before entering pipeline mode
  if (named)
    for (const auto& st : statements)
      names.push_back(&prepared_name(st.sql, static_cast<int>(st.params.size())));
  // What the query hook sees: the statement, or each distinct one in order.
  std::string text = statements.front().sql;
  for (const auto& st : statements)
    if (text.find(st.sql) == std::string::npos) text += "; " + st.sql;
  const auto t0 = Clock::now();
  if (PQenterPipelineMode(conn_) != 1) throw_error(nullptr);
  for (std::size_t i = 0; i < statements.size(); ++i) {
    const auto& st = statements[i];
    ParamArrays p(st.params);
    const int n = static_cast<int>(st.params.size());
    const int sent =
        named ? PQsendQueryPrepared(conn_, names[i]->c_str(), n, p.values.data(), nullptr, nullptr, 0)
              : PQsendQueryParams(conn_, st.sql.c_str(), n, nullptr, p.values.data(), nullptr,
                                  nullptr, 0);
    if (sent != 1) {
      throw_error(nullptr);  // the link broke while sending; the pool discards it
    }
    if (separate_transactions && PQpipelineSync(conn_) != 1) throw_error(nullptr);
  }
  if (!separate_transactions && PQpipelineSync(conn_) != 1) throw_error(nullptr);

  pg_result* first_error = nullptr;
  out.reserve(statements.size());
  for (std::size_t i = 0; i < statements.size(); ++i) {
    pg_result* res = PQgetResult(conn_);
    if (!res) {  // lost connection
      if (first_error) PQclear(first_error);
      throw_error(nullptr);
    }
    const auto st = PQresultStatus(res);
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) {
      out.emplace_back(res);
    } else if (!first_error && st == PGRES_FATAL_ERROR) {
      first_error = res;
    } else {
      PQclear(res);  // PGRES_PIPELINE_ABORTED after an error
    }
    while (pg_result* extra = PQgetResult(conn_)) PQclear(extra);  // NULL ends each query
    if (separate_transactions)
      if (pg_result* sync = PQgetResult(conn_)) PQclear(sync);  // this statement's sync
  }
  if (!separate_transactions)
    if (pg_result* sync = PQgetResult(conn_)) PQclear(sync);  // the batch's sync
  if (PQexitPipelineMode(conn_) != 1 && !first_error) throw_error(nullptr);
  if (first_error) {
    const char* state = PQresultErrorField(first_error, PG_DIAG_SQLSTATE);
    report(text, t0, false, state ? state : "", static_cast<int>(statements.size()));
    throw_error(first_error);
  }
  report(text, t0, true, {}, static_cast<int>(statements.size()));
  return out;
}

long Connection::copy_out(const std::string& copy_sql,
                          const std::function<void(std::string_view)>& sink) {
  if (!conn_) throw connection_error("connection is closed");
  const auto t0 = Clock::now();
  Result started = check(PQexec(conn_, copy_sql.c_str()), copy_sql, t0);
  if (PQresultStatus(started.raw()) != PGRES_COPY_OUT)
    throw usage_error("copy_out needs a COPY ... TO STDOUT statement");
  long rows = 0;
  for (;;) {
    char* buf = nullptr;
    const int n = PQgetCopyData(conn_, &buf, /*async=*/0);
    if (n > 0) {
      ++rows;
      try {
        sink(std::string_view(buf, static_cast<std::size_t>(n)));
      } catch (...) {
        PQfreemem(buf);
        throw;  // the connection is mid-COPY: the pool discards it
      }
      PQfreemem(buf);
    } else if (n == -1) {
      break;  // done; the final status follows
    } else {
      throw_error(nullptr);
    }
  }
  check(PQgetResult(conn_), copy_sql, t0);
  while (pg_result* extra = PQgetResult(conn_)) PQclear(extra);
  return rows;
}

void Connection::listen(const std::string& channel) {
  char* quoted = PQescapeIdentifier(conn_, channel.c_str(), channel.size());
  if (!quoted) throw_error(nullptr);
  std::string sql = std::string("LISTEN ") + quoted;
  PQfreemem(quoted);
  exec(sql);
}

void Connection::unlisten_all() { exec("UNLISTEN *"); }

std::optional<Notification> Connection::wait_notification(Clock::time_point deadline) {
  if (!conn_) throw connection_error("connection is closed");
  for (;;) {
    if (PQconsumeInput(conn_) != 1) throw_error(nullptr);
    if (PGnotify* n = PQnotifies(conn_)) {
      Notification out{n->relname, n->extra ? n->extra : "", n->be_pid};
      PQfreemem(n);
      return out;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{PQsocket(conn_), POLLIN, 0};
    if (pfd.fd < 0) throw_error(nullptr);
    const int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count(), 60000)));
    if (rc < 0 && errno != EINTR) throw connection_error(std::string("poll: ") + std::strerror(errno));
  }
}

void wait_until_ready(const Settings& settings, std::chrono::milliseconds timeout) {
  const char* keys[] = {"dbname", "connect_timeout",
                        settings.database.empty() ? nullptr : "dbname", nullptr};
  const char* vals[] = {settings.conninfo.c_str(), "5", settings.database.c_str(), nullptr};
  const auto deadline = detail::deadline_after(timeout);
  const core::BackoffPolicy policy{0.05, 1.0};
  std::mt19937 rng(std::random_device{}());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  for (int attempt = 1;; ++attempt) {
    const PGPing ping = PQpingParams(keys, vals, 1);
    if (ping == PQPING_OK) return;
    if (ping == PQPING_NO_ATTEMPT) {
      // libpq's reason, never the settings themselves: they may hold a password.
      char* err = nullptr;
      PQconninfoOption* parsed = PQconninfoParse(settings.conninfo.c_str(), &err);
      std::string reason = err ? trim(err) : "libpq made no connection attempt";
      if (parsed) PQconninfoFree(parsed);
      if (err) PQfreemem(err);
      throw usage_error("invalid connection settings: " + reason);
    }
    // The last attempt is made at the deadline, not one backoff before it.
    const auto now = Clock::now();
    if (now >= deadline) {
      // PQping says only that it failed: one connection attempt gives libpq's reason.
      // A server that came up since the ping is ready, not a timeout.
      std::string reason = "no answer";
      if (PGconn* probe = PQconnectdbParams(keys, vals, 1)) {
        const bool up = PQstatus(probe) == CONNECTION_OK;
        if (!up) reason = trim(PQerrorMessage(probe));
        PQfinish(probe);
        if (up) return;
      }
      throw timeout_error("server not ready after " + std::to_string(timeout.count()) +
                          " ms: " + reason);
    }
    const auto delay = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(
        core::backoff_delay_jittered(policy, attempt, unit(rng))));
    std::this_thread::sleep_for(std::min<Clock::duration>(delay, deadline - now));
  }
}

}  // namespace workflow::client
