// The calls of several worker loops of one process in one round trip
// (WorkerGroup): a claim for many worker names, and completions plus the
// next claims in one pipelined transaction.
#include <map>
#include <tuple>

#include "api_detail.hpp"
#include "workflow/api.hpp"
#include "workflow/error.hpp"

namespace workflow::client::api {
namespace {

const char* const kClaimForWorkers =
    "SELECT id, job_id, task_type, stage, task_index, parameters, retry_count, claimed_by "
    "FROM workflow.claim_tasks_for_workers($1::text[], $2::text[], $3::interval)";

Params claim_for_workers_params(const std::vector<std::string>& workers,
                                const std::vector<std::string>& task_types,
                                std::chrono::seconds lease) {
  return {text_array(workers), task_types.empty() ? Param() : Param(text_array(task_types)),
          std::to_string(lease.count()) + " seconds"};
}

}  // namespace

std::vector<Task> claim_tasks_for_workers(Connection& c, const std::vector<std::string>& workers,
                                          const std::vector<std::string>& task_types,
                                          std::chrono::seconds lease) {
  return detail::read_tasks(
      c.query(kClaimForWorkers, claim_for_workers_params(workers, task_types, lease)));
}

CompletedAndClaimed complete_and_claim(Connection& c, const std::vector<TaskCompletion>& done,
                                       const std::vector<std::string>& done_workers,
                                       const std::vector<ClaimRequest>& claims) {
  if (done_workers.size() != done.size())
    throw usage_error("complete_and_claim: one worker name per completed task");
  std::vector<Statement> statements;
  if (!done.empty())
    statements.push_back(detail::complete_batch_statement(
        "complete_claimed_tasks", done, Param(text_array(done_workers)), "::text[]"));

  // Requests for one task with the same types and lease: one statement for all.
  using Key = std::tuple<std::vector<std::string>, std::int64_t>;
  std::map<Key, std::vector<std::size_t>> shared;
  std::vector<std::size_t> alone;
  for (std::size_t i = 0; i < claims.size(); ++i) {
    if (claims[i].max_tasks == 1)
      shared[{claims[i].task_types, claims[i].lease.count()}].push_back(i);
    else
      alone.push_back(i);
  }
  std::vector<std::vector<std::size_t>> answers_to;  // per claim statement: its requests
  for (const auto& [key, requests] : shared) {
    std::vector<std::string> workers;
    for (auto i : requests) workers.push_back(claims[i].worker);
    statements.push_back({kClaimForWorkers, claim_for_workers_params(
                                                workers, std::get<0>(key),
                                                std::chrono::seconds(std::get<1>(key)))});
    answers_to.push_back(requests);
  }
  for (auto i : alone) {
    const auto& r = claims[i];
    statements.push_back(
        {detail::kClaim, detail::claim_params(r.worker, r.max_tasks, r.task_types, r.lease)});
    answers_to.push_back({i});
  }

  const auto results = c.pipeline(statements, /*separate_transactions=*/false);
  CompletedAndClaimed out;
  std::size_t at = 0;
  if (!done.empty())
    out.completed = detail::read_completions(results[at++], done.size(), "complete_claimed_tasks");
  out.claimed.resize(claims.size());
  for (const auto& requests : answers_to) {
    auto tasks = detail::read_tasks(results[at++]);
    if (requests.size() == 1) {
      out.claimed[requests.front()] = std::move(tasks);
      continue;
    }
    for (auto& t : tasks) {  // each task to a request of the name it was claimed for
      std::size_t owner = claims.size();
      for (auto i : requests)
        if (claims[i].worker == t.claimed_by && out.claimed[i].empty()) {
          owner = i;
          break;
        }
      if (owner == claims.size())
        throw sql_error("XX000", "claim_tasks_for_workers returned a task for unknown worker " +
                                     t.claimed_by);
      out.claimed[owner].push_back(std::move(t));
    }
  }
  return out;
}

}  // namespace workflow::client::api
