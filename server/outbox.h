// Chat output on its way to the sockets, and the bounds on it.
//
// A message is formatted once (OutMessage) and shared by the queue (Outbox) of every connection it
// goes to. Each connection's writer drains its own queue. Output is bounded at two levels, so that
// a reader that is momentarily behind is told apart from one that is not reading, as Redis's
// client-output-buffer-limit (hard, and soft for N seconds) and NATS (max pending, a write
// deadline) do:
//
//   - Per connection (OutLimits). Past `hard` bytes queued, the connection is cut off at once. Past
//     `soft`, it has `grace` to get back under; a reader still over it after the grace is cut off
//     unless it drained at least `min_rate` bytes a second over that time (then a new grace
//     begins): a reader draining as fast as it can through a burst is never cut by the soft limit.
//   - For the whole process (OutputBudget). All queues together may hold `limit` bytes. When they
//     reach it the budget is exhausted: connections that post stop being read (their next line
//     waits, so TCP pushes back on the sender) until the total falls below the low-water mark,
//     three quarters of the limit. Connections that only read are not slowed, and nobody is cut
//     for it.
//
// Counting: a queued message counts its bytes plus 64 (its record and its queue slot), in its
// connection's queue and in the budget, from the push until the writer has written it (so a flood
// of tiny messages is bounded by memory, not by bytes). A message shared by many queues counts in
// each: the budget is an upper bound on what output really holds.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "greenline/goroutine.h"
#include "greenline/mutex.h"
#include "greenline/notifier.h"
#include "greenline/thread_annotations.h"
#include "server/metrics.h"

namespace greenline::server {

using OutClock = std::chrono::steady_clock;

// One line on its way to one or more clients, shared by every queue it is in (a message to a room
// of 1,000 is formatted and allocated once).
struct OutMessage {
  std::atomic<int32_t> refs;
  std::string text;  // with its "\r\n"

  static OutMessage* Make(std::string text, int32_t refs);
  void Unref() {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
};

// A connection's bounds (see the top of this file): --out-queue, --out-queue-hard,
// --out-queue-grace, --out-min-rate.
struct OutLimits {
  size_t soft = 1 << 20;
  size_t hard = 16 << 20;
  OutClock::duration grace = std::chrono::seconds(10);
  size_t min_rate = 64 << 10;  // bytes per second
};

class OutputBudget;

// A goroutine that waits for an exhausted budget to reopen: it registers with WaitOpen and waits on
// `notifier` (a hibernating step returns notifier.ResumeWhenNotified()). Others may Notify it too
// (a shutdown, a cut-off): it then finds the budget still exhausted, or not.
struct BudgetWaiter {
  Notifier notifier;

 private:
  friend class OutputBudget;
  BudgetWaiter* prev = nullptr;  // in the budget's list, under its mutex
  BudgetWaiter* next = nullptr;
  bool linked = false;
};

// All chat connections' queued output together (see the top of this file). Add and Release are a
// relaxed atomic add each; the mutex is taken only to register a waiter and to reopen.
class OutputBudget {
 public:
  // `metrics` (may be null) gets the total, the limit and the exhaustions
  // (greenline_chat_output_*).
  explicit OutputBudget(size_t limit, Metrics* metrics = nullptr);
  ~OutputBudget();
  OutputBudget(const OutputBudget&) = delete;
  OutputBudget& operator=(const OutputBudget&) = delete;

  void Add(size_t bytes);
  void Release(size_t bytes);

  // True from the moment the total reached the limit until it fell below the low-water mark.
  bool exhausted() const { return exhausted_.load(std::memory_order_acquire); }
  // While exhausted: registers `w` (once, however often it is called) to be notified when the
  // budget reopens, and returns true. When not exhausted: returns false, registering nothing.
  bool WaitOpen(BudgetWaiter* w);
  // Withdraws `w` if it is registered (a connection that ends while it waits).
  void CancelWait(BudgetWaiter* w);

  size_t used() const;
  size_t limit() const { return limit_; }
  size_t low_water() const { return low_; }
  // Times the budget was exhausted.
  uint64_t exhaustions() const { return exhaustions_.load(std::memory_order_relaxed); }

 private:
  void Reopen();
  void UnlinkLocked(BudgetWaiter* w) GL_REQUIRES(mu_);

