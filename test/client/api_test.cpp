// Every typed call of the engine and survey APIs against the real extension,
// each with its error path (the server's SQLSTATE comes back in sql_error).
#include "test_db.hpp"

WFTEST_DATABASE("wf_client_api");

using namespace wftest;
namespace a = workflow::client::api;

class ClientApi : public ::testing::Test {
 protected:
  void SetUp() override { conn = std::make_unique<Connection>(settings()); }
  Connection& c() { return *conn; }
  std::string new_job(int stages = 2) { return a::create_job(c(), "api-test", {{"k", "v"}}, stages); }
  std::vector<json> params(int n) {
    std::vector<json> out;
    for (int i = 0; i < n; ++i) out.push_back({{"i", i}});
    return out;
  }
  long count(const std::string& sql, const Params& p = {}) { return c().query(sql, p).int64(0, 0); }
  std::unique_ptr<Connection> conn;
};

TEST_F(ClientApi, CreateJobAndGetJob) {
  const auto id = a::create_job(c(), "report", {{"x", 1}}, 3, std::string("job-api-1"));
  EXPECT_EQ(id, "job-api-1");
  const auto job = a::get_job(c(), id);
  ASSERT_TRUE(job);
  EXPECT_EQ(job->job_type, "report");
  EXPECT_EQ(job->status, "pending");
  EXPECT_EQ(job->stage, 1);
  EXPECT_EQ(job->total_stages, 3);
  EXPECT_EQ(job->parameters["x"], 1);
  EXPECT_FALSE(a::get_job(c(), "no-such-job"));
  EXPECT_EQ(sqlstate_of([&] { a::create_job(c(), "report", {}, 1, std::string("job-api-1")); }), "23505");
  EXPECT_EQ(sqlstate_of([&] { a::create_job(c(), "report", {}, 0); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { a::create_job(c(), "", {}, 1); }), "22023");
  EXPECT_EQ(count("SELECT count(*) FROM workflow.jobs WHERE job_type = 'report'"), 1);
}

TEST_F(ClientApi, AddTasksIsIdempotentAndSealed) {
  const auto job = new_job();
  EXPECT_EQ(a::add_tasks(c(), job, 1, "t", params(3), /*seal=*/false), 3);
  EXPECT_EQ(a::add_tasks(c(), job, 1, "t", params(3), false), 0);       // same indices: nothing
  EXPECT_EQ(a::add_tasks(c(), job, 1, "t", params(2), false, 3), 2);    // indices 3, 4
  EXPECT_FALSE(a::seal_stage(c(), job, 1));                            // tasks still open
  EXPECT_EQ(sqlstate_of([&] { a::add_tasks(c(), job, 1, "t", params(1), true, 10); }), "55000");
  EXPECT_EQ(sqlstate_of([&] { a::add_tasks(c(), "no-such-job", 1, "t", params(1)); }), "P0002");
  EXPECT_EQ(sqlstate_of([&] { a::add_tasks(c(), job, 1, "t", {}); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { a::seal_stage(c(), "no-such-job", 1); }), "P0002");
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1", {job}), 5);
  // Quotes, unicode and backslashes in parameters survive the round trip.
  const auto job2 = new_job();
  json odd = {{"s", "it's \"q\" \\ ü 😀"}};
  EXPECT_EQ(a::add_tasks(c(), job2, 1, "t", {odd}), 1);
  EXPECT_EQ(c().query("SELECT parameters->>'s' FROM workflow.tasks WHERE job_id = $1", {job2}).string(0, 0),
            odd["s"].get<std::string>());
}

TEST_F(ClientApi, ClaimHeartbeatCompleteAndTheStageCompleteAnswer) {
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "only-here", params(3));
  EXPECT_TRUE(a::claim_tasks(c(), "w1", 10, {"other-type"}).empty());
  auto tasks = a::claim_tasks(c(), "w1", 10, {"only-here"}, std::chrono::seconds(60));
  ASSERT_EQ(tasks.size(), 3u);
  EXPECT_EQ(tasks[0].job_id, job);
  EXPECT_EQ(tasks[0].stage, 1);
  EXPECT_TRUE(tasks[0].parameters.contains("i"));
  EXPECT_TRUE(a::claim_tasks(c(), "w2", 10, {"only-here"}).empty());  // all claimed
  EXPECT_TRUE(a::heartbeat_task(c(), tasks[0].id, job, "w1"));
  EXPECT_FALSE(a::heartbeat_task(c(), tasks[0].id, job, "not-the-owner"));
  EXPECT_EQ(sqlstate_of([&] { a::heartbeat_task(c(), "nope", job, "w1"); }), "P0002");
  EXPECT_EQ(sqlstate_of([&] { a::claim_tasks(c(), "w1", 0); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { a::claim_tasks(c(), "", 1); }), "22023");

  auto r0 = a::complete_task(c(), tasks[0].id, job, 1, {{"ok", true}});
  EXPECT_FALSE(r0.stage_complete);
  EXPECT_EQ(r0.job_id, job);
  EXPECT_EQ(r0.remaining_tasks, 2);
  EXPECT_EQ(sqlstate_of([&] { a::complete_task(c(), "no-such-task", job, 1, {}); }), "P0002");
  EXPECT_EQ(sqlstate_of([&] { a::complete_task(c(), tasks[1].id, job, 2, {}); }), "22023");
  // A batch with one refused task writes nothing (all or nothing), whatever the error.
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks(c(), {{tasks[1].id, job, 1, {}}, {"bad", job, 1, {}}}); }),
            "P0002");
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks(c(), {{tasks[1].id, job, 1, {}}, {tasks[2].id, job, 2, {}}}); }),
            "22023");
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks(c(), {{tasks[1].id, job, 1, {}}, {tasks[1].id, job, 1, {}}}); }),
            "22023");
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks(c(), {}); }), "22023");
  EXPECT_EQ(a::job_progress(c(), job).at(0).completed_tasks, 1);
  // The last two in one statement (results with quotes and unicode survive the
  // array literal): answers in input order, exactly one says the stage is complete.
  const json tricky = {{"q", "it's \"quoted\" \\ {a,b} \u00e9"}};
  auto answers = a::complete_tasks(c(), {{tasks[2].id, job, 1, tricky}, {tasks[1].id, job, 1, {}}});
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[0].job_id, job);
  EXPECT_NE(answers[0].stage_complete, answers[1].stage_complete);
  const std::size_t completer = answers[0].stage_complete ? 0 : 1;
  EXPECT_EQ(answers[completer].remaining_tasks, 0);
  EXPECT_EQ(answers[1 - completer].remaining_tasks, -1);
  EXPECT_EQ(json::parse(c().query("SELECT result_data FROM workflow.tasks WHERE job_id = $1 AND id = $2",
                                  {job, tasks[2].id}).text(0, 0)),
            tricky);
  // A repeat (a retry after a lost reply) gives the same answers and writes nothing.
  auto again = a::complete_tasks(c(), {{tasks[2].id, job, 1, tricky}, {tasks[1].id, job, 1, {}}});
  EXPECT_EQ(again[0].stage_complete, answers[0].stage_complete);
  EXPECT_EQ(again[1].stage_complete, answers[1].stage_complete);
  const std::string completer_id = completer == 0 ? tasks[2].id : tasks[1].id;
  EXPECT_TRUE(a::complete_task(c(), completer_id, job, 1, {}).stage_complete);
  EXPECT_FALSE(a::complete_task(c(), tasks[0].id, job, 1, {}).stage_complete);
  // One transaction per task (pipelined): the same answers; one refused task
  // does not stop the others, the first error is thrown.
  auto each = a::complete_tasks_each(c(), {{tasks[0].id, job, 1, {}}, {completer_id, job, 1, {}}});
  ASSERT_EQ(each.size(), 2u);
  EXPECT_FALSE(each[0].stage_complete);
  EXPECT_TRUE(each[1].stage_complete);
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks_each(c(), {{tasks[0].id, job, 1, {}}, {"bad", job, 1, {}}}); }),
            "P0002");

  auto progress = a::job_progress(c(), job);
  ASSERT_EQ(progress.size(), 1u);
  EXPECT_EQ(progress[0].total_tasks, 3);
  EXPECT_EQ(progress[0].completed_tasks, 3);
  EXPECT_TRUE(progress[0].sealed);
  EXPECT_TRUE(progress[0].complete);
  EXPECT_EQ(sqlstate_of([&] { a::job_progress(c(), "no-such-job"); }), "P0002");
}

