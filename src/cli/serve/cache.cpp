// Response cache of `workflow serve` (see cache.hpp).
#include "cache.hpp"

#include <algorithm>

namespace workflow::serve {

namespace {
constexpr std::size_t kMaxEntries = 2000;  // searches make keys: bound the map
}

void Cache::prune(std::chrono::steady_clock::time_point now) {
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second->ready && now - it->second->at >= it->second->ttl)
      it = entries_.erase(it);
    else
      ++it;
  }
}

Rendered Cache::get(const std::string& key, const std::function<Rendered()>& render,
                    std::chrono::milliseconds ttl, std::chrono::milliseconds max_age) {
  if (ttl.count() < 0) ttl = ttl_;
  if (ttl.count() <= 0) return render();
  std::shared_ptr<Entry> mine;
  {
    std::unique_lock lock(mu_);
    for (;;) {
      const auto now = std::chrono::steady_clock::now();
      auto it = entries_.find(key);
      if (it == entries_.end()) break;
      auto e = it->second;
      if (e->ready && now - e->at < (max_age.count() >= 0 ? std::min(e->ttl, max_age) : e->ttl)) return e->value;
      if (e->ready || e->failed) {  // stale or failed: render again
        entries_.erase(it);
        break;
      }
      cv_.wait(lock);  // another request is rendering it (if it fails, render here)
    }
    if (entries_.size() >= kMaxEntries) prune(std::chrono::steady_clock::now());
    mine = std::make_shared<Entry>();
    mine->ttl = ttl;
    entries_[key] = mine;
  }
  try {
    Rendered r = render();
    std::lock_guard lock(mu_);
    mine->value = r;
    mine->at = std::chrono::steady_clock::now();
    mine->ready = true;
    cv_.notify_all();
    return r;
  } catch (...) {
    std::lock_guard lock(mu_);
    mine->failed = true;
    auto it = entries_.find(key);
    if (it != entries_.end() && it->second == mine) entries_.erase(it);
    cv_.notify_all();
    throw;
  }
}

}  // namespace workflow::serve
