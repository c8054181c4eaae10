// The io_uring backend: one ring per worker, driven only by its worker.
//
// Rings. Each worker sets up its own ring on its own thread (IORING_SETUP_SINGLE_ISSUER, with
// DEFER_TASKRUN: completions are posted only when the worker enters the kernel to look for them,
// so the kernel never interrupts a running worker to run io_uring task work; kernels without
// these flags get a plain ring), and registers the ring's descriptor with that thread, so
// io_uring_enter does not look it up in the file table each time. Goroutines queue SQEs on the ring
// of the worker they run on; the worker submits them in batches: when it runs out of goroutines
// (submit-and-wait, timed by its nearest timer), and every 61st schedule while I/O is in flight.
// Other threads never touch a ring: they wake its worker through an eventfd that the ring always
// has a read armed on, and they hand it cancellations through a locked queue (RequestCancel).
//
// Reads: multishot recv into a provided-buffer ring (one per worker ring, registered with
// io_uring_register_buf_ring: liburing 2.3 has no io_uring_setup_buf_ring). A connection's recv
// is armed once, on the ring of the worker whose goroutine first reads, and delivers chunks into
// the socket's UringDesc; Read copies out of them and gives the buffers back. An idle connection
// pins no buffer of its own (and, with a hibernating goroutine, no stack either). Backpressure:
// when a connection holds more than kMaxUnreadBytes (or kMaxUnreadChunks) not yet read, its recv is
// cancelled, so the socket's receive buffer fills and TCP pushes back on the sender; Read re-arms
// it once the backlog is consumed. The bound is soft: a multishot recv completes up to a few dozen
// buffers per wakeup, and what the kernel delivered before the cancel took effect is kept (~270 KB
// when a 1 MiB burst hits a reader that stopped:
// NetTest.AConnectionThatStopsReadingLeavesItsDataInTheKernel), but no connection can drain the
// shared buffer ring (4 MiB per worker). When the ring has no free buffer the multishot recv ends
// with ENOBUFS; the next Read then reads into the caller's own buffer (a one-shot recv) and re-arms
// after.
//
// Sends: a goroutine that writes with nothing else runnable on its worker calls send() with
// MSG_DONTWAIT itself (there is no batch for its SQE to join, and the system call costs less than
// the SQE, its CQE and a park); otherwise, or once the socket's buffer is full, the send goes
// through the ring like the other one-shot operations.
//
// Other operations (send, connect, that fallback recv) are one-shot and use the caller's memory:
// the goroutine parks until the completion arrives, and nothing else may resume it: Close and
// deadlines cancel the operation instead (IORING_OP_ASYNC_CANCEL on the ring that holds it), and
// the goroutine sees the cancellation in the completion. So buffers and stacks stay valid until
// the kernel is done with them, even across cancellation; a goroutine never migrates while it
// waits for a completion, and if a multishot recv lives on another worker's ring, that worker
// readies the reader (onto its own queue: the goroutine follows its connection).
//
// Accept: multishot accept, its descriptors queued in the PollDesc (cancelled past kMaxAccepted,
// re-armed when taken), re-armed when it stops on an error (EMFILE: the listener's backoff in
// net.cc runs, then Accept re-arms).
//
// Stopping: each worker cancels everything on its ring and reaps until nothing is in flight
// before the ring goes (goroutine stacks are still mapped then).
//
// A socket's io_uring state (UringDesc: armed operations, delivered chunks and descriptors, the
// one-shot operations in flight) is this file's alone; the generic PollDesc knows nothing of it.
//
// user_data: a pointer (UringDesc or UringOp, 8-aligned) with a tag in its low 3 bits.
#include <string>

#include "runtime/netpoll/netpoll.h"

#if GREENLINE_HAVE_URING
#include <liburing.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "greenline/internal/spinlock.h"
#include "greenline/log.h"
#include "runtime/base/fatal.h"
#include "runtime/netpoll/internal/backend.h"
#include "runtime/sched/park.h"
#include "runtime/sched/poller.h"

#if GREENLINE_TSAN
// liburing maps its rings with raw system calls, which TSan does not see: a ring mapped where an
// earlier thread's ring was unmapped would look like that thread's memory (false races). Mapping
// the same pages again, in place, through libc's mmap (which TSan intercepts) resets that.
namespace {
void RemapForTsan(io_uring* ring) {
  auto again = [&](void* addr, size_t size, off_t offset) {
    mmap(addr, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED | MAP_POPULATE, ring->ring_fd,
         offset);
  };
  again(ring->sq.ring_ptr, ring->sq.ring_sz, IORING_OFF_SQ_RING);
  if (ring->cq.ring_ptr != ring->sq.ring_ptr) {
    again(ring->cq.ring_ptr, ring->cq.ring_sz, IORING_OFF_CQ_RING);
  }
  again(ring->sq.sqes, sizeof(io_uring_sqe) * ring->sq.ring_entries, IORING_OFF_SQES);
}
}  // namespace
#endif

