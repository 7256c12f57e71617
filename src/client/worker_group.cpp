#include "workflow/worker_group.hpp"

#include <algorithm>

namespace workflow::client {

template <class Request, class Response>
Response WorkerGroup::Combiner<Request, Response>::submit(const Request& request,
                                                         std::uint64_t& round_trips,
                                                         std::uint64_t& requests) {
  Slot slot{&request, std::nullopt, nullptr, false};
  std::unique_lock lock(mutex_);
  pending_.push_back(&slot);
  while (!slot.done) {
    if (sending_ >= max_in_flight_ || std::find(pending_.begin(), pending_.end(), &slot) == pending_.end()) {
      cv_.wait(lock);
      continue;
    }
    // Room for another round trip: this caller sends every pending request (its own among them).
    ++sending_;
    std::vector<Slot*> batch;
    batch.swap(pending_);
    ++round_trips;
    requests += batch.size();
    lock.unlock();
    std::vector<const Request*> sent;
    sent.reserve(batch.size());
    for (Slot* s : batch) sent.push_back(s->request);
    std::vector<Response> answers;
    std::exception_ptr error;
    try {
      answers = send_(sent);
      if (answers.size() != batch.size()) throw std::logic_error("WorkerGroup: answers do not match requests");
    } catch (...) {
      error = std::current_exception();
    }
    lock.lock();
    for (std::size_t i = 0; i < batch.size(); ++i) {
      if (error) batch[i]->error = error;
      else batch[i]->response = std::move(answers[i]);
      batch[i]->done = true;
    }
    --sending_;
    cv_.notify_all();
  }
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(*slot.response);
}

WorkerGroup::WorkerGroup(Client& client, int max_in_flight)
    : client_(client),
      max_in_flight_(max_in_flight >= 1 ? max_in_flight
                                        : throw usage_error("WorkerGroup: max_in_flight must be at least 1")),
      claims_([this](const std::vector<const api::ClaimRequest*>& requests) {
        if (requests.size() == 1) {
          const auto& r = *requests.front();
          return std::vector<std::vector<Task>>{client_.run([&](Connection& c) {
            return api::claim_tasks(c, r.worker, r.max_tasks, r.task_types, r.lease);
          })};
        }
        std::vector<api::ClaimRequest> all;
        all.reserve(requests.size());
        for (const auto* r : requests) all.push_back(*r);
        return client_.run([&](Connection& c) { return api::claim_tasks_for(c, all); });
      }, max_in_flight),
      completes_([this](const std::vector<const Completes*>& requests) {
        // One call for all: the elements of each request, then split the answers back.
        std::vector<TaskCompletion> all;
        std::vector<std::string> workers;
        for (const auto* r : requests)
          for (const auto& t : *r->batch) {
            all.push_back(t);
            workers.push_back(*r->worker);
          }
        std::vector<std::vector<StageCompletion>> out;
        if (requests.size() == 1 || !per_element_workers_) {
          // One loop waiting, or a database before 1.4: complete_tasks per loop.
          for (const auto* r : requests)
            out.push_back(client_.run([&](Connection& c) {
              return api::complete_tasks(c, *r->batch, *r->worker);
            }));
          return out;
        }
        std::vector<StageCompletion> answers;
        try {
          answers = client_.run([&](Connection& c) {
            return api::complete_claimed_tasks(c, all, workers);
          });
        } catch (const sql_error& e) {
          if (e.sqlstate() != "42883") throw;
          // The library is newer than the database's extension (installed,
          // not yet updated): from now on, one complete_tasks per loop.
          per_element_workers_ = false;
          for (const auto* r : requests)
            out.push_back(client_.run([&](Connection& c) {
              return api::complete_tasks(c, *r->batch, *r->worker);
            }));
          return out;
        }
        std::size_t at = 0;
        for (const auto* r : requests) {
          out.emplace_back(answers.begin() + at, answers.begin() + at + r->batch->size());
          at += r->batch->size();
        }
        return out;
      }, max_in_flight),
      cycles_([this](const std::vector<const CycleRequest*>& requests) {
        return send_cycles(requests);
      }, max_in_flight) {}

std::vector<WorkerGroup::Cycle> WorkerGroup::send_cycles(
    const std::vector<const CycleRequest*>& requests) {
  std::vector<Cycle> out(requests.size());
  if (claims_for_workers_) {
    std::vector<TaskCompletion> done;
    std::vector<std::string> workers;
    std::vector<api::ClaimRequest> claims;
    for (const auto* r : requests) {
      for (const auto& t : *r->done.batch) {
        done.push_back(t);
        workers.push_back(*r->done.worker);
      }
      claims.push_back(*r->claim);
    }
    try {
      auto answer = client_.run([&](Connection& c) {
        return api::complete_and_claim(c, done, workers, claims);
      });
      std::size_t at = 0;
      for (std::size_t i = 0; i < requests.size(); ++i) {
        const auto n = requests[i]->done.batch->size();
        out[i].completed.assign(answer.completed.begin() + at, answer.completed.begin() + at + n);
        at += n;
        out[i].claimed = std::move(answer.claimed[i]);
      }
      return out;
    } catch (const sql_error& e) {
      if (e.sqlstate() != "42883") throw;
      // The library is newer than the database's extension (installed, not
      // yet updated): from now on, complete then claim.
      claims_for_workers_ = false;
    }
  }
  for (std::size_t i = 0; i < requests.size(); ++i) {
    const auto& r = *requests[i];
    if (!r.done.batch->empty())
      out[i].completed = client_.run([&](Connection& c) {
        return api::complete_tasks(c, *r.done.batch, *r.done.worker);
      });
  }
  std::vector<api::ClaimRequest> claims;
  for (const auto* r : requests) claims.push_back(*r->claim);
  auto claimed = client_.run([&](Connection& c) { return api::claim_tasks_for(c, claims); });
  for (std::size_t i = 0; i < requests.size(); ++i) out[i].claimed = std::move(claimed[i]);
  return out;
}

std::vector<Task> WorkerGroup::claim(const api::ClaimRequest& request) {
  std::uint64_t trips = 0, n = 0;
  auto out = claims_.submit(request, trips, n);
  std::lock_guard g(counts_mutex_);
  counts_.claim_round_trips += trips;
  counts_.claims += n;
  return out;
}

std::vector<StageCompletion> WorkerGroup::complete(const std::vector<TaskCompletion>& batch,
                                                   const std::string& worker) {
  std::uint64_t trips = 0, n = 0;
  const Completes request{&batch, &worker};
  auto out = completes_.submit(request, trips, n);
  std::lock_guard g(counts_mutex_);
  counts_.complete_round_trips += trips;
  counts_.completes += n;
  return out;
}

WorkerGroup::Cycle WorkerGroup::complete_and_claim(const std::vector<TaskCompletion>& done,
                                                   const std::string& worker,
                                                   const api::ClaimRequest& claim) {
  std::uint64_t trips = 0, n = 0;
  const CycleRequest request{{&done, &worker}, &claim};
  auto out = cycles_.submit(request, trips, n);
  std::lock_guard g(counts_mutex_);
  counts_.cycle_round_trips += trips;
  counts_.cycles += n;
  return out;
}

WorkerGroup::Counts WorkerGroup::counts() const {
  std::lock_guard g(counts_mutex_);
  return counts_;
}

}  // namespace workflow::client
