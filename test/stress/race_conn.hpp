// One libpq connection for the race tests (engine_race_test, engine_fencing_race_test):
// text parameters, errors thrown (exec) or returned with their SQLSTATE (try_exec), and the
// per-suite throw-away database they run in. DATABASE_URL names the test cluster.
#pragma once

#include <libpq-fe.h>

#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace race {

using Result = std::unique_ptr<PGresult, decltype(&PQclear)>;

struct Answer {
  bool ok;
  std::string sqlstate;  // when !ok
  Result result;
};

class Conn {
 public:
  // dbname nullptr: the database DATABASE_URL names.
  explicit Conn(const char* dbname) : conn_(nullptr, &PQfinish) {
    const char* url = std::getenv("DATABASE_URL");
    if (url == nullptr) throw std::runtime_error("DATABASE_URL is not set");
    const char* keys[] = {"dbname", dbname ? "dbname" : nullptr, nullptr};
    const char* values[] = {url, dbname, nullptr};
    conn_.reset(PQconnectdbParams(keys, values, 1));
    if (PQstatus(conn_.get()) != CONNECTION_OK)
      throw std::runtime_error(std::string("cannot connect: ") + PQerrorMessage(conn_.get()));
  }

  // Runs sql; an error is returned (with its SQLSTATE), not thrown.
  Answer try_exec(const std::string& sql, const std::vector<std::string>& params = {}) {
    std::vector<const char*> p;
    for (const auto& s : params) p.push_back(s.c_str());
    Result r(PQexecParams(conn_.get(), sql.c_str(), static_cast<int>(p.size()), nullptr, p.data(),
                          nullptr, nullptr, 0),
             &PQclear);
    auto st = PQresultStatus(r.get());
    if (st == PGRES_TUPLES_OK || st == PGRES_COMMAND_OK) return {true, "", std::move(r)};
    const char* code = PQresultErrorField(r.get(), PG_DIAG_SQLSTATE);
    return {false, code ? code : "?????", std::move(r)};
  }

  // Runs sql with text parameters; throws on error.
  Result exec(const std::string& sql, const std::vector<std::string>& params = {}) {
    Answer a = try_exec(sql, params);
    if (!a.ok) throw std::runtime_error(sql + ": " + PQresultErrorMessage(a.result.get()));
    return std::move(a.result);
  }

  std::string scalar(const std::string& sql, const std::vector<std::string>& params = {}) {
    Result r = exec(sql, params);
    if (PQntuples(r.get()) != 1) throw std::runtime_error(sql + ": expected one row");
    return PQgetvalue(r.get(), 0, 0);
  }

  PGconn* raw() { return conn_.get(); }

 private:
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn_;
};

// A fresh database with the extension, for one test suite.
inline void create_test_database(const char* name) {
  Conn admin(nullptr);
  admin.exec(std::string("DROP DATABASE IF EXISTS ") + name + " WITH (FORCE)");
  admin.exec(std::string("CREATE DATABASE ") + name);
  Conn(name).exec("CREATE EXTENSION workflow");
}

inline void drop_test_database(const char* name) noexcept {
  try {
    Conn(nullptr).exec(std::string("DROP DATABASE IF EXISTS ") + name + " WITH (FORCE)");
  } catch (...) {
  }
}

}  // namespace race
