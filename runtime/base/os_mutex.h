// OsMutex and OsCondVar: the runtime's locks that may block the OS thread (std::mutex and
// std::condition_variable underneath), in types clang's thread-safety analysis knows
// (thread_annotations.h), as SpinLock is.
//
// For code that runs on its own threads or off the scheduling fast paths: the scheduler's global
// lock (Sched::lock), the list of all goroutines, the main goroutine's completion, the monitor,
// the blocking pool, the stack pool, the signal thread's capture, the accept reserve. A goroutine
// holds one only for a short section that never parks (runtime/HACKING.md: what blocks what); the
// wait lists goroutines park on use SpinLock, whose holder never blocks.
//
//   OsMutex mu_;
//   int n_ GL_GUARDED_BY(mu_);
//   { OsMutexGuard lock(mu_); ++n_; }
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "greenline/internal/lock_guard.h"
#include "greenline/thread_annotations.h"
#include "runtime/base/runtime_internal.h"

namespace greenline::internal {

class GL_CAPABILITY("mutex") OsMutex {
 public:
  OsMutex() = default;
  OsMutex(const OsMutex&) = delete;
  OsMutex& operator=(const OsMutex&) = delete;

  void lock() GL_ACQUIRE() { mu_.lock(); }
  void unlock() GL_RELEASE() { mu_.unlock(); }
  bool try_lock() GL_TRY_ACQUIRE(true) { return mu_.try_lock(); }

 private:
  friend class OsCondVar;
  std::mutex mu_;
};

// Holds an OsMutex for its scope.
using OsMutexGuard = LockGuard<OsMutex>;

// Holds an OsMutex for its scope, and may give it back and take it again in between: for a loop
// that drops its lock around slow work (std::unique_lock's annotated twin).
class GL_SCOPED_CAPABILITY OsMutexLock {
 public:
  explicit OsMutexLock(OsMutex& mu) GL_ACQUIRE(mu) : mu_(mu) { mu_.lock(); }
  ~OsMutexLock() GL_RELEASE() {
    if (held_) mu_.unlock();
  }
  OsMutexLock(const OsMutexLock&) = delete;
  OsMutexLock& operator=(const OsMutexLock&) = delete;

  void Unlock() GL_RELEASE() {
    mu_.unlock();
    held_ = false;
  }
  void Lock() GL_ACQUIRE() {
    mu_.lock();
    held_ = true;
  }

 private:
  OsMutex& mu_;
  bool held_ = true;
};

// A condition variable waited on with an OsMutex held (std::condition_variable's, with the lock
// in the contract: the caller holds `mu`, the wait gives it back while it sleeps and holds it
// again when it returns). Wake-ups may be spurious: wait in a loop on the condition.
class OsCondVar {
 public:
  void Wait(OsMutex& mu) GL_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held: the caller's
  }
  // As Wait, for at most `timeout`.
  void WaitFor(OsMutex& mu, std::chrono::nanoseconds timeout) GL_REQUIRES(mu) {
    std::unique_lock<std::mutex> lock(mu.mu_, std::adopt_lock);
    cv_.wait_for(lock, timeout);
    lock.release();
  }
  void NotifyOne() { cv_.notify_one(); }
  void NotifyAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace greenline::internal
