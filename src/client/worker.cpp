#include "workflow/worker.hpp"

#include "workflow/worker_group.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

namespace workflow::client {
namespace {

using Clock = std::chrono::steady_clock;

// Extends the leases of a claimed batch every `every` while the handler runs.
class Heartbeat {
 public:
  Heartbeat(Client& client, const std::vector<Task>& batch, const WorkerOptions& opt,
            std::chrono::milliseconds every, std::uint64_t& counter)
      : thread_([&client, &batch, &opt, every, &counter, this] {
          std::unique_lock lock(mutex_);
          while (!cv_.wait_for(lock, every, [this] { return done_; })) {
            lock.unlock();
            try {
              client.run([&](Connection& c) {
                for (const auto& t : batch)
                  if (api::heartbeat_task(c, t.id, t.job_id, opt.name, opt.lease)) ++counter;
              });
            } catch (...) {
              // A missed heartbeat only risks the lease; the loop reports real failures.
              // Nothing leaves this thread (that would be std::terminate).
            }
            lock.lock();
          }
        }) {}
  ~Heartbeat() {
    {
      std::lock_guard g(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts after the members it uses exist
};

// A handler's message as fail_task stores it: invalid UTF-8 replaced (by
// nlohmann's replace handler) and cut to fail_task's 10000 characters, so a
// message the server would refuse cannot leave the task claimed.
std::string storable_error(const std::string& message) {
  std::string text =
      json::parse(json(message).dump(-1, ' ', false, json::error_handler_t::replace)).get<std::string>();
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i)
    if ((static_cast<unsigned char>(text[i]) & 0xC0) != 0x80 && ++chars > 10000) {
      text.resize(i);
      break;
    }
  return text;
}

}  // namespace

Worker::Worker(Client& client, WorkerOptions options, TaskHandler handler)
    : client_(client), options_(std::move(options)), handler_(std::move(handler)) {
  if (options_.batch_size < 1) throw usage_error("batch_size must be at least 1");
  if (options_.heartbeat_every.count() <= 0)
    options_.heartbeat_every =
        std::chrono::duration_cast<std::chrono::milliseconds>(options_.lease) / 3;
}

void Worker::flush(WorkerStats& stats) {
  if (!unacked_.empty()) {
    // One round trip for the whole batch; repeating it after a lost reply is
    // safe (a completed task answers again whether it completed the stage).
    std::vector<StageCompletion> answers;
    try {
      if (options_.group && !options_.transaction_per_task)
        answers = options_.group->complete(unacked_, options_.name);
      else
        answers = client_.run([&](Connection& c) {
          return options_.transaction_per_task ? api::complete_tasks_each(c, unacked_, options_.name)
                                               : api::complete_tasks(c, unacked_, options_.name);
        });
    } catch (const sql_error& e) {
      if (is_retryable(e)) throw;
      // One task was refused (e.g. its job was cancelled meanwhile): the batch
      // statement wrote nothing (per task: the others committed). Repeat one by
      // one (idempotent) to complete the others and collect every answer.
      for (const auto& t : unacked_) {
        try {
          answers.push_back(client_.run([&](Connection& c) {
            return api::complete_task(c, t.task_id, t.job_id, t.stage, t.result_data,
                                      options_.name);
          }));
        } catch (const sql_error& each) {
          if (is_retryable(each)) throw;
          answers.push_back(StageCompletion{});  // refused: no stage event from it
        }
      }
    }
    confirm(answers, stats);
  }
  follow_up_stages(stats);
}

// The server confirmed unacked_ (answers in its order): queue the stages it completed.
void Worker::confirm(const std::vector<StageCompletion>& answers, WorkerStats& stats) {
  for (std::size_t i = 0; i < answers.size() && i < unacked_.size(); ++i)
    if (answers[i].stage_complete) stage_events_.emplace_back(unacked_[i].job_id, unacked_[i].stage);
  stats.completed += unacked_.size();
  unacked_.clear();
}

void Worker::follow_up_stages(WorkerStats& stats) {
  while (!stage_events_.empty()) {
    const auto [job_id, stage] = stage_events_.front();
    on_stage_complete(job_id, stage, stats);
    stage_events_.erase(stage_events_.begin());
    counted_front_ = false;
  }
}

// Stages nobody is advancing, claimed every handover_every (also while busy:
// a full queue must not starve a stuck job), followed up like a
// stage_complete answer. Kept until followed up, so an outage does not drop
// them (and if this worker dies, its hand-over lease runs out).
void Worker::take_handovers(WorkerStats& stats) {
  if (handovers_.empty()) {
    if (options_.handover_every.count() <= 0 || Clock::now() < next_handover_poll_) return;
    next_handover_poll_ = Clock::now() + options_.handover_every;
    handovers_ = client_.run([&](Connection& c) {
      return api::claim_stage_handovers(c, options_.name, 4, options_.lease);
    });
    stats.handovers += handovers_.size();
  }
  while (!handovers_.empty()) {
    try {
      on_stage_complete(handovers_.front().job_id, handovers_.front().stage, stats, true);
    } catch (const sql_error& e) {
      // Refused (e.g. the job was cancelled meanwhile): nothing to follow up;
      // were the job still at that stage, it comes back when this lease ends.
      if (is_retryable(e)) throw;
    }
    handovers_.erase(handovers_.begin());
  }
}

// In a group: the completions of the last batch and the next claim in one
// shared round trip and transaction. When the server refuses one of the
// shared completions nothing of it was written: this loop then completes
// its own one by one (flush) and claims.
std::vector<Task> Worker::complete_and_claim(WorkerStats& stats) {
  const api::ClaimRequest claim{options_.name, options_.batch_size, options_.task_types,
                                options_.lease};
  try {
    auto answer = options_.group->complete_and_claim(unacked_, options_.name, claim);
    confirm(answer.completed, stats);
    follow_up_stages(stats);
    return std::move(answer.claimed);
  } catch (const sql_error& e) {
    if (is_retryable(e)) throw;  // else: maybe another loop's element was refused
  }
  flush(stats);
  return options_.group->claim(claim);
}

int Worker::run_once(WorkerStats& stats) {
  const bool shared = options_.group && !options_.transaction_per_task;
  if (!shared) flush(stats);  // what an earlier outage left unconfirmed
  take_handovers(stats);
  const auto batch =
      shared ? complete_and_claim(stats)
             : client_.run([&](Connection& c) {
                 return api::claim_tasks(c, options_.name, options_.batch_size,
                                         options_.task_types, options_.lease);
               });
  if (batch.empty()) return 0;
  stats.claimed += batch.size();

  std::vector<TaskCompletion> done;
  struct Failure { const Task* task; std::string error; bool retryable; };
  std::vector<Failure> failures;
  std::vector<const Task*> unstarted;  // stop was set before their turn
  {
    Heartbeat hb(client_, batch, options_, options_.heartbeat_every, stats.heartbeats);
    for (const auto& task : batch) {
      if (stop_ && stop_->load()) {
        unstarted.push_back(&task);
        continue;
      }
      try {
        done.push_back({task.id, task.job_id, task.stage, handler_(task), task.task_index});
      } catch (const permanent_task_error& e) {
        failures.push_back({&task, e.what(), false});
      } catch (const std::exception& e) {
        failures.push_back({&task, e.what(), true});
      } catch (...) {
        failures.push_back({&task, "handler threw a non-std::exception", true});
      }
    }
  }

  give_back(unstarted, stats);  // after the heartbeats ended: none extends them again
  unacked_ = std::move(done);  // kept if a call below fails
  for (const auto& f : failures) {
    try {
      client_.run([&](Connection& c) {
        return api::fail_task(c, f.task->id, f.task->job_id, storable_error(f.error), f.retryable,
                              options_.name);
      });
      ++stats.failed;
    } catch (const sql_error& e) {
      // Refused (55000: its job ended meanwhile, or its lease ran out and
      // another worker holds it): nothing of this attempt to record.
      if (is_retryable(e)) throw;
      ++stats.refused;
    }
  }
  if (!shared) flush(stats);  // shared: with the next claim
  return static_cast<int>(batch.size());
}

// Claimed tasks this worker will not run (stopping): shortens each lease to
// 1 s, so another worker claims it right after, with no attempt counted (a
// failure would count one). Best effort: a task not given back here (the
// call failed, or the worker no longer holds it) comes back when its lease ends.
void Worker::give_back(const std::vector<const Task*>& tasks, WorkerStats& stats) {
  for (const Task* t : tasks) {
    try {
      if (client_.run([&](Connection& c) {
            return api::heartbeat_task(c, t->id, t->job_id, options_.name, std::chrono::seconds(1));
          }))
        ++stats.released;
    } catch (const std::exception&) {
      // left to its lease (see above); the loop is stopping, nothing to retry for
    }
  }
}

void Worker::on_stage_complete(const std::string& job_id, int stage, WorkerStats& stats,
                               bool handover) {
  // Counted once per stage even when a follow-up call below fails and the
  // event is processed again after reconnecting (a hand-over is counted apart).
  if (!handover && !counted_front_) ++stats.stage_completions;
  if (!handover) counted_front_ = true;
  if (options_.on_stage_complete) options_.on_stage_complete(client_, job_id, stage);
  // Compare-and-set; next_stage = total_stages + 1 completes the job.
  const bool won = client_.run([&](Connection& c) {
    return api::advance_job_stage(c, job_id, stage, stage + 1, json::object());
  });
  if (won) ++stats.advances;
  const auto jc = client_.run([&](Connection& c) { return api::check_job_completion(c, job_id); });
  if (won && jc.job_complete && jc.final_stage == stage) ++stats.jobs_completed;
}

WorkerStats Worker::run(const std::atomic<bool>& stop) {
  WorkerStats stats;
  stop_ = &stop;
  struct Unset {  // run_once sees the flag during run() only, however run() ends
    const std::atomic<bool>*& flag;
    ~Unset() { flag = nullptr; }
  } unset{stop_};
  auto idle_since = Clock::now();
  int failures_in_row = 0;
  while (!stop.load()) {
    int claimed = 0;
    try {
      claimed = run_once(stats);
      failures_in_row = 0;
    } catch (const std::exception& e) {
      // The server went away (restart) or a call failed: back off and go on;
      // unfinished claimed tasks come back when their lease expires.
      if (is_retryable(e) || dynamic_cast<const pool_timeout*>(&e)) ++stats.reconnects;
      else throw;
      std::this_thread::sleep_for(std::chrono::duration<double>(
          retry_delay(client_.retry_policy(), ++failures_in_row)));
      continue;
    }
    if (claimed > 0) {
      idle_since = Clock::now();
      continue;
    }
    if (options_.stop_after_idle.count() > 0 &&
        Clock::now() - idle_since >= options_.stop_after_idle)
      break;
    std::this_thread::sleep_for(options_.idle_sleep);
  }
  // What was handled and not confirmed yet (in a group: the last batch,
  // which would have gone with the next claim). A few tries; after that
  // its tasks come back when their leases expire.
  for (int attempt = 1; !unacked_.empty() || !stage_events_.empty(); ++attempt) {
    try {
      flush(stats);
    } catch (const std::exception& e) {
      if (!(is_retryable(e) || dynamic_cast<const pool_timeout*>(&e))) throw;
      ++stats.reconnects;
      if (attempt >= 5) break;
      std::this_thread::sleep_for(
          std::chrono::duration<double>(retry_delay(client_.retry_policy(), attempt)));
    }
  }
  return stats;
}

}  // namespace workflow::client
