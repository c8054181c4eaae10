#include "runtime/sync/wait_group.h"

#include <unistd.h>

#include <mutex>

#include "runtime/base/fatal.h"
#include "runtime/sched/park.h"

namespace greenline {

// A parked waiter: lives on the waiting goroutine's stack until it is readied.
struct WaitGroup::Waiter {
  internal::G* g;
  Waiter* next;
};

void WaitGroup::Add(int64_t delta) {
  int64_t v = count_.fetch_add(delta, std::memory_order_acq_rel) + delta;
  if (v < 0) Fatal("sync: negative WaitGroup counter");
  if (v > 0 || delta > 0) return;
  // Reached zero: release every waiter. A waiter that checked the counter under the lock before
  // this point is on the list; one that checks after sees zero and does not park.
  Waiter* list;
  {
    std::lock_guard<SpinLock> lock(lock_);
    list = waiters_;
    waiters_ = nullptr;
  }
  while (list != nullptr) {
    Waiter* next = list->next;  // read first: the node dies once its goroutine runs
    internal::Ready(list->g);
    list = next;
  }
}

__attribute__((noinline)) void WaitGroup::Wait() {
  if (count_.load(std::memory_order_acquire) == 0) return;
  internal::G* g = internal::CurrentG();
  if (g == nullptr) {
    // A plain thread (tests, start-up code): no goroutine to park.
    while (count_.load(std::memory_order_acquire) != 0) usleep(50);
    return;
  }
  lock_.lock();
  if (count_.load(std::memory_order_acquire) == 0) {
    lock_.unlock();
    return;
  }
  Waiter self{g, waiters_};
  waiters_ = &self;
  internal::ParkUnlock(WaitReason::kSyncWaitGroupWait, &lock_);
}

}  // namespace greenline
