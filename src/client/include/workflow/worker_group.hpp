// Worker loops of one process that share round trips (WorkerOptions::group).
// A loop that finished its tasks sends their completions with its next claim
// (complete_and_claim), and the loops that do so at the same moment go
// together: one round trip and one transaction holding one
// complete_claimed_tasks call (each element fenced by its loop's name) and
// one claim_tasks_for_workers for the loops that take one task at a time
// (a claim_tasks per loop for larger batches). One loop at a time leads a
// round trip for the others waiting (combining, no extra thread); the rest
// wait for their answers. At batch 1 and N loops this turns 2 commits per
// task into about 1 per round of N tasks. claim and complete alone share
// the same way (claims pipelined, completions in one call).
// Answers and errors are each loop's, as if it had called alone, except
// that a refused element fails the whole shared call: each loop then
// completes its own tasks one by one (Worker does).
#pragma once

#include <condition_variable>
#include <exception>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "workflow/api.hpp"
#include "workflow/client.hpp"

namespace workflow::client {

class WorkerGroup {
 public:
  // max_in_flight: round trips of each kind under way at once (each on its
  // own pooled connection); the requests that arrive meanwhile wait and go
  // together in the next one. 1 shares the most, the fastest at batch 1;
  // 2 was faster at batch 32, where each trip's own work dominates
  // (bench/RESULTS.md section 7).
  explicit WorkerGroup(Client& client, int max_in_flight = 1);
  std::vector<Task> claim(const api::ClaimRequest& request);
  std::vector<StageCompletion> complete(const std::vector<TaskCompletion>& batch,
                                        const std::string& worker);
  // done's completions (may be empty) and the next claim, shared as above.
  // Against a database before 1.5 (no claim_tasks_for_workers): complete,
  // then claim, as two shared calls.
  struct Cycle {
    std::vector<StageCompletion> completed;  // one answer per element of done
    std::vector<Task> claimed;
  };
  Cycle complete_and_claim(const std::vector<TaskCompletion>& done, const std::string& worker,
                           const api::ClaimRequest& claim);
  // Round trips sent, and requests they carried (requests / round trips = how much was shared).
  struct Counts {
    std::uint64_t claim_round_trips = 0, claims = 0;
    std::uint64_t complete_round_trips = 0, completes = 0;
    std::uint64_t cycle_round_trips = 0, cycles = 0;  // complete_and_claim
  };
  Counts counts() const;

 private:
  // One shared call at a time: requests queue while it runs and the next
  // caller to find none running sends them all.
  template <class Request, class Response>
  class Combiner {
   public:
    using Send = std::function<std::vector<Response>(const std::vector<const Request*>&)>;
    Combiner(Send send, int max_in_flight) : send_(std::move(send)), max_in_flight_(max_in_flight) {}
    Response submit(const Request& request, std::uint64_t& round_trips, std::uint64_t& requests);

   private:
    struct Slot {
      const Request* request;
      std::optional<Response> response;
      std::exception_ptr error;
      bool done = false;
    };
    Send send_;
    std::mutex mutex_;
    std::condition_variable cv_;
    std::vector<Slot*> pending_;
    int sending_ = 0;  // round trips in flight
    int max_in_flight_;
  };

  struct Completes {
    const std::vector<TaskCompletion>* batch;
    const std::string* worker;
  };
  struct CycleRequest {
    Completes done;
    const api::ClaimRequest* claim;
  };
  std::vector<Cycle> send_cycles(const std::vector<const CycleRequest*>& requests);
  Client& client_;
  int max_in_flight_;
  bool per_element_workers_ = true;  // false: the database has no complete_claimed_tasks (before 1.4)
  bool claims_for_workers_ = true;   // false: it has no claim_tasks_for_workers (before 1.5)
  mutable std::mutex counts_mutex_;
  Counts counts_;
  Combiner<api::ClaimRequest, std::vector<Task>> claims_;
  Combiner<Completes, std::vector<StageCompletion>> completes_;
  Combiner<CycleRequest, Cycle> cycles_;
};

}  // namespace workflow::client
