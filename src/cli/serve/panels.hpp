// The dashboard's panels: each renders escaped HTML from the monitoring
// views (src/sql/50_monitoring.sql) and is both part of its page and served
// alone under /panel/... for the live refresh.
#pragma once

#include <string>

#include "db.hpp"
#include "throughput.hpp"

namespace workflow::serve {

// What every panel may need besides the database.
struct PanelContext {
  Db& db;
  bool actions = false;  // --allow-actions: render action buttons
  Throughput* throughput = nullptr;  // the job page's samples (nullptr: no chart history)
};

std::string jobs_panel(PanelContext& c, const std::string& status, const std::string& search);
// The job's summary, a progress bar per stage, the completions chart and its
// failed tasks; "" when the job does not exist.
std::string job_panel(PanelContext& c, const std::string& job_id);
std::string failures_panel(PanelContext& c);
// Queue depth, oldest runnable task, stale claims and stuck jobs from the
// shared figures `d` (Overview::open(), overview.hpp).
std::string queues_panel(PanelContext& c, const nlohmann::json& d);
// Not live: a form's answer.
std::string history_panel(PanelContext& c, const std::string& table, const std::string& key);
std::string survey_panel(PanelContext& c, const std::string& session, const std::string& week);

}  // namespace workflow::serve
