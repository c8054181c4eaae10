#!/usr/bin/env bash
# compare.sh: runs runtime_bench (greenline, Google Benchmark) and its Go twin (go/, `go test
# -bench`) side by side, each pair on the same worker count, prints each pair with the ratio and the
# goal, and saves the results with the machine, the toolchains and the command.
#
#   loadtest/runtime_bench/compare.sh [--bench PATH] [--out FILE.md] [--quick] [--reps N]
#                                     [--spawn-n N] [--go PATH] [--strict]
#
#   --bench PATH  the built runtime_bench (default: build/release/loadtest/runtime_bench/
#                 runtime_bench, from `cmake --workflow --preset release`). Not built here.
#   --out FILE    results, markdown (default: loadtest/runtime_bench/results/latest.md); the same
#                 data as JSON goes next to it (FILE with .json for .md).
#   --quick       for CI: 0.05 s per time-based benchmark instead of 1 s.
#   --reps N      repetitions of every pair (default 3); the table shows the medians.
#   --spawn-n N   N for SpawnJoin on both sides (default 100000; README.md says why it is fixed).
#   --go PATH     the Go toolchain (default: $GO, else /usr/lib/go-1.23/bin/go, else go on PATH).
#   --strict      exit 1 when a goal is missed (default: report it, exit 0).
#
# A pair is a benchmark and a worker count P (the `pairs` list below, README.md's table): the C++
# side runs as `runtime_bench --procs=P` (one runtime with P workers per process; runtime_bench.cc
# says why), the Go side with GOMAXPROCS=P and -test.cpu=P. Pairs are interleaved (C++ A, Go A,
# C++ B, Go B, ...), and which side goes first alternates between repetitions, so drift in the
# machine's speed (other tenants, thermal state) lands on both sides alike. Only the Go test binary
# is built here, with its cache under build/ (GOCACHE, GOPATH), no network (GOPROXY=off,
# GOTOOLCHAIN=local), so it works as root in CI with HOME unset.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
repo_root="$(cd "$here/../.." && pwd -P)"
invocation="$0$(printf ' %q' "$@")"

bench="$repo_root/build/release/loadtest/runtime_bench/runtime_bench"
out="$here/results/latest.md"
quick=0
reps=3
spawn_n=100000
go_bin="${GO:-}"
strict=0

die() {
  echo "compare.sh: $*" >&2
  exit 1
}

while [ $# -gt 0 ]; do
  case "$1" in
    --bench) bench="${2:?--bench needs a path}"; shift 2 ;;
    --bench=*) bench="${1#*=}"; shift ;;
    --out) out="${2:?--out needs a path}"; shift 2 ;;
    --out=*) out="${1#*=}"; shift ;;
    --quick) quick=1; shift ;;
    --reps) reps="${2:?--reps needs a number}"; shift 2 ;;
    --reps=*) reps="${1#*=}"; shift ;;
    --spawn-n) spawn_n="${2:?--spawn-n needs a number}"; shift 2 ;;
    --spawn-n=*) spawn_n="${1#*=}"; shift ;;
    --go) go_bin="${2:?--go needs a path}"; shift 2 ;;
    --go=*) go_bin="${1#*=}"; shift ;;
    --strict) strict=1; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$1' (see --help)" ;;
  esac
done

[[ "$reps" =~ ^[1-9][0-9]*$ ]] || die "--reps must be a positive integer"
[[ "$spawn_n" =~ ^[1-9][0-9]*$ ]] || die "--spawn-n must be a positive integer"
command -v python3 >/dev/null ||
  die "python3 is needed to parse and tabulate the results (apt-get install python3-minimal)"
[ -x "$bench" ] || die "no runtime_bench at $bench; build it first (cmake --workflow --preset \
release, or cmake --build BUILD_DIR --target runtime_bench) or pass --bench PATH"
bench="$(cd "$(dirname "$bench")" && pwd -P)/$(basename "$bench")"

if [ -z "$go_bin" ]; then
  if [ -x /usr/lib/go-1.23/bin/go ]; then
    go_bin=/usr/lib/go-1.23/bin/go
  elif command -v go >/dev/null; then
    go_bin="$(command -v go)"
  else
    die "no Go toolchain: install Go 1.23 (apt-get install golang-1.23-go) or pass --go PATH"
  fi
fi
[ -x "$go_bin" ] || die "--go $go_bin is not executable"

if [ "$quick" = 1 ]; then min_time=0.05; else min_time=1; fi

work="$(mktemp -d "${TMPDIR:-/tmp}/runtime_bench.XXXXXX")"
trap 'rm -rf "$work"' EXIT

