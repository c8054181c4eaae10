// Timer channels: a runtime timer whose callback does a non-blocking send of the time (timer
// callbacks must not park, and TrySend never does; it readies a waiting receiver).
//
// Lifetimes. After's timer owns itself: its callback sends, then deletes it; if the runtime stops
// first, the timer's `discard` hook deletes it. A Ticker's timer is owned by the Ticker; StopTimer
// waits out a periodic callback in progress, so the state may be freed as soon as Stop returns.
#include "greenline/timer_chan.h"

#include "runtime/sched/timer.h"

namespace greenline {
namespace {

TimePoint ToTimePoint(int64_t ns) {
  return TimePoint(std::chrono::duration_cast<TimePoint::duration>(std::chrono::nanoseconds(ns)));
}

// A timer callback must not throw: a handle holder that closed the channel (Go's type system
// forbids it there: the channel is receive-only) just stops getting ticks.
void SendTick(Chan<TimePoint>& ch, int64_t due) {
  try {
    ch.TrySend(ToTimePoint(due));
  } catch (const RuntimeError&) {
  }
}

struct AfterTimer {
  internal::Timer timer;
  Chan<TimePoint> ch;
};

}  // namespace

Chan<TimePoint> After(std::chrono::nanoseconds d) {
  Chan<TimePoint> ch = MakeChan<TimePoint>(1);
  int64_t now = internal::Nanotime();
  if (d.count() <= 0) {
    ch.TrySend(ToTimePoint(now));
    return ch;
  }
  auto* a = new AfterTimer{{}, ch};
  a->timer.when = internal::WhenAfter(now, d.count());
  a->timer.arg = a;
  a->timer.fn = [](internal::Timer* t, int64_t) {
    auto* self = static_cast<AfterTimer*>(t->arg);
    SendTick(self->ch, t->when);  // the time it was due, as Go sends
    delete self;
  };
  a->timer.discard = [](internal::Timer* t) { delete static_cast<AfterTimer*>(t->arg); };
  internal::AddTimer(&a->timer);
  return ch;
}

struct Ticker::State {
  internal::Timer timer;
  Chan<TimePoint> ch = MakeChan<TimePoint>(1);
};

namespace {

void StartTicker(internal::Timer* t, std::chrono::nanoseconds period) {
  t->period = period.count();
  t->when = internal::WhenAfter(internal::Nanotime(), period.count());
  internal::AddTimer(t);
}

}  // namespace

Ticker::Ticker(std::chrono::nanoseconds period) {
  if (period.count() <= 0) throw RuntimeError("non-positive interval for NewTicker");
  state_ = std::make_unique<State>();
  state_->timer.arg = state_.get();
  state_->timer.fn = [](internal::Timer* t, int64_t) {
    SendTick(static_cast<State*>(t->arg)->ch, t->when);  // due time; full: the tick is dropped
  };
  StartTicker(&state_->timer, period);
}

Ticker::~Ticker() { Stop(); }

const Chan<TimePoint>& Ticker::C() const { return state_->ch; }

void Ticker::Stop() { internal::StopTimer(&state_->timer); }

void Ticker::Reset(std::chrono::nanoseconds period) {
  if (period.count() <= 0) throw RuntimeError("non-positive interval for Ticker.Reset");
  Stop();
  StartTicker(&state_->timer, period);
}

}  // namespace greenline