namespace greenline::internal {
namespace {

class UringWorkerPoller;

// A one-shot operation a goroutine waits for (send, connect, a recv into the caller's buffer);
// lives on that goroutine's stack until its completion.
struct UringOp {
  G* g = nullptr;
  UringWorkerPoller* ring = nullptr;  // where it was queued
  int32_t res = 0;
};

// One received chunk held for a reader: a provided buffer of `ring`.
struct RecvChunk {
  UringWorkerPoller* ring = nullptr;  // whose buffer ring the buffer goes back to
  uint16_t bid = 0;                   // buffer id there
  uint32_t off = 0;                   // bytes of it already consumed
  uint32_t len = 0;
};

// A socket as the io_uring backend sees it. A multishot recv or accept lives on one worker's ring
// while armed, and holds a reference; what it delivers waits here for the goroutine. A one-shot
// operation is announced in rop/wop so Close and deadlines can cancel it: its goroutine resumes
// only on its completion, never before (its buffer is in use).
struct UringDesc final : BackendDesc<UringDesc> {
  UringWorkerPoller* recv_home GL_GUARDED_BY(lock) = nullptr;
  bool recv_armed GL_GUARDED_BY(lock) = false;
  // The multishot recv ended for want of buffers: read into the caller's.
  bool recv_nobufs GL_GUARDED_BY(lock) = false;
  bool recv_eof GL_GUARDED_BY(lock) = false;
  int recv_error GL_GUARDED_BY(lock) = 0;   // negative errno, sticky
  uint32_t unread GL_GUARDED_BY(lock) = 0;  // bytes in chunks
  std::vector<RecvChunk> chunks GL_GUARDED_BY(lock);
  size_t chunk_head GL_GUARDED_BY(lock) = 0;
  UringWorkerPoller* accept_home GL_GUARDED_BY(lock) = nullptr;
  bool accept_armed GL_GUARDED_BY(lock) = false;
  int accept_error GL_GUARDED_BY(lock) = 0;       // negative errno, reported once
  std::vector<int> accepted GL_GUARDED_BY(lock);  // descriptors a multishot accept delivered
  size_t accept_head GL_GUARDED_BY(lock) = 0;
  UringOp* rop GL_GUARDED_BY(lock) = nullptr;
  UringOp* wop GL_GUARDED_BY(lock) = nullptr;

  // Back to the state of a socket never used.
  void Reset() GL_REQUIRES(lock);
  void Teardown(bool live) override;
};

UringDesc* Desc(PollDesc* pd) { return UringDesc::Of(pd); }

constexpr unsigned kRingEntries = 1024;
constexpr unsigned kBufCount = 1024;  // provided buffers per ring (power of two)
constexpr unsigned kBufSize = 4096;
constexpr uint16_t kBufGroup = 1;
constexpr uint32_t kMaxUnreadBytes = 64 * 1024;
constexpr size_t kMaxUnreadChunks = 16;
constexpr size_t kMaxAccepted = 128;
constexpr int kMaxDirectSends = 64;

enum Tag : uint64_t {
  kTagWake = 1,    // the eventfd read
  kTagRecv = 2,    // UringDesc*: its multishot recv
  kTagAccept = 3,  // UringDesc*: its multishot accept
  kTagOp = 4,      // UringOp*
  kTagIgnore = 5,  // cancel requests' own completions
};
constexpr uint64_t kTagMask = 7;

uint64_t Pack(const void* p, Tag t) { return reinterpret_cast<uint64_t>(p) | t; }

unsigned SetupFlags() {
  return IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_SUBMIT_ALL;
}

// Sets up a ring, dropping flags an older kernel refuses. 0 or -errno.
int SetupRing(io_uring* ring, unsigned* flags_used) {
  io_uring_params p{};
  p.flags = SetupFlags();
  int rc = io_uring_queue_init_params(kRingEntries, ring, &p);
  if (rc == -EINVAL) {
    p = io_uring_params{};
    p.flags = IORING_SETUP_COOP_TASKRUN;
    rc = io_uring_queue_init_params(kRingEntries, ring, &p);
  }
  if (rc == -EINVAL) {
    p = io_uring_params{};
    rc = io_uring_queue_init_params(kRingEntries, ring, &p);
  }
  if (rc == 0 && flags_used != nullptr) *flags_used = p.flags;
  return rc;
}

class UringWorkerPoller final : public WorkerPoller {
 public:
  UringWorkerPoller() {
    // Blocking: io_uring completes a read of a non-blocking file with EAGAIN instead of waiting.
    // (Writes never block: the counter would have to reach 2^64 - 1.)
    wakefd_ = eventfd(0, EFD_CLOEXEC);
    if (wakefd_ < 0) Fatalf("runtime: eventfd: %s", std::strerror(errno));
  }
  // Buffers are unmapped here, not in Stop(): workers stop one by one, and a goroutine still
  // running on another worker (or a blocking-pool job closing a socket) may copy out of or
  // recycle into this ring's buffers until every worker and the pool have stopped.
  ~UringWorkerPoller() override {
    close(wakefd_);
    if (br_ != nullptr) munmap(br_, sizeof(io_uring_buf) * kBufCount);
    if (buffers_ != nullptr) munmap(buffers_, size_t{kBufCount} * kBufSize);
  }