# ---- the Go twin: build the test binary ----------------------------------------------------------
go_cache_root="$repo_root/build/go-runtime-bench"
mkdir -p "$go_cache_root"
export GOCACHE="${GOCACHE:-$go_cache_root/cache}" GOPATH="${GOPATH:-$go_cache_root/path}"
export GOTOOLCHAIN=local GOPROXY=off GOFLAGS='' GO111MODULE=on CGO_ENABLED=0
go_version="$("$go_bin" version)"
case "$go_version" in
  *" go1.23"*) ;;
  *) echo "compare.sh: warning: the Go twin is specified against Go 1.23; this is: $go_version" >&2 ;;
esac
echo "compare.sh: building the Go twin with $go_bin" >&2
(cd "$here/go" && "$go_bin" test -c -o "$work/runtime_bench.test" .) ||
  die "building the Go benchmarks failed"

# ---- runs ----------------------------------------------------------------------------------------
# Every pair, NAME:P (P = workers on both sides), in the order run. The units and goals are in the
# BENCHES table of the Python below; a new pair goes in both (and in README.md's table).
pairs=(YieldPingPong:1 SpawnJoin:1 SleepWake:1 ChanPingPong:1 ChanPingPong:2 BufferedChan:1
  SelectTwoReady:1 MutexContended:2 Defer:1)
per_run_timeout=600
cxx_cmd_template="$bench --procs=P --benchmark_filter='^BM_NAME/procs:P/' --benchmark_format=json \
--benchmark_min_time=$min_time --spawn_join_n=$spawn_n"
go_cmd_template="GOMAXPROCS=P runtime_bench.test -test.run='^\$' -test.bench='^BenchmarkNAME\$' \
-test.cpu=P -test.count=1 -test.benchtime=<${min_time}s, or ${spawn_n}x for SpawnJoin>"

run_cxx() {  # name procs rep
  local f="$work/cxx_$1_$2_$3"
  if ! timeout -k 10 "$per_run_timeout" "$bench" --procs="$2" \
      --benchmark_filter="^BM_$1/procs:$2/" --benchmark_format=json --benchmark_min_time="$min_time" --spawn_join_n="$spawn_n" \
      >"$f.json" 2>"$f.err"; then
    cat "$f.err" >&2
    die "runtime_bench failed on BM_$1/procs:$2 (repetition $3); command: $cxx_cmd_template"
  fi
}

run_go() {  # name procs rep
  local f="$work/go_$1_$2_$3" benchtime="${min_time}s"
  [ "$1" = SpawnJoin ] && benchtime="${spawn_n}x"
  if ! (cd "$work" && GOMAXPROCS="$2" timeout -k 10 "$per_run_timeout" ./runtime_bench.test \
      -test.run='^$' -test.bench="^Benchmark$1\$" -test.cpu="$2" -test.count=1 \
      -test.benchtime="$benchtime" >"$f.txt" 2>&1); then
    cat "$f.txt" >&2
    die "the Go benchmark Benchmark$1 failed with GOMAXPROCS=$2 (repetition $3)"
  fi
}

started="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
load_before="$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
for ((rep = 1; rep <= reps; ++rep)); do
  for pair in "${pairs[@]}"; do
    name="${pair%:*}" procs="${pair#*:}"
    echo "compare.sh: repetition $rep/$reps: $name/procs:$procs" >&2
    if ((rep % 2 == 1)); then
      run_cxx "$name" "$procs" "$rep"
      run_go "$name" "$procs" "$rep"
    else
      run_go "$name" "$procs" "$rep"
      run_cxx "$name" "$procs" "$rep"
    fi
  done
done
finished="$(date -u +%Y-%m-%dT%H:%M:%SZ)"

# ---- machine and toolchains ----------------------------------------------------------------------
{
  echo "uname=$(uname -a)"
  echo "cpu_model=$(lscpu 2>/dev/null | sed -n 's/^Model name:[[:space:]]*//p' | head -1)"
  echo "hypervisor=$(lscpu 2>/dev/null | sed -n 's/^Hypervisor vendor:[[:space:]]*//p' | head -1)"
  echo "nproc=$(nproc)"
  echo "mem_total=$(sed -n 's/^MemTotal:[[:space:]]*//p' /proc/meminfo 2>/dev/null)"
  echo "go_version=$go_version"
  echo "gxx_version=$(g++ --version 2>/dev/null | head -1 || echo 'g++ not found')"
  cache="$(dirname "$bench")/../../CMakeCache.txt"
  if [ -f "$cache" ]; then
    echo "cxx_compiler=$(sed -n 's/^CMAKE_CXX_COMPILER:[A-Z]*=//p' "$cache")"
    echo "build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")"
    echo "lto=$(sed -n 's/^CMAKE_INTERPROCEDURAL_OPTIMIZATION:[A-Z]*=//p' "$cache")"
  fi
  echo "load_before=$load_before"
  echo "started=$started"
  echo "finished=$finished"
} >"$work/machine.txt"

