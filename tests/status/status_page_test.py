#!/usr/bin/env python3
"""The status page in a real headless browser (Debian's chromium, driven over the DevTools protocol).

Starts greenline, opens http://127.0.0.1:HTTP/ in chromium, and checks that the page goes live: it
generates echo and chat traffic in rooms of known sizes and a recovered panic, waits until the page
shows deliveries per second, stops the traffic (the connections stay open), waits for the page to
catch up, and then checks the numbers the page shows against /metrics: connections per service,
rooms and their member counts, panics recovered, rates back at zero, goroutines. It fails on any
script error or Content-Security-Policy violation on the page, and saves a screenshot (the second
argument). (Who may see the page, loopback peers and local Host names, is StatusRoutesTest's, in
tests/server/status_test.cc.)

  status_page_test.py GREENLINE_BINARY SCREENSHOT.png

Exit 77 (ctest's skip) when no browser or no websocket module is there, except under CI=true,
where that is a failure: install them with deploy/install-deps.sh test (chromium,
python3-websocket).
"""

import base64
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

SKIP = 77
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def skip_or_fail(why):
    if IN_CI:
        print(f"FAIL: {why} (CI=true: a missing browser is a failure; "
              "deploy/install-deps.sh test installs it)")
        sys.exit(1)
    print(f"SKIP: {why}")
    sys.exit(SKIP)


try:
    import websocket  # python3-websocket
except ImportError:
    skip_or_fail("no python3 websocket module (apt-get install python3-websocket)")


def find_browser():
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        path = shutil.which(name)
        if path:
            return path
    return None


def serving_ports(server, log):
    """The echo, chat and HTTP ports from the server's "serving echo on ..." log line."""
    deadline = time.time() + 20
    while time.time() < deadline and server.poll() is None:
        text = b"".join(log).decode(errors="replace")
        m = re.search(r"serving echo on [\d.]+:(\d+), chat on [\d.]+:(\d+), http on [\d.]+:(\d+)",
                      text)
        if m:
            return tuple(int(p) for p in m.groups())
        time.sleep(0.05)
    raise AssertionError("the server did not come up: " + b"".join(log).decode(errors="replace"))


def http_get(port, path, timeout=5):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
        return r.status, r.read().decode()


def metric(text, name, labels=""):
    """The value of `name{labels}` in a Prometheus text page (labels as rendered), or None."""
    want = name + ("{" + labels + "}" if labels else "")
    for line in text.splitlines():
        if line.startswith(want + " "):
            return float(line.split()[-1])
    return None


def metric_sum(text, name):
    return sum(float(l.split()[-1]) for l in text.splitlines() if l.startswith(name + "{"))


