// The dashboard's reads: one statement, its rows as a JSON array (the
// server folds them with json_agg), on the serve process's client pool.
#pragma once

#include <nlohmann/json.hpp>

#include <string>

#include "workflow/client.hpp"

namespace workflow::serve {

class Db {
 public:
  explicit Db(client::ClientOptions options) : client_(std::move(options)) {}
  // The rows of `select` (a SELECT with $1.. placeholders) as a JSON array of objects.
  nlohmann::json rows(const std::string& select, const client::Params& params = {});
  // The first column of the first row of `sql` as JSON (a json-valued statement).
  nlohmann::json value(const std::string& sql, const client::Params& params = {});
  // Whether a relation (view) exists and this role may read it: the panels of
  // workflow.dead_tasks appear once the extension has it.
  bool readable(const std::string& relation);
  client::Client& client() { return client_; }

 private:
  client::Client client_;
};

}  // namespace workflow::serve
