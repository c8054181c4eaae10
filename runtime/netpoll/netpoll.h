// The netpoller: how goroutines wait for sockets, behind one interface with two backends
// (netpoll/uring.cc, netpoll/epoll.cc). For the runtime's own modules (runtime/net), not for
// applications; the design essay is atop netpoll/netpoll.cc.
//
// Glossary.
//   PollDesc      one socket as the poller sees it (Go's pollDesc): the descriptor, the goroutines
//                 parked on it, its deadlines, its reference count, and the backend's state.
//   WorkerPoller  one per worker: where the worker sleeps when it has nothing to run
//   (io_uring_enter
//                 or epoll_wait, timed by the nearest timer), and what it polls for completed I/O.
//                 It replaces a futex parker: Wait(deadline) / Wake() are the scheduler's only
//                 calls.
//   Netpoll       the backend, chosen once per Run(): socket operations that park the calling
//                 goroutine (wait reason "IO wait", running-class) until they can complete.
#pragma once

#include <sys/socket.h>
#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "runtime/base/spinlock.h"
#include "runtime/sched/runtime.h"
#include "runtime/sched/timer.h"

namespace greenline::internal {

struct G;
struct Worker;
class WorkerPoller;

// Results of the socket operations below that are not errnos: returned negated, like errnos.
inline constexpr int kErrClosing = 100000;   // the descriptor is being closed (net.ErrClosed)
inline constexpr int kErrDeadline = 100001;  // the operation's deadline passed

// One received chunk held for a reader (io_uring provided buffers).
struct RecvChunk {
  WorkerPoller* ring = nullptr;  // whose buffer ring the buffer goes back to
  uint16_t bid = 0;              // buffer id there
  uint32_t off = 0;              // bytes of it already consumed
  uint32_t len = 0;
};

// A one-shot io_uring operation a goroutine waits for (uring.cc); lives on its stack.
struct UringOp;

struct PollDesc {
  // Set by Open, constant until the last reference goes.
  int fd = -1;
  // Incarnation: bumped on every reuse, so an epoll event fetched for an earlier socket that had
  // this PollDesc is recognised and dropped (Go's fdseq in the tagged pointer).
  uint16_t seq = 0;
  WorkerPoller* home = nullptr;  // the worker poller it is registered with (epoll), or nullptr
  uint64_t run = 0;  // the Run() that opened it (netpoll.cc: a later one treats it as stale)

  // References: the high bit says "closing", the rest counts holders (API calls in progress and,
  // with io_uring, operations in the kernel). The last Release after Close destroys it: closes the
  // descriptor and returns the PollDesc to the cache. acq_rel: whoever destroys sees every
  // holder's writes.
  std::atomic<uint64_t> refs{0};

  SpinLock lock;  // guards everything below
  bool closing = false;
  G* rg = nullptr;  // the goroutine parked to read (or accept, or connect)
  G* wg = nullptr;  // the goroutine parked to write
  // epoll: an edge arrived that no parked goroutine took; the next wait returns at once.
  bool rready = false;
  bool wready = false;
  // Deadlines (CLOCK_MONOTONIC ns): 0 none, > 0 armed, -1 passed (every wait fails until reset).
  int64_t rd = 0;
  int64_t wd = 0;
  Timer rtimer;
  Timer wtimer;

  // io_uring (uring.cc). A multishot recv or accept lives on one worker's ring while armed, and
  // holds a reference; what it delivers waits here for the goroutine. A one-shot operation (send,
  // connect, a recv into the caller's buffer) is announced in wop/rop so Close and deadlines can
  // cancel it: its goroutine resumes only on its completion, never before (its buffer is in use).
  WorkerPoller* recv_home = nullptr;
  bool recv_armed = false;
  bool recv_nobufs = false;  // the multishot recv ended for want of buffers: read into the caller's
  bool recv_eof = false;
  int recv_error = 0;   // negative errno, sticky
  uint32_t unread = 0;  // bytes in chunks
  std::vector<RecvChunk> chunks;
  size_t chunk_head = 0;
  WorkerPoller* accept_home = nullptr;
  bool accept_armed = false;
  int accept_error = 0;       // negative errno, reported once
  std::vector<int> accepted;  // descriptors a multishot accept delivered
  size_t accept_head = 0;
  UringOp* rop = nullptr;
  UringOp* wop = nullptr;

  PollDesc* next_free = nullptr;  // in the cache; guarded by the cache's lock
};

// The handshake between a poller's Wait and Wake (netpoll.cc's essay): a token and a `sleeping`
// flag, both seq_cst, so a wakeup is never lost and the eventfd is written only when needed.
class WakeGate {
 public:
  // The sleeper, before it sleeps: false if a Wake came first (then do not sleep).
  bool BeginSleep() {
    sleeping_.store(true, std::memory_order_seq_cst);
    if (token_.exchange(0, std::memory_order_seq_cst) == 0) return true;
    sleeping_.store(false, std::memory_order_relaxed);
    return false;
  }
  // The sleeper, once awake.
  void EndSleep() {
    sleeping_.store(false, std::memory_order_relaxed);
    token_.exchange(0, std::memory_order_acquire);
  }
  // Any thread: true if the sleeper must be kicked (it sleeps, or is about to).
  bool Wake() {
    return token_.exchange(1, std::memory_order_seq_cst) == 0 &&
           sleeping_.load(std::memory_order_seq_cst);
  }

