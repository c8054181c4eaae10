// Mutex and RWMutex: Go's sync.Mutex and sync.RWMutex. Mutual exclusion that blocks the goroutine,
// never its OS thread.
//
//   greenline::Mutex mu;
//   int balance GL_GUARDED_BY(mu) = 0;
//
//   void Deposit(int n) {
//     greenline::MutexLock lock(mu);  // or mu.Lock(); ... mu.Unlock();
//     balance += n;
//   }
//
// Overview. A goroutine that cannot take the lock spins briefly when that can pay (another worker
// runs the holder), then parks with wait reason "sync.Mutex.Lock" (RWMutex: "sync.RWMutex.RLock",
// "sync.RWMutex.Lock"): a blocking-class wait, so goroutines that wait on each other's locks
// forever are reported as a deadlock, as Go reports them. The algorithm is Go's, including its two
// modes (see mutex.cc): in normal mode a woken waiter competes with arriving goroutines, which
// usually win (they are already running), for throughput; a waiter that has waited more than 1 ms
// switches the mutex to starvation mode, where each Unlock hands the lock straight to the oldest
// waiter, so no waiter waits forever.
//
// Where from. Every method may be called from any goroutine. Holding a lock across a park (Sleep,
// channel operations, Lock of another mutex) is allowed, as in Go; it only makes the others wait.
// As in Go, a locked Mutex is not tied to a goroutine: one goroutine may lock it and another unlock
// it. From a plain thread (not a goroutine: tests, start-up code, a foreign library's callback)
// the methods work too, but a Lock that must wait polls politely (sched_yield, then short sleeps)
// instead of parking, and the deadlock detector cannot see that thread (runtime/HACKING.md).
//
// Lifetime. Destroy a mutex only when no goroutine holds it, waits for it or is still inside one
// of its calls. The common "the last owner frees it" pattern is safe when the last Lock was woken
// by the previous Unlock (that Unlock is then done with the object), as it always is between two
// goroutines. A third goroutine racing through Lock and Unlock while an earlier Unlock is still
// running is not covered (Go's garbage collector makes that safe in Go): there, make sure every
// Unlock has returned (a WaitGroup, a join) before destroying the mutex.
//
// Misuse is a fatal error, with Go's messages (Go's are fatal errors too, not recoverable panics):
// unlocking an unlocked Mutex ("sync: unlock of unlocked mutex"), RUnlock or Unlock of an RWMutex
// not so locked ("sync: RUnlock of unlocked RWMutex", "sync: Unlock of unlocked RWMutex"). The
// process ends with exit status 2.
//
// Lock contracts, as Abseil's Mutex has them. Both types are capabilities for clang's thread-safety
// analysis (greenline/thread_annotations.h): mark what a mutex guards with GL_GUARDED_BY(mu), a
// function that needs it held with GL_REQUIRES(mu), and hold it with MutexLock (WriterMutexLock,
// ReaderMutexLock for an RWMutex) or Lock()/Unlock() in one function; clang (-Wthread-safety)
// then checks every access. The lowercase lock()/unlock()/try_lock() (and lock_shared()... on
// RWMutex) exist so that std::lock_guard, std::unique_lock, std::scoped_lock and std::shared_lock
// work too; the analysis does not see a lock they hold (they carry no annotations), so fields they
// protect are best left unannotated.
#pragma once

#include <atomic>
#include <cstdint>

#include "greenline/internal/lock_guard.h"
#include "greenline/internal/sema.h"
#include "greenline/thread_annotations.h"

namespace greenline {

class GL_CAPABILITY("mutex") Mutex {
 public:
  Mutex() = default;
  Mutex(const Mutex&) = delete;
  Mutex& operator=(const Mutex&) = delete;

  // Locks the mutex, blocking until it is available. Not reentrant: a goroutine that locks a mutex
  // it holds waits forever (a deadlock the runtime reports when nothing else can run). May block.
  void Lock() GL_ACQUIRE() {
    int32_t unlocked = 0;
    if (state_.compare_exchange_strong(unlocked, kLocked, std::memory_order_acquire,
                                       std::memory_order_relaxed)) {
      return;
    }
    LockSlow();
  }

  // Unlocks the mutex; a goroutine waiting in Lock may then take it. Fatal if it is not locked.
  // Never blocks (in starvation mode it yields to the waiter it hands the lock to).
  void Unlock() GL_RELEASE() {
    int32_t now = state_.fetch_sub(kLocked, std::memory_order_acq_rel) - kLocked;
    if (now != 0) UnlockSlow(now);
  }

