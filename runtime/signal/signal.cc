// Go's os/signal.Notify and Stop (greenline/signal.h): signals delivered on channels.
//
// A signal handler may do almost nothing: no lock, no allocation, no channel operation (a channel
// takes a lock the interrupted thread may hold). So delivery has two halves, as in Go
// (runtime/sigqueue.go and os/signal/signal.go):
//
//   handler (any thread,   sets the signal's bit in `g_pending` (an atomic OR, if the signal is
//   async-signal-safe)     in `g_wanted`), then writes one byte to the write end of a socket pair
//                          (send, MSG_DONTWAIT: a full socket drops the byte, harmless, see below)
//         |
//         v
//   delivery goroutine     parked in "IO wait" reading the other end through the netpoller; wakes,
//   (one per Run)          swaps `g_pending` to zero, and under the registry lock TrySends each
//                          arrived signal to every channel watching it
//
// Glossary.
//   registry   who watches what: the watchers (a channel and its mask of signals), the mask of
//              signals with our handler installed (`installed`, the union of the watchers' masks)
//              and the disposition each replaced. Guarded by `g_mu`.
//   pending    signals that arrived and are not delivered yet: a bitmask (bit sig - 1), so a
//              signal arriving twice before delivery is delivered once (the kernel coalesces a
//              pending standard signal the same way; so does Go).
//   socket     a socketpair(AF_UNIX, SOCK_STREAM), one per process: the handler writes its byte
//              to one end, the goroutine reads a duplicate of the other, opened with the running
//              netpoller (a PollDesc) for each Run.
//
// Invariants.
//   - A byte is written after the bit is set, and the goroutine swaps the mask after reading, so
//     every bit set is seen by a swap after some read that its byte (or an earlier unread one)
//     ended. A byte dropped because the socket is full loses nothing: the unread bytes wake the
//     reader, whose swap takes the bit (Go's sigqueue uses one mask word and a note the same way).
//   - Deliveries and Stop hold `g_mu`: once Stop(c) has removed `c`, no delivery to `c` can be in
//     progress or start. Go's Stop has to wait for its signal goroutine to go idle to promise the
//     same; a lock is simpler here, because delivery never waits (TrySend).
//   - `g_wanted` mirrors `installed` for the handler. It is set before a handler is installed (the
//     first signal counts) and cleared after the old disposition is back (a signal in between
//     takes its restored action, or is set pending and dropped by a delivery that finds no
//     watcher: never lost while watched, never delivered to a channel that was Stopped).
//   - The goroutine runs while some channel watches something. When the last one is Stopped, Stop
//     writes a byte; the goroutine wakes, finds no watcher and ends, so a program that Stopped
//     every channel has its deadlock detector back. The next Notify starts another. Only one
//     reads at a time: a goroutine gives up its PollDesc reference before it looks at the
//     registry for the last time, and the next one is started under the same lock after that.
//
// Runs. A process may call Run() several times, and what a Run owns ends with it: its netpoller
// (so the PollDesc), its goroutines (the delivery goroutine is discarded wherever it is parked)
// and its channels. Run() calls EndSignalNotify once its scheduler has stopped: dispositions come
// back, channels are let go, and the PollDesc is closed; if the discarded goroutine was inside a
// read, it held a reference that nothing will drop, so EndSignalNotify drops it (`holds_ref`
// says whether it did). The descriptor given to the PollDesc is a dup of the socket's read end,
// since closing a PollDesc closes its descriptor; the socket itself lives as long as the process,
// so a handler running late never writes to a descriptor number that was closed and reused. Bytes
// and pending bits left from an earlier Run are thrown away when the next one first calls Notify.
// A child forked after a Run shares the socket with its parent (the kernel's socket, not a copy):
// its first Notify makes a socket of its own (the `pid` check), or the parent would read its bytes.
//
// Thread masks. The handler runs on whichever thread the kernel picks among those not blocking the
// signal. The runtime's threads block nothing themselves (sched/signals.cc installs handlers and
// an alternate stack, and changes no mask) and inherit the mask of the thread that called Run().
// A program that blocked a signal there (the sigwait pattern) would never see it, so the delivery
// goroutine unblocks the watched signals on the worker it runs on, each time before it waits
// (Notify of a new signal wakes it for that). One worker is enough: the kernel delivers a process
// signal to any thread that does not block it. Go does the same with a thread of its own (sigM).
//
// Rejected.
//   - sigwait or signalfd on a thread of the blocking pool (what server/main.cc does by hand):
//     both need the signals blocked in every thread, which the library cannot arrange for
//     threads the program made before Run() (spdlog's, for one), and a goroutine parked in a
//     Blocking() call is in "syscall", which is fine for the detector but holds a pool thread for
//     the life of the program. signalfd through the netpoller has the same masking problem.
//   - A dedicated thread that reads a pipe and TrySends (the SIGQUIT dump's design): works, but
//     the wait would be invisible to the deadlock detector (a plain thread is not a goroutine),
//     so `Notify(c, {SIGTERM}); c.Recv();` alone would be reported as a deadlock.
//   - A pipe instead of a socket pair: io_uring's recv needs a socket.
//   - Delivering from the handler (TrySend there): a channel operation takes a lock and readies a
//     goroutine; neither is async-signal-safe.
//   - Keeping the delivery goroutine for the whole Run once started (Go's): the deadlock detector
//     would stay off after the last Stop, for nothing.
//   - Go's Notify(c) with no signals ("all of them"): it would take over SIGCHLD, SIGPIPE and the
//     rest behind the program's back; refused, the caller names what it wants.
//
// Known window: a handler that the kernel started just before EndSignalNotify restored its
// signal's disposition, and that runs only after the next Run's first Notify cleared the leftovers,
// sets a pending bit for that Run. It is delivered only if that Run watches the signal too.
#include "greenline/signal.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/internal/spinlock.h"
#include "greenline/runtime_error.h"
#include "greenline/thread_annotations.h"
#include "runtime/base/fatal.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/signal/notify.h"

