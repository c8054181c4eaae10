// Starting and stopping the runtime: Go's `main` for C++.
//
//   int main(int argc, char** argv) {
//     return greenline::Main([&] { ... the main goroutine ... });
//   }
//
// The runtime starts N workers (Go's Ps, one OS thread each; see sched/maxprocs.h for N), runs the
// callable as the main goroutine, and ends when it returns, as Go's `main` does: goroutines still
// alive are abandoned, not waited for. Run() is the restartable form that tests use; Main() is
// Run() followed by exit.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>

namespace greenline {

// The netpoller's backend (runtime/netpoll/netpoll.h).
enum class PollerKind : uint8_t {
  kAuto,     // the GREENLINE_POLLER environment variable if set, else io_uring when the kernel
             // lets us set up a ring (not ENOSYS, EPERM, EINVAL: seccomp, io_uring_disabled, old
             // kernels), else epoll
  kIoUring,  // io_uring or nothing: Run() fails with a fatal error naming why
  kEpoll,
};

struct Options {
  // Workers. 0: the GOMAXPROCS environment variable, else the affinity mask lowered to the cgroup
  // CPU quota (sched/maxprocs.h).
  int max_procs = 0;
  // Usable bytes per goroutine stack (rounded up to pages; a guard page comes on top). 0: the
  // GREENLINE_STACK_SIZE environment variable, else kDefaultStackSize (fiber/stack.h).
  size_t stack_size = 0;
  // Log the worker count, stack size and guard mode at start-up (info level).
  bool log_startup = false;
  // Install the SIGQUIT goroutine dump (Go's behaviour, except that the process keeps running).
  bool sigquit_dump = true;
  // Which netpoller backend the workers wait in.
  PollerKind poller = PollerKind::kAuto;
  // A goroutine executing longer than this without yielding is reported once by the monitor (at
  // most one report a second, for all goroutines together).
  int64_t long_run_warning_ns = 10'000'000;
};

// Runs `main_goroutine` as goroutine 1 on a fresh runtime and returns when it has returned and the
// workers have stopped. Goroutines still alive then are discarded without running to completion
// (their stacks are reused; objects on them are not destroyed), as a Go program's exit discards
// them. A Blocking() call still running on a pool thread is not waited for: it finishes on its own
// and readies nothing (its goroutine's stack then stays mapped). Blocks the calling thread, which
// does not become a worker. Not reentrant: one runtime per process at a time. A deadlock, an
// unrecovered panic or a stack overflow ends the process with exit status 2 as Go does.
void Run(std::function<void()> main_goroutine, const Options& options = {});

// Run() followed by std::exit(0): for a program's main().
[[noreturn]] void Main(std::function<void()> main_goroutine, const Options& options = {});

// True between the start of Run() and the moment its workers have stopped.
bool RuntimeRunning();

// The number of workers of the running runtime (Go's runtime.GOMAXPROCS(0)); 0 when none runs.
int MaxProcs();

// Goroutine switches since the runtime started (sum over workers; cheap, approximate while
// running). For metrics and the demo.
uint64_t TotalSwitches();

}  // namespace greenline
