// How many workers (Go's Ps) the runtime starts with, and why.
//
// The rule, in order:
//   1. Options::max_procs > 0 (the API call) wins;
//   2. else the GOMAXPROCS environment variable, if it is a positive integer;
//   3. else the number of CPUs this process may run on (its affinity mask, so `taskset` counts),
//      lowered to the container's CPU quota rounded up (cgroup v2 `cpu.max`, or v1
//      `cpu.cfs_quota_us` / `cpu.cfs_period_us`), and never below 1.
// Go 1.25 applies the same quota rule but keeps at least 2 workers. We keep at least 1: under a
// quota of one CPU a second worker only splits the same CFS budget (and gets throttled in the same
// period), adding tail latency, and this runtime has no background GC work that a second P would
// carry. The cost is that a goroutine that never yields stalls a one-worker runtime (the sysmon
// warning says so); see runtime/HACKING.md.
//
// Everything here is pure or reads /proc and /sys; safe to call from any thread, before Run().
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "runtime/base/runtime_internal.h"

namespace greenline {

// Parses the contents of cgroup v2 `cpu.max` ("max 100000" or "150000 100000", trailing newline
// allowed). Returns the quota in CPUs (1.5 for "150000 100000"), or nullopt for no limit or text
// that does not parse.
std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max);

// Parses cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` contents. A quota of -1 means no
// limit (nullopt), as does anything that does not parse or a zero period.
std::optional<double> ParseCgroupV1Quota(std::string_view quota_us, std::string_view period_us);

// Finds this process's cgroup (from `<proc_root>/self/cgroup` and `<proc_root>/self/mountinfo`) and
// reads its CPU quota, walking up to the root of the hierarchy as the kernel applies the smallest
// limit on the path. nullopt when there is none or nothing can be read. `proc_root` exists for
// tests, which lay out sample files under a temporary directory ("/proc" in production); the
// cgroup mount points named in mountinfo are then looked up under `sys_root` ("" in production).
std::optional<double> CgroupCpuQuota(const std::string& proc_root = "/proc",
                                     const std::string& sys_root = "");

// CPUs in this process's affinity mask (sched_getaffinity), at least 1.
int AffinityCpuCount();

struct MaxProcsDecision {
  int procs = 1;
  // Why, for the start-up log line: "option", "GOMAXPROCS", "affinity" or "cgroup quota 1.5".
  std::string source;
};

// Applies the rule above. `requested` is Options::max_procs (0 = not set).
MaxProcsDecision DecideMaxProcs(int requested);

}  // namespace greenline
