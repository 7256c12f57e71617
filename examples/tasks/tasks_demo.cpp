// examples/tasks: the task model from C++ on the workflow client library
// (pool, retries). Usage: tasks_demo ACTING_USER_ID FILE.csv (connection from
// DATABASE_URL / PG*; the role needs tasks_app_client). Creates a task,
// lists and searches, completes it, prints its history, imports the CSV
// through COPY (all records or none). Each write is one transaction that
// names the acting user (tasks_app.act_as, called by the functions).
#include <libpq-fe.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "workflow/workflow.hpp"

namespace wc = workflow::client;

namespace {

// COPY ... FROM STDIN with the file's bytes (the library has COPY out only).
void copy_in(wc::Connection& conn, const std::string& sql, const std::string& data) {
  conn.exec(sql);  // leaves the connection in COPY IN state (PGRES_COPY_IN)
  PGconn* pg = conn.raw();
  if (PQputCopyData(pg, data.data(), static_cast<int>(data.size())) != 1 ||
      PQputCopyEnd(pg, nullptr) != 1)
    throw wc::connection_error(PQerrorMessage(pg));
  while (PGresult* r = PQgetResult(pg)) {
    const bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    const std::string state = ok ? "" : PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const std::string message = ok ? "" : PQresultErrorMessage(r);
    PQclear(r);
    if (!ok) throw wc::sql_error(state, message);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: tasks_demo ACTING_USER_ID FILE.csv\n";
    return 2;
  }
  const std::string user = argv[1];
  std::ifstream file(argv[2], std::ios::binary);
  std::stringstream csv;
  csv << file.rdbuf();
  try {
    wc::Client client;
    const auto task = client.transaction([&](wc::Connection& c) {
      return c.query("SELECT tasks_app.create_task($1, $2, assignee => $1::bigint, "
                     "due_date => current_date + 1, description => $3)",
                     {user, "Replace the air filter", "demo: the filter in hall B"})
          .string(0, 0);
    });
    std::cout << "created task " << task << "\n";
    client.run([&](wc::Connection& c) {
      auto page = c.query("SELECT id, title FROM tasks_app.list_tasks(assignee => $1, "
                          "status => 'open', page_size => 5)", {user});
      std::cout << "open tasks of user " << user << " (first page): " << page.rows() << "\n";
      auto found = c.query("SELECT id FROM tasks_app.list_tasks(search => $1)", {"air filter"});
      std::cout << "search 'air filter': " << found.rows() << " task(s)\n";
    });
    client.transaction([&](wc::Connection& c) {
      c.query("SELECT tasks_app.set_status($1, $2, 'done')", {user, task});
    });
    client.run([&](wc::Connection& c) {
      auto h = c.query("SELECT string_agg(action || ' by ' || coalesce(user_id::text, '?'), ', ' "
                       "ORDER BY created_at) FROM tasks_app.history($1)", {task});
      std::cout << "history: " << h.string(0, 0) << "\n";
    });
    const auto imported = client.transaction([&](wc::Connection& c) {
      c.exec("SELECT tasks_app.begin_import()");
      copy_in(c,
              "COPY pg_temp.task_import (title, description, assignee_telegram_id, site, "
              "due_date, due_time, reminder_date, reminder_time, status, priority, "
              "repeat_interval) FROM STDIN (FORMAT csv, HEADER true)",
              csv.str());
      return c.query("SELECT tasks_app.import_tasks($1)", {user}).string(0, 0);
    });
    std::cout << "imported " << imported << "\n";
  } catch (const wc::sql_error& e) {
    std::cerr << "error " << e.sqlstate() << ": " << e.what()
              << (e.detail().empty() ? "" : "\n" + e.detail()) << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