mkdir -p "$(dirname "$out")"
json_out="${out%.md}.json"
[ "$json_out" = "$out" ] && json_out="$out.json"

python3 - "$work" "$out" "$json_out" "$reps" "$strict" "$quick" "$min_time" "$spawn_n" \
  "$invocation" "$cxx_cmd_template" "$go_cmd_template" "${pairs[*]}" <<'PY'
import json, re, statistics, sys

(work, out, json_out, reps, strict, quick, min_time, spawn_n, invocation, cxx_cmd,
 go_cmd, pairs_run) = sys.argv[1:]
reps, strict, quick = int(reps), strict == "1", quick == "1"

# name, workers (both sides), unit, goal (greenline / Go at most; None: reported only). The same
# rows as README.md's table and the shell's `pairs` list.
BENCHES = [
    ("YieldPingPong", 1, "per switch", 0.25),
    ("SpawnJoin", 1, "per goroutine", 0.33),
    ("SleepWake", 1, "per 1 ns sleep", None),
    ("ChanPingPong", 1, "per round trip", 0.33),
    ("ChanPingPong", 2, "per round trip", 1.0),
    ("BufferedChan", 1, "per value", 1.0),
    ("SelectTwoReady", 1, "per select", 1.0),
    ("MutexContended", 2, "per lock/unlock", 1.0),
    ("Defer", 1, "per deferring call", 1.0),
]
if sorted(pairs_run.split()) != sorted(f"{n}:{p}" for n, p, _, _ in BENCHES):
    sys.exit("compare.sh: the shell's pairs and the BENCHES table disagree: " + pairs_run)
TO_NS = {"ns": 1.0, "us": 1e3, "ms": 1e6, "s": 1e9}

machine = {}
with open(f"{work}/machine.txt") as f:
    for line in f:
        k, _, v = line.rstrip("\n").partition("=")
        machine[k] = v

def cxx_result(name, procs, rep):
    with open(f"{work}/cxx_{name}_{procs}_{rep}.json") as f:
        doc = json.load(f)
    runs = [b for b in doc["benchmarks"]
            if b["name"].split("/")[:2] == [f"BM_{name}", f"procs:{procs}"]
            and b.get("run_type", "iteration") == "iteration"]
    if len(runs) != 1:
        sys.exit(f"compare.sh: expected one BM_{name}/procs:{procs} result in repetition {rep}, "
                 f"got {len(runs)}")
    if doc["context"].get("greenline_max_procs") != str(procs):
        sys.exit(f"compare.sh: BM_{name}/procs:{procs} ran on "
                 f"{doc['context'].get('greenline_max_procs')} workers")
    b = runs[0]
    if b.get("error_occurred"):
        sys.exit(f"compare.sh: BM_{name} reported an error: {b.get('error_message')}")
    return (b["real_time"] * TO_NS[b["time_unit"]], int(b["iterations"]),
            b.get("switches_per_op"), doc["context"])

# Go appends -P to a benchmark's name when it ran with GOMAXPROCS=P > 1.
GO_LINE = re.compile(r"^Benchmark(\w+?)(?:-(\d+))?\s+(\d+)\s+([0-9.]+) ns/op")

def go_result(name, procs, rep):
    with open(f"{work}/go_{name}_{procs}_{rep}.txt") as f:
        text = f.read()
    hits = [m for m in map(GO_LINE.match, text.splitlines())
            if m and m.group(1) == name and int(m.group(2) or 1) == procs]
    if len(hits) != 1:
        sys.exit(f"compare.sh: no single Benchmark{name} line for GOMAXPROCS={procs} in the Go "
                 f"output:\n{text}")
    return float(hits[0].group(4)), int(hits[0].group(3))

results, context = [], {}
for name, procs, unit, goal in BENCHES:
    cxx, go = [], []
    for rep in range(1, reps + 1):
        ns, iters, switches, context = cxx_result(name, procs, rep)
        cxx.append({"ns_per_op": ns, "n": iters, "switches_per_op": switches})
        ns, iters = go_result(name, procs, rep)
        go.append({"ns_per_op": ns, "n": iters})
    c = statistics.median(r["ns_per_op"] for r in cxx)
    g = statistics.median(r["ns_per_op"] for r in go)
    ratio = c / g
    met = None if goal is None else ratio <= goal
    results.append({"benchmark": f"{name}/procs:{procs}", "name": name, "procs": procs,
                    "unit": unit, "greenline_ns": c, "go_ns": g, "ratio": ratio, "goal": goal,
                    "met": met, "greenline_runs": cxx, "go_runs": go})

def fmt_ns(v):
    return f"{v:.1f}" if v < 1000 else f"{v:.0f}"

