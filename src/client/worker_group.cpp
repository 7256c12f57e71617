#include "workflow/worker_group.hpp"

namespace workflow::client {

template <class Request, class Response>
Response WorkerGroup::Combiner<Request, Response>::submit(const Request& request,
                                                         std::uint64_t& round_trips,
                                                         std::uint64_t& requests) {
  Slot slot{&request, std::nullopt, nullptr, false};
  std::unique_lock lock(mutex_);
  pending_.push_back(&slot);
  while (!slot.done) {
    if (sending_) {
      cv_.wait(lock);
      continue;
    }
    // Nobody is sending: this caller sends every pending request (its own among them).
    sending_ = true;
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
    sending_ = false;
    cv_.notify_all();
  }
  if (slot.error) std::rethrow_exception(slot.error);
  return std::move(*slot.response);
}

WorkerGroup::WorkerGroup(Client& client)
    : client_(client),
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
      }),
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
      }) {}

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

WorkerGroup::Counts WorkerGroup::counts() const {
  std::lock_guard g(counts_mutex_);
  return counts_;
}

}  // namespace workflow::client
