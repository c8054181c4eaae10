#!/usr/bin/env bash
# bench.sh: CPU per echoed line of greenline's netpoller (io_uring and epoll) against the floor, a
# raw single-threaded io_uring echo server in C (loadtest/peers/uring_echo). README.md says what is
# measured and why. Builds nothing.
#
#   loadtest/netpoll_bench/bench.sh [--build DIR] [--reps N] [--conns N] [--size B]
#                                   [--pipeline P] [--duration S] [--warmup S] [--servers LIST]
#                                   [--server-cpu N] [--client-cpu N] [--out FILE.md] [--strict]
#
#   --build DIR     where uring_echo, gl_echo and netpoll_echo_client were built (default
#                   build/release, from `cmake --workflow --preset release`): DIR/loadtest/
#                   netpoll_bench/. --floor, --gl, --client PATH override one program each.
#   --reps N        runs of every server (default 3); the table shows the median, min and max.
#   --conns N, --size B, --pipeline P   the client's load (default 100 connections, 64-byte lines,
#                   1 line in flight per connection).
#   --duration S    measured seconds per run (default 10: /proc/stat counts in 10 ms jiffies, so a
#                   run of 10 s has a resolution of 0.1% of a CPU). --warmup S before it (default 2).
#   --servers LIST  comma-separated, from floor,io_uring,epoll (default all three).
#   --server-cpu N, --client-cpu N   the CPUs to pin to (default 0 and 1).
#   --out FILE      the markdown results (default loadtest/netpoll_bench/results/latest.md).
#   --quiet-wait S  before each run, wait up to S seconds (default 600) for both CPUs to be idle
#                   (< 5% busy over 1 s): other work on the server's CPU counts as the server's.
#                   A run that starts on a busy machine anyway is marked in the results.
#   --max-foreign P a run in which the server's CPU was busy more than P% (default 10) beyond the
#                   server process's own time (another tenant ran there, a build say) is thrown
#                   away and run again, up to 3 times; the last try is kept and marked. On a kernel
#                   with IRQ time accounting the softirq share shows up there too: raise P.
#   --strict        exit 1 when a goal is missed or a server could not run (default: report it).
#
# A run: the server starts pinned to --server-cpu (`taskset -c`), on a free port (--port 0; the
# script reads the port from its first line), the client pinned to --client-cpu with --stat-cpu
# set to the server's CPU, so the client itself samples /proc/stat at the measured window's edges
# and reports the busy jiffies (README.md: why the client does it). Then the server gets SIGTERM.
# Servers are interleaved, and their order rotates from one repetition to the next, so drift in the
# machine's speed lands on all of them alike. A server that cannot start (gl_echo --poller io_uring
# in a build without that backend) is reported as not run. An error in the client (a line came back
# wrong, a connection died) fails the whole bench. Nothing is left running: a trap kills the server.
# shellcheck disable=SC2034,SC2154 # lib.sh's globals: lib_prog is read there, the rest set there
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$here/../.." && pwd -P)"
lib_prog=bench.sh
# shellcheck source=SCRIPTDIR/../lib.sh
. "$here/../lib.sh"
invocation="$(quote_command "$0" "$@")"

build="$repo_root/build/release"
floor_bin=""
gl_bin=""
client_bin=""
reps=3
conns=100
size=64
pipeline=1
duration=10
warmup=2
servers="floor,io_uring,epoll"
server_cpu=0
client_cpu=1
out="$here/results/latest.md"
strict=0
quiet_wait=600
max_foreign=10

