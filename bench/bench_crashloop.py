"""Crash-loop and scale benchmark (issue 8): the watcher's backoff, respawn latency, big watchers.

Scenarios (our circusd; the original 0.19 for reference where it runs the same config):

* crash loop: a ``cmd = false`` watcher of 5 processes runs for 10 s next to a watcher of 5
  ``sleep`` processes. Measured over the window: circusd's CPU (% of one core, from its own
  cpu_times), the ``spawn`` events of the crashing watcher, and for the normal watcher (each
  process up for more than ``min_uptime`` before it is SIGKILLed, 15 kills spread over the window):
  kill -> ``reap`` event and kill -> ``spawn`` event of its replacement, as received by a
  subscriber. Targets: CPU <= 5 %, <= 100 spawns, p50 reap <= 2 ms, p50 respawn <= 3 ms.
* big watchers: 1,100 ``sleep`` processes in one watcher, then 400 with stdout/stderr file
  streams: from ``start`` until all run, with ``status`` round trips measured all along
  (target p50 < 50 ms).

Usage: ``.venv/bin/python bench/bench_crashloop.py [--quick] [--original] [--write]``.
``--quick`` (CI smoke run): 3 s window, 110 and 40 processes. ``--write`` puts the table into
docs/benchmarks.md (section ``crashloop``).
"""

from __future__ import annotations

import argparse
import math
import os
import resource
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from harness import (
    ORIGINAL,
    OURS,
    Recorder,
    Side,
    call_ok,
    fmt_ms,
    machine_line,
    median,
    original,
    percentile,
    running,
    sides,
    table,
    wait_pids,
    write_section,
)

from circus.client import CircusClient

Result = dict[str, float]
#: processes of the normal watcher; killed oldest first, each lives > min_uptime (1 s)
NORMAL = 5


def crash_loop(side: Side, window: float) -> Result:
    config = (
        "[watcher:crash]\ncmd = false\nnumprocesses = 5\n\n"
        f"[watcher:normal]\ncmd = sleep 1000\nnumprocesses = {NORMAL}\n"
    )
    with running(side.start(config)) as daemon, CircusClient(daemon.endpoint, 20) as client, \
            Recorder(daemon.pubsub_endpoint) as events:
        events.prime(client, "normal")
        handle = psutil.Process(daemon.pid)
        begin = time.monotonic()
        cpu_before = sum(handle.cpu_times()[:2])
        reaps: list[float] = []
        respawns: list[float] = []
        kills = max(int(window * 1.5), 3)
        for index in range(kills):
            # every victim has been up for more than min_uptime (1 s): a normal exit
            due = begin + (index + 1) * window / (kills + 1)
            time.sleep(max(due - time.monotonic(), 0))
            pids = wait_pids(client, "normal", NORMAL)
            victim = min(pids, key=lambda pid: psutil.Process(pid).create_time())
            killed = time.monotonic()
            os.kill(victim, signal.SIGKILL)
            seen = events.wait(lambda v=victim, k=killed: _spawned_after(events, v, k), 10.0)
            if seen:
                reaps.append(_reap_time(events, victim) - killed)
                respawns.append(_spawn_after(events, killed) - killed)
        time.sleep(max(begin + window - time.monotonic(), 0))
        cpu = sum(handle.cpu_times()[:2]) - cpu_before
        elapsed = time.monotonic() - begin
        spawns = len(events.matching("spawn", "crash", since=begin))
        status = client.call("status", name="crash").get("status")
    return {
        "cpu_pct": 100 * cpu / elapsed,
        "spawns": float(spawns),
        "reap_p50": median(reaps),
        "respawn_p50": median(respawns),
        "samples": float(len(reaps)),
        "backoff": 1.0 if status == "backoff" else 0.0,
        "seconds": elapsed,
    }


def _reap_time(events: Recorder, pid: int) -> float:
    found = [e[0] for e in events.matching("reap", "normal") if e[2].get("process_pid") == pid]
    return found[0] if found else float("nan")


def _spawn_after(events: Recorder, since: float) -> float:
    found = [e[0] for e in events.matching("spawn", "normal", since=since)]
    return found[0] if found else float("nan")


def _spawned_after(events: Recorder, pid: int, since: float) -> bool:
    return not _isnan(_reap_time(events, pid)) and not _isnan(_spawn_after(events, since))


def _isnan(value: float) -> bool:
    return math.isnan(value)


