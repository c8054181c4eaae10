// Checks runtime/sched/maxprocs.h: the cgroup v2 `cpu.max` and v1 `cpu.cfs_quota_us` /
// `cpu.cfs_period_us` parsers on sample contents; CgroupCpuQuota() on fake /proc and /sys trees
// laid out in a temporary directory (a v2 host without a limit, v2 containers with and without a
// cgroup namespace, a nested v2 path whose parent is tighter than the leaf, v1 cpu,cpuacct
// hierarchies with and without a quota, a hybrid host, escaped mount points, missing files); and
// DecideMaxProcs() in rule order: the option, then a valid GOMAXPROCS, then the affinity mask
// lowered to this machine's real quota, including a forked child pinned to one CPU.
#include "runtime/sched/maxprocs.h"

#include <gtest/gtest.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

namespace greenline {
namespace {

// A fake root holding proc/self/{cgroup,mountinfo} and the cgroup mounts under sys/fs/cgroup.
class CgroupQuotaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "maxprocs_test.XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(root_, ec);
  }

  // Writes `contents` to `path` under the fake root, creating its directories.
  void Write(const std::string& path, const std::string& contents) {
    const std::filesystem::path full = root_ + path;
    std::filesystem::create_directories(full.parent_path());
    std::ofstream(full) << contents;
  }

  std::optional<double> Quota() { return CgroupCpuQuota(root_ + "/proc", root_); }

  std::string root_;
};

// The cgroup2 line of a systemd host's mountinfo, with a mount root and its optional fields.
std::string V2Mount(const std::string& root, const std::string& mount_point = "/sys/fs/cgroup") {
  return "35 24 0:30 " + root + " " + mount_point +
         " rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 "
         "rw,nsdelegate,memory_recursiveprot\n";
}

constexpr char kRootMounts[] =
    "22 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro\n"
    "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    "24 22 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:2 - sysfs sysfs rw\n";

