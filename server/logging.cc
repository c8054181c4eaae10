#include "server/logging.h"

#include <spdlog/async.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <sys/time.h>
#include <unistd.h>

#include <ctime>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "greenline/log.h"

namespace greenline::server {

namespace {

// One JSON object per line: {"time":"2026-11-27T21:50:19.123Z","level":"info","msg":"..."}.
// nlohmann::json escapes the message (quotes, backslashes, control bytes) and replaces invalid
// UTF-8 (a peer's bytes can reach a message) with U+FFFD, so every line parses.
class JsonStdoutSink final : public spdlog::sinks::base_sink<std::mutex> {
 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    auto t = std::chrono::system_clock::to_time_t(msg.time);
    auto ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(msg.time.time_since_epoch()).count() %
        1000;
    std::tm tm{};
    gmtime_r(&t, &tm);
    char when[64];
    std::snprintf(when, sizeof when, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                  tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, int(ms));
    nlohmann::json j;
    j["time"] = when;
    auto level = spdlog::level::to_string_view(msg.level);
    j["level"] = std::string(level.data(), level.size());
    j["msg"] = std::string(msg.payload.data(), msg.payload.size());
    std::string line = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    line += '\n';
    std::fwrite(line.data(), 1, line.size(), stdout);
  }
  void flush_() override { std::fflush(stdout); }
};

void RuntimeSink(LogLevel level, std::string_view message) {
  spdlog::level::level_enum l = spdlog::level::info;
  switch (level) {
    case LogLevel::kDebug:
      l = spdlog::level::debug;
      break;
    case LogLevel::kInfo:
      l = spdlog::level::info;
      break;
    case LogLevel::kWarn:
      l = spdlog::level::warn;
      break;
    case LogLevel::kError:
      l = spdlog::level::err;
      break;
  }
  spdlog::log(l, "{}", message);
}

}  // namespace

void SetUpLogging(const Config& config) {
  spdlog::init_thread_pool(8192, 1);
  spdlog::sink_ptr sink;
  if (config.log_format == LogFormat::kJson) {
    sink = std::make_shared<JsonStdoutSink>();
  } else {
    sink = std::make_shared<spdlog::sinks::stdout_sink_mt>();
  }
  auto logger = std::make_shared<spdlog::async_logger>(
      "greenline", sink, spdlog::thread_pool(), spdlog::async_overflow_policy::overrun_oldest);
  if (config.log_format == LogFormat::kText) {
    logger->set_pattern("%Y-%m-%dT%H:%M:%S.%eZ %-5l %v", spdlog::pattern_time_type::utc);
  }
  spdlog::level::level_enum level = spdlog::level::from_str(config.log_level);
  logger->set_level(level);
  // Each line at info and above is flushed as the logging thread writes it (a SIGKILL loses
  // nothing already written); debug lines are many and go out in stdio's blocks.
  logger->flush_on(spdlog::level::info);
  spdlog::set_default_logger(logger);
  SetLogLevel(level == spdlog::level::debug  ? LogLevel::kDebug
              : level == spdlog::level::info ? LogLevel::kInfo
              : level == spdlog::level::warn ? LogLevel::kWarn
                                             : LogLevel::kError);
  SetLogSink(RuntimeSink);
}

void ShutDownLogs() {
  SetLogSink(nullptr);  // the runtime's last lines (its workers stopping) go to stderr
  spdlog::shutdown();   // drains the queue, joins the logging thread
  std::fflush(stdout);
}

}  // namespace greenline::server
