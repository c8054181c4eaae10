// The netpoller: goroutine sockets on io_uring (default) or epoll (fallback), behind one interface.
//
// What a goroutine sees. net::Conn::Read parks the goroutine, not the thread, until data, EOF, an
// error, Close or a deadline; its wait reason is "IO wait", a running-class wait: waiting for the
// network is running, as the seed says, so a server whose goroutines all wait on idle connections
// is never reported as deadlocked (the detector counts only blocking-class waits).
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
// PollDesc lifetime (Go's fdMutex + pollCache, simplified). A PollDesc counts references: every
// API call holds one while it runs, and with io_uring every operation in the kernel holds one
// until its final completion. Close marks it closing (no new references), wakes parked goroutines
// with kErrClosing and cancels what is in the kernel; the last reference deregisters it, closes
// the descriptor and returns the PollDesc to a process-wide cache. So a descriptor number is never
// closed while an operation could still use it (it could be reused by another socket), and
// PollDescs are never freed: a stale epoll event (tagged with the PollDesc's incarnation and
// dropped) or a late deadline timer (it re-checks the deadline under the lock) never touches freed
// memory.
//
// Deadlines (Go's SetReadDeadline). One timer per direction, on the heap of the worker that sets
// it. When it fires it marks the deadline passed (-1: every later wait fails at once, as Go's do)
// and readies the parked goroutine; the wait returns kErrDeadline. A deadline in the past set
// while a goroutine waits wakes it at once.
//
// Choosing the backend (Run, once): the GREENLINE_POLLER environment variable or Options::poller,
// else io_uring if a ring can be set up (io_uring_setup fails with ENOSYS on old kernels and under
// qemu-user, EPERM under Docker >= 25's and containerd 2's default seccomp profiles or with
// kernel.io_uring_disabled=2, EINVAL with some flags on old kernels), else epoll. The reason is
// logged at start-up and available as net::PollerReason().
//
// Rejected: a single epoll instance shared by all workers (Go's): per-worker pollers keep a
// socket's events on the worker that serves it and let each worker sleep in its own poller;
// io_uring's single-issuer rings need that anyway. Readiness polls (IORING_OP_POLL_ADD) on
// io_uring: an epoll in disguise, a syscall per read; multishot recv into provided buffers reads
// without a syscall and without a buffer per idle connection.
#include "runtime/netpoll/netpoll.h"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "runtime/base/fatal.h"
#include "runtime/sched/internal/g.h"
#include "runtime/sched/park.h"