TEST_F(ClientApi, AdvanceAndCheckJobCompletion) {
  const auto job = new_job(2);
  a::add_tasks(c(), job, 1, "adv", params(1));
  auto t = a::claim_tasks(c(), "w", 1, {"adv"}).at(0);
  EXPECT_EQ(sqlstate_of([&] { a::advance_job_stage(c(), job, 1, 2); }), "55000");  // not complete
  EXPECT_EQ(sqlstate_of([&] { a::advance_job_stage(c(), job, 1, 3); }), "22023");
  EXPECT_EQ(sqlstate_of([&] { a::advance_job_stage(c(), "no-such-job", 1, 2); }), "P0002");
  EXPECT_TRUE(a::complete_task(c(), t.id, job, 1, {}).stage_complete);
  EXPECT_TRUE(a::advance_job_stage(c(), job, 1, 2, {{"stage1", "done"}}));
  EXPECT_FALSE(a::advance_job_stage(c(), job, 1, 2));  // compare-and-set: only once
  EXPECT_FALSE(a::check_job_completion(c(), job).job_complete);
  a::add_tasks(c(), job, 2, "adv", params(1));
  t = a::claim_tasks(c(), "w", 1, {"adv"}).at(0);
  EXPECT_EQ(t.stage, 2);
  EXPECT_TRUE(a::complete_task(c(), t.id, job, 2, {}).stage_complete);
  EXPECT_TRUE(a::advance_job_stage(c(), job, 2, 3));  // past the last stage: completes the job
  const auto done = a::check_job_completion(c(), job);
  EXPECT_TRUE(done.job_complete);
  EXPECT_EQ(done.final_stage, 2);
  EXPECT_EQ(a::get_job(c(), job)->status, "completed");
  EXPECT_EQ(sqlstate_of([&] { a::check_job_completion(c(), "no-such-job"); }), "P0002");
}

