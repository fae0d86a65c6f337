"""Output throughput (issue 11): a process writing as fast as it can, through circusd or not.

One writer process writes 100-byte lines in 64 KiB blocks for the window (10 s, ``--quick``
1 s) and reports how many bytes it got written. Scenarios:

* **direct**: the writer alone, writing straight to a file (no circusd), rewound every 64 MB
  so that it measures writing into the page cache, not the disk: the ceiling;
* **ours, no stream**: our circusd pipes the output into the per-slot ring (``circusctl tail``)
  and copies it to its own stdout, as an inheriting child would have written;
* **ours, no stream, followed**: the same while ``circusctl tail -f`` follows the writer, so
  that every chunk is also published on the event channel;
* **ours, file stream**: ``stdout_stream.class = FileStream`` (ring included);
* **ours, file stream, no ring**: the same with ``output_lines = 0``: what the ring costs;
* **0.19, no stream**: the child inherits circusd's stdout (circusd never sees the bytes);
* **0.19, file stream**: 0.19's pipe + redirector + FileStream.

Through circusd every destination is ``/dev/null`` (the stream's file, circusd's stdout): the
figures then measure the supervisor, not the disk that eight people share today. Reported: bytes/s,
the ratio to direct, and circusd's CPU over the window (% of one core, from its cpu_times).

Usage: ``.venv/bin/python bench/bench_output.py [--quick] [--write]``; ``--write`` puts the
table into docs/benchmarks.md (section ``output``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from harness import (
    call_ok,
    machine_line,
    original,
    running,
    table,
    wait_pids,
    write_section,
)
from original_circus import start_original_circusd

from circus.client import CircusClient
from circus.testing import CircusdProcess, terminate

WRITER = """\
import json, os, sys, time
result, seconds, target = sys.argv[1], float(sys.argv[2]), sys.argv[3]
fd = 1 if target == "-" else os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
block = (b"x" * 99 + b"\\n") * 655
total = 0
start = time.monotonic()
end = start + seconds
while time.monotonic() < end:
    total += os.write(fd, block)
    if fd != 1 and total % (64 << 20) < len(block):
        os.lseek(fd, 0, os.SEEK_SET)  # a real file that stays within 64 MB of page cache
elapsed = time.monotonic() - start
with open(result + ".tmp", "w") as out:
    json.dump({"bytes": total, "seconds": elapsed}, out)