  void Start() override {
    int rc = SetupRing(&ring_, nullptr);
    if (rc < 0) Fatalf("runtime: io_uring_queue_init on a worker: %s", std::strerror(-rc));
    // The ring's own descriptor, registered with this thread: each io_uring_enter then skips
    // looking it up in the file table (5.18+; where the kernel refuses, nothing changes).
    io_uring_register_ring_fd(&ring_);
#if GREENLINE_TSAN
    RemapForTsan(&ring_);
#endif
    size_t bytes = sizeof(io_uring_buf) * kBufCount;
    void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) Fatalf("runtime: mmap buffer ring: %s", std::strerror(errno));
    br_ = static_cast<io_uring_buf_ring*>(mem);
    io_uring_buf_ring_init(br_);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<uint64_t>(br_);
    reg.ring_entries = kBufCount;
    reg.bgid = kBufGroup;
    rc = io_uring_register_buf_ring(&ring_, &reg, 0);
    if (rc != 0) Fatalf("runtime: io_uring_register_buf_ring: %s", std::strerror(-rc));
    buffers_ = static_cast<char*>(mmap(nullptr, size_t{kBufCount} * kBufSize,
                                       PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    if (buffers_ == MAP_FAILED) Fatalf("runtime: mmap buffers: %s", std::strerror(errno));
    for (unsigned i = 0; i < kBufCount; ++i) {
      io_uring_buf_ring_add(br_, buffers_ + size_t{i} * kBufSize, kBufSize,
                            static_cast<uint16_t>(i), io_uring_buf_ring_mask(kBufCount),
                            static_cast<int>(i));
    }
    io_uring_buf_ring_advance(br_, kBufCount);
    started_ = true;
    ArmWake();
  }

  void Stop() override {
    if (!started_) return;
    // Cancel everything and reap until nothing is in flight: the kernel must be done with every
    // buffer and stack before they go.
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_cancel64(sqe, 0, IORING_ASYNC_CANCEL_ANY);
    io_uring_sqe_set_data64(sqe, kTagIgnore);
    stopping_ = true;
    int64_t give_up = Nanotime() + 2'000'000'000;
    while (inflight_ > 0 && Nanotime() < give_up) {
      __kernel_timespec ts{0, 10'000'000};
      io_uring_cqe* cqe = nullptr;
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
      Reap();
    }
    if (inflight_ > 0) {
      Logf(LogLevel::kWarn,
           "runtime: io_uring: %lld operations still in flight after 2 s at shutdown",
           static_cast<long long>(inflight_));
    }
    io_uring_queue_exit(&ring_);
    started_ = false;
  }

  void Wait(int64_t deadline_ns) override {
    if (!gate_.BeginSleep()) {
      Poll();
      return;
    }
    DrainRemote();
    io_uring_cqe* cqe = nullptr;
    if (deadline_ns > 0) {
      int64_t d = deadline_ns - Nanotime();
      if (d < 0) d = 0;
      __kernel_timespec ts{d / 1'000'000'000, d % 1'000'000'000};
      io_uring_submit_and_wait_timeout(&ring_, &cqe, 1, &ts, nullptr);
    } else {
      io_uring_submit_and_wait(&ring_, 1);
    }
    gate_.EndSleep();
    Reap();
  }

  bool Poll() override {
    DrainRemote();
    if (io_uring_sq_ready(&ring_) > 0 || inflight_ > 0) io_uring_submit_and_get_events(&ring_);
    return Reap();
  }

  bool Pending() const override {
    return inflight_ > 1 || remote_pending_.load(std::memory_order_relaxed) ||
           io_uring_sq_ready(&ring_) > 0;
  }

  void Wake() override {
    if (gate_.Wake()) {
      uint64_t one = 1;
      ssize_t rc = write(wakefd_, &one, sizeof one);
      static_cast<void>(rc);
    }
  }

  // ---- for the backend, on this worker's thread ----

  io_uring_sqe* GetSqe() {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    while (sqe == nullptr) {
      io_uring_submit(&ring_);
      sqe = io_uring_get_sqe(&ring_);
    }
    return sqe;
  }
  void Started() { ++inflight_; }  // an operation that will post a final completion

  // Whether a goroutine may send with a system call of its own rather than through the ring:
  // at most kMaxDirectSends between two looks at the ring. A goroutine that writes to a fast
  // reader in a loop never parks on the direct path, and with DEFER_TASKRUN the completions of
  // every other socket on this ring wait until the worker enters the kernel: the ring path parks
  // it, and the worker reaps on its way back (cooperative scheduling: this is its yield point).
  bool TakeDirectSend() { return ++direct_sends_ <= kMaxDirectSends; }

  void ArmRecv(UringDesc* pd) {
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_recv_multishot(sqe, pd->fd, nullptr, 0, 0);
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = kBufGroup;
    io_uring_sqe_set_data64(sqe, Pack(pd, kTagRecv));
    Started();
  }
  void ArmAccept(UringDesc* pd) {
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_multishot_accept(sqe, pd->fd, nullptr, nullptr, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, Pack(pd, kTagAccept));
    Started();
  }
  void Cancel(uint64_t user_data) {
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_cancel64(sqe, user_data, 0);
    io_uring_sqe_set_data64(sqe, kTagIgnore);
  }

  // Any thread: cancels the operation with this user_data on this ring.
  void RequestCancel(uint64_t user_data) {
    if (CurrentWorkerPoller() == this && started_) {
      Cancel(user_data);
      return;
    }
    {
      SpinLockGuard guard(remote_lock_);
      remote_.push_back(user_data);
      remote_pending_.store(true, std::memory_order_release);
    }
    Wake();
  }

  // Any thread: gives a provided buffer back to this ring.
  void Recycle(uint16_t bid) {
    SpinLockGuard guard(br_lock_);
    io_uring_buf_ring_add(br_, buffers_ + size_t{bid} * kBufSize, kBufSize, bid,
                          io_uring_buf_ring_mask(kBufCount), 0);
    io_uring_buf_ring_advance(br_, 1);
  }
  const char* Buffer(uint16_t bid) const { return buffers_ + size_t{bid} * kBufSize; }

 private:
  void ArmWake() {
    io_uring_sqe* sqe = GetSqe();
    io_uring_prep_read(sqe, wakefd_, &wake_value_, sizeof wake_value_, 0);
    io_uring_sqe_set_data64(sqe, kTagWake);
    Started();
  }

  void DrainRemote() {
    if (!remote_pending_.load(std::memory_order_acquire)) return;
    std::vector<uint64_t> todo;
    {
      SpinLockGuard guard(remote_lock_);
      todo.swap(remote_);
      remote_pending_.store(false, std::memory_order_relaxed);
    }
    for (uint64_t ud : todo) Cancel(ud);
  }

  bool Reap();
  // Each returns whether it readied a goroutine.
  bool OnRecv(UringDesc* pd, const io_uring_cqe* cqe);
  bool OnAccept(UringDesc* pd, const io_uring_cqe* cqe);

  io_uring ring_{};
  io_uring_buf_ring* br_ = nullptr;
  char* buffers_ = nullptr;
  SpinLock br_lock_;  // guards adds to br_ (any thread recycles): io_uring_buf_ring_add/advance
  int wakefd_ = -1;
  uint64_t wake_value_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  int64_t inflight_ = 0;  // operations with a final completion to come; owned by the worker
  int direct_sends_ = 0;  // since the worker last reaped its ring
  WakeGate gate_;
  SpinLock remote_lock_;
  std::vector<uint64_t> remote_ GL_GUARDED_BY(remote_lock_);  // cancellations other threads asked
  std::atomic<bool> remote_pending_{false};
};

UringWorkerPoller* CurrentRing() {
  WorkerPoller* p = CurrentWorkerPoller();
  if (p == nullptr) Fatal("runtime: io_uring operation outside a worker");
  return static_cast<UringWorkerPoller*>(p);
}

bool UringWorkerPoller::Reap() {
  direct_sends_ = 0;
  bool readied = false;
  io_uring_cqe* cqe;
  unsigned head;
  unsigned seen = 0;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    ++seen;
    uint64_t ud = io_uring_cqe_get_data64(cqe);
    uint64_t tag = ud & kTagMask;
    void* p = reinterpret_cast<void*>(ud & ~kTagMask);
    bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
    switch (tag) {
      case kTagWake:
        --inflight_;
        if (!stopping_) ArmWake();
        break;
      case kTagRecv:
        readied |= OnRecv(static_cast<UringDesc*>(p), cqe);
        if (!more) --inflight_;
        break;
      case kTagAccept:
        readied |= OnAccept(static_cast<UringDesc*>(p), cqe);
        if (!more) --inflight_;
        break;
      case kTagOp: {
        auto* op = static_cast<UringOp*>(p);
        --inflight_;
        op->res = cqe->res;
        G* g = op->g;  // the goroutine parked before its SQE could even be submitted
        Ready(g);
        readied = true;
        break;
      }
      default:
        break;
    }
  }
  io_uring_cq_advance(&ring_, seen);
  return readied;
}

bool UringWorkerPoller::OnRecv(UringDesc* pd, const io_uring_cqe* cqe) {
  bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  bool cancel = false;
  pd->lock.lock();
  if (cqe->res > 0) {
    RecvChunk c;
    c.ring = this;
    c.bid = static_cast<uint16_t>(cqe->flags >> IORING_CQE_BUFFER_SHIFT);
    c.len = static_cast<uint32_t>(cqe->res);
    pd->chunks.push_back(c);
    pd->unread += c.len;
    // Backpressure: stop pulling data off a socket whose goroutine is not keeping up.
    cancel = more && (pd->unread > kMaxUnreadBytes ||
                      pd->chunks.size() - pd->chunk_head > kMaxUnreadChunks);
  } else if (cqe->res == 0) {
    pd->recv_eof = true;
  } else if (cqe->res == -ENOBUFS) {
    pd->recv_nobufs = true;
  } else if (cqe->res != -ECANCELED) {
    pd->recv_error = cqe->res;
  }
  if (!more) pd->recv_armed = false;
  G* g = pd->rg;
  pd->rg = nullptr;
  pd->lock.unlock();
  if (cancel) Cancel(Pack(pd, kTagRecv));
  if (g != nullptr) Ready(g);
  if (!more) ReleasePollDesc(pd);  // the armed recv's reference
  return g != nullptr;
}

bool UringWorkerPoller::OnAccept(UringDesc* pd, const io_uring_cqe* cqe) {
  bool more = (cqe->flags & IORING_CQE_F_MORE) != 0;
  bool cancel = false;
  pd->lock.lock();
  if (cqe->res >= 0) {
    if (pd->closing) {
      close(cqe->res);
    } else {
      pd->accepted.push_back(cqe->res);
      cancel = more && pd->accepted.size() - pd->accept_head >= kMaxAccepted;
    }
  } else if (cqe->res != -ECANCELED) {
    pd->accept_error = cqe->res;
  }
  if (!more) pd->accept_armed = false;
  G* g = pd->rg;
  pd->rg = nullptr;
  pd->lock.unlock();
  if (cancel) Cancel(Pack(pd, kTagAccept));
  if (g != nullptr) Ready(g);
  if (!more) ReleasePollDesc(pd);
  return g != nullptr;
}

class UringNetpoll final : public Netpoll {
 public:
  using Netpoll::Netpoll;