header = ["benchmark", "unit", "greenline ns/op", "Go ns/op", "ratio", "goal", "met?"]
rows = []
for r in results:
    rows.append([r["benchmark"], r["unit"], fmt_ns(r["greenline_ns"]), fmt_ns(r["go_ns"]),
                 f"{r['ratio']:.2f}", "-" if r["goal"] is None else f"<= {r['goal']:.2f}",
                 "-" if r["met"] is None else ("yes" if r["met"] else "NO")])

widths = [max(len(x) for x in col) for col in zip(header, *rows)]
def line(cells):
    return "  ".join(c.ljust(w) if i < 2 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))
print(line(header))
print("  ".join("-" * w for w in widths))
for row in rows:
    print(line(row))
print(f"(median of {reps}; procs:P = P workers on both sides; SpawnJoin at N = {spawn_n}; "
      f"results in {out})")

lib_type = context.get("library_build_type", "unknown")
md = []
md.append("# runtime_bench: greenline vs Go\n")
md.append(f"Run {machine.get('started')} to {machine.get('finished')}"
          f"{' (--quick)' if quick else ''}. Median of {reps} interleaved repetitions; "
          "ratio = greenline / Go (lower is better); procs:P = P workers on both sides "
          "(runtime_bench --procs=P; GOMAXPROCS=P, -test.cpu=P). Unit definitions: README.md.\n")
md.append("| " + " | ".join(header) + " |")
md.append("|" + "|".join(["---"] * 2 + ["---:"] * 5) + "|")
for row in rows:
    md.append("| " + " | ".join(row) + " |")
md.append("")
md.append("Every repetition (ns/op, with N):\n")
md.append("| benchmark | side | " + " | ".join(f"rep {i}" for i in range(1, reps + 1)) + " |")
md.append("|---|---|" + "---:|" * reps)
for r in results:
    for side, key in (("greenline", "greenline_runs"), ("Go", "go_runs")):
        cells = [f"{fmt_ns(x['ns_per_op'])} (N={x['n']})" for x in r[key]]
        md.append(f"| {r['benchmark']} | {side} | " + " | ".join(cells) + " |")
    paired = [c["ns_per_op"] / g["ns_per_op"] for c, g in zip(r["greenline_runs"], r["go_runs"])]
    md.append(f"| {r['benchmark']} | ratio | " + " | ".join(f"{x:.2f}" for x in paired) + " |")
md.append("")
sw = ", ".join(f"{r['benchmark']} {statistics.median(x['switches_per_op'] for x in r['greenline_runs']):.3f}"
               for r in results if all(x["switches_per_op"] is not None for x in r["greenline_runs"]))
if sw:
    md.append(f"greenline goroutine switches per op (median; from TotalSwitches()): {sw}.\n")
md.append("## Machine and toolchains\n")
md.append(f"- uname -a: `{machine.get('uname')}`")
md.append(f"- CPU: {machine.get('cpu_model')} ({machine.get('nproc')} CPUs online"
          f"{', hypervisor ' + machine['hypervisor'] if machine.get('hypervisor') else ''}), "
          f"memory {machine.get('mem_total')}")
md.append(f"- load average before the run: {machine.get('load_before')}")
md.append(f"- Go: `{machine.get('go_version')}` (GOMAXPROCS=P and -test.cpu=P for a procs:P pair)")
md.append(f"- C++: `{machine.get('gxx_version')}`"
          + (f"; runtime_bench built with `{machine['cxx_compiler']}`, "
             f"CMAKE_BUILD_TYPE={machine.get('build_type')}, LTO={machine.get('lto') or 'OFF'}"
             if machine.get("cxx_compiler") else ""))
md.append(f"- Google Benchmark library build type: {lib_type}"
          + (" (Debian's libbenchmark reports itself as a debug build; the timed code is ours, "
             "built as above)" if lib_type == "debug" else ""))
md.append("")
md.append("## Command\n")
md.append("```")
md.append(invocation)
md.append("```")
md.append("Each repetition ran, per benchmark NAME and worker count P, interleaved (C++ first on "
          "odd repetitions, Go first on even ones):\n")
md.append("```")
md.append(cxx_cmd)
md.append(go_cmd)
md.append("```")
md.append("")

doc = {"started": machine.get("started"), "finished": machine.get("finished"), "quick": quick,
       "repetitions": reps, "min_time_s": float(min_time), "spawn_join_n": int(spawn_n),
       "command": invocation, "cxx_command": cxx_cmd, "go_command": go_cmd,
       "machine": machine, "benchmark_library_build_type": lib_type, "results": results}
md.append("## JSON\n")
md.append(f"The same data: `{json_out.rsplit('/', 1)[-1]}`.\n")
with open(out, "w") as f:
    f.write("\n".join(md))
with open(json_out, "w") as f:
    json.dump(doc, f, indent=2)
    f.write("\n")

if strict and any(r["met"] is False for r in results):
    sys.exit("compare.sh: a goal was missed (--strict)")
PY