TEST_F(ClientApi, FailRetriesThenFailsTheJob) {
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "fail", params(2));
  auto tasks = a::claim_tasks(c(), "w", 2, {"fail"});
  ASSERT_EQ(tasks.size(), 2u);
  const auto retry = a::fail_task(c(), tasks[0].id, job, "transient", true);
  EXPECT_TRUE(retry.will_retry);
  EXPECT_TRUE(retry.retry_at.has_value());
  EXPECT_FALSE(retry.job_failed);
  EXPECT_EQ(count("SELECT retry_count FROM workflow.tasks WHERE id = $1", {tasks[0].id}), 1);
  EXPECT_EQ(sqlstate_of([&] { a::fail_task(c(), "no-such-task", job, "x"); }), "P0002");
  const auto dead = a::fail_task(c(), tasks[1].id, job, "permanent", false);
  EXPECT_FALSE(dead.will_retry);
  EXPECT_TRUE(dead.job_failed);
  EXPECT_EQ(a::get_job(c(), job)->status, "failed");
  EXPECT_EQ(sqlstate_of([&] { a::fail_task(c(), tasks[1].id, job, "again"); }), "55000");
}

TEST_F(ClientApi, FailByWorkerCountsARepeatOnce) {
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "fail-w", params(1));
  auto tasks = a::claim_tasks(c(), "w1", 1, {"fail-w"});
  ASSERT_EQ(tasks.size(), 1u);
  const auto first = a::fail_task(c(), tasks[0].id, job, "transient", true, "w1");
  const auto repeat = a::fail_task(c(), tasks[0].id, job, "transient", true, "w1");  // lost reply
  EXPECT_TRUE(first.will_retry);
  EXPECT_TRUE(repeat.will_retry);
  EXPECT_EQ(repeat.retry_at, first.retry_at);
  EXPECT_EQ(count("SELECT retry_count FROM workflow.tasks WHERE id = $1", {tasks[0].id}), 1);
  EXPECT_EQ(sqlstate_of([&] { a::fail_task(c(), tasks[0].id, job, "x", true, ""); }), "22023");
}

