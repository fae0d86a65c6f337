"""Daemon benchmark (issue 3): OUR circusd and the ORIGINAL 0.19 side by side, in one run.

Scenarios (each bounded in count and time; the whole script stays around two minutes):

* exit -> reap: SIGKILL a process, time until its ``reap`` event arrives on the pub/sub socket.
  Kills are spread evenly over 5 s so the original's 5 s tick (no check_delay in its config, so
  the default) is sampled fairly. ``exit_reap_cd1``: the same with ``check_delay = 1`` for both
  (the original's fastest usual setting), kills spread over 1 s.
* control round trip: ``status`` calls on one DEALER, one at a time; 5 rounds alternating
  which daemon goes first, medians of the rounds.
* 500 watchers: from launching circusd until ``status`` shows all 500 active; daemon RSS then.
* churn: a watcher of 50 processes running ``true`` (``min_uptime = 0``: crash-loop protection
  off, so this is raw event throughput); events published per second over 5 s.

Usage: ``.venv/bin/python bench/bench_daemon.py [--quick] [--write] [--only exit_reap,...]``.
``--quick`` is a CI smoke run (one round, 50 watchers, 1 s windows): its figures are not to be
written into the docs.
``--write`` puts the table into docs/benchmarks.md; with ``--only``, only the rows measured are
replaced, with a note of when (the others keep theirs).
"""

from __future__ import annotations

import argparse
import functools
import os
import signal
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
    ratio,
    rss_mb,
    running,
    sides,
    table,
    update_rows,
    wait_pids,
    write_section,
)

from circus.client import CircusClient

KILLS_PER_ROUND = 10
ROUNDS = 3
KILL_SPREAD = 5.0  # seconds over which one round's kills are spread (one original tick)
ROUND_TRIPS = 2000
ROUND_TRIP_BUDGET = 10.0
#: the round trip is taken in rounds alternating which daemon goes first (medians of the
#: rounds' figures): one 2000-call run per side swung from 0.54x to 1.26x of 0.19 at load 2.5
SCENARIO_ROUNDS = {"round_trip": 5}
WATCHERS = 500
CHURN_WINDOW = 5.0
CHURN_WARMUP = 1.0

Result = dict[str, dict[str, float]]


def _reaped(events: Recorder, killed: dict[int, float]) -> dict[int, float]:
    """pid -> receive time of its reap event, for the pids in ``killed``."""
    return {int(e[2]["process_pid"]): e[0] for e in events.matching("reap", "victim")
            if e[2].get("process_pid") in killed}


def _all_reaped(events: Recorder, killed: dict[int, float]) -> bool:
    return len(_reaped(events, killed)) == len(killed)


def exit_to_reap(side: Side, check_delay: float | None = None) -> dict[str, float]:
    """``check_delay`` set: both daemons run with it (the original then ticks every second)
    and the kills are spread over one such tick."""
    config = f"[watcher:victim]\ncmd = sleep 1000\nnumprocesses = {KILLS_PER_ROUND}\n"
    spread = KILL_SPREAD if check_delay is None else min(KILL_SPREAD, check_delay)
    latencies: list[float] = []
    with running(side.start(config, check_delay=check_delay)) as daemon, \
            CircusClient(daemon.endpoint, 20) as client, \
            Recorder(daemon.pubsub_endpoint) as events:
        events.prime(client, "victim")
        for _ in range(ROUNDS):
            victims = wait_pids(client, "victim", KILLS_PER_ROUND)[:KILLS_PER_ROUND]
            killed: dict[int, float] = {}
            start = time.monotonic()
            for index, pid in enumerate(victims):
                delay = start + index * spread / KILLS_PER_ROUND - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                killed[pid] = time.monotonic()
                os.kill(pid, signal.SIGKILL)
            events.wait(functools.partial(_all_reaped, events, killed), 20.0)
            for pid, seen in _reaped(events, killed).items():
                latencies.append(seen - killed[pid])
    return {"p50": median(latencies), "p95": percentile(latencies, 95),
            "samples": float(len(latencies))}


