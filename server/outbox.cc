// Chat output and its bounds (see outbox.h).
//
// The budget and each outbox count the same thing: every change to an outbox's bytes_ is made to
// the budget as well (Put adds, Written and a dropped queue release, the destructor releases what
// was never written), so the budget's total is exactly the sum of the outboxes'.
#include "server/outbox.h"

#include <algorithm>
#include <utility>

namespace greenline::server {

OutMessage* OutMessage::Make(std::string text, int32_t refs) {
  auto* m = new OutMessage;
  m->refs.store(refs, std::memory_order_relaxed);
  m->text = std::move(text);
  return m;
}

// ---- OutputBudget
// --------------------------------------------------------------------------------

OutputBudget::OutputBudget(size_t limit, Metrics* metrics)
    : limit_(limit), low_(limit - limit / 4), metrics_(metrics) {
  if (metrics_ != nullptr) metrics_->chat_output_limit_bytes.Set(static_cast<int64_t>(limit_));
}

OutputBudget::~OutputBudget() = default;

void OutputBudget::Add(size_t bytes) {
  int64_t now = used_.fetch_add(static_cast<int64_t>(bytes), std::memory_order_relaxed) +
                static_cast<int64_t>(bytes);
  if (metrics_ != nullptr) metrics_->chat_output_bytes.Add(static_cast<int64_t>(bytes));
  if (now >= static_cast<int64_t>(limit_) && !exhausted_.load(std::memory_order_relaxed)) {
    if (!exhausted_.exchange(true, std::memory_order_acq_rel)) {
      exhaustions_.fetch_add(1, std::memory_order_relaxed);
      if (metrics_ != nullptr) {
        metrics_->chat_output_exhausted_total.Inc();
        metrics_->chat_output_exhausted.Inc();
      }
    }
  }
}

void OutputBudget::Release(size_t bytes) {
  int64_t now = used_.fetch_sub(static_cast<int64_t>(bytes), std::memory_order_relaxed) -
                static_cast<int64_t>(bytes);
  if (metrics_ != nullptr) metrics_->chat_output_bytes.Add(-static_cast<int64_t>(bytes));
  if (now < static_cast<int64_t>(low_) && exhausted_.load(std::memory_order_acquire)) Reopen();
}

void OutputBudget::Reopen() {
  MutexLock lock(mu_);
  // Checked again under the lock: another Release may have reopened it, or an Add exhausted it
  // again since our look.
  if (!exhausted_.load(std::memory_order_acquire) ||
      used_.load(std::memory_order_relaxed) >= static_cast<int64_t>(low_)) {
    return;
  }
  exhausted_.store(false, std::memory_order_release);
  if (metrics_ != nullptr) metrics_->chat_output_exhausted.Dec();
  // Notified under the lock (Notify never blocks): a waiter woken by something else (a shutdown,
  // a cut-off) may end at any moment, and its CancelWait, which takes this lock, is what keeps it
  // alive until we are done with it.
  for (BudgetWaiter* w = std::exchange(head_, nullptr); w != nullptr;) {
    BudgetWaiter* next = w->next;
    w->linked = false;
    w->prev = w->next = nullptr;
    w->notifier.Notify();
    w = next;
  }
}

bool OutputBudget::WaitOpen(BudgetWaiter* w) {
  MutexLock lock(mu_);
  // Under the lock, against Reopen's: a reopening either came before (not exhausted now) or comes
  // after this registration (and notifies it).
  if (!exhausted_.load(std::memory_order_acquire)) return false;
  if (!w->linked) {
    w->linked = true;
    w->prev = nullptr;
    w->next = head_;
    if (head_ != nullptr) head_->prev = w;
    head_ = w;
  }
  return true;
}

void OutputBudget::CancelWait(BudgetWaiter* w) {
  MutexLock lock(mu_);
  if (w->linked) UnlinkLocked(w);
}

void OutputBudget::UnlinkLocked(BudgetWaiter* w) {
  if (w->prev != nullptr) {
    w->prev->next = w->next;
  } else {
    head_ = w->next;
  }
  if (w->next != nullptr) w->next->prev = w->prev;
  w->prev = w->next = nullptr;
  w->linked = false;
}

size_t OutputBudget::used() const {
  return static_cast<size_t>(std::max<int64_t>(0, used_.load(std::memory_order_relaxed)));
}

// ---- Outbox
// --------------------------------------------------------------------------------------

Outbox::Outbox(const OutLimits& limits, OutputBudget* budget,
               std::function<void(OutClock::time_point)> soft_deadline)
    : limits_(limits), budget_(budget), soft_deadline_(std::move(soft_deadline)) {}

void Outbox::SoftDeadlineChangedLocked() {
  if (overflow_ || !soft_deadline_) return;
  OutClock::time_point at = over_since_ ? *over_since_ + limits_.grace : OutClock::time_point{};
  if (at == told_) return;
  told_ = at;
  soft_deadline_(at);
}

Outbox::~Outbox() {
  for (OutMessage* m : queue_) m->Unref();
  ReleaseBudget(bytes_);
}

Outbox::Push Outbox::Put(OutMessage* m) {
  size_t cost = Cost(m);
  Push result = Push::kQueued;
  std::vector<OutMessage*> dropped;
  size_t released = 0;
  {
    MutexLock lock(mu_);
    if (closed_ || overflow_) {
      result = Push::kDropped;
    } else if (bytes_ + cost > limits_.hard) {
      released = bytes_;
      OverflowLocked(&dropped);
      released -= bytes_;
      result = Push::kOverflow;
    } else {
      queue_.push_back(m);  // may throw bad_alloc: the guard unlocks
      bytes_ += cost;
      if (budget_ != nullptr) budget_->Add(cost);
      if (bytes_ > limits_.soft && !over_since_) {
        over_since_ = OutClock::now();
        drained_mark_ = drained_;
        SoftDeadlineChangedLocked();
      }
    }
  }
  ReleaseBudget(released);
  for (OutMessage* d : dropped) d->Unref();
  if (result != Push::kQueued) m->Unref();
  if (result != Push::kDropped) ready_.Notify();
  return result;
}

void Outbox::OverflowLocked(std::vector<OutMessage*>* dropped) {
  overflow_ = true;
  // What is queued will never be written: it goes now, not when the connection ends. What the
  // writer is writing stays counted until it says Written.
  for (OutMessage* d : queue_) bytes_ -= std::min(Cost(d), bytes_);
  dropped->swap(queue_);
  over_since_.reset();
}

Outbox::Taken Outbox::TryTake(std::vector<OutMessage*>* batch) {
  MutexLock lock(mu_);
  if (overflow_) return Taken::kDone;
  if (!queue_.empty()) {
    batch->swap(queue_);  // O(1) under the lock; the caller hands back an empty vector
    return Taken::kBatch;
  }
  return closed_ ? Taken::kDone : Taken::kEmpty;
}

void Outbox::Drained(size_t bytes) {
  MutexLock lock(mu_);
  drained_ += bytes;
}

void Outbox::Written(size_t cost) {
  size_t released;
  {
    MutexLock lock(mu_);
    released = std::min(cost, bytes_);
    bytes_ -= released;
    if (bytes_ <= limits_.soft && over_since_) {
      over_since_.reset();
      SoftDeadlineChangedLocked();
    }
  }
  ReleaseBudget(released);
}

bool Outbox::SoftLimitExpired(OutClock::time_point now) {
  std::vector<OutMessage*> dropped;
  size_t released = 0;
  {
    MutexLock lock(mu_);
    if (overflow_) return true;
    if (!over_since_ || (limits_.grace.count() > 0 && now < *over_since_ + limits_.grace)) {
      // A deadline that passed as it was being moved: set where it is now once more.
      told_ = OutClock::time_point::max();
      SoftDeadlineChangedLocked();
      return false;
    }
    // A zero grace: over the soft limit is too slow at once, as past the hard one.
    double seconds = std::chrono::duration<double>(now - *over_since_).count();
    double rate = seconds > 0 ? static_cast<double>(drained_ - drained_mark_) / seconds : 0;
    if (limits_.grace.count() > 0 && rate >= static_cast<double>(limits_.min_rate)) {
      over_since_ = now;  // draining at the rate: a new grace
      drained_mark_ = drained_;
      SoftDeadlineChangedLocked();
      return false;
    }
    released = bytes_;
    OverflowLocked(&dropped);
    released -= bytes_;
  }
  ReleaseBudget(released);
  for (OutMessage* d : dropped) d->Unref();
  return true;
}

void Outbox::Close() {
  {
    MutexLock lock(mu_);
    closed_ = true;
  }
  ready_.Notify();
}

bool Outbox::overflowed() const {
  MutexLock lock(mu_);
  return overflow_;
}

size_t Outbox::bytes() const {
  MutexLock lock(mu_);
  return bytes_;
}

}  // namespace greenline::server
