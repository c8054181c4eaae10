#!/usr/bin/env python3
"""bench_report.py: the data half of loadtest/bench (python3 standard library only).

  bench_report.py record --index FILE --json FILE --rc N ...   one run: judge it, append it to the
                                                                index (JSON lines), print
                                                                "kept<TAB>verdict<TAB>summary"
  bench_report.py report --index FILE --out DIR ...            every run: latest.md, latest.json,
                                                                the charts (gnuplot), the goals
  bench_report.py report --index OUT/latest.json --out OUT --work TMP
                                                                the same again from a latest.json

A run's verdict: `failed` (the client could not run or reported an error where none is allowed,
the server would not start or died: the bench exits non-zero), `fail` (a measurement over a limit:
a chat step that lost a message or whose p99 passed the limit, an open-loop run that did not keep
its rate) or `pass`.

Where the figures come from (greenline-load's JSON, loadtest/load/README.md): the server's CPU is
the busy time of its pinned CPU from /proc/stat over the measured window (`server_cpu`), sampled by
the client itself at the window's edges; the client's CPU is its getrusage over the window; the
server's peak RSS is VmHWM from /proc/PID/status. "Foreign" work is the server CPU's busy time
above the server process's own CPU time, as a share of the window: another tenant ran there, and
the run is repeated (loadtest/lib.sh, netpoll_bench/README.md).

The capacity rule (loadtest/README.md): a throughput is the server's capacity only when the
server's CPU was at least 95% busy and the client's was not; when the client's CPU was, the run is
client-bound and the server's CPU per line (or delivery) is the comparison; when neither was, the
run measured latency at a load below both.
"""

import argparse
import json
import math
import os
import re
import shutil
import statistics
import subprocess
import sys
import time

BUSY = 0.95
SERVER_LABEL = {
    "greenline": "greenline (io_uring)",
    "greenline-epoll": "greenline (epoll)",
    "go": "Go (GOMAXPROCS=1)",
    "asio": "Asio (1 thread)",
    "floor": "raw io_uring loop (C)",
}
SERVER_ORDER = ["greenline", "greenline-epoll", "go", "asio", "floor"]
SCENARIO_TITLE = {
    "echo-1c": "echo, 64-byte lines, 1 connection, closed loop",
    "echo-100c": "echo, 64-byte lines, 100 connections, closed loop",
    "echo-1000c": "echo, 64-byte lines, 1,000 connections, closed loop",
    "echo-open": "echo, 64-byte lines, 100 connections, open loop at a fixed rate",
    "echo-4k": "echo, 4,000-byte lines, 100 connections, closed loop",
    "chat-1room": "chat, users in 1 room, ramped",
    "chat-10rooms": "chat, users in 10 rooms, ramped",
    "idle": "idle connections",
    "idle-chat": "idle chat users, rooms of 100",
}
SCENARIO_ORDER = list(SCENARIO_TITLE)
CHARTS = ["echo_throughput", "echo_cpu", "echo_latency", "chat_ramp", "idle_rss"]


# --- one run -----------------------------------------------------------------------------------

def get(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def figures(res):
    """The figures of one client report that the tables use (None where absent)."""
    f = {
        "per_second": get(res, "throughput", "per_second"),
        "count": get(res, "throughput", "count"),
        "unit": get(res, "throughput", "unit"),
        "window": res.get("window_seconds"),
        "server_util": get(res, "server_cpu", "utilization"),
        "cpu_ms_per_1000": None,
        "kernel_ms_per_1000": None,
        "user_ms_per_1000": None,
        "client_util": get(res, "client_cpu", "utilization"),
        "peak_rss": get(res, "server", "peak_rss_bytes"),
        "foreign_pct": None,
        "errors_total": res.get("errors_total", 0),
    }
    ns = get(res, "server_cpu", "ns_per_1000_units")
    if ns is None and get(res, "server_cpu", "ns_per_unit") is not None:
        ns = res["server_cpu"]["ns_per_unit"] * 1000
    if ns is not None:
        f["cpu_ms_per_1000"] = ns / 1e6
    kns = get(res, "server_cpu", "kernel_ns_per_unit")
    if kns is not None:
        f["kernel_ms_per_1000"] = kns / 1e3
    # The server process's user-space time alone: perf's share of its samples that are user
    # space proper, applied to the process CPU measured over the window; else its utime
    # (/proc/PID/stat), whose tick samples carry the bias perf_split takes out.
    share = get(res, "perf_split", "user_share")
    pns = get(res, "server", "process_ns_per_unit")
    uns = get(res, "server", "user_ns_per_unit")
    if share is not None and pns is not None:
        f["user_ms_per_1000"] = share * pns / 1e3
        f["user_how"] = "perf"
    elif uns is not None:
        f["user_ms_per_1000"] = uns / 1e3
        f["user_how"] = "utime"
    for k in ("p50", "p90", "p99", "p999", "max", "mean"):
        f[k] = get(res, "latency_us", k)
    busy = get(res, "server_cpu", "busy_jiffies")
    idle = get(res, "server_cpu", "idle_jiffies") or 0
    proc = get(res, "server", "process_jiffies")
    if busy and proc is not None:
        # As a share of the window, not of the busy time: at a light load (one connection, a low
        # chat step) a few jiffies of kernel housekeeping would otherwise look like a tenant.
        f["foreign_pct"] = 100.0 * max(0, busy - proc) / (busy + idle)
    su, cu = f["server_util"], f["client_util"]
    if su is None or cu is None:
        f["bound"] = "n/a"
    elif cu >= BUSY:
        f["bound"] = "client"
    elif su >= BUSY:
        f["bound"] = "server"
    else:
        f["bound"] = "neither"
    return f


def chat_target_rate(res, rate):
    """Deliveries/s that a chat step at `rate` messages/s per user should make: user i is in room
    i % rooms, and each message goes to every other member of its room."""
    users, rooms = get(res, "settings", "users"), get(res, "settings", "rooms")
    if not rate or not users or not rooms:
        return None
    sizes = [users // rooms + (1 if k < users % rooms else 0) for k in range(rooms)]
    return rate * sum(n * (n - 1) for n in sizes)


def chat_rate_tolerance(res, rate):
    """How far under its target a chat step's delivery rate may fall by chance: 5%, or three
    standard deviations of the messages due in the window when fewer are due (each user's sends
    are randomly phased, so the count in a short window at a low rate varies: ~100 +- 10)."""
    due = rate * (get(res, "settings", "users") or 0) * (res.get("window_seconds") or 0)
    return max(0.05, 3 / math.sqrt(due)) if due > 0 else 0.05


def judge(a, res):
    """(verdict, reason) for a run; see the module's docstring."""
    if a.why:
        return "failed", a.why
    if res is None:
        what = "timed out" if a.rc in (124, 137) else f"exited {a.rc}"
        return "failed", f"the client {what} without a report"
    if a.server_died:
        return "failed", "the server died during the run"
    mode = res.get("mode")
    errors = {k: v for k, v in (res.get("errors") or {}).items() if v}
    if mode == "chat":
        if a.rc >= 2:
            return "failed", f"the client exited {a.rc}"
        ex = res.get("extra") or {}
        why = []
        if errors:
            why.append("errors " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items())))
        for k in ("lost", "duplicated", "reordered"):
            if ex.get(k):
                why.append(f"{k} {ex[k]:,}")
        p99 = get(res, "latency_us", "p99")
        if p99 is None:
            why.append("no latency")
        elif p99 / 1000 >= a.p99_limit_ms:
            why.append(f"p99 {p99 / 1000:,.1f} ms >= {a.p99_limit_ms:g} ms")
        target = chat_target_rate(res, a.target)
        per_second = get(res, "throughput", "per_second") or 0
        if target and per_second < target * (1 - chat_rate_tolerance(res, a.target)):
            # The client could not send that fast, or the server could not deliver that fast.
            why.append(f"delivered {per_second / target:.0%} of the target rate")
        if a.rc == 1 and not why:
            why.append("the client reported errors")
        return ("fail", "; ".join(why)) if why else ("pass", "")
    if a.rc != 0 or errors:
        shown = ", ".join(f"{k} {v}" for k, v in sorted(errors.items())) or "no error counted"
        return "failed", f"the client exited {a.rc} ({shown})"
    if mode == "echo" and a.target:
        per_second = get(res, "throughput", "per_second") or 0
        if per_second < 0.97 * a.target:
            return "fail", f"kept only {per_second:,.0f} of {a.target:,.0f} lines/s"
    if mode == "idle":
        ex = res.get("extra") or {}
        if ex.get("sample_checked") and ex.get("sample_ok") != ex.get("sample_checked"):
            return "failed", f"{ex.get('sample_ok')} of {ex.get('sample_checked')} sampled answered"
    return "pass", ""


