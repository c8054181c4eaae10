// Mutex and RWMutex: Go's sync/mutex.go and sync/rwmutex.go, step for step.
//
// Mutex: one word and a semaphore. The word (state_) holds the locked bit, the woken bit, the
// starving bit and a count of waiters; the semaphore (internal::Sema, where waiters park) holds no
// ownership at all: a token only means "look at the word again". Lock's fast path is one CAS from
// 0 to locked. Unlock's is one atomic subtract that leaves 0 when nobody waits.
//
// Two modes (Go's design note, kept here because the code only makes sense with it):
//   Normal mode. Waiters queue FIFO on the semaphore, but a woken waiter does not own the mutex:
//   it competes with goroutines that are arriving right now, and those usually win, since they are
//   already running on a CPU and there may be many of them. A waiter that loses is queued at the
//   *front* of the semaphore (lifo: it has waited already). Normal mode is much faster: a goroutine
//   can take the mutex several times in a row even with waiters, and the holder's worker never
//   switches just because it unlocked.
//   Starvation mode. A waiter that has waited more than 1 ms (Nanotime) sets the starving bit on
//   its next attempt. Then Unlock hands the mutex straight to the waiter at the front (Sema's
//   handoff: the token is that waiter's, it goes in this worker's runnext slot and the unlocker
//   yields to it). Arrivals do not try to take the lock, do not spin, and queue at the tail. The
//   waiter that receives the lock returns the mutex to normal mode if it is the last waiter or has
//   waited less than 1 ms itself; left in starvation mode, two goroutines could go lock-step
//   forever, each handing the lock to the other.
//
// The woken bit keeps Unlock from waking a second waiter while one woken (or spinning) goroutine
// is already on its way to the lock: whoever sets it must clear it when it next updates the word.
//
// Active spinning: a goroutine that finds the mutex locked (not starving) may spin for a few
// rounds of 30 CpuRelax, if internal::CanSpin says it can pay: fewer than 4 rounds so far, more
// than one CPU, another worker busy (the holder may be running and about to unlock), nothing queued
// on this worker. While spinning it sets the woken bit, so the unlocker does not wake a sleeper it
// would then beat. On one worker it never spins: the holder cannot run until we park.
//
// From plain threads the algorithm is the same; the only difference is inside Sema::Acquire,
// which polls instead of parking (sema.cc). So a plain thread is a regular waiter, counted in the
// word and served in turn.
//
// RWMutex: a Mutex `w_` serialises writers; reader_count_ counts readers, and a writer announces
// itself by subtracting kMaxReaders, which makes the count negative, so arriving readers see it
// and wait on reader_sem_. The writer then waits on writer_sem_ for the readers that were already
// in (it adds their number to reader_wait_; each of them, on RUnlock, decrements it, and the last
// releases the writer). Unlock adds kMaxReaders back and releases exactly the readers that queued
// meanwhile. Readers never wait for readers, a waiting writer is never starved by new readers, and
// readers queued behind a writer all enter when it leaves, before the next writer (which must first
// get w_ and then wait for them).
//
// Rejected: a FIFO lock that always hands over (a lock convoy: each unlock waits for the next
// owner to be scheduled, throughput collapses under contention; Go measured it and so do users of
// strict-FIFO locks); a futex-based lock (blocks the OS thread, and with it every goroutine queued
// on the worker).
#include "greenline/mutex.h"

#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"
#include "runtime/sched/timer.h"

