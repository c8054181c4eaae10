#include "server/status.h"

#include <chrono>
#include <nlohmann/json.hpp>
#include <utility>

#include "greenline/net.h"
#include "greenline/runtime.h"
#include "greenline/timer_chan.h"
#include "server/chat.h"

namespace greenline::server {

StatusBoard::StatusBoard(const Metrics& metrics, ChatService* chat, const Options& options)
    : metrics_(metrics),
      chat_(chat),
      options_(options),
      boot_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count()) {}

void StatusBoard::Run() {
  Sample();
  Ticker tick(options_.period);
  bool stopped = false;
  while (!stopped) {
    Select(RecvCase(tick.C(), [&] { Sample(); }), RecvCase(stop_, [&] { stopped = true; }));
  }
}

void StatusBoard::Stop() { stop_.Close(); }

void StatusBoard::Sample() {
  StatusSample s;
  s.unix_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::system_clock::now().time_since_epoch())
                  .count();
  s.goroutines = ReadStateCounts();
  for (size_t i = 0; i < static_cast<size_t>(ServiceId::kCount); ++i) {
    auto id = static_cast<ServiceId>(i);
    s.connections[i] = metrics_.connections_active[id].Value();
    s.lines_received[i] = metrics_.lines_received_total[id].Value();
    s.lines_sent[i] = metrics_.lines_sent_total[id].Value();
    s.panics_recovered += metrics_.panics_recovered_total[id].Value();
  }
  s.disconnects_too_slow = metrics_.disconnects_total[DisconnectReason::kTooSlow].Value();
  s.chat_rooms = metrics_.chat_rooms.Value();
  s.chat_output_bytes = metrics_.chat_output_bytes.Value();
  // getrusage and /proc/self/statm: microseconds, never waiting on a device.
  ProcessUsage usage = ReadProcessUsage();
  s.resident_bytes = usage.resident_bytes;
  s.cpu_seconds = usage.cpu_seconds;

  std::vector<std::pair<std::string, size_t>> biggest;
  size_t total = chat_ != nullptr ? chat_->BiggestRooms(options_.max_rooms, &biggest) : 0;
  std::vector<StatusRoom> rooms;
  rooms.reserve(biggest.size());
  for (auto& [name, members] : biggest) rooms.push_back({std::move(name), members});

  MutexLock lock(mu_);
  s.seq = next_seq_++;
  samples_.push_back(s);
  while (samples_.size() > options_.keep) samples_.pop_front();
  rooms_ = std::move(rooms);
  rooms_total_ = total;
}

namespace {

nlohmann::json SampleJson(const StatusSample& s) {
  using nlohmann::json;
  json waiting = json::object();
  for (int r = 1; r < static_cast<int>(WaitReason::kCount); ++r) {
    if (s.goroutines.by_reason[r] != 0) {
      waiting[std::string(WaitReasonName(static_cast<WaitReason>(r)))] = s.goroutines.by_reason[r];
    }
  }
  json conns = json::object(), in = json::object(), out = json::object();
  for (size_t i = 0; i < static_cast<size_t>(ServiceId::kCount); ++i) {
    std::string name(ServiceName(static_cast<ServiceId>(i)));
    conns[name] = s.connections[i];
    in[name] = s.lines_received[i];
    out[name] = s.lines_sent[i];
  }
  json j = {
      {"seq", s.seq},
      {"t", s.unix_ms},
      {"goroutines",
       {{"live", s.goroutines.live},
        {"running", s.goroutines.running},
        {"blocking", s.goroutines.blocking},
        {"waiting", std::move(waiting)}}},
      {"connections", std::move(conns)},
      {"lines_received", std::move(in)},
      {"lines_sent", std::move(out)},
      {"panics_recovered", s.panics_recovered},
      {"disconnects_too_slow", s.disconnects_too_slow},
      {"chat_rooms", s.chat_rooms},
      {"chat_output_bytes", s.chat_output_bytes},
  };
  if (s.resident_bytes >= 0) j["resident_bytes"] = s.resident_bytes;
  if (s.cpu_seconds >= 0) j["cpu_seconds"] = s.cpu_seconds;
  return j;
}

}  // namespace

std::string StatusBoard::Json(uint64_t since) {
  std::vector<StatusSample> samples;
  std::vector<StatusRoom> rooms;
  size_t rooms_total = 0;
  uint64_t last_seq = 0;
  {
    MutexLock lock(mu_);
    last_seq = next_seq_ - 1;
    for (const StatusSample& s : samples_) {
      if (s.seq > since) samples.push_back(s);
    }
    rooms = rooms_;
    rooms_total = rooms_total_;
  }
  using nlohmann::json;
  json list = json::array();
  for (StatusRoom& r : rooms) list.push_back({{"name", std::move(r.name)}, {"members", r.members}});
  // Every wait reason's name, running-class ones first, so the page can order and colour them
  // without knowing the runtime's list.
  json reasons = json::array();
  for (int r = 1; r < static_cast<int>(WaitReason::kCount); ++r) {
    auto reason = static_cast<WaitReason>(r);
    reasons.push_back(
        {{"name", std::string(WaitReasonName(reason))}, {"blocking", IsBlocking(reason)}});
  }
  json samples_json = json::array();
  for (const StatusSample& s : samples) samples_json.push_back(SampleJson(s));
  json j = {
      {"version", std::string(BuildVersion())},
      {"poller", net::PollerName()},
      {"workers", MaxProcs()},
      {"period_ms", options_.period.count()},
      {"keep", options_.keep},
      {"boot", boot_ms_},
      {"last_seq", last_seq},
      {"reasons", std::move(reasons)},
      {"samples", std::move(samples_json)},
      {"rooms", {{"total", rooms_total}, {"biggest", std::move(list)}}},
  };
  // Names that are not UTF-8 (the protocol allows none today) become U+FFFD, not an exception.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

}  // namespace greenline::server

extern "C" {
extern const char greenline_status_html_begin[], greenline_status_html_end[];
extern const char greenline_status_js_begin[], greenline_status_js_end[];
extern const char greenline_chart_js_begin[], greenline_chart_js_end[];
}

namespace greenline::server {

std::string_view StatusPageHtml() {
  return {greenline_status_html_begin,
          static_cast<size_t>(greenline_status_html_end - greenline_status_html_begin)};
}
std::string_view StatusPageScript() {
  return {greenline_status_js_begin,
          static_cast<size_t>(greenline_status_js_end - greenline_status_js_begin)};
}
std::string_view ChartJs() {
  return {greenline_chart_js_begin,
          static_cast<size_t>(greenline_chart_js_end - greenline_chart_js_begin)};
}

}  // namespace greenline::server
