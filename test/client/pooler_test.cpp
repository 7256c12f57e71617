// Statement and wait modes (Settings::statements, Settings::waits) and pooler
// detection. Run directly by ctest; test/stress/client_pgbouncer.sh runs it
// again through PgBouncer in transaction mode with WF_EXPECT_POOLER=1.
#include <thread>

#include "test_db.hpp"

WFTEST_DATABASE("wf_client_pooler");

using namespace wftest;
using namespace std::chrono_literals;
namespace a = workflow::client::api;

namespace {

bool expect_pooler() {
  const char* v = std::getenv("WF_EXPECT_POOLER");
  return v && std::string(v) == "1";
}

Settings with(StatementMode statements, WaitMode waits = WaitMode::automatic) {
  Settings s = settings();
  s.statements = statements;
  s.waits = waits;
  s.poll_interval = 50ms;
  return s;
}

long named_statements(Connection& c) {
  return c.exec("SELECT count(*) FROM pg_prepared_statements").int64(0, 0);
}

}  // namespace

TEST(ClientPooler, ModesParseAndDefaults) {
  EXPECT_EQ(parse_statement_mode("unnamed"), StatementMode::unnamed);
  EXPECT_EQ(parse_statement_mode("prepared"), StatementMode::prepared);
  EXPECT_EQ(parse_statement_mode("auto"), StatementMode::automatic);
  EXPECT_THROW(parse_statement_mode("named"), usage_error);
  EXPECT_EQ(parse_wait_mode("auto"), WaitMode::automatic);
  EXPECT_EQ(parse_wait_mode("listen"), WaitMode::listen);
  EXPECT_EQ(parse_wait_mode("poll"), WaitMode::poll);
  EXPECT_THROW(parse_wait_mode(""), usage_error);
  Settings s;
  EXPECT_EQ(s.statements, StatementMode::unnamed);
  EXPECT_EQ(s.waits, WaitMode::automatic);
  setenv("WORKFLOW_STATEMENTS", "prepared", 1);
  setenv("WORKFLOW_WAITS", "poll", 1);
  EXPECT_EQ(Settings::from_environment().statements, StatementMode::prepared);
  EXPECT_EQ(Settings::from_environment().waits, WaitMode::poll);
  setenv("WORKFLOW_STATEMENTS", "bogus", 1);
  EXPECT_THROW(Settings::from_environment(), usage_error);
  unsetenv("WORKFLOW_STATEMENTS");
  unsetenv("WORKFLOW_WAITS");
}

TEST(ClientPooler, DetectsThePooler) {
  Connection c(settings());
  EXPECT_EQ(c.behind_pooler(), expect_pooler());
  EXPECT_EQ(c.behind_pooler(), expect_pooler());  // cached, same answer
  Connection automatic(with(StatementMode::automatic));
  EXPECT_EQ(automatic.uses_prepared_statements(), !expect_pooler());
  Client client(client_options());
  EXPECT_EQ(client.waits_listen(), !expect_pooler());
}

TEST(ClientPooler, UnnamedByDefaultEverywhere) {
  Connection c(settings());
  EXPECT_FALSE(c.uses_prepared_statements());
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.query("SELECT $1::int", {std::to_string(i)}).int32(0, 0), i);
  // Through a transaction pooler each statement may run on another server
  // connection: none of them has a statement of ours.
  for (int i = 0; i < 3; ++i) EXPECT_EQ(named_statements(c), 0);
  // Many clients, many statements, one shared server pool: no 42P05, no 26000.
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      try {
        Connection mine(settings());
        for (int i = 0; i < 50; ++i)
          if (mine.query("SELECT $1::int * " + std::to_string(i % 7), {std::to_string(t)})
                  .int32(0, 0) != t * (i % 7))
            ++errors;
      } catch (const std::exception&) {
        ++errors;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors.load(), 0);
}

