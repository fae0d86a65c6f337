"""Plugin benchmark (issue 4): OUR circusd + runner and the ORIGINAL 0.19 ones, side by side.

The same plugin class (``bench/probe_plugins.py``) runs under both; it writes what it sees, with
timestamps, to a file per plugin. Scenarios (each bounded in count and time):

* exit -> handle_recv and exit -> ``call`` answered: SIGKILL ``victim`` processes (spread over
  one original tick), the plugin receives the ``reap`` and calls ``status``. The original runs
  with check_delay 1 and with its INI default 5; ours runs before, between and after them, with
  the threaded probe and with the async one (``probe_async.py``), each flavour's three runs
  pooled.
* delivery under churn: a watcher of 50 ``true`` processes for 5 s with 1 and with 10 plugins;
  each plugin's events are compared with what the daemon published (by ``seq`` for ours, with
  a separate subscriber's count for the original, which has no ``seq``).
* max events/s of one plugin with the default hooks: a local PUB feeds the runner as fast as it
  can; the plugin counts what it handles.
* a plugin blocked for 60 s under churn (ours only): its memory (RSS, sampled every 0.5 s) must
  stay within what its ``queue_size`` allows, and it must report the events it dropped.
* plugin ``call`` vs client call (ours only): the same ``numprocesses`` command, timed in a loop
  from a plugin's ``handle_recv`` and from a ``CircusClient``, the two alternating which goes
  first over the rounds so that neither always runs on a warmer machine.

Usage: ``.venv/bin/python bench/bench_plugins.py [--quick] [--write]
[--only latency,delivery,throughput,calls]``. ``--quick`` runs tiny counts (a CI smoke run:
the figures mean nothing).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import zmq
from harness import (
    BENCH_DIR,
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
    wait_pids,
    write_section,
)
from original_circus import OriginalCircus

from circus.client import CircusClient

VICTIMS = 10
ROUNDS = 6  # 60 samples per daemon: one run of 30 moved by ±0.3 ms at p50
CHURN_WINDOW = 5.0
FEED_SECONDS = 3.0
FEED_MAX = 2_000_000
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(BENCH_DIR), os.environ.get("PYTHONPATH")]))}


def _plugin_section(name: str, out: Path, mode: str, probe: str = "probe_plugins.Probe") -> str:
    return f"[plugin:{name}]\nuse = {probe}\nout = {out}\nmode = {mode}\n\n"


def _lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.01)


def _poke_until(client: CircusClient, watcher: str, done: Callable[[], bool],
                timeout: float = 60.0) -> None:
    """No-op ``set`` (publishes ``updated``) until ``done()``: the plugins are subscribed."""
    value = client.call("get", name=watcher, keys=["graceful_timeout"])["options"]
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise RuntimeError(f"plugins not receiving events after {timeout} s")
        client.call("set", name=watcher, options=value)
        time.sleep(0.1)


# -- exit -> handle_recv / call answered ----------------------------------------------------------

def _observed(out: Path, killed: dict[int, float]) -> dict[str, dict[int, float]]:
    """``{"recv": {pid: time}, "call": {pid: time}}`` from the probe's file."""
    seen: dict[str, dict[int, float]] = {"recv": {}, "call": {}}
    for line in _lines(out):
        parts = line.split()
        if len(parts) == 3 and parts[0] in seen and int(parts[1]) in killed:
            seen[parts[0]][int(parts[1])] = float(parts[2])
    return seen


def _all_called(out: Path, killed: dict[int, float]) -> bool:
    return len(_observed(out, killed)["call"]) == len(killed)


def _latency_summary(recv: list[float], answered: list[float]) -> dict[str, float]:
    return {"recv_p50": median(recv), "recv_p95": percentile(recv, 95),
            "call_p50": median(answered), "call_p95": percentile(answered, 95),
            "samples": float(len(answered))}


