// Finding the CPU quota of this process's cgroup.
//
// The path to the quota files is <mount point of the cpu hierarchy> + <our cgroup, relative to
// what that mount shows>:
//   - /proc/self/cgroup gives our cgroup per hierarchy. "0::/path" is cgroup v2; "N:a,b:/path" is a
//     v1 hierarchy with controllers a,b. A v1 hierarchy with the "cpu" controller wins over v2 (in
//     hybrid mode the cpu controller is bound to one hierarchy only, and then it is the v1 one).
//     Controllers are compared as whole tokens: "cpuacct" and "cpuset" are not "cpu".
//   - /proc/self/mountinfo gives the mount point (field 5) of each hierarchy: fstype "cgroup2", or
//     "cgroup" with "cpu" among its super options (the fields after " - " are fstype, source,
//     super options). Field 4, the mount's root, says which directory of the hierarchy is mounted
//     there. Without a cgroup namespace (Docker on cgroup v1, for example) the container sees
//     root "/docker/<id>" and its cgroup as "/docker/<id>": that prefix must be stripped, or we
//     look for /sys/fs/cgroup/cpu/docker/<id>/docker/<id>, which does not exist. With a namespace,
//     /proc/self/cgroup shows "/" (or a path under the namespace root) and is not under root: it
//     is then taken as relative to the mount. Paths in mountinfo are octal-escaped ("\040").
//   - The kernel enforces every limit on the path from our cgroup to the root, so we read cpu.max
//     (v2) or cpu.cfs_quota_us / cpu.cfs_period_us (v1) at each level up to the mount point and
//     keep the smallest. Levels above the mount point are not visible and are not read.
//
// Go 1.25 (src/internal/runtime/cgroup) reads only the leaf cgroup, and appends the whole
// /proc/self/cgroup path to the mount point, ignoring mountinfo's root field: inside a cgroup
// namespace it can then miss the quota, and a limit set on an ancestor is never seen. We handle
// both.
//
// Nothing here throws or fails loudly: a file that is missing or does not parse gives no quota.
#include "runtime/sched/maxprocs.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <system_error>
#include <vector>

namespace greenline {
namespace {

// cpu.max may hold only the quota; the period is then the kernel's default.
constexpr int64_t kDefaultCfsPeriodUs = 100000;

// mountinfo on a Kubernetes node can be a few MiB; anything beyond this is not a real /proc file.
constexpr size_t kMaxFileSize = 64 << 20;

enum class CgroupVersion { kV1, kV2 };

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string_view Trim(std::string_view s) {
  while (!s.empty() && IsSpace(s.front())) s.remove_prefix(1);
  while (!s.empty() && IsSpace(s.back())) s.remove_suffix(1);
  return s;
}

// Splits on runs of `sep`, dropping empty pieces.
std::vector<std::string_view> Split(std::string_view s, char sep) {
  std::vector<std::string_view> out;
  while (!s.empty()) {
    const size_t end = s.find(sep);
    std::string_view piece = s.substr(0, end);
    if (!piece.empty()) out.push_back(piece);
    if (end == std::string_view::npos) break;
    s.remove_prefix(end + 1);
  }
  return out;
}

// Splits on spaces and tabs.
std::vector<std::string_view> Fields(std::string_view s) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && IsSpace(s[i])) ++i;
    const size_t start = i;
    while (i < s.size() && !IsSpace(s[i])) ++i;
    if (i > start) out.push_back(s.substr(start, i - start));
  }
  return out;
}

// Whether comma-separated `list` holds `token` as a whole element.
bool HasToken(std::string_view list, std::string_view token) {
  for (std::string_view t : Split(list, ',')) {
    if (t == token) return true;
  }
  return false;
}

// The whole of `s` as a decimal integer with an optional '-' (no '+', no spaces).
std::optional<int64_t> ParseInt64(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t value = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

// A quota of zero or less is no limit (v1 writes -1; the kernel rejects other non-positive
// values, so they can only come from a damaged file).
std::optional<double> QuotaInCpus(int64_t quota_us, int64_t period_us) {
  if (quota_us <= 0 || period_us <= 0) return std::nullopt;
  return static_cast<double>(quota_us) / static_cast<double>(period_us);
}

// The contents of a small file, or nullopt. /proc and cgroupfs files report size 0, so this reads
// to end of file rather than trusting stat.
std::optional<std::string> ReadFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  char buf[8192];
  for (;;) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 || out.size() + static_cast<size_t>(n) > kMaxFileSize) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  return out;
}