class LineClient:
    """A line-protocol client: send lines, read lines (CRLF or LF)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def read_line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode(errors="replace")

    def read_until(self, pred):
        while True:
            line = self.read_line()
            if line is None or pred(line):
                return line

    def close(self):
        self.sock.close()


class Browser:
    """Headless chromium with one page, spoken to over the DevTools protocol's websocket."""

    def __init__(self, path, width=1400, height=1500):
        self.profile = tempfile.mkdtemp(prefix="greenline-chromium-")
        args = [path, "--headless=new", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-background-networking",
                "--remote-debugging-port=0", "--remote-allow-origins=*",
                f"--user-data-dir={self.profile}", f"--window-size={width},{height}",
                "about:blank"]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     start_new_session=True)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        deadline = time.time() + 30
        while not os.path.exists(port_file) or os.path.getsize(port_file) == 0:
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")[-2000:]
                raise RuntimeError(f"chromium exited with {self.proc.returncode}: {err}")
            if time.time() > deadline:
                raise RuntimeError("chromium did not open its DevTools port in 30 s")
            time.sleep(0.1)
        time.sleep(0.1)
        with open(port_file) as f:
            devtools_port = int(f.readline())
        targets = json.loads(urllib.request.urlopen(
            f"http://127.0.0.1:{devtools_port}/json/list", timeout=10).read())
        page = next(t for t in targets if t["type"] == "page")
        self.ws = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30,
                                              suppress_origin=True)
        self.next_id = 0
        self.errors = []  # script exceptions and console errors (CSP violations are these)
        self.call("Runtime.enable")
        self.call("Log.enable")
        self.call("Page.enable")

    def _event(self, msg):
        method = msg.get("method")
        if method == "Runtime.exceptionThrown":
            d = msg["params"]["exceptionDetails"]
            self.errors.append(d.get("exception", {}).get("description") or d.get("text"))
        elif method == "Log.entryAdded" and msg["params"]["entry"]["level"] == "error":
            self.errors.append(msg["params"]["entry"]["text"])
        elif method == "Runtime.consoleAPICalled" and msg["params"]["type"] == "error":
            self.errors.append(" ".join(str(a.get("value")) for a in msg["params"]["args"]))

    def call(self, method, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self.next_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            self._event(msg)

    def eval(self, expression):
        r = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluating {expression!r}: {r['exceptionDetails']}")
        return r["result"].get("value")

    def wait_for(self, expression, timeout, what):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.eval(expression):
                return
            time.sleep(0.2)
        raise AssertionError(f"the page never showed {what} in {timeout} s")

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        shutil.rmtree(self.profile, ignore_errors=True)


# The page's numbers as text ("1,234" or "12.5"), read as numbers.
PAGE_NUMBERS = """(() => {
  const n = (id) => Number(document.getElementById(id).textContent.replace(/,/g, ''));
  const rooms = {};
  for (const tr of document.querySelectorAll('#rooms tr')) {
    const name = tr.querySelector('td.name');
    if (name.children.length !== 0) throw new Error('a room name was rendered as markup');
    rooms[name.textContent] = Number(tr.querySelector('td.members').textContent.replace(/,/g, ''));
  }
  return {
    samples: Number(document.body.dataset.samples || 0),
    live: n('g-live'), running: n('g-running'), blocking: n('g-blocking'),
    echo: n('conn-echo'), chat: n('conn-chat'), http: n('conn-http'),
    rate_echo: n('rate-echo'), rate_chat_in: n('rate-chat-in'), rate_chat_out: n('rate-chat-out'),
    panics: n('panics'), rooms_total: n('rooms-total'), rooms: rooms,
    workers: n('workers'), poller: document.getElementById('poller').textContent,
    live_text: document.getElementById('live').textContent,
    goroutine_sets: Chart.getChart('chart-goroutines').data.datasets.map((d) => d.label),
  };
})()"""


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    binary, screenshot = sys.argv[1], sys.argv[2]
    browser_path = find_browser()
    if browser_path is None:
        skip_or_fail("no chromium (apt-get install chromium)")

    # Ports the kernel picks, read back from the server's log: no race with other tests.
    server = subprocess.Popen(
        [binary, "--echo-addr=127.0.0.1:0", "--chat-addr=127.0.0.1:0", "--http-addr=127.0.0.1:0",
         "--enable-debug-commands", "--workers=2"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    log = []
    threading.Thread(target=lambda: log.extend(server.stdout), daemon=True).start()
    browser = None
    clients = []
    failed = False
    try:
        echo_port, chat_port, http_port = serving_ports(server, log)

        browser = Browser(browser_path)
        browser.call("Page.navigate", url=f"http://127.0.0.1:{http_port}/")
        browser.wait_for("document.body && Number(document.body.dataset.samples || 0) >= 1", 20,
                         "its first sample")

        # Chat: rooms of known sizes. #lobby keeps whoever does not move.
        sizes = {"#go": 4, "#rust": 2}
        users = []
        for room, n in sizes.items():
            for _ in range(n):
                c = LineClient(chat_port)
                c.read_until(lambda l: l.startswith("* welcome"))
                c.send(f"/join {room}")
                c.read_until(lambda l, r=room: l.startswith("* you joined " + r) or
                             l.startswith("* joined " + r) or r in l)
                users.append((room, c))
                clients.append(c)
        lobby = LineClient(chat_port)
        lobby.read_until(lambda l: l.startswith("* welcome"))
        clients.append(lobby)
        # A panic, recovered by its connection's cleanup: that one closes, nothing else notices.
        victim = LineClient(echo_port)
        victim.send("/debug panic")
        victim.read_until(lambda l: False)  # until the server closes it
        victim.close()
        echoers = [LineClient(echo_port) for _ in range(3)]
        clients.extend(echoers)

        # Traffic until the page has shown deliveries per second (it polls once a second).
        stop = threading.Event()
        errors = []

        def talk(room, c, k):
            try:
                i = 0
                while not stop.is_set():
                    c.send(f"hello {k} {i}")
                    i += 1
                    time.sleep(0.02)
            except OSError as e:
                errors.append(f"{room} talker: {e}")

        def drain(c):
            try:
                c.sock.settimeout(None)
                while c.sock.recv(65536):
                    pass
            except OSError:
                pass

        def echo(c):
            try:
                i = 0
                while not stop.is_set():
                    c.send(f"line {i}")
                    if c.read_line() != f"line {i}":
                        errors.append("an echo line came back wrong")
                        return
                    i += 1
                    time.sleep(0.005)
            except OSError as e:
                errors.append(f"echo: {e}")

        threads = []
        for k, (room, c) in enumerate(users):
            threading.Thread(target=drain, args=(c,), daemon=True).start()
            threads.append(threading.Thread(target=talk, args=(room, c, k)))
        threading.Thread(target=drain, args=(lobby,), daemon=True).start()
        threads += [threading.Thread(target=echo, args=(c,)) for c in echoers]
        for t in threads:
            t.start()
        try:
            browser.wait_for(
                "Number(document.getElementById('rate-chat-out').textContent.replace(/,/g,'')) > 0"
                " && Number(document.getElementById('rate-echo').textContent.replace(/,/g,'')) > 0",
                30, "chat deliveries and echo lines per second")
        finally:
            stop.set()
            for t in threads:
                t.join()
        assert not errors, errors

        # Quiet now (connections still open): two sample periods later the page shows the end.
        time.sleep(2.5)
        seq = browser.eval("Number(document.body.dataset.seq)")
        browser.wait_for(f"Number(document.body.dataset.seq) >= {seq + 1}", 10, "a new sample")
        page = browser.eval(PAGE_NUMBERS)
        _, metrics = http_get(http_port, "/metrics")
        print("page:", json.dumps(page))

        def check(cond, what):
            nonlocal failed
            if not cond:
                failed = True
                print("FAIL:", what)

        m = lambda name, labels="": metric(metrics, name, labels)
        check(page["live_text"] == "live", f"the page says {page['live_text']!r}, not 'live'")
        echo_active = m("greenline_connections_active", 'service="echo"')
        check(page["echo"] == echo_active == 3,
              f"echo connections: page {page['echo']}, /metrics {echo_active}, want 3")
        want_chat = sum(sizes.values()) + 1
        chat_active = m("greenline_connections_active", 'service="chat"')
        check(page["chat"] == chat_active == want_chat,
              f"chat connections: page {page['chat']}, /metrics {chat_active}, want {want_chat}")
        panics = metric_sum(metrics, "greenline_panics_recovered_total")
        check(page["panics"] == panics == 1,
              f"panics recovered: page {page['panics']}, /metrics {panics}, want 1")
        rooms = m("greenline_chat_rooms")
        check(page["rooms_total"] == rooms == 3,
              f"rooms: page {page['rooms_total']}, /metrics {rooms}, want 3")
        check(page["rooms"] == {"#go": 4, "#rust": 2, "#lobby": 1},
              f"room members on the page: {page['rooms']}")
        check(page["rate_echo"] == 0 and page["rate_chat_in"] == 0 and page["rate_chat_out"] == 0,
              "rates not back at zero once traffic stopped")
        check(page["workers"] == m("greenline_workers") == 2, "workers")
        poller_labels = 'kind="' + page["poller"] + '"'
        check(m("greenline_poller_info", poller_labels) == 1,
              f"poller {page['poller']!r} is not what /metrics says")
        # Goroutines move between the page's sample and the scrape only by the HTTP connections
        # (this scrape's, the page's own) and the sampler itself: a few.
        live = m("greenline_goroutines", 'state="running"') + \
            m("greenline_goroutines", 'state="blocking"')
        check(abs(page["live"] - live) <= 4 and page["live"] == page["running"] + page["blocking"],
              f"goroutines: page {page['live']} = {page['running']} running + "
              f"{page['blocking']} blocking; /metrics {live}")
        # 10 chat connections' readers hibernate in IO wait; their writers wait for output.
        check("IO wait" in page["goroutine_sets"] and
              "sync.Notifier.Wait (blocking)" in page["goroutine_sets"],
              f"the goroutine chart's series: {page['goroutine_sets']}")
        check(not browser.errors, f"errors on the page: {browser.errors}")

        shot = browser.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        with open(screenshot, "wb") as f:
            f.write(png)
        check(png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20000,
              f"the screenshot is not a page ({len(png)} bytes)")
        print(f"screenshot: {screenshot} ({len(png)} bytes)")
    finally:
        for c in clients:
            c.close()
        if browser is not None:
            browser.close()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                rc = server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()
                rc = server.wait()
            if rc != 0:
                print(f"FAIL: the server exited with {rc} after SIGTERM")
                failed = True
    if failed:
        print("".join(l.decode(errors="replace") for l in log[-40:]))
        return 1
    print("OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
