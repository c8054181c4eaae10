// The server's metrics: counters and gauges cheap enough for the hot path of every worker, and
// their rendering in Prometheus's text format (0.0.4) for /metrics.
//
//   greenline::server::Metrics metrics;                      // one per server, passed by reference
//   metrics.connections_total[ServiceId::kChat].Inc();
//   metrics.lines_sent_total[ServiceId::kChat].Add(n);         // chat fan-out: once per delivery
//   metrics.disconnects_total[DisconnectReason::kTooSlow].Inc();
//   std::string text = metrics.RenderPrometheus();
//
// Overview
//   - Counter and Gauge are sharded: each holds one cache-line-sized cell per shard, and a thread
//     adds to the cell of its own shard (assigned round-robin at its first update) with a relaxed
//     atomic add. Chat fan-out increments a counter per delivered line on every worker at once;
//     with one shared atomic that cache line would bounce between CPUs on every delivery. A read
//     sums the cells: approximate while updates run (each cell is exact, the sum is not a
//     snapshot), exact once they stop. That is all a scrape needs.
//   - Shards: twice the hardware threads rounded up to a power of two, at most 128, fixed at first
//     use. More threads than shards (blocking-pool threads, runtimes started one after another in
//     tests) share cells: still correct (the add is atomic), only less spread.
//   - There is no global registry: the server owns one Metrics and hands a reference to whatever
//     counts (the HTTP server through HttpOptions::metrics, the admin handler, the echo and chat
//     handlers). Tests make their own. The label sets are closed enums (ServiceId,
//     DisconnectReason), so a labelled family is an array indexed by the enum: no map lookup, no
//     lock, no allocation on the hot path.
//   - Values the runtime and the kernel already keep (goroutines by state, workers, the poller,
//     process memory, CPU, descriptors) are read when rendering, not stored.
//
// From where: Inc/Add/Value from any thread, goroutine or not; never blocks (Gauge::Set takes a
// short lock, see there). RenderPrometheus reads /proc: call it off the workers
// (greenline::Blocking), as the admin handler does.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>

namespace greenline::server {

// The version this server was built as (the CMake project's VERSION): build_info, the HTTP Server
// header.
std::string_view BuildVersion();

// The process's CPU time so far (user + system, seconds) and resident memory (bytes); -1 where
// unknown. getrusage and /proc/self/statm: microseconds, from any thread or goroutine.
struct ProcessUsage {
  double cpu_seconds = -1;
  int64_t resident_bytes = -1;
};
ProcessUsage ReadProcessUsage();

// The services a connection belongs to (label service="echo|chat|http").
enum class ServiceId : uint8_t { kEcho, kChat, kHttp, kCount };
std::string_view ServiceName(ServiceId service);

// Why the server ended a line-protocol connection (label reason="..."). HTTP connections are not
// counted here: every keep-alive scrape would drown the echo and chat reasons.
enum class DisconnectReason : uint8_t {
  kEof,          // "eof": the client closed its side
  kError,        // "error": reset or another I/O error
  kIdleTimeout,  // "idle_timeout": nothing received for the idle timeout (slowloris included)
  kLineTooLong,  // "line_too_long": a line over the limit
  kTooSlow,      // "too_slow": the output queue overflowed (a reader that fell behind)
  kQuit,         // "quit": /quit
  kServerFull,   // "server_full": turned away over --max-conns
  kPanic,        // "panic": the handler panicked (recovered)
  kShutdown,     // "shutdown": closed by a graceful shutdown
  kCount,
};
std::string_view DisconnectReasonName(DisconnectReason reason);

namespace internal {

// The calling thread's shard, in [0, ShardCount()). Not inlined, on purpose: a goroutine may
// resume on another thread after any switch, and an inlined thread_local read may reuse the address
// computed before it (runtime/HACKING.md). A stale shard would still count correctly, but would
// bring back the sharing that sharding avoids.
size_t ThreadShard();
size_t ShardCount();

// One shard's cell: alone on its cache line (64 bytes on x86-64 and on the aarch64 cores we run
// on; std::hardware_destructive_interference_size warns under g++ as ABI-unstable).
struct alignas(64) Cell {
  std::atomic<uint64_t> value{0};  // relaxed: a sum of independent counts, nothing is published
};

// The cells of one Counter or Gauge.
class Cells {
 public:
  Cells() : cells_(new Cell[ShardCount()]) {}
  Cells(const Cells&) = delete;
  Cells& operator=(const Cells&) = delete;

