// posix_spawn + poll: the child gets its own process group (so a timeout
// kills the shell and whatever it started), pipes are close-on-exec in this
// multi-threaded process (no other thread's child inherits them), and stdin
// is written while stdout and stderr are read (no pipe-buffer deadlock).
#include "subprocess.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

extern char** environ;

namespace workflow::cli {
namespace {

using Clock = std::chrono::steady_clock;

[[noreturn]] void fail(const char* what, int err) {
  throw std::system_error(err, std::generic_category(), what);
}

// Owns a file descriptor; -1 when closed.
struct Fd {
  int fd = -1;
  Fd() = default;
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() { close(); }
  void close() {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
};

void make_pipe(Fd& read_end, Fd& write_end) {
  int p[2];
  if (pipe2(p, O_CLOEXEC) != 0) fail("pipe2", errno);
  read_end.fd = p[0];
  write_end.fd = p[1];
}

void set_nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// Appends what `fd` has to `buf`, keeping at most `max` bytes (the first ones
// for stdout, the last ones for stderr). Returns false at end of file.
bool drain(int fd, std::string& buf, std::size_t max, bool keep_tail, bool& truncated) {
  char chunk[65536];
  for (;;) {
    const ssize_t n = ::read(fd, chunk, sizeof chunk);
    if (n == 0) return false;
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK;
    }
    buf.append(chunk, static_cast<std::size_t>(n));
    if (buf.size() > max) {
      truncated = true;
      if (keep_tail) buf.erase(0, buf.size() - max);
      else buf.resize(max);
    }
  }
}

std::vector<std::string> environment_with(
    const std::vector<std::pair<std::string, std::string>>& extra) {
  std::vector<std::string> env;
  for (char** e = environ; e && *e; ++e) {
    const std::string entry(*e);
    bool overridden = false;
    for (const auto& [k, v] : extra) overridden |= entry.rfind(k + "=", 0) == 0;
    if (!overridden) env.push_back(entry);
  }
  for (const auto& [k, v] : extra) env.push_back(k + "=" + v);
  return env;
}

}  // namespace

ProcessResult run_process(const std::string& command, const std::string& input,
                          const std::vector<std::pair<std::string, std::string>>& env,
                          std::chrono::milliseconds timeout, std::size_t max_output) {
  Fd in_r, in_w, out_r, out_w, err_r, err_w;
  make_pipe(in_r, in_w);
  make_pipe(out_r, out_w);
  make_pipe(err_r, err_w);

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in_r.fd, 0);
  posix_spawn_file_actions_adddup2(&actions, out_w.fd, 1);
  posix_spawn_file_actions_adddup2(&actions, err_w.fd, 2);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t defaults, none;  // the child starts with default dispositions and no mask
  sigemptyset(&defaults);
  for (int s : {SIGPIPE, SIGINT, SIGTERM, SIGQUIT, SIGHUP}) sigaddset(&defaults, s);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF |
                                      POSIX_SPAWN_SETSIGMASK);

  const auto env_strings = environment_with(env);
  std::vector<char*> envp;
  for (const auto& s : env_strings) envp.push_back(const_cast<char*>(s.c_str()));
  envp.push_back(nullptr);
  const char* argv[] = {"/bin/sh", "-c", command.c_str(), nullptr};

  pid_t pid = 0;
  const int rc = posix_spawn(&pid, "/bin/sh", &actions, &attr, const_cast<char**>(argv),
                             envp.data());
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) fail("posix_spawn /bin/sh", rc);
  in_r.close();
  out_w.close();
  err_w.close();
  set_nonblocking(in_w.fd);
  set_nonblocking(out_r.fd);
  set_nonblocking(err_r.fd);

  ProcessResult r;
  bool err_truncated = false;
  std::size_t written = 0;
  if (input.empty()) in_w.close();
  const auto deadline = Clock::now() + timeout;
  int status = 0;
  bool exited = false;
  while (!exited) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      kill(-pid, SIGKILL);  // the group: the shell and what it started
      r.timed_out = true;
      break;
    }
    if (in_w.fd < 0 && out_r.fd < 0 && err_r.fd < 0) {
      // Output closed: wait for the exit, polling so the deadline still holds.
      const pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) { exited = true; break; }
      poll(nullptr, 0, static_cast<int>(std::min<long>(left.count(), 10)));
      continue;
    }
    pollfd fds[3];
    nfds_t n = 0;
    if (in_w.fd >= 0) fds[n++] = {in_w.fd, POLLOUT, 0};
    if (out_r.fd >= 0) fds[n++] = {out_r.fd, POLLIN, 0};
    if (err_r.fd >= 0) fds[n++] = {err_r.fd, POLLIN, 0};
    const int ready = poll(fds, n, static_cast<int>(std::min<long>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) fail("poll", errno);
    for (nfds_t i = 0; i < n && ready > 0; ++i) {
      if (!fds[i].revents) continue;
      if (fds[i].fd == in_w.fd) {
        const ssize_t k = ::write(in_w.fd, input.data() + written, input.size() - written);
        if (k > 0) written += static_cast<std::size_t>(k);
        // Done, or the child closed its stdin (EPIPE: it does not want the rest).
        if (written == input.size() || (k < 0 && errno != EAGAIN && errno != EINTR)) in_w.close();
      } else if (fds[i].fd == out_r.fd) {
        if (!drain(out_r.fd, r.out, max_output, false, r.out_truncated)) out_r.close();
      } else if (fds[i].fd == err_r.fd) {
        if (!drain(err_r.fd, r.err, max_output, true, err_truncated)) err_r.close();
      }
    }
  }
  if (!exited) waitpid(pid, &status, 0);  // after SIGKILL: reaped at once
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace workflow::cli
