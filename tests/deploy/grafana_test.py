#!/usr/bin/env python3
"""deploy/grafana/greenline.json queries only what greenline exports.

Starts the real server, reads its /metrics, and checks every query of the dashboard: each metric
it names is a family /metrics has (with samples, or HELP and TYPE for one that has none yet), each
label it matches or groups by is a label of those metrics (`instance` and `job` are Prometheus's),
and each label value it matches exactly exists. Also that the panels' ids are unique and each has
a query.

  grafana_test.py GREENLINE_BINARY DASHBOARD.json
"""

import json
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request

PROMETHEUS_LABELS = {"instance", "job"}
PROMQL_WORDS = {"sum", "by", "rate", "increase", "ignoring", "on", "without", "avg", "max", "min",
                "count", "label_values"}


def scrape(binary):
    """{family: {label: set(values)}} from a fresh server's /metrics."""
    server = subprocess.Popen([binary, "--echo-addr=127.0.0.1:0", "--chat-addr=127.0.0.1:0",
                               "--http-addr=127.0.0.1:0"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.time() + 20
        for raw in server.stdout:  # the port the kernel picked, from the log
            m = re.search(rb"http on [\d.]+:(\d+)", raw)
            if m:
                port = int(m.group(1))
                break
        else:
            raise SystemExit("FAIL: the server did not start")
        threading.Thread(target=lambda: server.stdout.read(), daemon=True).start()
        while True:
            try:
                text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                              timeout=2).read().decode()
                break
            except OSError:
                if server.poll() is not None or time.time() > deadline:
                    raise SystemExit("FAIL: the server did not answer /metrics")
                time.sleep(0.05)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=15)
    families = {}
    for line in text.splitlines():
        m = re.match(r"# TYPE (\w+) ", line)
        if m:
            families.setdefault(m.group(1), {})
            continue
        m = re.match(r"(\w+)(?:\{(.*)\})? ", line)
        if m and not line.startswith("#"):
            labels = families.setdefault(m.group(1), {})
            for k, v in re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2) or ""):
                labels.setdefault(k, set()).add(v)
    return families


def main():
    binary, dashboard_path = sys.argv[1], sys.argv[2]
    with open(dashboard_path) as f:
        dashboard = json.load(f)
    families = scrape(binary)
    failures = []
    panels = []  # rows hold panels of their own
    for p in dashboard["panels"]:
        panels.append(p)
        panels += p.get("panels", [])
    dashboard["panels"] = [p for p in panels if p.get("type") != "row"]
    ids = [p["id"] for p in panels]
    if len(ids) != len(set(ids)):
        failures.append(f"panel ids repeat: {ids}")
    exprs = []
    for p in dashboard["panels"]:
        if not p.get("targets"):
            failures.append(f"panel {p['title']!r} has no query")
        exprs += [(p["title"], t["expr"]) for t in p.get("targets", [])]
    for v in dashboard["templating"]["list"]:
        if v["type"] == "query":
            exprs.append((f"variable {v['name']}", v["definition"]))
    checked = set()
    for title, expr in exprs:
        names = [n for n in re.findall(r"\b((?:greenline|process)_\w+)", expr)]
        if not names:
            failures.append(f"{title}: {expr!r} names no greenline metric")
        labels_here = set()
        for name in names:
            checked.add(name)
            if name not in families:
                failures.append(f"{title}: {name} is not in /metrics")
                continue
            labels_here |= set(families[name])
        # name{label="value", label=~"re"}: labels that exist, exact values that exist.
        for name, matchers in re.findall(r"\b((?:greenline|process)_\w+)\{([^}]*)\}", expr):
            for label, op, value in re.findall(r'(\w+)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"',
                                               matchers):
                if label in PROMETHEUS_LABELS:
                    continue
                known = families.get(name, {}).get(label)
                if known is None:
                    failures.append(f"{title}: {name} has no label {label}")
                elif op == "=" and value not in known:
                    failures.append(f"{title}: {name}{{{label}}} is never {value!r} "
                                    f"(it is one of {sorted(known)})")
                elif op == "=~":
                    regex = value.replace("\\\\", "\\")
                    for alt in re.findall(r"[^|]+", regex):
                        plain = alt.replace("\\", "")
                        if plain not in known:
                            failures.append(f"{title}: {name}{{{label}=~}} names {plain!r}, "
                                            f"not one of {sorted(known)}")
        for group in re.findall(r"\bby\s*\(([^)]*)\)", expr):
            for label in (l.strip() for l in group.split(",")):
                if label and label not in labels_here and label not in PROMETHEUS_LABELS:
                    failures.append(f"{title}: groups by {label}, which {names} do not have")
    print(f"{len(exprs)} queries over {len(checked)} metrics: {', '.join(sorted(checked))}")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