namespace greenline {
namespace {

constexpr int64_t kStarvationThresholdNs = 1'000'000;  // Go's starvationThresholdNs: 1 ms
constexpr int kSpinPauses = 30;                        // Go's active_spin_cnt

void Spin() {
  for (int i = 0; i < kSpinPauses; ++i) CpuRelax();
}

}  // namespace

bool Mutex::TryLock() {
  int32_t old = state_.load(std::memory_order_relaxed);
  if ((old & (kLocked | kStarving)) != 0) return false;
  // A waiter may be about to wake, but we are running now and may take the lock before it does.
  return state_.compare_exchange_strong(old, old | kLocked, std::memory_order_acquire,
                                        std::memory_order_relaxed);
}

__attribute__((noinline)) void Mutex::LockSlow() {
  int64_t wait_start = 0;
  bool starving = false;
  bool awoke = false;
  int iter = 0;
  int32_t old = state_.load(std::memory_order_relaxed);
  for (;;) {
    // Do not spin in starvation mode: ownership goes to waiters, we could not take it anyway.
    if ((old & (kLocked | kStarving)) == kLocked && internal::CanSpin(iter)) {
      // Tell Unlock not to wake a sleeper: we are about to take the lock ourselves.
      if (!awoke && (old & kWoken) == 0 && (old >> kWaiterShift) != 0 &&
          state_.compare_exchange_strong(old, old | kWoken, std::memory_order_relaxed)) {
        awoke = true;
      }
      Spin();
      ++iter;
      old = state_.load(std::memory_order_relaxed);
      continue;
    }
    int32_t next = old;
    // A starving mutex is not for the taking: arrivals queue.
    if ((old & kStarving) == 0) next |= kLocked;
    if ((old & (kLocked | kStarving)) != 0) next += 1 << kWaiterShift;
    // Switch to starvation mode, but only while the mutex is locked: Unlock expects a starving
    // mutex to have waiters, which would not hold if we took an unlocked one.
    if (starving && (old & kLocked) != 0) next |= kStarving;
    if (awoke) {
      // We were woken (or spun with the woken bit set): clear the bit in either case.
      if ((next & kWoken) == 0) Fatal("sync: inconsistent mutex state");
      next &= ~kWoken;
    }
    if (!state_.compare_exchange_strong(old, next, std::memory_order_acq_rel,
                                        std::memory_order_relaxed)) {
      continue;  // `old` was reloaded
    }
    if ((old & (kLocked | kStarving)) == 0) return;  // took it with the CAS
    // Registered as a waiter. One who has waited before goes to the front of the queue.
    bool lifo = wait_start != 0;
    if (wait_start == 0) wait_start = internal::Nanotime();
    sema_.Acquire(WaitReason::kSyncMutexLock, lifo);
    starving = starving || internal::Nanotime() - wait_start > kStarvationThresholdNs;
    old = state_.load(std::memory_order_relaxed);
    if ((old & kStarving) != 0) {
      // Handed off to us. The word is not yet consistent: locked is clear and we still count as a
      // waiter. Fix both at once, and leave starvation mode if we are the last waiter or did not
      // wait long.
      if ((old & (kLocked | kWoken)) != 0 || (old >> kWaiterShift) == 0) {
        Fatal("sync: inconsistent mutex state");
      }
      int32_t delta = kLocked - (1 << kWaiterShift);
      if (!starving || (old >> kWaiterShift) == 1) delta -= kStarving;
      state_.fetch_add(delta, std::memory_order_acq_rel);
      return;
    }
    awoke = true;
    iter = 0;
  }
}

__attribute__((noinline)) void Mutex::UnlockSlow(int32_t now) {
  if (((now + kLocked) & kLocked) == 0) Fatal("sync: unlock of unlocked mutex");
  if ((now & kStarving) != 0) {
    // Hand the lock to the first waiter and yield to it. The locked bit stays clear until it runs,
    // but the starving bit keeps arrivals off, so the mutex counts as locked meanwhile.
    sema_.Release(/*handoff=*/true);
    return;
  }
  int32_t old = now;
  for (;;) {
    // Nobody to wake, or a goroutine has already been woken or taken the lock, or another Unlock
    // has gone into starvation hand-off (we did not see the starving bit, so that chain is not
    // ours): nothing to do.
    if ((old >> kWaiterShift) == 0 || (old & (kLocked | kWoken | kStarving)) != 0) return;
    // Take the right to wake one waiter.
    int32_t next = (old - (1 << kWaiterShift)) | kWoken;
    if (state_.compare_exchange_strong(old, next, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      sema_.Release(/*handoff=*/false);
      return;
    }
  }
}

__attribute__((noinline)) void RWMutex::Lock() {
  // First, one writer at a time.
  w_.Lock();
  // Announce the writer to readers; r is how many were in.
  int32_t r = reader_count_.fetch_sub(kMaxReaders, std::memory_order_acq_rel);
  // Wait for those to leave.
  if (r != 0 && reader_wait_.fetch_add(r, std::memory_order_acq_rel) + r != 0) {
    writer_sem_.Acquire(WaitReason::kSyncRWMutexLock);
  }
}

void RWMutex::Unlock() {
  // Announce that no writer is active; r is how many readers queued meanwhile.
  int32_t r = reader_count_.fetch_add(kMaxReaders, std::memory_order_acq_rel) + kMaxReaders;
  if (r >= kMaxReaders) Fatal("sync: Unlock of unlocked RWMutex");
  for (int32_t i = 0; i < r; ++i) reader_sem_.Release();
  // Then let the next writer in.
  w_.Unlock();
}

bool RWMutex::TryLock() {
  if (!w_.TryLock()) return false;
  int32_t zero = 0;
  if (!reader_count_.compare_exchange_strong(zero, -kMaxReaders, std::memory_order_acq_rel,
                                             std::memory_order_relaxed)) {
    w_.Unlock();
    return false;
  }
  return true;
}

bool RWMutex::TryRLock() {
  int32_t c = reader_count_.load(std::memory_order_relaxed);
  while (c >= 0) {
    if (reader_count_.compare_exchange_weak(c, c + 1, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

__attribute__((noinline)) void RWMutex::RLockSlow() {
  // A writer holds or waits for the lock: wait until it has unlocked.
  reader_sem_.Acquire(WaitReason::kSyncRWMutexRLock);
}

void RWMutex::RUnlockSlow(int32_t r) {
  if (r + 1 == 0 || r + 1 == -kMaxReaders) Fatal("sync: RUnlock of unlocked RWMutex");
  // A writer is pending: the last reader it waits for lets it in.
  if (reader_wait_.fetch_sub(1, std::memory_order_acq_rel) - 1 == 0) writer_sem_.Release();
}

}  // namespace greenline
