// Pool: size limit, checkout timeout, RAII leases (no leak when the caller
// throws), discarding connections left in a transaction, health check of idle
// connections, metrics; connection settings and readiness wait; destroying a
// pool waits for the leases in use.
#include <atomic>
#include <memory>
#include <thread>

#include "test_db.hpp"

WFTEST_DATABASE("wf_client_pool");

using namespace wftest;
using namespace std::chrono_literals;

namespace {
PoolOptions small_pool(std::size_t n, std::chrono::milliseconds timeout = 300ms) {
  PoolOptions o;
  o.settings = settings();
  o.max_size = n;
  o.checkout_timeout = timeout;
  return o;
}
}  // namespace

TEST(ClientPool, LimitAndCheckoutTimeout) {
  Pool pool(small_pool(2, 200ms));
  Lease a = pool.acquire();
  Lease b = pool.acquire();
  EXPECT_EQ(pool.metrics().in_use, 2u);
  try {
    Lease c = pool.acquire();
    FAIL() << "third acquire on a pool of 2 must time out";
  } catch (const pool_timeout& e) {
    EXPECT_NE(std::string(e.what()).find("exhausted"), std::string::npos) << e.what();
  }
  const auto m = pool.metrics();
  EXPECT_EQ(m.timeouts, 1u);
  EXPECT_EQ(m.waits, 1u);
  EXPECT_EQ(m.created, 2u);
}

TEST(ClientPool, WaiterGetsConnectionReleasedByAnotherThread) {
  Pool pool(small_pool(1, 5000ms));
  auto held = std::make_unique<Lease>(pool.acquire());
  const int pid = (*held)->backend_pid();
  std::thread releaser([&] {
    std::this_thread::sleep_for(100ms);
    held.reset();
  });
  Lease next = pool.acquire();  // waits, then gets the same connection
  releaser.join();
  EXPECT_EQ(next->backend_pid(), pid);
  EXPECT_EQ(pool.metrics().waits, 1u);
  EXPECT_EQ(pool.metrics().created, 1u);
}

TEST(ClientPool, NoLeakWhenCallerThrows) {
  Pool pool(small_pool(1));
  for (int i = 0; i < 5; ++i) {
    try {
      Lease l = pool.acquire();
      l->exec("SELECT 1");
      throw std::runtime_error("caller fails");
    } catch (const std::runtime_error&) {
    }
  }
  EXPECT_EQ(pool.metrics().in_use, 0u);
  EXPECT_EQ(pool.metrics().idle, 1u);
  EXPECT_EQ(pool.metrics().created, 1u);
  EXPECT_NO_THROW(pool.acquire());
}

TEST(ClientPool, ConnectionLeftInTransactionIsDiscarded) {
  Pool pool(small_pool(1));
  int pid = 0;
  {
    Lease l = pool.acquire();
    pid = l->backend_pid();
    l->exec("BEGIN");
    l->exec("CREATE TEMP TABLE leftover(x int)");
  }  // returned with an open transaction: must not be reused
  Lease l = pool.acquire();
  EXPECT_NE(l->backend_pid(), pid);
  EXPECT_TRUE(l->idle());
  EXPECT_EQ(pool.metrics().created, 2u);
  // The discarded connection's transaction was not committed.
  EXPECT_EQ(l->exec("SELECT to_regclass('pg_temp.leftover') IS NULL").boolean(0, 0), true);
}

TEST(ClientPool, TransactionRollsBackWhenCallerThrows) {
  Pool pool(small_pool(1));
  {
    Lease l = pool.acquire();
    l->exec("CREATE TABLE IF NOT EXISTS pool_tx(x int)");
  }
  try {
    Lease l = pool.acquire();
    Transaction tx(*l);
    l->exec("INSERT INTO pool_tx VALUES (1)");
    throw std::runtime_error("abort");
  } catch (const std::runtime_error&) {
  }
  Lease l = pool.acquire();
  EXPECT_EQ(l->exec("SELECT count(*) FROM pool_tx").int64(0, 0), 0);
  EXPECT_EQ(pool.metrics().created, 1u);  // rolled back, so the connection was reusable
}

