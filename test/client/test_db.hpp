// Test support: every client test binary creates its own database in the
// server named by DATABASE_URL (created here, the extension installed, dropped
// at exit), so it never disturbs other suites running in the same cluster.
// Without DATABASE_URL the tests FAIL: they never skip.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "workflow/workflow.hpp"

namespace wftest {

using namespace workflow::client;

inline std::string& database_name() {
  static std::string name;
  return name;
}

inline Settings admin_settings() {
  const char* url = std::getenv("DATABASE_URL");
  if (!url || !*url) throw std::runtime_error("DATABASE_URL is not set: client tests need a server");
  return Settings::from_conninfo(url);
}

// Settings for this binary's own database.
inline Settings settings() {
  Settings s = admin_settings();
  s.database = database_name();
  s.application_name = "workflow-client-test";
  return s;
}

inline ClientOptions client_options(std::size_t pool_size = 4) {
  ClientOptions o;
  o.pool.settings = settings();
  o.pool.max_size = pool_size;
  return o;
}

class DatabaseEnvironment : public ::testing::Environment {
 public:
  explicit DatabaseEnvironment(std::string prefix) : prefix_(std::move(prefix)) {}
  void SetUp() override {
    ASSERT_NE(std::getenv("DATABASE_URL"), nullptr) << "DATABASE_URL is not set";
    database_name() = prefix_ + "_" + std::to_string(getpid());
    Connection admin(admin_settings());
    admin.exec("DROP DATABASE IF EXISTS " + database_name());
    admin.exec("CREATE DATABASE " + database_name());
    Connection db(settings());
    db.exec("CREATE EXTENSION workflow");
  }
  void TearDown() override {
    if (database_name().empty()) return;
    try {
      Connection admin(admin_settings());
      admin.exec("DROP DATABASE IF EXISTS " + database_name() + " WITH (FORCE)");
    } catch (const std::exception& e) {
      ADD_FAILURE() << "could not drop " << database_name() << ": " << e.what();
    }
  }

 private:
  std::string prefix_;
};

// Runs fn and returns the SQLSTATE of the sql_error it throws ("" if none).
template <class F>
std::string sqlstate_of(F&& fn) {
  try {
    fn();
  } catch (const sql_error& e) {
    return e.sqlstate();
  }
  return "";
}

}  // namespace wftest

// Put in each test file: registers the database environment for that binary.
#define WFTEST_DATABASE(prefix)                                                       \
  static ::testing::Environment* const wftest_env_ =                                  \
      ::testing::AddGlobalTestEnvironment(new wftest::DatabaseEnvironment(prefix))
