// wait_for_stage / wait_for_job: LISTEN-based (polling behind a pooler), with a
// timeout; an event that happened before the wait started is still seen (state
// read after LISTEN); a forged NOTIFY never makes a wait return early; the
// pooled connection is handed back without its LISTENs; a LISTEN connection
// lost mid-wait is replaced and the wait goes on.
#include <atomic>
#include <future>
#include <thread>

#include "test_db.hpp"

WFTEST_DATABASE("wf_client_wait");

using namespace wftest;
using namespace std::chrono_literals;
namespace a = workflow::client::api;

namespace {

// A one-stage job with n tasks of a type unique to the test.
std::string job_with_tasks(Client& client, const std::string& type, int n, int stages = 1) {
  return client.run([&](Connection& c) {
    const auto job = a::create_job(c, "wait-test", json::object(), stages);
    std::vector<json> params(n, json::object());
    a::add_tasks(c, job, 1, type, params);
    return job;
  });
}

void complete_all(Client& client, const std::string& type) {
  client.run([&](Connection& c) {
    for (const auto& t : a::claim_tasks(c, "w", 100, {type}))
      a::complete_task(c, t.id, t.job_id, t.stage, json::object());
  });
}

}  // namespace

TEST(ClientWait, StageTimesOutWhileOpen) {
  Client client(client_options());
  const auto job = job_with_tasks(client, "open", 2);
  EXPECT_FALSE(client.wait_for_stage(job, 1, 200ms));
}

TEST(ClientWait, StageWakesWhenAnotherConnectionCompletesIt) {
  Client client(client_options());
  const auto job = job_with_tasks(client, "later", 3);
  std::thread completer([&] {
    std::this_thread::sleep_for(300ms);
    Client other(client_options());
    complete_all(other, "later");
  });
  EXPECT_TRUE(client.wait_for_stage(job, 1, 30s));
  completer.join();
  EXPECT_TRUE(client.run([&](Connection& c) { return a::job_progress(c, job).at(0).complete; }));
}

TEST(ClientWait, StageCompletedBeforeTheWaitIsNotMissed) {
  Client client(client_options());
  const auto job = job_with_tasks(client, "before", 2);
  complete_all(client, "before");
  EXPECT_TRUE(client.wait_for_stage(job, 1, 100ms));
}

TEST(ClientWait, JobEndsCompletedOrCancelled) {
  Client client(client_options());
  const auto done = job_with_tasks(client, "jobdone", 1);
  std::thread finisher([&] {
    std::this_thread::sleep_for(200ms);
    Client other(client_options());
    complete_all(other, "jobdone");
    other.run([&](Connection& c) { return a::advance_job_stage(c, done, 1, 2); });
  });
  EXPECT_EQ(client.wait_for_job(done, 30s), std::optional<std::string>("completed"));
  finisher.join();

  const auto cancelled = job_with_tasks(client, "jobcancel", 1);
  std::thread canceller([&] {
    std::this_thread::sleep_for(200ms);
    Client other(client_options());
    other.run([&](Connection& c) { return a::cancel_job(c, cancelled); });
  });
  EXPECT_EQ(client.wait_for_job(cancelled, 30s), std::optional<std::string>("cancelled"));
  canceller.join();
  // Already ended: answered at once from the state.
  EXPECT_EQ(client.wait_for_job(cancelled, 1ms), std::optional<std::string>("cancelled"));
  // A stage of a cancelled job will never complete: no need to wait for the timeout.
  EXPECT_FALSE(client.wait_for_stage(cancelled, 1, 30s));
}

TEST(ClientWait, JobTimeoutAndUnknownJob) {
  Client client(client_options());
  const auto job = job_with_tasks(client, "jobopen", 1);
  EXPECT_EQ(client.wait_for_job(job, 200ms), std::nullopt);
  EXPECT_EQ(sqlstate_of([&] { client.wait_for_job("no-such-job", 100ms); }), "P0002");
  EXPECT_EQ(sqlstate_of([&] { client.wait_for_stage("no-such-job", 1, 100ms); }), "P0002");
}