 private:
  std::atomic<uint32_t> token_{0};
  std::atomic<bool> sleeping_{false};
};

// A worker's side of the poller. All calls but Wake() come from the owning worker's thread.
class WorkerPoller {
 public:
  virtual ~WorkerPoller() = default;
  // Called once on the worker's own thread before it runs anything.
  virtual void Start() {}
  // Called on the worker's thread when it stops: gives up whatever is still in the kernel.
  virtual void Stop() {}
  // Sleeps until Wake(), I/O, or CLOCK_MONOTONIC reaching `deadline_ns` (0: none); handles what
  // arrived (readying goroutines onto this worker's queue). May return spuriously.
  virtual void Wait(int64_t deadline_ns) = 0;
  // Without sleeping: submits queued work and handles what has arrived. True if it readied any.
  virtual bool Poll() = 0;
  // Cheap test: something to submit or reap (Poll would do work).
  virtual bool Pending() const = 0;
  // Any thread: makes a Wait that is sleeping (or about to) return.
  virtual void Wake() = 0;
};

class Netpoll {
 public:
  virtual ~Netpoll() = default;
  virtual const char* name() const = 0;
  virtual std::unique_ptr<WorkerPoller> NewWorkerPoller(Worker* w) = 0;
  // Whether sockets must be in O_NONBLOCK mode (epoll's try-then-park) or blocking (io_uring).
  virtual bool NonBlockingSockets() const { return true; }

  // Registers pd->fd (in the mode NonBlockingSockets says, set by the caller). 0 or -errno.
  virtual int Open(PollDesc* pd) = 0;
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
  // Close has begun (closing is set): wake parked goroutines, cancel what is in the kernel.
  virtual void Evict(PollDesc* pd) = 0;
  // The last reference went: deregister (the descriptor is closed after).
  virtual void Deregister(PollDesc* pd) = 0;
  // A deadline passed (pd->rd or wd is -1 now; pd->lock not held): cancel a one-shot operation
  // on that side, whose goroutine returns kErrDeadline once it completes.
  virtual void Interrupt(PollDesc* /*pd*/, bool /*write*/) {}
};

// The running runtime's backend (set by Run before workers start), and why it was chosen.
Netpoll* CurrentNetpoll();
const std::string& NetpollReason();

// Chooses and builds the backend for `kind` (kAuto: GREENLINE_POLLER, else io_uring if a ring
// can be set up, else epoll). Fatal error if a forced backend cannot run. Run() calls it.
std::unique_ptr<Netpoll> NewNetpoll(PollerKind kind, std::string* reason);
void SetCurrentNetpoll(Netpoll* np, std::string reason);

std::unique_ptr<Netpoll> NewEpollNetpoll();
// nullptr with *error set (-errno of io_uring_setup) when no ring can be set up.
std::unique_ptr<Netpoll> NewUringNetpoll(int* error);

// ---- PollDesc lifetime -----------------------------------------------------------------------

// A PollDesc has two lifetimes: its descriptor's, counted by references, and its owner's (the
// net::Conn or Listener). The descriptor is closed when the last reference goes after Close; the
// PollDesc is recycled once that has happened and its owner is gone, whichever comes last.
//
// A fresh PollDesc for `fd` (from a process-wide cache: PollDescs are never freed, so a late timer
// callback or a stale epoll event never touches freed memory), holding the owner's reference,
// registered with the backend. nullptr with *error = -errno on failure (fd is then not closed).
PollDesc* OpenPollDesc(int fd, int* error);
// Takes a reference for an operation; false once Close has begun.
bool AcquirePollDesc(PollDesc* pd);
// Drops one. The last one after Close deregisters and closes the descriptor.
void ReleasePollDesc(PollDesc* pd);
// Close: false if it had begun already. Wakes parked goroutines (kErrClosing) and cancels what is
// in the kernel. The owner then releases its own reference.
bool ClosePollDesc(PollDesc* pd);
// The owner is gone (after Close and its Release): pd is recycled once the descriptor is closed.
void OrphanPollDesc(PollDesc* pd);

// Deadlines: `when` CLOCK_MONOTONIC ns, 0 for none; mode 'r', 'w' or both ('r' + 'w' = 'b').
void SetPollDeadline(PollDesc* pd, int64_t when, char mode);

// For backends: parks the calling goroutine as pd's reader (write=false) or writer until readied.
// Requires pd->lock held; releases it. Checks nothing: callers test closing / deadlines first.
void ParkOnPollDesc(PollDesc* pd, bool write);
// The same for a hibernating goroutine's Resume wait (ParkHibernate): never returns.
[[noreturn]] void HibernateOnPollDesc(PollDesc* pd);
// For backends, with pd->lock held: the error a wait must return now (closing, deadline), or 0.
int PollDescError(const PollDesc* pd, bool write);

}  // namespace greenline::internal