  const char* name() const override { return "io_uring"; }
  // The kernel waits for us: a connect on a non-blocking socket would complete with EINPROGRESS.
  bool NonBlockingSockets() const override { return false; }

  WorkerPoller* NewWorkerPoller(int worker) override {
    if (static_cast<size_t>(worker) != pollers_.size()) {
      Fatal("runtime: io_uring: pollers out of order");
    }
    pollers_.push_back(std::make_unique<UringWorkerPoller>());
    return pollers_.back().get();
  }

  PollDesc* NewDesc() override {
    UringDesc* pd = UringDesc::Cache().Get();
    SpinLockGuard guard(pd->lock);
    pd->Reset();
    return pd;
  }

  // Nothing to register: an operation names the descriptor itself.
  int Register(PollDesc*) override { return 0; }

  void Evict(PollDesc* p) override {
    UringDesc* pd = Desc(p);
    struct Cancel {
      UringWorkerPoller* ring;
      uint64_t ud;
    } todo[4];
    int n = 0;
    {
      SpinLockGuard guard(pd->lock);
      if (pd->recv_armed) todo[n++] = {pd->recv_home, Pack(pd, kTagRecv)};
      if (pd->accept_armed) todo[n++] = {pd->accept_home, Pack(pd, kTagAccept)};
      if (pd->rop != nullptr) todo[n++] = {pd->rop->ring, Pack(pd->rop, kTagOp)};
      if (pd->wop != nullptr) todo[n++] = {pd->wop->ring, Pack(pd->wop, kTagOp)};
    }
    for (int i = 0; i < n; ++i) todo[i].ring->RequestCancel(todo[i].ud);
  }