namespace greenline::internal {
namespace {

Netpoll* g_netpoll = nullptr;  // set before workers start, cleared after they stop
// Which Run() this is (0: none): a PollDesc opened by an earlier one is stale (its goroutines,
// pollers and buffers are gone) and only its descriptor may still be closed.
uint64_t g_run = 0;
uint64_t g_runs = 0;

// The backend that owns pd, or nullptr when pd comes from an earlier (or no) running runtime.
Netpoll* NetpollOf(const PollDesc* pd) { return pd->run == g_run ? g_netpoll : nullptr; }
std::string* g_reason = new std::string();

// PollDesc::refs: the count of holders, and three flags (see the essay and OrphanPollDesc).
constexpr uint64_t kClosingBit = uint64_t{1} << 63;  // Close has begun: no new holders
constexpr uint64_t kOrphanBit = uint64_t{1} << 62;   // its owner (net::Conn) is gone
constexpr uint64_t kFdDoneBit = uint64_t{1} << 61;   // the last holder closed the descriptor
constexpr uint64_t kCountMask = kFdDoneBit - 1;

// Process-wide PollDesc cache. Never freed: see the essay.
struct PollCache {
  std::mutex lock;
  PollDesc* free = nullptr;
};
PollCache& Cache() {
  static PollCache* cache = new PollCache();
  return *cache;
}

void DeadlineFired(Timer* t, int64_t now);

PollDesc* AllocPollDesc() {
  PollCache& c = Cache();
  {
    std::lock_guard<std::mutex> lock(c.lock);
    if (PollDesc* pd = c.free) {
      c.free = pd->next_free;
      pd->next_free = nullptr;
      return pd;
    }
  }
  PollDesc* pd = new PollDesc();
  pd->rtimer.fn = &DeadlineFired;
  pd->rtimer.arg = pd;
  pd->wtimer.fn = &DeadlineFired;
  pd->wtimer.arg = pd;
  return pd;
}

void FreePollDesc(PollDesc* pd) {
  pd->refs.store(0, std::memory_order_relaxed);
  PollCache& c = Cache();
  std::lock_guard<std::mutex> lock(c.lock);
  pd->next_free = c.free;
  c.free = pd;
}

// Takes the goroutine parked on one side (nullptr if none). Requires pd->lock.
G* TakeWaiter(PollDesc* pd, bool write) {
  G** slot = write ? &pd->wg : &pd->rg;
  G* g = *slot;
  *slot = nullptr;
  return g;
}

void DeadlineFired(Timer* t, int64_t now) {
  PollDesc* pd = static_cast<PollDesc*>(t->arg);
  bool write = t == &pd->wtimer;
  G* g = nullptr;
  pd->lock.lock();
  int64_t* d = write ? &pd->wd : &pd->rd;
  // Re-checked under the lock: the deadline may have moved, or pd been recycled, since this timer
  // was armed.
  bool expired = false;
  if (*d > 0 && *d <= now) {
    *d = -1;
    expired = true;
    g = TakeWaiter(pd, write);
  }
  pd->lock.unlock();
  if (g != nullptr) Ready(g);
  if (expired) {
    if (Netpoll* np = NetpollOf(pd)) np->Interrupt(pd, write);
  }
}

}  // namespace

Netpoll* CurrentNetpoll() { return g_netpoll; }

const std::string& NetpollReason() { return *g_reason; }

void SetCurrentNetpoll(Netpoll* np, std::string reason) {
  g_netpoll = np;
  g_run = np != nullptr ? ++g_runs : 0;
  *g_reason = std::move(reason);
}

std::unique_ptr<Netpoll> NewNetpoll(PollerKind kind, std::string* reason) {
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
  if (kind == PollerKind::kEpoll) {
    *reason = "epoll: chosen by " + source;
    return NewEpollNetpoll();
  }
  int err = 0;
  std::unique_ptr<Netpoll> uring = NewUringNetpoll(&err);
  if (uring != nullptr) {
    *reason = kind == PollerKind::kIoUring ? "io_uring: chosen by " + source
                                           : "io_uring: available (the default)";
    return uring;
  }
  std::string why =
      err == 0 ? std::string("io_uring: this build has no liburing")
               : std::string("io_uring_setup failed: ") + std::strerror(err) + " (" +
                     (err == 0         ? ""
                      : err == EPERM   ? "EPERM: blocked by seccomp or kernel.io_uring_disabled"
                      : err == ENOSYS  ? "ENOSYS: no io_uring in this kernel or emulator"
                      : err == EINVAL  ? "EINVAL: an older kernel"
                      : err == ENOTSUP ? "kernel older than 6.0: no multishot recv"
                                       : "unexpected") +
                     ")";
  if (kind == PollerKind::kIoUring) {
    Fatalf("runtime: io_uring poller requested by %s, but %s", source.c_str(), why.c_str());
  }
  *reason = "epoll: fallback, " + why;
  return NewEpollNetpoll();
}

PollDesc* OpenPollDesc(int fd, int* error) {
  Netpoll* np = CurrentNetpoll();
  if (np == nullptr) {
    *error = -EINVAL;
    return nullptr;
  }
  PollDesc* pd = AllocPollDesc();
  pd->lock.lock();
  pd->fd = fd;
  ++pd->seq;
  pd->closing = false;
  pd->rg = pd->wg = nullptr;
  pd->rready = pd->wready = false;
  pd->rd = pd->wd = 0;
  pd->recv_home = pd->accept_home = nullptr;
  pd->recv_armed = pd->recv_nobufs = pd->recv_eof = pd->accept_armed = false;
  pd->recv_error = pd->accept_error = 0;
  pd->unread = 0;
  pd->chunks.clear();
  pd->chunk_head = 0;
  pd->accepted.clear();
  pd->accept_head = 0;
  pd->rop = pd->wop = nullptr;
  pd->home = nullptr;
  pd->run = g_run;
  pd->lock.unlock();
  pd->refs.store(1, std::memory_order_release);
  int rc = np->Open(pd);
  if (rc != 0) {
    *error = rc;
    pd->fd = -1;
    FreePollDesc(pd);
    return nullptr;
  }
  return pd;
}

namespace {
// A stale PollDesc's last reference: what it still names of its runtime is gone (goroutines,
// rings, buffers); only accepted descriptors nobody took are still ours to close.
void DropStale(PollDesc* pd) {
  pd->lock.lock();
  pd->rg = pd->wg = nullptr;
  pd->rop = pd->wop = nullptr;
  pd->chunks.clear();
  pd->chunk_head = 0;
  for (size_t i = pd->accept_head; i < pd->accepted.size(); ++i) close(pd->accepted[i]);
  pd->accepted.clear();
  pd->accept_head = 0;
  pd->home = pd->recv_home = pd->accept_home = nullptr;
  pd->lock.unlock();
}
}  // namespace

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
  if (Netpoll* np = NetpollOf(pd)) {
    np->Deregister(pd);
  } else {
    DropStale(pd);
  }
  int fd = pd->fd;
  pd->lock.lock();
  pd->fd = -1;
  pd->rd = pd->wd = 0;
  pd->lock.unlock();
  if (fd >= 0) close(fd);
  // Hand-off with OrphanPollDesc: whichever of the two comes second recycles pd.
  r = pd->refs.fetch_or(kFdDoneBit, std::memory_order_acq_rel);
  if (r & kOrphanBit) FreePollDesc(pd);
}

bool ClosePollDesc(PollDesc* pd) {
  uint64_t r = pd->refs.load(std::memory_order_relaxed);
  do {
    if (r & kClosingBit) return false;
  } while (!pd->refs.compare_exchange_weak(r, r | kClosingBit, std::memory_order_acq_rel,
                                           std::memory_order_relaxed));
  pd->lock.lock();
  pd->closing = true;
  G* rg = TakeWaiter(pd, false);
  G* wg = TakeWaiter(pd, true);
  pd->lock.unlock();
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
  if (r & kFdDoneBit) FreePollDesc(pd);
}

void SetPollDeadline(PollDesc* pd, int64_t when, char mode) {
  G* woken[2] = {nullptr, nullptr};
  int64_t now = when > 0 ? Nanotime() : 0;
  pd->lock.lock();
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
  pd->lock.unlock();
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
  if (pd->rg != nullptr)
    Fatal("runtime: a hibernating read on a connection another goroutine reads");
  pd->rg = g;
  ParkHibernateUnlock(WaitReason::kIOWait, &pd->lock);
}

int PollDescError(const PollDesc* pd, bool write) {
  if (pd->closing) return kErrClosing;
  if ((write ? pd->wd : pd->rd) < 0) return kErrDeadline;
  return 0;
}

}  // namespace greenline::internal
