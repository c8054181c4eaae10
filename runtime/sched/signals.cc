// The runtime's signals.
//
//   SIGSEGV, SIGBUS  on each worker's alternate signal stack: a fault in the guard page of the
//                    executing goroutine's stack is a stack overflow, reported as
//                    "goroutine N: stack overflow" with its backtrace, exit status 2 (Go's fatal
//                    status). Any other fault goes to the handler that was installed before ours
//                    (ASan's, or the default action: a core dump), untouched.
//   SIGQUIT          the handler only writes a byte to a pipe; a plain thread reads it and prints
//                    the goroutine dump (dump.h), so nothing unsafe runs in signal context. The
//                    process keeps running (Go exits; see dump.h for why we do not).
//   SIGURG           "capture your stack": a worker thread that receives it walks the frame
//                    pointers of whatever it executes into its Worker record, for dumps and the
//                    monitor (Go uses SIGURG for preemption for the same reason: nobody else does).
// Handlers for SIGSEGV/SIGBUS/SIGURG stay installed for the life of the process; SIGQUIT's previous
// disposition comes back when the runtime stops. Every other signal is the program's, relayed to
// channels when it asks (greenline/signal.h, runtime/signal/signal.cc, which refuses these four).
// No mask is changed here: the runtime's threads inherit the mask of the thread that called Run().
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <mutex>
#include <thread>

#include "greenline/dump.h"
#include "greenline/log.h"
#include "runtime/base/backtrace.h"
#include "runtime/base/fatal.h"
#include "runtime/base/os_mutex.h"
#include "runtime/sched/internal/sched.h"

namespace greenline {
namespace internal {
namespace {

constexpr size_t kAltStackSize = 256 * 1024;

struct sigaction g_old_segv, g_old_bus, g_old_quit;
std::once_flag g_install_once;
int g_quit_pipe[2] = {-1, -1};
std::atomic<int> g_dump_count{0};
std::thread g_signal_thread;
OsMutex g_capture_mu;  // one capture at a time

void ContextRegisters(void* uctx, uintptr_t* fp, uintptr_t* pc) {
  auto* uc = static_cast<ucontext_t*>(uctx);
#if defined(__x86_64__)
  *fp = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RBP]);
  *pc = static_cast<uintptr_t>(uc->uc_mcontext.gregs[REG_RIP]);
#elif defined(__aarch64__)
  *fp = static_cast<uintptr_t>(uc->uc_mcontext.regs[29]);
  *pc = static_cast<uintptr_t>(uc->uc_mcontext.pc);
#endif
}

// "0x" and `v` in hex; async-signal-safe.
void WriteHex(int fd, uintptr_t v) {
  char buf[2 + 2 * sizeof v];
  int i = sizeof buf;
  do {
    buf[--i] = "0123456789abcdef"[v & 15];
    v >>= 4;
  } while (v != 0);
  buf[--i] = 'x';
  buf[--i] = '0';
  WriteAll(fd, std::string_view(buf + i, sizeof buf - i));
}

void ChainFault(int sig, siginfo_t* info, void* uctx) {
  struct sigaction* old = sig == SIGSEGV ? &g_old_segv : &g_old_bus;
  if ((old->sa_flags & SA_SIGINFO) != 0 && old->sa_sigaction != nullptr) {
    old->sa_sigaction(sig, info, uctx);
    return;
  }
  if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN && old->sa_handler != nullptr) {
    old->sa_handler(sig);
    return;
  }
  // Default action: restore it and return; the faulting instruction runs again and kills us.
  signal(sig, SIG_DFL);
}

