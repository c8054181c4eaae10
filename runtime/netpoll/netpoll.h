// The netpoller: how goroutines wait for sockets, behind one interface with two backends
// (netpoll/uring.cc, netpoll/epoll.cc). For the runtime's own modules (runtime/net, and the
// composition root that hands a backend to the scheduler), not for applications; the design essay
// is atop netpoll/netpoll.cc, what a backend must do is in netpoll/internal/backend.h.
//
// Glossary.
//   PollDesc      one socket as the poller sees it (Go's pollDesc): the descriptor, the goroutines
//                 parked on it, its deadlines and its reference count. Each backend extends it
//                 with a state of its own that only that backend defines, resets and tears down.
//   WorkerPoller  one per worker (sched/poller.h): where the worker sleeps when it has nothing to
//                 run (io_uring_enter or epoll_wait, timed by the nearest timer), and what it polls
//                 for completed I/O.
//   Netpoll       the backend, chosen once per Run() (NewNetpoll): the scheduler's PollerBackend,
//                 and socket operations that park the calling goroutine (wait reason "IO wait",
//                 running-class) until they can complete.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "greenline/internal/spinlock.h"
#include "greenline/runtime.h"
#include "greenline/thread_annotations.h"
#include "runtime/base/runtime_internal.h"
#include "runtime/sched/poller.h"
#include "runtime/sched/timer.h"

namespace greenline::internal {

struct G;

// Results of the socket operations below that are not errnos: returned negated, like errnos.
inline constexpr int kErrClosing = 100000;   // the descriptor is being closed (net.ErrClosed)
inline constexpr int kErrDeadline = 100001;  // the operation's deadline passed

// The generic part of a socket's poll descriptor. A backend allocates its own subclass (Netpoll::
// NewDesc) and implements the two hooks, which must work even after the backend that opened it has
// stopped: a handle may outlive its Run().
struct PollDesc {
  PollDesc();
  virtual ~PollDesc() = default;  // never called: PollDescs are recycled, never freed
  PollDesc(const PollDesc&) = delete;
  PollDesc& operator=(const PollDesc&) = delete;

  // The last reference went after Close, the descriptor not yet closed: the backend gives back
  // what it holds for this socket (its registration, buffers, descriptors it accepted and nobody
  // took). `live`: the Run() that opened it still runs; if not, its pollers, rings and buffers are
  // gone, and only what belongs to the process (descriptors) may be released. Called once.
  virtual void Teardown(bool live) = 0;
  // Back to its backend's cache, ready for NewDesc (after Teardown, once its owner is gone too).
  virtual void Recycle() = 0;

  // Set by OpenPollDesc, constant until the last reference goes.
  int fd = -1;
  uint64_t run = 0;  // the Run() that opened it (netpoll.cc: a later one treats it as stale)

  // References: the high bits are flags (netpoll.cc), the rest counts holders (API calls in
  // progress and, with io_uring, operations in the kernel). The last Release after Close tears the
  // socket down and closes the descriptor. acq_rel: whoever tears down sees every holder's writes.
  std::atomic<uint64_t> refs{0};

  SpinLock lock;
  bool closing GL_GUARDED_BY(lock) = false;
  G* rg GL_GUARDED_BY(lock) = nullptr;  // the goroutine parked to read (or accept, or connect)
  G* wg GL_GUARDED_BY(lock) = nullptr;  // the goroutine parked to write
  // Deadlines (CLOCK_MONOTONIC ns): 0 none, > 0 armed, -1 passed (every wait fails until reset).
  int64_t rd GL_GUARDED_BY(lock) = 0;
  int64_t wd GL_GUARDED_BY(lock) = 0;
  Timer rtimer;  // fires at rd (its fields are the timer heap's: sched/timer.h)
  Timer wtimer;

  PollDesc* next_free = nullptr;  // in its backend's cache; guarded by the cache's lock
};

// A netpoller backend: the scheduler's PollerBackend (its workers' pollers), and the socket
// operations net/ calls on the running one (CurrentNetpoll). Each operation is called on a
// goroutine holding a reference to `pd` (AcquirePollDesc).
class Netpoll : public PollerBackend {
 public:
  // `reason`: why this backend runs, for the start-up log ("io_uring: available (the default)").
  explicit Netpoll(std::string reason) : reason_(std::move(reason)) {}