  void Interrupt(PollDesc* p, bool write) override {
    UringDesc* pd = Desc(p);
    UringWorkerPoller* ring = nullptr;
    uint64_t ud = 0;
    {
      SpinLockGuard guard(pd->lock);
      if (UringOp* op = write ? pd->wop : pd->rop) {
        ring = op->ring;
        ud = Pack(op, kTagOp);
      }
    }
    if (ring != nullptr) ring->RequestCancel(ud);
  }

  ssize_t Read(PollDesc* pd, void* buf, size_t len) override {
    return DoRead(Desc(pd), buf, len, /*park=*/true);
  }

  ssize_t TryRead(PollDesc* pd, void* buf, size_t len) override {
    return DoRead(Desc(pd), buf, len, /*park=*/false);
  }

  void HibernateRead(PollDesc* p) override {
    UringDesc* pd = Desc(p);
    pd->lock.lock();
    if (PollDescError(pd, false) != 0 || pd->chunk_head < pd->chunks.size() || pd->recv_eof ||
        pd->recv_error != 0 || (pd->recv_nobufs && !pd->recv_armed) ||
        !ArmOnce(pd, /*accept=*/false)) {  // not armed: closing, which the next read says
      pd->lock.unlock();
      return;
    }
    HibernateOnPollDesc(pd);  // releases the lock
  }

