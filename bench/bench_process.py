"""Process layer benchmark (issue 8 items 4, 6, 8): spawning, noticing exits, ending groups.

Runs in one process against real children, on both ways of noticing exits (pidfd, and the
SIGCHLD fallback forced with ``CIRCUS_NO_PIDFD=1``):

* ``Process.spawn`` of ``sleep``: p50 per call; and with an rlimit set, which needs a preexec
  function and so subprocess's fork path instead of vfork (why circusd resets inherited signal
  state once at start instead of in every child, docs/daemon.md);
* SIGKILL -> ``exited`` resolved, p50, with 0 and with N other children alive (the SIGCHLD path
  polls every known child per signal, so it grows with N; the pidfd path does not);
* ``terminate`` of ``sh -c 'sleep 3600 & wait'`` (the shell dies on SIGTERM, its ``sleep`` is
  then ended with the group): p50 until the whole group is gone.

Usage: ``.venv/bin/python bench/bench_process.py [--quick] [--write]``. ``--quick`` (CI smoke
run) takes fewer samples and 100 background children instead of 500; ``--write`` puts the table
into docs/benchmarks.md (section ``process``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import signal
import time

from harness import fmt_ms, machine_line, median, table, write_section

from circus.process import Process, SpawnSpec

PATHS = {"pidfd": None, "SIGCHLD fallback": "1"}


def _set_path(value: str | None) -> None:
    if value is None:
        os.environ.pop("CIRCUS_NO_PIDFD", None)
    else:
        os.environ["CIRCUS_NO_PIDFD"] = value


async def _spawn_latency(count: int, rlimits: dict[int, int | None]) -> float:
    samples = []
    procs = []
    try:
        for _ in range(count):
            started = time.perf_counter()
            procs.append(Process.spawn(SpawnSpec(["sleep", "60"], rlimits=rlimits), 1))
            samples.append(time.perf_counter() - started)
    finally:
        await _end(procs)
    return median(samples)


async def _kill_notice(samples: int, background: int) -> float:
    others = [Process.spawn(SpawnSpec(["sleep", "600"]), 1) for _ in range(background)]
    latencies = []
    try:
        for _ in range(samples):
            proc = Process.spawn(SpawnSpec(["sleep", "60"]), 1)
            await asyncio.sleep(0.01)  # let it exec
            started = time.perf_counter()
            os.kill(proc.pid, signal.SIGKILL)
            await asyncio.wait_for(proc.exited, 20)
            latencies.append(time.perf_counter() - started)
    finally:
        await _end(others)
    return median(latencies)


async def _terminate_group(samples: int) -> float:
    durations = []
    for _ in range(samples):
        proc = Process.spawn(SpawnSpec(["sh", "-c", "sleep 3600 & wait"]), 1)
        await asyncio.sleep(0.05)  # the sleep is started
        started = time.perf_counter()
        done = await proc.terminate(signal.SIGTERM, 20)
        durations.append(time.perf_counter() - started)
        if done.forced:
            raise RuntimeError("the group needed SIGKILL: the measurement would be wrong")
    return median(durations)


async def _end(procs: list[Process]) -> None:
    await asyncio.wait_for(
        asyncio.gather(*(p.terminate(signal.SIGKILL, 5) for p in procs)), 60
    )


async def measure(quick: bool) -> dict[str, dict[str, float]]:
    spawns = 30 if quick else 200
    kills = 10 if quick else 50
    background = 100 if quick else 500
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    results: dict[str, dict[str, float]] = {}
    for name, value in PATHS.items():
        _set_path(value)
        results[name] = {
            "spawn": await _spawn_latency(spawns, {}),
            "spawn_preexec": await _spawn_latency(spawns, {resource.RLIMIT_NOFILE: soft}),
            "notice": await _kill_notice(kills, 0),
            "notice_loaded": await _kill_notice(kills, background),
            "terminate": await _terminate_group(max(5, kills // 2)),
        }
    _set_path(None)
    results["_"] = {"background": float(background), "hard": float(hard)}
    return results


def render(results: dict[str, dict[str, float]], quick: bool) -> str:
    background = int(results["_"]["background"])
    names = [n for n in results if n != "_"]
    rows = [
        ["`Process.spawn` of `sleep`, p50", *(fmt_ms(results[n]["spawn"]) for n in names)],
        ["same with an rlimit set (preexec, fork path), p50",
         *(fmt_ms(results[n]["spawn_preexec"]) for n in names)],
        ["SIGKILL -> exit noticed, p50", *(fmt_ms(results[n]["notice"]) for n in names)],
        [f"same with {background} other children alive, p50",
         *(fmt_ms(results[n]["notice_loaded"]) for n in names)],
        ["`terminate` of `sh -c 'sleep 3600 & wait'` until the group is gone, p50",
         *(fmt_ms(results[n]["terminate"]) for n in names)],
    ]
    mode = " --quick" if quick else ""
    return (
        f"Measured {machine_line()} (`bench/bench_process.py{mode}`).\n\n"
        + table(["", *names], rows)
        + "\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small CI smoke run")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    results = asyncio.run(measure(args.quick))
    text = render(results, args.quick)
    print(text)
    if args.write:
        write_section("process", text)


if __name__ == "__main__":
    main()
