#include "server/scavenger.h"

#include <malloc.h>

#include <chrono>

#include "greenline/goroutine.h"
#include "greenline/timer_chan.h"

namespace greenline::server {

bool HeapScavenger::ScavengeOnce() {
  return Blocking([this] {
    struct mallinfo2 info = mallinfo2();
    size_t free_bytes = info.fordblks;  // free chunks in all arenas (tcache's count as in use)
    size_t in_use = info.uordblks + info.hblkhd;  // allocated, mmapped big blocks included
    if (free_bytes < options_.min_free || free_bytes < in_use / 4) return false;
    int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                      std::chrono::steady_clock::now().time_since_epoch())
                      .count();
    size_t moved =
        free_bytes > free_at_trim_ ? free_bytes - free_at_trim_ : free_at_trim_ - free_bytes;
    if (trimmed_at_ns_ != 0 && moved < options_.min_free / 2 &&
        now - trimmed_at_ns_ < int64_t{60'000'000'000}) {
      return false;  // nothing new to give back since the last trim
    }
    malloc_trim(0);
    free_at_trim_ = mallinfo2().fordblks;  // after: a trim of the heap's top lowers it
    trimmed_at_ns_ = now;
    trims_.fetch_add(1, std::memory_order_relaxed);
    return true;
  });
}

void HeapScavenger::Run() {
  Ticker tick(options_.period);
  bool stopped = false;
  while (!stopped) {
    Select(RecvCase(tick.C(), [&] { ScavengeOnce(); }), RecvCase(stop_, [&] { stopped = true; }));
  }
}

}  // namespace greenline::server
