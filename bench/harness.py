"""Shared pieces of the benchmarks: start OUR circusd and the ORIGINAL 0.19 the same way, record
events with receive times, summarise samples, print tables and write them into the docs.

Both daemons run the same INI text on ``ipc://`` endpoints in a temp dir; ours through
``circus.testing.CircusdProcess``, the original through ``tests/original_circus.py`` (which
installs it into ``.cache/circus-0.19`` on first use). Every wait here is bounded.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import re
import statistics
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
import zmq

ROOT = Path(__file__).resolve().parents[1]
BENCH_DIR = Path(__file__).resolve().parent
DOC = ROOT / "docs" / "benchmarks.md"
README = ROOT / "README.md"
sys.path.insert(0, str(ROOT / "tests"))

from original_circus import (  # noqa: E402
    OriginalCircus,
    ensure_original_circus,
    start_original_circusd,
)

from circus.client import CircusClient  # noqa: E402
from circus.testing import CircusdProcess  # noqa: E402

OURS, ORIGINAL = "ours", "original 0.19"


class Daemon(Protocol):
    endpoint: str
    pubsub_endpoint: str

    @property
    def pid(self) -> int: ...

    def stop(self, timeout: float = ...) -> Any: ...


@dataclass
class Side:
    """One implementation under test: how to start its circusd."""

    label: str
    start: Callable[..., Daemon]


def sides(installed: OriginalCircus, workdir: Path) -> list[Side]:
    counter = iter(range(1_000_000))

    def ours(config: str, *, check_delay: float | None = None,
             env: dict[str, str] | None = None, start_timeout: float = 60.0) -> Daemon:
        directory = workdir / f"ours-{next(counter)}"
        return CircusdProcess(
            config, directory, check_delay=check_delay,
            env={**os.environ, **(env or {})}, start_timeout=start_timeout,
        ).start()

    def original(config: str, *, check_delay: float | None = None,
                 env: dict[str, str] | None = None, start_timeout: float = 60.0) -> Daemon:
        directory = workdir / f"orig-{next(counter)}"
        options = {} if check_delay is None else {"check_delay": check_delay}
        return start_original_circusd(installed, directory, config, circus_options=options,
                                      startup_timeout=start_timeout, env=env)

    return [Side(OURS, ours), Side(ORIGINAL, original)]


@contextlib.contextmanager
def running(daemon: Daemon) -> Iterator[Daemon]:
    try:
        yield daemon
    finally:
        with contextlib.suppress(Exception):
            daemon.stop(60.0)


# -- events ---------------------------------------------------------------------------------------

@dataclass
class Recorder:
    """A SUB socket on its own thread, keeping ``(monotonic receive time, topic, payload)``."""

    endpoint: str
    topics: tuple[str, ...] = ("watcher.",)
    events: list[tuple[float, str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Recorder:
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("recorder thread did not start")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        ctx: zmq.Context[zmq.Socket[bytes]] = zmq.Context()
        sock = ctx.socket(zmq.SUB)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.RCVHWM, 0)
        for topic in self.topics:
            sock.setsockopt(zmq.SUBSCRIBE, topic.encode())
        sock.connect(self.endpoint)
        self._ready.set()
        try:
            while not self._stop.is_set():
                if not sock.poll(50):
                    continue
                while True:
                    try:
                        frames = sock.recv_multipart(zmq.NOBLOCK)
                    except zmq.Again:
                        break
                    if len(frames) == 2:
                        self.events.append(
                            (time.monotonic(), frames[0].decode(), json.loads(frames[1]))
                        )
        finally:
            sock.close(0)
            ctx.term()

    def matching(self, action: str, watcher: str | None = None,
                 since: float = 0.0) -> list[tuple[float, str, dict[str, Any]]]:
        suffix = f".{action}"
        prefix = f"watcher.{watcher}." if watcher else "watcher."
        return [e for e in list(self.events)
                if e[0] >= since and e[1].startswith(prefix) and e[1].endswith(suffix)]

    def seen(self, action: str, watcher: str | None = None, since: float = 0.0) -> bool:
        return bool(self.matching(action, watcher, since))

    def wait(self, predicate: Callable[[], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not predicate():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    def prime(self, client: CircusClient, watcher: str, timeout: float = 20.0) -> None:
        """Make sure the subscription is live: no-op ``set`` until its ``updated`` arrives."""
        value = client.call("get", name=watcher, keys=["graceful_timeout"])["options"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            mark = time.monotonic()
            client.call("set", name=watcher, options=value)
            if self.wait(functools.partial(self.seen, "updated", watcher, mark), 0.3):
                return
        raise RuntimeError(f"no 'updated' event from {watcher} within {timeout} s")


def call_ok(client: CircusClient, command: str, timeout: float = 60.0,
            **props: Any) -> dict[str, Any]:
    """A call that must succeed; repeated while 0.19 rejects it with a lock conflict (C3)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = client.call(command, **props)
        if reply.get("status") != "error":
            return reply
        if "already running" not in str(reply.get("reason")) or time.monotonic() > deadline:
            raise RuntimeError(f"{command} {props} failed: {reply.get('reason')}")
        time.sleep(0.05)