TEST(ClientPooler, PreparedWhenAskedForOnADirectConnection) {
  if (expect_pooler()) {
    // Opt-in named statements are for direct or session-mode connections; here
    // (transaction mode) only automatic is checked: it falls back to unnamed.
    Connection c(with(StatementMode::automatic));
    for (int i = 0; i < 3; ++i) EXPECT_EQ(c.query("SELECT $1::int", {"5"}).int32(0, 0), 5);
    return;
  }
  for (auto mode : {StatementMode::prepared, StatementMode::automatic}) {
    Connection c(with(mode));
    EXPECT_TRUE(c.uses_prepared_statements());
    for (int i = 0; i < 3; ++i) EXPECT_EQ(c.query("SELECT $1::int", {"5"}).int32(0, 0), 5);
    std::vector<Params> batch(4, Params{std::string("2")});
    EXPECT_EQ(c.pipeline("SELECT $1::int * 3", batch).at(3).int32(0, 0), 6);
    EXPECT_EQ(named_statements(c), 2);  // prepared once each, then reused
  }
}

TEST(ClientPooler, PollingWaitsSeeTheStateAndIgnoreForgedEvents) {
  ClientOptions o = client_options();
  o.pool.settings = with(StatementMode::unnamed, WaitMode::poll);
  Client client(o);
  EXPECT_FALSE(client.waits_listen());
  const auto job = client.run([&](Connection& c) {
    const auto j = a::create_job(c, "poll-test", json::object(), 1);
    a::add_tasks(c, j, 1, "poll", std::vector<json>(2, json::object()));
    return j;
  });
  EXPECT_FALSE(client.wait_for_stage(job, 1, 150ms));
  EXPECT_EQ(client.wait_for_job(job, 150ms), std::nullopt);
  EXPECT_EQ(sqlstate_of([&] { client.wait_for_job("no-such-job", 100ms); }), "P0002");
  std::atomic<bool> done{false};
  std::thread completer([&] {
    std::this_thread::sleep_for(300ms);
    Client other(client_options());
    other.run([&](Connection& c) {
      c.query("SELECT pg_catalog.pg_notify('workflow_job_complete', $1)",
              {json{{"job_id", job}, {"status", "completed"}}.dump()});
      done = true;
      for (const auto& t : a::claim_tasks(c, "w", 10, {"poll"}))
        a::complete_task(c, t.id, t.job_id, t.stage, json::object());
      a::advance_job_stage(c, job, 1, 2);
    });
  });
  EXPECT_TRUE(client.wait_for_stage(job, 1, 30s));
  EXPECT_EQ(client.wait_for_job(job, 30s), std::optional<std::string>("completed"));
  completer.join();
  EXPECT_TRUE(done.load());
  // Polling holds no connection between reads and leaves no LISTEN behind.
  EXPECT_EQ(client.pool().metrics().in_use, 0u);
  EXPECT_EQ(client.run([](Connection& c) {
    return c.exec("SELECT count(*) FROM pg_listening_channels()").int64(0, 0);
  }), 0);
}

TEST(ClientPooler, ListenModeAnswersFromTheState) {
  // WaitMode::listen. Directly the notification wakes the wait; through a
  // transaction pooler (the PgBouncer run) LISTEN hears nothing and the
  // periodic re-read of the state (every 5 s) ends the wait all the same.
  ClientOptions o = client_options();
  o.pool.settings = with(StatementMode::unnamed, WaitMode::listen);
  Client client(o);
  EXPECT_TRUE(client.waits_listen());
  const auto job = client.run([&](Connection& c) {
    const auto j = a::create_job(c, "listen-test", json::object(), 1);
    a::add_tasks(c, j, 1, "quiet", std::vector<json>(1, json::object()));
    return j;
  });
  std::thread completer([&] {
    std::this_thread::sleep_for(200ms);
    Connection c(settings());
    for (const auto& t : a::claim_tasks(c, "w", 10, {"quiet"}))
      a::complete_task(c, t.id, t.job_id, t.stage, json::object());
  });
  EXPECT_TRUE(client.wait_for_stage(job, 1, 20s));
  completer.join();
}
