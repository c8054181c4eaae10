// Scoped holds of a lock that clang's thread-safety analysis sees (thread_annotations.h): while a
// guard lives, fields marked GL_GUARDED_BY(that lock) may be touched. std::lock_guard and
// std::unique_lock carry no annotations, so with them the analysis never learns the lock is held.
//
// For any lock type with lock()/unlock() (and lock_shared()/unlock_shared() for SharedLockGuard)
// that is a GL_CAPABILITY: SpinLock (SpinLockGuard), the runtime's OsMutex, and the public
// greenline::Mutex and RWMutex (greenline::MutexLock, WriterMutexLock, ReaderMutexLock).
#pragma once

#include "greenline/thread_annotations.h"

namespace greenline::internal {

// Holds `m` exclusively from construction to destruction.
template <class M>
class GL_SCOPED_CAPABILITY LockGuard {
 public:
  explicit LockGuard(M& m) GL_ACQUIRE(m) : m_(m) { m_.lock(); }
  ~LockGuard() GL_RELEASE() { m_.unlock(); }
  LockGuard(const LockGuard&) = delete;
  LockGuard& operator=(const LockGuard&) = delete;

 private:
  M& m_;
};

// Holds `m` shared (a reader's hold) from construction to destruction.
template <class M>
class GL_SCOPED_CAPABILITY SharedLockGuard {
 public:
  explicit SharedLockGuard(M& m) GL_ACQUIRE_SHARED(m) : m_(m) { m_.lock_shared(); }
  ~SharedLockGuard() GL_RELEASE_GENERIC() { m_.unlock_shared(); }
  SharedLockGuard(const SharedLockGuard&) = delete;
  SharedLockGuard& operator=(const SharedLockGuard&) = delete;

 private:
  M& m_;
};

}  // namespace greenline::internal
