// import-sqlite: the pgloader run (pgloader.hpp).
#include "pgloader.hpp"

#include <libpq-fe.h>
#include <sys/wait.h>
#include <unistd.h>
#include <fcntl.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <stdexcept>

#include "workflow/error.hpp"

namespace workflow::import {
namespace {

// pgloader's connection strings take no quoting: refuse what would need it.
std::string checked(const std::string& what, const std::string& value, const std::string& allowed) {
  for (unsigned char ch : value)
    if (!std::isalnum(ch) && allowed.find(static_cast<char>(ch)) == std::string::npos)
      throw client::sql_error("22023", "import-sqlite: the " + what + " \"" + value +
                                           "\" has a character pgloader's connection string "
                                           "cannot carry (allowed: letters, digits, " +
                                           allowed + ")");
  return value;
}

std::string target_url(client::Connection& conn) {
  PGconn* pg = conn.raw();
  const std::string host = PQhost(pg);
  const std::string where =
      host.empty() || host[0] == '/'
          ? "unix:" + checked("socket directory", host.empty() ? "/var/run/postgresql" : host,
                              "_.-/")
          : checked("host", host, "_.-:");
  return "pgsql://" + checked("user", PQuser(pg), "_.-") + "@" + where + ":" +
         checked("port", PQport(pg), "") + "/" + checked("database", PQdb(pg), "_.-");
}

}  // namespace

PgloaderRun run_pgloader(const std::string& sqlite_path, client::Connection& conn,
                         const std::string& schema, const std::string& log_path) {
  const std::string source = checked("SQLite path", sqlite_path, "_.-/+@%~");
  const std::string command_path = log_path + ".load";
  {
    std::ofstream cmd(command_path);
    cmd << "LOAD DATABASE\n  FROM sqlite://" << source << "\n  INTO " << target_url(conn)
        << "\nWITH include drop, create tables, create indexes, reset sequences, foreign keys\n"
        << "SET search_path TO '" << checked("schema", schema, "_") << "'\n"
        << "CAST type real to float8 drop typemod using float-to-string,\n"
        << "     type float to float8 drop typemod using float-to-string,\n"
        << "     type double to float8 drop typemod using float-to-string,\n"
        << "     type integer to bigint drop typemod\n"
        << "       using (lambda (x) (if x (format nil \"~D\" x) nil));\n";
    if (!cmd) throw std::runtime_error("cannot write " + command_path);
  }
  const char* password = PQpass(conn.raw());
  const pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    const int fd = open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd >= 0) { dup2(fd, 1); dup2(fd, 2); close(fd); }
    if (password && *password) setenv("PGPASSWORD", password, 1);
    execlp("pgloader", "pgloader", command_path.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {}
  PgloaderRun run;
  run.log_path = log_path;
  run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::ifstream log(log_path);
  bool in_error = false;
  for (std::string line; std::getline(log, line);) {
    if (line.find(" ERROR ") != std::string::npos) {
      ++run.error_lines;
      in_error = true;
    } else if (in_error && line.rfind("QUERY: ", 0) == 0 &&
               line.find("ADD FOREIGN KEY() REFERENCES") != std::string::npos) {
      --run.error_lines;
      ++run.empty_foreign_keys;
    } else if (line.find(" LOG ") != std::string::npos || line.find(" WARNING ") != std::string::npos) {
      in_error = false;
    }
  }
  return run;
}

}  // namespace workflow::import
