// The netpoller: goroutine sockets on io_uring (default) or epoll (fallback), behind one interface.
//
// What a goroutine sees. net::Conn::Read parks the goroutine, not the thread, until data, EOF, an
// error, Close or a deadline; its wait reason is "IO wait", a running-class wait: waiting for the
// network counts as running, so a server whose goroutines all wait on idle connections is never
// reported as deadlocked (the detector counts only blocking-class waits).
//
// Workers sleep in their poller. A worker with nothing to run calls WorkerPoller::Wait, timed by
// the earliest timer: io_uring_enter (submitting what its goroutines queued, waiting for a
// completion) or epoll_wait. Wake() is an eventfd write, made only when the target is asleep or
// about to be (a token and a `sleeping` flag, both seq_cst: the waker stores the token then reads
// the flag, the sleeper stores the flag then takes the token, so one of them sees the other and a
// wakeup is never lost). A busy worker polls when its run queue runs dry and, as a safety net,
// every 61st schedule (when its poller has something pending), the way it looks at the global
// queue; I/O readied while a worker runs goes to that worker's queue.
//
// The seam. This file is the generic half: a PollDesc's references, Close, deadlines and parking.
// Each backend derives its own descriptor from PollDesc (epoll: its epoll and edge flags; io_uring:
// armed operations and received chunks) and is the only code that reads, resets or tears down that
// part (internal/backend.h). A backend reaches the scheduler only through sched/poller.h and
// sched/park.h; the scheduler knows a backend only as a PollerBackend (its workers' pollers).
//
// PollDesc lifetime (Go's fdMutex + pollCache, simplified). A PollDesc counts references: every
// API call holds one while it runs, and with io_uring every operation in the kernel holds one
// until its final completion. Close marks it closing (no new references), wakes parked goroutines
// with kErrClosing and has the backend cancel what is in the kernel; the last reference has the
// backend tear its part down (Teardown: one path, whether or not the Run() that opened it still
// runs), closes the descriptor and, once the owner is gone too, returns the PollDesc to its
// backend's cache. So a descriptor number is never closed while an operation could still use it
// (it could be reused by another socket), and PollDescs are never freed: a stale epoll event
// (tagged with the PollDesc's incarnation and dropped) or a late deadline timer (it re-checks the
// deadline under the lock) never touches freed memory.
//
// Deadlines (Go's SetReadDeadline). One timer per direction, on the heap of the worker that sets
// it. When it fires it marks the deadline passed (-1: every later wait fails at once, as Go's do)
// and readies the parked goroutine; the wait returns kErrDeadline. A deadline in the past set
// while a goroutine waits wakes it at once.
//
// Choosing the backend (Run, once): the GREENLINE_POLLER environment variable or Options::poller
// names one, else the first of an ordered list of candidates that can run here: io_uring, then
// epoll. Each candidate that cannot run says why (io_uring_setup fails with ENOSYS on old kernels
// and under qemu-user, EPERM under Docker >= 25's and containerd 2's default seccomp profiles or
// with kernel.io_uring_disabled=2, EINVAL with some flags on old kernels; a build without
// liburing); the reason is logged at start-up and available as net::PollerReason().
//
// Rejected: a single epoll instance shared by all workers (Go's): per-worker pollers keep a
// socket's events on the worker that serves it and let each worker sleep in its own poller;
// io_uring's single-issuer rings need that anyway. Readiness polls (IORING_OP_POLL_ADD) on
// io_uring: an epoll in disguise, a syscall per read; multishot recv into provided buffers reads
// without a syscall and without a buffer per idle connection. Backend state as optional fields of
// one shared PollDesc (what this file had once): every backend paid for every other's fields, and
// generic code had to reset and tear down state that was not its own.
#include "runtime/netpoll/netpoll.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <string>

#include "runtime/base/fatal.h"
#include "runtime/netpoll/internal/backend.h"
#include "runtime/sched/park.h"

