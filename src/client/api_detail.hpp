// Statement builders and result readers shared by api.cpp and
// api_group.cpp (internal to the client library).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "workflow/api.hpp"
#include "workflow/connection.hpp"

namespace workflow::client::api::detail {

extern const char* const kClaim;  // claim_tasks($1 worker, $2 max, $3 types, $4 lease)
Params claim_params(const std::string& worker, int max_tasks,
                    const std::vector<std::string>& task_types, std::chrono::seconds lease);
std::vector<Task> read_tasks(const Result& r);  // the columns of kClaim, in order

Statement complete_batch_statement(const char* function, const std::vector<TaskCompletion>& batch,
                                   const Param& worker, const char* worker_cast);
std::vector<StageCompletion> read_completions(const Result& r, std::size_t expected,
                                              const char* function);

}  // namespace workflow::client::api::detail