TEST_F(CgroupQuotaTest, ParsesV2CpuMax) {
  EXPECT_EQ(ParseCgroupV2CpuMax("max 100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("max 100000\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("max"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 100000\n"), 1.5);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 100000"), 1.5);
  EXPECT_EQ(ParseCgroupV2CpuMax("50000 200000\n"), 0.25);
  EXPECT_EQ(ParseCgroupV2CpuMax("400000 1000000\n"), 0.4);
  EXPECT_EQ(ParseCgroupV2CpuMax("200000\n"), 2.0);  // No period: the kernel default, 100000.
}

TEST_F(CgroupQuotaTest, RejectsMalformedV2CpuMax) {
  EXPECT_EQ(ParseCgroupV2CpuMax(""), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("garbage"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 abc"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("15x000 100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 0"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 -100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("-150000 100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("0 100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("150000 100000 7"), std::nullopt);
  EXPECT_EQ(ParseCgroupV2CpuMax("99999999999999999999 100000"), std::nullopt);  // Overflows.
}

TEST_F(CgroupQuotaTest, ParsesV1Quota) {
  EXPECT_EQ(ParseCgroupV1Quota("-1\n", "100000\n"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("-1", "100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("50000", "100000"), 0.5);
  EXPECT_EQ(ParseCgroupV1Quota("200000\n", "100000\n"), 2.0);
  EXPECT_EQ(ParseCgroupV1Quota("50000", "0"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("50000", ""), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("", "100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("lots", "100000"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("50000", "100000us"), std::nullopt);
  EXPECT_EQ(ParseCgroupV1Quota("0", "100000"), std::nullopt);
}

TEST_F(CgroupQuotaTest, V2HostWithoutLimitHasNoQuota) {
  const std::string scope = "/user.slice/user-1000.slice/session-3.scope";
  Write("/proc/self/cgroup", "0::" + scope + "\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount("/"));
  // The root cgroup of a v2 hierarchy has no cpu.max; the slices and the scope say "max".
  Write("/sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n");
  Write("/sys/fs/cgroup/user.slice/cpu.max", "max 100000\n");
  Write("/sys/fs/cgroup/user.slice/user-1000.slice/cpu.max", "max 100000\n");
  Write("/sys/fs/cgroup" + scope + "/cpu.max", "max 100000\n");
  EXPECT_EQ(Quota(), std::nullopt);
}

TEST_F(CgroupQuotaTest, V2ContainerWithNamespace) {
  // Docker on cgroup v2 (cgroupns=private): the container's cgroup is the root of what it sees.
  Write("/proc/self/cgroup", "0::/\n");
  Write("/proc/self/mountinfo",
        "712 650 0:60 / / rw,relatime master:300 - overlay overlay rw,lowerdir=/l,upperdir=/u\n"
        "720 712 0:64 / /sys ro,nosuid,nodev,noexec,relatime - sysfs sysfs ro\n"
        "721 720 0:30 / /sys/fs/cgroup ro,nosuid,nodev,noexec,relatime - cgroup2 cgroup rw\n");
  Write("/sys/fs/cgroup/cpu.max", "150000 100000\n");
  EXPECT_EQ(Quota(), 1.5);
}

TEST_F(CgroupQuotaTest, V2NestedSmallestLimitWins) {
  const std::string pod = "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod42.slice";
  const std::string ctr = pod + "/cri-containerd-0123abcd.scope";
  Write("/proc/self/cgroup", "0::" + ctr + "\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount("/"));
  Write("/sys/fs/cgroup/kubepods.slice/cpu.max", "max 100000\n");
  Write("/sys/fs/cgroup" + pod + "/cpu.max", "100000 100000\n");  // The pod: 1 CPU.
  Write("/sys/fs/cgroup" + ctr + "/cpu.max", "250000 100000\n");  // The container asks 2.5.
  EXPECT_EQ(Quota(), 1.0);
}

TEST_F(CgroupQuotaTest, V2LeafTighterThanParent) {
  Write("/proc/self/cgroup", "0::/system.slice/greenline.service\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount("/"));
  Write("/sys/fs/cgroup/system.slice/cpu.max", "400000 100000\n");
  Write("/sys/fs/cgroup/system.slice/greenline.service/cpu.max", "50000 100000\n");
  EXPECT_EQ(Quota(), 0.5);
}

TEST_F(CgroupQuotaTest, V2MountRootIsContainerAndCgroupIsRoot) {
  // The container's own cgroup is what is mounted at /sys/fs/cgroup, and /proc/self/cgroup
  // shows "/": the quota is at the mount point, not under /sys/fs/cgroup/docker/<id>.
  const std::string ctr = "/system.slice/docker-4f2a9c.scope";
  Write("/proc/self/cgroup", "0::/\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount(ctr));
  Write("/sys/fs/cgroup/cpu.max", "300000 100000\n");
  Write("/sys/fs/cgroup" + ctr + "/cpu.max", "800000 100000\n");  // Must not be read.
  EXPECT_EQ(Quota(), 3.0);
}

TEST_F(CgroupQuotaTest, V2MountRootIsContainerAndCgroupIsFullPath) {
  // Without a cgroup namespace /proc/self/cgroup shows the full path, which repeats the mount
  // root; the root must be stripped before appending.
  const std::string ctr = "/system.slice/docker-4f2a9c.scope";
  Write("/proc/self/cgroup", "0::" + ctr + "/worker\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount(ctr));
  Write("/sys/fs/cgroup/cpu.max", "300000 100000\n");
  Write("/sys/fs/cgroup/worker/cpu.max", "200000 100000\n");
  EXPECT_EQ(Quota(), 2.0);
}

TEST_F(CgroupQuotaTest, MountRootMatchesWholeComponentsOnly) {
  // Root "/docker/ab" is not an ancestor of "/docker/abc": the path is read as is.
  Write("/proc/self/cgroup", "0::/docker/abc\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount("/docker/ab"));
  Write("/sys/fs/cgroup/docker/abc/cpu.max", "200000 100000\n");
  Write("/sys/fs/cgroup/c/cpu.max", "100000 100000\n");  // What a plain prefix strip would read.
  EXPECT_EQ(Quota(), 2.0);
}

TEST_F(CgroupQuotaTest, EscapedMountPoint) {
  Write("/proc/self/cgroup", "0::/job\n");
  Write("/proc/self/mountinfo", kRootMounts + V2Mount("/", "/mnt/cg\\040two"));
  Write("/mnt/cg two/job/cpu.max", "75000 100000\n");
  EXPECT_EQ(Quota(), 0.75);
}

// mountinfo of a cgroup v1 host, each controller in its own mount except cpu,cpuacct. cpuset and
// cpuacct come first so that a substring match on "cpu" would pick the wrong one.
constexpr char kV1Mounts[] =
    "25 24 0:23 / /sys/fs/cgroup ro,nosuid,nodev,noexec shared:3 - tmpfs tmpfs ro,mode=755\n"
    "27 25 0:25 / /sys/fs/cgroup/cpuset rw,nosuid,nodev,noexec,relatime shared:5 - cgroup cgroup "
    "rw,cpuset\n"
    "28 25 0:26 / /sys/fs/cgroup/net_cls,net_prio rw,nosuid,nodev,noexec,relatime shared:6 - "
    "cgroup cgroup rw,net_cls,net_prio\n"
    "29 25 0:27 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid,nodev,noexec,relatime shared:7 - cgroup "
    "cgroup rw,cpu,cpuacct\n"
    "30 25 0:28 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:8 - cgroup cgroup "
    "rw,memory\n"
    "31 25 0:29 / /sys/fs/cgroup/unified rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "
    "cgroup2 rw,nsdelegate\n";

constexpr char kV1Cgroup[] =
    "11:memory:/docker/9d1f\n"
    "4:cpu,cpuacct:/docker/9d1f\n"
    "3:net_cls,net_prio:/docker/9d1f\n"
    "2:cpuset:/docker/9d1f\n"
    "1:name=systemd:/docker/9d1f\n"
    "0::/docker/9d1f\n";

TEST_F(CgroupQuotaTest, V1CpuCpuacctQuota) {
  Write("/proc/self/cgroup", kV1Cgroup);
  Write("/proc/self/mountinfo", std::string(kRootMounts) + kV1Mounts);
  Write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "-1\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_quota_us", "-1\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/cpu.cfs_period_us", "100000\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_quota_us", "200000\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_period_us", "100000\n");
  // Decoys: a cpu.max in the unified hierarchy, quota files in the cpuset hierarchy.
  Write("/sys/fs/cgroup/unified/docker/9d1f/cpu.max", "50000 100000\n");
  Write("/sys/fs/cgroup/cpuset/docker/9d1f/cpu.cfs_quota_us", "50000\n");
  Write("/sys/fs/cgroup/cpuset/docker/9d1f/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(Quota(), 2.0);
}

TEST_F(CgroupQuotaTest, V1UnlimitedHasNoQuota) {
  Write("/proc/self/cgroup", kV1Cgroup);
  Write("/proc/self/mountinfo", std::string(kRootMounts) + kV1Mounts);
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_quota_us", "-1\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(Quota(), std::nullopt);
}

TEST_F(CgroupQuotaTest, V1ContainerMountRootIsContainer) {
  // Docker on cgroup v1 without a cgroup namespace: root and path are both /docker/<id>.
  Write("/proc/self/cgroup", kV1Cgroup);
  Write("/proc/self/mountinfo",
        std::string(kRootMounts) +
            "402 401 0:27 /docker/9d1f /sys/fs/cgroup/cpu,cpuacct ro,nosuid,nodev,noexec,relatime "
            "master:7 - cgroup cgroup rw,cpuacct,cpu\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "150000\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
  // A docker-in-docker child of the container, also named docker/9d1f: not our cgroup.
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_quota_us", "50000\n");
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_period_us", "100000\n");
  EXPECT_EQ(Quota(), 1.5);
}

TEST_F(CgroupQuotaTest, HybridHostPrefersV1CpuController) {
  // systemd's hybrid layout: the cpu controller is on v1; the unified hierarchy has none.
  Write("/proc/self/cgroup", "4:cpu:/batch\n3:cpuacct:/\n0::/batch\n");
  Write("/proc/self/mountinfo",
        std::string(kRootMounts) +
            "32 25 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
            "33 25 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
            "41 25 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n");
  Write("/sys/fs/cgroup/cpu/batch/cpu.cfs_quota_us", "50000\n");
  Write("/sys/fs/cgroup/cpu/batch/cpu.cfs_period_us", "100000\n");
  Write("/sys/fs/cgroup/unified/batch/cpu.max", "300000 100000\n");
  EXPECT_EQ(Quota(), 0.5);
}

TEST_F(CgroupQuotaTest, MissingFilesGiveNoQuota) {
  EXPECT_EQ(Quota(), std::nullopt);  // No /proc at all.

  Write("/proc/self/cgroup", "0::/app\n");
  EXPECT_EQ(Quota(), std::nullopt);  // No mountinfo.

  Write("/proc/self/mountinfo", kRootMounts);
  EXPECT_EQ(Quota(), std::nullopt);  // No cgroup mount.

  Write("/proc/self/mountinfo", kRootMounts + V2Mount("/"));
  EXPECT_EQ(Quota(), std::nullopt);  // Mounted, but the directories do not exist.

  Write("/sys/fs/cgroup/app/cpu.stat", "usage_usec 0\n");
  EXPECT_EQ(Quota(), std::nullopt);  // The directory exists, but has no cpu.max.

  Write("/sys/fs/cgroup/app/cpu.max", "not a quota\n");
  EXPECT_EQ(Quota(), std::nullopt);

  Write("/sys/fs/cgroup/app/cpu.max", "100000 100000\n");
  EXPECT_EQ(Quota(), 1.0);  // And the same tree with the file in place does have one.
}

TEST_F(CgroupQuotaTest, V1MissingPeriodGivesNoQuota) {
  Write("/proc/self/cgroup", kV1Cgroup);
  Write("/proc/self/mountinfo", std::string(kRootMounts) + kV1Mounts);
  Write("/sys/fs/cgroup/cpu,cpuacct/docker/9d1f/cpu.cfs_quota_us", "200000\n");
  EXPECT_EQ(Quota(), std::nullopt);
}

TEST_F(CgroupQuotaTest, MalformedProcFilesGiveNoQuota) {
  Write("/proc/self/cgroup", "garbage without colons\n\n::\n");
  Write("/proc/self/mountinfo", "short line\n - cgroup2\n" + V2Mount("/"));
  Write("/sys/fs/cgroup/cpu.max", "100000 100000\n");
  EXPECT_EQ(Quota(), std::nullopt);
}

// Saves GOMAXPROCS and restores it after each test, so tests can set and unset it freely.
class MaxProcsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (const char* v = getenv("GOMAXPROCS")) saved_ = v;
    unsetenv("GOMAXPROCS");
  }
  void TearDown() override {
    if (saved_) {
      setenv("GOMAXPROCS", saved_->c_str(), 1);
    } else {
      unsetenv("GOMAXPROCS");
    }
  }

  // What rule 3 gives on this machine, computed from the public pieces.
  static int ExpectedDefault() {
    const int cpus = AffinityCpuCount();
    const std::optional<double> quota = CgroupCpuQuota();
    if (!quota) return cpus;
    return std::max(1, std::min(cpus, static_cast<int>(std::ceil(*quota))));
  }

  std::optional<std::string> saved_;
};

TEST_F(MaxProcsTest, RequestedWins) {
  setenv("GOMAXPROCS", "3", 1);
  const MaxProcsDecision d = DecideMaxProcs(7);
  EXPECT_EQ(d.procs, 7);
  EXPECT_EQ(d.source, "option");
}

TEST_F(MaxProcsTest, GomaxprocsHonoured) {
  setenv("GOMAXPROCS", "3", 1);
  const MaxProcsDecision d = DecideMaxProcs(0);
  EXPECT_EQ(d.procs, 3);
  EXPECT_EQ(d.source, "GOMAXPROCS");

  // Above the CPU count is allowed, as in Go.
  setenv("GOMAXPROCS", "4096", 1);
  EXPECT_EQ(DecideMaxProcs(0).procs, 4096);
}

TEST_F(MaxProcsTest, InvalidGomaxprocsIgnored) {
  const int expected = ExpectedDefault();
  for (const char* value : {"abc", "0", "", "-2", "+3", " 3", "3 ", "3abc", "1.5", "99999999999"}) {
    SCOPED_TRACE(std::string("GOMAXPROCS=\"") + value + "\"");
    setenv("GOMAXPROCS", value, 1);
    const MaxProcsDecision d = DecideMaxProcs(0);
    EXPECT_EQ(d.procs, expected);
    EXPECT_NE(d.source, "GOMAXPROCS");
  }
}

TEST_F(MaxProcsTest, DefaultIsAffinityLoweredToQuota) {
  const MaxProcsDecision d = DecideMaxProcs(0);
  EXPECT_EQ(d.procs, ExpectedDefault());
  EXPECT_GE(d.procs, 1);
  EXPECT_LE(d.procs, AffinityCpuCount());
  if (d.procs == AffinityCpuCount()) {
    EXPECT_EQ(d.source, "affinity");
  } else {
    EXPECT_EQ(d.source.rfind("cgroup quota ", 0), 0u) << d.source;
  }
}

TEST_F(MaxProcsTest, AffinityCountMatchesMask) {
  cpu_set_t set;
  CPU_ZERO(&set);
  const int count = AffinityCpuCount();
  EXPECT_GE(count, 1);
  // Where the mask fits the fixed-size set (machines with up to 1024 CPUs), both must agree.
  if (sched_getaffinity(0, sizeof(set), &set) == 0) {
    EXPECT_EQ(count, CPU_COUNT(&set));
  }
}

// Runs `body` in a forked child whose affinity is the first `n` CPUs of the current mask, and
// returns the child's exit status (0 on success). Skips if the mask has fewer than `n` CPUs.
int RunPinned(int n, bool (*body)(int)) {
  cpu_set_t current;
  CPU_ZERO(&current);
  if (sched_getaffinity(0, sizeof(current), &current) != 0) return -1;
  cpu_set_t pinned;
  CPU_ZERO(&pinned);
  int taken = 0;
  // The lowest CPUs we may use: CPU 0 unless the test itself runs under taskset.
  for (int cpu = 0; cpu < CPU_SETSIZE && taken < n; ++cpu) {
    if (CPU_ISSET(cpu, &current)) {
      CPU_SET(cpu, &pinned);
      ++taken;
    }
  }
  if (taken < n) return -2;
  const pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (sched_setaffinity(0, sizeof(pinned), &pinned) != 0) _exit(10);
    _exit(body(n) ? 0 : 1);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return -1;
  return status;
}

bool AffinityAndDefaultAre(int n) {
  unsetenv("GOMAXPROCS");
  const int count = AffinityCpuCount();
  const MaxProcsDecision d = DecideMaxProcs(0);
  if (count != n) fprintf(stderr, "AffinityCpuCount() = %d, want %d\n", count, n);
  // A quota can only lower it further, and never below 1.
  if (d.procs < 1 || d.procs > n) fprintf(stderr, "DecideMaxProcs(0).procs = %d\n", d.procs);
  return count == n && d.procs >= 1 && d.procs <= n && (n != 1 || d.procs == 1);
}

TEST_F(MaxProcsTest, PinnedToOneCpu) {
  const int status = RunPinned(1, AffinityAndDefaultAre);
  ASSERT_GE(status, 0) << "fork, sched_getaffinity or waitpid failed";
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST_F(MaxProcsTest, PinnedToTwoCpus) {
  const int status = RunPinned(2, AffinityAndDefaultAre);
  if (status == -2) GTEST_SKIP() << "this process may run on only one CPU";
  ASSERT_GE(status, 0) << "fork, sched_getaffinity or waitpid failed";
  ASSERT_TRUE(WIFEXITED(status)) << "child status " << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

}  // namespace
}  // namespace greenline