// Every pooled connection in use: the wait gives up when its own timeout is
// up, not after the pool's checkout_timeout (pool_timeout says how long it
// waited for a connection).
TEST(ClientWait, ExhaustedPoolIsWaitedForOnlyUntilTheTimeout) {
  for (const auto mode : {WaitMode::listen, WaitMode::poll}) {
    auto options = client_options(1);
    options.pool.checkout_timeout = 60s;
    options.pool.settings.waits = mode;
    Client client(options);
    const auto job = job_with_tasks(client, "exhausted", 1);
    Lease held = client.pool().acquire();
    try {
      client.wait_for_job(job, 300ms);
      ADD_FAILURE() << "wait_for_job returned while the only connection was held";
    } catch (const pool_timeout& e) {
      const std::string what = e.what();
      const auto at = what.find(" for ");
      ASSERT_NE(at, std::string::npos) << what;
      EXPECT_LE(std::stol(what.substr(at + 5)), 300) << what;
    }
  }
}

TEST(ClientWait, ConnectionGoesBackWithoutListens) {
  Client client(client_options(1));
  const auto job = job_with_tasks(client, "unlisten", 1);
  EXPECT_FALSE(client.wait_for_stage(job, 1, 50ms));
  const auto channels = client.run([](Connection& c) {
    return c.exec("SELECT count(*) FROM pg_listening_channels()").int64(0, 0);
  });
  EXPECT_EQ(channels, 0);
  EXPECT_EQ(client.pool().metrics().created, 1u);
}

TEST(ClientWait, NotificationWithDeadline) {
  Connection listener(settings());
  Connection sender(settings());
  listener.listen("wf_test_channel");
  EXPECT_FALSE(listener.wait_notification(std::chrono::steady_clock::now() + 50ms));
  sender.exec("NOTIFY wf_test_channel, 'hello'");
  auto n = listener.wait_notification(std::chrono::steady_clock::now() + 10s);
  ASSERT_TRUE(n);
  EXPECT_EQ(n->channel, "wf_test_channel");
  EXPECT_EQ(n->payload, "hello");
  EXPECT_EQ(n->backend_pid, sender.backend_pid());
}

namespace {

// Any role that can connect may NOTIFY any channel with any payload.
void forge(Connection& c, const std::string& channel, const json& payload) {
  c.query("SELECT pg_catalog.pg_notify($1, $2)", {channel, payload.dump()});
}

}  // namespace

TEST(ClientWait, ForgedStageNotificationDoesNotEndTheWait) {
  Client client(client_options());
  const auto job = job_with_tasks(client, "forged-stage", 2, 2);
  std::atomic<bool> really_complete{false};
  auto waiter = std::async(std::launch::async, [&] {
    const bool done = client.wait_for_stage(job, 1, 60s);
    return std::make_pair(done, really_complete.load());
  });
  std::this_thread::sleep_for(300ms);  // the wait is listening (or polling) by now
  Connection forger(settings());
  for (int i = 0; i < 3; ++i) {
    forge(forger, "workflow_stage_complete", {{"job_id", job}, {"stage", 1}});
    forge(forger, "workflow_job_complete", {{"job_id", job}, {"status", "completed"}});
    forge(forger, "workflow_stage_complete", "not json at all");
    std::this_thread::sleep_for(100ms);
  }
  // Still waiting: the stage is open and the job is pending.
  EXPECT_EQ(waiter.wait_for(700ms), std::future_status::timeout)
      << "wait_for_stage returned on a forged notification";
  really_complete = true;
  complete_all(client, "forged-stage");
  const auto [done, after_real_completion] = waiter.get();
  EXPECT_TRUE(done);
  EXPECT_TRUE(after_real_completion) << "returned before the stage was really complete";
  EXPECT_TRUE(client.run([&](Connection& c) { return a::job_progress(c, job).at(0).complete; }));
}

