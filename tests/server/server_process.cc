#include "tests/server/server_process.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/util/child_process.h"
#include "tests/util/net.h"

namespace greenline::testing {

namespace {

int ConnectLoopback(uint16_t port) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(port);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
}

}  // namespace

const char* GreenlineBinary() { return GREENLINE_BINARY; }

// Free ports are found by binding 127.0.0.1:0 and releasing it (UnusedLoopbackPort): another
// process could take one before the server binds it; the server then fails to start and says so.
ServerProcess::ServerProcess(std::vector<std::string> args) {
  echo_port_ = UnusedLoopbackPort();
  chat_port_ = UnusedLoopbackPort();
  http_port_ = UnusedLoopbackPort();
  char tmpl[] = "/tmp/greenline-e2e-XXXXXX";
  int out = mkstemp(tmpl);
  if (out < 0) {
    ADD_FAILURE() << "mkstemp: " << std::strerror(errno);
    return;
  }
  out_path_ = tmpl;
  std::vector<std::string> argv = {
      GreenlineBinary(),
      "--echo-addr=127.0.0.1:" + std::to_string(echo_port_),
      "--chat-addr=127.0.0.1:" + std::to_string(chat_port_),
      "--http-addr=127.0.0.1:" + std::to_string(http_port_),
  };
  argv.insert(argv.end(), args.begin(), args.end());
  pid_ = SpawnProgram(std::move(argv), out, out);
  close(out);
  if (pid_ < 0) {
    ADD_FAILURE() << "fork: " << std::strerror(errno);
    return;
  }
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      ADD_FAILURE() << "greenline exited at start (status " << status << "):\n" << Output();
      pid_ = -1;
      return;
    }
    if (HttpGet(http_port_, "/healthz").status == 200) {
      ready_ = true;
      return;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ADD_FAILURE() << "greenline did not answer /healthz within 10 s:\n" << Output();
}

ServerProcess::~ServerProcess() {
  if (pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  if (!out_path_.empty()) unlink(out_path_.c_str());
}

void ServerProcess::Signal(int sig) {
  if (pid_ > 0) kill(pid_, sig);
}

int ServerProcess::Wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return -1;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    if (waitpid(pid_, &status, WNOHANG) == pid_) {
      pid_ = -1;
      return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    }
    if (std::chrono::steady_clock::now() >= deadline) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::string ServerProcess::Output() const {
  std::ifstream in(out_path_);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Client::Client(uint16_t port, std::chrono::milliseconds timeout) {
  fd_ = ConnectLoopback(port);
  if (fd_ >= 0) SetTimeout(timeout);
}

Client::~Client() {
  if (fd_ >= 0) close(fd_);
}

Client::Client(Client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), eof_(other.eof_), buf_(std::move(other.buf_)) {}

void Client::SetTimeout(std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = timeout.count() / 1000;
  tv.tv_usec = (timeout.count() % 1000) * 1000;
  setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

bool Client::Send(std::string_view data) {
  while (!data.empty()) {
    ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

bool Client::Fill() {
  char tmp[16384];
  for (;;) {
    ssize_t n = recv(fd_, tmp, sizeof tmp, 0);
    if (n > 0) {
      buf_.append(tmp, static_cast<size_t>(n));
      return true;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n == 0 || errno == ECONNRESET) eof_ = true;
    return false;
  }
}

std::optional<std::string> Client::ReadLine(bool strip_cr) {
  for (;;) {
    size_t nl = buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = buf_.substr(0, nl);
      buf_.erase(0, nl + 1);
      if (strip_cr && !line.empty() && line.back() == '\r') line.pop_back();
      return line;
    }
    if (!Fill()) return std::nullopt;
  }
}

std::optional<std::string> Client::ReadExactly(size_t n) {
  while (buf_.size() < n) {
    if (!Fill()) return std::nullopt;
  }
  std::string out = buf_.substr(0, n);
  buf_.erase(0, n);
  return out;
}

std::optional<std::string> Client::ReadToEof() {
  while (Fill()) {
  }
  if (!eof_) return std::nullopt;
  return std::exchange(buf_, std::string());
}

bool Client::SkipUntil(std::string_view line, std::vector<std::string>* skipped) {
  for (;;) {
    auto l = ReadLine();
    if (!l) return false;
    if (*l == line) return true;
    if (skipped != nullptr) skipped->push_back(*l);
  }
}

void Client::ShutdownWrite() { shutdown(fd_, SHUT_WR); }

HttpReply HttpGet(uint16_t port, std::string_view path) {
  HttpReply r;
  Client c(port, std::chrono::seconds(5));
  if (!c.connected()) return r;
  if (!c.Send("GET " + std::string(path) + " HTTP/1.0\r\nHost: localhost\r\n\r\n")) return r;
  auto all = c.ReadToEof();
  if (!all) return r;
  size_t end = all->find("\r\n\r\n");
  if (all->rfind("HTTP/1.", 0) != 0 || end == std::string::npos) return r;
  r.status = std::atoi(all->c_str() + 9);
  r.headers = all->substr(0, end);
  r.body = all->substr(end + 4);
  return r;
}

std::optional<double> MetricValue(const std::string& metrics, std::string_view name,
                                  std::string_view labels) {
  std::string key = std::string(name) + (labels.empty() ? "" : "{" + std::string(labels) + "}");
  std::istringstream in(metrics);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + " ", 0) == 0) return std::strtod(line.c_str() + key.size() + 1, nullptr);
  }
  return std::nullopt;
}

std::optional<double> AwaitMetric(uint16_t port, std::string_view name, std::string_view labels,
                                  double want, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::optional<double> v = MetricValue(HttpGet(port, "/metrics").body, name, labels);
    if (v == want || std::chrono::steady_clock::now() >= deadline) return v;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

}  // namespace greenline::testing
