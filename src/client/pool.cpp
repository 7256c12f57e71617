#include "workflow/pool.hpp"

#include "workflow/error.hpp"
#include "deadline.hpp"

namespace workflow::client {

using Clock = std::chrono::steady_clock;

Lease::Lease(Lease&& other) noexcept
    : pool_(other.pool_), conn_(std::move(other.conn_)), discard_(other.discard_) {
  other.pool_ = nullptr;
}

Lease::~Lease() {
  if (pool_ && conn_) pool_->release(std::move(conn_), discard_);
}

Pool::Pool(PoolOptions options) : options_(std::move(options)) {
  if (options_.max_size == 0) throw usage_error("pool max_size must be at least 1");
}

Pool::~Pool() {
  // A lease still out would be returned to a freed pool: wait for it.
  std::unique_lock lock(mutex_);
  closing_ = true;
  freed_.notify_all();  // acquire()s waiting for a connection give up
  freed_.wait(lock, [this] { return in_use_ == 0; });
}

Lease Pool::acquire() { return acquire(options_.checkout_timeout); }

Lease Pool::acquire(std::chrono::milliseconds timeout) {
  std::unique_lock lock(mutex_);
  const auto deadline = detail::deadline_after(timeout);
  bool waited = false;
  for (;;) {
    if (closing_) throw usage_error("connection pool is being destroyed");
    if (!idle_.empty()) {
      Idle item = std::move(idle_.back());  // most recently used first: keeps the rest cold
      idle_.pop_back();
      ++in_use_;
      const bool check = Clock::now() - item.since >= options_.idle_check_after;
      if (check) ++counters_.health_checks;
      lock.unlock();
      if (!check || item.conn->ping()) return Lease(this, std::move(item.conn));
      item.conn.reset();  // dead while idle: replace it in the same slot
      lock.lock();
      ++counters_.errors;
      lock.unlock();
      break;
    }
    if (in_use_ + idle_.size() < options_.max_size) {
      ++in_use_;
      lock.unlock();
      break;
    }
    if (!waited) {
      waited = true;
      ++counters_.waits;
    }
    if (freed_.wait_until(lock, deadline) == std::cv_status::timeout &&
        idle_.empty() && in_use_ + idle_.size() >= options_.max_size) {
      ++counters_.timeouts;
      throw pool_timeout("connection pool exhausted: all " + std::to_string(options_.max_size) +
                         " connections stayed in use for " +
                         std::to_string(timeout.count()) + " ms");
    }
  }
  // A slot is reserved (in_use_ counted): open a new connection outside the lock.
  try {
    auto conn = std::make_unique<Connection>(options_.settings, options_.hook);
    std::lock_guard guard(mutex_);
    ++counters_.created;
    return Lease(this, std::move(conn));
  } catch (...) {
    std::lock_guard guard(mutex_);
    --in_use_;
    ++counters_.errors;
    if (closing_) freed_.notify_all();
    else freed_.notify_one();
    throw;
  }
}

void Pool::release(std::unique_ptr<Connection> conn, bool discard) noexcept {
  // A connection left inside a transaction or pipeline (the caller threw
  // before commit/rollback finished) or broken is never handed out again.
  const bool reusable = !discard && conn->idle();
  const bool broken = !conn->ok();
  if (!reusable) conn.reset();
  std::lock_guard guard(mutex_);
  --in_use_;
  if (broken) ++counters_.errors;
  if (reusable) idle_.push_back(Idle{std::move(conn), Clock::now()});
  if (closing_) freed_.notify_all();  // the destructor waits for the last one
  else freed_.notify_one();
}

void Pool::note_error() {
  std::lock_guard guard(mutex_);
  ++counters_.errors;
}

PoolMetrics Pool::metrics() const {
  std::lock_guard guard(mutex_);
  PoolMetrics m = counters_;
  m.in_use = in_use_;
  m.idle = idle_.size();
  return m;
}

}  // namespace workflow::client
