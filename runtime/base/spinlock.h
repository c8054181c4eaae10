// A small test-and-test-and-set spinlock for the runtime's short critical sections (wait lists,
// run queue overflow, timer heaps). Never held across a park or a context switch; the holder never
// blocks, so spinning (with a CPU pause hint and, past a bound, sched_yield) is cheap and safe.
#pragma once

#include <sched.h>

#include <atomic>

namespace greenline {

inline void CpuRelax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class SpinLock {
 public:
  void lock() {
    for (int spins = 0;; ++spins) {
      if (!locked_.exchange(true, std::memory_order_acquire)) return;
      while (locked_.load(std::memory_order_relaxed)) {
        if (spins++ < 64) {
          CpuRelax();
        } else {
          sched_yield();  // the holder may have been descheduled by the OS
        }
      }
    }
  }
  bool try_lock() {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

}  // namespace greenline