namespace greenline::internal {

// The backends (uring.cc, epoll.cc): a backend, or nullptr with *why_not saying why it cannot run
// here. `reason` is what the backend reports as its reason for running.
std::unique_ptr<Netpoll> NewUringNetpoll(std::string reason, std::string* why_not);
std::unique_ptr<Netpoll> NewEpollNetpoll(std::string reason, std::string* why_not);

namespace {

// Written only while no worker runs (WorkersStarting, WorkersStopped), so readers on workers and
// on blocking-pool threads see them through the threads' start and join.
Netpoll* g_netpoll = nullptr;
// Which Run() this is (0: none): a PollDesc opened by an earlier one is stale (its goroutines,
// pollers and buffers are gone) and only its descriptor may still be closed.
uint64_t g_run = 0;
uint64_t g_runs = 0;

// The backend that owns pd, or nullptr when pd comes from an earlier (or no) running runtime.
Netpoll* NetpollOf(const PollDesc* pd) { return pd->run == g_run ? g_netpoll : nullptr; }

// The candidates, in order of preference.
struct Candidate {
  PollerKind kind;
  const char* name;
  std::unique_ptr<Netpoll> (*make)(std::string reason, std::string* why_not);
};
constexpr Candidate kCandidates[] = {
    {PollerKind::kIoUring, "io_uring", &NewUringNetpoll},
    {PollerKind::kEpoll, "epoll", &NewEpollNetpoll},
};

// PollDesc::refs: the count of holders, and three flags (see the essay and OrphanPollDesc).
constexpr uint64_t kClosingBit = uint64_t{1} << 63;  // Close has begun: no new holders
constexpr uint64_t kOrphanBit = uint64_t{1} << 62;   // its owner (net::Conn) is gone
constexpr uint64_t kFdDoneBit = uint64_t{1} << 61;   // the last holder closed the descriptor
constexpr uint64_t kCountMask = kFdDoneBit - 1;

// Takes the goroutine parked on one side (nullptr if none).
G* TakeWaiter(PollDesc* pd, bool write) GL_REQUIRES(pd->lock) {
  G** slot = write ? &pd->wg : &pd->rg;
  G* g = *slot;
  *slot = nullptr;
  return g;
}

void DeadlineFired(Timer* t, int64_t now) {
  PollDesc* pd = static_cast<PollDesc*>(t->arg);
  bool write = t == &pd->wtimer;
  G* g = nullptr;
  bool expired = false;
  {
    SpinLockGuard guard(pd->lock);
    int64_t* d = write ? &pd->wd : &pd->rd;
    // Re-checked under the lock: the deadline may have moved, or pd been recycled, since this
    // timer was armed.
    if (*d > 0 && *d <= now) {
      *d = -1;
      expired = true;
      g = TakeWaiter(pd, write);
    }
  }
  if (g != nullptr) Ready(g);
  if (expired) {
    if (Netpoll* np = NetpollOf(pd)) np->Interrupt(pd, write);
  }
}

}  // namespace

PollDesc::PollDesc() {
  rtimer.fn = &DeadlineFired;
  rtimer.arg = this;
  wtimer.fn = &DeadlineFired;
  wtimer.arg = this;
}

void Netpoll::WorkersStarting() {
  g_netpoll = this;
  g_run = ++g_runs;
}

void Netpoll::WorkersStopped() {
  g_netpoll = nullptr;
  g_run = 0;
}

Netpoll* CurrentNetpoll() { return g_netpoll; }

std::unique_ptr<Netpoll> NewNetpoll(PollerKind kind) {
  const char* env = std::getenv("GREENLINE_POLLER");
  std::string source = "Options::poller";
  if (kind == PollerKind::kAuto && env != nullptr && *env != '\0') {
    std::string v(env);
    source = "GREENLINE_POLLER=" + v;
    if (v == "io_uring" || v == "uring") {
      kind = PollerKind::kIoUring;
    } else if (v == "epoll") {
      kind = PollerKind::kEpoll;
    } else if (v != "auto") {
      Fatalf("runtime: GREENLINE_POLLER=%s: want auto, io_uring or epoll", env);
    }
  }
  std::string passed_over;  // why the candidates before this one cannot run
  for (const Candidate& c : kCandidates) {
    if (kind != PollerKind::kAuto && c.kind != kind) continue;
    std::string name = c.name;
    std::string reason = kind != PollerKind::kAuto ? name + ": chosen by " + source
                         : passed_over.empty()     ? name + ": available (the default)"
                                                   : name + ": fallback, " + passed_over;
    std::string why_not;
    if (std::unique_ptr<Netpoll> np = c.make(std::move(reason), &why_not)) return np;
    if (kind != PollerKind::kAuto) {
      Fatalf("runtime: %s poller requested by %s, but %s", c.name, source.c_str(), why_not.c_str());
    }
    passed_over += (passed_over.empty() ? "" : "; ") + why_not;
  }
  Fatalf("runtime: no poller can run here: %s", passed_over.c_str());
}

PollDesc* OpenPollDesc(int fd, int* error) {
  Netpoll* np = CurrentNetpoll();
  if (np == nullptr) {
    *error = -EINVAL;
    return nullptr;
  }
  PollDesc* pd = np->NewDesc();
  {
    SpinLockGuard guard(pd->lock);
    pd->fd = fd;
    pd->run = g_run;
    pd->closing = false;
    pd->rg = pd->wg = nullptr;
    pd->rd = pd->wd = 0;
  }
  pd->refs.store(1, std::memory_order_release);
  if (int rc = np->Register(pd); rc != 0) {
    *error = rc;
    pd->fd = -1;
    pd->Recycle();
    return nullptr;
  }
  return pd;
}

bool AcquirePollDesc(PollDesc* pd) {
  if (NetpollOf(pd) == nullptr) return false;  // from an earlier runtime: only Close works
  uint64_t r = pd->refs.load(std::memory_order_relaxed);
  do {
    if (r & kClosingBit) return false;
  } while (!pd->refs.compare_exchange_weak(r, r + 1, std::memory_order_acquire,
                                           std::memory_order_relaxed));
  return true;
}

void ReleasePollDesc(PollDesc* pd) {
  uint64_t r = pd->refs.fetch_sub(1, std::memory_order_acq_rel) - 1;
  if ((r & kCountMask) != 0) return;
  if (!(r & kClosingBit)) Fatal("runtime: PollDesc released to zero without Close");
  // The last reference: nothing can reach the descriptor through the API or the kernel now.
  StopTimer(&pd->rtimer);
  StopTimer(&pd->wtimer);
  pd->Teardown(/*live=*/NetpollOf(pd) != nullptr);
  int fd = pd->fd;
  {
    SpinLockGuard guard(pd->lock);
    pd->fd = -1;
    pd->rd = pd->wd = 0;
  }
  if (fd >= 0) close(fd);
  // Hand-off with OrphanPollDesc: whichever of the two comes second recycles pd.
  r = pd->refs.fetch_or(kFdDoneBit, std::memory_order_acq_rel);
  if (r & kOrphanBit) pd->Recycle();
}

bool ClosePollDesc(PollDesc* pd) {
  uint64_t r = pd->refs.load(std::memory_order_relaxed);
  do {
    if (r & kClosingBit) return false;
  } while (!pd->refs.compare_exchange_weak(r, r | kClosingBit, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
  G* rg;
  G* wg;
  {
    SpinLockGuard guard(pd->lock);
    pd->closing = true;
    rg = TakeWaiter(pd, false);
    wg = TakeWaiter(pd, true);
  }
  // A handle that outlives its runtime (closed after Run returned) may still name goroutines the
  // runtime discarded: nothing to wake then, and nothing in the kernel.
  Netpoll* np = NetpollOf(pd);
  if (np == nullptr) return true;
  if (rg != nullptr) Ready(rg);
  if (wg != nullptr) Ready(wg);
  np->Evict(pd);
  return true;
}

void OrphanPollDesc(PollDesc* pd) {
  uint64_t r = pd->refs.fetch_or(kOrphanBit, std::memory_order_acq_rel);
  if (r & kFdDoneBit) pd->Recycle();
}

void SetPollDeadline(PollDesc* pd, int64_t when, char mode) {
  G* woken[2] = {nullptr, nullptr};
  int64_t now = when > 0 ? Nanotime() : 0;
  {
    SpinLockGuard guard(pd->lock);
    for (int side = 0; side < 2; ++side) {
      bool write = side == 1;
      if (mode != 'b' && (mode == 'w') != write) continue;
      Timer* t = write ? &pd->wtimer : &pd->rtimer;
      int64_t* d = write ? &pd->wd : &pd->rd;
      StopTimer(t);  // a callback already firing re-checks *d under the lock we hold
      if (when <= 0) {
        *d = 0;
      } else if (when <= now) {
        *d = -1;
        woken[side] = TakeWaiter(pd, write);
      } else {
        *d = when;
        t->when = when;
        AddTimer(t);
      }
    }
  }
  for (G* g : woken) {
    if (g != nullptr) Ready(g);
  }
  if (when > 0 && when <= now) {
    if (Netpoll* np = NetpollOf(pd)) {
      if (mode != 'w') np->Interrupt(pd, false);
      if (mode != 'r') np->Interrupt(pd, true);
    }
  }
}

void ParkOnPollDesc(PollDesc* pd, bool write) {
  G* g = CurrentG();
  if (g == nullptr) Fatal("runtime: socket wait outside a goroutine");
  (write ? pd->wg : pd->rg) = g;
  ParkUnlock(WaitReason::kIOWait, &pd->lock);
}

void HibernateOnPollDesc(PollDesc* pd) {
  G* g = CurrentG();
  if (g == nullptr) Fatal("runtime: socket wait outside a goroutine");
  // Read() serialises readers with NetFd::rmu; a Resume wait cannot hold it while it has no stack,
  // so two readers of one connection would lose a wakeup here: refuse loudly instead.
  if (pd->rg != nullptr) {
    Fatal("runtime: a hibernating read on a connection another goroutine reads");
  }
  pd->rg = g;
  ParkHibernateUnlock(WaitReason::kIOWait, &pd->lock);
}

int PollDescError(const PollDesc* pd, bool write) {
  if (pd->closing) return kErrClosing;
  if ((write ? pd->wd : pd->rd) < 0) return kErrDeadline;
  return 0;
}

}  // namespace greenline::internal
