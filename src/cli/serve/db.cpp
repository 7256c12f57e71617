// The dashboard's reads (see db.hpp).
#include "db.hpp"

namespace workflow::serve {

nlohmann::json Db::rows(const std::string& select, const client::Params& params) {
  return value("SELECT coalesce(json_agg(q), '[]'::json) FROM (" + select + ") q", params);
}

nlohmann::json Db::value(const std::string& sql, const client::Params& params) {
  const std::string text = client_.run([&](client::Connection& conn) {
    return conn.query(sql, params).string(0, 0);
  });
  return nlohmann::json::parse(text);
}

bool Db::readable(const std::string& relation) {
  return value("SELECT to_json(to_regclass($1) IS NOT NULL AND "
               "has_table_privilege(to_regclass($1), 'SELECT'))",
               {relation})
      .get<bool>();
}

}  // namespace workflow::serve
