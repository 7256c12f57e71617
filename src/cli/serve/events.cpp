// Server-Sent Events of the live panels (see events.hpp).
#include "events.hpp"

#include <fmt/core.h>

#include <vector>

namespace workflow::serve {

std::string sse_event(const std::string& html, std::int64_t rendered_at_ms) {
  std::string out = fmt::format(": t {}\nevent: panel\ndata: ", rendered_at_ms);
  out.reserve(out.size() + html.size() + 64);
  for (std::size_t i = 0; i < html.size(); ++i) {
    const char c = html[i];
    if (c == '\r' || c == '\n') {
      if (c == '\r' && i + 1 < html.size() && html[i + 1] == '\n') ++i;
      out += "\ndata: ";
    } else {
      out += c;
    }
  }
  out += "\n\n";
  return out;
}

Events::Events(Cache& cache, Options options) : cache_(cache), options_(options) {
  publisher_ = std::thread([this] { publish(); });
}

Events::~Events() { stop(); }

void Events::stop() {
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  changed_.notify_all();
  tick_.notify_all();
  if (publisher_.joinable() && publisher_.get_id() != std::this_thread::get_id()) publisher_.join();
}

Events::Stats Events::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::shared_ptr<Events::Stream> Events::subscribe(const std::string& key, std::function<Rendered()> render) {
  std::lock_guard lock(mu_);
  if (stopped_ || stats_.open >= options_.max_streams) {
    ++stats_.refused;
    return nullptr;
  }
  auto& topic = topics_[key];
  if (!topic) {
    topic = std::make_shared<Topic>();
    topic->key = key;
    topic->render = std::move(render);
  }
  ++topic->subscribers;
  ++stats_.open;
  ++stats_.opened;
  return std::make_shared<Stream>(*this, topic);
}

// Each refresh: render every subscribed panel once (the cache's copy if a
// poll rendered it less than half a refresh ago), and publish the changed.
// Only this thread writes a topic's html, event and version.
void Events::publish() {
  std::unique_lock lock(mu_);
  while (!stopped_) {
    const auto start = std::chrono::steady_clock::now();
    const auto wall_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                             std::chrono::system_clock::now().time_since_epoch())
                             .count();
    std::vector<std::shared_ptr<Topic>> topics;
    topics.reserve(topics_.size());
    for (const auto& [key, topic] : topics_) topics.push_back(topic);
    lock.unlock();
    bool any = false;
    for (const auto& topic : topics) {
      Rendered r;
      try {
        r = cache_.get(topic->key, topic->render, options_.cache_ttl, options_.refresh / 2);
      } catch (...) {  // render is guarded; keep the publisher alive whatever it throws
        r.status = 500;
      }
      std::shared_ptr<const std::string> event;
      if (r.status == 200 && (topic->version == 0 || r.body != topic->html))
        event = std::make_shared<const std::string>(sse_event(r.body, wall_ms));
      lock.lock();
      ++stats_.renders;
      if (event) {
        topic->html = std::move(r.body);
        topic->event = std::move(event);
        ++topic->version;
        any = true;
      }
      lock.unlock();
    }
    lock.lock();
    if (any) changed_.notify_all();
    tick_.wait_until(lock, start + options_.refresh, [this] { return stopped_; });
  }
}

Events::Stream::~Stream() {
  std::lock_guard lock(events_.mu_);
  --events_.stats_.open;
  if (--topic_->subscribers == 0) {
    const auto it = events_.topics_.find(topic_->key);
    if (it != events_.topics_.end() && it->second == topic_) events_.topics_.erase(it);
  }
}

bool Events::Stream::write_next(const std::function<bool(const std::string&)>& write, bool& ended) {
  std::shared_ptr<const std::string> event;
  {
    std::unique_lock lock(events_.mu_);
    if (events_.stopped_) {
      ended = true;
      return true;
    }
    if (started_) {
      events_.changed_.wait_until(lock, last_write_ + events_.options_.heartbeat, [this] {
        return events_.stopped_ || topic_->version != sent_;
      });
      if (events_.stopped_) {
        ended = true;
        return true;
      }
      if (topic_->version != sent_) {
        event = topic_->event;
        sent_ = topic_->version;
        ++events_.stats_.events;
      }
    }
  }
  last_write_ = std::chrono::steady_clock::now();
  if (!started_) {
    // Before the first event: how long a browser waits to reconnect.
    started_ = true;
    return write("retry: 2000\n\n");
  }
  return write(event ? *event : std::string(": ping\n\n"));
}

std::string events_metrics(const Events::Stats& s) {
  return fmt::format(
      "# HELP workflow_serve_event_streams Open live-panel event streams (GET /events).\n"
      "# TYPE workflow_serve_event_streams gauge\n"
      "workflow_serve_event_streams {}\n"
      "# HELP workflow_serve_event_streams_opened_total Event streams opened.\n"
      "# TYPE workflow_serve_event_streams_opened_total counter\n"
      "workflow_serve_event_streams_opened_total {}\n"
      "# HELP workflow_serve_event_streams_refused_total Event streams refused (503: --max-streams open).\n"
      "# TYPE workflow_serve_event_streams_refused_total counter\n"
      "workflow_serve_event_streams_refused_total {}\n"
      "# HELP workflow_serve_events_total Panel events written to event streams.\n"
      "# TYPE workflow_serve_events_total counter\n"
      "workflow_serve_events_total {}\n"
      "# HELP workflow_serve_event_renders_total Panel renders of the event publisher (cached renders included).\n"
      "# TYPE workflow_serve_event_renders_total counter\n"
      "workflow_serve_event_renders_total {}\n",
      s.open, s.opened, s.refused, s.events, s.renders);
}

}  // namespace workflow::serve