// Fencing: w1's lease expires and w2 reclaims the task; w1's calls with its
// name are refused (55000, nothing written; heartbeat answers false), w2's
// result wins, and w1's repeat of its own completion answers the same.
TEST_F(ClientApi, CompleteByWorkerIsFenced) {
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "fence", params(2));
  auto tasks = a::claim_tasks(c(), "w1", 2, {"fence"});
  ASSERT_EQ(tasks.size(), 2u);
  const std::string lost = tasks[0].id, kept = tasks[1].id;
  c().query("UPDATE workflow.tasks SET lease_expires_at = now() - interval '1 second' "
            "WHERE job_id = $1 AND id = $2", {job, lost});
  ASSERT_EQ(a::claim_tasks(c(), "w2", 2, {"fence"}).size(), 1u);  // w2 reclaims `lost`

  const std::optional<std::string> w1("w1"), w2("w2");
  EXPECT_EQ(sqlstate_of([&] { a::complete_task(c(), lost, job, 1, {{"by", "w1"}}, w1); }), "55000");
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks(c(), {{kept, job, 1, {{"by", "w1"}}}, {lost, job, 1, {{"by", "w1"}}}}, w1); }),
            "55000");
  EXPECT_FALSE(a::heartbeat_task(c(), lost, job, "w1"));  // the server's 55000: stop
  EXPECT_TRUE(a::heartbeat_task(c(), kept, job, "w1"));
  EXPECT_EQ(sqlstate_of([&] { a::fail_task(c(), lost, job, "late", true, "w1"); }), "55000");
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1 AND status = 'completed'", {job}), 0);

  EXPECT_FALSE(a::complete_task(c(), lost, job, 1, {{"by", "w2"}}, w2).stage_complete);
  EXPECT_EQ(sqlstate_of([&] { a::complete_tasks_each(c(), {{lost, job, 1, {{"by", "w1"}}}}, w1); }), "55000");
  const auto mine = a::complete_tasks(c(), {{kept, job, 1, {{"by", "w1"}}}}, w1);
  ASSERT_EQ(mine.size(), 1u);
  EXPECT_TRUE(mine[0].stage_complete);
  const auto again = a::complete_tasks(c(), {{kept, job, 1, {{"by", "w1 again"}}}}, w1);  // lost reply
  EXPECT_TRUE(again[0].stage_complete);
  EXPECT_TRUE(a::complete_task(c(), kept, job, 1, {}, w1).stage_complete);
  EXPECT_EQ(c().query("SELECT string_agg(result_data->>'by', ',' ORDER BY id) FROM workflow.tasks WHERE job_id = $1",
                      {job}).string(0, 0),
            lost < kept ? "w2,w1" : "w1,w2");
}

// What a WorkerGroup sends: completions and the next claims in one
// transaction; one-task requests share one claim_tasks_for_workers, larger
// ones claim alone; a refused completion leaves everything as it was.
TEST_F(ClientApi, CompleteAndClaimInOneTransaction) {
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "cycle", params(8));
  a::ClaimRequest one{"L/0", 1, {"cycle"}, std::chrono::seconds(60)};
  a::ClaimRequest other{"L/1", 1, {"cycle"}, std::chrono::seconds(60)};
  a::ClaimRequest three{"L/2", 3, {"cycle"}, std::chrono::seconds(60)};
  auto first = a::complete_and_claim(c(), {}, {}, {one, other, three});
  EXPECT_TRUE(first.completed.empty());
  ASSERT_EQ(first.claimed.size(), 3u);
  ASSERT_EQ(first.claimed[0].size(), 1u);
  ASSERT_EQ(first.claimed[1].size(), 1u);
  ASSERT_EQ(first.claimed[2].size(), 3u);
  EXPECT_EQ(first.claimed[0][0].claimed_by, "L/0");
  EXPECT_EQ(first.claimed[1][0].claimed_by, "L/1");
  for (const auto& t : first.claimed[2]) EXPECT_EQ(t.claimed_by, "L/2");
  EXPECT_EQ(count("SELECT count(DISTINCT id) FROM workflow.tasks WHERE job_id = $1 AND status = 'claimed'", {job}), 5);

  // A completion under the wrong name: 55000, and neither the other
  // completion nor the claims of that transaction happened.
  const auto& t0 = first.claimed[0][0];
  const auto& t1 = first.claimed[1][0];
  EXPECT_EQ(sqlstate_of([&] {
              a::complete_and_claim(c(), {{t0.id, job, 1, {{"by", 0}}}, {t1.id, job, 1, {{"by", 1}}}},
                                    {"L/0", "L/0"}, {one, other});
            }),
            "55000");
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1 AND status = 'completed'", {job}), 0);
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1 AND status = 'claimed'", {job}), 5);

  // Each under its own name: both complete, and each loop gets its next task.
  auto second = a::complete_and_claim(c(), {{t0.id, job, 1, {{"by", 0}}}, {t1.id, job, 1, {{"by", 1}}}},
                                      {"L/0", "L/1"}, {one, other});
  ASSERT_EQ(second.completed.size(), 2u);
  EXPECT_FALSE(second.completed[0].stage_complete);
  EXPECT_EQ(second.claimed[0].size(), 1u);
  EXPECT_EQ(second.claimed[1].size(), 1u);
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1 AND status = 'completed'", {job}), 2);
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1 AND status = 'claimed'", {job}), 5);  // 5 - 2 + 2
  EXPECT_THROW(a::complete_and_claim(c(), {{t0.id, job, 1, {}}}, {}, {}), workflow::client::usage_error);
}

