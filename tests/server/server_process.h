// End-to-end test helpers: the real `greenline` binary in a child process on free loopback ports,
// and plain blocking-socket clients (no greenline runtime on the client side, so a runtime bug
// cannot hide itself in the test's own I/O).
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace greenline::testing {

// A running greenline server. The destructor kills it (SIGKILL) if it still runs.
class ServerProcess {
 public:
  // Starts `binary` with --echo-addr/--chat-addr/--http-addr on free 127.0.0.1 ports plus `args`,
  // and waits (up to 10 s) until /healthz answers. Failures are reported with ADD_FAILURE and
  // leave ok() false.
  explicit ServerProcess(std::vector<std::string> args);
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  bool ok() const { return pid_ > 0 && ready_; }
  pid_t pid() const { return pid_; }
  uint16_t echo_port() const { return echo_port_; }
  uint16_t chat_port() const { return chat_port_; }
  uint16_t http_port() const { return http_port_; }

  // Sends `sig`; then Wait() for the exit.
  void Signal(int sig);
  // Waits up to `timeout` for the process to end; its exit status (-1: killed by a signal or still
  // running, then killed).
  int Wait(std::chrono::milliseconds timeout);
  // Everything it wrote to stdout and stderr so far.
  std::string Output() const;

 private:
  pid_t pid_ = -1;
  bool ready_ = false;
  std::string out_path_;
  uint16_t echo_port_ = 0, chat_port_ = 0, http_port_ = 0;
};

// The path of the greenline binary under test (a compile definition of the test target).
const char* GreenlineBinary();

// A blocking TCP client with a receive timeout.
class Client {
 public:
  explicit Client(uint16_t port, std::chrono::milliseconds timeout = std::chrono::seconds(5));
  ~Client();
  Client(Client&& other) noexcept;
  Client& operator=(Client&&) = delete;

  bool connected() const { return fd_ >= 0; }
  int fd() const { return fd_; }
  bool Send(std::string_view data);
  // The next line without its "\n" (and a "\r" before it, when `strip_cr`); nullopt on EOF,
  // error or timeout (see eof()).
  std::optional<std::string> ReadLine(bool strip_cr = true);
  // Exactly n bytes, or nullopt.
  std::optional<std::string> ReadExactly(size_t n);
  // Everything until EOF (or timeout: nullopt).
  std::optional<std::string> ReadToEof();
  // True once the server closed the connection (a read returned 0 or ECONNRESET).
  bool eof() const { return eof_; }
  // Reads lines until one equals `line` (or times out); true if found. The lines skipped are
  // appended to *skipped when given.
  bool SkipUntil(std::string_view line, std::vector<std::string>* skipped = nullptr);
  void ShutdownWrite();
  void SetTimeout(std::chrono::milliseconds timeout);

 private:
  bool Fill();
  int fd_ = -1;
  bool eof_ = false;
  std::string buf_;
};

// One HTTP/1.0 request; the status code and body (status 0 on failure).
struct HttpReply {
  int status = 0;
  std::string headers;
  std::string body;
};
HttpReply HttpGet(uint16_t port, std::string_view path);

// The value of a Prometheus sample `name{labels}` (labels exactly as rendered, "" for none) in
// /metrics text, or nullopt.
std::optional<double> MetricValue(const std::string& metrics, std::string_view name,
                                  std::string_view labels = "");

// Polls `port`'s /metrics (every 20 ms, up to `timeout`) until sample `name{labels}` equals
// `want`; returns the last value seen. For counts that settle just after what the test saw: a
// disconnect is counted once the server's lingering close is over.
std::optional<double> AwaitMetric(uint16_t port, std::string_view name, std::string_view labels,
                                  double want,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace greenline::testing
