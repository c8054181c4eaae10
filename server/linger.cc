#include "server/linger.h"

#include <chrono>

namespace greenline::server {

void LingeringClose(const net::Conn& conn, Metrics* metrics, ServiceId service) {
  constexpr auto kLingerTime = std::chrono::milliseconds(500);
  constexpr size_t kLingerBytes = 512 * 1024;
  conn.CloseWrite();
  conn.SetReadDeadline(std::chrono::steady_clock::now() + kLingerTime);
  char sink[4096];
  for (size_t drained = 0; drained < kLingerBytes;) {
    net::IoResult r = conn.Read(sink, sizeof sink);
    if (metrics != nullptr && r.n > 0) metrics->bytes_received_total[service].Add(r.n);
    drained += r.n;
    if (r.err) break;
  }
  conn.Close();
}

}  // namespace greenline::server