TEST_F(ClientApi, CancelJob) {
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "cancel", params(2));
  EXPECT_TRUE(a::cancel_job(c(), job, std::string("no longer needed")));
  EXPECT_FALSE(a::cancel_job(c(), job));
  EXPECT_EQ(a::get_job(c(), job)->status, "cancelled");
  EXPECT_TRUE(a::claim_tasks(c(), "w", 10, {"cancel"}).empty());  // a cancelled job's tasks never run
  EXPECT_EQ(sqlstate_of([&] { a::cancel_job(c(), "no-such-job"); }), "P0002");
}

TEST_F(ClientApi, ValidateAndCheckInvariants) {
  const auto checks = a::validate(c());
  ASSERT_FALSE(checks.empty());
  for (const auto& k : checks) EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
  const auto job = new_job(1);
  a::add_tasks(c(), job, 1, "t", params(2));
  for (const auto& k : a::check_invariants(c(), job)) EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
  for (const auto& k : a::check_invariants(c())) EXPECT_TRUE(k.ok) << k.name << ": " << k.detail;
}

TEST_F(ClientApi, SurveyCalls) {
  EXPECT_EQ(a::normalize_step_name(c(), "Workload Today"), "workload_today");
  EXPECT_EQ(sqlstate_of([&] { a::normalize_step_name(c(), "no such step"); }), "22023");
  EXPECT_TRUE(a::is_valid_session_id(c(), "C012345678"));
  EXPECT_FALSE(a::is_valid_session_id(c(), "'; DROP TABLE x; --"));
  const auto parsed = a::parse_session_id(c(), "C012345678");
  EXPECT_EQ(parsed["session_id"], "C012345678");
  EXPECT_EQ(sqlstate_of([&] { a::parse_session_id(c(), "not a session"); }), "22023");
  EXPECT_NO_THROW(a::set_session_timezone(c(), "C012345678", "Europe/Berlin"));
  EXPECT_EQ(sqlstate_of([&] { a::set_session_timezone(c(), "C012345678", "Mars/Olympus"); }), "22023");

  const auto row = a::upsert_survey_step(c(), "C012345678", "workload_today", {{"hours", 6}},
                                         std::string("2026-11-18 10:00+01"));
  EXPECT_EQ(row["session_id"], "C012345678");
  EXPECT_EQ(row["step_name"], "workload_today");
  EXPECT_EQ(row["value"]["hours"], 6);
  EXPECT_EQ(sqlstate_of([&] { a::upsert_survey_step(c(), "C012345678", "bogus step"); }), "22023");

  json batch = json::array({
      {{"session_id", "C012345678"}, {"step_name", "connects_thisweek"}, {"value", {{"n", 3}}},
       {"completed_at", "2026-11-18T12:00:00+01:00"}},
      {{"session_id", "C012345678"}, {"step_name", "day_off_nextweek"}, {"completed_at", "2026-11-19T12:00:00+01:00"}}});
  EXPECT_EQ(a::upsert_survey_steps(c(), batch), 2);
  json bad = batch;
  bad[1]["step_name"] = "nonsense";
  const long before = count("SELECT count(*) FROM workflow.survey_steps");
  EXPECT_EQ(sqlstate_of([&] { a::upsert_survey_steps(c(), bad); }), "22023");
  EXPECT_EQ(count("SELECT count(*) FROM workflow.survey_steps"), before);  // atomic

  const auto week = a::get_weekly_survey_steps(c(), "C012345678", std::string("2026-11-20 12:00+01"));
  ASSERT_TRUE(week.is_array());
  EXPECT_EQ(week.size(), 3u);
  EXPECT_TRUE(a::get_weekly_survey_steps(c(), "C012345678", std::string("2025-01-01")).empty());
  EXPECT_EQ(sqlstate_of([&] { a::get_weekly_survey_steps(c(), "bad id"); }), "22023");
  EXPECT_GE(a::cleanup_survey_sessions(c(), "100 years"), 0);
  EXPECT_NE(sqlstate_of([&] { a::cleanup_survey_sessions(c(), "not an interval"); }), "");
}

TEST(ClientApiText, TextArrayEscapes) {
  EXPECT_EQ(a::text_array({}), "{}");
  EXPECT_EQ(a::text_array({"a", "b\"c", "d\\e", "f,g"}), "{\"a\",\"b\\\"c\",\"d\\\\e\",\"f,g\"}");
}