namespace greenline {
namespace {

using internal::AcquirePollDesc;
using internal::ClosePollDesc;
using internal::CurrentNetpoll;
using internal::Netpoll;
using internal::OpenPollDesc;
using internal::OrphanPollDesc;
using internal::PollDesc;
using internal::ReleasePollDesc;

// Signals are 1..64 on Linux (SIGRTMAX is 64); signal `sig` is bit sig - 1.
constexpr int kMaxSignal = 64;

uint64_t Bit(int sig) { return uint64_t{1} << (sig - 1); }

// Takes the lowest signal out of a non-empty `*mask`. (Loops, not a for-each with a lambda: clang's
// thread-safety analysis does not see a lock held around a lambda's body.)
int PopSignal(uint64_t* mask) {
  int sig = __builtin_ctzll(*mask) + 1;
  *mask &= *mask - 1;
  return sig;
}

// Read by the handler, so lock-free atomics (async-signal-safe) and seq_cst: the handler's OR and
// send, and the goroutine's recv and swap, must not be reordered around each other.
static_assert(std::atomic<uint64_t>::is_always_lock_free && std::atomic<int>::is_always_lock_free);
std::atomic<uint64_t> g_wanted{0};   // signals with watchers; mirrors Registry::installed
std::atomic<uint64_t> g_pending{0};  // arrived, not yet delivered
std::atomic<int> g_write_fd{-1};     // the socket's end the handler writes to

struct Watcher {
  Chan<int> c;
  uint64_t mask = 0;
};

SpinLock g_mu;
struct Registry {
  std::vector<Watcher> watchers GL_GUARDED_BY(g_mu);
  uint64_t installed GL_GUARDED_BY(g_mu) = 0;                  // our handler is installed for these
  struct sigaction saved[kMaxSignal + 1] GL_GUARDED_BY(g_mu);  // what it replaced, per signal

  // The process's socket pair (see the essay): made by the first Notify in this process.
  pid_t pid GL_GUARDED_BY(g_mu) = 0;
  int read_fd GL_GUARDED_BY(g_mu) = -1;
  int write_fd GL_GUARDED_BY(g_mu) = -1;