def fmt_us(us):
    if us is None:
        return "?"
    return f"{us / 1000:,.1f} ms" if us >= 10000 else f"{us:,.0f} us"


def run_summary(rec):
    f = rec.get("figures") or {}
    res = rec.get("result") or {}
    if rec["verdict"] == "failed" and not res:
        return f"FAILED: {rec['reason']}"
    parts = []
    mode = res.get("mode")
    if mode == "idle":
        ex = res.get("extra") or {}
        slope = ex.get("rss_slope_bytes_per_conn")
        parts.append(f"{ex.get('conns_opened', '?'):,} conns at {ex.get('connect_per_second', 0):,.0f}/s, "
                     f"RSS +{ex.get('rss_per_conn_bytes') or 0:,.0f} B/conn"
                     + (f" (slope {slope:,.0f} B/conn)" if slope is not None else "") + ", "
                     f"sample {ex.get('sample_ok', '?')}/{ex.get('sample_checked', '?')}")
    else:
        unit = f.get("unit") or "units"
        parts.append(f"{(f.get('per_second') or 0):,.0f} {unit}/s")
        parts.append(f"p50 {fmt_us(f.get('p50'))} p99 {fmt_us(f.get('p99'))}")
        if mode == "chat":
            ex = res.get("extra") or {}
            parts.append(f"lost {ex.get('lost', '?')}")
        if f.get("server_util") is not None:
            parts.append(f"server CPU {f['server_util']:.0%}, "
                         f"{f['cpu_ms_per_1000'] or 0:.2f} ms/1000 {unit}")
        if f.get("client_util") is not None:
            parts.append(f"client CPU {f['client_util']:.0%} [{f['bound']}-bound]")
    if f.get("foreign_pct") is not None and mode != "idle":
        parts.append(f"foreign {f['foreign_pct']:.1f}%")
    s = ", ".join(parts)
    if rec["verdict"] != "pass":
        s += f" -> {rec['verdict'].upper()}: {rec['reason']}"
    if not rec["kept"]:
        s += " (disturbed: run again)"
    return s


def cmd_record(a):
    res = None
    if a.json and os.path.exists(a.json):
        try:
            with open(a.json) as fh:
                res = json.load(fh)
        except (OSError, ValueError) as e:
            res = None
            a.why = a.why or f"unreadable client report: {e}"
    verdict, reason = judge(a, res)
    if res and a.perf_data:
        res["perf_split"] = perf_split(a.perf_data)
    rec = {
        "scenario": a.scenario, "server": a.server, "rep": a.rep, "step": a.step,
        "target": a.target, "try": a.try_, "quiet": a.quiet, "rc": a.rc,
        "server_died": bool(a.server_died), "server_cmd": a.server_cmd,
        "client_cmd": a.client_cmd, "verdict": verdict, "reason": reason,
        "figures": figures(res) if res else None, "result": res,
    }
    foreign = (rec["figures"] or {}).get("foreign_pct")
    # Idle measures memory, which other tenants of the CPU do not change: never run again.
    rec["disturbed"] = (foreign is not None and foreign > a.max_foreign
                        and not a.scenario.startswith("idle"))
    rec["kept"] = verdict == "failed" or not rec["disturbed"] or a.try_ >= a.tries
    with open(a.index, "a") as fh:
        fh.write(json.dumps(rec) + "\n")
    print(f"{int(rec['kept'])}\t{verdict}\t{run_summary(rec)}")


PERF_MMAP = re.compile(r"PERF_RECORD_MMAP2? .*\[(0x[0-9a-f]+)\((0x[0-9a-f]+)\) @ (0x[0-9a-f]+|\d+) "
                       r".*\]: \S+ (/\S+)")


