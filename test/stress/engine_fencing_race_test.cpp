// Race test of fencing, counted outcomes only.
//
//  StaleWorkersRaceReclaimers  8 "A" workers claim batches, then stall past
//      their lease (the test expires every lease). Two report before the B
//      workers start, four while they run, two after they finished: both
//      outcomes happen at any speed. As they report their batches
//      (complete_tasks with worker => A, and one by one when the batch is
//      refused, as the C++ Worker does; 10% repeated), 8 "B" workers
//      reclaim and complete whatever is claimable (also 10% repeated). Every
//      task is completed exactly once, by the worker whose call succeeded;
//      its result and claimed_by name that worker; every refusal is 55000;
//      exactly one stage_complete = true per stage; invariants hold.
//
// Needs DATABASE_URL (set by scripts/test). Works in its own database
// wf_engine_fencing_race, dropped at the end.
#include <gtest/gtest.h>
#include <libpq-fe.h>

#include "race_conn.hpp"

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

constexpr const char* kDatabase = "wf_engine_fencing_race";
constexpr int kJobs = 8, kTasksPerJob = 60, kWorkers = 8, kBatch = 12;

using race::Answer;
using race::Conn;
using race::Result;

struct Claimed {
  std::string id, job;
  int stage;
};

std::vector<Claimed> claim(Conn& c, const std::string& worker) {
  Result r = c.exec("SELECT id, job_id, stage FROM workflow.claim_tasks($1, $2, NULL, '5 minutes')",
                    {worker, std::to_string(kBatch)});
  std::vector<Claimed> out;
  for (int i = 0; i < PQntuples(r.get()); ++i)
    out.push_back({PQgetvalue(r.get(), i, 0), PQgetvalue(r.get(), i, 1), std::stoi(PQgetvalue(r.get(), i, 2))});
  return out;
}

std::string text_array(const std::vector<std::string>& v) {
  std::string s = "{";
  for (std::size_t i = 0; i < v.size(); ++i) s += (i ? ",\"" : "\"") + v[i] + "\"";
  return s + "}";
}

class EngineFencingRace : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { race::create_test_database(kDatabase); }
  static void TearDownTestSuite() { race::drop_test_database(kDatabase); }
};

