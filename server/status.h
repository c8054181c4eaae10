// The live status page: GET / on the admin port, a page that draws the server's last minutes from
// /status.json, which this file's StatusBoard renders.
//
//   StatusBoard board(metrics, &chat);          // chat may be null (chat off)
//   Go([&] { board.Run(); });                    // samples once a second until Stop()
//   ...
//   std::string json = board.Json(since);        // the admin handler, per poll of the page
//   board.Stop();                                // at shutdown: Run returns
//
// What a sample holds: goroutines by state (running vs blocking, and parked by wait reason: the
// runtime's model, made visible), connections open per service, the cumulative counters the page
// turns into rates (lines received and sent per service: chat's sent lines are its deliveries),
// panics recovered, chat rooms and queued chat output, resident memory and CPU time. The ring keeps
// the last `keep` samples (default 600: ten minutes at one a second), so a page opened now shows
// the minutes before it, and the page asks only for what it has not seen (`since`).
//
// Why sampled on the server, by one goroutine, rather than read at each request: the history is
// there before anyone looks, the cost is one sample a second however many pages are open (the
// rooms list takes the chat hub's lock), and every page sees the same numbers.
//
// The sampler is a goroutine of the server's runtime: the page counts it (one goroutine asleep, or
// in "select" between ticks). Room names are user input: they go out as JSON strings, and the page
// puts them in the DOM as text, never as markup (the chat protocol allows only [A-Za-z0-9_-] in
// names today; the page does not rely on it).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <vector>

#include "greenline/chan.h"
#include "greenline/mutex.h"
#include "greenline/state.h"
#include "server/metrics.h"

namespace greenline::server {

class ChatService;

// One second of the server, as the page draws it.
struct StatusSample {
  uint64_t seq = 0;     // 1, 2, ...: the page asks for samples after the last it has
  int64_t unix_ms = 0;  // when it was taken (wall clock)
  StateCounts goroutines;
  int64_t connections[static_cast<size_t>(ServiceId::kCount)] = {};
  uint64_t lines_received[static_cast<size_t>(ServiceId::kCount)] = {};  // cumulative
  uint64_t lines_sent[static_cast<size_t>(ServiceId::kCount)] = {};      // cumulative
  uint64_t panics_recovered = 0;                                         // cumulative, all services
  uint64_t disconnects_too_slow = 0;                                     // cumulative
  int64_t chat_rooms = 0;
  int64_t chat_output_bytes = 0;
  int64_t resident_bytes = -1;  // -1: unknown
  double cpu_seconds = -1;      // cumulative user + system; -1: unknown
};

// A chat room and how many are in it, for the page's table.
struct StatusRoom {
  std::string name;  // "#lobby"
  size_t members = 0;
};

class StatusBoard {
 public:
  struct Options {
    std::chrono::milliseconds period = std::chrono::seconds(1);
    size_t keep = 600;      // samples kept (ten minutes at one a second)
    size_t max_rooms = 50;  // the biggest rooms listed; the total count is always given
  };
  // `metrics` must outlive the board, and so must `chat` (null when chat is off).
  StatusBoard(const Metrics& metrics, ChatService* chat, const Options& options);
  StatusBoard(const Metrics& metrics, ChatService* chat) : StatusBoard(metrics, chat, Options()) {}
  StatusBoard(const StatusBoard&) = delete;
  StatusBoard& operator=(const StatusBoard&) = delete;

  // Takes a sample now, then one every period until Stop. Run it on a goroutine of its own; it
  // parks between samples. Once per board.
  void Run();
  // Run returns soon after (from any goroutine; once).
  void Stop();

  // Takes one sample and keeps it (Run calls it; tests call it to step the board). From a
  // goroutine: it takes the board's and the chat hub's locks.
  void Sample();

  // The page's data as JSON: the samples after `since` (all kept ones for 0), the current rooms
  // (biggest first), and the server's fixed facts (version, poller, workers, period). From a
  // goroutine.
  std::string Json(uint64_t since);

 private:
  const Metrics& metrics_;
  ChatService* const chat_;
  const Options options_;
  const int64_t boot_ms_;  // when the board was made (wall clock): a page sees a restart by it
  Chan<bool> stop_ = MakeChan<bool>();  // closed by Stop
  Mutex mu_;
  std::deque<StatusSample> samples_ GL_GUARDED_BY(mu_);  // oldest first, at most options_.keep
  uint64_t next_seq_ GL_GUARDED_BY(mu_) = 1;
  std::vector<StatusRoom> rooms_ GL_GUARDED_BY(mu_);  // at the last sample, biggest first
  size_t rooms_total_ GL_GUARDED_BY(mu_) = 0;
};

// The page's files, built into the binary (server/status/; Chart.js from Debian's libjs-chart.js):
// the HTML of GET /, its script, and Chart.js.
std::string_view StatusPageHtml();
std::string_view StatusPageScript();
std::string_view ChartJs();

}  // namespace greenline::server