  int Write(PollDesc* p, const void* buf, size_t len, size_t* written) override {
    UringDesc* pd = Desc(p);
    const char* out = static_cast<const char*>(buf);
    size_t done = 0;
    // A lone writer sends at once: with nothing else runnable on this worker there is no batch to
    // join, and a non-blocking send() costs less than the trip through the ring (an SQE, the
    // io_uring_enter that submits it, a CQE, a park and a resume). When other goroutines are
    // runnable (a chat line fanned out to a room's writers), the send goes into the ring with
    // theirs: one io_uring_enter for the lot is cheaper than a system call each (measured:
    // sending at once always cost chat about 20% more CPU per delivery). Only a full socket buffer
    // makes the ring wait for room, and every kMaxDirectSends-th send goes through it so that the
    // worker reaps its other sockets' completions (TakeDirectSend). Writers of a socket go one at
    // a time (net.cc): nothing of ours is queued ahead of this send.
    UringWorkerPoller* ring = CurrentRing();
    while (done < len && !CurrentWorkerHasRunnable() && ring->TakeDirectSend()) {
      {
        SpinLockGuard guard(pd->lock);
        if (int err = PollDescError(pd, true)) {
          *written = done;
          return -err;
        }
      }
      ssize_t n = send(pd->fd, out + done, len - done, MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n > 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno != EAGAIN) {
        *written = done;
        return -errno;
      }
      break;
    }
    while (done < len) {
      ssize_t n = OneShot(pd, true, [&](io_uring_sqe* sqe) {
        io_uring_prep_send(sqe, pd->fd, out + done, len - done, MSG_NOSIGNAL);
      });
      if (n > 0) {
        done += static_cast<size_t>(n);
      } else if (n == -ECANCELED || n == -EINTR || n == -EAGAIN) {
        continue;  // OneShot returned the closing / deadline error if that was why
      } else {
        *written = done;
        return n == 0 ? -EPIPE : static_cast<int>(n);
      }
    }
    *written = done;
    return 0;
  }

  int Accept(PollDesc* p, sockaddr* addr, socklen_t* addrlen) override {
    UringDesc* pd = Desc(p);
    for (;;) {
      pd->lock.lock();
      if (int err = PollDescError(pd, false)) {
        pd->lock.unlock();
        return -err;
      }
      if (pd->accept_head < pd->accepted.size()) {
        int fd = pd->accepted[pd->accept_head++];
        if (pd->accept_head == pd->accepted.size()) {
          pd->accepted.clear();
          pd->accept_head = 0;
        }
        pd->lock.unlock();
        getpeername(fd, addr, addrlen);
        return fd;
      }
      if (pd->accept_error != 0) {
        int e = pd->accept_error;
        pd->accept_error = 0;  // reported once; the next Accept re-arms
        pd->lock.unlock();
        if (e == -ECONNABORTED || e == -EINTR) continue;  // a connection that died waiting: next
        return e;
      }
      if (!ArmOnce(pd, /*accept=*/true)) {
        pd->lock.unlock();
        return -kErrClosing;
      }
      ParkOnPollDesc(pd, false);  // releases the lock
    }
  }