  const size_t limit_;
  const size_t low_;
  Metrics* const metrics_;
  std::atomic<int64_t> used_{0};
  std::atomic<bool> exhausted_{false};
  std::atomic<uint64_t> exhaustions_{0};
  Mutex mu_;
  BudgetWaiter* head_ GL_GUARDED_BY(mu_) = nullptr;
};

// A connection's output queue: any goroutine pushes, the connection's writer drains.
class Outbox {
 public:
  // `budget` may be null (no process-wide bound); it must outlive the outbox. `soft_deadline` (may
  // be empty) is called, under the outbox's lock, each time the end of the soft limit's grace
  // changes: a time when the queue goes over the soft limit or a new grace begins, the zero time
  // when it is back under. The connection makes it its write deadline, so a writer stuck on a full
  // socket wakes when the grace is over. Not called once the outbox has overflowed.
  Outbox(const OutLimits& limits, OutputBudget* budget,
         std::function<void(OutClock::time_point)> soft_deadline = {});
  ~Outbox();
  Outbox(const Outbox&) = delete;
  Outbox& operator=(const Outbox&) = delete;

  enum class Push { kQueued, kOverflow, kDropped };
  // Queues `m`, taking one of its references. kOverflow: this push went past the hard limit (once
  // per outbox; the message is dropped and the caller cuts the reader off). kDropped: closed or
  // overflowed before; the message is dropped. Dropped messages' references are released.
  Push Put(OutMessage* m);

  enum class Taken { kBatch, kEmpty, kDone };
  // Takes what is queued, without waiting. kBatch: it is in `batch` (which must be empty: it is
  // swapped with the queue); the caller writes the messages, then calls Written(sum of their
  // Cost()) and Unrefs them. kEmpty: nothing now; wait with ResumeWhenReady(), then try again.
  // kDone: closed and drained, or overflowed (what was queued then has been dropped).
  Taken TryTake(std::vector<OutMessage*>* batch);
  // What the writer's step returns to wait, without a stack, until a push or Close may have
  // changed what TryTake says. A push between TryTake's kEmpty and this wait is not lost: the next
  // step runs at once. The writer may also wake to find nothing (the push it was told of went out
  // in the batch before): it tries again and waits again.
  Resume ResumeWhenReady() { return ready_.ResumeWhenNotified(); }
  // The writer wrote `bytes` to the socket (counted as they go, also part of a message: the drain
  // rate the soft limit looks at).
  void Drained(size_t bytes);
  // The writer is done with messages of this total Cost(): they no longer count.
  void Written(size_t cost);

  // The writer's write passed the soft deadline, at `now`. True: the reader is too slow (over the
  // soft limit for the grace, draining below the minimum rate) and the outbox has overflowed, as
  // past the hard limit. False: under the soft limit by now, or draining at the rate (a new grace
  // begins): write on.
  bool SoftLimitExpired(OutClock::time_point now);

  // What a queued message counts against the limits: its bytes plus what holding it costs (its
  // record and the queue slot), so a flood of tiny messages is bounded by memory, not by bytes.
  static size_t Cost(const OutMessage* m) { return m->text.size() + 64; }
  // No more pushes; the writer drains what is queued, then TryTake says kDone.
  void Close();
  bool overflowed() const;
  size_t bytes() const;

 private:
  // Marks the outbox overflowed and takes what is queued out of it (released by the caller, after
  // the lock: Unref may free).
  void OverflowLocked(std::vector<OutMessage*>* dropped) GL_REQUIRES(mu_);
  // Tells soft_deadline_ where the grace ends now, if that changed.
  void SoftDeadlineChangedLocked() GL_REQUIRES(mu_);
  void ReleaseBudget(size_t cost) {
    if (budget_ != nullptr && cost > 0) budget_->Release(cost);
  }

  const OutLimits limits_;
  OutputBudget* const budget_;
  const std::function<void(OutClock::time_point)> soft_deadline_;
  mutable Mutex mu_;
  std::vector<OutMessage*> queue_ GL_GUARDED_BY(mu_);
  size_t bytes_ GL_GUARDED_BY(mu_) = 0;  // Cost() of what is queued or being written
  bool closed_ GL_GUARDED_BY(mu_) = false;
  bool overflow_ GL_GUARDED_BY(mu_) = false;
  // Over the soft limit since then (and drained_ was drained_mark_ then); unset while under it.
  std::optional<OutClock::time_point> over_since_ GL_GUARDED_BY(mu_);
  uint64_t drained_ GL_GUARDED_BY(mu_) = 0;
  uint64_t drained_mark_ GL_GUARDED_BY(mu_) = 0;
  OutClock::time_point told_ GL_GUARDED_BY(mu_){};  // what soft_deadline_ was last told
  // Notified after every push that the writer must see (and on Close): the writer takes everything
  // queued each time it wakes, so one wake-up stands for any number of pushes.
  Notifier ready_;
};

}  // namespace greenline::server
