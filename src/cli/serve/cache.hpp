// A short-lived cache of rendered responses, keyed by path and query: many
// dashboards polling the same panel cost one query per `ttl`. Single flight:
// while one request renders a key, the others for it wait for its result.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace workflow::serve {

struct Rendered {
  int status = 200;
  std::string body;
  std::string content_type = "text/html; charset=utf-8";
};

class Cache {
 public:
  explicit Cache(std::chrono::milliseconds ttl) : ttl_(ttl) {}
  // The cached response for key, or render()'s, kept for `ttl` (default: the
  // cache's; 0: not stored). An exception from render() reaches every waiter
  // and is not stored. max_age (if >= 0): a stored response older than it is
  // rendered again (the live streams' refresh wants one at most this old).
  Rendered get(const std::string& key, const std::function<Rendered()>& render,
               std::chrono::milliseconds ttl = std::chrono::milliseconds(-1),
               std::chrono::milliseconds max_age = std::chrono::milliseconds(-1));

 private:
  struct Entry {
    bool ready = false;
    bool failed = false;
    std::chrono::steady_clock::time_point at;
    std::chrono::milliseconds ttl{0};
    Rendered value;
  };
  void prune(std::chrono::steady_clock::time_point now);  // under mu_
  std::chrono::milliseconds ttl_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, std::shared_ptr<Entry>> entries_;
};

}  // namespace workflow::serve
