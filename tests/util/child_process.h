// Helpers for runtime tests. RunInChild runs a test body in a forked child and collects its exit
// status and everything it wrote to stdout and stderr. For behaviour that ends the process (fatal
// errors, deadlock reports, stack overflows, panics) or that needs process-wide state (signals,
// environment) without touching the test binary itself. The parent must not have a runtime running
// when it forks.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "greenline/runtime.h"

namespace greenline::testing {

struct ChildResult {
  bool exited = false;  // exited normally (then exit_code is valid)
  int exit_code = -1;
  int signal = 0;  // the signal that killed it, if it did not exit
  bool timed_out = false;
  std::string output;  // stdout and stderr, interleaved as written
};

// Forks, runs `body` in the child, then exits it with status 0 if `body` returns. The child is
// killed (SIGKILL) after `timeout_seconds`.
ChildResult RunInChild(const std::function<void()>& body, int timeout_seconds = 60);

// RunInChild of a whole runtime: greenline::Run(main_goroutine, options) in a forked child.
ChildResult RunRuntimeInChild(const std::function<void()>& main_goroutine,
                              const Options& options = {}, int timeout_seconds = 60);

// Success if `r` ended as a fatal error ends a Go program: it exited with status 2 and its output
// holds "fatal error: <message>". On failure, says what it saw, output included. Use as
// EXPECT_TRUE(IsFatalError(RunInChild(...), "sync: unlock of unlocked mutex")).
::testing::AssertionResult IsFatalError(const ChildResult& r, std::string_view message);

// Options for a runtime with `n` workers.
inline Options Procs(int n) {
  Options o;
  o.max_procs = n;
  return o;
}

// Starts the program argv[0] (a path) with arguments argv in a forked child, its stdout and stderr
// on `stdout_fd` and `stderr_fd` (may be the same), stdin on /dev/null and no signal blocked (the
// test binary may have blocked some in this thread). Returns the child's pid, or -1 if fork failed;
// the caller waits for it. A child that cannot exec exits with status 127.
pid_t SpawnProgram(std::vector<std::string> argv, int stdout_fd, int stderr_fd);

// Prints a line on stdout at once, printf-style (unbuffered: a child killed by a signal or on
// timeout keeps what it said). Any thread; truncated past 510 bytes.
__attribute__((format(printf, 1, 2))) void Say(const char* format, ...);

// True when tests run under qemu-user (the aarch64 CI stage sets GREENLINE_UNDER_QEMU).
bool UnderQemu();

}  // namespace greenline::testing
