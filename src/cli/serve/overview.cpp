// Shared whole-table figures of `workflow serve` (see overview.hpp).
#include "overview.hpp"

#include <algorithm>
#include <string>

namespace workflow::serve {
namespace {

constexpr long kReuseFactor = 20;  // a read is reused at least 20 times as long as it took

// The open figures; `summary`: the database has workflow.open_task_summary
// (1.5), else (an older extension) the three views it stands for.
const std::string& open_sql(bool summary) {
  static const std::string stale =
      " 'stale', CASE WHEN (SELECT stale_count FROM n) > 0 THEN (SELECT coalesce(json_agg(s), '[]')"
      "          FROM (SELECT * FROM workflow.stale_claims ORDER BY lease_expires_at LIMIT 100) s) ELSE '[]' END,"
      " 'stale_count', (SELECT stale_count FROM n),"
      " 'stuck', (SELECT coalesce(json_agg(s ORDER BY s.since), '[]') FROM workflow.stuck_jobs s))";
  static const std::string with_summary =
      "WITH o AS MATERIALIZED (SELECT * FROM workflow.open_task_summary),"
      " n AS (SELECT coalesce(sum(stale_claims), 0) AS stale_count FROM o) "
      "SELECT json_build_object("
      " 'depth', (SELECT coalesce(json_agg(json_build_object('task_type', task_type, 'status', status,"
      "           'tasks', tasks) ORDER BY task_type, status), '[]') FROM o),"
      " 'oldest', (SELECT coalesce(json_agg(json_build_object('task_type', task_type, 'runnable_tasks',"
      "            runnable_tasks, 'runnable_since', runnable_since, 'age_seconds',"
      "            extract(epoch FROM now() - runnable_since)::float8) ORDER BY task_type), '[]')"
      "            FROM o WHERE status = 'queued' AND runnable_tasks > 0)," + stale;
  static const std::string without =
      "WITH n AS (SELECT count(*) AS stale_count FROM workflow.stale_claims) "
      "SELECT json_build_object("
      " 'depth', (SELECT coalesce(json_agg(q ORDER BY q.task_type, q.status), '[]') FROM workflow.queue_depth q"
      "           WHERE q.status IN ('queued', 'claimed')),"
      " 'oldest', (SELECT coalesce(json_agg(o ORDER BY o.task_type), '[]') FROM workflow.oldest_runnable_task o),"
      + stale;
  return summary ? with_summary : without;
}

const char* kFinishedSql =
    "SELECT coalesce(json_agg(q ORDER BY q.task_type, q.status), '[]') FROM workflow.queue_depth q"
    " WHERE q.status NOT IN ('queued', 'claimed')";

}  // namespace

nlohmann::json Overview::cached(Db& db, const char* key, std::chrono::milliseconds ttl,
                                std::atomic<long>& last_ms, const std::function<std::string()>& sql) {
  if (ttl.count() > 0) ttl = std::max(ttl, std::chrono::milliseconds(kReuseFactor * last_ms.load()));
  const Rendered r = cache_.get(key, [&] {
    const auto t0 = std::chrono::steady_clock::now();
    Rendered out{200, db.value(sql()).dump(), "application/json"};
    last_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    return out;
  }, ttl);
  return nlohmann::json::parse(r.body);
}

nlohmann::json Overview::open(Db& db) {
  return cached(db, "open", open_ttl_, open_ms_,
                [&db] { return open_sql(db.readable("workflow.open_task_summary")); });
}

nlohmann::json Overview::finished(Db& db) {
  return cached(db, "finished", finished_ttl_, finished_ms_, [] { return std::string(kFinishedSql); });
}

}  // namespace workflow::serve