  void Add(uint64_t delta) {
    cells_[ThreadShard()].value.fetch_add(delta, std::memory_order_relaxed);
  }
  // Unsigned wrap-around makes this the signed sum for a gauge too.
  uint64_t Sum() const;

 private:
  std::unique_ptr<Cell[]> cells_;
};

}  // namespace internal

// A monotonic count (Prometheus counter): connections accepted, lines, bytes.
class Counter {
 public:
  void Inc() { cells_.Add(1); }
  void Add(uint64_t n) { cells_.Add(n); }
  uint64_t Value() const { return cells_.Sum(); }

 private:
  internal::Cells cells_;
};

// A value that goes up and down (Prometheus gauge): open connections, chat rooms.
class Gauge {
 public:
  void Inc() { Add(1); }
  void Dec() { Add(-1); }
  void Add(int64_t delta) { cells_.Add(static_cast<uint64_t>(delta)); }
  // Replaces the value. Sets are serialised by a lock (held for one sum and one add, never across
  // a park); an Add racing with a Set counts as if it came just before or just after it, so none
  // is lost. For rare updates (the shutting-down flag at a scrape, a value polled from elsewhere).
  void Set(int64_t value);
  int64_t Value() const { return static_cast<int64_t>(cells_.Sum()); }

 private:
  internal::Cells cells_;
  std::mutex set_lock_;  // serialises Set (read the sum, add the difference)
};

// A metric per value of a label enum (ServiceId or DisconnectReason): family[ServiceId::kChat].
template <class Metric, class Label>
class Labeled {
 public:
  Metric& operator[](Label label) { return metrics_[static_cast<size_t>(label)]; }
  const Metric& operator[](Label label) const { return metrics_[static_cast<size_t>(label)]; }

 private:
  std::array<Metric, static_cast<size_t>(Label::kCount)> metrics_;
};

// Every metric the server keeps, named after the Prometheus name it renders as.
struct Metrics {
  Metrics() = default;
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  Labeled<Gauge, ServiceId> connections_active;          // greenline_connections_active
  Labeled<Counter, ServiceId> connections_total;         // greenline_connections_total
  Labeled<Counter, ServiceId> lines_received_total;      // greenline_lines_received_total
  Labeled<Counter, ServiceId> lines_sent_total;          // greenline_lines_sent_total
  Labeled<Counter, ServiceId> bytes_received_total;      // greenline_bytes_received_total
  Labeled<Counter, ServiceId> bytes_sent_total;          // greenline_bytes_sent_total
  Labeled<Counter, ServiceId> panics_recovered_total;    // greenline_panics_recovered_total
  Labeled<Counter, ServiceId> rate_limited_total;        // greenline_rate_limited_total (lines)
  Labeled<Counter, DisconnectReason> disconnects_total;  // greenline_disconnects_total
  Gauge chat_rooms;                                      // greenline_chat_rooms
  Gauge chat_output_bytes;              // greenline_chat_output_bytes (queued, all connections)
  Gauge chat_output_limit_bytes;        // greenline_chat_output_limit_bytes (--out-memory)
  Gauge chat_output_exhausted;          // greenline_chat_output_exhausted (0 or 1)
  Counter chat_output_exhausted_total;  // greenline_chat_output_exhausted_total
  // greenline_shutting_down (0 or 1). The admin handler sets it from its shutting-down flag at
  // each scrape, so the server need not keep the two in step.
  Gauge shutting_down;

  // The text exposition format 0.0.4: "# HELP" and "# TYPE" per family, then its samples, for the
  // metrics above plus greenline_goroutines{state}, greenline_goroutines_waiting{reason},
  // greenline_workers, greenline_poller_info{kind}, greenline_build_info{version} and the standard
  // process_* metrics (resident and virtual memory, CPU seconds, open and maximum descriptors,
  // start time). Reads /proc: may take milliseconds
  // with many descriptors open, so call it off the workers (greenline::Blocking). From any
  // thread.
  std::string RenderPrometheus() const;
};

}  // namespace greenline::server