  // This Run's: the PollDesc of a dup of read_fd (nullptr until the Run's first Notify).
  PollDesc* pd GL_GUARDED_BY(g_mu) = nullptr;
  // A delivery goroutine runs (started, not yet ended): at most one at a time.
  bool loop_running GL_GUARDED_BY(g_mu) = false;
  // It holds a reference on pd, for the read it is in. Set and cleared by the goroutine; read by
  // EndSignalNotify once the goroutine is discarded.
  bool loop_holds_ref GL_GUARDED_BY(g_mu) = false;
};
Registry g_registry;

void Handler(int sig) {
  int saved_errno = errno;
  uint64_t bit = Bit(sig);
  if ((g_wanted.load(std::memory_order_seq_cst) & bit) != 0) {
    g_pending.fetch_or(bit, std::memory_order_seq_cst);
    char byte = 's';
    ssize_t ignored =
        send(g_write_fd.load(std::memory_order_relaxed), &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    static_cast<void>(ignored);
  }
  errno = saved_errno;
}

// Wakes the delivery goroutine (a byte with no pending bit: it only looks at the registry).
void WakeLoop() GL_REQUIRES(g_mu) {
  char byte = 'w';
  ssize_t ignored = send(g_registry.write_fd, &byte, 1, MSG_DONTWAIT | MSG_NOSIGNAL);
  static_cast<void>(ignored);
}

// Why Notify refuses `sig`, or nullptr if it takes it.
const char* Refusal(int sig) {
  switch (sig) {
    case SIGKILL:
    case SIGSTOP:
      return "cannot be caught";
    case SIGSEGV:
    case SIGBUS:
      return "is the runtime's (stack overflow and fault reports)";
    case SIGURG:
      return "is the runtime's (it captures running goroutines' stacks for dumps and the monitor)";
    case SIGQUIT:
      return "is the runtime's (the goroutine dump)";
    default:
      break;
  }
  if (sig < 1 || sig > kMaxSignal || sig > SIGRTMAX) return "is not a signal";
  if (sig >= 32 && sig < SIGRTMIN) return "is reserved by the C library (NPTL)";
  return nullptr;
}

std::string SignalName(int sig) {
  const char* abbrev = sig >= 1 && sig <= kMaxSignal ? sigabbrev_np(sig) : nullptr;
  return abbrev != nullptr ? std::string("SIG") + abbrev : "signal " + std::to_string(sig);
}

// The process's socket pair, made now if this process has none (a fork's child has its parent's).
void EnsureSocket() GL_REQUIRES(g_mu) {
  Registry& r = g_registry;
  pid_t pid = getpid();
  if (r.pid == pid) return;
  if (r.read_fd >= 0) {
    // Inherited through fork: no handler of ours is installed here (the parent's Run ended
    // before it forked, which restored them), so nothing writes to these any more.
    close(r.read_fd);
    close(r.write_fd);
  }
  int sv[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) {
    Fatalf("runtime: signal.Notify: cannot make its socket pair: %s", std::strerror(errno));
  }
  r.read_fd = sv[0];
  r.write_fd = sv[1];
  r.pid = pid;
  g_write_fd.store(sv[1], std::memory_order_relaxed);
}

// The Run's first Notify: its PollDesc, on the socket, emptied of what earlier Runs left.
void OpenForRun(Netpoll* np) GL_REQUIRES(g_mu) {
  Registry& r = g_registry;
  EnsureSocket();
  char buf[64];
  while (recv(r.read_fd, buf, sizeof buf, MSG_DONTWAIT) > 0) {
  }
  g_pending.store(0, std::memory_order_seq_cst);
  int fd = fcntl(r.read_fd, F_DUPFD_CLOEXEC, 0);
  if (fd < 0) Fatalf("runtime: signal.Notify: cannot dup its socket: %s", std::strerror(errno));
  // The dup shares the socket's status flags: set them for this Run's backend.
  int flags = fcntl(fd, F_GETFL);
  flags = np->NonBlockingSockets() ? flags | O_NONBLOCK : flags & ~O_NONBLOCK;
  if (flags < 0 || fcntl(fd, F_SETFL, flags) != 0) {
    Fatalf("runtime: signal.Notify: cannot set its socket's mode: %s", std::strerror(errno));
  }
  int error = 0;
  r.pd = OpenPollDesc(fd, &error);
  if (r.pd == nullptr) {
    close(fd);
    Fatalf("runtime: signal.Notify: cannot poll its socket: %s", std::strerror(-error));
  }
}

// Installs our handler for each signal in `mask`, saving what it replaces.
void Install(uint64_t mask) GL_REQUIRES(g_mu) {
  struct sigaction sa {};
  sa.sa_handler = &Handler;
  // SA_RESTART: a blocking-pool call interrupted by the signal goes on. SA_ONSTACK: workers have
  // an alternate signal stack, goroutine stacks are small.
  sa.sa_flags = SA_RESTART | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  while (mask != 0) {
    int sig = PopSignal(&mask);
    if (sigaction(sig, &sa, &g_registry.saved[sig]) != 0) {
      Fatalf("runtime: signal.Notify: cannot install a handler for %s: %s", SignalName(sig).c_str(),
             std::strerror(errno));
    }
  }
}

// Gives each signal in `mask` back the disposition Install saved.
void Restore(uint64_t mask) GL_REQUIRES(g_mu) {
  while (mask != 0) {
    int sig = PopSignal(&mask);
    sigaction(sig, &g_registry.saved[sig], nullptr);
  }
}

// Sends each signal in `arrived` to every channel watching it; a full channel misses it.
void Deliver(uint64_t arrived) GL_REQUIRES(g_mu) {
  while (arrived != 0) {
    int sig = PopSignal(&arrived);
    for (const Watcher& w : g_registry.watchers) {
      if ((w.mask & Bit(sig)) != 0) w.c.TrySend(sig);
    }
  }
}

// The delivery goroutine (see the essay): waits in "IO wait" on the socket, delivers what arrived,
// ends when no channel watches anything.
void DeliverSignals() {
  Netpoll* np = CurrentNetpoll();  // the Run's, for as long as this goroutine can run
  for (;;) {
    PollDesc* pd;
    sigset_t watched;
    sigemptyset(&watched);
    {
      SpinLockGuard guard(g_mu);
      if (g_registry.watchers.empty()) {
        g_registry.loop_running = false;
        return;
      }
      pd = g_registry.pd;
      if (!AcquirePollDesc(pd)) Fatal("runtime: signal: the signal socket closed while Run runs");
      g_registry.loop_holds_ref = true;
      for (uint64_t m = g_registry.installed; m != 0;) sigaddset(&watched, PopSignal(&m));
    }
    pthread_sigmask(SIG_UNBLOCK, &watched, nullptr);  // this worker's thread
    char buf[64];
    ssize_t n = np->Read(pd, buf, sizeof buf);
    uint64_t arrived = g_pending.exchange(0, std::memory_order_seq_cst);
    SpinLockGuard guard(g_mu);
    ReleasePollDesc(pd);
    g_registry.loop_holds_ref = false;
    if (n == 0 || (n < 0 && n != -EINTR && n != -EAGAIN)) {
      Fatalf("runtime: signal: reading the signal socket: %s",
             n == 0 ? "end of file" : std::strerror(static_cast<int>(-n)));
    }
    Deliver(arrived);
  }
}

}  // namespace

namespace signal {

void Notify(const Chan<int>& c, std::initializer_list<int> signals) {
  if (!c) throw RuntimeError("signal.Notify using nil channel");
  if (signals.size() == 0) {
    throw RuntimeError("signal.Notify: no signals named (Go's \"every signal\" is not supported)");
  }
  uint64_t mask = 0;
  for (int sig : signals) {
    if (const char* why = Refusal(sig)) {
      throw RuntimeError("signal.Notify: " + SignalName(sig) + " " + why);
    }
    mask |= Bit(sig);
  }
  Registry& r = g_registry;
  SpinLockGuard guard(g_mu);
  Netpoll* np = CurrentNetpoll();
  if (np == nullptr) throw RuntimeError("signal.Notify: no runtime running");
  if (r.pd == nullptr) OpenForRun(np);
  Watcher* w = nullptr;
  for (Watcher& each : r.watchers) {
    if (each.c == c) w = &each;
  }
  if (w == nullptr) w = &r.watchers.emplace_back(Watcher{c, 0});
  w->mask |= mask;
  uint64_t added = mask & ~r.installed;
  if (added != 0) {
    r.installed |= added;
    g_wanted.store(r.installed, std::memory_order_seq_cst);  // before the handler: the first counts
    Install(added);
  }
  if (!r.loop_running) {
    r.loop_running = true;
    Go(&DeliverSignals);
  } else if (added != 0) {
    WakeLoop();  // to unblock the new signals on its worker
  }
}

void Stop(const Chan<int>& c) {
  if (!c) return;
  Registry& r = g_registry;
  Chan<int> dropped;  // let go of after the lock (it may be the last handle)
  SpinLockGuard guard(g_mu);
  uint64_t still = 0;
  bool found = false;
  for (auto it = r.watchers.begin(); it != r.watchers.end();) {
    if (it->c == c) {
      dropped = std::move(it->c);
      it = r.watchers.erase(it);
      found = true;
    } else {
      still |= it->mask;
      ++it;
    }
  }
  if (!found) return;
  Restore(r.installed & ~still);
  r.installed = still;
  g_wanted.store(still, std::memory_order_seq_cst);      // after the restore: see the essay
  if (r.watchers.empty() && r.loop_running) WakeLoop();  // it ends
}

}  // namespace signal

namespace internal {

void EndSignalNotify() {
  Registry& r = g_registry;
  std::vector<Watcher> dropped;  // let go of after the lock
  SpinLockGuard guard(g_mu);
  Restore(r.installed);
  r.installed = 0;
  g_wanted.store(0, std::memory_order_seq_cst);
  dropped.swap(r.watchers);
  if (r.pd != nullptr) {
    // The PollDesc is stale now (its Run ended): Close only marks it; the last reference closes
    // the descriptor (Teardown(live = false)) and the orphan mark recycles it.
    ClosePollDesc(r.pd);
    if (r.loop_holds_ref) ReleasePollDesc(r.pd);  // the discarded goroutine's
    ReleasePollDesc(r.pd);                        // Notify's, the owner's
    OrphanPollDesc(r.pd);
    r.pd = nullptr;
  }
  r.loop_holds_ref = false;
  r.loop_running = false;
  g_pending.store(0, std::memory_order_seq_cst);
}

}  // namespace internal

}  // namespace greenline