// Undoes the kernel's show_path escaping in mountinfo: space, tab, newline and backslash become
// "\ooo" (three octal digits). nullopt for a malformed escape.
std::optional<std::string> UnescapeMountPath(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '\\') {
      out.push_back(in[i]);
      continue;
    }
    if (in.size() - i < 4) return std::nullopt;
    int c = 0;
    for (size_t j = i + 1; j <= i + 3; ++j) {
      if (in[j] < '0' || in[j] > '7') return std::nullopt;
      c = c * 8 + (in[j] - '0');
    }
    if (c > 0xff) return std::nullopt;
    out.push_back(static_cast<char>(c));
    i += 3;
  }
  return out;
}

struct ProcessCgroup {
  CgroupVersion version;
  std::string path;  // As /proc/self/cgroup shows it: absolute within the hierarchy or namespace.
};

// Our cgroup in the hierarchy that holds the cpu controller, from /proc/self/cgroup.
std::optional<ProcessCgroup> FindProcessCgroup(std::string_view text) {
  std::optional<ProcessCgroup> v2;
  for (std::string_view line : Split(text, '\n')) {
    const size_t c1 = line.find(':');
    if (c1 == std::string_view::npos) continue;
    const size_t c2 = line.find(':', c1 + 1);
    if (c2 == std::string_view::npos) continue;
    const std::string_view id = line.substr(0, c1);
    const std::string_view controllers = line.substr(c1 + 1, c2 - c1 - 1);
    const std::string_view path = line.substr(c2 + 1);  // May itself contain ':'.
    if (path.empty() || path.front() != '/') continue;
    if (id == "0" && controllers.empty()) {
      v2 = ProcessCgroup{CgroupVersion::kV2, std::string(path)};
    } else if (HasToken(controllers, "cpu")) {
      return ProcessCgroup{CgroupVersion::kV1, std::string(path)};
    }
  }
  return v2;
}

struct CgroupMount {
  std::string root;         // Field 4: the directory of the hierarchy mounted here.
  std::string mount_point;  // Field 5.
};

// The mounts of the hierarchy of `version` that carries the cpu controller, in mountinfo order.
std::vector<CgroupMount> FindCpuMounts(std::string_view text, CgroupVersion version) {
  std::vector<CgroupMount> mounts;
  for (std::string_view line : Split(text, '\n')) {
    const std::vector<std::string_view> f = Fields(line);
    // ID, parent, major:minor, root, mount point, options, [optional fields...], "-", fstype,
    // source, super options.
    size_t sep = 6;
    while (sep < f.size() && f[sep] != "-") ++sep;
    if (sep + 1 >= f.size()) continue;
    const std::string_view fstype = f[sep + 1];
    const std::string_view super_options = sep + 3 < f.size() ? f[sep + 3] : std::string_view();
    const bool match = version == CgroupVersion::kV2
                           ? fstype == "cgroup2"
                           : fstype == "cgroup" && HasToken(super_options, "cpu");
    if (!match) continue;
    std::optional<std::string> root = UnescapeMountPath(f[3]);
    std::optional<std::string> mount_point = UnescapeMountPath(f[4]);
    if (!root || !mount_point) continue;
    mounts.push_back(CgroupMount{std::move(*root), std::move(*mount_point)});
  }
  return mounts;
}

// `path` relative to `root` if it lies at or under it (whole components only), else nullopt.
std::optional<std::string_view> StripRoot(std::string_view path, std::string_view root) {
  while (root.size() > 1 && root.back() == '/') root.remove_suffix(1);
  if (root == "/") return path;
  if (path.substr(0, root.size()) != root) return std::nullopt;
  const std::string_view rest = path.substr(root.size());
  if (!rest.empty() && rest.front() != '/') return std::nullopt;  // "/docker/ab" vs "/docker/abc"
  return rest;
}

// The quota set in one cgroup directory, if any.
std::optional<double> ReadQuotaIn(const std::string& dir, CgroupVersion version) {
  if (version == CgroupVersion::kV2) {
    std::optional<std::string> max = ReadFile(dir + "/cpu.max");
    if (!max) return std::nullopt;
    return ParseCgroupV2CpuMax(*max);
  }
  std::optional<std::string> quota = ReadFile(dir + "/cpu.cfs_quota_us");
  if (!quota) return std::nullopt;
  std::optional<std::string> period = ReadFile(dir + "/cpu.cfs_period_us");
  if (!period) return std::nullopt;
  return ParseCgroupV1Quota(*quota, *period);
}

// Digits only, no sign or spaces, and > 0; the rest (including overflow) is nullopt, and the
// caller ignores the variable as Go does.
std::optional<int> ParsePositiveInt(std::string_view s) {
  if (s.empty()) return std::nullopt;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
  }
  int value = 0;
  const char* end = s.data() + s.size();
  auto [ptr, ec] = std::from_chars(s.data(), end, value);
  if (ec != std::errc() || ptr != end || value <= 0) return std::nullopt;
  return value;
}

// "1.5", "2", "0.33": at most two decimals, no trailing zeros.
std::string FormatQuota(double cpus) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.2f", cpus);
  std::string s(buf);
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

}  // namespace