def big_watcher(side: Side, count: int, streams: bool, workdir: Path) -> Result:
    lines = ["[watcher:big]", "cmd = sleep 1000", f"numprocesses = {count}", "autostart = false"]
    if streams:
        lines += [f"stdout_stream.filename = {workdir / 'big.out'}",
                  f"stderr_stream.filename = {workdir / 'big.err'}"]
    config = "\n".join(lines) + "\n"
    samples: list[float] = []
    with running(side.start(config, start_timeout=120.0)) as daemon, \
            CircusClient(daemon.endpoint, 60) as client, \
            CircusClient(daemon.endpoint, 120) as starter:
        outcome: dict[str, object] = {}

        def start() -> None:
            try:
                outcome["reply"] = starter.call("start", name="big", waiting=True)
            except Exception as exc:  # reported below, the measurement goes on
                outcome["reply"] = {"status": "error", "reason": str(exc)}

        begin = time.monotonic()
        thread = threading.Thread(target=start, daemon=True)
        thread.start()
        running_now = 0
        deadline = begin + 180.0
        while time.monotonic() < deadline:
            sent = time.perf_counter()
            client.call("status", name="big")
            samples.append(time.perf_counter() - sent)
            running_now = len(client.call("list", name="big")["pids"])
            if running_now >= count and not thread.is_alive():
                break
            time.sleep(0.01)
        elapsed = time.monotonic() - begin
        thread.join(60)
        call_ok(client, "stop", name="big", waiting=True, timeout=120.0)
    reply = outcome.get("reply")
    ok = isinstance(reply, dict) and reply.get("status") == "ok"
    return {"seconds": elapsed, "running": float(running_now), "status_p50": median(samples),
            "status_p95": percentile(samples, 95), "samples": float(len(samples)),
            "start_ok": 1.0 if ok else 0.0}


def render(results: dict[str, dict[str, Result]], sizes: tuple[int, int], window: float) -> str:
    ours = results[OURS]
    crash = ours["crash"]
    rows = [
        [f"circusd CPU, `cmd = false` x 5 for {window:g} s", f"{crash['cpu_pct']:.1f} % of a core",
         "<= 5 %"],
        [f"spawns of the crashing watcher in {window:g} s", f"{crash['spawns']:.0f}", "<= 100"],
        ["kill -> reap event of a normal process, p50", fmt_ms(crash["reap_p50"]), "<= 2 ms"],
        ["kill -> respawn (spawn event) of a normal process, p50",
         fmt_ms(crash["respawn_p50"]), "<= 3 ms"],
    ]
    for key, label in (("big", f"{sizes[0]:,} `sleep` processes"),
                       ("streams", f"{sizes[1]:,} with file streams")):
        big = ours[key]
        rows.append([f"{label}: all running after", f"{big['seconds']:.1f} s "
                     f"({big['running']:.0f} running, start reply "
                     f"{'ok' if big['start_ok'] else 'error'})", ""])
        rows.append([f"{label}: `status` while starting, p50 / p95",
                     f"{fmt_ms(big['status_p50'])} / {fmt_ms(big['status_p95'])}", "< 50 ms p50"])
    text = table(["", OURS, "target"], rows)
    if ORIGINAL in results and "crash" in results[ORIGINAL]:
        orig = results[ORIGINAL]["crash"]
        rate = orig["spawns"] / orig["seconds"] * window
        text += (f"\n\nOriginal 0.19, same crash loop: {orig['cpu_pct']:.1f} % CPU, "
                 f"{rate:.0f} spawns per {window:g} s (its run lasts {orig['seconds']:.0f} s: "
                 f"it notices exits only at its 5 s tick, reap p50 {fmt_ms(orig['reap_p50'])}, "
                 f"and respawns crashed processes then).")
    return text


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small CI smoke run")
    parser.add_argument("--original", action="store_true", help="also run 0.19's crash loop")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    window = 3.0 if args.quick else 10.0
    sizes = (110, 40) if args.quick else (1100, 400)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:  # circusd inherits it; 1,100 children need more than 1,024 fds
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    header = machine_line()
    installed = original() if args.original else None
    results: dict[str, dict[str, Result]] = {OURS: {}, ORIGINAL: {}}
    with tempfile.TemporaryDirectory(prefix="circus-bench-") as tmp:
        workdir = Path(tmp)
        all_sides = sides(installed, workdir) if installed else []
        ours = next((s for s in all_sides if s.label == OURS), None) or _ours_only(workdir)
        scenarios: list[tuple[str, Side, Callable[[], Result]]] = [
            ("crash", ours, lambda: crash_loop(ours, window)),
            ("big", ours, lambda: big_watcher(ours, sizes[0], False, workdir)),
            ("streams", ours, lambda: big_watcher(ours, sizes[1], True, workdir)),
        ]
        for side in all_sides:
            if side.label == ORIGINAL:
                scenarios.append(("crash", side, lambda s=side: crash_loop(s, window)))
        for name, side, run in scenarios:
            began = time.monotonic()
            results[side.label][name] = run()
            print(f"{name:>8} {side.label:>14}: {results[side.label][name]} "
                  f"({time.monotonic() - began:.1f} s)", flush=True)
    mode = " --quick" if args.quick else ""
    text = (f"Measured {header} (`bench/bench_crashloop.py{mode}`).\n\n"
            f"{render(results, sizes, window)}")
    print()
    print(text)
    if args.write:
        write_section("crashloop", text)
    return 0


def _ours_only(workdir: Path) -> Side:
    from circus.testing import CircusdProcess

    counter = iter(range(1_000_000))

    def start(config: str, *, start_timeout: float = 60.0, **_: object) -> CircusdProcess:
        return CircusdProcess(config, workdir / f"ours-{next(counter)}",
                              start_timeout=start_timeout).start()

    return Side(OURS, start)


if __name__ == "__main__":
    raise SystemExit(main())
