// Cond: Go's sync/cond.go over Go's notify list (runtime/sema.go, notifyList*).
//
// Tickets. Wait takes a ticket (wait_, an atomic counter) *while it still holds L*, then unlocks
// L, then joins the list unless its ticket has been notified already. Signal notifies the oldest
// ticket not yet notified (notify_, advanced by one under the list lock) and readies the goroutine
// holding it if that goroutine is on the list; if it is not yet (it has its ticket but has not
// reached the list), it will see notify_ past its ticket and not park. Broadcast sets notify_ to
// wait_ and readies the whole list. So a Signal always lands on a waiter that began before it, the
// gap between unlocking L and parking loses nothing, and a wake-up is never spurious.
//
// Why tickets rather than "wake whoever is on the list": between unlocking L and taking the list
// lock, the waiter is in neither place; a Signal in that gap must still count for it, and must not
// count for a waiter that starts later. Rejected: holding the list lock across unlocking L (it
// would nest a SpinLock around a lock that may park).
//
// Nodes on the stack: each parked waiter's node lives in its Wait frame; Signal and Broadcast
// unlink nodes under the lock and read `next` before Ready, after which the node may be gone.
//
// Plain threads cannot park: their Wait polls notify_ until it passes their ticket (sched_yield,
// then 50 us sleeps). A ticket nobody finds on the list is still notified in turn, so they are
// served in order like everyone else.
#include "greenline/cond.h"

#include "runtime/sched/park.h"
#include "runtime/sync/internal/poll.h"

namespace greenline {
namespace {

// Go's `less` for wrapping tickets: a is before b.
bool Before(uint32_t a, uint32_t b) { return static_cast<int32_t>(a - b) < 0; }

}  // namespace

// A parked waiter, on its goroutine's stack in Wait until readied.
struct Cond::Waiter {
  internal::G* g;
  uint32_t ticket;
  Waiter* next = nullptr;
};

Cond::~Cond() {
  // A waiter that saw its ticket notified without parking may return (and destroy us) while the
  // Signal that notified it still holds the list lock: wait for that Signal to let go.
  list_lock_.lock();
  list_lock_.unlock();
}

__attribute__((noinline)) void Cond::Wait() {
  uint32_t ticket = wait_.fetch_add(1, std::memory_order_acq_rel);
  unlock_(l_);
  internal::G* g = internal::CurrentG();
  if (g == nullptr) {
    internal::PollUntil([&] { return Before(ticket, notify_.load(std::memory_order_acquire)); });
  } else {
    list_lock_.lock();
    if (Before(ticket, notify_.load(std::memory_order_relaxed))) {
      list_lock_.unlock();  // notified between unlocking L and here
    } else {
      Waiter self{g, ticket};
      waiters_.PushBack(&self);
      internal::ParkUnlock(WaitReason::kSyncCondWait, &list_lock_);
    }
  }
  lock_(l_);
}

void Cond::Signal() {
  // Nobody has taken a ticket since the last notification: nothing to do, without the lock.
  if (wait_.load(std::memory_order_acquire) == notify_.load(std::memory_order_acquire)) return;
  list_lock_.lock();
  uint32_t t = notify_.load(std::memory_order_relaxed);
  if (t == wait_.load(std::memory_order_acquire)) {
    list_lock_.unlock();
    return;
  }
  notify_.store(t + 1, std::memory_order_release);
  // Find ticket t; it is almost always at the head (tickets join nearly in order). If it is not on
  // the list yet, its goroutine will see notify_ past its ticket and not park.
  Waiter* prev = nullptr;
  for (Waiter* w = waiters_.front(); w != nullptr; prev = w, w = w->next) {
    if (w->ticket != t) continue;
    waiters_.Remove(prev, w);
    internal::G* g = w->g;
    list_lock_.unlock();
    internal::Ready(g);
    return;
  }
  list_lock_.unlock();
}

void Cond::Broadcast() {
  if (wait_.load(std::memory_order_acquire) == notify_.load(std::memory_order_acquire)) return;
  list_lock_.lock();
  Waiter* list = waiters_.TakeAll();
  notify_.store(wait_.load(std::memory_order_acquire), std::memory_order_release);
  list_lock_.unlock();
  while (list != nullptr) {
    Waiter* next = list->next;  // read first: the node dies once its goroutine runs
    internal::Ready(list->g);
    list = next;
  }
}

}  // namespace greenline