void FaultHandler(int sig, siginfo_t* info, void* uctx) {
  Worker* w = CurrentWorker();
  G* g = w != nullptr ? w->cur : nullptr;
  Sched* s = g_sched.load(std::memory_order_acquire);
  if (g != nullptr && s != nullptr && g->stack.guarded) {
    auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
    auto lo = reinterpret_cast<uintptr_t>(g->stack.lo);
    auto guard_lo = lo - s->stacks->page_size();
    if (addr >= guard_lo && addr < lo) {
      WriteAll(STDERR_FILENO, "goroutine ");
      WriteDecimal(STDERR_FILENO, g->id);
      WriteAll(STDERR_FILENO, ": stack overflow (");
      WriteDecimal(STDERR_FILENO, g->stack.size / 1024);
      WriteAll(STDERR_FILENO, " KiB stack; set Options::stack_size or GREENLINE_STACK_SIZE)\n");
      WriteAll(STDERR_FILENO, "fatal error: stack overflow\n\ngoroutine ");
      WriteDecimal(STDERR_FILENO, g->id);
      WriteAll(STDERR_FILENO, " [running]:\n");
      uintptr_t fp = 0, pc = 0;
      ContextRegisters(uctx, &fp, &pc);
      uintptr_t pcs[32];
      int n = WalkFramePointers(fp, pc, lo, reinterpret_cast<uintptr_t>(g->stack.hi()), pcs, 32);
      WriteBacktrace(STDERR_FILENO, pcs, n, /*demangle=*/false);
      _exit(2);
    }
  }
  struct sigaction* old = sig == SIGSEGV ? &g_old_segv : &g_old_bus;
  bool chained = (old->sa_flags & SA_SIGINFO) != 0
                     ? old->sa_sigaction != nullptr
                     : (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN &&
                        old->sa_handler != nullptr);
  if (g != nullptr && s != nullptr && !chained) {
    // Any other fault in a goroutine (a null or wild pointer): Go would make it a panic; C++ code
    // cannot be resumed safely after it, so it is a fatal error, in Go's words, naming the
    // goroutine and where it was. (A handler installed before ours, such as ASan's, reports it
    // instead.)
    uintptr_t fp = 0, pc = 0;
    ContextRegisters(uctx, &fp, &pc);
    WriteAll(STDERR_FILENO, "fatal error: unexpected signal in goroutine ");
    WriteDecimal(STDERR_FILENO, g->id);
    WriteAll(STDERR_FILENO, sig == SIGSEGV && reinterpret_cast<uintptr_t>(info->si_addr) < 4096
                                ? ": invalid memory address or nil pointer dereference\n"
                                : ": invalid memory access\n");
    WriteAll(STDERR_FILENO, sig == SIGSEGV ? "[signal SIGSEGV: segmentation violation code="
                                           : "[signal SIGBUS: bus error code=");
    WriteHex(STDERR_FILENO, static_cast<uintptr_t>(info->si_code));
    WriteAll(STDERR_FILENO, " addr=");
    WriteHex(STDERR_FILENO, reinterpret_cast<uintptr_t>(info->si_addr));
    WriteAll(STDERR_FILENO, " pc=");
    WriteHex(STDERR_FILENO, pc);
    WriteAll(STDERR_FILENO, "]\n\ngoroutine ");
    WriteDecimal(STDERR_FILENO, g->id);
    WriteAll(STDERR_FILENO, " [running]:\n");
    uintptr_t pcs[32];
    int n = WalkFramePointers(fp, pc, reinterpret_cast<uintptr_t>(g->stack.lo),
                              reinterpret_cast<uintptr_t>(g->stack.hi()), pcs, 32);
    WriteBacktrace(STDERR_FILENO, pcs, n, /*demangle=*/false);
    _exit(2);
  }
  ChainFault(sig, info, uctx);
}

void QuitHandler(int) {
  int saved = errno;
  char byte = 'q';
  ssize_t ignored = write(g_quit_pipe[1], &byte, 1);
  (void)ignored;
  errno = saved;
}

void CaptureHandler(int, siginfo_t*, void* uctx) {
  int saved = errno;
  Worker* w = CurrentWorker();
  if (w != nullptr && w->capture_state.load(std::memory_order_acquire) == 1) {
    G* g = w->cur;
    w->capture_n = 0;
    w->capture_goid = 0;
    if (g != nullptr) {
      uintptr_t fp = 0, pc = 0;
      ContextRegisters(uctx, &fp, &pc);
      w->capture_n =
          WalkFramePointers(fp, pc, reinterpret_cast<uintptr_t>(g->stack.lo),
                            reinterpret_cast<uintptr_t>(g->stack.hi()), w->capture_pcs, 64);
      w->capture_goid = g->id;
    }
    w->capture_state.store(2, std::memory_order_release);
  }
  errno = saved;
}

