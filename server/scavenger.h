// Gives the heap's free memory back to the kernel after a burst, as Go's background scavenger does
// for its heap. glibc keeps what a burst freed (a join storm, thousands of connections that came
// and left) mapped: most of it lies below chunks still in use, where trimming the top of the heap
// cannot reach, so RSS would stay at the burst's peak for good. malloc_trim(0) gives the free
// pages of every arena back (MADV_DONTNEED), keeping the address space.
//
//   HeapScavenger scavenger;                  // in main
//   Go([&] { scavenger.Run(); });             // checks every 5 s until Stop()
//   scavenger.Stop();
//
// Each period it reads the allocator's totals (mallinfo2: free and in-use bytes) and trims only
// when the free part is both over 16 MiB and over a quarter of what is in use: a server at a steady
// load keeps its free chunks for reuse and rarely pays for a trim; one whose load went away gets
// its memory back within a period. (With 32 MiB and all of what is in use, the soak's RSS crept up
// by a megabyte a cycle for ten minutes before a trim brought it back.) While a trim walks an arena, a worker that allocates from that arena waits
// for its lock (milliseconds at most, and only after a burst). A trim leaves the chunks free (only
// their pages go), so the totals alone would ask for a trim every period after one burst: it trims
// again only once the free part has moved by half the threshold since, or a minute has passed
// (pages freed then reused and freed again look the same in the totals). Both calls walk the
// arenas' free chunks under each arena's lock (milliseconds for a big heap), so they run on the
// blocking pool, never on a worker.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "greenline/chan.h"

namespace greenline::server {

class HeapScavenger {
 public:
  struct Options {
    std::chrono::milliseconds period = std::chrono::seconds(5);
    size_t min_free = size_t{16} << 20;  // never trim for less free memory than this
  };
  HeapScavenger() : HeapScavenger(Options()) {}
  explicit HeapScavenger(const Options& options) : options_(options) {}

  // Checks every period until Stop (from a goroutine of its own; once).
  void Run();
  // Run returns soon after (any goroutine; once).
  void Stop() { stop_.Close(); }

  // One check now: trims when the heap's free memory is over both thresholds; true if it trimmed.
  // From a goroutine (it waits for the blocking pool).
  bool ScavengeOnce();

  // Times it trimmed. Any thread.
  uint64_t trims() const { return trims_.load(std::memory_order_relaxed); }

 private:
  const Options options_;
  Chan<bool> stop_ = MakeChan<bool>();
  std::atomic<uint64_t> trims_{0};  // relaxed: a count, publishes nothing
  // The free part at the last trim, and when (steady clock ns); 0: none yet. Only the checking
  // goroutine's blocking call touches them (one check at a time: Run's, or a test's).
  size_t free_at_trim_ = 0;
  int64_t trimmed_at_ns_ = 0;
};

}  // namespace greenline::server
