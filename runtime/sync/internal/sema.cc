// Sema: the semaphore under Mutex and RWMutex, Go's semacquire1/semrelease1 per object.
//
// What it is. A count of tokens and a list of parked goroutines. Acquire takes a token with a CAS
// (Go's cansemacquire) or parks; Release adds a token and readies the first parked goroutine, which
// then competes for the token like anyone else (Go: "a woken waiter may find the token taken and
// wait again"). This is deliberate: a strict hand-over to the first waiter would make every release
// wait for that goroutine to be scheduled before anyone could use the token (a lock convoy). The
// exception is `handoff`, Go's starvation mode: the releaser gives the token to the first waiter
// (its `ticket`), readies it into this worker's runnext slot and yields, so the waiter runs at once
// and nobody can overtake it. Go's Mutex switches to that mode when a waiter has waited more than
// 1 ms (mutex.cc).
//
// Per object, not per address. Go hashes the semaphore's address into a 251-entry table of wait
// trees so that a sync.Mutex stays one word and needs no destructor. C++ objects can carry their
// own list and a destructor, so each Sema owns a SpinLock and an intrusive FIFO (a LIFO push at the
// head for `lifo`); no table, no hashing, no collisions between unrelated objects. Rejected: a
// global table as Go's (contention between unrelated mutexes and a lookup on every wait, for a
// size saving we do not need).
//
// Lost wakeups. Tokens are added only under the lock, and a goroutine about to park registers
// under the same lock, then checks the count once more, then parks with ParkUnlock: the lock is
// released only once the goroutine is fully parked (park.h). So a Release either comes before the
// registration (the recheck sees its token) or after it (it finds the goroutine on the list and
// readies it); it cannot fall between the two. Go does the same with a lock-free count and an
// `nwait` counter; holding the lock in Release as well costs nothing here, since the sync
// primitives call Release only when a waiter is known to exist.
//
// Nodes on the stack. A waiter's node (goroutine, link, ticket) lives in its Acquire frame. The
// releaser unlinks it under the lock, writes the ticket, and calls Ready last: once the goroutine
// runs, its frame (and the node) may be gone, so nothing touches the node after Ready.
//
// Lifetime. A Release touches the Sema only under its lock; the destructor takes that lock once, so
// a releaser whose token let a waiter finish and destroy the object has left the lock before the
// memory goes. (Go's garbage collector makes this moot there.)
//
// Plain threads have no goroutine to park: Acquire polls TryAcquire (sched_yield, then 50 us
// sleeps). They never join the list, so a release they are waiting for just adds a token, which
// their next poll takes. The deadlock detector cannot see them (runtime/HACKING.md).
#include "greenline/internal/sema.h"

#include "greenline/goroutine.h"
#include "runtime/sched/park.h"
#include "runtime/sync/internal/poll.h"

namespace greenline::internal {

// A parked goroutine. Lives on its stack, in Acquire's frame, until it is readied.
struct Sema::Waiter {
  G* g;
  Waiter* next = nullptr;
  // Set by a handoff Release before Ready: the token is this goroutine's. Atomic only so that the
  // write and the read after the wake-up pair up without relying on the scheduler's ordering.
  std::atomic<bool> ticket{false};
};

Sema::~Sema() {
  // Wait out a Release still inside the lock (see the essay: lifetime).
  lock_.lock();
  lock_.unlock();
}

bool Sema::TryAcquire() {
  uint32_t c = count_.load(std::memory_order_relaxed);
  while (c > 0) {
    if (count_.compare_exchange_weak(c, c - 1, std::memory_order_acquire,
                                     std::memory_order_relaxed)) {
      return true;
    }
  }
  return false;
}

void Sema::Acquire(WaitReason reason, bool lifo) {
  if (TryAcquire()) return;
  G* g = CurrentG();
  if (g == nullptr) {
    PollUntil([this] { return TryAcquire(); });
    return;
  }
  Waiter self{g};
  for (;;) {
    lock_.lock();
    nwait_.store(nwait_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (TryAcquire()) {  // a token came before we registered
      nwait_.store(nwait_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
      lock_.unlock();
      return;
    }
    if (lifo) {
      waiters_.PushFront(&self);
    } else {
      waiters_.PushBack(&self);
    }
    ParkUnlock(reason, &lock_);
    // A Release unlinked us (and took us out of nwait_).
    if (self.ticket.load(std::memory_order_acquire) || TryAcquire()) return;
    // Someone running took the token before we ran: wait again, as Go does.
  }
}

void Sema::Release(bool handoff) {
  lock_.lock();
  Waiter* w = waiters_.PopFront();
  if (w != nullptr) {
    nwait_.store(nwait_.load(std::memory_order_relaxed) - 1, std::memory_order_relaxed);
  }
  if (w != nullptr && handoff) {
    w->ticket.store(true, std::memory_order_release);
  } else {
    count_.fetch_add(1, std::memory_order_release);
  }
  lock_.unlock();
  if (w == nullptr) return;
  Ready(w->g);  // last touch of the node: its goroutine may run, return and reuse the frame now
  if (handoff) {
    // Ready put it in runnext; yielding runs it now, on our time slice (Go's goyield).
    Yield();
  }
}

}  // namespace greenline::internal
