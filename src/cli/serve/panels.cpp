// The dashboard's panels (see panels.hpp). Every value shown goes through
// escape() (html.hpp): job ids, parameters and errors are user data.
#include "panels.hpp"

#include <fmt/core.h>

#include <map>

#include "chart.hpp"
#include "html.hpp"

namespace workflow::serve {
namespace {

constexpr int kChartSeconds = 120;

std::string status_cell(const json& row) {
  const std::string s = text_of(row.value("status", json()));
  return fmt::format("<span class=\"status-{}\">{}</span>", escape(s), escape(s));
}

std::string error_cell(const json& row, const char* key) {
  return "<pre class=\"error\">" + escape(text_of(row.value(key, json()))) + "</pre>";
}

// Failed tasks of one job or of all: a retry button on the dead ones.
std::string failed_table(const PanelContext& c, const json& rows) {
  std::vector<Column> cols = {
      {"job", [](const json& r) { return job_link(r.at("job_id").get<std::string>()); }},
      {"task", "task_id"},       {"type", "task_type"},        {"stage", "stage"},
      {"status", status_cell},   {"retries", "retry_count"},   {"next attempt", "next_attempt_at"},
      {"error", [](const json& r) { return error_cell(r, "last_error"); }}};
  if (c.actions)
    cols.push_back({"", [](const json& r) {
                      if (r.value("status", "") != "failed") return std::string();
                      return action_button("retry-task",
                                           {{"job_id", r.at("job_id")}, {"task_id", r.at("task_id")}},
                                           "retry");
                    }});
  return table(rows, cols, "none");
}

}  // namespace

std::string jobs_panel(PanelContext& c, const std::string& status, const std::string& search) {
  const json counts = c.db.rows(
      "SELECT status, count(*) AS jobs FROM workflow.job_summary GROUP BY status ORDER BY status");
  const json rows = c.db.rows(
      "SELECT job_id, job_type, status, stage, total_stages, total_tasks, created_at, finished_at, error "
      "FROM workflow.job_summary WHERE ($1 = '' OR status = $1) "
      "AND ($2 = '' OR strpos(job_id, $2) > 0 OR strpos(job_type, $2) > 0) "
      "ORDER BY created_at DESC, job_id LIMIT 200",
      {status, search});
  std::string out = "<p class=\"counts\">";
  for (const auto& r : counts)
    out += fmt::format("<a href=\"/?status={}\">{}</a>: {} &nbsp; ",
                       escape(url_encode(r.at("status").get<std::string>())),
                       escape(r.at("status").get<std::string>()), r.at("jobs").get<long>());
  out += "</p>";
  return out + table(rows,
                     {{"job", [](const json& r) { return job_link(r.at("job_id").get<std::string>()); }},
                      {"type", "job_type"},
                      {"status", status_cell},
                      {"stage", [](const json& r) {
                         return fmt::format("{}/{}", r.at("stage").get<int>(), r.at("total_stages").get<int>());
                       }},
                      {"tasks", "total_tasks"},
                      {"created", "created_at"},
                      {"finished", "finished_at"},
                      {"error", [](const json& r) { return error_cell(r, "error"); }}},
                     "no jobs match");
}

std::string job_panel(PanelContext& c, const std::string& job_id) {
  // Progress from the stages' counters (stage_counters), dead tasks from the
  // failed-task index: nothing here reads the job's tasks, so the page costs
  // the same for 10 tasks or a million (bench/dashboard/run).
  const json d = c.db.value(
      "SELECT json_build_object("
      " 'job', (SELECT row_to_json(j) FROM workflow.job_summary j WHERE j.job_id = $1),"
      " 'stages', (SELECT coalesce(json_agg(json_build_object('stage', s.stage, 'total_tasks', s.total_tasks,"
      "            'finished', s.finished_tasks, 'unfinished', s.unfinished_tasks, 'sealed', s.sealed,"
      "            'complete', s.complete, 'dead', (SELECT count(*) FROM workflow.failed_tasks f"
      "             WHERE f.job_id = s.job_id AND f.stage = s.stage AND f.status = 'failed'))"
      "            ORDER BY s.stage), '[]') FROM workflow.stage_counters s WHERE s.job_id = $1),"
      " 'now', extract(epoch FROM date_trunc('second', now()))::bigint,"
      " 'failed', (SELECT coalesce(json_agg(f), '[]') FROM (SELECT * FROM workflow.failed_tasks f"
      "            WHERE f.job_id = $1 ORDER BY f.updated_at DESC LIMIT 100) f))",
      {job_id});
  const json& job = d.at("job");
  if (job.is_null()) return "";
  const std::string status = job.at("status").get<std::string>();
  std::string out = fmt::format(
      "<p>type <strong>{}</strong> · status <span class=\"status-{}\" id=\"job-status\">{}</span> · stage "
      "{}/{} · created {} · finished {}</p>",
      escape(text_of(job.at("job_type"))), escape(status), escape(status), job.at("stage").get<int>(),
      job.at("total_stages").get<int>(), escape(text_of(job.at("created_at"))),
      escape(text_of(job.at("finished_at"))));
  if (!job.at("error").is_null()) out += error_cell(job, "error");
  out += "<div>parameters <pre>" + escape(job.at("parameters").dump(2)) + "</pre></div>";
  if (c.actions) {
    if (status == "pending" || status == "running")
      out += action_button("cancel-job", {{"job_id", job_id}}, "cancel job");
    if (status == "failed") out += action_button("retry-job", {{"job_id", job_id}}, "retry job");
  }
  const long now = d.at("now").get<long>();
  std::map<int, long> finished;
  for (const auto& s : d.at("stages")) finished[s.at("stage").get<int>()] = s.at("finished").get<long>();
  if (c.throughput) c.throughput->sample(job_id, now, finished);
  out += "<h2>Stages</h2><table class=\"stages\"><thead><tr><th>stage</th><th>progress</th><th>done</th>"
         "<th>dead</th><th>open</th><th>per second (1 min)</th></tr></thead><tbody>";
  for (const auto& s : d.at("stages")) {
    const int stage = s.at("stage").get<int>();
    const long total = s.at("total_tasks").get<long>(), done = s.at("finished").get<long>();
    out += fmt::format(
        "<tr class=\"stage\" data-stage=\"{}\"><td>{}{}</td><td><progress value=\"{}\" max=\"{}\"></progress>"
        "</td><td class=\"done\">{}/{}</td><td>{}</td><td>{}</td><td>{:.1f}</td></tr>",
        stage, stage, s.at("complete").get<bool>() ? " ✓" : (s.at("sealed").get<bool>() ? "" : " (open)"), done,
        std::max(total, 1L), done, total, s.at("dead").get<long>(), s.at("unfinished").get<long>(),
        c.throughput ? c.throughput->per_second(job_id, stage, now) : 0.0);
  }
  out += "</tbody></table><h2>Completions per second</h2>";
  out += completions_chart(c.throughput ? c.throughput->points(job_id, now, kChartSeconds) : json::array(),
                           now, kChartSeconds);
  out += "<h2>Failed tasks</h2>" + failed_table(c, d.at("failed"));
  return out;
}

std::string failures_panel(PanelContext& c) {
  // workflow.dead_tasks (1.4) when the extension has it; before, the dead
  // tasks are the failed ones of workflow.failed_tasks.
  const bool dead_view = c.db.readable("workflow.dead_tasks");
  const json dead = c.db.rows(
      dead_view ? "SELECT job_id, task_id, task_type, stage, 'failed' AS status, retry_count, "
                  "NULL AS next_attempt_at, last_error FROM workflow.dead_tasks ORDER BY died_at DESC LIMIT 200"
                : "SELECT * FROM workflow.failed_tasks WHERE status = 'failed' ORDER BY updated_at DESC LIMIT 200");
  const json retrying = c.db.rows(
      "SELECT * FROM workflow.failed_tasks WHERE status <> 'failed' ORDER BY updated_at DESC LIMIT 200");
  return "<h2>Dead tasks</h2>" + failed_table(c, dead) + "<h2>Retrying</h2>" + failed_table(c, retrying);
}

std::string queues_panel(PanelContext& c, const json& d) {
  std::vector<Column> depth = {{"type", "task_type"}, {"status", status_cell}, {"tasks", "tasks"}};
  if (c.actions)
    depth.push_back({"", [](const json& r) {
                       if (r.value("status", "") != "queued") return std::string();
                       const json a = {{"task_type", r.at("task_type")}};
                       return action_button("pause-task-type", a, "pause") +
                              action_button("resume-task-type", a, "resume");
                     }});
  return "<h2>Queue depth (queued and claimed tasks)</h2>" + table(d.at("depth"), depth, "no tasks waiting") +
         "<h2>Oldest runnable task</h2>" +
         table(d.at("oldest"),
               {{"type", "task_type"}, {"runnable", "runnable_tasks"}, {"since", "runnable_since"},
                {"age (s)", "age_seconds"}},
               "nothing waiting") +
         "<h2>Stale claims</h2>" +
         table(d.at("stale"),
               {{"job", [](const json& r) { return job_link(r.at("job_id").get<std::string>()); }},
                {"task", "task_id"}, {"type", "task_type"}, {"worker", "claimed_by"},
                {"lease expired", "lease_expires_at"}},
               "none") +
         "<h2>Stuck jobs</h2>" +
         table(d.at("stuck"),
               {{"job", [](const json& r) { return job_link(r.at("job_id").get<std::string>()); }},
                {"type", "job_type"}, {"stage", "stage"}, {"reason", "reason"}, {"since", "since"}},
               "none");
}

std::string history_panel(PanelContext& c, const std::string& table_name, const std::string& key) {
  if (table_name.empty() || key.empty()) return "";
  const json rows = c.db.rows(
      "SELECT changed_at, operation, actor, session_user_name, old_values, new_values "
      "FROM workflow.row_history($1::regclass, $2::jsonb) ORDER BY changed_at, id",
      {table_name, key});
  auto pre = [](const char* k) {
    return [k](const json& r) { return "<pre>" + escape(text_of(r.value(k, json()))) + "</pre>"; };
  };
  return table(rows,
               {{"at", "changed_at"}, {"operation", "operation"}, {"actor", "actor"},
                {"session user", "session_user_name"}, {"old", pre("old_values")}, {"new", pre("new_values")}},
               "no history for this row");
}

std::string survey_panel(PanelContext& c, const std::string& session, const std::string& week) {
  std::string out = "<h2>Sessions that completed each step, last 8 weeks</h2>" +
                    table(c.db.rows("SELECT week_start, step_name, sessions_completed "
                                    "FROM workflow.survey_weekly_completion "
                                    "WHERE week_start >= current_date - 56 ORDER BY week_start DESC, step_name"),
                          {{"week", "week_start"}, {"step", "step_name"}, {"sessions", "sessions_completed"}},
                          "no survey steps in these weeks");
  if (session.empty()) return out;
  const json rows = c.db.rows(
      "SELECT step_name, value, completed_at, week_start FROM workflow.get_weekly_survey_steps("
      "$1, coalesce(nullif($2, '')::timestamptz, now()))",
      {session, week});
  return out + "<h2>Session " + escape(session) + "</h2>" +
         table(rows,
               {{"step", "step_name"}, {"value", [](const json& r) {
                  return "<pre>" + escape(r.at("value").dump()) + "</pre>";
                }},
                {"completed", "completed_at"}, {"week", "week_start"}},
               "no steps that week");
}

}  // namespace workflow::serve
