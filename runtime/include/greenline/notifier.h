// Notifier: a wake-up call for one waiting goroutine, from any number of goroutines or threads.
//
//   greenline::Notifier ready;
//   // producers, anywhere:
//   { greenline::MutexLock l(mu); queue.push_back(item); }
//   ready.Notify();
//   // the one consumer:
//   for (;;) {
//     ready.Wait();                     // returns at once if a Notify came since the last Wait
//     auto batch = TakeAll(queue, mu);  // take everything queued: one wake-up may stand for many
//     ...
//   }
//
// Overview. A Notifier holds one permit. Notify() sets it and wakes the waiter if there is one;
// Wait() returns once the permit is set and takes it. Notifications coalesce: any number of
// Notify() calls before a Wait() make one wake-up, so the consumer takes everything that is
// pending each time it wakes (the idiom above). A Notify() that comes after the waiter has looked
// at its queue but before it parks is not lost: it leaves the permit set, and Wait() returns at
// once. This is Go's `make(chan struct{}, 1)` used with a non-blocking send to notify and a receive
// to wait, or Tokio's Notify with notify_one, without a channel's buffer and select machinery:
// one SpinLock, one pointer, one flag. A Notify that finds the permit set already costs one load.
//
// Waiting. Wait() parks the goroutine with wait reason "sync.Notifier.Wait", a blocking-class wait
// (only another goroutine or thread can end it, so a Notifier nobody notifies is a deadlock the
// runtime reports, as an unread channel is). A goroutine started with GoHibernating can wait
// without a stack: a step returns ResumeWhenNotified(), and the next step runs once notified.
// One waiter at a time: a second concurrent waiter is a fatal error.
//
// One source per wait: a goroutine that must wake for either of two things (a chat connection's
// input and its queued output) is better written as two goroutines, each hibernating on its own
// source (the chat server's reader on its socket, its writer on its outbox's Notifier), which
// costs two goroutine records and no stack. A single wait on two sources would need a one-shot
// claim shared by the two registrations (Go's selectDone) and a way to withdraw the loser.
//
// From where: Notify and TryWait from any thread, goroutine or not; they never block. Wait from a
// goroutine (on a plain thread it polls politely, as the sync types do).
//
// Lifetime: destroy a Notifier only when no goroutine waits on it or is about to; a Notify() still
// inside the Notifier's lock is waited out by the destructor.
#pragma once

#include <atomic>

#include "greenline/goroutine.h"
#include "greenline/internal/spinlock.h"
#include "greenline/thread_annotations.h"

namespace greenline {

namespace internal {
struct G;
}

class Notifier {
 public:
  Notifier() = default;
  ~Notifier();
  Notifier(const Notifier&) = delete;
  Notifier& operator=(const Notifier&) = delete;

  // Sets the permit and readies the waiter, if one is parked. Never blocks; any thread.
  void Notify();
  // Parks until the permit is set, then takes it; returns at once if it is set already. Blocks
  // (a blocking-class wait). From a goroutine; one waiter at a time.
  void Wait();
  // Takes the permit if it is set. Never blocks; any thread.
  bool TryWait();
  // For a goroutine started with GoHibernating: what a step returns to wait for the permit without
  // a stack. The next step runs once the permit is set (at once if it is set now), and the permit
  // is taken by then. The Notifier must outlive the wait (keep it in the goroutine's state).
  Resume ResumeWhenNotified();

 private:
  // Sets *waiter_ to the calling goroutine and parks (releasing lock_), or takes the permit.
  static void WaitHibernating(void* self);

  SpinLock lock_;
  // Set by Notify, taken by the waiter. Written under lock_; Notify reads it first without the
  // lock (seq_cst, see notifier.cc): a Notify that finds it set has nothing to add.
  std::atomic<bool> permit_{false};
  internal::G* waiter_ GL_GUARDED_BY(lock_) = nullptr;  // parked in Wait or hibernating
};

}  // namespace greenline