  int Connect(PollDesc* p, const sockaddr* addr, socklen_t addrlen) override {
    UringDesc* pd = Desc(p);
    ssize_t rc = OneShot(
        pd, true, [&](io_uring_sqe* sqe) { io_uring_prep_connect(sqe, pd->fd, addr, addrlen); });
    // Cancelled for no reason of ours (a stale cancel) or interrupted: the connect may still be
    // under way, and issuing it again would fail with EALREADY. Wait for the socket to become
    // writable and take the outcome from SO_ERROR, as a non-blocking connect does.
    while (rc == -ECANCELED || rc == -EINTR) {
      rc = OneShot(pd, true,
                   [&](io_uring_sqe* sqe) { io_uring_prep_poll_add(sqe, pd->fd, POLLOUT); });
      if (rc >= 0) {
        int soerr = 0;
        socklen_t n = sizeof soerr;
        if (getsockopt(pd->fd, SOL_SOCKET, SO_ERROR, &soerr, &n) != 0) return -errno;
        return -soerr;
      }
    }
    return static_cast<int>(rc);
  }

 private:
  ssize_t DoRead(UringDesc* pd, void* buf, size_t len, bool park) {
    for (;;) {
      pd->lock.lock();
      if (int err = PollDescError(pd, false)) {
        pd->lock.unlock();
        return -err;
      }
      if (pd->chunk_head < pd->chunks.size()) {
        RecvChunk emptied[kMaxCopyChunks];
        int nemptied = 0;
        size_t n = CopyOut(pd, static_cast<char*>(buf), len, emptied, &nemptied);
        pd->lock.unlock();
        for (int i = 0; i < nemptied; ++i) emptied[i].ring->Recycle(emptied[i].bid);
        return static_cast<ssize_t>(n);
      }
      if (pd->recv_eof) {
        pd->lock.unlock();
        return 0;
      }
      if (pd->recv_error != 0) {
        int e = pd->recv_error;
        pd->lock.unlock();
        return e;
      }
      if (pd->recv_nobufs && !pd->recv_armed) {
        // No provided buffer was free: read into the caller's, then arm again next time.
        pd->recv_nobufs = false;
        pd->lock.unlock();
        ssize_t n = OneShot(
            pd, false, [&](io_uring_sqe* sqe) { io_uring_prep_recv(sqe, pd->fd, buf, len, 0); });
        if (n == -ECANCELED || n == -EINTR) continue;  // re-check closing / deadline
        return n;
      }
      if (!ArmOnce(pd, /*accept=*/false)) {
        pd->lock.unlock();
        return -kErrClosing;
      }
      if (!park) {
        pd->lock.unlock();
        return -EAGAIN;
      }
      ParkOnPollDesc(pd, false);  // releases the lock; chunks, EOF, errors, Close, deadlines
    }
  }

  // Arms pd's multishot recv (or accept) on the calling worker's ring unless one is armed already;
  // the armed operation holds a reference. False once Close has begun (nothing armed). Never
  // releases the lock.
  static bool ArmOnce(UringDesc* pd, bool accept) GL_REQUIRES(pd->lock) {
    bool& armed = accept ? pd->accept_armed : pd->recv_armed;
    if (armed) return true;
    if (!AcquirePollDesc(pd)) return false;
    UringWorkerPoller* ring = CurrentRing();
    armed = true;
    if (accept) {
      pd->accept_home = ring;
      ring->ArmAccept(pd);
    } else {
      pd->recv_home = ring;
      ring->ArmRecv(pd);
    }
    return true;
  }

  // At most this many chunks are emptied by one read: their buffers go back after the lock.
  static constexpr int kMaxCopyChunks = 8;

  // Copies buffered chunks out into `buf`; the chunks it empties go to `emptied` (*nemptied of
  // them), for the caller to give back to their rings once it has released the lock.
  static size_t CopyOut(UringDesc* pd, char* buf, size_t len, RecvChunk* emptied, int* nemptied)
      GL_REQUIRES(pd->lock) {
    size_t n = 0;
    while (n < len && pd->chunk_head < pd->chunks.size() && *nemptied < kMaxCopyChunks) {
      RecvChunk& c = pd->chunks[pd->chunk_head];
      size_t take = std::min<size_t>(len - n, c.len - c.off);
      std::memcpy(buf + n, c.ring->Buffer(c.bid) + c.off, take);
      c.off += static_cast<uint32_t>(take);
      n += take;
      if (c.off == c.len) {
        emptied[(*nemptied)++] = c;
        ++pd->chunk_head;
      }
    }
    pd->unread -= static_cast<uint32_t>(n);
    if (pd->chunk_head == pd->chunks.size()) {
      pd->chunks.clear();
      pd->chunk_head = 0;
    }
    return n;
  }

