// Where to connect, and how to talk to what is there. from_environment() takes
// DATABASE_URL when it is set, otherwise an empty conninfo, which makes libpq
// read PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD... itself.
//
// Connection poolers: PgBouncer in transaction mode (the way most production
// PostgreSQL is reached) hands each transaction a different server connection,
// so named prepared statements collide or vanish and LISTEN hears nothing. The
// defaults work through it: unnamed statements, and waits that detect the
// pooler and poll instead of LISTEN.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <string_view>

namespace workflow::client {

// One statement's outcome, given to the query hook (logging, timing, metrics).
struct QueryEvent {
  std::string_view sql;        // statement text (or the prepared statement's text)
  std::chrono::microseconds duration{0};
  bool ok = true;
  std::string_view sqlstate;   // empty when ok
  int statements = 1;          // > 1 for a pipelined batch
};
using QueryHook = std::function<void(const QueryEvent&)>;

// How Connection::query / pipeline send a parameterised statement.
enum class StatementMode {
  // Default. Unnamed statements (PQexecParams: parse, bind and execute in one
  // round trip): works through every pooler, PgBouncer's transaction mode included.
  unnamed,
  // Opt-in. Named server-side prepared statements (wf_1, wf_2, ...), prepared
  // once per connection and kept: saves the server's parse and plan per call.
  // Needs a direct or session-mode connection: behind PgBouncer in transaction
  // mode they fail with 42P05 "prepared statement "wf_1" already exists" or 26000.
  prepared,
  // prepared on a direct connection, unnamed when a pooler is detected
  // (Connection::behind_pooler()).
  automatic,
};

// How Client::wait_for_stage / wait_for_job wait. Whatever the mode, a wait
// returns only what it has read from the tables: a notification only wakes it.
enum class WaitMode {
  // Default. LISTEN on a direct connection; poll every poll_interval when a
  // pooler is detected (Connection::behind_pooler()).
  automatic,
  // Always LISTEN. LISTEN needs a direct or session-mode connection; use this
  // behind a session-mode pooler (which automatic would detect and poll behind).
  // The state is also re-read every 5 s, so a wait never hangs for lack of a
  // notification.
  listen,
  // Always poll every poll_interval.
  poll,
};

struct Settings {
  std::string conninfo;  // "postgresql://..." or "host=... dbname=..."; empty = PG* variables
  std::string application_name = "workflow-client";
  std::string database;  // when set, overrides the database named by conninfo/PGDATABASE
  StatementMode statements = StatementMode::unnamed;
  WaitMode waits = WaitMode::automatic;
  std::chrono::milliseconds poll_interval{200};  // waits that poll read the state this often

  // DATABASE_URL, and WORKFLOW_STATEMENTS (unnamed | prepared | auto) and
  // WORKFLOW_WAITS (auto | listen | poll) when set; usage_error for another value.
  static Settings from_environment();
  static Settings from_conninfo(std::string conninfo);
};

// "unnamed" | "prepared" | "auto"; usage_error for anything else.
StatementMode parse_statement_mode(std::string_view text);
// "auto" | "listen" | "poll"; usage_error for anything else.
WaitMode parse_wait_mode(std::string_view text);

}  // namespace workflow::client
