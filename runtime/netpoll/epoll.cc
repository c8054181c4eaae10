// The epoll backend: Go's netpoller, one epoll instance per worker.
//
// A socket is registered once, edge-triggered, for input and output (EPOLLIN | EPOLLOUT |
// EPOLLRDHUP | EPOLLET), with the epoll of the worker that opens it. Operations try the system
// call first and park only on EAGAIN, as Go's do: a goroutine that reads a socket with data
// waiting never parks. An edge with no goroutine parked sets the side's `ready` flag, so a
// goroutine that got EAGAIN just before the edge does not park past it (it checks the flag under
// the PollDesc's lock before parking).
//
// A socket's epoll state (EpollDesc) is the epoll it is registered with, the two `ready` flags and
// an incarnation count. Events carry the EpollDesc pointer tagged with its incarnation (`seq`, in
// the top 16 bits: user addresses fit in 48 on x86-64 and aarch64), so an event fetched for a
// socket that has since been closed and whose EpollDesc was reused is dropped. The worker's wake
// eventfd is registered with tag 0.
//
// The worker polls its epoll without sleeping when its run queue runs dry and every 61st schedule,
// and sleeps in epoll_pwait2 (nanosecond timeout; epoll_wait's milliseconds, rounded up, on
// kernels without it) when it has nothing to run.
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>
#include <vector>

#include "runtime/base/fatal.h"
#include "runtime/netpoll/internal/backend.h"
#include "runtime/netpoll/netpoll.h"
#include "runtime/sched/park.h"
#include "runtime/sched/poller.h"

namespace greenline::internal {
namespace {

constexpr int kMaxEvents = 128;
constexpr uint64_t kPointerMask = (uint64_t{1} << 48) - 1;

class EpollWorkerPoller;

// A socket as the epoll backend sees it.
struct EpollDesc final : BackendDesc<EpollDesc> {
  // Set by Register, cleared by Teardown; constant in between.
  EpollWorkerPoller* home = nullptr;  // the worker poller whose epoll it is registered with
  // Incarnation: bumped on every reuse, so an event fetched for an earlier socket that had this
  // EpollDesc is recognised and dropped (Go's fdseq in the tagged pointer). Read by the worker
  // that fetched the event, under the lock.
  uint16_t seq GL_GUARDED_BY(lock) = 0;
  // An edge arrived that no parked goroutine took: the next wait returns at once.
  bool rready GL_GUARDED_BY(lock) = false;
  bool wready GL_GUARDED_BY(lock) = false;

  void Teardown(bool live) override;
};

EpollDesc* Desc(PollDesc* pd) { return EpollDesc::Of(pd); }

uint64_t Tag(EpollDesc* pd, uint16_t seq) {
  return reinterpret_cast<uint64_t>(pd) | (static_cast<uint64_t>(seq) << 48);
}

class EpollWorkerPoller final : public WorkerPoller {
 public:
  EpollWorkerPoller() {
    epfd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epfd_ < 0) Fatalf("runtime: epoll_create1: %s", std::strerror(errno));
    wakefd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (wakefd_ < 0) Fatalf("runtime: eventfd: %s", std::strerror(errno));
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = 0;
    if (epoll_ctl(epfd_, EPOLL_CTL_ADD, wakefd_, &ev) != 0) {
      Fatalf("runtime: epoll_ctl(eventfd): %s", std::strerror(errno));
    }
  }
  ~EpollWorkerPoller() override {
    close(wakefd_);
    close(epfd_);
  }

  int epfd() const { return epfd_; }
  void Registered(int delta) { nregistered_.fetch_add(delta, std::memory_order_relaxed); }

  void Wait(int64_t deadline_ns) override {
    if (!gate_.BeginSleep()) {
      Poll();
      return;
    }
    EpollWaitAndHandle(deadline_ns);
    gate_.EndSleep();
  }

  bool Poll() override {
    if (nregistered_.load(std::memory_order_relaxed) == 0) return false;
    return EpollWaitAndHandle(-1);
  }

  bool Pending() const override { return nregistered_.load(std::memory_order_relaxed) != 0; }

  void Wake() override {
    if (gate_.Wake()) {
      uint64_t one = 1;
      ssize_t rc = write(wakefd_, &one, sizeof one);
      static_cast<void>(rc);  // EAGAIN: the counter is already non-zero, it will wake anyway
    }
  }

