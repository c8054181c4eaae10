// Once: Go's sync/once.go. The done flag is read with one acquire load on the fast path; the slow
// path takes a Mutex, so callers that race with the first one park until it has finished (a plain
// compare-and-swap on the flag would let them return before `f` completed, which is Go's
// documented reason for the mutex). The flag is set after `f` returns or throws, still under the
// mutex, with a release store: whoever sees it set sees all of `f`'s writes.
#include "greenline/once.h"

namespace greenline {

__attribute__((noinline)) void Once::DoSlow(void (*call)(void*), void* f) {
  MutexLock lock(m_);
  if (done_.load(std::memory_order_relaxed)) return;  // m_ orders us after the setter
  // Go's `defer o.done.Store(1)`: done even if f throws.
  struct SetDone {
    std::atomic<bool>* done;
    ~SetDone() { done->store(true, std::memory_order_release); }
  } set_done{&done_};
  call(f);
}

}  // namespace greenline