  virtual const char* name() const = 0;
  // PollerBackend. Describe: why this backend runs (the start-up log, net::PollerReason).
  // WorkersStarting makes this the running backend (CurrentNetpoll), WorkersStopped makes every
  // PollDesc it opened stale.
  std::string Describe() const final { return reason_; }
  void WorkersStarting() final;
  void WorkersStopped() final;

  // Whether sockets must be in O_NONBLOCK mode (epoll's try-then-park) or blocking (io_uring).
  virtual bool NonBlockingSockets() const { return true; }

  // A PollDesc of this backend's kind, its backend state fresh (from the backend's cache).
  virtual PollDesc* NewDesc() = 0;
  // Registers pd->fd (in the mode NonBlockingSockets says, set by the caller). 0 or -errno.
  virtual int Register(PollDesc* pd) = 0;

  // Socket operations, on a goroutine. Each parks (in "IO wait") until it can finish, and returns
  // bytes (Read: 0 at EOF), a new descriptor (Accept), 0 (Connect) or -errno / -kErrClosing /
  // -kErrDeadline. Write writes everything; *written says how much went out before an error.
  virtual ssize_t Read(PollDesc* pd, void* buf, size_t len) = 0;
  // Read() that does not wait for the socket: -EAGAIN where Read() would (the socket is then being
  // watched). io_uring with no provided buffer free reads into `buf` in the kernel, which parks
  // (with the stack) as Read() does; rare, and over once buffers are back.
  virtual ssize_t TryRead(PollDesc* pd, void* buf, size_t len) = 0;
  // For a hibernating goroutine's Resume wait, after TryRead() said -EAGAIN: returns at once if a
  // Read() now might not park (data, EOF, an error, Close, a passed deadline); otherwise parks the
  // goroutine without its stack (ParkHibernate) until then, and does not return.
  virtual void HibernateRead(PollDesc* pd) = 0;
  virtual int Write(PollDesc* pd, const void* buf, size_t len, size_t* written) = 0;
  virtual int Accept(PollDesc* pd, sockaddr* addr, socklen_t* addrlen) = 0;
  virtual int Connect(PollDesc* pd, const sockaddr* addr, socklen_t addrlen) = 0;
  // Close has begun (closing is set, parked goroutines are woken): cancel what is in the kernel.
  virtual void Evict(PollDesc* /*pd*/) {}
  // A deadline passed (pd->rd or wd is -1 now; pd->lock not held): cancel a one-shot operation
  // on that side, whose goroutine returns kErrDeadline once it completes.
  virtual void Interrupt(PollDesc* /*pd*/, bool /*write*/) {}

 private:
  const std::string reason_;
};

// The running runtime's backend (between its workers starting and stopping), or nullptr.
Netpoll* CurrentNetpoll();

// Chooses and builds the backend for `kind` (see netpoll.cc: an ordered list of candidates, each
// saying why it cannot run). kAuto: GREENLINE_POLLER, else the first candidate that can run. A
// fatal error if a backend asked for by name cannot run. Called by Run() before workers start.
std::unique_ptr<Netpoll> NewNetpoll(PollerKind kind);

// ---- PollDesc lifetime -----------------------------------------------------------------------

// A PollDesc has two lifetimes: its descriptor's, counted by references, and its owner's (the
// net::Conn or Listener). The descriptor is closed when the last reference goes after Close; the
// PollDesc is recycled once that has happened and its owner is gone, whichever comes last.
//
// A fresh PollDesc for `fd` (PollDescs are never freed: a late timer callback or a stale epoll
// event never touches freed memory), holding the owner's reference, registered with the running
// backend. nullptr with *error = -errno on failure (fd is then not closed).
PollDesc* OpenPollDesc(int fd, int* error);
// Takes a reference for an operation; false once Close has begun, or when pd is stale (opened by
// a Run() that has ended: only Close works on it).
bool AcquirePollDesc(PollDesc* pd);
// Drops one. The last one after Close tears pd down and closes the descriptor.
void ReleasePollDesc(PollDesc* pd);
// Close: false if it had begun already. Wakes parked goroutines (kErrClosing) and cancels what is
// in the kernel. The owner then releases its own reference.
bool ClosePollDesc(PollDesc* pd);
// The owner is gone (after Close and its Release): pd is recycled once the descriptor is closed.
void OrphanPollDesc(PollDesc* pd);

// Deadlines: `when` CLOCK_MONOTONIC ns, 0 for none; mode 'r', 'w' or both ('r' + 'w' = 'b').
void SetPollDeadline(PollDesc* pd, int64_t when, char mode);

}  // namespace greenline::internal