 private:
  // deadline_ns: -1 do not sleep, 0 sleep without a deadline, > 0 sleep until then.
  bool EpollWaitAndHandle(int64_t deadline_ns) {
    epoll_event events[kMaxEvents];
    int n;
    if (deadline_ns < 0) {
      n = epoll_wait(epfd_, events, kMaxEvents, 0);
    } else {
      timespec ts{};
      timespec* tsp = nullptr;
      if (deadline_ns > 0) {
        int64_t d = deadline_ns - Nanotime();
        if (d < 0) d = 0;
        ts.tv_sec = d / 1'000'000'000;
        ts.tv_nsec = d % 1'000'000'000;
        tsp = &ts;
      }
      if (have_pwait2_) {
        n = epoll_pwait2(epfd_, events, kMaxEvents, tsp, nullptr);
        if (n < 0 && errno == ENOSYS) have_pwait2_ = false;
      }
      if (!have_pwait2_) {
        int ms = -1;
        if (tsp != nullptr) {
          int64_t wait_ms = (ts.tv_sec * 1'000'000'000 + ts.tv_nsec + 999'999) / 1'000'000;
          ms = static_cast<int>(std::min<int64_t>(wait_ms, 24 * 3600 * 1000));  // fits an int
        }
        n = epoll_wait(epfd_, events, kMaxEvents, ms);
      }
    }
    if (n < 0) {
      if (errno == EINTR) return false;
      Fatalf("runtime: epoll_wait: %s", std::strerror(errno));
    }
    bool readied = false;
    for (int i = 0; i < n; ++i) {
      uint64_t tag = events[i].data.u64;
      if (tag == 0) {
        uint64_t v;
        ssize_t rc = read(wakefd_, &v, sizeof v);
        static_cast<void>(rc);
        continue;
      }
      auto* pd = reinterpret_cast<EpollDesc*>(tag & kPointerMask);
      auto seq = static_cast<uint16_t>(tag >> 48);
      uint32_t ev = events[i].events;
      G* rg = nullptr;
      G* wg = nullptr;
      {
        SpinLockGuard guard(pd->lock);
        if (pd->seq == seq) {
          if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
            rg = pd->rg;
            pd->rg = nullptr;
            if (rg == nullptr) pd->rready = true;
          }
          if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) {
            wg = pd->wg;
            pd->wg = nullptr;
            if (wg == nullptr) pd->wready = true;
          }
        }
      }
      if (rg != nullptr) Ready(rg);
      if (wg != nullptr) Ready(wg);
      readied |= rg != nullptr || wg != nullptr;
    }
    return readied;
  }

  int epfd_ = -1;
  int wakefd_ = -1;
  bool have_pwait2_ = true;  // owned by the worker thread
  WakeGate gate_;
  std::atomic<int64_t> nregistered_{0};  // sockets registered here (relaxed: a hint for Poll)
};

class EpollNetpoll final : public Netpoll {
 public:
  using Netpoll::Netpoll;

  const char* name() const override { return "epoll"; }

  WorkerPoller* NewWorkerPoller(int worker) override {
    if (static_cast<size_t>(worker) != pollers_.size())
      Fatal("runtime: epoll: pollers out of order");
    pollers_.push_back(std::make_unique<EpollWorkerPoller>());
    return pollers_.back().get();
  }

  PollDesc* NewDesc() override {
    EpollDesc* pd = EpollDesc::Cache().Get();
    SpinLockGuard guard(pd->lock);
    ++pd->seq;
    pd->rready = pd->wready = false;
    pd->home = nullptr;
    return pd;
  }

  int Register(PollDesc* p) override {
    EpollDesc* pd = Desc(p);
    // From a plain thread: worker 0's epoll (its events are handled there).
    auto* wp = static_cast<EpollWorkerPoller*>(CurrentWorkerPoller());
    if (wp == nullptr) wp = pollers_.front().get();
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    {
      SpinLockGuard guard(pd->lock);
      ev.data.u64 = Tag(pd, pd->seq);
    }
    if (epoll_ctl(wp->epfd(), EPOLL_CTL_ADD, pd->fd, &ev) != 0) return -errno;
    pd->home = wp;
    wp->Registered(1);
    return 0;
  }

  ssize_t Read(PollDesc* pd, void* buf, size_t len) override {
    for (;;) {
      if (int err = Prepare(pd, false)) return -err;
      ssize_t n = recv(pd->fd, buf, len, 0);
      if (n >= 0) return n;
      if (errno == EINTR) continue;
      if (errno != EAGAIN) return -errno;
      if (int err = WaitIo(pd, false)) return -err;
    }
  }

