// Worker loop: claim a batch, run the handler on each task, heartbeat tasks
// that run long, complete the batch in one round trip (or fail the task when
// the handler throws), and when told a stage is complete: call on_stage_complete
// (e.g. fan out the next stage), advance the job, then check its completion.
// Every handover_every it also claims stage hand-overs (stages another
// completer left complete but not advanced: it died, or the job reached a
// stage completed early) and follows them up the same way.
// Connection failures are retried with backoff; the loop survives a server restart.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "workflow/client.hpp"

namespace workflow::client {

// Throw from a handler to fail a task without retries.
class permanent_task_error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class WorkerGroup;  // workflow/worker_group.hpp

struct WorkerOptions {
  std::string name = "worker";
  int batch_size = 32;
  std::vector<std::string> task_types;                  // empty = any
  std::chrono::seconds lease{300};
  std::chrono::milliseconds heartbeat_every{0};         // 0 = lease / 3
  std::chrono::milliseconds idle_sleep{50};             // wait when nothing was claimed
  std::chrono::milliseconds stop_after_idle{0};         // > 0: return after idling this long
  // By default a batch completes in one statement and transaction
  // (api::complete_tasks); true: one transaction per task, pipelined
  // (api::complete_tasks_each; a commit per task, slower, see bench/RESULTS.md).
  bool transaction_per_task = false;
  // Called once per completed stage, before the job is advanced. Idempotent work only:
  // a stage handed over after its completer died is followed up again.
  std::function<void(Client&, const std::string& job_id, int stage)> on_stage_complete;
  // How often to claim stage hand-overs (claim_stage_handovers, a few stages
  // per call, leased for `lease`), busy or idle; 0 = never.
  std::chrono::milliseconds handover_every{1000};
  // Loops of one process sharing round trips; nullptr: alone. The tasks a
  // loop handled complete together with its next claim, and the loops that
  // ask at the same moment go together: one round trip and one transaction
  // for all their completions and claims. Must outlive the Worker. Not with
  // transaction_per_task (that completes alone, then claims).
  WorkerGroup* group = nullptr;
};

struct WorkerStats {
  std::uint64_t claimed = 0;
  std::uint64_t completed = 0;
  std::uint64_t failed = 0;
  std::uint64_t stage_completions = 0;  // stage_complete=true answers this worker received
  std::uint64_t advances = 0;           // advance_job_stage calls that won
  std::uint64_t jobs_completed = 0;
  std::uint64_t heartbeats = 0;
  std::uint64_t reconnects = 0;         // loop iterations that hit a connection error
  std::uint64_t handovers = 0;          // stages claimed by claim_stage_handovers
  std::uint64_t refused = 0;            // failures the server refused (the task's job ended,
                                        // or another worker holds it now): nothing recorded
  std::uint64_t released = 0;           // claimed, not started because stop was set: given
                                        // back (lease shortened to 1 s), no attempt counted

  // Adds another worker's counts (to total several workers' stats).
  WorkerStats& operator+=(const WorkerStats& o) {
    claimed += o.claimed;
    completed += o.completed;
    failed += o.failed;
    stage_completions += o.stage_completions;
    advances += o.advances;
    jobs_completed += o.jobs_completed;
    heartbeats += o.heartbeats;
    reconnects += o.reconnects;
    handovers += o.handovers;
    refused += o.refused;
    released += o.released;
    return *this;
  }
};

using TaskHandler = std::function<json(const Task&)>;

class Worker {
 public:
  Worker(Client& client, WorkerOptions options, TaskHandler handler);
  // Runs until stop is set (or stop_after_idle elapses with nothing to do).
  // Once stop is set no new task of the claimed batch starts: the running
  // handler finishes, the handled tasks are completed, and the others are
  // given back (heartbeat_task with a 1 s lease: claimable again a second
  // later, no attempt counted; if that call fails, when their lease ends).
  WorkerStats run(const std::atomic<bool>& stop);
  // One claim/handle/complete cycle; returns the number of tasks claimed.
  // With a group the tasks it handled complete with the next run_once's
  // claim (or complete_pending; run() does it before it returns).
  int run_once(WorkerStats& stats);
  // Completes what was handled and not yet confirmed, and follows up its
  // completed stages.
  void complete_pending(WorkerStats& stats) { flush(stats); }

 private:
  void on_stage_complete(const std::string& job_id, int stage, WorkerStats& stats,
                         bool handover = false);
  void take_handovers(WorkerStats& stats);
  void flush(WorkerStats& stats);
  std::vector<Task> complete_and_claim(WorkerStats& stats);
  void confirm(const std::vector<StageCompletion>& answers, WorkerStats& stats);
  void follow_up_stages(WorkerStats& stats);
  void give_back(const std::vector<const Task*>& tasks, WorkerStats& stats);
  Client& client_;
  const std::atomic<bool>* stop_ = nullptr;  // run()'s flag: set, no new task of a batch starts
  // Handled tasks whose completion (or stage follow-up) has not been confirmed
  // yet: kept across a connection outage and sent again first (idempotent), so
  // a stage_complete answer is never dropped even when retries run out.
  std::vector<TaskCompletion> unacked_;
  std::vector<std::pair<std::string, int>> stage_events_;
  bool counted_front_ = false;  // stage_events_.front() already counted in stats
  std::vector<StageHandover> handovers_;  // claimed, not yet followed up
  std::chrono::steady_clock::time_point next_handover_poll_{};
  WorkerOptions options_;
  TaskHandler handler_;
};

}  // namespace workflow::client