  // Queues one operation on the current worker's ring, parks until its completion, and returns
  // its result; -kErrClosing / -kErrDeadline when it was cancelled for that (or is not started
  // because of it).
  template <class Prep>
  ssize_t OneShot(UringDesc* pd, bool write, Prep prep) {
    UringOp op;
    op.g = CurrentG();
    UringWorkerPoller* ring = CurrentRing();
    op.ring = ring;
    pd->lock.lock();
    if (int err = PollDescError(pd, write)) {
      pd->lock.unlock();
      return -err;
    }
    io_uring_sqe* sqe = ring->GetSqe();
    prep(sqe);
    io_uring_sqe_set_data64(sqe, Pack(&op, kTagOp));
    ring->Started();
    (write ? pd->wop : pd->rop) = &op;
    // Readied only by the completion (Reap), which cannot come before this worker submits.
    ParkUnlock(WaitReason::kIOWait, &pd->lock);
    int err;
    {
      SpinLockGuard guard(pd->lock);
      (write ? pd->wop : pd->rop) = nullptr;
      err = PollDescError(pd, write);
    }
    if (op.res == -ECANCELED && err != 0) return -err;
    if (op.res < 0 && err == kErrClosing) return -err;
    return op.res;
  }

  std::vector<std::unique_ptr<UringWorkerPoller>> pollers_;  // one per worker, made before they run
};

void UringDesc::Reset() {
  recv_home = accept_home = nullptr;
  recv_armed = recv_nobufs = recv_eof = accept_armed = false;
  recv_error = accept_error = 0;
  unread = 0;
  chunks.clear();
  chunk_head = 0;
  accepted.clear();
  accept_head = 0;
  rop = wop = nullptr;
}

void UringDesc::Teardown(bool live) {
  // Nothing is in the kernel any more: each armed operation held a reference.
  SpinLockGuard guard(lock);
  // The buffers go back to their rings while the Run() that made the rings runs; after it, the
  // rings and their buffers are gone, and so are the goroutines rop/wop named.
  if (live) {
    for (size_t i = chunk_head; i < chunks.size(); ++i) chunks[i].ring->Recycle(chunks[i].bid);
  }
  // Descriptors accepted and never taken are the process's, whichever Run() took them.
  for (size_t i = accept_head; i < accepted.size(); ++i) close(accepted[i]);
  Reset();
}

// Why io_uring_setup (or the provided-buffer ring's registration) failed, for the start-up log.
const char* ExplainSetupError(int err) {
  switch (err) {
    case EPERM:
      return "EPERM: blocked by seccomp or kernel.io_uring_disabled";
    case ENOSYS:
      return "ENOSYS: no io_uring in this kernel or emulator";
    case EINVAL:
      return "EINVAL: an older kernel";
    case ENOTSUP:
      return "kernel older than 6.0: no multishot recv";
    default:
      return "unexpected";
  }
}

// 0 if this kernel can run the backend, else the errno that says why not.
int ProbeUring() {
  // Multishot recv needs 6.0, and no probe opcode says so: go by the kernel's version.
  utsname u{};
  int major = 0, minor = 0;
  if (uname(&u) == 0 && std::sscanf(u.release, "%d.%d", &major, &minor) == 2 && major < 6) {
    return ENOTSUP;
  }
  // A ring with the flags the workers will use, and a provided-buffer ring on it (5.19+).
  io_uring ring{};
  int rc = SetupRing(&ring, nullptr);
  if (rc < 0) return -rc;
  size_t bytes = sizeof(io_uring_buf) * 8;
  void* mem = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  io_uring_buf_reg reg{};
  reg.ring_addr = reinterpret_cast<uint64_t>(mem);
  reg.ring_entries = 8;
  reg.bgid = kBufGroup;
  rc = mem == MAP_FAILED ? -ENOMEM : io_uring_register_buf_ring(&ring, &reg, 0);
  io_uring_queue_exit(&ring);
  if (mem != MAP_FAILED) munmap(mem, bytes);
  return -rc;
}

}  // namespace

std::unique_ptr<Netpoll> NewUringNetpoll(std::string reason, std::string* why_not) {
  if (int err = ProbeUring()) {
    *why_not = std::string("io_uring_setup failed: ") + std::strerror(err) + " (" +
               ExplainSetupError(err) + ")";
    return nullptr;
  }
  return std::make_unique<UringNetpoll>(std::move(reason));
}

}  // namespace greenline::internal

#else  // !GREENLINE_HAVE_URING

#include <string>

namespace greenline::internal {

std::unique_ptr<Netpoll> NewUringNetpoll(std::string /*reason*/, std::string* why_not) {
  *why_not = "io_uring: this build has no liburing";
  return nullptr;
}

}  // namespace greenline::internal

#endif