def latency_samples(side: Side, workdir: Path, check_delay: float | None,
                    spread: float, probe: str = "probe_plugins.Probe"
                    ) -> tuple[list[float], list[float]]:
    """The raw delays (s) after each kill: ``(exit -> handle_recv, exit -> call answered)``;
    ``probe`` is the plugin class (``probe_async.AsyncProbe``: the async flavour, ours only)."""
    out = workdir / f"latency-{time.monotonic_ns()}.log"
    config = (f"[watcher:victim]\ncmd = sleep 1000\nnumprocesses = {VICTIMS}\n\n"
              + _plugin_section("probe", out, "latency", probe))
    recv: list[float] = []
    answered: list[float] = []
    with running(side.start(config, check_delay=check_delay, env=ENV)) as daemon, \
            CircusClient(daemon.endpoint, 20) as client:
        _poke_until(client, "victim", lambda: "ready" in _lines(out))
        for _ in range(ROUNDS):
            victims = wait_pids(client, "victim", VICTIMS)[:VICTIMS]
            killed: dict[int, float] = {}
            start = time.monotonic()
            for index, pid in enumerate(victims):
                delay = start + index * spread / VICTIMS - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                killed[pid] = time.time()
                os.kill(pid, signal.SIGKILL)
            with contextlib.suppress(RuntimeError):
                _wait(functools.partial(_all_called, out, killed), 30.0, "plugin calls")
            seen = _observed(out, killed)
            recv += [t - killed[pid] for pid, t in seen["recv"].items()]
            answered += [t - killed[pid] for pid, t in seen["call"].items()]
    return recv, answered


# -- delivery under churn ------------------------------------------------------------------------

def delivery(side: Side, workdir: Path, plugins: int) -> dict[str, float]:
    tag = time.monotonic_ns()
    outs = [workdir / f"delivery-{tag}-{i}.log" for i in range(plugins)]
    # min_uptime = 0: no crash-loop backoff, so the churn lasts the whole window
    config = ("[watcher:churn]\ncmd = true\nnumprocesses = 50\nautostart = false\n"
              "min_uptime = 0\n\n") + "".join(
        _plugin_section(f"p{i}", out, "log") for i, out in enumerate(outs)
    )

    def churn_lines(path: Path) -> list[list[str]]:
        return [line.split() for line in _lines(path)
                if line.startswith("watcher.churn.") and ".updated " not in line]

    with running(side.start(config, env=ENV, start_timeout=120.0)) as daemon, \
            CircusClient(daemon.endpoint, 60) as client, \
            Recorder(daemon.pubsub_endpoint) as recorder:
        _poke_until(client, "churn", lambda: all(
            any(line.startswith("watcher.churn.updated") for line in _lines(out)) for out in outs
        ) and bool(recorder.matching("updated", "churn")), timeout=120.0)
        call_ok(client, "start", name="churn")
        time.sleep(CHURN_WINDOW)
        call_ok(client, "stop", name="churn", waiting=True)

        def stop_seen() -> bool:
            return all(any(parts[0] == "watcher.churn.stop" for parts in churn_lines(out))
                       for out in outs)

        with contextlib.suppress(RuntimeError):
            _wait(stop_seen, 30.0, "the stop event at every plugin")
        published = [e for e in recorder.events
                     if e[1].startswith("watcher.churn.") and not e[1].endswith(".updated")]
    seqs = sorted(e[2]["seq"] for e in published if isinstance(e[2].get("seq"), int))
    if seqs:
        # ours: the daemon published every seq between the first and the last churn event
        # (events of other watchers in between included: plugins receive those too)
        expected = seqs[-1] - seqs[0] + 1
        received = [len({int(parts[1]) for parts in (line.split() for line in _lines(out))
                         if len(parts) == 3 and parts[1].isdigit()
                         and seqs[0] <= int(parts[1]) <= seqs[-1]}) for out in outs]
    else:
        expected = len(published)
        received = [len(churn_lines(out)) for out in outs]
    missing = sum(max(0, expected - got) for got in received)
    duration = max(published[-1][0] - published[0][0], 1e-9) if published else float("nan")
    return {"published": float(expected), "min_received": float(min(received)),
            "missing": float(missing), "events_per_s": len(published) / duration}


# -- max events/s of one plugin ---------------------------------------------------------------

