#include "tests/util/child_process.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace greenline::testing {

ChildResult RunInChild(const std::function<void()>& body, int timeout_seconds) {
  ChildResult result;
  int fds[2];
  if (pipe(fds) != 0) return result;
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    dup2(fds[1], STDOUT_FILENO);
    dup2(fds[1], STDERR_FILENO);
    close(fds[1]);
    body();
    fflush(stdout);
    fflush(stderr);
    _exit(0);
  }
  close(fds[1]);
  timespec start;
  clock_gettime(CLOCK_MONOTONIC, &start);
  char buf[4096];
  for (;;) {
    timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    long elapsed_ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
    long left_ms = timeout_seconds * 1000L - elapsed_ms;
    if (left_ms <= 0) {
      result.timed_out = true;
      kill(pid, SIGKILL);
      break;
    }
    pollfd pfd{fds[0], POLLIN, 0};
    int ready = poll(&pfd, 1, static_cast<int>(left_ms));
    if (ready <= 0) continue;
    ssize_t n = read(fds[0], buf, sizeof buf);
    if (n <= 0) break;
    result.output.append(buf, static_cast<size_t>(n));
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) {
    result.exited = true;
    result.exit_code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    result.signal = WTERMSIG(status);
  }
  return result;
}

pid_t SpawnProgram(std::vector<std::string> argv, int stdout_fd, int stderr_fd) {
  pid_t pid = fork();
  if (pid != 0) return pid;
  dup2(stdout_fd, STDOUT_FILENO);
  dup2(stderr_fd, STDERR_FILENO);
  int devnull = open("/dev/null", O_RDONLY);
  dup2(devnull, STDIN_FILENO);
  sigset_t none;
  sigemptyset(&none);
  sigprocmask(SIG_SETMASK, &none, nullptr);
  std::vector<char*> cargv;
  for (std::string& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  execv(cargv[0], cargv.data());
  _exit(127);
}

ChildResult RunRuntimeInChild(const std::function<void()>& main_goroutine, const Options& options,
                              int timeout_seconds) {
  return RunInChild([&] { greenline::Run(main_goroutine, options); }, timeout_seconds);
}

::testing::AssertionResult IsFatalError(const ChildResult& r, std::string_view message) {
  std::string expected = "fatal error: " + std::string(message);
  if (!r.exited) {
    return ::testing::AssertionFailure() << "the child did not exit (signal " << r.signal
                                         << (r.timed_out ? ", timed out" : "") << ")\n"
                                         << r.output;
  }
  if (r.exit_code != 2) {
    return ::testing::AssertionFailure() << "exit status " << r.exit_code << ", not 2\n"
                                         << r.output;
  }
  if (r.output.find(expected) == std::string::npos) {
    return ::testing::AssertionFailure() << "no \"" << expected << "\" in:\n" << r.output;
  }
  return ::testing::AssertionSuccess();
}

void Say(const char* format, ...) {
  char line[512];
  va_list args;
  va_start(args, format);
  int n = std::vsnprintf(line, sizeof line - 1, format, args);
  va_end(args);
  if (n < 0) return;
  size_t len = std::min<size_t>(static_cast<size_t>(n), sizeof line - 2);
  line[len] = '\n';
  if (write(STDOUT_FILENO, line, len + 1) < 0) return;
}

bool UnderQemu() { return std::getenv("GREENLINE_UNDER_QEMU") != nullptr; }

}  // namespace greenline::testing