TEST(ClientWait, ForgedJobNotificationDoesNotEndTheWait) {
  Client client(client_options());
  const auto job = job_with_tasks(client, "forged-job", 1);
  std::atomic<bool> really_ended{false};
  auto waiter = std::async(std::launch::async, [&] {
    const auto status = client.wait_for_job(job, 60s);
    return std::make_pair(status, really_ended.load());
  });
  std::this_thread::sleep_for(300ms);
  Connection forger(settings());
  for (const char* status : {"completed", "failed", "cancelled"}) {
    forge(forger, "workflow_job_complete", {{"job_id", job}, {"status", status}});
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(waiter.wait_for(700ms), std::future_status::timeout)
      << "wait_for_job returned on a forged notification";
  // Its only stage complete, the job not yet advanced (still running): a forged
  // job event still does not end the wait.
  complete_all(client, "forged-job");
  forge(forger, "workflow_job_complete", {{"job_id", job}, {"status", "completed"}});
  EXPECT_EQ(waiter.wait_for(500ms), std::future_status::timeout)
      << "wait_for_job returned while the job was still running";
  really_ended = true;
  client.run([&](Connection& c) { return a::advance_job_stage(c, job, 1, 2); });
  const auto [status, after_real_end] = waiter.get();
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  EXPECT_TRUE(after_real_end) << "returned before the job really ended";
}

// A LISTEN wait whose connection is lost (backend terminated, as by a server
// restart) takes a new one, LISTENs and reads the state again, and goes on:
// it answers when the job ends instead of throwing 57P01/08006 mid-wait (the
// polling mode already had this through Client::run's retries).
TEST(ClientWait, ListenWaitSurvivesATerminatedBackend) {
  Client client(client_options());
  if (!client.waits_listen()) GTEST_SKIP() << "waits poll here (pooler): each read is run()'s, retried";
  auto opts = client_options();
  opts.pool.settings.application_name = "wf-wait-victim";
  Client victim(opts);
  const auto job = job_with_tasks(client, "survivor", 1);
  auto waiter = std::async(std::launch::async, [&] { return victim.wait_for_job(job, 60s); });
  Connection admin(settings());
  // The waiter's backend, once it has LISTENed and read the state (its last
  // statement), i.e. while it waits for a notification.
  const auto waiting_backend = [&](const std::string& not_pid) {
    for (int i = 0; i < 600; ++i) {
      Result r = admin.query(
          "SELECT pid::text FROM pg_stat_activity WHERE application_name = 'wf-wait-victim' "
          "AND state = 'idle' AND query LIKE 'SELECT status FROM workflow.jobs%' AND pid::text <> $1",
          {not_pid});
      if (r.rows() == 1) return r.string(0, 0);
      std::this_thread::sleep_for(50ms);
    }
    return std::string();
  };
  const std::string first = waiting_backend("0");
  ASSERT_FALSE(first.empty()) << "the waiter never listened";
  admin.query("SELECT pg_terminate_backend($1::int)", {first});
  // It listens again on a new backend and is still waiting (not failed).
  const std::string second = waiting_backend(first);
  ASSERT_FALSE(second.empty()) << "the waiter did not listen again on a new connection";
  ASSERT_EQ(waiter.wait_for(0ms), std::future_status::timeout) << "the wait ended early";
  complete_all(client, "survivor");
  client.run([&](Connection& c) { return a::advance_job_stage(c, job, 1, 2); });
  EXPECT_EQ(waiter.get(), std::optional<std::string>("completed"));
  EXPECT_GE(victim.pool().metrics().errors, 1u);
}

// A timeout too long for a time point (milliseconds::max() as "as long as it
// takes") waits for the stage; it used to overflow into a deadline in the
// past and return false after the first read.
TEST(ClientWait, VeryLongTimeoutWaitsForTheStage) {
  for (const auto mode : {WaitMode::listen, WaitMode::poll}) {
    auto options = client_options();
    options.pool.settings.waits = mode;
    Client client(options);
    const auto type = std::string("forever") + (mode == WaitMode::listen ? "l" : "p");
    const auto job = job_with_tasks(client, type, 1);
    std::thread completer([&] {
      std::this_thread::sleep_for(300ms);
      Client other(client_options());
      complete_all(other, type);
    });
    EXPECT_TRUE(client.wait_for_stage(job, 1, std::chrono::milliseconds::max()))
        << "returned before the stage was complete";
    completer.join();
  }
}