  ssize_t TryRead(PollDesc* p, void* buf, size_t len) override {
    EpollDesc* pd = Desc(p);
    for (;;) {
      // An edge from before this recv is consumed by it: forget it, so only one that comes after
      // an EAGAIN makes HibernateRead return at once (Go's prepareRead resets the same way).
      int err;
      {
        SpinLockGuard guard(pd->lock);
        err = PollDescError(pd, false);
        pd->rready = false;
      }
      if (err) return -err;
      ssize_t n = recv(pd->fd, buf, len, 0);
      if (n >= 0) return n;
      if (errno != EINTR) return -errno;  // -EAGAIN: the edge to wait for is yet to come
    }
  }

  void HibernateRead(PollDesc* p) override {
    EpollDesc* pd = Desc(p);
    pd->lock.lock();
    if (PollDescError(pd, false) != 0) {
      pd->lock.unlock();
      return;
    }
    if (pd->rready) {  // the edge came after TryRead's EAGAIN
      pd->rready = false;
      pd->lock.unlock();
      return;
    }
    HibernateOnPollDesc(pd);  // releases the lock
  }

  int Write(PollDesc* pd, const void* buf, size_t len, size_t* written) override {
    const char* p = static_cast<const char*>(buf);
    size_t done = 0;
    while (done < len) {
      if (int err = Prepare(pd, true)) {
        *written = done;
        return -err;
      }
      ssize_t n = send(pd->fd, p + done, len - done, MSG_NOSIGNAL);
      if (n >= 0) {
        done += static_cast<size_t>(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN) {
        *written = done;
        return -errno;
      }
      if (int err = WaitIo(pd, true)) {
        *written = done;
        return -err;
      }
    }
    *written = done;
    return 0;
  }

  int Accept(PollDesc* pd, sockaddr* addr, socklen_t* addrlen) override {
    for (;;) {
      if (int err = Prepare(pd, false)) return -err;
      int fd = accept4(pd->fd, addr, addrlen, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd >= 0) return fd;
      // A connection that died in the backlog: try the next (Go does the same).
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno != EAGAIN) return -errno;
      if (int err = WaitIo(pd, false)) return -err;
    }
  }

  int Connect(PollDesc* pd, const sockaddr* addr, socklen_t addrlen) override {
    if (int err = Prepare(pd, true)) return -err;
    if (connect(pd->fd, addr, addrlen) == 0) return 0;
    if (errno != EINPROGRESS && errno != EINTR) return -errno;
    for (;;) {
      if (int err = WaitIo(pd, true)) return -err;
      int soerr = 0;
      socklen_t n = sizeof soerr;
      if (getsockopt(pd->fd, SOL_SOCKET, SO_ERROR, &soerr, &n) != 0) return -errno;
      if (soerr == 0) return 0;
      if (soerr != EINPROGRESS && soerr != EALREADY && soerr != EINTR) return -soerr;
    }
  }

 private:
  // Go's prepareRead/prepareWrite: fail at once when closing or past the deadline.
  static int Prepare(PollDesc* pd, bool write) {
    SpinLockGuard guard(pd->lock);
    return PollDescError(pd, write);
  }

  // Waits for an edge on one side. 0 when the caller should retry its system call.
  static int WaitIo(PollDesc* p, bool write) {
    EpollDesc* pd = Desc(p);
    pd->lock.lock();
    if (int err = PollDescError(pd, write)) {
      pd->lock.unlock();
      return err;
    }
    bool& ready = write ? pd->wready : pd->rready;
    if (ready) {
      ready = false;
      pd->lock.unlock();
      return 0;
    }
    ParkOnPollDesc(pd, write);  // releases the lock
    return Prepare(pd, write);
  }

  std::vector<std::unique_ptr<EpollWorkerPoller>> pollers_;  // one per worker, made before they run
};

void EpollDesc::Teardown(bool live) {
  // After the Run() that registered it, its epoll is closed: nothing to undo.
  if (live && home != nullptr) {
    epoll_ctl(home->epfd(), EPOLL_CTL_DEL, fd, nullptr);
    home->Registered(-1);
  }
  home = nullptr;
}

}  // namespace

std::unique_ptr<Netpoll> NewEpollNetpoll(std::string reason, std::string* /*why_not*/) {
  // Every Linux has epoll; a failure to make a worker's epoll instance is fatal there.
  return std::make_unique<EpollNetpoll>(std::move(reason));
}

}  // namespace greenline::internal
