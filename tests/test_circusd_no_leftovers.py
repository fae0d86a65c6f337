"""End to end: no process left behind (issue 8 item 4).

A shell-wrapped command (``sh -c 'sleep 3600; true'``) with the default ``stop_children = false``
left its ``sleep`` running after every stop, quit and SIGHUP in 0.19 (and here before the group
kill). Each test finds the grandchildren, acts, and checks every one of them is dead.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from circus.testing import CircusdProcess, EventCollector, wait_dead

SHELL_WRAPPED = """\
[watcher:wrapped]
cmd = sh -c 'sleep 3600; true'
numprocesses = 2
graceful_timeout = 20
"""


def sleeps_of(daemon: CircusdProcess, count: int, timeout: float = 20.0) -> list[int]:
    """Pids of the ``sleep`` grandchildren once ``count`` of them run (bounded wait)."""
    deadline = time.monotonic() + timeout
    while True:
        found = [p.pid for p in daemon.children() if _name(p) == "sleep"]
        if len(found) >= count:
            return found
        assert time.monotonic() < deadline, f"only {found} of {count} sleep processes started"
        time.sleep(0.02)


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return ""


def assert_all_dead(pids: list[int]) -> None:
    left = [pid for pid in pids if not wait_dead(pid, 10)]
    assert not left, f"stray processes left running: {left}"


def test_stop_ends_the_shells_grandchildren(tmp_path: Path) -> None:
    with CircusdProcess(SHELL_WRAPPED, tmp_path) as daemon:
        sleeps = sleeps_of(daemon, 2)
        started = time.monotonic()
        daemon.call("stop", name="wrapped", waiting=True)
        assert time.monotonic() - started < 10  # no graceful_timeout wait: they went on TERM
        assert_all_dead(sleeps)


def test_sighup_reload_ends_the_old_grandchildren(tmp_path: Path) -> None:
    with (
        CircusdProcess(SHELL_WRAPPED, tmp_path) as daemon,
        EventCollector(daemon.pubsub_endpoint) as ev,
    ):
        ev.wait_ready(daemon, "wrapped")
        for _ in range(3):
            old = sleeps_of(daemon, 2)
            old_pids = daemon.call("list", name="wrapped")["pids"]
            spawned = sum(1 for t, _ in ev.events if t == "watcher.wrapped.spawn")
            os.kill(daemon.pid, signal.SIGHUP)
            ev.wait_count(lambda t, p: t == "watcher.wrapped.spawn", spawned + 2)
            assert_all_dead(old)
            new_pids = daemon.call("list", name="wrapped")["pids"]
            assert not set(new_pids) & set(old_pids)
        assert len(sleeps_of(daemon, 2)) == 2  # 2 copies, not 2 + 6 strays as in 0.19


def test_quit_ends_the_shells_grandchildren(tmp_path: Path) -> None:
    daemon = CircusdProcess(SHELL_WRAPPED, tmp_path).start()
    try:
        sleeps = sleeps_of(daemon, 2)
    finally:
        code = daemon.stop()  # raises when a descendant of circusd outlived it
    assert code == 0
    assert_all_dead(sleeps)
