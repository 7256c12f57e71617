// wait_for_stage / wait_for_job: LISTEN-based, with a timeout; an event that
// happened before the wait started is still seen (state read after LISTEN);
// the pooled connection is handed back without its LISTENs.
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
