// examples/survey-bot: the bot's backend calls on the client library
// (connection from DATABASE_URL / PG*; the role needs survey_bot_app).
//   survey_bot_demo CHANNEL TIME_ZONE
// A pool of 3 connections with retries (Client); a health check (server,
// extension version, workflow.validate()); adds the channel; three chat
// users answer at the same moment from three threads (each answer one
// retried transaction); prints the channel's line of this week's report
// and the pool's metrics.
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "workflow/workflow.hpp"

namespace wc = workflow::client;

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: survey_bot_demo CHANNEL TIME_ZONE\n";
    return 2;
  }
  const std::string channel = argv[1], zone = argv[2];
  try {
    wc::ClientOptions options;
    options.pool.max_size = 3;
    options.retry.max_attempts = 5;
    wc::Client client(options);

    const auto version = client.extension_version();
    if (!version) throw std::runtime_error("the workflow extension is not installed");
    bool healthy = true;
    client.run([&](wc::Connection& c) {
      for (const auto& check : wc::api::validate(c)) healthy &= check.ok;
    });
    std::cout << "health: workflow " << *version << ", validate " << (healthy ? "ok" : "FAILED") << "\n";

    const std::string id = client.transaction([&](wc::Connection& c) {
      return c.query("SELECT survey_bot.add_channel($1, 'Demo team', $2, 'U0DEMO')", {channel, zone})
          .string(0, 0);
    });
    // One moment for every answer and the report, so that all are in one week.
    const std::string now = client.run([](wc::Connection& c) { return c.query("SELECT now()").string(0, 0); });

    const std::vector<std::pair<std::string, std::string>> answers = {
        {"workload_today", R"({"hours": 6})"}, {"Workload Next Week", R"({"hours": 35})"}, {"connects", "4"}};
    std::vector<std::thread> threads;
    std::vector<std::string> errors(answers.size());
    for (std::size_t i = 0; i < answers.size(); ++i) {
      threads.emplace_back([&, i] {
        try {
          client.transaction([&](wc::Connection& c) {
            c.query("SELECT * FROM survey_bot.record_step($1, $2, $3, $4, $5)",
                    {id, answers[i].first, answers[i].second, "U0DEMO" + std::to_string(i + 1), now});
          });
        } catch (const std::exception& e) {
          errors[i] = e.what();
        }
      });
    }
    for (auto& t : threads) t.join();
    for (const auto& e : errors)
      if (!e.empty()) throw std::runtime_error("an answer failed: " + e);

    client.run([&](wc::Connection& c) {
      auto r = c.query(
          "SELECT time_zone, answered, array_to_string(missing, ',') FROM survey_bot.weekly_report("
          "workflow.survey_week_start($2, (SELECT time_zone FROM workflow.survey_sessions WHERE session_id = $1)))"
          " WHERE channel_id = $1",
          {id, now});
      if (r.rows() != 1) throw std::runtime_error("channel missing from the report");
      std::cout << id << " (" << r.string(0, 0) << "): " << r.string(0, 1) << " answered, missing "
                << r.string(0, 2) << "\n";
    });
    const auto m = client.pool().metrics();
    std::cout << "pool: created " << m.created << ", idle " << m.idle << ", waits " << m.waits
              << ", errors " << m.errors << "\n";
  } catch (const wc::sql_error& e) {
    std::cerr << "error " << e.sqlstate() << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
