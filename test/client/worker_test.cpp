// The worker loop: several workers run a three-stage job with fan-out to the
// end (each task handled and completed once, each stage completed and advanced
// once); handler failures are retried or fail the job; long tasks are heartbeated.
#include <map>
#include <mutex>
#include <thread>

#include "test_db.hpp"
#include "workflow/worker_group.hpp"

WFTEST_DATABASE("wf_client_worker");

using namespace wftest;
using namespace std::chrono_literals;
namespace a = workflow::client::api;

namespace {

struct Run {
  std::vector<WorkerStats> stats;
  WorkerStats total() const {
    WorkerStats t;
    for (const auto& s : stats) t += s;
    return t;
  }
};

// Runs `n` workers until the job ends (wait_for_job), then stops them.
Run run_workers(Client& client, const std::string& job, int n, WorkerOptions base,
                TaskHandler handler, std::optional<std::string>* final_status = nullptr) {
  std::atomic<bool> stop{false};
  Run run;
  run.stats.resize(n);
  std::vector<std::thread> threads;
  for (int i = 0; i < n; ++i) {
    WorkerOptions o = base;
    o.name = base.name + "-" + std::to_string(i);
    threads.emplace_back([&, o, i] { run.stats[i] = Worker(client, o, handler).run(stop); });
  }
  const auto status = client.wait_for_job(job, 120s);
  stop = true;
  for (auto& t : threads) t.join();
  if (final_status) *final_status = status;
  return run;
}

}  // namespace