void InstallOnce() {
  if (pipe2(g_quit_pipe, O_CLOEXEC | O_NONBLOCK) != 0) Fatal("runtime: cannot create a pipe");
  struct sigaction sa {};
  sa.sa_sigaction = &FaultHandler;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGSEGV, &sa, &g_old_segv);
  sigaction(SIGBUS, &sa, &g_old_bus);
  struct sigaction cap {};
  cap.sa_sigaction = &CaptureHandler;
  cap.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
  sigemptyset(&cap.sa_mask);
  sigaction(SIGURG, &cap, nullptr);
}

}  // namespace

void InstallSignalHandlers(Sched* s) {
  std::call_once(g_install_once, &InstallOnce);
  if (s->options.sigquit_dump) {
    struct sigaction sa {};
    sa.sa_handler = &QuitHandler;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGQUIT, &sa, &g_old_quit);
  }
}

void StartSignalThread(Sched* s) {
  if (!s->options.sigquit_dump) return;
  g_signal_thread = std::thread([] {
    pthread_setname_np(pthread_self(), "greenline-sig");
    for (;;) {
      pollfd pfd{g_quit_pipe[0], POLLIN, 0};
      if (poll(&pfd, 1, -1) < 0 && errno != EINTR) return;
      char buf[64];
      ssize_t n = read(g_quit_pipe[0], buf, sizeof buf);
      bool quit = false, stop = false;
      for (ssize_t i = 0; i < n; ++i) {
        quit |= buf[i] == 'q';
        stop |= buf[i] == 'x';
      }
      if (quit) {
        WriteAll(STDERR_FILENO, "SIGQUIT: goroutine dump (greenline keeps running)\n\n");
        DumpGoroutines(STDERR_FILENO);
        g_dump_count.fetch_add(1, std::memory_order_release);
      }
      if (stop) return;
    }
  });
}

void StopSignalThread() {
  if (!g_signal_thread.joinable()) return;
  char byte = 'x';
  ssize_t ignored = write(g_quit_pipe[1], &byte, 1);
  (void)ignored;
  g_signal_thread.join();
  sigaction(SIGQUIT, &g_old_quit, nullptr);
}

namespace {
thread_local void* tls_altstack = nullptr;
}

void InstallWorkerAltStack() {
  void* mem =
      mmap(nullptr, kAltStackSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (mem == MAP_FAILED) return;  // overflows then die by the default action, unreported
  stack_t ss{};
  ss.ss_sp = mem;
  ss.ss_size = kAltStackSize;
  if (sigaltstack(&ss, nullptr) != 0) {
    munmap(mem, kAltStackSize);
    return;
  }
  tls_altstack = mem;
}

void RemoveWorkerAltStack() {
  if (tls_altstack == nullptr) return;
  stack_t ss{};
  ss.ss_flags = SS_DISABLE;
  sigaltstack(&ss, nullptr);
  munmap(tls_altstack, kAltStackSize);
  tls_altstack = nullptr;
}

bool CaptureRunningBacktrace(Worker* w, uintptr_t* pcs, int* n, uint64_t* goid,
                             int64_t timeout_ns) {
  OsMutexGuard lock(g_capture_mu);
  w->capture_state.store(1, std::memory_order_release);
  if (pthread_kill(w->thread, SIGURG) != 0) {
    w->capture_state.store(0, std::memory_order_relaxed);
    return false;
  }
  int64_t deadline = Nanotime() + timeout_ns;
  while (w->capture_state.load(std::memory_order_acquire) != 2) {
    if (Nanotime() > deadline) {
      w->capture_state.store(0, std::memory_order_relaxed);
      return false;
    }
    usleep(200);
  }
  *n = w->capture_n;
  for (int i = 0; i < *n; ++i) pcs[i] = w->capture_pcs[i];
  *goid = w->capture_goid;
  w->capture_state.store(0, std::memory_order_relaxed);
  return true;
}

}  // namespace internal

int SigquitDumpCount() { return internal::g_dump_count.load(std::memory_order_acquire); }

}  // namespace greenline
