"""End to end: no process left behind (issue 8 item 4).

A shell-wrapped command (``sh -c 'sleep 3600; true'``) with the default ``stop_children = false``
left its ``sleep`` running after every stop, quit and SIGHUP in 0.19 (and here before the group
kill). Each test finds the grandchildren, acts, and checks every one of them is dead.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import psutil
from support import wait_dead

from circus.testing import CircusdProcess, EventCollector

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


def _matching(marker: str) -> list[psutil.Process]:
    """Every live process on the machine whose command line holds ``marker``."""
    found = []
    for proc in psutil.process_iter(["cmdline", "status"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["status"] != psutil.STATUS_ZOMBIE and any(marker in a for a in cmdline):
            found.append(proc)
    return found


def _count_settles(marker: str, expected: int, timeout: float = 20.0) -> list[psutil.Process]:
    """Wait (bounded) until exactly ``expected`` processes carry ``marker``, then re-check."""
    deadline = time.monotonic() + timeout
    while True:
        found = _matching(marker)
        if len(found) == expected:
            time.sleep(0.3)  # a duplicate still being forked would show up now
            again = _matching(marker)
            if len(again) == expected:
                return again
        assert time.monotonic() < deadline, f"{len(found)} processes with {marker!r}: {found}"
        time.sleep(0.05)


def test_restart_after_kill9_ends_the_leftovers(tmp_path: Path) -> None:
    """kill -9 of circusd, restart on the same config: exactly numprocesses copies of each
    process and one of each plugin run (0.19 and we before: 4 sleeps, 2 plugins)."""
    worker = tmp_path / "worker.sh"
    worker.write_text("sleep 3600 & wait\n")
    config = (
        f"[watcher:worker]\ncmd = sh {worker}\nnumprocesses = 2\n\n"
        "[plugin:flapping]\nuse = flapping\n"
    )
    runtime = tmp_path / "run"
    env = {**os.environ, "CIRCUS_RUNTIME_DIR": str(runtime)}
    seen: list[psutil.Process] = []
    first = CircusdProcess(config, tmp_path, env=env).start()
    try:
        plugin_marker = first.endpoint  # the plugin's argv names the control endpoint
        seen += _count_settles(str(worker), 2) + _count_settles(plugin_marker, 1)
        os.kill(first.pid, signal.SIGKILL)
        assert first.popen is not None
        first.popen.wait(10)
        # the orphans still run: this is what the next circusd has to clean up
        assert len(_matching(str(worker))) == 2
        with CircusdProcess(config, tmp_path, env=env) as second:
            assert second.endpoint == first.endpoint
            now = _count_settles(str(worker), 2) + _count_settles(plugin_marker, 1)
            seen += now
            assert not {p.pid for p in now} & {p.pid for p in seen[: len(now)]}
            assert len(second.call("list", name="worker")["pids"]) == 2
            assert "left running by a circusd that died" in second.log_text()
        assert not list(runtime.iterdir())  # clean exit: the state file is gone
    finally:
        first.kill()
        for proc in [*seen, *_matching(str(worker))]:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)  # each leads its group: sh and its sleep