std::optional<double> ParseCgroupV2CpuMax(std::string_view cpu_max) {
  const std::vector<std::string_view> f = Fields(cpu_max);
  if (f.empty() || f.size() > 2) return std::nullopt;
  if (f[0] == "max") return std::nullopt;
  const std::optional<int64_t> quota = ParseInt64(f[0]);
  const std::optional<int64_t> period = f.size() == 2 ? ParseInt64(f[1]) : kDefaultCfsPeriodUs;
  if (!quota || !period) return std::nullopt;
  return QuotaInCpus(*quota, *period);
}

std::optional<double> ParseCgroupV1Quota(std::string_view quota_us, std::string_view period_us) {
  const std::optional<int64_t> quota = ParseInt64(Trim(quota_us));
  const std::optional<int64_t> period = ParseInt64(Trim(period_us));
  if (!quota || !period) return std::nullopt;
  return QuotaInCpus(*quota, *period);
}

std::optional<double> CgroupCpuQuota(const std::string& proc_root, const std::string& sys_root) {
  const std::optional<std::string> cgroup_text = ReadFile(proc_root + "/self/cgroup");
  if (!cgroup_text) return std::nullopt;
  const std::optional<ProcessCgroup> cgroup = FindProcessCgroup(*cgroup_text);
  if (!cgroup) return std::nullopt;
  const std::optional<std::string> mountinfo = ReadFile(proc_root + "/self/mountinfo");
  if (!mountinfo) return std::nullopt;
  const std::vector<CgroupMount> mounts = FindCpuMounts(*mountinfo, cgroup->version);
  if (mounts.empty()) return std::nullopt;

  // Prefer the mount whose root is the deepest ancestor of our cgroup. If none contains it, the
  // path is relative to a cgroup namespace whose root is what the (first) mount shows.
  const CgroupMount* mount = nullptr;
  std::string_view relative;
  for (const CgroupMount& m : mounts) {
    std::optional<std::string_view> rel = StripRoot(cgroup->path, m.root);
    if (rel && (mount == nullptr || m.root.size() > mount->root.size())) {
      mount = &m;
      relative = *rel;
    }
  }
  if (mount == nullptr) {
    mount = &mounts.front();
    relative = cgroup->path;
  }

  const std::vector<std::string_view> parts = Split(relative, '/');
  for (std::string_view part : parts) {
    // "/.." means our cgroup is outside our namespace's view: nothing on the path is visible.
    if (part == "..") return std::nullopt;
  }
  std::optional<double> smallest;
  std::string dir = sys_root + mount->mount_point;
  std::vector<std::string> dirs{dir};  // Mount point first, leaf last.
  for (std::string_view part : parts) {
    if (part == ".") continue;
    dir += '/';
    dir += part;
    dirs.push_back(dir);
  }
  for (const std::string& d : dirs) {
    const std::optional<double> quota = ReadQuotaIn(d, cgroup->version);
    if (quota && (!smallest || *quota < *smallest)) smallest = quota;
  }
  return smallest;
}

int AffinityCpuCount() {
  // The kernel fails with EINVAL when the set is smaller than its CPU id space, so start at the
  // configured CPU count (at least glibc's fixed 1024) and grow until it fits.
  const long configured = ::sysconf(_SC_NPROCESSORS_CONF);
  for (long cpus = std::max<long>(configured, CPU_SETSIZE); cpus <= (1L << 22); cpus *= 2) {
    cpu_set_t* set = CPU_ALLOC(cpus);
    if (set == nullptr) break;
    const size_t size = CPU_ALLOC_SIZE(cpus);
    CPU_ZERO_S(size, set);
    if (::sched_getaffinity(0, size, set) == 0) {
      const int count = CPU_COUNT_S(size, set);
      CPU_FREE(set);
      return std::max(count, 1);
    }
    const int err = errno;
    CPU_FREE(set);
    if (err != EINVAL) break;
  }
  const long online = ::sysconf(_SC_NPROCESSORS_ONLN);
  return online > 0 ? static_cast<int>(std::min<long>(online, 1L << 22)) : 1;
}

MaxProcsDecision DecideMaxProcs(int requested) {
  if (requested > 0) return {requested, "option"};
  if (const char* env = std::getenv("GOMAXPROCS")) {
    if (std::optional<int> n = ParsePositiveInt(env)) return {*n, "GOMAXPROCS"};
  }
  const int cpus = AffinityCpuCount();
  if (const std::optional<double> quota = CgroupCpuQuota()) {
    const double limit = std::ceil(*quota);
    if (limit < cpus) {
      return {std::max(1, static_cast<int>(limit)), "cgroup quota " + FormatQuota(*quota)};
    }
  }
  return {cpus, "affinity"};
}

}  // namespace greenline
