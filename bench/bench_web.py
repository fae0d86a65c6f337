"""Web dashboard benchmark (issue 14): event-to-screen delay in a real browser, plugin CPU.

circusd runs 100 watchers x 5 processes (``sleep``) plus a churn watcher whose short-lived
processes (``sleep 0.05``, ``min_uptime = 0`` so no crash-loop backoff holds them) make a
``reap`` and a ``spawn`` per exit, and the web plugin. A loaded 2-core machine forks about
300 processes/s, so ``set`` commands on the steady watchers (five ``updated`` events each, paced
by a thread with its own client) bring the total to about 1,000 events/s. Debian's headless
Chromium shows the page (tests' ``web_browser.Browser``). During the window:

* **event-to-screen**: the page records, for every event it receives, the delay from the event's
  ``time`` (taken by circusd) to the animation frame that painted it (``window.circusLatency``);
  p50/p95/p99 over the window, and how many of the published events reached the page;
* **plugin CPU**: the plugin process's user+system CPU time over the window, as % of one core;
* **a command under churn**: ``+1`` pressed on one watcher until the page shows 6 processes.

A second scenario measures the dashboard at the full 1,000 events/s that circusd cannot produce
on a loaded 2-core machine (its forks and the benchmark share the cores): the same page and
plugin (run by hand with ``circus-plugin web``, commands to the real circusd), whose event
subscription is fed by a local PUB publishing ``reap``/``spawn`` pairs of the steady watchers in
circusd's format (``boot``, ``seq``) at exactly that rate. The refreshes from circusd then
correct the made-up pids, as they would correct missed events.

No ratio against 0.19: its dashboard (circus-web) does not run on Python 3 at all.

Usage: ``.venv/bin/python bench/bench_web.py [--quick] [--write]``; ``--quick`` (CI smoke run)
uses 10 watchers and a 3 s window, and its figures mean nothing. ``--write`` puts the table in
docs/web.md.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import psutil
import zmq
from harness import ROOT, Recorder, machine_line, percentile, running, table, write_section

sys.path.insert(0, str(ROOT / "plugins" / "web" / "tests"))

from support import kill_tree
from web_browser import Browser, Dashboard

from circus.client import CircusClient
from circus.testing import CircusdProcess, free_port, wait_until

DOC = ROOT / "docs" / "web.md"


def config(watchers: int, churners: int) -> str:
    steady = "".join(f"[watcher:w{i:03d}]\ncmd = sleep 3600\nnumprocesses = 5\n\n"
                     for i in range(watchers))
    churn = (f"[watcher:churn]\ncmd = sleep 0.05\nnumprocesses = {churners}\nmin_uptime = 0\n"
             "autostart = false\n\n")
    return steady + churn


class Setter(threading.Thread):
    """``set`` on the steady watchers, paced to ``rate`` ``updated`` events/s (5 per call)."""

    OPTIONS = {"graceful_timeout": 30, "warmup_delay": 0, "send_hup": False,
               "stop_children": False, "max_retry": 5}

    def __init__(self, endpoint: str, watchers: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.watchers = endpoint, watchers
        self.interval = len(self.OPTIONS) / rate if rate > 0 else 0.0
        self.halt = threading.Event()

    def run(self) -> None:
        if not self.interval:
            return
        with CircusClient(self.endpoint, 30) as client:
            due, index = time.monotonic(), 0
            while not self.halt.is_set():
                client.call("set", name=f"w{index % self.watchers:03d}", options=self.OPTIONS)
                index += 1
                due += self.interval
                self.halt.wait(max(due - time.monotonic(), 0.0))


class Feeder(threading.Thread):
    """A PUB on ``endpoint`` publishing ``reap``/``spawn`` pairs at ``rate`` events/s."""

    def __init__(self, endpoint: str, watchers: int, rate: float) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.watchers, self.rate = endpoint, watchers, rate
        self.halt = threading.Event()
        self.ready = threading.Event()
        self.published: list[float] = []  # monotonic time of each event

    def run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.PUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.bind(self.endpoint)
        self.ready.set()
        boot, seq, pid = uuid.uuid4().hex, 0, 10_000_000
        due, step = time.monotonic(), 1.0 / self.rate
        try:
            while not self.halt.is_set():
                seq += 1
                name = f"w{seq % self.watchers:03d}"
                action = "reap" if seq % 2 else "spawn"
                pid += seq % 2
                payload = {"process_pid": pid, "time": time.time()}
                if action == "reap":
                    payload.update(exit_code=-9, expected=False)
                payload.update(boot=boot, seq=seq)
                sock.send_multipart([f"watcher.{name}.{action}".encode(),
                                     json.dumps(payload).encode()])
                self.published.append(time.monotonic())
                due += step
                delay = due - time.monotonic()
                if delay > 0:
                    self.halt.wait(delay)
        finally:
            sock.close(0)
            ctx.term()


def synthetic(watchers: int, rate: float, window: float) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    steady = "".join(f"[watcher:w{i:03d}]\ncmd = sleep 3600\nnumprocesses = 5\n\n"
                     for i in range(watchers))
    feed = f"ipc://{workdir}/feed.sock"
    port = free_port()
    with running(CircusdProcess(steady, workdir, start_timeout=180.0).start()) as daemon, \
            Browser(workdir / "profile") as browser:
        feeder = Feeder(feed, watchers, rate)
        feeder.start()
        feeder.ready.wait(10)
        plugin_proc = subprocess.Popen(
            [sys.executable, "-m", "circus.plugins.runner", "--endpoint", daemon.endpoint,
             "--pubsub", feed, "-o", f"port={port}", "web"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until(lambda: _answers(url), "the hand-run dashboard", timeout=60)
            browser.open(url)
            browser.wait(lambda: browser.row(f"w{watchers - 1:03d}").get("state") == "active",
                         "the last watcher on the page", timeout=60)
            plugin = psutil.Process(plugin_proc.pid)
            time.sleep(1.0)
            browser.js("window.circusLatency = [];")
            cpu0, since = sum(plugin.cpu_times()[:2]), time.monotonic()
            time.sleep(window)
            until = time.monotonic()
            cpu1 = sum(plugin.cpu_times()[:2])
            published = len([t for t in feeder.published if since <= t <= until])
            latency = [float(x) for x in browser.js("return window.circusLatency")]
        finally:
            feeder.halt.set()
            feeder.join(10)
            kill_tree(plugin_proc.pid)
            plugin_proc.wait(10)
    return {
        "events_per_s": published / (until - since), "published": published,
        "painted": len(latency), "p50": percentile(latency, 50),
        "p95": percentile(latency, 95), "p99": percentile(latency, 99),
        "cpu": 100 * (cpu1 - cpu0) / (until - since), "load": psutil.getloadavg()[0],
    }


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/api/state", timeout=5):
            return True
    except (urllib.error.URLError, ConnectionError):
        return False


def measure(watchers: int, churners: int, window: float, set_rate: float
            ) -> dict[str, float]:
    workdir = Path(tempfile.mkdtemp(prefix="bench-web-"))
    board = Dashboard(config(watchers, churners), workdir)
    board.daemon.start_timeout = 180.0
    with running(board.start().daemon) as daemon, \
            CircusClient(daemon.endpoint, 60) as client, \
            Recorder(daemon.pubsub_endpoint) as recorder, \
            Browser(workdir / "profile") as browser:
        wait_until(lambda: sum(len(w["processes"]) for w in (board.state() or {}).get(
            "watchers", [])) >= watchers * 5, "every steady process on the board", timeout=180)
        browser.open(board.url)
        browser.wait(lambda: browser.row(f"w{watchers - 1:03d}").get("count") == 5,
                     "the last watcher on the page", timeout=60)
        plugin = psutil.Process(client.call("list", name="plugin:web")["pids"][0])
        client.call("start", name="churn")
        setter = Setter(daemon.endpoint, watchers, set_rate)
        setter.start()
        time.sleep(1.0)  # let the churn reach its pace before measuring
        browser.js("window.circusLatency = []; window.circusCounters.events = 0;")
        cpu0, wall0, since = sum(plugin.cpu_times()[:2]), time.monotonic(), time.monotonic()
        target = f"w{watchers // 2:03d}"
        time.sleep(window / 2)
        pressed = time.monotonic()
        browser.click(f'tr[data-watcher="{target}"] button[data-cmd="incr"]')
        browser.wait(lambda: browser.row(target).get("count") == 6, "+1 shown", timeout=30)
        command = time.monotonic() - pressed
        time.sleep(max(window - (time.monotonic() - since), 0.0))
        cpu1, wall1 = sum(plugin.cpu_times()[:2]), time.monotonic()
        latency = [float(x) for x in browser.js("return window.circusLatency")]
        received = int(browser.js("return window.circusCounters.events"))
        published = len([e for e in recorder.events if since <= e[0] <= wall1])
        setter.halt.set()
        setter.join(10)
        client.call("stop", name="churn")
    return {
        "events_per_s": published / (wall1 - since), "published": published,
        "received": received, "painted": len(latency),
        "p50": percentile(latency, 50), "p95": percentile(latency, 95),
        "p99": percentile(latency, 99), "cpu": 100 * (cpu1 - cpu0) / (wall1 - wall0),
        "command": command, "load": psutil.getloadavg()[0],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="tiny run for CI (figures void)")
    parser.add_argument("--write", action="store_true", help="write the table into docs/web.md")
    parser.add_argument("--window", type=float, default=30.0, help="seconds measured")
    parser.add_argument("--churners", type=int, default=100,
                        help="processes of the churn watcher (each exits every ~50 ms)")
    parser.add_argument("--rate", type=float, default=1000.0,
                        help="events/s of the synthetic feed")
    parser.add_argument("--set-rate", type=float, default=400.0,
                        help="'updated' events/s added by set commands")
    args = parser.parse_args()
    watchers, window = (10, 3.0) if args.quick else (100, args.window)
    machine = machine_line()
    result = measure(watchers, 5 if args.quick else args.churners, window,
                     50.0 if args.quick else args.set_rate)
    fed = synthetic(watchers, 100.0 if args.quick else args.rate, window)

    def row(label: str, r: dict[str, float], command: str) -> list[str]:
        return [label, f"{r['events_per_s']:.0f}",
                f"{r['p50']:.0f} / {r['p95']:.0f} / {r['p99']:.0f} ms",
                f"{r['painted']:.0f} of {r['published']:.0f}", f"{r['cpu']:.1f} %", command,
                f"{r['load']:.1f}"]

    rows = [row(f"{watchers} x 5, circusd churn", result, f"{result['command'] * 1000:.0f} ms"),
            row(f"{watchers} x 5, fed at {fed['events_per_s']:.0f} events/s", fed, "n/a")]
    text = "\n".join([
        f"Measured {machine}; window {window:g} s; churn: {args.churners} processes of "
        f"`sleep 0.05` plus `set` commands for {args.set_rate:g} `updated` events/s.",
        "",
        table(["setup", "events/s", "event-to-screen p50 / p95 / p99", "events painted",
               "plugin CPU (one core)", "+1 pressed -> shown", "load at end"], rows),
    ])
    print(text)
    if args.write and not args.quick:
        write_section("web", text, doc=DOC)
    return 0


if __name__ == "__main__":
    sys.exit(main())