while [ $# -gt 0 ]; do
  case "$1" in
    --build) build="${2:?--build needs a directory}"; shift 2 ;;
    --floor) floor_bin="${2:?--floor needs a path}"; shift 2 ;;
    --gl) gl_bin="${2:?--gl needs a path}"; shift 2 ;;
    --client) client_bin="${2:?--client needs a path}"; shift 2 ;;
    --reps) reps="${2:?--reps needs a number}"; shift 2 ;;
    --conns) conns="${2:?--conns needs a number}"; shift 2 ;;
    --size) size="${2:?--size needs a number}"; shift 2 ;;
    --pipeline) pipeline="${2:?--pipeline needs a number}"; shift 2 ;;
    --duration) duration="${2:?--duration needs seconds}"; shift 2 ;;
    --warmup) warmup="${2:?--warmup needs seconds}"; shift 2 ;;
    --servers) servers="${2:?--servers needs a list}"; shift 2 ;;
    --server-cpu) server_cpu="${2:?--server-cpu needs a CPU}"; shift 2 ;;
    --client-cpu) client_cpu="${2:?--client-cpu needs a CPU}"; shift 2 ;;
    --out) out="${2:?--out needs a path}"; shift 2 ;;
    --quiet-wait) quiet_wait="${2:?--quiet-wait needs seconds}"; shift 2 ;;
    --max-foreign) max_foreign="${2:?--max-foreign needs a percentage}"; shift 2 ;;
    --strict) strict=1; shift ;;
    -h|--help) sed -n '2,/^# shellcheck/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
[[ "$server_cpu" =~ ^[0-9]+$ && "$client_cpu" =~ ^[0-9]+$ ]] || die "CPUs must be numbers"
[ "$server_cpu" != "$client_cpu" ] || die "the server and the client need CPUs of their own"
command -v python3 >/dev/null || die "python3 is needed to tabulate the results"
command -v taskset >/dev/null || die "taskset is needed (util-linux)"
bin_dir="$build/loadtest/netpoll_bench"
floor_bin="${floor_bin:-$bin_dir/uring_echo}"
gl_bin="${gl_bin:-$bin_dir/gl_echo}"
client_bin="${client_bin:-$bin_dir/netpoll_echo_client}"
[ -x "$client_bin" ] || die "no client at $client_bin; build it first (cmake --workflow --preset \
release, or cmake --build BUILD_DIR --target netpoll_echo_client uring_echo gl_echo)"
IFS=',' read -r -a server_list <<<"$servers"
for s in "${server_list[@]}"; do
  case "$s" in
    floor) [ -x "$floor_bin" ] || die "no uring_echo at $floor_bin" ;;
    io_uring|epoll) [ -x "$gl_bin" ] || die "no gl_echo at $gl_bin" ;;
    *) die "--servers: unknown server '$s' (floor, io_uring, epoll)" ;;
  esac
done

work="$(mktemp -d)"
server_pid=""
client_pid=""
stop_server() {
  # launched_pid: a server started but whose port was not read yet (server_pid is set after).
  stop_pid "${server_pid:-${launched_pid:-}}"
  server_pid=""
  launched_pid=""
}
# The client runs in the background and the script `wait`s for it, so a signal is handled at once
# (bash runs traps only between foreground commands), and the trap ends the client too.
trap '[ -z "$client_pid" ] || kill -TERM "$client_pid" 2>/dev/null; stop_server; rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# Starts server $1 pinned; sets server_pid and port, or returns 1 with the reason in $work/why.
start_server() {
  local cmd=()
  case "$1" in
    floor) cmd=("$floor_bin" --port 0) ;;
    io_uring) cmd=("$gl_bin" --port 0 --poller io_uring) ;;
    epoll) cmd=("$gl_bin" --port 0 --poller epoll) ;;
  esac
  if ! launch_and_read_port "$work/server.out" 's/.*listening on port \([0-9]*\).*/\1/p' \
    taskset -c "$server_cpu" "${cmd[@]}"; then
    echo "$launch_why" >"$work/why"
    return 1
  fi
  server_pid="$launched_pid"
  port="$launched_port"
}

results="$work/results.tsv"  # server, rep, then the client's key=value line
: >"$results"
declare -A unavailable=()
echo "bench.sh: ${#server_list[@]} servers x $reps reps, ${duration}s each (+${warmup}s warmup);" \
  "server on cpu$server_cpu, client on cpu$client_cpu" >&2
