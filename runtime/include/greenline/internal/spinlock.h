// A small test-and-test-and-set spinlock for the runtime's short critical sections (wait lists,
// run queue overflow, timer heaps, sockets' poll descriptors), and the guard that holds one for a
// scope. Never held across a park or a context switch, except where a park's commit releases it
// on the next context (sched/park.h: ParkUnlock); the holder never blocks, so spinning (with a CPU
// pause hint and, past a bound, sched_yield) is cheap and safe.
//
// Both are known to clang's thread-safety analysis (thread_annotations.h): a field marked
// GL_GUARDED_BY(lock_) may be touched only under a SpinLockGuard (or lock()/unlock()) of lock_.
#pragma once

#include <sched.h>

#include <atomic>

#include "greenline/internal/lock_guard.h"
#include "greenline/thread_annotations.h"

namespace greenline {

inline void CpuRelax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

class GL_CAPABILITY("mutex") SpinLock {
 public:
  void lock() GL_ACQUIRE() {
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
  bool try_lock() GL_TRY_ACQUIRE(true) {
    return !locked_.load(std::memory_order_relaxed) &&
           !locked_.exchange(true, std::memory_order_acquire);
  }
  void unlock() GL_RELEASE() { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Holds a SpinLock for its scope (std::lock_guard carries no annotations, so clang's analysis
// would not know the lock is held).
using SpinLockGuard = internal::LockGuard<SpinLock>;

}  // namespace greenline