os.replace(result + ".tmp", result)
time.sleep(1000)
"""
FILE_STREAM = "stdout_stream.class = FileStream\nstdout_stream.filename = /dev/null\n"

Result = dict[str, float]


def _wait_result(path: Path, timeout: float) -> dict[str, float]:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"the writer reported nothing within {timeout} s")
        time.sleep(0.05)
    data: dict[str, float] = json.loads(path.read_text())
    return data


def direct(workdir: Path, window: float) -> Result:
    script = workdir / "writer.py"
    result = workdir / "direct.json"
    target = workdir / "direct.out"
    proc = psutil.Popen([sys.executable, str(script), str(result), str(window), str(target)])
    try:
        data = _wait_result(result, window + 60)
    finally:
        proc.kill()
        proc.wait(10)
    return {"rate": data["bytes"] / data["seconds"], "cpu": float("nan")}


def _config(workdir: Path, name: str, window: float, extra: str) -> tuple[str, Path]:
    """The watcher running the writer, and where it will report."""
    result = workdir / f"{name}.json"
    config = (f"[watcher:writer]\ncmd = {sys.executable} {workdir / 'writer.py'} {result} "
              f"{window} -\n{extra}")
    return config, result


def through(daemon_pid: int, endpoint: str, result: Path, window: float) -> Result:
    """Measure one running daemon whose writer has just been started."""
    with CircusClient(endpoint, timeout=30) as client:
        wait_pids(client, "writer", 1)
        proc = psutil.Process(daemon_pid)
        before = proc.cpu_times()
        start = time.monotonic()
        data = _wait_result(result, window + 60)
        wall = time.monotonic() - start
        after = proc.cpu_times()
        call_ok(client, "stop", name="writer", waiting=True)
    cpu = (after.user + after.system - before.user - before.system) / wall * 100
    return {"rate": data["bytes"] / data["seconds"], "cpu": cpu}


def ours(workdir: Path, name: str, window: float, extra: str) -> Result:
    config, result = _config(workdir, name, window, extra)
    daemon = CircusdProcess(config, workdir / name, start_timeout=60)
    daemon.log_path = Path(os.devnull)  # circusd's stdout: where "no stream" output is copied
    with running(daemon.start()):
        return through(daemon.pid, daemon.endpoint, result, window)


def ours_followed(workdir: Path, name: str, window: float, extra: str) -> Result:
    """As :func:`ours` while ``circusctl tail -f`` follows the writer (lines published)."""
    config, result = _config(workdir, name, window, extra)
    daemon = CircusdProcess(config, workdir / name, start_timeout=60)
    daemon.log_path = Path(os.devnull)
    with running(daemon.start()):
        follower = subprocess.Popen(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint,
             "tail", "-f", "writer", "-n", "0"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            return through(daemon.pid, daemon.endpoint, result, window)
        finally:
            terminate(follower)


def theirs(workdir: Path, name: str, window: float, extra: str) -> Result:
    config, result = _config(workdir, name, window, extra)
    directory = workdir / name
    directory.mkdir(parents=True)
    (directory / "circusd.log").symlink_to(os.devnull)  # the inheriting child writes here
    with running(start_original_circusd(original(), directory, config,
                                        startup_timeout=60)) as daemon:
        return through(daemon.pid, daemon.endpoint, result, window)


SCENARIOS: list[tuple[str, Callable[[Path, str, float, str], Result], str]] = [
    ("ours, no stream (ring + copy to circusd's stdout)", ours, ""),
    ("ours, no stream, followed by `circusctl tail -f`", ours_followed, ""),
    ("ours, file stream", ours, FILE_STREAM),
    ("ours, file stream, no ring (output_lines = 0)", ours, FILE_STREAM + "output_lines = 0\n"),
    ("ours, no stream, no ring (output_lines = 0: inherit)", ours, "output_lines = 0\n"),
    ("0.19, no stream (inherit)", theirs, ""),
    ("0.19, file stream", theirs, FILE_STREAM),
]


def _per_gb(got: Result) -> str:
    """circusd's CPU seconds per GB that went through it (what a chatty process costs)."""
    if got["cpu"] <= 0.5 or got["rate"] > 20e9:  # inherited: circusd never sees the bytes
        return "0"
    return f"{got['cpu'] / 100 / (got['rate'] / 1e9):.2f}"


def _mb(rate: float) -> str:
    return f"{rate / 1e6:,.0f} MB/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 s windows (CI smoke run)")
    parser.add_argument("--write", action="store_true", help="update docs/benchmarks.md")
    args = parser.parse_args()
    window = 1.0 if args.quick else 10.0
    machine = machine_line()
    with tempfile.TemporaryDirectory(prefix="bench-output-") as tmp:
        workdir = Path(tmp)
        (workdir / "writer.py").write_text(WRITER)
        base = direct(workdir, window)
        rows = [["direct: the writer alone, to the file", _mb(base["rate"]), "1.00", "-", "-"]]
        print(rows[0], flush=True)
        for index, (label, run, extra) in enumerate(SCENARIOS):
            got = run(workdir, f"s{index}", window, extra)
            rows.append([label, _mb(got["rate"]), f"{got['rate'] / base['rate']:.2f}",
                         f"{got['cpu']:.0f} %", _per_gb(got)])
            print(rows[-1], flush=True)
    load_end = os.getloadavg()[0]
    text = "\n".join([
        f"{machine}; load {load_end:.1f} at the end; window {window:g} s per scenario"
        + (" (--quick)" if args.quick else "") + ".",
        "",
        table(["writer's output goes", "throughput", "vs direct", "circusd CPU",
               "circusd CPU s per GB"], rows),
    ])
    print(text)
    if args.write:
        write_section("output", text)


if __name__ == "__main__":
    main()
