// Live panels as Server-Sent Events (GET /events?panel=/panel/...): an open
// page holds one stream instead of fetching its panel every refresh. One
// publisher thread renders each panel that has subscribers once per refresh
// (through the response cache, so polls and streams share the render) and,
// when the HTML changed, formats one event that every subscriber's stream
// thread writes as is. A comment every heartbeat finds clients that left (a
// failed write ends the stream); stop() ends every stream.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "cache.hpp"

namespace workflow::serve {

// The SSE text of one `panel` event carrying html (each line a data: line;
// \r and \r\n end lines too, as in HTML parsing), preceded by a comment with
// the time (Unix ms) its render began: `: t 1700000000000`.
std::string sse_event(const std::string& html, std::int64_t rendered_at_ms);

class Events {
 public:
  // Every field is given by serve's options (ServeOptions, server.hpp): the
  // defaults live there only.
  struct Options {
    std::chrono::milliseconds refresh;     // render period of each subscribed panel
    std::chrono::milliseconds cache_ttl;   // how long a render stays in the cache for polls
    std::chrono::milliseconds heartbeat;   // a comment when nothing else was written this long
    int max_streams;                       // open streams at most (then subscribe() says no)
  };
  struct Stats {
    std::int64_t open = 0;      // streams open now
    std::int64_t opened = 0;    // streams opened since start
    std::int64_t refused = 0;   // subscriptions refused (max_streams open)
    std::int64_t events = 0;    // panel events written to clients
    std::int64_t renders = 0;   // publisher renders (cache hits included)
  };
  class Stream;

  Events(Cache& cache, Options options);
  ~Events();
  Events(const Events&) = delete;
  Events& operator=(const Events&) = delete;

  // A stream of the panel cached under key and rendered by render (which must
  // not throw), or null when max_streams are open or after stop().
  std::shared_ptr<Stream> subscribe(const std::string& key, std::function<Rendered()> render);
  // Ends every stream (each writes its last chunk) and the publisher.
  void stop();
  Stats stats() const;

 private:
  struct Topic {
    std::string key;
    std::function<Rendered()> render;
    int subscribers = 0;
    std::uint64_t version = 0;  // 0: not rendered yet
    std::string html;           // the last rendered body (status 200)
    std::shared_ptr<const std::string> event;
  };
  void publish();  // the publisher thread
  friend class Stream;

  Cache& cache_;
  Options options_;
  mutable std::mutex mu_;
  std::condition_variable changed_;  // a topic has a new version, or stop
  std::condition_variable tick_;     // wakes the publisher (stop)
  bool stopped_ = false;
  std::map<std::string, std::shared_ptr<Topic>> topics_;
  Stats stats_;
  std::thread publisher_;
};

// One client's stream. write_next() waits for the panel's next version (or
// the heartbeat, or stop) and writes it with write(data, size); it returns
// false when the write failed, and sets ended after stop(). Unsubscribes when
// destroyed.
class Events::Stream {
 public:
  Stream(Events& events, std::shared_ptr<Topic> topic) : events_(events), topic_(std::move(topic)) {}
  ~Stream();
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  bool write_next(const std::function<bool(const std::string&)>& write, bool& ended);

 private:
  Events& events_;
  std::shared_ptr<Topic> topic_;
  std::uint64_t sent_ = 0;  // the version last written
  bool started_ = false;
  std::chrono::steady_clock::time_point last_write_;
};

// The streams' figures in the Prometheus text format (appended to /metrics).
std::string events_metrics(const Events::Stats& stats);

}  // namespace workflow::serve
