// proc_stat.h: the /proc readings the load clients take at a measured window's edges. Shared by
// greenline-load (report.h's WindowProbe) and netpoll_bench's echo client.
//   - /proc/stat's `cpuN` line: busy = user + nice + system + irq + softirq (guest time is inside
//     user and nice already), of which user = user + nice (the rest is the kernel's: syscalls,
//     and the softirq work of the network stack), idle = idle + iowait, steal apart (the
//     hypervisor ran someone else: not work this CPU did);
//   - /proc/PID/stat utime and stime (every thread of the process): its user-space time apart
//     from its time in system calls (softirq work the network stack does on the process's CPU
//     is in neither: that is why /proc/stat's figure is the total the bench compares);
//   - /proc/PID/status VmRSS and VmHWM.
#pragma once

#include <cstdint>
#include <optional>

namespace greenline::load {

struct CpuSample {
  uint64_t busy_jiffies = 0;
  uint64_t user_jiffies = 0;  // the part of busy_jiffies spent in user mode
  uint64_t idle_jiffies = 0;
  uint64_t steal_jiffies = 0;
};

// Reads /proc/stat's line for CPU `cpu`; nullopt if it cannot.
std::optional<CpuSample> ReadCpuSample(int cpu);
// utime and stime of /proc/PID/stat, in clock ticks.
struct ProcessJiffies {
  uint64_t user = 0;
  uint64_t system = 0;
  uint64_t Total() const { return user + system; }
};
// nullopt if the process is gone.
std::optional<ProcessJiffies> ReadProcessJiffies(int pid);
// VmRSS and VmHWM of /proc/PID/status in bytes; nullopt if the process is gone.
struct RssSample {
  uint64_t rss_bytes = 0;
  uint64_t peak_bytes = 0;
};
std::optional<RssSample> ReadRss(int pid);

}  // namespace greenline::load