def wait_pids(client: CircusClient, watcher: str, count: int, timeout: float = 30.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while True:
        pids = list(client.call("list", name=watcher)["pids"])
        if len(pids) >= count:
            return pids
        if time.monotonic() > deadline:
            raise RuntimeError(f"{watcher}: {len(pids)}/{count} processes after {timeout} s")
        time.sleep(0.02)


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 1024 / 1024


# -- numbers and tables ---------------------------------------------------------------------------

def percentile(samples: list[float], q: float) -> float:
    if not samples:
        return float("nan")
    ordered = sorted(samples)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def median(samples: list[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def fmt_ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    ms = seconds * 1000
    if ms >= 1000:
        return f"{seconds:.2f} s"
    return f"{ms:.2f} ms" if ms < 100 else f"{ms:.0f} ms"


def ratio(numerator: float, denominator: float, digits: int = 1) -> str:
    """``numerator / denominator`` as a table cell (``"8.0x"``, ``"2,320x"``), ``"n/a"`` when
    either side is missing (NaN) or the denominator is 0. ``digits``: decimals below 100x (the
    daemon tables keep two, as they were first published with)."""
    if not denominator or math.isnan(numerator) or math.isnan(denominator):
        return "n/a"
    value = numerator / denominator
    return f"{value:,.0f}x" if value >= 100 else f"{value:.{digits}f}x"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def machine_line() -> str:
    cpus = os.cpu_count() or 0
    load = os.getloadavg()[0]
    return (f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {cpus} CPUs, "
            f"load {load:.1f} at start, Python {sys.version.split()[0]}")


def _replace_block(current: str, name: str, text: str) -> str | None:
    """``current`` with the block between ``<!-- bench:NAME -->`` markers replaced (``None``
    when it has no such block)."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    pattern = re.compile(re.escape(begin) + r".*?" + re.escape(end), re.DOTALL)
    if not pattern.search(current):
        return None
    return pattern.sub(lambda _: block, current)


def write_section(name: str, text: str, doc: Path = DOC, readme: Path = README) -> None:
    """Replace the block between ``<!-- bench:NAME -->`` markers in docs/benchmarks.md (added
    at the end when missing), and in the README when it has that block: the README's tables
    are written by the scripts that measure them, never copied by hand."""
    current = doc.read_text() if doc.exists() else "# Benchmarks\n"
    updated = _replace_block(current, name, text)
    if updated is None:
        updated = current.rstrip("\n") + f"\n\n<!-- bench:{name} -->\n{text.strip()}\n" \
            f"<!-- /bench:{name} -->\n"
    doc.write_text(updated)
    if readme.exists():
        mirrored = _replace_block(readme.read_text(), name, text)
        if mirrored is not None:
            readme.write_text(mirrored)


def update_rows(name: str, rows: list[list[str]], note: str, doc: Path = DOC,
                readme: Path = README) -> None:
    """Replace, in the table between the ``NAME`` markers, only the rows measured anew
    (matched by their first cell), and say so below the table with ``note``: what a run of
    some scenarios (``--only``) writes, so that the rows it did not measure keep their figures
    next to the date they were measured at. A note that named one of these rows before is
    dropped. The README's block is updated the same way when it has one. ``ValueError`` when
    the block or one of the rows is missing from ``doc`` (a full run writes those)."""
    updated = _update_block(doc.read_text() if doc.exists() else "", name, rows, note)
    if updated is None:
        raise ValueError(f"{doc.name} has no bench:{name} table with the rows "
                         f"{[row[0] for row in rows]}: run every scenario to write it")
    doc.write_text(updated)
    if readme.exists():
        mirrored = _update_block(readme.read_text(), name, rows, note)
        if mirrored is not None:
            readme.write_text(mirrored)


def _update_block(current: str, name: str, rows: list[list[str]], note: str) -> str | None:
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    start, stop = current.find(begin), current.find(end)
    if start < 0 or stop < start:
        return None
    lines = current[start + len(begin):stop].strip("\n").split("\n")
    for row in rows:
        prefix = f"| {row[0]} |"
        found = [index for index, line in enumerate(lines) if line.startswith(prefix)]
        if not found:
            return None
        lines[found[0]] = "| " + " | ".join(row) + " |"
    lines = [line for line in lines if not (line.startswith("Re-measured")
                                            and any(row[0] in line for row in rows))]
    while lines and not lines[-1]:
        lines.pop()
    lines += ["", note.strip()]
    block = "\n".join([begin, *lines, end])
    return current[:start] + block + current[stop + len(end):]


def original() -> OriginalCircus:
    return ensure_original_circus()
