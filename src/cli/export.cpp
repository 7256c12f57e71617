// `workflow export`: a table or query out as CSV (with header) or JSON lines,
// streamed with COPY ... TO STDOUT.
#include <fmt/core.h>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "commands.hpp"

namespace workflow::cli {
namespace {

std::string quote_ident_path(client::Connection& conn, const std::string& table) {
  // regclass text is the server's own correctly quoted, schema-qualified name.
  return conn.query("SELECT $1::regclass::text", {table}).string(0, 0);
}

// The file an export is written to. A new FILE, or a regular one that can be
// replaced as it is (one link, the directory writable, its owner and group
// kept), is written as FILE.partial-PID with FILE's mode, and commit()
// renames it over FILE; any other end removes it. Anything else is written in
// place, opened only with the export's first bytes (or at commit, for none),
// so that a query that fails leaves it as it was: a symbolic link or a
// device (a rename would replace the link, or /dev/stdout, with a file), a
// FIFO, a FILE with other hard links (they would keep the old content), a
// FILE in a directory we cannot write, or one whose owner or group a new
// file could not keep. A FILE we may not write is refused, as before.
class ExportFile {
 public:
  explicit ExportFile(std::string path)
      : path_(std::move(path)), partial_(fmt::format("{}.partial-{}", path_, ::getpid())) {}
  ExportFile(const ExportFile&) = delete;
  ExportFile& operator=(const ExportFile&) = delete;
  ~ExportFile() {
    if (file_) std::fclose(file_);
    if (!committed_ && partial_open_) std::remove(partial_.c_str());
  }
  // Decides how FILE is written; opens FILE.partial-PID when it is used.
  void prepare() {
    struct stat st;
    if (::lstat(path_.c_str(), &st) != 0) {
      if (errno != ENOENT) fail("cannot open", path_);
      open_partial(nullptr);
      return;
    }
    in_place_ = true;
    if (!S_ISREG(st.st_mode)) return;
    if (::access(path_.c_str(), W_OK) != 0) fail("cannot open", path_);
    if (st.st_nlink == 1) in_place_ = !open_partial(&st);
  }
  // The stream to write to (FILE itself opened now, when written in place).
  FILE* get() {
    if (!file_) {
      file_ = std::fopen(path_.c_str(), "w");
      if (!file_) fail("cannot open", path_);
    }
    return file_;
  }
  void commit() {
    FILE* f = get();
    file_ = nullptr;
    const std::string& target = in_place_ ? path_ : partial_;
    const bool flushed = std::fflush(f) == 0 && !std::ferror(f);
    const int flush_errno = errno;
    if (std::fclose(f) != 0 || !flushed) {
      if (!flushed) errno = flush_errno;
      fail("cannot write", target);
    }
    if (!in_place_ && std::rename(partial_.c_str(), path_.c_str()) != 0)
      throw std::runtime_error(fmt::format("cannot rename {} to {}: {}", partial_, path_, std::strerror(errno)));
    committed_ = true;
  }
  bool in_place() const noexcept { return in_place_; }

 private:
  [[noreturn]] static void fail(const char* what, const std::string& file) {
    throw std::runtime_error(fmt::format("{} {}: {}", what, file, std::strerror(errno)));
  }
  // FILE.partial-PID, never through a symbolic link planted at that name,
  // with the mode, owner and group of `st` (the FILE it replaces). False when
  // FILE has to be written in place instead (see the class comment).
  bool open_partial(const struct stat* st) {
    const int fd = ::open(partial_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0666);
    if (fd < 0) {
      if (st && (errno == EACCES || errno == EPERM || errno == EROFS)) return false;
      fail("cannot open", partial_);
    }
    partial_open_ = true;
    struct stat mine;
    if (st && (::fstat(fd, &mine) != 0 ||
               ((mine.st_uid != st->st_uid || mine.st_gid != st->st_gid) &&
                ::fchown(fd, st->st_uid, st->st_gid) != 0))) {
      ::close(fd);
      std::remove(partial_.c_str());
      partial_open_ = false;
      return false;
    }
    if (st && ::fchmod(fd, st->st_mode & 07777) != 0) {
      ::close(fd);
      fail("cannot set the mode of", partial_);
    }
    file_ = ::fdopen(fd, "w");
    if (!file_) {
      ::close(fd);
      fail("cannot open", partial_);
    }
    return true;
  }

