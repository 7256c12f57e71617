// Worker loops of one process that share round trips (WorkerOptions::group).
// The loops that claim at the same moment send their claims together: one
// claim_tasks per loop (each under its own name), pipelined in one
// transaction. The loops that complete at the same moment send one
// complete_claimed_tasks call (each element fenced by its loop's name). One
// loop at a time leads a round trip for the others waiting (combining, no
// extra thread); the rest wait for their answers. At batch 1 and N loops
// this turns about 2 commits per task into about 2 per round of N tasks.
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
  explicit WorkerGroup(Client& client);
  std::vector<Task> claim(const api::ClaimRequest& request);
  std::vector<StageCompletion> complete(const std::vector<TaskCompletion>& batch,
                                        const std::string& worker);
  // Round trips sent, and requests they carried (requests / round trips = how much was shared).
  struct Counts {
    std::uint64_t claim_round_trips = 0, claims = 0;
    std::uint64_t complete_round_trips = 0, completes = 0;
  };
  Counts counts() const;

 private:
  // One shared call at a time: requests queue while it runs and the next
  // caller to find none running sends them all.
  template <class Request, class Response>
  class Combiner {
   public:
    using Send = std::function<std::vector<Response>(const std::vector<const Request*>&)>;
    explicit Combiner(Send send) : send_(std::move(send)) {}
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
    bool sending_ = false;
  };

  struct Completes {
    const std::vector<TaskCompletion>* batch;
    const std::string* worker;
  };
  Client& client_;
  bool per_element_workers_ = true;  // false: the database has no complete_claimed_tasks (before 1.4)
  mutable std::mutex counts_mutex_;
  Counts counts_;
  Combiner<api::ClaimRequest, std::vector<Task>> claims_;
  Combiner<Completes, std::vector<StageCompletion>> completes_;
};

}  // namespace workflow::client