TEST(ClientPool, HealthCheckReplacesDeadIdleConnection) {
  PoolOptions o = small_pool(1);
  o.idle_check_after = 0ms;  // check every idle connection before reuse
  Pool pool(o);
  int pid = 0;
  {
    Lease l = pool.acquire();
    pid = l->backend_pid();
  }
  Connection killer(settings());
  killer.query("SELECT pg_terminate_backend($1::int)", {std::to_string(pid)});
  // Wait until the backend is gone.
  for (int i = 0; i < 100; ++i) {
    if (killer.query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int",
                     {std::to_string(pid)}).int64(0, 0) == 0) break;
    std::this_thread::sleep_for(20ms);
  }
  Lease l = pool.acquire();
  EXPECT_NE(l->backend_pid(), pid);
  EXPECT_EQ(l->exec("SELECT 42").int32(0, 0), 42);
  const auto m = pool.metrics();
  EXPECT_GE(m.health_checks, 1u);
  EXPECT_GE(m.errors, 1u);
  EXPECT_EQ(m.created, 2u);
}

// Destroying a pool while other threads hold leases waited for nothing: the
// leases were then returned to freed memory. The destructor waits for them.
TEST(ClientPool, DestructorWaitsForLeasesInUse) {
  auto pool = std::make_unique<Pool>(small_pool(3, 5000ms));
  std::atomic<int> finished{0};
  std::vector<std::thread> calls;
  for (int i = 0; i < 3; ++i)
    calls.emplace_back([&, p = pool.get()] {
      Lease lease = p->acquire();
      lease->exec("SELECT pg_sleep(0.3)");
      ++finished;  // still holding the lease
    });
  while (pool->metrics().in_use < 3) std::this_thread::sleep_for(1ms);
  pool.reset();
  EXPECT_EQ(finished.load(), 3) << "the pool was destroyed while its leases were in use";
  for (auto& t : calls) t.join();
}

TEST(ClientPool, ConnectFailureIsConnectionErrorAndFreesTheSlot) {
  PoolOptions o;
  o.settings = Settings::from_conninfo("host=127.0.0.1 port=1 dbname=x connect_timeout=2");
  o.max_size = 1;
  Pool pool(o);
  EXPECT_THROW(pool.acquire(), connection_error);
  EXPECT_THROW(pool.acquire(), connection_error);  // not pool_timeout: the slot was released
  EXPECT_EQ(pool.metrics().in_use, 0u);
  EXPECT_EQ(pool.metrics().errors, 2u);
}

TEST(ClientPool, ReadinessWait) {
  EXPECT_NO_THROW(wait_until_ready(settings(), 5000ms));
  EXPECT_THROW(wait_until_ready(Settings::from_conninfo("host=127.0.0.1 port=1"), 300ms),
               timeout_error);
}

// wait_until_ready with a timeout too long for a time point (milliseconds::max()
// as "as long as it takes") waits for the server; it used to overflow the
// deadline into the past and throw timeout_error after one ping. The "server"
// is a socket name in an empty directory that becomes a link to the real
// server's socket while the wait runs.
TEST(ClientPool, ReadinessWaitWithAVeryLongTimeoutWaits) {
  Connection c(settings());
  const std::string dirs = c.exec("SHOW unix_socket_directories").string(0, 0);
  const std::string port = c.exec("SHOW port").string(0, 0);
  const std::string user = c.exec("SELECT current_user").string(0, 0);
  ASSERT_FALSE(dirs.empty()) << "the test server has no Unix socket";
  const std::string real = dirs.substr(0, dirs.find(',')) + "/.s.PGSQL." + port;
  char tmpl[] = "/tmp/wf-ready-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr);
  const std::string dir = tmpl, link = dir + "/.s.PGSQL." + port;
  Settings later = settings();
  later.conninfo = "host=" + dir + " port=" + port + " user=" + user;

  std::atomic<int> outcome{0};  // 1 ready, 2 timeout_error, 3 other error
  std::thread waiter([&] {
    try {
      wait_until_ready(later, std::chrono::milliseconds::max());
      outcome = 1;
    } catch (const timeout_error&) {
      outcome = 2;
    } catch (...) {
      outcome = 3;
    }
  });
  std::this_thread::sleep_for(300ms);  // room for a wrong early timeout_error
  const bool gave_up_early = outcome.load() != 0;
  ASSERT_EQ(symlink(real.c_str(), link.c_str()), 0);
  waiter.join();
  unlink(link.c_str());
  rmdir(dir.c_str());
  EXPECT_FALSE(gave_up_early) << "wait_until_ready(milliseconds::max()) gave up at once";
  EXPECT_EQ(outcome.load(), 1);
}

TEST(ClientSettings, FromEnvironmentAndDatabaseOverride) {
  EXPECT_EQ(Settings::from_environment().conninfo, std::getenv("DATABASE_URL"));
  Connection c(settings());
  EXPECT_EQ(c.exec("SELECT current_database()").string(0, 0), database_name());
  EXPECT_EQ(c.exec("SELECT current_setting('application_name')").string(0, 0),
            "workflow-client-test");
}

