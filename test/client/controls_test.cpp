// The typed calls of the 1.4 engine controls (controls.hpp) against the real
// extension: dead work and its re-run, pause/resume, a concurrency limit,
// progress, retention, and recurring jobs without pg_cron (55000).
#include "test_db.hpp"

WFTEST_DATABASE("wf_client_controls");

using namespace wftest;
namespace a = workflow::client::api;

class ClientControls : public ::testing::Test {
 protected:
  void SetUp() override { conn = std::make_unique<Connection>(settings()); }
  Connection& c() { return *conn; }
  std::string job_with(const std::string& type, int n) {
    const auto id = a::create_job(c(), "controls-test", json::object(), 1);
    a::add_tasks(c(), id, 1, type, std::vector<json>(n, json::object()));
    return id;
  }
  long count(const std::string& sql, const Params& p = {}) { return c().query(sql, p).int64(0, 0); }
  std::unique_ptr<Connection> conn;
};

TEST_F(ClientControls, DeadTaskIsRetriedAndItsJobRunsAgain) {
  const auto job = job_with("ctl.dead", 1);
  const auto claimed = a::claim_tasks(c(), "w", 1, {"ctl.dead"});
  ASSERT_EQ(claimed.size(), 1u);
  EXPECT_TRUE(a::report_progress(c(), claimed[0].id, job, {{"done", 1}}, std::string("w")));
  EXPECT_FALSE(a::report_progress(c(), claimed[0].id, job, {{"done", 2}}, std::string("other")));
  EXPECT_EQ(count("SELECT (progress->>'done')::int FROM workflow.tasks WHERE id = $1", {claimed[0].id}), 1);
  a::fail_task(c(), claimed[0].id, job, "boom", /*retryable=*/false, std::string("w"));
  EXPECT_EQ(a::get_job(c(), job)->status, "failed");
  EXPECT_TRUE(a::retry_job(c(), job));
  EXPECT_EQ(a::get_job(c(), job)->status, "running");
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1 AND status = 'queued'", {job}), 1);
  EXPECT_EQ(sqlstate_of([&] { a::retry_job(c(), "no-such-job"); }), "P0002");
}

TEST_F(ClientControls, PausedTypeIsNotClaimedAndALimitHolds) {
  job_with("ctl.pause", 3);
  EXPECT_TRUE(a::pause_task_type(c(), "ctl.pause"));
  EXPECT_TRUE(a::claim_tasks(c(), "w", 3, {"ctl.pause"}).empty());
  EXPECT_TRUE(a::resume_task_type(c(), "ctl.pause"));
  a::set_task_type_limit(c(), "ctl.pause", 2);
  EXPECT_EQ(a::claim_tasks(c(), "w", 3, {"ctl.pause"}).size(), 2u);
  EXPECT_TRUE(a::claim_tasks(c(), "w", 3, {"ctl.pause"}).empty());
  a::set_task_type_limit(c(), "ctl.pause", std::nullopt);
  EXPECT_EQ(a::claim_tasks(c(), "w", 3, {"ctl.pause"}).size(), 1u);
  EXPECT_EQ(sqlstate_of([&] { a::set_task_type_limit(c(), "ctl.pause", -1); }), "22023");
}

TEST_F(ClientControls, PausedJobAndRetention) {
  const auto job = job_with("ctl.job", 1);
  EXPECT_TRUE(a::pause_job(c(), job));
  EXPECT_TRUE(a::claim_tasks(c(), "w", 1, {"ctl.job"}).empty());
  EXPECT_TRUE(a::resume_job(c(), job));
  const auto t = a::claim_tasks(c(), "w", 1, {"ctl.job"});
  ASSERT_EQ(t.size(), 1u);
  a::complete_task(c(), t[0].id, job, 1, json::object(), std::string("w"));
  a::advance_job_stage(c(), job, 1, 2, json::object());
  EXPECT_EQ(a::get_job(c(), job)->status, "completed");
  EXPECT_GE(a::purge_jobs(c(), "0 seconds"), 1);
  EXPECT_FALSE(a::get_job(c(), job));
  EXPECT_EQ(count("SELECT count(*) FROM workflow.tasks WHERE job_id = $1", {job}), 0);
  EXPECT_EQ(sqlstate_of([&] { a::purge_jobs(c(), "0 seconds", {"running"}); }), "22023");
}

TEST_F(ClientControls, ScheduleNeedsPgCron) {
  EXPECT_EQ(sqlstate_of([&] { a::schedule(c(), "nightly", "0 2 * * *", "report"); }), "55000");
  EXPECT_EQ(sqlstate_of([&] { a::schedule(c(), "bad", "0 2 * * *", "report", json::object(), 1,
                                          std::string("export")); }), "22023");  // tasks missing
  EXPECT_FALSE(a::unschedule(c(), "nightly"));
  EXPECT_EQ(count("SELECT count(*) FROM workflow.schedules"), 0);
}