for ((rep = 0; rep < reps; rep++)); do
  n=${#server_list[@]}
  for ((i = 0; i < n; i++)); do
    name="${server_list[$(((i + rep) % n))]}"
    [ -z "${unavailable[$name]:-}" ] || continue
    for try in 1 2 3; do
      wait_quiet "$quiet_wait" 1 "$server_cpu" "$client_cpu"
      if ! start_server "$name"; then
        unavailable[$name]="$(cat "$work/why")"
        echo "bench.sh: $name: not run: ${unavailable[$name]}" >&2
        continue 2
      fi
      taskset -c "$client_cpu" "$client_bin" --port "$port" --conns "$conns" \
        --size "$size" --pipeline "$pipeline" --duration "$duration" --warmup "$warmup" \
        --stat-cpu "$server_cpu" --stat-pid "$server_pid" >"$work/client.out" &
      client_pid=$!
      rc=0
      wait "$client_pid" || rc=$?
      client_pid=""
      line="$(cat "$work/client.out")"
      stop_server
      echo "bench.sh: rep $((rep + 1)) $name: $line" >&2
      [ "$rc" -eq 0 ] || die "the client failed against $name (exit $rc): $line"
      # busy_jiffies beyond proc_jiffies: CPU time on the server's CPU that was not the server's.
      foreign="$(awk -v l="$line" 'BEGIN {
        n = split(l, f, " ")
        for (i = 1; i <= n; i++) { split(f[i], kv, "="); v[kv[1]] = kv[2] }
        printf "%.1f", (v["busy_jiffies"] > 0 ? 100 * (v["busy_jiffies"] - v["proc_jiffies"]) / v["busy_jiffies"] : 0) }')"
      if awk -v f="$foreign" -v m="$max_foreign" 'BEGIN { exit !(f <= m) }'; then
        break
      fi
      echo "bench.sh: $foreign% of cpu$server_cpu's busy time was not the server's" \
        "(--max-foreign $max_foreign); try $try of 3" >&2
    done
    printf '%s\t%d\t%s quiet=%s foreign=%s\n' "$name" "$((rep + 1))" "$line" "${quiet// /_}" \
      "$foreign" >>"$results"
  done
done

for name in "${!unavailable[@]}"; do
  printf '%s\tunavailable\t%s\n' "$name" "${unavailable[$name]}" >>"$results"
done

describe_machine "$repo_root"

mkdir -p "$(dirname "$out")"
export servers server_cpu client_cpu conns size pipeline duration warmup reps machine_model \
  machine_cpus hypervisor kernel compiler liburing commit dirty invocation
python3 - "$results" "$out" "$strict" <<'PY'
import os, statistics, sys, time

results_path, out_path, strict = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
e = os.environ
runs, unavailable = {}, {}
for row in open(results_path):
    name, rep, rest = row.rstrip("\n").split("\t", 2)
    if rep == "unavailable":
        unavailable[name] = rest
        continue
    kv = dict(f.split("=", 1) for f in rest.split())
    kv["rep"] = rep
    runs.setdefault(name, []).append(kv)

label = {"floor": "floor: uring_echo (C, raw io_uring)",
         "io_uring": "greenline, io_uring poller",
         "epoll": "greenline, epoll poller"}
goal = {"floor": None, "io_uring": 1.10, "epoll": 1.25}
order = e["servers"].split(",")

def med(xs):
    return statistics.median(xs)

floor_ns = med([float(r["ns_per_line"]) for r in runs["floor"]]) if "floor" in runs else None
floor_by_rep = {r["rep"]: float(r["ns_per_line"]) for r in runs.get("floor", [])}

def paired(s):
    """Per-repetition ratios to the floor run in the same repetition (adjacent in time)."""
    return sorted(float(r["ns_per_line"]) / floor_by_rep[r["rep"]]
                  for r in runs[s] if r["rep"] in floor_by_rep)

table = ["| server | lines/s (median) | CPU ns/line: median (min-max) | ratio of medians "
         "| paired ratio: median (middle half) | goal | met? |",
         "|---|---|---|---|---|---|---|"]