def round_trip(side: Side) -> dict[str, float]:
    config = "[watcher:one]\ncmd = sleep 1000\n"
    samples: list[float] = []
    with running(side.start(config)) as daemon, CircusClient(daemon.endpoint, 20) as client:
        for _ in range(100):
            client.call("status")
        deadline = time.monotonic() + ROUND_TRIP_BUDGET
        while len(samples) < ROUND_TRIPS and time.monotonic() < deadline:
            begin = time.perf_counter()
            client.call("status")
            samples.append(time.perf_counter() - begin)
    return {"p50": median(samples), "p95": percentile(samples, 95),
            "samples": float(len(samples))}


def many_watchers(side: Side) -> dict[str, float]:
    config = "".join(f"[watcher:w{i:03d}]\ncmd = sleep 1000\n\n" for i in range(WATCHERS))
    begin = time.monotonic()
    with running(side.start(config, start_timeout=120.0)) as daemon, \
            CircusClient(daemon.endpoint, 60) as client:
        deadline = begin + 120.0
        active = 0
        while time.monotonic() < deadline:
            statuses = client.call("status")["statuses"]
            active = sum(1 for state in statuses.values() if state == "active")
            if active == WATCHERS:
                break
            time.sleep(0.02)
        elapsed = time.monotonic() - begin
        time.sleep(0.5)  # let allocation settle before sampling RSS
        return {"seconds": elapsed if active == WATCHERS else float("nan"),
                "rss_mb": rss_mb(daemon.pid), "active": float(active)}


def churn(side: Side) -> dict[str, float]:
    # min_uptime = 0 turns our crash-loop protection off (0.19 keeps it as a free-form option):
    # this measures raw event throughput, not the backoff (bench_crashloop.py does)
    config = "[watcher:churn]\ncmd = true\nnumprocesses = 50\nautostart = false\nmin_uptime = 0\n"
    with running(side.start(config)) as daemon, CircusClient(daemon.endpoint, 60) as client, \
            Recorder(daemon.pubsub_endpoint) as events:
        events.prime(client, "churn")
        call_ok(client, "start", name="churn")
        window_start = time.monotonic() + CHURN_WARMUP
        time.sleep(CHURN_WARMUP + CHURN_WINDOW)
        window_end = window_start + CHURN_WINDOW
        in_window = [e for e in events.events if window_start <= e[0] < window_end
                     and e[1].startswith("watcher.churn.")]
        call_ok(client, "stop", name="churn", waiting=True)
    seqs = sorted(e[2]["seq"] for e in in_window if isinstance(e[2].get("seq"), int))
    gaps = (seqs[-1] - seqs[0] + 1 - len(seqs)) if seqs else 0
    reaps = sum(1 for e in in_window if e[1].endswith(".reap"))
    return {"events_per_s": len(in_window) / CHURN_WINDOW, "reaps_per_s": reaps / CHURN_WINDOW,
            "seq_gaps": float(gaps)}


SCENARIOS: dict[str, Callable[[Side], dict[str, float]]] = {
    "exit_reap": exit_to_reap,
    "exit_reap_cd1": functools.partial(exit_to_reap, check_delay=1.0),
    "round_trip": round_trip,
    "watchers_500": many_watchers,
    "churn": churn,
}


_ratio = functools.partial(ratio, digits=2)


HEADER = ["scenario", OURS, ORIGINAL, "ratio", "target", "met"]
SUMMARY_HEADER = ["", OURS, ORIGINAL, "ratio"]


