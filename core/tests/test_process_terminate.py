"""Process.terminate: the stop signal, then the whole process group, SIGKILL at the deadline.

Real children only: shells whose grandchildren stay in (or leave) the group, children that
ignore the stop signal. Every wait is bounded; the autouse fixture kills what a failed test left.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import kill_tree, wait_dead

from circus.process import Process, SpawnSpec, group_has_live_members

TIMEOUT = 20
#: every test runs with pidfds and with the SIGCHLD fallback (core/tests/conftest.py)
pytestmark = pytest.mark.usefixtures("exit_path")
SPAWNED: list[Process] = []
STRAYS: list[int] = []


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    yield
    for proc in SPAWNED:
        kill_tree(proc.pid)
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
    for pid in STRAYS:
        kill_tree(pid)
    SPAWNED.clear()
    STRAYS.clear()


def run(coro: object) -> object:
    return asyncio.run(asyncio.wait_for(coro, 90))  # type: ignore[arg-type]


async def spawn_with_child(script: str, pidfile: Path) -> tuple[Process, int]:
    """Spawn ``sh -c script``; the script writes a grandchild's pid into ``pidfile``."""
    proc = Process.spawn(SpawnSpec(["sh", "-c", script]), 1)
    SPAWNED.append(proc)
    deadline = time.monotonic() + TIMEOUT
    while not pidfile.exists() or not pidfile.read_text().strip().isdigit():
        assert time.monotonic() < deadline, "the grandchild never started"
        await asyncio.sleep(0.01)
    child = int(pidfile.read_text())
    STRAYS.append(child)
    return proc, child


def test_shell_grandchild_is_stopped_with_the_group(tmp_path: Path) -> None:
    """``sh -c 'sleep 3600; true'`` with stop_children = false: 0.19 left the sleep running."""
    pidfile = tmp_path / "child"

    async def main() -> None:
        proc, child = await spawn_with_child(
            f"sleep 3600 & echo $! > {pidfile}; wait; true", pidfile
        )
        sent: list[tuple[int, int]] = []
        before = time.monotonic()
        done = await proc.terminate(
            signal.SIGTERM, TIMEOUT, on_signal=lambda p, s: sent.append((p, s))
        )
        assert time.monotonic() - before < TIMEOUT / 2  # nobody waited for the deadline
        assert not done.forced
        assert not done.killed
        assert not done.survived
        assert done.signalled == [proc.pid]
        assert sent == [(proc.pid, signal.SIGTERM)]
        assert proc.returncode == -signal.SIGTERM
        assert wait_dead(child, 5)
        assert not group_has_live_members(proc.pgid)  # zombies may wait for their reaper

    run(main())


def test_leader_ignoring_the_stop_signal_is_killed_with_its_group(tmp_path: Path) -> None:
    pidfile = tmp_path / "child"

    async def main() -> None:
        proc, child = await spawn_with_child(
            f"trap '' TERM; sleep 3600 & echo $! > {pidfile}; wait", pidfile
        )
        before = time.monotonic()
        done = await proc.terminate(signal.SIGTERM, 0.5)
        assert time.monotonic() - before >= 0.5
        assert done.forced
        assert not done.survived
        assert done.killed == [proc.pid, child]  # the group, descendants named for events
        assert proc.returncode == -signal.SIGKILL
        assert wait_dead(child, 5)
        assert not group_has_live_members(proc.pgid)  # zombies may wait for their reaper

    run(main())


def test_group_member_outliving_the_leader_gets_sigkill_at_the_deadline(tmp_path: Path) -> None:
    """The leader dies at once, a member ignores TERM: SIGKILL to the group at the deadline."""
    pidfile = tmp_path / "child"

    async def main() -> None:
        proc, child = await spawn_with_child(
            # the member writes its pid once its trap is set (no race with the stop signal)
            f"sh -c 'trap \"\" TERM; echo $$ > {pidfile}; exec sleep 3600' & wait",
            pidfile,
        )
        done = await proc.terminate(signal.SIGTERM, 0.5)
        assert proc.returncode == -signal.SIGTERM
        assert done.forced
        assert not done.survived
        assert done.killed == []  # the leader was already gone: only the group got SIGKILL
        assert wait_dead(child, 5)

    run(main())


def test_no_stop_signal_when_vetoed_then_sigkill(tmp_path: Path) -> None:
    async def main() -> None:
        proc = Process.spawn(SpawnSpec(["sleep", "3600"]), 1)
        SPAWNED.append(proc)
        done = await proc.terminate(None, 0.2)
        assert done.signalled == []
        assert done.forced
        assert proc.returncode == -signal.SIGKILL

    run(main())


def test_children_reaches_descendants_that_left_the_group(tmp_path: Path) -> None:
    """stop_children = true also stops a descendant in its own session (it escaped the group)."""
    pidfile = tmp_path / "child"

    async def main() -> None:
        proc, child = await spawn_with_child(
            f"setsid sleep 3600 & echo $! > {pidfile}; wait", pidfile
        )
        deadline = time.monotonic() + TIMEOUT
        while os.getpgid(child) == proc.pid:  # setsid execs sleep after our pidfile read
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        done = await proc.terminate(signal.SIGTERM, TIMEOUT, children=True)
        assert not done.forced
        assert set(done.signalled) == {proc.pid, child}
        assert wait_dead(child, 5)

    run(main())


def test_terminate_of_an_exited_process_returns_at_once() -> None:
    async def main() -> None:
        proc = Process.spawn(SpawnSpec(["true"]), 1)
        SPAWNED.append(proc)
        await asyncio.wait_for(proc.exited, TIMEOUT)
        before = time.monotonic()
        done = await proc.terminate(signal.SIGTERM, TIMEOUT)
        assert time.monotonic() - before < 1
        assert done.signalled == []
        assert not done.forced

    run(main())


SUBREAPER_SCRIPT = r"""
import asyncio, ctypes, signal, time
from circus.process import Process, SpawnSpec, group_has_live_members

ctypes.CDLL(None, use_errno=True).prctl(36, 1)  # PR_SET_CHILD_SUBREAPER, like a container init

async def main():
    proc = Process.spawn(SpawnSpec(["sh", "-c", "sleep 3600 & echo; wait"], stdout="pipe"), 1)
    await asyncio.sleep(0.3)
    started = time.monotonic()
    done = await proc.terminate(signal.SIGTERM, 10)
    print(done.forced, time.monotonic() - started < 5)

asyncio.run(main())
"""


def test_orphaned_members_adopted_as_subreaper_are_reaped(exit_path: str) -> None:
    """As PID 1 or a subreaper circusd adopts the group's orphans: their zombies must not keep
    the group "alive" until SIGKILL (stop of a shell-wrapped watcher in a container)."""
    env = {**os.environ, "CIRCUS_NO_PIDFD": "1"} if exit_path == "sigchld" else None
    out = subprocess.run(
        [sys.executable, "-c", SUBREAPER_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1].split() == ["False", "True"]  # (logs come first)
