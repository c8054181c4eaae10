#include "loadtest/load/proc_stat.h"

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace greenline::load {

std::optional<CpuSample> ReadCpuSample(int cpu) {
  if (cpu < 0) return std::nullopt;
  std::ifstream in("/proc/stat");
  std::string want = "cpu" + std::to_string(cpu);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    fields >> name;
    if (name != want) continue;
    // user nice system idle iowait irq softirq steal guest guest_nice
    uint64_t v[8] = {};
    for (uint64_t& x : v) {
      if (!(fields >> x)) x = 0;
    }
    CpuSample s;
    s.busy_jiffies = v[0] + v[1] + v[2] + v[5] + v[6];
    s.user_jiffies = v[0] + v[1];
    s.idle_jiffies = v[3] + v[4];
    s.steal_jiffies = v[7];
    return s;
  }
  return std::nullopt;
}

std::optional<ProcessJiffies> ReadProcessJiffies(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string all;
  if (!std::getline(in, all)) return std::nullopt;
  // The command name (field 2) may hold spaces and parentheses: fields restart after the last ')'.
  size_t close = all.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(all.substr(close + 1));
  std::string f;
  ProcessJiffies j;
  // Field 3 (state) is the first token; utime and stime are fields 14 and 15.
  for (int field = 3; field <= 15; ++field) {
    if (!(fields >> f)) return std::nullopt;
    if (field == 14) j.user = std::strtoull(f.c_str(), nullptr, 10);
    if (field == 15) j.system = std::strtoull(f.c_str(), nullptr, 10);
  }
  return j;
}

std::optional<RssSample> ReadRss(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  RssSample s;
  bool rss = false;
  std::string line;
  while (std::getline(in, line)) {
    auto kb = [&line] { return std::strtoull(line.c_str() + 6, nullptr, 10) * 1024; };
    if (line.rfind("VmRSS:", 0) == 0) {
      s.rss_bytes = kb();
      rss = true;
    } else if (line.rfind("VmHWM:", 0) == 0) {
      s.peak_bytes = kb();
    }
  }
  // A zombie has no VmRSS line: it is gone as far as memory goes.
  if (!rss) return std::nullopt;
  return s;
}

}  // namespace greenline::load