missed = False
for s in order:
    if s not in runs:
        why = unavailable.get(s, "not run")
        table.append(f"| {label[s]} | not run | {why} | | | {'<= %.2fx' % goal[s] if goal[s] else ''} | no |")
        missed = missed or goal[s] is not None
        continue
    ns = [float(r["ns_per_line"]) for r in runs[s]]
    lps = med([float(r["lines_per_sec"]) for r in runs[s]])
    m = med(ns)
    pr = ""
    if goal[s] is None:
        ratio, g, met = "1.00x", "(the floor)", ""
    elif floor_ns:
        ratio, g = f"{m / floor_ns:.2f}x", f"<= {goal[s]:.2f}x"
        # The goal is judged on the paired ratio: each run against the floor run next to it, so
        # the machine's drift (+-10% over minutes here) cancels instead of adding to the spread.
        p = paired(s)
        r = med(p)
        q = len(p) // 4
        pr = f"{r:.2f}x ({p[q]:.2f}-{p[len(p) - 1 - q]:.2f})"
        met = "yes" if r <= goal[s] else "no"
        missed = missed or r > goal[s]
    else:
        ratio, g, met = "no floor", f"<= {goal[s]:.2f}x", "?"
    table.append(f"| {label[s]} | {lps:,.0f} | {m:,.0f} ({min(ns):,.0f}-{max(ns):,.0f}) | {ratio} "
                 f"| {pr} | {g} | {met} |")

raw = ["| server | rep | lines | seconds | lines/s | busy jiffies | idle jiffies | steal jiffies "
       "| CPU ns/line | ratio to this rep's floor | process-only ns/line | not the server's "
       "| idle CPUs before |",
       "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
for s in order:
    for r in runs.get(s, []):
        f = floor_by_rep.get(r["rep"])
        rr = f"{float(r['ns_per_line']) / f:.2f}" if f and s != "floor" else ""
        raw.append(f"| {s} | {r['rep']} | {int(r['lines']):,} | {r['seconds']} | {float(r['lines_per_sec']):,.0f} "
                   f"| {r['busy_jiffies']} | {r['idle_jiffies']} | {r['steal_jiffies']} "
                   f"| {float(r['ns_per_line']):,.0f} | {rr} | {float(r.get('proc_ns_per_line', 0)):,.0f} "
                   f"| {r['foreign']}% | {r['quiet'].replace('_', ' ')} |")

hyper = f" ({e['hypervisor']} guest)" if e["hypervisor"] else ""
when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
text = f"""# Netpoller benchmark: CPU per echoed line

CPU ns/line = busy jiffies of the server's CPU (cpu{e['server_cpu']} in /proc/stat: user + nice + system +
irq + softirq) x 1e9/CLK_TCK / lines echoed in the measured window. The client (on cpu{e['client_cpu']})
samples /proc/stat itself at the window's edges. Goals: greenline on io_uring <= 1.10x the floor,
on epoll <= 1.25x, judged on the paired ratio: each run divided by the floor's run of the same
repetition (minutes apart at most, where the machine's speed drifts by +-10% over a quarter of an
hour), median over the repetitions; "middle half" is its interquartile range. "process-only" is the server's own utime+stime over the same window (it misses
softirq work, and any other tenant of the CPU): a cross-check, not the metric. "not the server's"
is the share of the CPU's busy time above the process's own; runs above --max-foreign were retried.

{chr(10).join(table)}

Load: {e['conns']} connections, {e['size']}-byte lines, {e['pipeline']} in flight per connection,
closed loop; {e['duration']} s measured after {e['warmup']} s warmup; {e['reps']} repetitions, servers
interleaved.

Machine: {e['machine_model']}, {e['machine_cpus']} CPUs{hyper}; kernel {e['kernel']};
{e['compiler']}; liburing {e['liburing']}; commit {e['commit']}{e['dirty']}; {when}.

Command: `{e['invocation']}`

## Every run

{chr(10).join(raw)}
"""
open(out_path, "w").write(text)
print(text)
if strict and missed:
    sys.exit(1)
PY
echo "bench.sh: results in $out" >&2