TEST(ClientWorker, ThreeStageJobWithFanOutRunsToTheEndExactlyOnce) {
  Client client(client_options(12));
  const std::vector<int> sizes = {300, 200, 100};
  const auto job = client.run([&](Connection& c) {
    const auto id = a::create_job(c, "worker-test", json::object(), 3);
    a::add_tasks(c, id, 1, "fan", std::vector<json>(sizes[0], json::object()));
    return id;
  });
  std::mutex m;
  std::map<std::string, int> handled;
  WorkerOptions o;
  o.name = "fan";
  o.batch_size = 16;
  o.task_types = {"fan"};
  o.on_stage_complete = [&](Client& c, const std::string& job_id, int stage) {
    if (stage < 3)
      c.run([&](Connection& conn) {
        return a::add_tasks(conn, job_id, stage + 1, "fan",
                            std::vector<json>(sizes[stage], json::object()));
      });
  };
  std::optional<std::string> status;
  const auto run = run_workers(client, job, 4, o, [&](const Task& t) {
    std::lock_guard g(m);
    ++handled[t.id];
    return json{{"stage", t.stage}};
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  const auto total = run.total();
  EXPECT_EQ(total.completed, 600u);
  EXPECT_EQ(total.stage_completions, 3u);  // exactly one stage_complete=true per stage
  EXPECT_EQ(total.advances, 3u);           // 1->2, 2->3, 3->done
  EXPECT_EQ(total.jobs_completed, 1u);
  EXPECT_EQ(handled.size(), 600u);
  for (const auto& [id, n] : handled) EXPECT_EQ(n, 1) << id;
  const auto completed = client.run([&](Connection& c) {
    return c.query("SELECT count(*) FILTER (WHERE status = 'completed'), count(*) "
                   "FROM workflow.tasks WHERE job_id = $1", {job});
  });
  EXPECT_EQ(completed.int64(0, 0), 600);
  EXPECT_EQ(completed.int64(0, 1), 600);
  for (const auto& k : client.run([&](Connection& c) { return a::check_invariants(c, job); }))
    EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
}

TEST(ClientWorker, FailingHandlerIsRetriedThenSucceeds) {
  Client client(client_options(6));
  const auto job = client.run([&](Connection& c) {
    const auto id = a::create_job(c, "worker-retry", json::object(), 1);
    a::add_tasks(c, id, 1, "flaky", std::vector<json>(5, json::object()));
    return id;
  });
  WorkerOptions o;
  o.name = "flaky";
  o.task_types = {"flaky"};
  std::optional<std::string> status;
  const auto run = run_workers(client, job, 2, o, [](const Task& t) -> json {
    if (t.retry_count == 0 && t.task_index % 2 == 0) throw std::runtime_error("first try fails");
    return json::object();
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  EXPECT_EQ(run.total().failed, 3u);     // indices 0, 2, 4 on their first try
  EXPECT_EQ(run.total().completed, 5u);
  const auto retries = client.run([&](Connection& c) {
    return c.query("SELECT sum(retry_count), string_agg(DISTINCT last_error, ',') "
                   "FROM workflow.tasks WHERE job_id = $1", {job});
  });
  EXPECT_EQ(retries.int64(0, 0), 3);
  EXPECT_EQ(retries.string(0, 1), "first try fails");
}

TEST(ClientWorker, PermanentErrorFailsTheJob) {
  Client client(client_options(6));
  const auto job = client.run([&](Connection& c) {
    const auto id = a::create_job(c, "worker-dead", json::object(), 1);
    a::add_tasks(c, id, 1, "dead", std::vector<json>(1, json::object()));
    return id;
  });
  WorkerOptions o;
  o.name = "dead";
  o.task_types = {"dead"};
  std::optional<std::string> status;
  const auto run = run_workers(client, job, 1, o, [](const Task&) -> json {
    throw permanent_task_error("input is unusable");
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("failed"));
  EXPECT_EQ(run.total().failed, 1u);
  EXPECT_EQ(run.total().completed, 0u);
}

TEST(ClientWorker, LongTaskIsHeartbeatedAndKeepsItsLease) {
  Client client(client_options(6));
  const auto job = client.run([&](Connection& c) {
    const auto id = a::create_job(c, "worker-long", json::object(), 1);
    a::add_tasks(c, id, 1, "long", std::vector<json>(1, json::object()));
    return id;
  });
  WorkerOptions o;
  o.name = "long";
  o.task_types = {"long"};
  o.lease = std::chrono::seconds(1);
  o.heartbeat_every = 200ms;
  std::atomic<int> calls{0};
  std::optional<std::string> status;
  // A second worker would reclaim the task if its 1 s lease were not extended.
  const auto run = run_workers(client, job, 2, o, [&](const Task&) {
    ++calls;
    std::this_thread::sleep_for(2500ms);
    return json::object();
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  EXPECT_EQ(calls.load(), 1);
  EXPECT_GE(run.total().heartbeats, 3u);
}

// Loops sharing round trips (WorkerGroup) at batch 1: the same exactly-once
// run; each task completed under the name of the loop that claimed it.
TEST(ClientWorker, LoopsSharingRoundTripsRunAJobExactlyOnce) {
  Client client(client_options(16));
  const std::vector<int> sizes = {400, 150, 50};
  const auto job = client.run([&](Connection& c) {
    const auto id = a::create_job(c, "worker-group", json::object(), 3);
    a::add_tasks(c, id, 1, "grp", std::vector<json>(sizes[0], json::object()));
    return id;
  });
  std::mutex m;
  std::map<std::string, int> handled;
  WorkerGroup group(client);
  WorkerOptions o;
  o.name = "grp";
  o.batch_size = 1;
  o.task_types = {"grp"};
  o.group = &group;
  o.on_stage_complete = [&](Client& c, const std::string& job_id, int stage) {
    if (stage < 3)
      c.run([&](Connection& conn) {
        return a::add_tasks(conn, job_id, stage + 1, "grp",
                            std::vector<json>(sizes[stage], json::object()));
      });
  };
  std::optional<std::string> status;
  const auto run = run_workers(client, job, 6, o, [&](const Task& t) {
    std::lock_guard g(m);
    ++handled[t.id];
    return json{{"id", t.id}};
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  const auto total = run.total();
  EXPECT_EQ(total.completed, 600u);
  EXPECT_EQ(total.stage_completions, 3u);
  EXPECT_EQ(total.advances, 3u);
  EXPECT_EQ(handled.size(), 600u);
  for (const auto& [id, n] : handled) EXPECT_EQ(n, 1) << id;
  const auto counts = group.counts();
  // Each loop's completions went with its next claim: one cycle per claim
  // (at least one per task, batch 1), none completed apart.
  EXPECT_GE(counts.cycles, 600u);
  EXPECT_EQ(counts.completes, 0u);
  const auto done = client.run([&](Connection& c) {
    return c.query("SELECT count(*) FILTER (WHERE status = 'completed' AND result_data->>'id' = id), "
                   "count(DISTINCT claimed_by), count(*) FILTER (WHERE claimed_by NOT LIKE 'grp-%') "
                   "FROM workflow.tasks WHERE job_id = $1", {job});
  });
  EXPECT_EQ(done.int64(0, 0), 600);
  EXPECT_GE(done.int64(0, 1), 2);  // completed under the loops' own names
  EXPECT_EQ(done.int64(0, 2), 0);
  for (const auto& k : client.run([&](Connection& c) { return a::check_invariants(c, job); }))
    EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
}

// stop set while a batch runs (SIGINT in the CLI): the running handler
// finishes and is completed, no other task of the batch starts, and those are
// given back (lease shortened to 1 s) with no attempt counted, so another
// worker takes them long before their 300 s lease would have run out. Alone
// and in a WorkerGroup (the CLI's default).
TEST(ClientWorker, StopMidBatchStartsNoNewTaskAndGivesTheRestBack) {
  Client client(client_options(8));
  for (const bool grouped : {false, true}) {
    SCOPED_TRACE(grouped ? "in a group" : "alone");
    const std::string type = grouped ? "stop-grp" : "stop-alone";
    const auto job = client.run([&](Connection& c) {
      const auto id = a::create_job(c, "worker-stop", json::object(), 1);
      a::add_tasks(c, id, 1, type, std::vector<json>(5, json::object()));
      return id;
    });
    WorkerGroup group(client);
    WorkerOptions o;
    o.name = type;
    o.batch_size = 32;
    o.task_types = {type};
    o.lease = std::chrono::seconds(300);
    if (grouped) o.group = &group;
    std::atomic<bool> stop{false};
    int calls = 0;
    const auto stats = Worker(client, o, [&](const Task&) {
      ++calls;
      stop = true;  // as a signal arriving while the first task runs
      return json{{"first", true}};
    }).run(stop);
    EXPECT_EQ(calls, 1);
    EXPECT_EQ(stats.claimed, 5u);
    EXPECT_EQ(stats.completed, 1u);
    EXPECT_EQ(stats.released, 4u);
    EXPECT_EQ(stats.failed, 0u);
    const auto left = client.run([&](Connection& c) {
      return c.query("SELECT count(*) FILTER (WHERE status = 'completed'), "
                     "count(*) FILTER (WHERE status = 'claimed' AND retry_count = 0 "
                     "AND lease_expires_at <= now() + interval '1 second') "
                     "FROM workflow.tasks WHERE job_id = $1", {job});
    });
    EXPECT_EQ(left.int64(0, 0), 1);
    EXPECT_EQ(left.int64(0, 1), 4);
    // Another worker takes the four given back (a 300 s lease would outlast the wait).
    std::optional<std::string> status;
    WorkerOptions other = o;
    other.name = type + "-next";
    other.group = nullptr;
    const auto run = run_workers(client, job, 1, other, [](const Task&) { return json::object(); }, &status);
    EXPECT_EQ(status, std::optional<std::string>("completed"));
    EXPECT_EQ(run.total().completed, 4u);
    const auto attempts = client.run([&](Connection& c) {
      return c.query("SELECT count(*) FILTER (WHERE retry_count = 0 AND status = 'completed') "
                     "FROM workflow.tasks WHERE job_id = $1", {job});
    });
    EXPECT_EQ(attempts.int64(0, 0), 5);
    for (const auto& k : client.run([&](Connection& c) { return a::check_invariants(c, job); }))
      EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
  }
}

// A batch with a task the server refuses (its job was cancelled while the
// handler ran): complete_tasks writes nothing, the worker then completes the
// others one by one, so the other job still runs to its end.
TEST(ClientWorker, RefusedTaskInABatchDoesNotLoseTheOthers) {
  Client client(client_options(6));
  std::string keep, cancelled;
  client.run([&](Connection& c) {
    keep = a::create_job(c, "worker-mixed", json::object(), 1);
    cancelled = a::create_job(c, "worker-mixed", json::object(), 1);
    a::add_tasks(c, keep, 1, "mixed", std::vector<json>(3, json::object()));
    a::add_tasks(c, cancelled, 1, "mixed", std::vector<json>(3, json::object()));
  });
  WorkerOptions o;
  o.name = "mixed";
  o.task_types = {"mixed"};
  o.batch_size = 10;  // all six tasks in one batch
  std::atomic<int> handled{0};
  std::optional<std::string> status;
  const auto run = run_workers(client, keep, 1, o, [&](const Task& t) {
    if (t.job_id == cancelled)
      client.run([&](Connection& c) { return a::cancel_job(c, cancelled, std::string("test")); });
    ++handled;
    return json::object();
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  EXPECT_EQ(handled.load(), 6);  // the six tasks were handled in the run
  EXPECT_EQ(run.total().stage_completions, 1u);
  const auto counts = client.run([&](Connection& c) {
    return c.query("SELECT count(*) FILTER (WHERE job_id = $1 AND status = 'completed'), "
                   "count(*) FILTER (WHERE job_id = $2 AND status = 'cancelled') FROM workflow.tasks",
                   {keep, cancelled});
  });
  EXPECT_EQ(counts.int64(0, 0), 3);
  EXPECT_EQ(counts.int64(0, 1), 3);
}

// The same in loops sharing round trips at batch 1: a refused completion
// fails the shared transaction (the other loops' completions and claims
// with it); each loop then completes its own alone and goes on, none stops.
TEST(ClientWorker, RefusedTaskInASharedRoundDoesNotStopTheLoops) {
  Client client(client_options(8));
  std::string keep, cancelled;
  client.run([&](Connection& c) {
    keep = a::create_job(c, "worker-shared", json::object(), 1);
    cancelled = a::create_job(c, "worker-shared", json::object(), 1);
    a::add_tasks(c, keep, 1, "shared", std::vector<json>(40, json::object()));
    a::add_tasks(c, cancelled, 1, "shared", std::vector<json>(40, json::object()));
  });
  WorkerGroup group(client);
  WorkerOptions o;
  o.name = "shared";
  o.task_types = {"shared"};
  o.batch_size = 1;
  o.group = &group;
  std::atomic<bool> cancel_done{false};
  std::optional<std::string> status;
  const auto run = run_workers(client, keep, 4, o, [&](const Task& t) {
    if (t.job_id == cancelled && !cancel_done.exchange(true))
      client.run([&](Connection& c) { return a::cancel_job(c, cancelled, std::string("test")); });
    return json::object();
  }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  EXPECT_EQ(run.total().stage_completions, 1u);
  const auto counts = client.run([&](Connection& c) {
    return c.query("SELECT count(*) FILTER (WHERE job_id = $1 AND status = 'completed'), "
                   "count(*) FILTER (WHERE job_id = $2 AND status = 'completed'), "
                   "count(*) FILTER (WHERE job_id = $2 AND status = 'cancelled') FROM workflow.tasks",
                   {keep, cancelled});
  });
  EXPECT_EQ(counts.int64(0, 0), 40);
  // Completed before the cancel committed, or cancelled; the task whose
  // handler cancelled the job was refused (so not all completed).
  EXPECT_EQ(counts.int64(0, 1) + counts.int64(0, 2), 40);
  EXPECT_LT(counts.int64(0, 1), 40);
}

// A completer that was told stage_complete and died before advancing the job:
// the workers claim the stage's hand-over once the job's (short) hand-over
// lease has run out, fan out the next stage and advance, exactly once.
TEST(ClientWorker, TakesOverAStageWhoseCompleterDied) {
  Client client(client_options(6));
  const auto job = client.run([&](Connection& c) {
    const auto id = a::create_job(c, "worker-handover", json::object(), 2);
    a::set_handover_lease(c, id, 200ms);
    a::add_tasks(c, id, 1, "handover", std::vector<json>(2, json::object()));
    a::complete_task(c, id + ":1:0", id, 1, json::object());
    EXPECT_TRUE(a::complete_task(c, id + ":1:1", id, 1, json::object()).stage_complete);
    return id;  // ... and the completer "dies" here: no fan-out, no advance
  });
  std::this_thread::sleep_for(300ms);
  WorkerOptions o;
  o.name = "handover";
  o.task_types = {"handover"};
  o.handover_every = 100ms;
  std::atomic<int> fan_outs{0};
  o.on_stage_complete = [&](Client& c, const std::string& job_id, int stage) {
    ++fan_outs;
    if (stage == 1)
      c.run([&](Connection& conn) {
        return a::add_tasks(conn, job_id, 2, "handover", std::vector<json>(3, json::object()));
      });
  };
  std::optional<std::string> status;
  const auto run = run_workers(client, job, 3, o, [](const Task&) { return json::object(); }, &status);
  EXPECT_EQ(status, std::optional<std::string>("completed"));
  const auto total = run.total();
  EXPECT_EQ(total.handovers, 1u);          // stage 1, by one of the three workers
  EXPECT_EQ(total.stage_completions, 1u);  // stage 2, told to its completer
  EXPECT_EQ(total.advances, 2u);
  EXPECT_EQ(total.completed, 3u);
  EXPECT_EQ(fan_outs.load(), 2);
  for (const auto& k : client.run([&](Connection& c) { return a::check_invariants(c, job); }))
    EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
}