TEST(ClientHook, SeesEveryStatementWithSqlstate) {
  std::vector<std::pair<std::string, std::string>> seen;
  Connection c(settings(), [&](const QueryEvent& e) {
    seen.emplace_back(std::string(e.sql), std::string(e.sqlstate));
    EXPECT_GE(e.duration.count(), 0);
  });
  c.query("SELECT $1::int + 1", {"41"});
  EXPECT_THROW(c.exec("SELECT 1/0"), sql_error);
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(seen.back().first, "SELECT 1/0");
  EXPECT_EQ(seen.back().second, "22012");
}

TEST(ClientConnection, ErrorsCarrySqlstateDetailAndNoNamedStatementsByDefault) {
  Connection c(settings());
  try {
    c.exec("DO $$BEGIN RAISE EXCEPTION 'bad %', 'x' USING ERRCODE = '22023', DETAIL = 'd', HINT = 'h'; END$$");
    FAIL();
  } catch (const sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22023");
    EXPECT_EQ(std::string(e.what()), "bad x");
    EXPECT_EQ(e.detail(), "d");
    EXPECT_EQ(e.hint(), "h");
  }
  for (int i = 0; i < 3; ++i)
    EXPECT_EQ(c.query("SELECT $1::text", {std::string("it's \"quoted\" ü")}).string(0, 0),
              "it's \"quoted\" ü");
  // Unnamed statements by default: nothing named is left on the server
  // connection, which behind PgBouncer (transaction mode) another client gets.
  EXPECT_EQ(c.exec("SELECT count(*) FROM pg_prepared_statements").int64(0, 0), 0);
  EXPECT_TRUE(c.query("SELECT $1::text IS NULL", {std::nullopt}).boolean(0, 0));
  std::vector<Params> batch(5, Params{std::string("7")});
  EXPECT_EQ(c.pipeline("SELECT $1::int + 1", batch).at(4).int32(0, 0), 8);
  EXPECT_EQ(c.pipeline("SELECT $1::int + 1", batch, true).at(4).int32(0, 0), 8);
  EXPECT_EQ(c.exec("SELECT count(*) FROM pg_prepared_statements").int64(0, 0), 0);
}

TEST(ClientConnection, PipelineRunsABatchAndReportsTheFirstError) {
  Connection c(settings());
  std::vector<Params> batch;
  for (int i = 0; i < 100; ++i) batch.push_back({std::to_string(i)});
  auto results = c.pipeline("SELECT $1::int * 2", batch);
  ASSERT_EQ(results.size(), 100u);
  EXPECT_EQ(results[99].int32(0, 0), 198);
  batch[50] = {std::string("not a number")};
  try {
    c.pipeline("SELECT $1::int * 2", batch);
    FAIL();
  } catch (const sql_error& e) {
    EXPECT_EQ(e.sqlstate(), "22P02");
  }
  EXPECT_TRUE(c.idle());  // usable again after a failed batch
  EXPECT_EQ(c.exec("SELECT 1").int32(0, 0), 1);
}

TEST(ClientConnection, CopyOutStreamsRows) {
  Connection c(settings());
  std::string out;
  const long rows = c.copy_out("COPY (SELECT g, 'a,b' FROM generate_series(1,3) g) TO STDOUT WITH (FORMAT csv)",
                               [&](std::string_view chunk) { out += chunk; });
  EXPECT_EQ(rows, 3);
  EXPECT_EQ(out, "1,\"a,b\"\n2,\"a,b\"\n3,\"a,b\"\n");
}

// acquire(timeout) with a timeout too long for a time point (milliseconds::max()
// as "wait as long as it takes") waits; it used to overflow the deadline into
// the past and throw pool_timeout at once.
TEST(ClientPool, AcquireWithAVeryLongTimeoutWaits) {
  Pool pool(small_pool(1));
  auto held = std::make_unique<Lease>(pool.acquire());
  std::atomic<int> outcome{0};  // 1 got the connection, 2 pool_timeout
  std::thread waiter([&] {
    try {
      Lease l = pool.acquire(std::chrono::milliseconds::max());
      outcome = 1;
    } catch (const pool_timeout&) {
      outcome = 2;
    }
  });
  while (pool.metrics().waits == 0) std::this_thread::yield();
  std::this_thread::sleep_for(100ms);  // room for a wrong early pool_timeout to happen
  held.reset();
  waiter.join();
  EXPECT_EQ(outcome.load(), 1) << "acquire(milliseconds::max()) gave up at once";
}