def render(results: dict[str, Result]) -> list[list[str]]:
    """The rows of the docs' table for the scenarios in ``results`` (header :data:`HEADER`)."""
    rows: list[list[str]] = []
    ours, orig = results.get(OURS, {}), results.get(ORIGINAL, {})
    if "exit_reap" in ours:
        a, b = ours["exit_reap"], orig.get("exit_reap", {})
        met = a["p50"] < 0.002
        rows.append(["exit → reap event p50 / p95",
                     f"{fmt_ms(a['p50'])} / {fmt_ms(a['p95'])}",
                     f"{fmt_ms(b.get('p50', float('nan')))} / {fmt_ms(b.get('p95', float('nan')))}",
                     f"{_ratio(b.get('p50', float('nan')), a['p50'])} faster",
                     "p50 < 2 ms", "yes" if met else "**no**"])
    if "exit_reap_cd1" in ours:
        a, b = ours["exit_reap_cd1"], orig.get("exit_reap_cd1", {})
        rows.append(["exit → reap event p50 / p95, both at check_delay = 1",
                     f"{fmt_ms(a['p50'])} / {fmt_ms(a['p95'])}",
                     f"{fmt_ms(b.get('p50', float('nan')))} / {fmt_ms(b.get('p95', float('nan')))}",
                     f"{_ratio(b.get('p50', float('nan')), a['p50'])} faster",
                     "p50 < 2 ms", "yes" if a["p50"] < 0.002 else "**no**"])
    if "round_trip" in ours:
        a, b = ours["round_trip"], orig.get("round_trip", {})
        met = a["p50"] <= b.get("p50", float("inf"))
        rows.append(["control round trip (`status`) p50 / p95",
                     f"{fmt_ms(a['p50'])} / {fmt_ms(a['p95'])}",
                     f"{fmt_ms(b.get('p50', float('nan')))} / {fmt_ms(b.get('p95', float('nan')))}",
                     f"{_ratio(a['p50'], b.get('p50', float('nan')))} of original",
                     "≤ original", "yes" if met else "**no**"])
    if "watchers_500" in ours:
        a, b = ours["watchers_500"], orig.get("watchers_500", {})
        met = (a["seconds"] <= b.get("seconds", 0) / 2) and a["rss_mb"] <= b.get("rss_mb", 0)
        rows.append(["500 watchers: all active / daemon RSS",
                     f"{a['seconds']:.2f} s / {a['rss_mb']:.0f} MB",
                     f"{b.get('seconds', float('nan')):.2f} s / "
                     f"{b.get('rss_mb', float('nan')):.0f} MB",
                     f"{_ratio(a['seconds'], b.get('seconds', float('nan')))} time, "
                     f"{_ratio(a['rss_mb'], b.get('rss_mb', float('nan')))} RSS",
                     "≤ ½ time, ≤ RSS", "yes" if met else "**no**"])
    if "churn" in ours:
        a, b = ours["churn"], orig.get("churn", {})
        met = a["events_per_s"] >= 2 * b.get("events_per_s", float("inf"))
        rows.append(["events/s under churn (50 x `true`)",
                     f"{a['events_per_s']:,.0f} (seq gaps seen: {a['seq_gaps']:.0f})",
                     f"{b.get('events_per_s', float('nan')):,.0f}",
                     f"{_ratio(a['events_per_s'], b.get('events_per_s', float('nan')))}",
                     "≥ 2x", "yes" if met else "**no**"])
    return rows