def perf_split(path):
    """The server's cpu-clock samples (perf record -p) split three ways: kernel, user space, and
    user samples on the instruction right after a `syscall` (0f 05): time the kernel spent whose
    sample was only taken on the return to user mode (on these KVM guests the sampling interrupt
    of a system call's exit path lands there: 6% of all of greenline's samples sat on the one
    instruction after liburing's io_uring_enter, and Go's sit after its Syscall6). Those count as
    the kernel's. None when perf could not read the file."""
    try:
        p = subprocess.run(["perf", "script", "-i", path, "--show-mmap-events", "-F", "ip"],
                           capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if p.returncode != 0:
        return None
    maps, files = [], {}
    kernel = user = after_syscall = 0

    def after_syscall_at(file, off):
        if file not in files:
            try:
                with open(file, "rb") as fh:
                    files[file] = fh.read()
            except OSError:
                files[file] = b""
        return off >= 2 and files[file][off - 2:off] == b"\x0f\x05"

    for line in p.stdout.splitlines():
        m = PERF_MMAP.search(line)
        if m:
            start, size = int(m.group(1), 16), int(m.group(2), 16)
            maps.append((start, start + size, int(m.group(3), 0), m.group(4)))
            continue
        word = line.strip()
        if not re.fullmatch(r"[0-9a-f]+", word):
            continue
        ip = int(word, 16)
        if ip >= 0xffff800000000000:
            kernel += 1
            continue
        user += 1
        for start, end, pgoff, file in maps:
            if start <= ip < end:
                after_syscall += after_syscall_at(file, ip - start + pgoff)
                break
    total = kernel + user
    # No kernel sample at all: perf fell back to user-space-only sampling (perf_event_paranoid),
    # and the share would be meaningless.
    if total == 0 or kernel == 0:
        return None
    return {"samples": total, "kernel": kernel, "user": user, "user_after_syscall": after_syscall,
            "user_share": (user - after_syscall) / total}


# --- every run ---------------------------------------------------------------------------------

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def num(x, digits=0, suffix=""):
    if x is None:
        return "–"
    return f"{x:,.{digits}f}{suffix}"


def pct(x):
    return "–" if x is None else f"{x:.0%}"


def ratio(x, base):
    if x is None or not base:
        return None
    return x / base


def rx(x):
    return "–" if x is None else f"{x:.2f}x"


def label(server):
    return SERVER_LABEL.get(server, server)


def majority(xs):
    xs = [x for x in xs if x]
    if not xs:
        return "n/a"
    top = max(set(xs), key=xs.count)
    return top if xs.count(top) == len(xs) else f"{top} ({xs.count(top)}/{len(xs)})"


class Data:
    def __init__(self, runs):
        self.all = runs
        self.kept = [r for r in runs if r["kept"]]
        self.ok = [r for r in self.kept if r["verdict"] != "failed"]
        self.failed = [r for r in self.kept if r["verdict"] == "failed"]

    def scenario_runs(self, scenario, server=None):
        return [r for r in self.ok if r["scenario"] == scenario and (server is None or r["server"] == server)]

    def first_failure(self, scenario, server):
        """Why the first failed run of `server` in `scenario` failed, or None."""
        for r in self.failed:
            if r["scenario"] == scenario and r["server"] == server:
                return r["reason"]
        return None

    def servers(self, scenario):
        present = {r["server"] for r in self.kept if r["scenario"] == scenario}
        return [s for s in SERVER_ORDER if s in present] + sorted(present - set(SERVER_ORDER))


def echo_summary(data, scenario):
    """Per server: medians over the repetitions (and each repetition's CPU per line, for the
    paired ratios of the goals)."""
    rows = {}
    for s in data.servers(scenario):
        rs = data.scenario_runs(scenario, s)
        if not rs:
            rows[s] = {"runs": 0, "failed": data.first_failure(scenario, s) or "not run"}
            continue
        fs = [r["figures"] for r in rs]
        row = {"runs": len(rs)}
        for k in ("per_second", "p50", "p90", "p99", "p999", "max", "cpu_ms_per_1000",
                  "kernel_ms_per_1000", "user_ms_per_1000", "server_util", "client_util",
                  "peak_rss", "foreign_pct"):
            row[k] = med([f.get(k) for f in fs])
        row["per_second_min"] = min(f["per_second"] for f in fs)
        row["per_second_max"] = max(f["per_second"] for f in fs)
        row["bound"] = majority([f.get("bound") for f in fs])
        row["user_how"] = majority([f.get("user_how") for f in fs])
        row["rep_cpu"] = {r["rep"]: r["figures"].get("cpu_ms_per_1000") for r in rs}
        row["rep_user"] = {r["rep"]: r["figures"].get("user_ms_per_1000") for r in rs}
        row["verdicts"] = [r["verdict"] for r in rs]
        row["reasons"] = [r["reason"] for r in rs if r["reason"]]
        rows[s] = row
    base = rows.get("greenline", {})
    for s, row in rows.items():
        for k in ("cpu_ms_per_1000", "user_ms_per_1000", "per_second", "p99"):
            row["ratio_" + k] = ratio(row.get(k), base.get(k)) if row.get("runs") else None
    return rows


def chat_summary(data, scenario):
    """Per server and repetition: the best passing step (the sustained zero-loss delivery rate);
    per server, medians over repetitions; and CPU per delivery at the highest rate that greenline
    and Go both passed in the same repetition."""
    out = {"servers": {}, "common": []}
    reps = sorted({r["rep"] for r in data.scenario_runs(scenario)})
    for s in data.servers(scenario):
        per_rep = []
        for rep in reps:
            steps = [r for r in data.scenario_runs(scenario, s) if r["rep"] == rep]
            if not steps:
                continue
            passed = [r for r in steps if r["verdict"] == "pass"]
            if passed:
                b = max(passed, key=lambda r: r["target"])
                # The capacity lies between the best pass and the first failure above it, unless
                # that failure was the client's (its core was the limit): then no upper bound.
                above = [r for r in steps if r["verdict"] != "pass" and r["target"] > b["target"]]
                first = min(above, key=lambda r: r["target"]) if above else None
                upper = math.inf
                if first and first["figures"]["bound"] != "client":
                    upper = chat_target_rate(first["result"], first["target"])
                per_rep.append({"rep": rep, "run": b, "upper": upper})
            else:
                per_rep.append({"rep": rep, "run": None, "upper": None})
        fs = [p["run"]["figures"] for p in per_rep if p["run"]]
        row = {"reps": len(per_rep), "passed_reps": len(fs)}
        if fs:
            for k in ("p99", "cpu_ms_per_1000", "server_util", "client_util", "peak_rss"):
                row[k] = med([f.get(k) for f in fs])
            # The sustained rate is the best passing step's offered load (its per-user rate times
            # the fan-out), which it delivered in full: the count inside a short window at a low
            # rate varies by chance (randomly phased senders); the measured one is beside it.
            row["per_second"] = med([chat_target_rate(p["run"]["result"], p["run"]["target"])
                                     for p in per_rep if p["run"]])
            row["measured_per_second"] = med([f.get("per_second") for f in fs])
            row["rate"] = med([p["run"]["target"] for p in per_rep if p["run"]])
            row["bound"] = majority([f.get("bound") for f in fs])
            row["upper"] = med([p["upper"] for p in per_rep if p["run"]])
            row["lower_bound"] = row["upper"] == math.inf
        if data.first_failure(scenario, s):
            row["failed"] = data.first_failure(scenario, s)
        out["servers"][s] = row
    base = out["servers"].get("greenline", {})
    for s, row in out["servers"].items():
        row["ratio_per_second"] = ratio(row.get("per_second"), base.get("per_second"))
        row["ratio_cpu_ms_per_1000"] = ratio(row.get("cpu_ms_per_1000"), base.get("cpu_ms_per_1000"))
    # CPU per delivery at a common rate, per repetition.
    for rep in reps:
        def passed(s):
            return {r["target"]: r for r in data.scenario_runs(scenario, s)
                    if r["rep"] == rep and r["verdict"] == "pass"}
        g, o = passed("greenline"), passed("go")
        common = sorted(set(g) & set(o))
        if common:
            t = common[-1]
            out["common"].append({
                "rep": rep, "rate": t,
                "greenline_cpu": g[t]["figures"]["cpu_ms_per_1000"],
                "go_cpu": o[t]["figures"]["cpu_ms_per_1000"],
                # The kernel's part of each (system calls, the network stack's softirq work).
                "greenline_kernel": g[t]["figures"].get("kernel_ms_per_1000"),
                "go_kernel": o[t]["figures"].get("kernel_ms_per_1000"),
                "greenline_per_second": g[t]["figures"]["per_second"],
                "go_per_second": o[t]["figures"]["per_second"],
                "ratio": ratio(o[t]["figures"]["cpu_ms_per_1000"], g[t]["figures"]["cpu_ms_per_1000"]),
            })
    return out


def idle_summary(data, scenario="idle"):
    rows = {}
    for s in data.servers(scenario):
        rs = data.scenario_runs(scenario, s)
        if not rs:
            rows[s] = {"runs": 0, "failed": data.first_failure(scenario, s) or "not run"}
            continue
        exs = [r["result"].get("extra") or {} for r in rs]
        row = {"runs": len(rs)}
        for k in ("conns_opened", "connect_per_second", "rss_before_bytes", "rss_after_bytes",
                  "rss_per_conn_bytes", "conns_at_slope_from", "rss_slope_bytes_per_conn"):
            row[k] = med([e.get(k) for e in exs])
        slopes = [e.get("rss_slope_bytes_per_conn") for e in exs]
        slopes = [v for v in slopes if v is not None]
        row["slope_spread"] = (min(slopes), max(slopes)) if slopes else None
        row["sample"] = f"{sum(e.get('sample_ok', 0) for e in exs)}/{sum(e.get('sample_checked', 0) for e in exs)}"
        rows[s] = row
    base = rows.get("greenline", {})
    for s, row in rows.items():
        row["ratio_rss_per_conn"] = ratio(row.get("rss_per_conn_bytes"), base.get("rss_per_conn_bytes"))
        row["ratio_slope"] = ratio(row.get("rss_slope_bytes_per_conn"),
                                   base.get("rss_slope_bytes_per_conn"))
    return rows


# --- goals -------------------------------------------------------------------------------------

def goal(text, status, measured):
    return {"goal": text, "status": status, "measured": measured}


def bracket(row):
    """Where a chat ramp puts a server's capacity: "[best pass, first failure)"."""
    hi = "no failure above" if row["upper"] == math.inf else f"{row['upper']:,.0f}"
    return f"[{row['per_second']:,.0f}, {hi})"


MIN_REPS = 5  # the CPU goals are judged on medians of at least this many paired repetitions


def paired_goal(text, rows, mine, peer, limit, per_rep, median_key):
    """A CPU goal judged on the paired ratio: each repetition's `mine` run over `peer`'s run of
    the same repetition (interleaved, minutes apart at most: pairing cancels most of this
    machine's drift of +-10%), the median over the repetitions, with the spread shown. UNPROVEN
    below MIN_REPS pairs."""
    a, b = rows.get(mine, {}), rows.get(peer, {})
    if not a.get("runs") or not b.get("runs"):
        return goal(text, "n/a", "not measured")
    pairs = [ratio(v, b[per_rep].get(rep)) for rep, v in a[per_rep].items()
             if v is not None and b[per_rep].get(rep) is not None]
    pairs = sorted(x for x in pairs if x is not None)
    if not pairs:
        return goal(text, "n/a", "no repetition measured both")
    r = statistics.median(pairs)
    m = (f"{r:.2f}x, median of {len(pairs)} paired repetition{'s' if len(pairs) > 1 else ''} "
         f"(spread {pairs[0]:.2f}-{pairs[-1]:.2f}x; medians {a[median_key]:.2f} vs "
         f"{b[median_key]:.2f} ms per 1,000 lines")
    if median_key == "cpu_ms_per_1000":
        ka, kb = a.get("kernel_ms_per_1000"), b.get("kernel_ms_per_1000")
        ua, ub = a.get("user_ms_per_1000"), b.get("user_ms_per_1000")
        if ka is not None and kb is not None:
            m += f"; of which the kernel's {ka:.2f} vs {kb:.2f}"
        if ua is not None and ub is not None:
            m += f", the process's user space {ua:.2f} vs {ub:.2f}"
    m += ")"
    if len(pairs) < MIN_REPS:
        return goal(text, "UNPROVEN", m + f"; judged on at least {MIN_REPS} repetitions")
    return goal(text, "PASS" if r <= limit else "MISS", m)


def goals(data, echo, chat, idle, idle_chat=None):
    g = []
    e = echo.get("echo-100c", {})
    gl = e.get("greenline", {})
    for peer, limit in (("floor", 1.05), ("go", 0.85)):
        g.append(paired_goal(f"echo 64 B, 100 conns: greenline CPU/line <= {limit:.2f}x {label(peer)}",
                             e, "greenline", peer, limit, "rep_cpu", "cpu_ms_per_1000"))
    g.append(paired_goal(f"echo 64 B, 100 conns: greenline user-space CPU/line <= 0.50x {label('go')}",
                         e, "greenline", "go", 0.50, "rep_user", "user_ms_per_1000"))
    for sc in ("echo-1c", "echo-100c", "echo-1000c"):
        n = sc[len("echo-"):-1]
        g.append(paired_goal(f"echo 64 B, {n} conn{'s' if n != '1' else ''}: greenline on epoll "
                             f"CPU/line <= 1.10x {label('go')}", echo.get(sc, {}),
                             "greenline-epoll", "go", 1.10, "rep_cpu", "cpu_ms_per_1000"))
    text = "echo 64 B, 100 conns, saturated: greenline throughput >= 1.25x Go's"
    p = e.get("go", {})
    if not gl.get("runs") or not p.get("runs"):
        g.append(goal(text, "n/a", "not measured"))
    else:
        r = ratio(gl["per_second"], p["per_second"])
        m = (f"{r:.2f}x ({gl['per_second']:,.0f} vs {p['per_second']:,.0f} lines/s; "
             f"greenline {gl['bound']}-bound, Go {p['bound']}-bound)")
        if gl["bound"] == "server" and p["bound"] == "server":
            g.append(goal(text, "PASS" if r >= 1.25 else "MISS", m))
        elif p["bound"] == "server" and r >= 1.25:
            # greenline's capacity is at least what it did: the goal holds a fortiori.
            g.append(goal(text, "PASS", m + "; greenline's figure is a lower bound"))
        else:
            g.append(goal(text, "UNPROVEN", m + "; not both server-bound, so not both figures "
                          "are capacities: compare CPU per line instead"))
    text = "echo open loop at a rate every server sustains: greenline p99 <= Go's p99"
    o = echo.get("echo-open", {})
    gl_o, go_o = o.get("greenline", {}), o.get("go", {})
    if not gl_o.get("runs") or not go_o.get("runs"):
        g.append(goal(text, "n/a", "not measured"))
    else:
        sustained = all(v == "pass" for v in gl_o["verdicts"] + go_o["verdicts"])
        r = ratio(gl_o["p99"], go_o["p99"])
        m = f"{r:.2f}x ({fmt_us(gl_o['p99'])} vs {fmt_us(go_o['p99'])})"
        if not sustained:
            g.append(goal(text, "UNPROVEN", m + "; a server did not keep the rate"))
        else:
            g.append(goal(text, "PASS" if gl_o["p99"] <= go_o["p99"] else "MISS", m))
    text = "idle: greenline RSS growth per connection <= 0.5x Go's"
    gl_i, go_i = idle.get("greenline", {}), idle.get("go", {})
    if not gl_i.get("runs") or not go_i.get("runs") or not go_i.get("rss_per_conn_bytes"):
        g.append(goal(text, "n/a", "not measured"))
    else:
        r = ratio(gl_i["rss_per_conn_bytes"], go_i["rss_per_conn_bytes"])
        g.append(goal(text, "PASS" if r <= 0.5 else "MISS",
                      f"{r:.2f}x ({gl_i['rss_per_conn_bytes']:,.0f} vs {go_i['rss_per_conn_bytes']:,.0f} "
                      f"bytes per connection, {gl_i['conns_opened']:,.0f} connections)"))
    text = "idle-chat: greenline RSS slope per idle chat user <= 4 KiB (Go's for context)"
    gl_c, go_c = (idle_chat or {}).get("greenline", {}), (idle_chat or {}).get("go", {})
    if not gl_c.get("runs") or gl_c.get("rss_slope_bytes_per_conn") is None:
        g.append(goal(text, "n/a", "not measured"))
    else:
        v = gl_c["rss_slope_bytes_per_conn"]
        lo, hi = gl_c["slope_spread"]
        m = (f"{v:,.0f} bytes per user (median of {gl_c['runs']}, {lo:,.0f}-{hi:,.0f}), "
             f"{gl_c['conns_at_slope_from']:,.0f} to {gl_c['conns_opened']:,.0f} users")
        go_v = go_c.get("rss_slope_bytes_per_conn")
        if go_v:
            m += f"; Go {go_v:,.0f} ({v / go_v:.2f}x)"
        g.append(goal(text, "PASS" if v <= 4096 else "MISS", m))
    for scenario in ("chat-1room", "chat-10rooms"):
        c = chat.get(scenario)
        text = f"{scenario}: sustained zero-loss delivery rate >= 1.5x Go's"
        text2 = f"{scenario}: CPU per delivery <= 0.67x Go's"
        if not c:
            g.append(goal(text, "n/a", "not measured"))
            g.append(goal(text2, "n/a", "not measured"))
            continue
        a, b = c["servers"].get("greenline", {}), c["servers"].get("go", {})
        if not a.get("per_second") or not b.get("per_second"):
            why = "a server passed no step" if a.get("reps") and b.get("reps") else "not measured"
            g.append(goal(text, "n/a", why))
        else:
            # Each capacity is bracketed by the ramp: at least the best pass, under the first
            # failure above it. Decided only where the brackets allow it.
            r = a["per_second"] / b["per_second"]
            m = (f"{r:.2f}x ({a['per_second']:,.0f} vs {b['per_second']:,.0f} deliveries/s; "
                 f"greenline {bracket(a)}, Go {bracket(b)})")
            if a["per_second"] >= 1.5 * b["upper"]:
                st = "PASS"
            elif a["upper"] <= 1.5 * b["per_second"]:
                st = "MISS"
            elif a["upper"] == math.inf or b["upper"] == math.inf:
                st = "UNPROVEN"
                m += "; a ramp ended without a server-bound failure (more --chat-steps)"
            else:
                st = "UNPROVEN"
                m += "; the ramp's steps are too coarse to decide (more --chat-refine)"
            g.append(goal(text, st, m))
        com = c["common"]
        if not com:
            g.append(goal(text2, "n/a", "no rate that both passed"))
        else:
            r = med([1 / x["ratio"] for x in com if x["ratio"]])
            rates = ", ".join(f"{x['rate']:g}" for x in com)
            go_cpu = med([x["go_cpu"] for x in com])
            m = (f"{r:.2f}x at the highest per-user rate both passed ({rates} msg/s per user; "
                 f"{med([x['greenline_cpu'] for x in com]):.3f} vs {go_cpu:.3f} ms per 1,000 "
                 f"deliveries)")
            gk = med([x.get("greenline_kernel") for x in com])
            ok = med([x.get("go_kernel") for x in com])
            if gk is not None and ok is not None:
                m += f"; of which the kernel's: {gk:.3f} vs {ok:.3f} ms"
                budget = 0.67 * go_cpu
                if r is not None and r > 0.67 and gk > 1.05 * budget:
                    # Clearly over (ticks of 10 ms make a few % of noise): trimming greenline's
                    # user-space work alone cannot meet the goal.
                    m += (f"; the goal's budget, {budget:.3f} ms, is below greenline's kernel "
                          f"time alone")
                elif r is not None and r > 0.67 and gk > 0.95 * budget:
                    m += f"; greenline's kernel time alone is about the goal's budget, {budget:.3f} ms"
            g.append(goal(text2, "PASS" if r is not None and r <= 0.67 else "MISS", m))
    return g


# --- charts ------------------------------------------------------------------------------------

def gp_quote(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def charts(plot_dir, out_dir, echo, chat, idle, data, stamp):
    """Writes gnuplot data and scripts into plot_dir and PNGs into out_dir; returns their names.
    `stamp`: two lines (the machine and the date; the command) printed under each chart."""
    # A chart this run does not draw must not survive from an earlier run beside its latest.md.
    for name in CHARTS:
        if os.path.exists(os.path.join(out_dir, name + ".png")):
            os.remove(os.path.join(out_dir, name + ".png"))
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        print("bench: warning: gnuplot not found (apt-get install gnuplot-nox): no charts",
              file=sys.stderr)
        return []
    os.makedirs(plot_dir, exist_ok=True)
    made = []
    head = (f"set terminal pngcairo noenhanced size 1100,620 font 'sans,10'\n"
            f"set label 98 {gp_quote(stamp[0])} at screen 0.01, screen 0.03 font 'sans,7'\n"
            f"set label 99 {gp_quote(stamp[1])} at screen 0.01, screen 0.01 font 'sans,7'\n"
            "set bmargin 5\nset key outside right top\nset grid ytics\n")
    # Only what has figures: a scenario or server whose every run failed has no bar to draw.
    echo_scen = [sc for sc in SCENARIO_ORDER
                 if sc in echo and any(r.get("runs") for r in echo[sc].values())]
    servers = [s for s in SERVER_ORDER if any(echo[sc].get(s, {}).get("runs") for sc in echo_scen)]

    def histogram(name, title, ylabel, key, scale):
        rows = []
        for sc in echo_scen:
            vals = []
            for s in servers:
                v = echo[sc].get(s, {}).get(key)
                vals.append("NaN" if v is None else f"{v * scale:.6g}")
            rows.append(f"{sc} " + " ".join(vals))
        dat = os.path.join(plot_dir, name + ".dat")
        with open(dat, "w") as fh:
            fh.write("\n".join(rows) + "\n")
        cols = ", ".join(f"{gp_quote(dat)} using {i + 2}:xtic(1) title {gp_quote(label(s))}"
                         for i, s in enumerate(servers))
        script = (head + f"set output {gp_quote(os.path.join(out_dir, name + '.png'))}\n"
                  f"set title {gp_quote(title)}\nset ylabel {gp_quote(ylabel)}\n"
                  "set style data histograms\nset style histogram clustered gap 1\n"
                  "set style fill solid 0.8 border -1\nset yrange [0:*]\n"
                  f"plot {cols}\n")
        return script

    scripts = {}
    if echo_scen and servers:
        scripts["echo_throughput"] = histogram(
            "echo_throughput", "Echo throughput (median; one client core: see 'bound' in the tables)",
            "lines/s", "per_second", 1)
        scripts["echo_cpu"] = histogram(
            "echo_cpu", "Server CPU per line (busy time of its pinned CPU)", "CPU us per line",
            "cpu_ms_per_1000", 1)
        lat = [sc for sc in ("echo-100c", "echo-open", "echo-1000c") if sc in echo]
        if lat:
            parts = [head.replace("size 1100,620", f"size 1100,{330 * len(lat) + 40}"),
                     f"set output {gp_quote(os.path.join(out_dir, 'echo_latency.png'))}\n",
                     f"set multiplot layout {len(lat)},1\nset logscale y\n"
                     "set ylabel 'latency (us)'\nset xtics ('p50' 0, 'p90' 1, 'p99' 2, 'p99.9' 3, 'max' 4)\n"
                     "set xrange [-0.2:4.2]\n"]
            for sc in lat:
                dat = os.path.join(plot_dir, f"lat_{sc}.dat")
                with open(dat, "w") as fh:
                    for i, k in enumerate(("p50", "p90", "p99", "p999", "max")):
                        fh.write(f"{i} " + " ".join(
                            (f"{echo[sc][s][k]:.6g}" if echo[sc].get(s, {}).get(k) else "NaN")
                            for s in servers) + "\n")
                cols = ", ".join(f"{gp_quote(dat)} using 1:{i + 2} with linespoints title {gp_quote(label(s))}"
                                 for i, s in enumerate(servers))
                parts.append(f"set title {gp_quote('Latency percentiles: ' + SCENARIO_TITLE[sc])}\n"
                             f"plot {cols}\n")
            parts.append("unset multiplot\n")
            scripts["echo_latency"] = "".join(parts)
    chat_scen = [sc for sc in ("chat-1room", "chat-10rooms") if data.scenario_runs(sc)]
    if chat_scen:
        parts = [head.replace("size 1100,620", f"size 1100,{360 * len(chat_scen) + 40}"),
                 f"set output {gp_quote(os.path.join(out_dir, 'chat_ramp.png'))}\n",
                 f"set multiplot layout {len(chat_scen)},1\nset logscale xy\n"
                 "set xlabel 'deliveries/s'\nset ylabel 'p99 fan-out latency (ms)'\n"]
        for sc in chat_scen:
            plots = []
            for s in SERVER_ORDER:
                steps = sorted(data.scenario_runs(sc, s), key=lambda r: (r["rep"], r["target"] or 0))
                if not steps:
                    continue
                dat = os.path.join(plot_dir, f"chat_{sc}_{s}.dat")
                with open(dat, "w") as fh:
                    last = None
                    for r in steps:
                        if last is not None and r["rep"] != last:
                            fh.write("\n\n")
                        last = r["rep"]
                        f = r["figures"]
                        if f.get("per_second") and f.get("p99"):
                            fh.write(f"{f['per_second']:.6g} {f['p99'] / 1000:.6g}\n")
                plots.append(f"{gp_quote(dat)} using 1:2 with linespoints title {gp_quote(label(s))}")
            limit = data.p99_limit
            plots.append(f"{limit} with lines dashtype 2 lc rgb 'red' title 'p99 limit ({limit:g} ms)'")
            parts.append(f"set title {gp_quote('Chat ramp: ' + sc + ' (each point a step; repetitions apart)')}\n"
                         f"plot {', '.join(plots)}\n")
        parts.append("unset multiplot\n")
        scripts["chat_ramp"] = "".join(parts)
    if any(r.get("rss_per_conn_bytes") is not None for r in idle.values()):
        dat = os.path.join(plot_dir, "idle.dat")
        with open(dat, "w") as fh:
            for s in SERVER_ORDER:
                v = idle.get(s, {}).get("rss_per_conn_bytes")
                if v is not None:
                    fh.write(f"{gp_quote(label(s))} {v:.6g}\n")
        scripts["idle_rss"] = (head + f"set output {gp_quote(os.path.join(out_dir, 'idle_rss.png'))}\n"
                               "set title 'Idle connections: server RSS growth per connection'\n"
                               "set ylabel 'bytes per connection'\nset style data histograms\n"
                               "set style fill solid 0.8 border -1\nset yrange [0:*]\nset boxwidth 0.6\n"
                               f"plot {gp_quote(dat)} using 2:xtic(1) notitle\n")
    for name, script in scripts.items():
        path = os.path.join(plot_dir, name + ".gp")
        with open(path, "w") as fh:
            fh.write(script)
        p = subprocess.run([gnuplot, path], capture_output=True, text=True)
        if p.returncode != 0 or not os.path.exists(os.path.join(out_dir, name + ".png")):
            print(f"bench: warning: gnuplot failed on {name}: {p.stderr.strip()[:500]}", file=sys.stderr)
        else:
            made.append(name + ".png")
    return made


# --- the report --------------------------------------------------------------------------------

def not_run_row(server, row, width):
    return [label(server), 0, f"failed: {row.get('failed')}"] + [""] * (width - 3)


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def echo_section(sc, rows, settings):
    title = SCENARIO_TITLE[sc]
    if sc == "echo-open":
        title += f" ({float(settings['open_rate']):,.0f} lines/s)"
    header = ["server", "runs", "lines/s (min-max)", "bound", "p50", "p90", "p99", "p99.9", "max",
              "server CPU ms / 1,000 lines", "of which kernel", "user space (process)",
              "server CPU", "client CPU",
              "peak RSS MiB",
              "CPU/line vs greenline", "lines/s vs greenline", "p99 vs greenline"]
    body = []
    for s, r in rows.items():
        if not r.get("runs"):
            body.append(not_run_row(s, r, len(header)))
            continue
        note = ""
        if any(v != "pass" for v in r["verdicts"]):
            note = " (" + "; ".join(sorted(set(r["reasons"]))) + ")"
        body.append([
            label(s), r["runs"],
            f"{num(r['per_second'])} ({num(r['per_second_min'])}-{num(r['per_second_max'])}){note}",
            r["bound"], fmt_us(r["p50"]), fmt_us(r["p90"]), fmt_us(r["p99"]), fmt_us(r["p999"]),
            fmt_us(r["max"]), num(r["cpu_ms_per_1000"], 2), num(r["kernel_ms_per_1000"], 2),
            num(r["user_ms_per_1000"], 2) + (f" ({r['user_how']})" if settings.get("user_cpu") == "perf"
                                             and r.get("user_how") not in ("perf", "n/a") else ""),
            pct(r["server_util"]),
            pct(r["client_util"]), num((r["peak_rss"] or 0) / 2**20, 1),
            rx(r["ratio_cpu_ms_per_1000"]), rx(r["ratio_per_second"]), rx(r["ratio_p99"])])
    return f"### {sc}: {title}\n\n" + md_table(header, body) + "\n"


def chat_section(sc, c, data, settings):
    users = int(settings["chat_users"])
    rooms = 1 if sc == "chat-1room" else 10
    out = [f"### {sc}: {users:,} users in {rooms} room{'s' if rooms > 1 else ''}, ramped\n"]
    header = ["server", "reps passed", "sustained zero-loss deliveries/s", "measured",
              "first failure above (deliveries/s)",
              "msg/s per user", "p99",
              "server CPU ms / 1,000 deliveries", "server CPU", "client CPU", "bound",
              "peak RSS MiB", "deliveries/s vs greenline", "CPU/delivery vs greenline"]
    body = []
    for s, r in c["servers"].items():
        if not r.get("per_second"):
            body.append([label(s), f"0/{r.get('reps', 0)}", r.get("failed", "no step passed")]
                        + [""] * (len(header) - 3))
            continue
        lb = ">= " if r.get("lower_bound") else ""
        body.append([label(s), f"{r['passed_reps']}/{r['reps']}", lb + num(r["per_second"]),
                     num(r["measured_per_second"]),
                     "none" if r["upper"] == math.inf else num(r["upper"]), f"{r['rate']:g}", fmt_us(r["p99"]), num(r["cpu_ms_per_1000"], 3),
                     pct(r["server_util"]), pct(r["client_util"]), r["bound"],
                     num((r["peak_rss"] or 0) / 2**20, 1), rx(r["ratio_per_second"]),
                     rx(r["ratio_cpu_ms_per_1000"])])
    out.append(md_table(header, body) + "\n")
    if c["common"]:
        out.append("CPU per delivery at the highest per-user rate both passed, per repetition: " + "; ".join(
            f"rep {x['rep']}: {x['rate']:g} msg/s per user, greenline {x['greenline_cpu']:.3f} vs Go "
            f"{x['go_cpu']:.3f} ms per 1,000 deliveries (Go/greenline {rx(x['ratio'])})"
            + (f", of which the kernel's (system, softirq) {x['greenline_kernel']:.3f} vs "
               f"{x['go_kernel']:.3f} ms" if x.get("greenline_kernel") is not None
               and x.get("go_kernel") is not None else "")
            for x in c["common"]) + ".\n")
    steps = [r for r in data.kept if r["scenario"] == sc]
    steps.sort(key=lambda r: (r["rep"], r["server"], r["step"]))
    header = ["rep", "server", "step", "msg/s per user", "deliveries/s", "lost", "dup", "reord",
              "p50", "p99", "server CPU", "client CPU", "ms / 1,000 deliveries",
              "of which kernel", "verdict"]
    body = []
    for r in steps:
        f = r["figures"] or {}
        ex = (r["result"] or {}).get("extra") or {}
        body.append([r["rep"], r["server"], r["step"], f"{r['target']:g}" if r["target"] else "",
                     num(f.get("per_second")), ex.get("lost", ""), ex.get("duplicated", ""),
                     ex.get("reordered", ""), fmt_us(f.get("p50")), fmt_us(f.get("p99")),
                     pct(f.get("server_util")), pct(f.get("client_util")),
                     num(f.get("cpu_ms_per_1000"), 3), num(f.get("kernel_ms_per_1000"), 3),
                     r["verdict"] + (f": {r['reason']}" if r["reason"] else "")])
    out.append("<details><summary>every step</summary>\n\n" + md_table(header, body) + "\n\n</details>\n")
    return "\n".join(out)


def idle_section(rows, scenario="idle"):
    header = ["server", "runs", "connections", "connects/s", "RSS before MiB", "RSS after MiB",
              "RSS growth per connection", "vs greenline", "sample answered"]
    slope = scenario == "idle-chat"
    if slope:
        header[6:8] = ["RSS growth per connection", "slope per connection (spread)", "vs greenline"]
    body = []
    for s, r in rows.items():
        if not r.get("runs"):
            body.append(not_run_row(s, r, len(header)))
            continue
        row = [label(s), r["runs"], num(r["conns_opened"]), num(r["connect_per_second"]),
               num((r["rss_before_bytes"] or 0) / 2**20, 1),
               num((r["rss_after_bytes"] or 0) / 2**20, 1),
               num(r["rss_per_conn_bytes"], 0, " B"), rx(r["ratio_rss_per_conn"]), r["sample"]]
        if slope:
            spread = r.get("slope_spread")
            row[7:8] = [num(r["rss_slope_bytes_per_conn"], 0, " B")
                        + (f" ({spread[0]:,.0f}-{spread[1]:,.0f})" if spread else ""),
                        rx(r["ratio_slope"])]
        body.append(row)
    return f"### {scenario}: {SCENARIO_TITLE[scenario]}\n\n" + md_table(header, body) + "\n"


def sanity(data):
    """Problems that mean the bench's output cannot be trusted (CI checks these)."""
    bad = []
    if not data.kept:
        bad.append("no run was recorded")
    for r in data.ok:
        f = r["figures"] or {}
        mode = (r["result"] or {}).get("mode")
        where = f"{r['scenario']} {r['server']} rep {r['rep']} step {r['step']}"
        if mode in ("echo", "chat"):
            if not f.get("per_second") or f["per_second"] <= 0:
                bad.append(f"{where}: no throughput")
            if f.get("p50") is None or f.get("p99") is None or f["p50"] > f["p99"]:
                bad.append(f"{where}: latency percentiles missing or out of order")
            if f.get("server_util") is None or not 0 <= f["server_util"] <= 1.05:
                bad.append(f"{where}: server CPU utilization missing or out of range")
            if f.get("cpu_ms_per_1000") is None or f["cpu_ms_per_1000"] <= 0:
                bad.append(f"{where}: no server CPU per unit")
            u = f.get("user_ms_per_1000")
            if u is None:
                bad.append(f"{where}: no user-space CPU of the server process")
            elif f.get("cpu_ms_per_1000") and u > 1.1 * f["cpu_ms_per_1000"] + 0.05:
                # The process's user time is a part of what its CPU did (a tick's slack).
                bad.append(f"{where}: the process's user-space CPU exceeds its CPU's busy time")
        if mode == "idle" and not (r["result"].get("extra") or {}).get("conns_opened"):
            bad.append(f"{where}: no connection opened")
    return bad


def cmd_report(a):
    runs = []
    settings = dict(kv.split("=", 1) for kv in a.setting)
    machine = dict(kv.split("=", 1) for kv in a.machine)
    with open(a.index) as fh:
        text = fh.read()
    if text.startswith("{\n"):
        # A latest.json: the report drawn again from its runs (after a change to this file).
        doc = json.loads(text)
        runs, settings, machine = doc["runs"], {**doc["settings"], **settings}, {**doc["machine"], **machine}
        a.command, a.build_how, a.elapsed = doc["command"], doc["build"], str(doc["elapsed_seconds"])
        a.quick = "1" if doc["quick"] else "0"
        when = doc["date"]
    else:
        when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        runs = [json.loads(line) for line in text.splitlines() if line.strip()]
    data = Data(runs)
    data.p99_limit = float(settings.get("p99_limit_ms", 50))
    present = {r["scenario"] for r in data.kept}
    echo = {sc: echo_summary(data, sc) for sc in SCENARIO_ORDER if sc.startswith("echo-") and sc in present}
    chat = {sc: chat_summary(data, sc) for sc in ("chat-1room", "chat-10rooms") if sc in present}
    idle = idle_summary(data) if "idle" in present else {}
    idle_chat = idle_summary(data, "idle-chat") if "idle-chat" in present else {}
    gls = goals(data, echo, chat, idle, idle_chat)
    hyper = f" ({machine['hypervisor']} guest)" if machine.get("hypervisor") else ""
    stamp = (f"{machine.get('model')}, {machine.get('cpus')} CPUs{hyper}; kernel {machine.get('kernel')}; "
             f"{machine.get('compiler')}; commit {machine.get('commit')}; {when}", a.command)
    os.makedirs(a.out, exist_ok=True)
    pngs = charts(os.path.join(a.work, "plots"), a.out, echo, chat, idle, data, stamp)

    md = [f"# greenline side by side: `loadtest/bench` results\n"]
    if a.quick == "1":
        md.append("**Quick mode** (`--quick`): one repetition of short windows, a smoke test of the "
                  "bench itself. These numbers are not a record.\n")
    md.append(f"Machine: {machine.get('model')}, {machine.get('cpus')} CPUs{hyper}; kernel "
              f"{machine.get('kernel')}; {machine.get('compiler')}; liburing {machine.get('liburing')}; "
              f"{machine.get('go') or 'go: not found'}; commit {machine.get('commit')}; {when}.\n")
    md.append(f"Command: `{a.command}` ({a.elapsed} s of runs). Build: `{a.build_how}`.\n")
    md.append(
        f"Each server runs pinned to cpu{settings['server_cpu']} (`taskset`) with one worker thread "
        f"(greenline `--workers 1`, Go `GOMAXPROCS=1`, Asio `--threads 1`); greenline-load runs "
        f"pinned to cpu{settings['client_cpu']} with `--threads 1` and the same settings for every "
        f"server. Server CPU = busy time of cpu{settings['server_cpu']} in /proc/stat (user + nice + "
        f"system + irq + softirq) over the measured window, sampled by the client at the window's "
        f"edges; **of which kernel** = its system + irq + softirq part (system calls and the "
        f"network stack, on loopback the receiving side's TCP work too: mostly the sends "
        f"themselves, plus the server's own polls and wake-ups); **user space (process)** = the "
        f"server process's own code, none of the kernel's: "
        + ("its share of user-space samples (perf record -e cpu-clock over the window, less the "
           "samples on the instruction after a system call, which are the kernel's time) times its "
           "process CPU over the window"
           if settings.get("user_cpu") == "perf" else
           "its utime in /proc/PID/stat over the window (tick-sampled: kernel time whose tick lands "
           "on the return from a system call counts as user time)")
        + f"; client CPU = the client's own getrusage. **bound**: `server` = server CPU >= 95% and "
        f"client CPU < 95% (the throughput is the server's capacity); `client` = the client's core "
        f"was the limit (compare CPU per line, not lines/s); `neither` = a load below both. "
        f"Figures are medians over {settings['reps']} repetition(s), servers interleaved and their "
        f"order rotated each repetition; ratios are peer / greenline (io_uring) of the medians. "
        f"Echo windows {settings['duration']} s after {settings['warmup']} s warmup; chat steps "
        f"{settings['chat_duration']} s after {settings['chat_warmup']} s. Runs whose server CPU did "
        f"work beyond the server process's own for more than {settings['max_foreign']}% of the "
        f"window were repeated (up to {settings['tries']} tries).\n")
    disturbed = [r for r in data.ok if r.get("disturbed")]
    if disturbed:
        md.append(f"**Warning: {len(disturbed)} of {len(data.ok)} runs kept had foreign work on "
                  f"the server's CPU for more than {settings['max_foreign']}% of the window** (another tenant "
                  "ran there; every try was disturbed): their CPU figures are not the server's "
                  "alone, and their throughput is not its capacity. See 'foreign' under Every run.\n")
    md.append("## Goals\n")
    md.append("Echo CPU goals are judged on the paired ratio (each repetition's greenline run over "
              "the peer's run of the same repetition, median, with the spread of the pairs), which "
              "cancels most of this machine's drift; the tables show ratios of medians. UNPROVEN: "
              f"the run could not decide it (fewer than {MIN_REPS} repetitions for a CPU goal, or "
              "one client core was the limit); n/a: not measured in this run.\n")
    md.append(md_table(["goal", "measured", "status"],
                       [[x["goal"], x["measured"], f"**{x['status']}**"] for x in gls]) + "\n")
    if echo:
        md.append("## Echo\n")
        if "echo-open" in echo:
            md.append(f"The open-loop rate is fixed at {float(settings['open_rate']):,.0f} lines/s over "
                      "100 connections (a rate chosen well under every server's closed-loop throughput "
                      "here, so all of them keep it; a run that does not is marked), latency measured "
                      "from each line's intended send time.\n")
        for sc, rows in echo.items():
            md.append(echo_section(sc, rows, settings))
    if chat:
        md.append("## Chat\n")
        md.append(
            f"{int(settings['chat_users']):,} users; each step runs a fresh server and a fixed per-user "
            f"message rate; it passes when nothing is lost, duplicated or reordered, no error, p99 "
            f"fan-out latency < {data.p99_limit:g} ms, and the deliveries/s reached the target (within 5%, or "
            f"three standard deviations of the randomly phased sends when few are due). The rate "
            f"starts at {float(settings['chat_start']):,.0f} deliveries/s and is multiplied by "
            f"{settings['chat_factor']} until a step fails, then bisected {settings['chat_refine']} "
            f"time(s). greenline runs `--chat-rate 0` (no flood control) `--out-queue 1MiB`; go-chat "
            f"`--out-queue {settings['go_chat_queue']}` messages. The capacity lies between the sustained rate and "
            f"the first failing step above it; `>=` marks a lower bound only (no step above failed, "
            f"or the one that did was client-bound). The 1.5x goal is PASS when greenline's "
            f"sustained rate is 1.5x Go's first failure, MISS when greenline's first failure is "
            f"at most 1.5x Go's sustained rate, UNPROVEN in between.\n")
        for sc, c in chat.items():
            md.append(chat_section(sc, c, data, settings))
    if idle:
        md.append("## Idle\n")
        md.append(f"{int(settings['idle_conns']):,} connections held {settings['idle_hold']} s; RSS "
                  "growth per connection = (server RSS after the last connect - before the first) / "
                  "connections.\n")
        md.append(idle_section(idle))
    if idle_chat:
        md.append("## Idle chat\n")
        md.append(f"{int(settings['idle_chat_conns']):,} chat users, each read its welcome, joined a "
                  "room of 100 and drained what it was sent; the slope is the RSS growth per user "
                  "from a third of them to all, measured once the join traffic was over, so what "
                  "the allocator keeps after the first join storm does not count.\n")
        md.append(idle_section(idle_chat, "idle-chat"))
    if pngs:
        md.append("## Charts\n")
        md.append("\n".join(f"![{p}]({p})" for p in pngs) + "\n")
    if data.failed:
        md.append("## Failed runs\n")
        md.append(md_table(["scenario", "server", "rep", "step", "why"],
                           [[r["scenario"], r["server"], r["rep"], r["step"], r["reason"]]
                            for r in data.failed]) + "\n")
    md.append("## Every run\n")
    md.append("Including the runs thrown away as disturbed (kept = no). latest.json has each run's "
              "whole client report and both command lines.\n")
    body = []
    for r in data.all:
        f = r["figures"] or {}
        body.append([r["scenario"], r["server"], r["rep"], r["step"], f"{r['target']:g}" if r["target"] else "",
                     "yes" if r["kept"] else "no", num(f.get("per_second")), fmt_us(f.get("p99")),
                     pct(f.get("server_util")), pct(f.get("client_util")), num(f.get("cpu_ms_per_1000"), 3),
                     num(f.get("foreign_pct"), 1, "%"), r["quiet"],
                     r["verdict"] + (f": {r['reason']}" if r["reason"] else "")])
    md.append(md_table(["scenario", "server", "rep", "step", "target", "kept", "per s", "p99",
                        "server CPU", "client CPU", "ms / 1,000", "foreign", "idle CPUs before",
                        "verdict"], body) + "\n")
    text = "\n".join(md)
    with open(os.path.join(a.out, "latest.md"), "w") as fh:
        fh.write(text)
    bad = sanity(data)
    doc = {
        "tool": "loadtest/bench", "date": when, "command": a.command, "build": a.build_how,
        "quick": a.quick == "1", "elapsed_seconds": int(a.elapsed), "machine": machine,
        "settings": settings, "goals": gls,
        "summary": {"echo": echo, "chat": {k: v for k, v in chat.items()}, "idle": idle,
                    "idle-chat": idle_chat},
        "sanity_problems": bad, "charts": pngs, "runs": runs,
    }
    with open(os.path.join(a.out, "latest.json"), "w") as fh:
        json.dump(doc, fh, indent=1, default=str)
    # The summary on stdout: everything before the per-step details.
    print(text.split("## Every run")[0].rstrip())
    if bad:
        print("bench: the output is not sane:\n  " + "\n  ".join(bad), file=sys.stderr)
        return 1
    if a.strict == "1" and any(x["status"] == "MISS" for x in gls):
        print("bench: a goal was missed (--strict)", file=sys.stderr)
        return 1
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("record")
    r.add_argument("--index", required=True)
    r.add_argument("--json", default="")
    r.add_argument("--rc", type=int, default=0)
    r.add_argument("--scenario", required=True)
    r.add_argument("--server", required=True)
    r.add_argument("--rep", type=int, default=1)
    r.add_argument("--step", type=int, default=0)
    r.add_argument("--target", type=lambda s: float(s) if s else None, default=None)
    r.add_argument("--try", dest="try_", type=int, default=1)
    r.add_argument("--tries", type=int, default=1)
    r.add_argument("--max-foreign", type=float, default=10)
    r.add_argument("--p99-limit-ms", type=float, default=50)
    r.add_argument("--quiet", default="")
    r.add_argument("--server-died", type=int, default=0)
    r.add_argument("--why", default="")
    r.add_argument("--perf-data", default="",
                   help="perf record's samples of the server over the window (the user-space split)")
    r.add_argument("--server-cmd", default="")
    r.add_argument("--client-cmd", default="")
    p = sub.add_parser("report")
    p.add_argument("--index", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--strict", default="0")
    p.add_argument("--quick", default="0")
    p.add_argument("--command", default="")
    p.add_argument("--build-how", default="")
    p.add_argument("--elapsed", default="0")
    p.add_argument("--setting", action="append", default=[])
    p.add_argument("--machine", action="append", default=[])
    a = ap.parse_args()
    if a.cmd == "record":
        cmd_record(a)
        return 0
    return cmd_report(a)


if __name__ == "__main__":
    sys.exit(main())
