// Parker: how an idle worker sleeps and is woken. A one-token semaphore on a futex: Wake() before
// Wait() is never lost; Wait() returns on a token, on its deadline, or spuriously (callers loop).
//
// This is the step before the netpoller. With it, a parked worker will wait inside its poller
// (io_uring_enter or epoll_wait, timed by the nearest timer) and Wake() will post to it (an
// eventfd write or IORING_OP_MSG_RING), as Go's findRunnable waits in netpoll. The scheduler only
// calls Wait(deadline) and Wake(), so the poller replaces this class without touching it.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>

namespace greenline::internal {

class Parker {
 public:
  // Sleeps until Wake() or until CLOCK_MONOTONIC reaches `deadline_ns` (0: no deadline).
  void Wait(int64_t deadline_ns) {
    if (token_.exchange(0, std::memory_order_acquire) == 1) return;
    timespec ts{};
    if (deadline_ns > 0) {
      ts.tv_sec = deadline_ns / 1'000'000'000;
      ts.tv_nsec = deadline_ns % 1'000'000'000;
    }
    // FUTEX_WAIT_BITSET takes an absolute CLOCK_MONOTONIC deadline: no drift from recomputing.
    syscall(SYS_futex, reinterpret_cast<uint32_t*>(&token_), FUTEX_WAIT_BITSET | FUTEX_PRIVATE_FLAG,
            0, deadline_ns > 0 ? &ts : nullptr, nullptr, FUTEX_BITSET_MATCH_ANY);
    token_.exchange(0, std::memory_order_acquire);
  }

  void Wake() {
    if (token_.exchange(1, std::memory_order_release) == 0) {
      syscall(SYS_futex, reinterpret_cast<uint32_t*>(&token_), FUTEX_WAKE | FUTEX_PRIVATE_FLAG, 1,
              nullptr, nullptr, 0);
    }
  }

 private:
  std::atomic<uint32_t> token_{0};
  static_assert(sizeof(std::atomic<uint32_t>) == sizeof(uint32_t));
};

}  // namespace greenline::internal