  std::string path_, partial_;
  FILE* file_ = nullptr;
  bool partial_open_ = false, committed_ = false, in_place_ = false;
};

}  // namespace

void add_export(CLI::App& app, Global& g) {
  auto* cmd = app.add_subcommand("export", "export a table or query as CSV or JSON (COPY)");
  struct Args {
    std::string table = "workflow.jobs";
    std::string query;
    std::string format = "csv";
    std::string output;
  };
  auto a = std::make_shared<Args>();
  auto* table = cmd->add_option("--table", a->table, "table to export (default workflow.jobs)");
  auto* query = cmd->add_option("--query", a->query,
                                "a SELECT to export instead of a table (run read-only: a statement "
                                "that writes fails with SQLSTATE 25006)");
  table->excludes(query);
  cmd->add_option("--format", a->format, "csv or json (one object per line)")
      ->check(CLI::IsMember({"csv", "json"}))
      ->capture_default_str();
  cmd->add_option("-o,--output", a->output, "file (default stdout)");
  cmd->callback([&g, a] {
    client::Client c(g.options());
    // -o FILE: the export is written to FILE.partial-PID beside it and renamed
    // over FILE once complete, so a failure (a query error, a lost server, a
    // full disk) leaves an existing FILE as it was and no truncated one
    // (ExportFile says when it writes in place instead).
    ExportFile file(a->output);
    if (!a->output.empty()) file.prepare();
    long written = 0;  // lines (COPY rows, the CSV header included) already written
    const auto export_once = [&](client::Connection& conn) {
      // Read-only, so --query cannot change anything (a DELETE ... RETURNING: 25006).
      client::Transaction tx(conn, "BEGIN READ ONLY");
      const std::string source =
          a->query.empty() ? "SELECT * FROM " + quote_ident_path(conn, a->table) : a->query;
      // JSON through CSV format with quote/delimiter bytes that never occur in
      // JSON text: the rows come out verbatim (text format would escape backslashes).
      const std::string copy =
          a->format == "csv"
              ? "COPY (" + source + ") TO STDOUT WITH (FORMAT csv, HEADER true)"
              : "COPY (SELECT row_to_json(t) FROM (" + source +
                    ") t) TO STDOUT WITH (FORMAT csv, QUOTE E'\\x01', DELIMITER E'\\x02')";
      const long n = conn.copy_out(copy, [&](std::string_view chunk) {
        FILE* out = a->output.empty() ? stdout : file.get();
        if (std::fwrite(chunk.data(), 1, chunk.size(), out) != chunk.size())
          throw std::runtime_error(fmt::format("cannot write {}: {}",
                                               a->output.empty() ? "stdout" : a->output,
                                               std::strerror(errno)));
        ++written;
      });
      tx.commit();
      return n;
    };
    const long rows = c.run([&](client::Connection& conn) {
      try {
        return export_once(conn);
      } catch (const client::sql_error& e) {
        // A lost connection is retried only while nothing is out: a new
        // attempt would write the rows already written a second time. After
        // that, fail (a plain sql_error is not retried: exit 2).
        if (written == 0) throw;
        throw client::sql_error(
            e.sqlstate(), fmt::format("{} (after {} lines were written; not retried, so that no line "
                                      "is written twice: {})",
                                      e.what(), written,
                                      a->output.empty() || file.in_place()
                                          ? "the output is incomplete"
                                          : a->output + " was left as it was"));
      }
    });
    if (a->output.empty()) {
      if (std::fflush(stdout) != 0) throw std::runtime_error(std::string("cannot write stdout: ") + std::strerror(errno));
    } else {
      file.commit();
    }
    fmt::print(stderr, "exported {} {}\n", a->format == "csv" ? rows - 1 : rows,
               a->format == "csv" ? "rows (+ header)" : "rows");
  });
}

}  // namespace workflow::cli