  // Locks the mutex if that is possible right now, without waiting. Never blocks. As Go says:
  // correct uses are rare, and often a sign of a deeper problem.
  bool TryLock() GL_TRY_ACQUIRE(true);

  // For std::lock_guard and friends (BasicLockable, Lockable), and MutexLock.
  void lock() GL_ACQUIRE() { Lock(); }
  void unlock() GL_RELEASE() { Unlock(); }
  bool try_lock() GL_TRY_ACQUIRE(true) { return TryLock(); }

 private:
  // state_: Go's layout. Bit 0 locked, bit 1 woken (an unlocker has woken a waiter, or a spinning
  // goroutine is about to take the lock, so Unlock need not wake another), bit 2 starving (Unlock
  // hands the lock to the first waiter; arrivals must queue), bits 3.. the number of waiters
  // (goroutines counted here wait on sema_ or are about to).
  static constexpr int32_t kLocked = 1;
  static constexpr int32_t kWoken = 2;
  static constexpr int32_t kStarving = 4;
  static constexpr int kWaiterShift = 3;

  void LockSlow();
  void UnlockSlow(int32_t now);

  // The lock word: acquire on taking the lock, release on giving it up (acq_rel on read-modify-
  // writes of the slow paths, which both read and publish).
  std::atomic<int32_t> state_{0};
  internal::Sema sema_;  // where waiters sleep; its own lock guards its list
};

class GL_CAPABILITY("mutex") RWMutex {
 public:
  RWMutex() = default;
  RWMutex(const RWMutex&) = delete;
  RWMutex& operator=(const RWMutex&) = delete;

  // Locks for writing: waits until no writer and no reader holds it. Once a writer waits, new
  // readers wait behind it, so a stream of readers cannot starve a writer (Go's rule; hence a
  // goroutine must not RLock recursively: a writer between the two RLocks deadlocks it). May block.
  void Lock() GL_ACQUIRE();

  // Unlocks for writing, letting the readers that queued behind the writer in. Fatal if not
  // write-locked. Never blocks.
  void Unlock() GL_RELEASE();

  // Locks for reading: any number of readers may hold it together, unless a writer holds or waits
  // for it. May block.
  void RLock() GL_ACQUIRE_SHARED() {
    if (reader_count_.fetch_add(1, std::memory_order_acquire) + 1 < 0) RLockSlow();
  }

  // Undoes one RLock; the last reader out lets a waiting writer in. Fatal if not read-locked.
  // Never blocks.
  void RUnlock() GL_RELEASE_SHARED() {
    int32_t r = reader_count_.fetch_sub(1, std::memory_order_release) - 1;
    if (r < 0) RUnlockSlow(r);
  }

  // Lock / RLock if possible right now, without waiting. Never block.
  bool TryLock() GL_TRY_ACQUIRE(true);
  bool TryRLock() GL_TRY_ACQUIRE_SHARED(true);

  // For std::lock_guard, std::unique_lock (write side) and std::shared_lock (read side), and
  // WriterMutexLock and ReaderMutexLock.
  void lock() GL_ACQUIRE() { Lock(); }
  void unlock() GL_RELEASE() { Unlock(); }
  bool try_lock() GL_TRY_ACQUIRE(true) { return TryLock(); }
  void lock_shared() GL_ACQUIRE_SHARED() { RLock(); }
  void unlock_shared() GL_RELEASE_SHARED() { RUnlock(); }
  bool try_lock_shared() GL_TRY_ACQUIRE_SHARED(true) { return TryRLock(); }

 private:
  static constexpr int32_t kMaxReaders = 1 << 30;  // Go's rwmutexMaxReaders

  void RLockSlow();
  void RUnlockSlow(int32_t r);

  Mutex w_;  // held by a writer from Lock to Unlock: one writer at a time
  // Readers holding or waiting for the lock; minus kMaxReaders while a writer holds or waits.
  // Atomic RMWs: acquire when a reader enters, release when it leaves, acq_rel for writers.
  std::atomic<int32_t> reader_count_{0};
  // Readers the pending writer still waits for to leave (departing readers); atomic RMWs, acq_rel.
  std::atomic<int32_t> reader_wait_{0};
  internal::Sema writer_sem_;  // the writer waits here for departing readers
  internal::Sema reader_sem_;  // readers wait here for the writer to finish
};

// Holds a Mutex for its scope, as a lock the analysis knows (Abseil's MutexLock). May block.
using MutexLock = internal::LockGuard<Mutex>;
// Holds an RWMutex for writing / for reading for its scope. May block.
using WriterMutexLock = internal::LockGuard<RWMutex>;
using ReaderMutexLock = internal::SharedLockGuard<RWMutex>;

}  // namespace greenline
