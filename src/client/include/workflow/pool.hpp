// A bounded connection pool. acquire() hands out a Lease (RAII): the
// connection returns to the pool when the lease is destroyed, also when the
// caller throws; a connection that is broken or still inside a transaction is
// discarded instead of reused. Idle connections unused for idle_check_after
// are health-checked (a round trip) before they are handed out again.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <memory>
#include <mutex>

#include "workflow/connection.hpp"

namespace workflow::client {

struct PoolOptions {
  Settings settings = Settings::from_environment();
  std::size_t max_size = 8;
  std::chrono::milliseconds checkout_timeout{5000};
  std::chrono::milliseconds idle_check_after{2000};
  QueryHook hook;
};

struct PoolMetrics {
  std::size_t in_use = 0;
  std::size_t idle = 0;
  std::uint64_t created = 0;         // connections opened
  std::uint64_t waits = 0;           // acquires that had to wait for a free connection
  std::uint64_t timeouts = 0;        // acquires that gave up (pool_timeout)
  std::uint64_t errors = 0;          // failed connects + broken connections discarded
  std::uint64_t health_checks = 0;   // idle connections checked before reuse
};

class Pool;

class Lease {
 public:
  Lease(Lease&& other) noexcept;
  Lease& operator=(Lease&&) = delete;
  ~Lease();
  Connection& operator*() const noexcept { return *conn_; }
  Connection* operator->() const noexcept { return conn_.get(); }
  Connection& connection() const noexcept { return *conn_; }
  // Drop the connection instead of returning it (e.g. after LISTEN).
  void discard() noexcept { discard_ = true; }

 private:
  friend class Pool;
  Lease(Pool* pool, std::unique_ptr<Connection> conn) : pool_(pool), conn_(std::move(conn)) {}
  Pool* pool_;
  std::unique_ptr<Connection> conn_;
  bool discard_ = false;
};

class Pool {
 public:
  explicit Pool(PoolOptions options = {});
  // Waits until every lease has come back (a call in flight on another
  // thread finishes first), then closes the connections. Meanwhile acquire()
  // throws usage_error. Stop the threads that use a pool before destroying
  // it: a call made after the destructor returned is undefined.
  ~Pool();
  Pool(const Pool&) = delete;
  Pool& operator=(const Pool&) = delete;

  // Throws pool_timeout when every connection stays in use for checkout_timeout
  // (or the given timeout), connection_error when a new connection cannot be made.
  Lease acquire();
  Lease acquire(std::chrono::milliseconds timeout);
  PoolMetrics metrics() const;
  const PoolOptions& options() const noexcept { return options_; }
  void note_error();  // counted in metrics().errors

 private:
  friend class Lease;
  void release(std::unique_ptr<Connection> conn, bool discard) noexcept;
  struct Idle {
    std::unique_ptr<Connection> conn;
    std::chrono::steady_clock::time_point since;
  };

  PoolOptions options_;
  mutable std::mutex mutex_;
  std::condition_variable freed_;
  std::deque<Idle> idle_;
  std::size_t in_use_ = 0;  // leased + being opened
  bool closing_ = false;    // the destructor runs: no new lease
  PoolMetrics counters_;
};

}  // namespace workflow::client