def throughput(label: str, installed: OriginalCircus, workdir: Path) -> dict[str, float]:
    feed = f"ipc://{workdir}/feed-{time.monotonic_ns()}.sock"
    out = workdir / f"count-{time.monotonic_ns()}.log"
    runner = ([sys.executable, "-m", "circus.plugins.runner"] if label == OURS
              else installed.runner_command())
    args = ["--endpoint", f"ipc://{workdir}/nobody.sock", "--pubsub", feed,
            "--config", f"out:{out}:::mode:count", "probe_plugins.Probe"]
    if label == OURS:  # nothing answers at the control endpoint: do not wait for it
        args = ["--connect-timeout", "0", *args]
    ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
    pub = ctx.socket(zmq.PUB)
    pub.setsockopt(zmq.LINGER, 0)
    pub.bind(feed)
    proc = subprocess.Popen([*runner, *args], env={**os.environ, **ENV},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while "ready" not in _lines(out):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{label} runner never received the feed")
            pub.send_multipart([b"watcher.bench.ping", b"{}"])
            time.sleep(0.02)
        payload = b'{"process_pid": 4242, "time": 1795878669.8957918, "seq": 1}'
        sent = 0
        stop_at = time.monotonic() + FEED_SECONDS
        while sent < FEED_MAX and time.monotonic() < stop_at:
            for _ in range(1000):
                pub.send_multipart([b"watcher.bench.spawn", payload])
            sent += 1000
        deadline = time.monotonic() + 60
        result: list[str] = []
        while not result:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{label} runner never reported its count")
            pub.send_multipart([b"watcher.bench.done", b"{}"])
            time.sleep(0.05)
            result = [line for line in _lines(out) if line.startswith("count ")]
        _, count, first, last = result[0].split()
        rate = (int(count) - 1) / max(float(last) - float(first), 1e-9)
        return {"events_per_s": rate, "handled": float(count), "sent": float(sent),
                "send_rate": sent / FEED_SECONDS}
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
        pub.close(0)
        ctx.term()


# -- a plugin blocked under churn -----------------------------------------------------------------

def blocked(side: Side, workdir: Path, seconds: float, queue_size: int) -> dict[str, float]:
    out = workdir / f"blocked-{time.monotonic_ns()}.log"
    # min_uptime = 0: no crash-loop backoff, the churn goes on for the whole minute
    config = ("[watcher:churn]\ncmd = true\nnumprocesses = 50\nautostart = false\n"
              "min_uptime = 0\n\n" + _plugin_section("probe", out, "block")
              + f"block = {seconds}\nqueue_size = {queue_size}\n")
    with running(side.start(config, env=ENV)) as daemon, \
            CircusClient(daemon.endpoint, 60) as client:
        _poke_until(client, "churn", lambda: "ready" in _lines(out))
        (pid,) = wait_pids(client, "plugin:probe", 1)
        before = rss_mb(pid)
        call_ok(client, "start", name="churn")
        _wait(lambda: "blocked" in _lines(out), 60.0, "the plugin to block")
        peak = before
        deadline = time.monotonic() + seconds + 60
        while "unblocked" not in _lines(out) and time.monotonic() < deadline:
            peak = max(peak, rss_mb(pid))
            time.sleep(0.5)
        call_ok(client, "stop", name="churn", waiting=True)
        with contextlib.suppress(RuntimeError):  # no report at all shows as 0 in the table
            _wait(lambda: any(line.startswith("gap gap") for line in _lines(out)), 30.0,
                  "the gap report")
        gaps = [line.split() for line in _lines(out) if line.startswith("gap gap")]
    return {"rss_before_mb": before, "rss_peak_mb": peak,
            "missed": float(sum(int(g[2]) for g in gaps)),
            "dropped": float(sum(int(g[3]) for g in gaps)), "seconds": seconds,
            "queue_size": float(queue_size)}


# -- plugin call vs client call ------------------------------------------------------------------

def calls(side: Side, workdir: Path, count: int, rounds: int) -> dict[str, float]:
    out = workdir / f"calls-{time.monotonic_ns()}.log"
    config = ("[watcher:bench]\ncmd = sleep 1000\n\n"
              + _plugin_section("probe", out, "calls") + f"calls = {count}\n")
    plugin: list[float] = []
    client_p50: list[float] = []
    with running(side.start(config, env=ENV)) as daemon, \
            CircusClient(daemon.endpoint, 20) as client:
        _poke_until(client, "bench", lambda: "ready" in _lines(out))

        def by_plugin() -> None:
            before = len([line for line in _lines(out) if line.startswith("calls ")])
            client.call("set", name="bench", options={"graceful_timeout": 30})
            _wait(lambda: len([line for line in _lines(out) if line.startswith("calls ")])
                  > before, 60.0, "the plugin's calls")
            plugin.append(float([line for line in _lines(out)
                                 if line.startswith("calls ")][-1].split()[1]))

        def by_client() -> None:
            samples = []
            for _ in range(count):
                started = time.perf_counter()
                client.call("numprocesses", name="bench")
                samples.append(time.perf_counter() - started)
            client_p50.append(median(samples))

        for index in range(rounds):
            order = (by_plugin, by_client) if index % 2 == 0 else (by_client, by_plugin)
            for step in order:
                step()
    return {"plugin_p50": median(plugin), "client_p50": median(client_p50),
            "rounds": float(rounds), "calls": float(count)}


def _row_latency(label: str, r: dict[str, float]) -> list[str]:
    return [label, f"{fmt_ms(r['recv_p50'])} / {fmt_ms(r['recv_p95'])}",
            f"{fmt_ms(r['call_p50'])} / {fmt_ms(r['call_p95'])}", f"{r['samples']:.0f}"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    parser.add_argument("--only", default="latency,delivery,throughput,calls,blocked")
    parser.add_argument("--quick", action="store_true", help="tiny counts (CI smoke run)")
    args = parser.parse_args()
    if args.quick:
        global VICTIMS, ROUNDS, CHURN_WINDOW, FEED_SECONDS
        VICTIMS, ROUNDS, CHURN_WINDOW, FEED_SECONDS = 2, 1, 0.5, 0.3
        if args.write:
            parser.error("--quick figures mean nothing: not writing them into the docs")
    chosen = {name.strip() for name in args.only.split(",") if name.strip()}
    unknown = chosen - {"latency", "delivery", "throughput", "calls", "blocked"}
    if unknown:
        parser.error(f"unknown scenario(s): {', '.join(sorted(unknown))}")
    header = machine_line()
    installed = original()
    sections: list[str] = []
    short: list[list[str]] = []  # the README's summary rows
    with tempfile.TemporaryDirectory(prefix="circus-bench-") as tmp:
        workdir = Path(tmp)
        ours, theirs = sides(installed, workdir)
        if "latency" in chosen:
            # ours runs three times per plugin flavour, before, between and after the
            # original's two runs, and each flavour's samples are pooled: one daemon's 60 kills
            # take 6 s, and this machine's state moves such a run's p50 by +-0.3 ms; runs
            # spread over the scenario's couple of minutes measure the code, not the moment
            threaded, asynchronous = "CircusPlugin", "AsyncCircusPlugin"
            ours_runs = [(threaded, "probe_plugins.Probe"),
                         (asynchronous, "probe_async.AsyncProbe")]
            runs: list[tuple[str, Side, float | None, float, str]] = [
                *[(flavour, ours, None, 1.0, probe) for flavour, probe in ours_runs],
                (f"{ORIGINAL}, check_delay 1", theirs, 1.0, 1.0, "probe_plugins.Probe"),
                *[(flavour, ours, None, 1.0, probe) for flavour, probe in ours_runs],
                (f"{ORIGINAL}, check_delay 5 (INI default)", theirs, 5.0, 5.0,
                 "probe_plugins.Probe"),
                *[(flavour, ours, None, 1.0, probe) for flavour, probe in ours_runs],
            ]
            rows = []
            theirs_rows: list[tuple[float, dict[str, float]]] = []
            pooled: dict[str, tuple[list[float], list[float]]] = {
                threaded: ([], []), asynchronous: ([], [])}
            per_run: dict[str, list[float]] = {threaded: [], asynchronous: []}
            for label, side, check_delay, spread, probe in runs:
                recv, answered = latency_samples(side, workdir, check_delay, spread, probe)
                result = _latency_summary(recv, answered)
                print(f"latency {label}: {result}", flush=True)
                if side is ours:
                    pooled[label][0].extend(recv)
                    pooled[label][1].extend(answered)
                    per_run[label].append(result["call_p50"])
                else:
                    rows.append(_row_latency(label, result))
                    theirs_rows.append((check_delay or 0.0, result))
            mine = {flavour: _latency_summary(*pooled[flavour]) for flavour in pooled}
            rows[:0] = [_row_latency(f"{OURS}, {flavour} (check_delay 5), 3 daemons pooled",
                                     mine[flavour]) for flavour in (threaded, asynchronous)]
            for check_delay, result in theirs_rows:
                short.append([f"process exit → plugin's `call` answered (p50, CircusPlugin), "
                              f"original check_delay {check_delay:g}",
                              fmt_ms(mine[threaded]["call_p50"]), fmt_ms(result["call_p50"]),
                              f"{ratio(result['call_p50'], mine[threaded]['call_p50'])} faster"])
            short.append(["process exit → plugin's `call` answered (p50, AsyncCircusPlugin)",
                          fmt_ms(mine[asynchronous]["call_p50"]), "", ""])
            sections.append(
                "Process exit → plugin (target: exit → `call` answered p50 ≤ 2 ms, issue 13):\n\n"
                + table(["daemon", "exit → handle_recv p50 / p95",
                         "exit → call answered p50 / p95", "samples"], rows)
                + "\n\nOurs, each daemon alone (exit → call answered p50): CircusPlugin "
                + " / ".join(fmt_ms(value) for value in per_run[threaded])
                + "; AsyncCircusPlugin "
                + " / ".join(fmt_ms(value) for value in per_run[asynchronous]) + ".\n")
        if "delivery" in chosen:
            rows = []
            missed: dict[str, float] = {}
            for count in (1, 10):
                for side in (ours, theirs):
                    result = delivery(side, workdir, count)
                    print(f"delivery {side.label} x{count}: {result}", flush=True)
                    if count == 10:
                        missed[side.label] = result["missing"]
                    rows.append([side.label, str(count), f"{result['published']:.0f}",
                                 f"{result['events_per_s']:,.0f}",
                                 f"{result['min_received']:.0f}", f"{result['missing']:.0f}"])
            short.append(["events missed by 10 plugins under churn", f"{missed[OURS]:.0f}",
                          f"{missed[ORIGINAL]:.0f}", ""])
            sections.append(
                f"Events delivered to plugins under churn (50 x `true`, {CHURN_WINDOW:g} s; "
                "target: none missing):\n\n"
                + table(["daemon", "plugins", "events published", "events/s",
                         "fewest received by one plugin", "missing (all plugins)"], rows))
        if "throughput" in chosen:
            rows = []
            rates: dict[str, float] = {}
            for label in (OURS, ORIGINAL):
                result = throughput(label, installed, workdir)
                print(f"throughput {label}: {result}", flush=True)
                bound = " (feeder-bound)" if result["handled"] >= result["sent"] else ""
                rows.append([label, f"{result['events_per_s']:,.0f}{bound}",
                             f"{result['handled']:,.0f} of {result['sent']:,.0f}"])
                rates[label] = result["events_per_s"]
            short.append(["events/s one plugin consumes", f"{rates[OURS]:,.0f}",
                          f"{rates[ORIGINAL]:,.0f}",
                          f"{ratio(rates[OURS], rates[ORIGINAL])} more"])
            sections.append(
                "Most events/s one plugin consumes, default hooks, fed by a local PUB "
                "(target ≥ 50,000/s):\n\n"
                + table(["runner", "events/s handled", "handled of sent"], rows))
        if "blocked" in chosen:
            seconds, size = (1.0, 50) if args.quick else (60.0, 1000)
            result = blocked(ours, workdir, seconds, size)
            print(f"blocked: {result}", flush=True)
            growth = result["rss_peak_mb"] - result["rss_before_mb"]
            short.append([f"plugin blocked {seconds:g} s under churn: memory growth, drops "
                          "reported", f"{growth:+.1f} MB, {result['dropped']:,.0f} dropped",
                          "", f"queue_size {size:,}"])
            sections.append(
                f"A plugin blocked {seconds:g} s in `handle_recv` while 50 `true` processes "
                f"churn (queue_size {size:,}; the previous runtime grew ~170 MB a minute):\n\n"
                + table(["RSS before", "RSS peak while blocked", "growth",
                         "events missed (reported)", "of which dropped by its queue"],
                        [[f"{result['rss_before_mb']:.1f} MB", f"{result['rss_peak_mb']:.1f} MB",
                          f"{growth:+.1f} MB", f"{result['missed']:,.0f}",
                          f"{result['dropped']:,.0f}"]]))
        if "calls" in chosen:
            count, rounds = (20, 2) if args.quick else (300, 6)
            result = calls(ours, workdir, count, rounds)
            print(f"calls: {result}", flush=True)
            call_ratio = result["plugin_p50"] / result["client_p50"]
            short.append(["plugin `call` round trip ÷ client round trip (p50, same run)",
                          f"{call_ratio:.2f}x", "", "target ≤ 1.5x"])
            sections.append(
                f"`call numprocesses` round trip, {count} calls x {rounds} rounds alternating "
                "plugin first / client first (target: plugin ≤ 1.5x client):\n\n"
                + table(["from", "p50 (median of rounds)"],
                        [["plugin `handle_recv` (CircusPlugin.call)",
                          fmt_ms(result["plugin_p50"])],
                         ["CircusClient", fmt_ms(result["client_p50"])],
                         ["ratio", f"{call_ratio:.2f}x"]]))
    text = f"Measured {header} (`bench/bench_plugins.py`).\n\n" + "\n\n".join(sections)
    print()
    print(text)
    if args.write:
        write_section("plugins", text)
        write_section("summary-plugins", f"Plugins: {header} (`bench/bench_plugins.py`).\n\n"
                      + table(["", OURS, ORIGINAL, "ratio"], short))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