TEST_F(EngineFencingRace, StaleWorkersRaceReclaimers) {
  Conn setup(kDatabase);
  for (int j = 0; j < kJobs; ++j) {
    const std::string job = "fence-" + std::to_string(j);
    setup.exec("SELECT workflow.create_job('fence', '{}', 1, $1)", {job});
    setup.exec("SELECT workflow.add_tasks($1, 1, 'work', array_fill('{}'::jsonb, ARRAY[$2::int]), slot_count => 4)",
               {job, std::to_string(kTasksPerJob)});
  }
  // The A workers claim their batches, then stall: every lease expires.
  std::vector<std::vector<Claimed>> stale(kWorkers);
  for (int i = 0; i < kWorkers; ++i) stale[i] = claim(setup, "A" + std::to_string(i));
  setup.exec("UPDATE workflow.tasks SET lease_expires_at = now() - interval '1 hour' WHERE status = 'claimed'");

  std::mutex m;
  std::map<std::string, std::set<std::string>> succeeded;  // task -> workers whose complete succeeded
  std::map<std::string, std::set<std::string>> stage_true;  // job -> tasks told stage_complete = true
  std::atomic<long> refused{0}, other_errors{0}, b_claimed{0};
  std::string first_other;

  auto record = [&](const std::string& worker, const Claimed& t, const Answer& a, int row) {
    std::lock_guard<std::mutex> g(m);
    if (a.ok) {
      succeeded[t.id].insert(worker);
      if (std::string(PQgetvalue(a.result.get(), row, 0)) == "t") stage_true[t.job].insert(t.id);
    } else if (a.sqlstate == "55000") {
      ++refused;
    } else {
      ++other_errors;
      if (first_other.empty()) first_other = a.sqlstate + " " + PQresultErrorMessage(a.result.get());
    }
  };
  auto complete_one = [&](Conn& c, const std::string& worker, const Claimed& t) {
    Answer a = c.try_exec(
        "SELECT stage_complete FROM workflow.complete_task_and_check_stage($1, $2, $3, "
        "jsonb_build_object('by', $4::text), worker => $4)",
        {t.id, t.job, std::to_string(t.stage), worker});
    record(worker, t, a, 0);
  };
  // A batch, as the C++ Worker sends it; refused as a whole -> one by one.
  auto complete_batch = [&](Conn& c, const std::string& worker, const std::vector<Claimed>& batch) {
    std::vector<std::string> jobs, ids, stages;
    for (const auto& t : batch) {
      jobs.push_back(t.job);
      ids.push_back(t.id);
      stages.push_back(std::to_string(t.stage));
    }
    Answer a = c.try_exec(
        "SELECT stage_complete FROM workflow.complete_tasks($1::text[], $2::text[], $3::int[], "
        "array_fill(jsonb_build_object('by', $4::text), ARRAY[cardinality($1::text[])]), worker => $4)",
        {text_array(jobs), text_array(ids), text_array(stages), worker});
    if (a.ok) {
      for (std::size_t i = 0; i < batch.size(); ++i) record(worker, batch[i], a, static_cast<int>(i));
      return;
    }
    if (a.sqlstate != "55000") {
      record(worker, batch[0], a, 0);
      return;
    }
    ++refused;
    for (const auto& t : batch) complete_one(c, worker, t);
  };

  // Three groups of A workers, so that both outcomes happen whatever the
  // speed: A0 and A1 report before any B worker starts (they win), A2..A5
  // race the B workers, A6 and A7 report after every B worker has finished
  // (all their tasks were reclaimed: refused).
  std::atomic<int> early_done{0}, b_done{0};
  auto wait_for = [](const std::atomic<int>& counter, int value) {
    while (counter.load() < value) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  std::vector<std::thread> threads;
  for (int i = 0; i < 2 * kWorkers; ++i) {
    threads.emplace_back([&, i] {
      try {
        Conn c(kDatabase);
        std::mt19937 rng(9000 + i);
        if (i < kWorkers) {  // a stale A worker reports what it had claimed
          const std::string me = "A" + std::to_string(i);
          if (i >= kWorkers - 2) wait_for(b_done, kWorkers);
          else if (i >= 2) std::this_thread::sleep_for(std::chrono::milliseconds(2 * i));
          complete_batch(c, me, stale[i]);
          if (rng() % 10 == 0) complete_batch(c, me, stale[i]);  // a repeat after a lost reply
          if (i < 2) ++early_done;
          return;
        }
        wait_for(early_done, 2);
        const std::string me = "B" + std::to_string(i - kWorkers);
        for (;;) {
          auto batch = claim(c, me);
          if (batch.empty()) break;
          b_claimed += static_cast<long>(batch.size());
          for (const auto& t : batch) {
            complete_one(c, me, t);
            if (rng() % 10 == 0) complete_one(c, me, t);
          }
        }
        ++b_done;
      } catch (const std::exception& e) {
        std::lock_guard<std::mutex> g(m);
        ++other_errors;
        if (first_other.empty()) first_other = e.what();
        if (i < 2) ++early_done;  // never leave the others waiting
        if (i >= kWorkers) ++b_done;
      }
    });
  }
  for (auto& t : threads) t.join();

  EXPECT_EQ(other_errors.load(), 0) << first_other;
  // Every task completed; by exactly one worker (its repeats aside).
  Result rows = setup.exec("SELECT id, status, claimed_by, result_data->>'by' FROM workflow.tasks");
  ASSERT_EQ(PQntuples(rows.get()), kJobs * kTasksPerJob);
  long by_a = 0;
  for (int r = 0; r < PQntuples(rows.get()); ++r) {
    const std::string id = PQgetvalue(rows.get(), r, 0);
    const std::string by = PQgetvalue(rows.get(), r, 3);
    EXPECT_EQ(std::string(PQgetvalue(rows.get(), r, 1)), "completed") << id;
    EXPECT_EQ(std::string(PQgetvalue(rows.get(), r, 2)), by) << id << ": claimed_by names the completer";
    ASSERT_EQ(succeeded[id].size(), 1u) << id << ": completed by more than one worker's successful call";
    EXPECT_EQ(*succeeded[id].begin(), by) << id << ": the stored result is the successful worker's";
    if (by[0] == 'A') ++by_a;
  }
  // The race had both outcomes: some stale completions came first, some lost.
  EXPECT_GT(by_a, 0);
  EXPECT_GT(refused.load(), 0);
  EXPECT_GT(b_claimed.load(), 0);
  std::printf("stale completions that won: %ld, refused (55000): %ld, B claims: %ld\n", by_a,
              refused.load(), b_claimed.load());
  // Exactly one task per stage told stage_complete (its repeats aside): the recorded completer.
  Result completers = setup.exec("SELECT job_id, completed_by_task FROM workflow.stages WHERE completed_at IS NOT NULL");
  EXPECT_EQ(PQntuples(completers.get()), kJobs);
  for (int r = 0; r < PQntuples(completers.get()); ++r) {
    const auto& told = stage_true[PQgetvalue(completers.get(), r, 0)];
    ASSERT_EQ(told.size(), 1u) << PQgetvalue(completers.get(), r, 0);
    EXPECT_EQ(*told.begin(), std::string(PQgetvalue(completers.get(), r, 1)));
  }
  Result bad = setup.exec(
      "SELECT i.check_name, i.detail FROM workflow.jobs j, LATERAL workflow.check_invariants(j.id) i WHERE NOT i.ok");
  for (int r = 0; r < PQntuples(bad.get()); ++r)
    ADD_FAILURE() << PQgetvalue(bad.get(), r, 0) << ": " << PQgetvalue(bad.get(), r, 1);
}

}  // namespace
