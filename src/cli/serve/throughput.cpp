// See throughput.hpp.
#include "throughput.hpp"

namespace workflow::serve {
namespace {
constexpr long kKeepSeconds = 600;
}

long Throughput::Sample::total() const {
  long t = 0;
  for (const auto& [stage, n] : finished) t += n;
  return t;
}

void Throughput::prune(long now) {
  for (auto it = jobs_.begin(); it != jobs_.end();) {
    auto& q = it->second;
    while (q.size() > 1 && q.front().second < now - kKeepSeconds) q.pop_front();
    if (q.empty() || q.back().second < now - kKeepSeconds)
      it = jobs_.erase(it);
    else
      ++it;
  }
}

void Throughput::sample(const std::string& job_id, long now, const std::map<int, long>& finished_by_stage) {
  std::lock_guard lock(mu_);
  auto& q = jobs_[job_id];
  if (!q.empty() && q.back().second >= now) {
    q.back().finished = finished_by_stage;  // the same second: keep the latest count
  } else {
    q.push_back({now, finished_by_stage});
  }
  prune(now);
}

nlohmann::json Throughput::points(const std::string& job_id, long now, int seconds) {
  std::lock_guard lock(mu_);
  nlohmann::json out = nlohmann::json::array();
  auto it = jobs_.find(job_id);
  if (it == jobs_.end()) return out;
  const auto& q = it->second;
  for (std::size_t i = 1; i < q.size(); ++i) {
    const long t1 = q[i - 1].second, t2 = q[i].second, span = t2 - t1;
    const long delta = q[i].total() - q[i - 1].total();
    if (t2 <= now - seconds || delta <= 0 || span <= 0) continue;
    for (long s = t1 + 1; s <= t2; ++s) {  // spread over the interval; the remainder on its last second
      const long n = delta / span + (s == t2 ? delta % span : 0);
      if (n > 0) out.push_back({{"second", s}, {"completions", n}});
    }
  }
  return out;
}

double Throughput::per_second(const std::string& job_id, int stage, long now) {
  std::lock_guard lock(mu_);
  auto it = jobs_.find(job_id);
  if (it == jobs_.end() || it->second.size() < 2) return 0;
  const auto& q = it->second;
  const Sample* from = &q.front();
  for (const auto& s : q)
    if (s.second >= now - 60) { from = &s; break; }
  if (from == &q.back()) from = &q[q.size() - 2];
  const long span = q.back().second - from->second;
  if (span <= 0) return 0;
  auto get = [stage](const Sample& s) {
    auto f = s.finished.find(stage);
    return f == s.finished.end() ? 0L : f->second;
  };
  return static_cast<double>(get(q.back()) - get(*from)) / span;
}

}  // namespace workflow::serve
