// Timer channels: Go's time.After and time.Ticker, for timeouts and periodic work in Select.
//
//   greenline::Select(
//       greenline::RecvCase(replies, [&](Reply r) { ... }),
//       greenline::RecvCase(greenline::After(2s), [&] { timed_out = true; }));
//
//   greenline::Ticker tick(100ms);
//   for (;;) { tick.C().Recv(); flush(); }
//
// Both deliver the time a tick was due (steady clock) on a channel of capacity 1 from a runtime
// timer (sched/timer.h), as Go before 1.23 did: a ticker whose receiver falls behind drops ticks
// rather than queueing them, and keeps its phase (ticks stay due at start + k * period). Durations
// too large for the clock saturate rather than wrap. A pending timer keeps the deadlock detector
// quiet, as in Go: a goroutine waiting for one is not stuck.
//
// Requires a running runtime. Any thread (from a goroutine usually).
#pragma once

#include <chrono>
#include <memory>

#include "greenline/chan.h"

namespace greenline {

using TimePoint = std::chrono::steady_clock::time_point;

// time.After(d): a channel that receives the time once, `d` from now (at once if d <= 0). The
// timer lives until it fires, even if the channel is dropped (Go before 1.23).
Chan<TimePoint> After(std::chrono::nanoseconds d);

// time.Ticker: C() receives the time every `period`.
class Ticker {
 public:
  // Throws RuntimeError("non-positive interval for NewTicker") when period <= 0, as Go panics.
  explicit Ticker(std::chrono::nanoseconds period);
  // Stops the ticker.
  ~Ticker();
  Ticker(const Ticker&) = delete;
  Ticker& operator=(const Ticker&) = delete;

  // The channel the ticks arrive on (a handle copy may outlive the ticker; it just stops ticking).
  const Chan<TimePoint>& C() const;

  // No more ticks after this returns (a tick already in the channel stays there). Never blocks
  // for long: if the tick is being delivered on another worker right now, waits for that.
  void Stop();

  // Stops the ticker and restarts it with a new period, the next tick `period` from now. Throws
  // RuntimeError("non-positive interval for Ticker.Reset") when period <= 0.
  void Reset(std::chrono::nanoseconds period);

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace greenline
