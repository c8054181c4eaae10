# shellcheck shell=bash disable=SC2154,SC2034 # lib_prog is the caller's; the globals set are its
# loadtest/lib.sh: shell functions shared by the benchmark scripts (loadtest/bench,
# loadtest/netpoll_bench/bench.sh). Sourced, not run. The caller sets `lib_prog` (the name its
# messages start with) before using them.
#
# What they encode, learnt on this shared 2-vCPU KVM guest:
# - A server pinned to a CPU is charged with that CPU's whole busy time (/proc/stat), so other
#   work there counts as the server's: wait for idle CPUs before each run (wait_quiet), and let the
#   caller throw away a run whose CPU did work beyond the server process's own.
# - Busy = user + nice + system + irq + softirq; idle = idle + iowait; steal apart (the host ran
#   another VM: not work for the server); guest is inside user and nice already.
# - A server is started on a free port of its own choosing (port 0) and the port read from its
#   log, so no port can be taken between our choice and its bind.
# - Nothing is left running: stop_pid ends a process by pid (TERM, then KILL after 5 s) and reaps
#   it; callers call it from an EXIT trap.

# Prints its arguments as one shell command line, quoting only the words that need it.
quote_command() {
  local out="" a
  for a in "$@"; do
    if [[ "$a" =~ ^[A-Za-z0-9_./=:,+@%-]+$ ]]; then out+=" $a"; else out+=" ${a@Q}"; fi
  done
  printf '%s\n' "${out# }"
}

die() {
  echo "$lib_prog: $*" >&2
  exit 1
}

# Prints the busy percent of each CPU given (user+nice+system+irq+softirq over all but steal),
# space-separated, over one interval of $1 seconds shared by all of them.
cpus_busy_percent() {
  local secs="$1" before after
  shift
  before="$(cat /proc/stat)"
  sleep "$secs"
  after="$(cat /proc/stat)"
  awk -v cpus="$*" -v a="$before" -v b="$after" 'BEGIN {
    na = split(a, al, "\n"); nb = split(b, bl, "\n")
    for (i = 1; i <= na; i++) { split(al[i], f); x[f[1]] = al[i] }
    for (i = 1; i <= nb; i++) { split(bl[i], f); y[f[1]] = bl[i] }
    n = split(cpus, c, " ")
    for (i = 1; i <= n; i++) {
      split(x["cpu" c[i]], p); split(y["cpu" c[i]], q)
      busy = (q[2]+q[3]+q[4]+q[7]+q[8]) - (p[2]+p[3]+p[4]+p[7]+p[8])
      all = busy + (q[5]+q[6]) - (p[5]+p[6])
      printf "%s%.1f", (i > 1 ? " " : ""), (all > 0 ? 100 * busy / all : 0)
    }
    printf "\n" }'
}

# Waits until every CPU given is idle (< 5% busy over one sample of $2 seconds), for at most $1
# seconds: other work on the server's CPU would count as the server's, and a busy client CPU
# changes the load. Sets `quiet` to "yes", or to what it saw when it gave up (and warns).
wait_quiet() {
  local max="$1" sample="$2" deadline busy warned=0 cpu i
  shift 2
  local cpus=("$@")
  deadline=$((SECONDS + ${max%.*}))
  for (( ; ; )); do
    busy="$(cpus_busy_percent "$sample" "${cpus[@]}")"
    if awk -v b="$busy" 'BEGIN { n = split(b, v, " "); for (i = 1; i <= n; i++) if (v[i] >= 5) exit 1 }'; then
      quiet=yes
      return 0
    fi
    local seen="" pct
    read -r -a pct <<<"$busy"
    for i in "${!cpus[@]}"; do
      cpu="${cpus[$i]}"
      seen+="${seen:+, }cpu$cpu ${pct[$i]}%"
    done
    if [ "$SECONDS" -ge "$deadline" ]; then
      quiet="no ($seen busy)"
      echo "$lib_prog: warning: the machine stayed busy; running anyway: $quiet" >&2
      return 0
    fi
    if [ "$warned" -eq 0 ]; then
      echo "$lib_prog: waiting for idle CPUs ($seen busy)" >&2
      warned=1
    fi
    sleep 2
  done
}

# Starts `"$@"` in the background with its stdout and stderr in file $1, and waits (up to 10 s)
# until the file shows the listening port, which the sed expression $2 prints. Sets `launched_pid`
# and `launched_port` and returns 0; or returns 1 with the reason in `launch_why` (the process has
# then been ended and reaped).
launch_and_read_port() {
  local log="$1" expr="$2"
  shift 2
  : >"$log"
  "$@" >"$log" 2>&1 &
  launched_pid=$!
  launched_port=""
  launch_why=""
  local _
  for _ in $(seq 200); do
    launched_port="$(sed -n "$expr" "$log" | head -1)"
    [ -n "$launched_port" ] && return 0
    if ! pid_alive "$launched_pid"; then
      local rc=0
      wait "$launched_pid" 2>/dev/null || rc=$?
      launched_pid=""
      launch_why="exited (status $rc): $(tail -c 600 "$log" | tr '\n' ' ')"
      return 1
    fi
    sleep 0.05
  done
  stop_pid "$launched_pid"
  launched_pid=""
  launch_why="did not print its port within 10 s: $(tail -c 600 "$log" | tr '\n' ' ')"
  return 1
}

# True while process $1 runs. Not `kill -0`: that succeeds on a child that has exited but that no
# one has reaped yet (a zombie), which is what a child of this shell is until we `wait` for it.
pid_alive() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  [ "${stat:0:1}" != Z ] && [ "${stat:0:1}" != X ]
}

# Ends process $1 (a child of this shell): SIGTERM, then SIGKILL if it is still there after 5 s;
# reaps it. Returns at once for an empty pid.
stop_pid() {
  local pid="$1" _
  [ -n "$pid" ] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do
    pid_alive "$pid" || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# Sets machine_model, machine_cpus, hypervisor, kernel, compiler, liburing, commit and dirty
# (" (with local changes)" or empty) for the results' stamp. $1: the repository's root.
describe_machine() {
  local root="$1"
  machine_model="$(sed -n 's/^model name[[:space:]]*:[[:space:]]*//p' /proc/cpuinfo | head -1)"
  machine_cpus="$(nproc --all)"
  hypervisor="$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)"
  kernel="$(uname -r)"
  compiler="$(${CXX:-g++} --version 2>/dev/null | head -1)"
  liburing="$(pkg-config --modversion liburing 2>/dev/null || echo unknown)"
  commit="$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty=""
  if git -C "$root" status --porcelain 2>/dev/null | grep -q .; then
    dirty=" (with local changes)"
  fi
}
