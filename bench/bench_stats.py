"""Stats benchmark (issue 11): OUR circusd and the ORIGINAL 0.19 side by side, in one run.

Scenarios (each bounded in count and time):

* ``stats`` latency: one watcher of N ``sleep`` processes (N = 100, 300, 600, 1,000); time of a
  ``stats`` call answered with every process's info. Ours: the median of several calls; the
  original: one call from N = 600 on (it takes tens of seconds).
* reap and ``status`` while ``stats`` runs: with N = 600 processes, a thread sends ``stats``
  back to back while processes are SIGKILLed one at a time; the time from each kill to its
  ``reap`` event, and of a ``status`` call, next to the same measures with no ``stats`` running.
  Both daemons run with ``check_delay = 1`` so the original's tick (its reaping is tied to it)
  adds at most 1 s: what remains is what ``stats`` blocks.

Usage: ``.venv/bin/python bench/bench_stats.py [--quick] [--write]``. ``--quick`` (N = 20, 50;
a few seconds, for CI smoke runs) never writes. ``--write`` puts the tables into docs/stats.md
and a summary into docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import signal
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from harness import (
    ORIGINAL,
    OURS,
    ROOT,
    Recorder,
    Side,
    call_ok,
    fmt_ms,
    machine_line,
    median,
    original,
    running,
    sides,
    table,
    wait_pids,
    write_section,
)

from circus.client import CircusClient
from circus.errors import CallTimeout

STATS_DOC = ROOT / "docs" / "stats.md"
FULL_SIZES = (100, 300, 600, 1000)
QUICK_SIZES = (20, 50)
OURS_CALLS = 7
#: the original's stats takes ~15 s at 600 processes: one call there, a few below
ORIGINAL_CALLS = {100: 3, 300: 1}
CALL_TIMEOUT = 180.0
KILLS = {OURS: 8, ORIGINAL: 3}
START_TIMEOUT = 240.0


@dataclass
class Measures:
    stats: dict[int, float] = field(default_factory=dict)  # N -> seconds (median)
    reap_idle: float = float("nan")
    reap_busy: float = float("nan")
    status_idle: float = float("nan")
    status_busy: float = float("nan")


def config(count: int) -> str:
    return f"[watcher:w]\ncmd = sleep 1000\nnumprocesses = {count}\nwarmup_delay = 0\n"


def stats_latency(side: Side, count: int) -> float:
    calls = OURS_CALLS if side.label == OURS else ORIGINAL_CALLS.get(count, 1)
    with running(side.start(config(count), start_timeout=START_TIMEOUT)) as daemon, \
            CircusClient(daemon.endpoint, CALL_TIMEOUT) as client:  # fmt: skip
        wait_pids(client, "w", count, timeout=START_TIMEOUT)
        samples = []
        for _ in range(calls):
            began = time.monotonic()
            reply = call_ok(client, "stats", timeout=CALL_TIMEOUT)
            samples.append(time.monotonic() - began)
            shown = len(reply["infos"]["w"])
            if shown < count:
                raise RuntimeError(f"{side.label}: stats showed {shown}/{count} processes")
        return median(samples)


def _kill_and_time(pid: int, events: Recorder, timeout: float) -> float:
    """SIGKILL ``pid``, return the time until its reap event."""
    killed = time.monotonic()
    os.kill(pid, signal.SIGKILL)

    def reaped() -> bool:
        return any(e[2].get("process_pid") == pid for e in events.matching("reap", "w", killed))

    if not events.wait(reaped, timeout):
        raise RuntimeError(f"no reap of {pid} within {timeout} s")
    found = next(e for e in events.matching("reap", "w", killed) if e[2]["process_pid"] == pid)
    return found[0] - killed


def _status_time(client: CircusClient) -> float:
    began = time.monotonic()
    try:
        client.call("status", name="w")
    except CallTimeout:
        return float("inf")
    return time.monotonic() - began


class _Background(threading.Thread):
    """Calls ``command`` on its own client until stopped, every ``pause`` s; keeps the times."""

    def __init__(self, endpoint: str, command: str, pause: float) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.command, self.pause = endpoint, command, pause
        self.times: list[float] = []
        self.halt = threading.Event()

    def run(self) -> None:
        with CircusClient(self.endpoint, CALL_TIMEOUT) as client:
            while not self.halt.is_set():
                if self.command == "status":
                    self.times.append(_status_time(client))
                else:
                    client.call(self.command)
                self.halt.wait(self.pause)

    def finish(self) -> list[float]:
        self.halt.set()
        self.join(CALL_TIMEOUT)
        return self.times


def reap_while_stats(side: Side, count: int, measures: Measures) -> None:
    """Victims are chosen before ``stats`` starts and killed 0.5 s after the previous reap, so
    a kill never waits behind a command of ours; ``status`` is timed from a thread of its own."""
    kills = KILLS[side.label]
    started = side.start(config(count), check_delay=1.0, start_timeout=START_TIMEOUT)
    with running(started) as daemon, \
            CircusClient(daemon.endpoint, CALL_TIMEOUT) as client, \
            Recorder(daemon.pubsub_endpoint) as events:  # fmt: skip
        wait_pids(client, "w", count, timeout=START_TIMEOUT)
        events.prime(client, "w")
        client.timeout = 30.0
        measures.status_idle = median([_status_time(client) for _ in range(20)])
        victims = wait_pids(client, "w", count)[: 2 * kills]
        measures.reap_idle = median([_kill_and_time(pid, events, 60) for pid in victims[:kills]])
        wait_pids(client, "w", count, timeout=START_TIMEOUT)

        hammer = _Background(daemon.endpoint, "stats", 0.0)
        status = _Background(daemon.endpoint, "status", 0.2)
        hammer.start()
        time.sleep(0.5)  # the first stats is under way
        status.start()
        try:
            reaps = []
            for pid in victims[kills:]:
                time.sleep(0.5)
                reaps.append(_kill_and_time(pid, events, CALL_TIMEOUT))
            measures.reap_busy = median(reaps)
        finally:
            measures.status_busy = median(status.finish())
            hammer.finish()


def render(results: dict[str, Measures], sizes: tuple[int, ...], busy_n: int) -> str:
    ours, orig = results[OURS], results[ORIGINAL]
    rows = []
    for n in sizes:
        a, b = ours.stats.get(n, float("nan")), orig.stats.get(n, float("nan"))
        met = "yes" if a < 0.2 else "**no**"
        rows.append([f"`stats`, {n:,} processes", fmt_ms(a), fmt_ms(b), f"{b / a:,.0f}x faster",
                     met])  # fmt: skip
    for label, attr in (("reap after SIGKILL (p50)", "reap"), ("`status` (p50)", "status")):
        idle_a, busy_a = getattr(ours, f"{attr}_idle"), getattr(ours, f"{attr}_busy")
        idle_b, busy_b = getattr(orig, f"{attr}_idle"), getattr(orig, f"{attr}_busy")
        ratio = f"{busy_b / busy_a:,.0f}x faster" if busy_b != float("inf") else ""
        idle = f"{label}, idle, {busy_n:,} processes"
        rows.append([idle, fmt_ms(idle_a), fmt_ms(idle_b), "", ""])
        rows.append([f"{label}, while `stats` runs back to back", fmt_ms(busy_a), _maybe(busy_b),
                     ratio, ""])  # fmt: skip
    return table(["", OURS, ORIGINAL, "ratio", "`stats` < 200 ms"], rows)


def _maybe(value: float) -> str:
    return "timed out (30 s)" if value == float("inf") else fmt_ms(value)


def summary(results: dict[str, Measures], sizes: tuple[int, ...]) -> str:
    ours, orig = results[OURS], results[ORIGINAL]
    big = sizes[-1]
    a, b = ours.stats[big], orig.stats[big]
    rows = [
        [f"`stats`, {big:,} processes", fmt_ms(a), fmt_ms(b), f"{b / a:,.0f}x faster"],
        ["reap after SIGKILL while `stats` runs (p50)", fmt_ms(ours.reap_busy),
         fmt_ms(orig.reap_busy), f"{orig.reap_busy / ours.reap_busy:,.0f}x faster"],
    ]  # fmt: skip
    return table(["", OURS, ORIGINAL, "ratio"], rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes, a few seconds")
    parser.add_argument("--write", action="store_true", help="update docs/stats.md")
    args = parser.parse_args()
    if args.quick and args.write:
        parser.error("--quick results are not written into the docs")
    sizes = QUICK_SIZES if args.quick else FULL_SIZES
    busy_n = sizes[-1] if args.quick else 600
    header = machine_line()
    installed = original()
    results = {OURS: Measures(), ORIGINAL: Measures()}
    with tempfile.TemporaryDirectory(prefix="circus-bench-") as tmp:
        for side in sides(installed, Path(tmp)):
            for n in sizes:
                began = time.monotonic()
                results[side.label].stats[n] = stats_latency(side, n)
                print(f"stats {n:>5} {side.label:>14}: {fmt_ms(results[side.label].stats[n])} "
                      f"({time.monotonic() - began:.1f} s)", flush=True)  # fmt: skip
            began = time.monotonic()
            reap_while_stats(side, busy_n, results[side.label])
            print(f"reap/status while stats {side.label:>14}: {vars(results[side.label])} "
                  f"({time.monotonic() - began:.1f} s)", flush=True)  # fmt: skip
    load = os.getloadavg()[0]
    text = (f"Measured {header}, load {load:.1f} at the end (`bench/bench_stats.py`).\n\n"
            f"{render(results, sizes, busy_n)}")  # fmt: skip
    print()
    print(text)
    if args.write:
        write_section("stats", text, STATS_DOC)
        write_section("summary-stats", summary(results, sizes))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