def summary(results: dict[str, Result]) -> list[list[str]]:
    """The short form for the README: one row per scenario, ours vs the original
    (header :data:`SUMMARY_HEADER`)."""
    ours, orig = results.get(OURS, {}), results.get(ORIGINAL, {})
    nan = float("nan")
    rows: list[list[str]] = []
    if "exit_reap" in ours and "exit_reap" in orig:
        a, b = ours["exit_reap"]["p50"], orig["exit_reap"]["p50"]
        rows.append(["process exit → `reap` event (p50)", fmt_ms(a), fmt_ms(b),
                     f"{_ratio(b, a)} faster"])
    if "exit_reap_cd1" in ours and "exit_reap_cd1" in orig:
        a, b = ours["exit_reap_cd1"]["p50"], orig["exit_reap_cd1"]["p50"]
        rows.append(["process exit → `reap` event (p50), original at check_delay = 1",
                     fmt_ms(a), fmt_ms(b), f"{_ratio(b, a)} faster"])
    if "round_trip" in ours and "round_trip" in orig:
        a, b = ours["round_trip"]["p50"], orig["round_trip"]["p50"]
        rows.append(["command round trip (p50)", fmt_ms(a), fmt_ms(b),
                     f"{_ratio(b, a)} as fast"])
    if "watchers_500" in ours and "watchers_500" in orig:
        a_s, b_s = ours["watchers_500"]["seconds"], orig["watchers_500"].get("seconds", nan)
        a_m, b_m = ours["watchers_500"]["rss_mb"], orig["watchers_500"].get("rss_mb", nan)
        rows.append(["500 watchers: time to all active", f"{a_s:.2f} s", f"{b_s:.2f} s",
                     f"{_ratio(b_s, a_s)} faster"])
        rows.append(["500 watchers: daemon RSS", f"{a_m:.0f} MB", f"{b_m:.0f} MB",
                     f"{_ratio(a_m, b_m)} the memory"])
    if "churn" in ours and "churn" in orig:
        a, b = ours["churn"]["events_per_s"], orig["churn"]["events_per_s"]
        rows.append(["events/s under churn (50 processes running `true`)", f"{a:,.0f}",
                     f"{b:,.0f}", f"{_ratio(a, b)} more"])
    return rows


def _merge(rounds: list[dict[str, float]]) -> dict[str, float]:
    """One scenario's figures over its rounds: the median of each, the sum of the samples."""
    return {key: sum(r[key] for r in rounds) if key == "samples"
            else median([r[key] for r in rounds]) for key in rounds[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--quick", action="store_true",
                        help="CI smoke run: few samples, 50 watchers, short windows")
    parser.add_argument("--only", default=",".join(SCENARIOS),
                        help=f"comma-separated subset of {', '.join(SCENARIOS)}")
    args = parser.parse_args()
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = set(chosen) - set(SCENARIOS)
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    if args.quick and args.write:
        parser.error("--quick figures are not for the docs: drop --write")
    if args.quick:
        global ROUNDS, ROUND_TRIPS, WATCHERS, CHURN_WINDOW, KILL_SPREAD
        ROUNDS, ROUND_TRIPS, WATCHERS, CHURN_WINDOW, KILL_SPREAD = 1, 200, 50, 1.0, 1.0
    header = machine_line()
    installed = original()
    results: dict[str, Result] = {OURS: {}, ORIGINAL: {}}
    with tempfile.TemporaryDirectory(prefix="circus-bench-") as tmp:
        for index, name in enumerate(chosen):
            pair = sides(installed, Path(tmp))
            rounds: dict[str, list[dict[str, float]]] = {OURS: [], ORIGINAL: []}
            # alternate which daemon goes first, so neither always runs on a warmer machine
            for number in range(1 if args.quick else SCENARIO_ROUNDS.get(name, 1)):
                for side in pair if (index + number) % 2 == 0 else pair[::-1]:
                    began = time.monotonic()
                    rounds[side.label].append(SCENARIOS[name](side))
                    print(f"{name:>13} {side.label:>14}: {rounds[side.label][-1]} "
                          f"({time.monotonic() - began:.1f} s)", flush=True)
            for label, found in rounds.items():
                results[label][name] = _merge(found)
    rows, short = render(results), summary(results)
    text = f"Measured {header} (`bench/bench_daemon.py`).\n\n{table(HEADER, rows)}"
    print()
    print(text)
    if args.write and set(chosen) == set(SCENARIOS):
        write_section("daemon", text)
        write_section("summary-daemon", f"Daemon: {header} (`bench/bench_daemon.py`).\n\n"
                      + table(SUMMARY_HEADER, short))
    elif args.write:  # only these rows are new: the others keep their figures and date
        command = f"`bench/bench_daemon.py --only {','.join(chosen)}`"
        for name, measured in (("daemon", rows), ("summary-daemon", short)):
            labels = "; ".join(row[0] for row in measured)
            update_rows(name, measured, f"Re-measured {header} ({command}): {labels}.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
