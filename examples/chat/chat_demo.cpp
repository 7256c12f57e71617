// examples/chat: a conversation on the client library (connection from
// DATABASE_URL / PG*; the role needs chat_app_client).
//   chat_demo USER_ID MESSAGES [PAUSE_DIR]
// Opens a session, sends MESSAGES messages (one transaction each, retried
// by Client::transaction when the connection is lost; a client_key per
// message makes a repeated send store nothing), attaches a document, then
// reads the conversation back and checks it is complete and in order.
// With PAUSE_DIR, the send of message MESSAGES/2 stops before its COMMIT,
// creates PAUSE_DIR/paused and waits for PAUSE_DIR/go (the test restarts the
// server meanwhile). Every transaction starts with chat_app.set_user.
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <thread>

#include "workflow/workflow.hpp"

namespace wc = workflow::client;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  if (argc != 3 && argc != 4) {
    std::cerr << "usage: chat_demo USER_ID MESSAGES [PAUSE_DIR]\n";
    return 2;
  }
  const std::string user = argv[1];
  const int total = std::stoi(argv[2]);
  const std::string pause_dir = argc == 4 ? argv[3] : "";
  try {
    wc::Client client;
    int attempts = 0;
    const auto session = client.transaction([&](wc::Connection& c) {
      c.query("SELECT chat_app.set_user($1)", {user});
      return c.query("SELECT chat_app.create_session($1)", {"demo conversation"}).string(0, 0);
    });
    bool paused = false;
    for (int i = 1; i <= total; ++i) {
      const std::string text = "message " + std::to_string(i);
      const std::string key = "demo-" + session + "-" + std::to_string(i);
      client.transaction([&](wc::Connection& c) {
        ++attempts;
        c.query("SELECT chat_app.set_user($1)", {user});
        c.query("SELECT chat_app.add_message($1, $2, $3, $4)",
                {session, i % 2 ? "user" : "assistant", text, key});
        if (!pause_dir.empty() && !paused && i == total / 2) {
          paused = true;
          std::ofstream(fs::path(pause_dir) / "paused") << i << "\n";
          while (!fs::exists(fs::path(pause_dir) / "go"))
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
      });
    }
    client.transaction([&](wc::Connection& c) {
      c.query("SELECT chat_app.set_user($1)", {user});
      c.query("SELECT chat_app.add_document($1, $2, $3, $4, $5, $6)",
              {"notes.txt", "text/plain", "12",
               "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
               "s3://chat/notes.txt", session});
    });
    // Read it back, page by page, in a read-only transaction.
    int read = 0;
    bool in_order = true;
    std::string documents;
    client.transaction([&](wc::Connection& c) {
      read = 0;
      in_order = true;
      c.query("SELECT chat_app.set_user($1)", {user});
      std::string after = "0";
      for (;;) {
        auto page = c.query("SELECT id, content FROM chat_app.list_messages($1, $2, 50)",
                            {session, after});
        if (page.rows() == 0) break;
        for (int r = 0; r < page.rows(); ++r)
          in_order &= page.string(r, 1) == "message " + std::to_string(++read);
        after = page.string(page.rows() - 1, 0);
      }
      documents = c.query("SELECT string_agg(filename, ',') FROM chat_app.list_documents($1)",
                          {session}).string(0, 0);
    }, "BEGIN READ ONLY");
    std::cout << "session " << session << ": " << read << " messages"
              << (in_order ? " in order" : " OUT OF ORDER") << ", documents: " << documents << "\n";
    std::cout << "retried transactions: " << attempts - total << "\n";
    return read == total && in_order ? 0 : 1;
  } catch (const wc::sql_error& e) {
    std::cerr << "error " << e.sqlstate() << ": " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
}
