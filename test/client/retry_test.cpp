// Retries: a connection killed by pg_terminate_backend mid-transaction is
// retried on a new connection and the transaction's rows land exactly once;
// 40001 and a real deadlock (40P01) are retried; other errors are not.
#include <atomic>
#include <thread>

#include "test_db.hpp"

WFTEST_DATABASE("wf_client_retry");

using namespace wftest;
using namespace std::chrono_literals;

namespace {

RetryPolicy fast_retry(int attempts = 6) {
  RetryPolicy p;
  p.max_attempts = attempts;
  p.base_seconds = 0.01;
  p.cap_seconds = 0.1;
  return p;
}

void terminate_and_wait(int pid) {
  Connection killer(settings());
  const std::string p = std::to_string(pid);
  killer.query("SELECT pg_terminate_backend($1::int)", {p});
  for (int i = 0; i < 200; ++i) {
    if (killer.query("SELECT count(*) FROM pg_stat_activity WHERE pid = $1::int", {p}).int64(0, 0) == 0)
      return;
    std::this_thread::sleep_for(10ms);
  }
  FAIL() << "backend " << pid << " did not exit";
}

}  // namespace

TEST(ClientRetry, TerminatedMidTransactionIsRetriedAndNothingIsLostOrDoubled) {
  Client client(client_options(2));
  client.run([](Connection& c) { c.exec("CREATE TABLE killed_tx(attempt int, item int)"); });
  int attempts = 0;
  std::vector<int> pids;
  in_transaction(client.pool(), fast_retry(), [&](Connection& c) {
    ++attempts;
    pids.push_back(c.backend_pid());
    c.query("INSERT INTO killed_tx VALUES ($1::int, 1)", {std::to_string(attempts)});
    if (attempts == 1) terminate_and_wait(c.backend_pid());  // dies between two statements
    c.query("INSERT INTO killed_tx VALUES ($1::int, 2)", {std::to_string(attempts)});
  });
  EXPECT_EQ(attempts, 2);
  ASSERT_EQ(pids.size(), 2u);
  EXPECT_NE(pids[0], pids[1]);
  auto r = client.run([](Connection& c) {
    return c.exec("SELECT attempt, item FROM killed_tx ORDER BY item");
  });
  ASSERT_EQ(r.rows(), 2);  // both rows, once each, from the retried attempt only
  EXPECT_EQ(r.int32(0, 0), 2);
  EXPECT_EQ(r.int32(1, 0), 2);
  EXPECT_GE(client.pool().metrics().errors, 1u);
}

TEST(ClientRetry, TerminatedIdlePooledConnectionIsReplacedByRun) {
  Client client(client_options(1));
  const int pid = client.run([](Connection& c) { return c.backend_pid(); });
  terminate_and_wait(pid);
  // The pooled connection is dead; the call fails on it and is retried on a new one.
  const auto id = client.run([](Connection& c) {
    return api::create_job(c, "retry", json::object(), 1);
  });
  EXPECT_FALSE(id.empty());
  EXPECT_NE(client.run([](Connection& c) { return c.backend_pid(); }), pid);
}

TEST(ClientRetry, SerializationFailureIsRetried) {
  Client client(client_options(1));
  int attempts = 0;
  in_transaction(client.pool(), fast_retry(), [&](Connection& c) {
    if (++attempts < 3)
      c.exec("DO $$BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END$$");
  });
  EXPECT_EQ(attempts, 3);
}

TEST(ClientRetry, RealDeadlockIsRetriedAndBothTransactionsCommit) {
  Client client(client_options(4));
  client.run([](Connection& c) {
    c.exec("CREATE TABLE dl(id int PRIMARY KEY, n int); INSERT INTO dl VALUES (1, 0), (2, 0)");
  });
  std::atomic<int> arrived{0};
  std::atomic<int> attempts{0};
  auto txn = [&](int first, int second) {
    in_transaction(client.pool(), fast_retry(), [&](Connection& c) {
      const int attempt = ++attempts;
      c.query("UPDATE dl SET n = n + 1 WHERE id = $1::int", {std::to_string(first)});
      if (attempt <= 2) {  // first tries of both: meet, then cross -> deadlock
        ++arrived;
        while (arrived.load() < 2) std::this_thread::sleep_for(1ms);
      }
      c.query("UPDATE dl SET n = n + 1 WHERE id = $1::int", {std::to_string(second)});
    });
  };
  std::thread a(txn, 1, 2), b(txn, 2, 1);
  a.join();
  b.join();
  // One of the two was chosen as the deadlock victim and retried: 3 attempts
  // as a rule. Under load a retry can meet the other transaction again, so
  // more are allowed; what must hold is that both committed exactly once.
  EXPECT_GE(attempts.load(), 3);
  auto r = client.run([](Connection& c) { return c.exec("SELECT sum(n) FROM dl"); });
  EXPECT_EQ(r.int64(0, 0), 4);  // each transaction's two updates, exactly once
}

TEST(ClientRetry, OtherErrorsAreNotRetriedAndKeepTheirSqlstate) {
  Client client(client_options(1));
  int attempts = 0;
  const auto state = sqlstate_of([&] {
    in_transaction(client.pool(), fast_retry(), [&](Connection& c) {
      ++attempts;
      c.exec("SELECT 1/0");
    });
  });
  EXPECT_EQ(state, "22012");
  EXPECT_EQ(attempts, 1);
}

TEST(ClientRetry, GivesUpAfterMaxAttempts) {
  Client client(client_options(1));
  int attempts = 0;
  const auto state = sqlstate_of([&] {
    in_transaction(client.pool(), fast_retry(4), [&](Connection& c) {
      ++attempts;
      c.exec("DO $$BEGIN RAISE EXCEPTION 'always' USING ERRCODE = '40P01'; END$$");
    });
  });
  EXPECT_EQ(state, "40P01");
  EXPECT_EQ(attempts, 4);
}

TEST(ClientRetry, BackoffGrowsAndIsJittered) {
  RetryPolicy p;
  p.base_seconds = 0.1;
  p.cap_seconds = 1.0;
  for (int i = 0; i < 50; ++i) {
    const double d1 = retry_delay(p, 1), d3 = retry_delay(p, 3), d9 = retry_delay(p, 9);
    EXPECT_GE(d1, 0.05);
    EXPECT_LE(d1, 0.1);
    EXPECT_GE(d3, 0.2);
    EXPECT_LE(d3, 0.4);
    EXPECT_GE(d9, 0.5);
    EXPECT_LE(d9, 1.0);
  }
}
