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

No ratio against 0.19: its dashboard (circus-web) does not run on Python 3 at all.

Usage: ``.venv/bin/python bench/bench_web.py [--quick] [--write]``; ``--quick`` (CI smoke run)
uses 10 watchers and a 3 s window, and its figures mean nothing. ``--write`` puts the table in
docs/web.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
from harness import ROOT, Recorder, machine_line, percentile, running, table, write_section

sys.path.insert(0, str(ROOT / "plugins" / "web" / "tests"))

from web_browser import Browser, Dashboard

from circus.client import CircusClient
from circus.testing import wait_until

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
    parser.add_argument("--set-rate", type=float, default=400.0,
                        help="'updated' events/s added by set commands")
    args = parser.parse_args()
    watchers, window = (10, 3.0) if args.quick else (100, args.window)
    machine = machine_line()
    result = measure(watchers, 5 if args.quick else args.churners, window,
                     50.0 if args.quick else args.set_rate)
    rows = [[
        f"{watchers} x 5 + churn", f"{result['events_per_s']:.0f}",
        f"{result['p50']:.0f} / {result['p95']:.0f} / {result['p99']:.0f} ms",
        f"{result['painted']} of {result['published']}", f"{result['cpu']:.1f} %",
        f"{result['command'] * 1000:.0f} ms", f"{result['load']:.1f}",
    ]]
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
