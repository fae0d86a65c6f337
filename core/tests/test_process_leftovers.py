"""circus.leftovers: the state file of spawned groups, and ending a dead circusd's leftovers.

Real processes stand for the leftovers; the state files are written by ChildRegistry itself
or by hand to forge what a recycled pid or a live owner looks like.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest
from support import wait_dead

from circus.leftovers import ChildRegistry, end_leftovers, runtime_dir, state_path
from circus.process import Process, SpawnSpec

STARTED: list[subprocess.Popen[bytes]] = []


@pytest.fixture(autouse=True)
def _cleanup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("CIRCUS_RUNTIME_DIR", str(tmp_path / "run"))
    yield
    for popen in STARTED:
        with contextlib.suppress(OSError):
            os.killpg(popen.pid, signal.SIGKILL)
        popen.wait(10)
    STARTED.clear()


def group(script: str) -> subprocess.Popen[bytes]:
    popen = subprocess.Popen(["sh", "-c", script], start_new_session=True)
    STARTED.append(popen)
    return popen


def started(pid: int) -> float:
    return psutil.Process(pid).create_time()


def write_state(path: Path, owner: tuple[int, float], groups: list[list[float]]) -> None:
    data = {
        "format": 1,
        "endpoint": "x",
        "circusd": {"pid": owner[0], "started": owner[1]},
        "groups": groups,
    }
    path.write_text(json.dumps(data))


async def written(path: Path, count: int) -> list[list[float]]:
    """The groups of the state file once it lists ``count`` of them (bounded wait)."""
    deadline = time.monotonic() + 20
    while True:
        if path.exists():
            groups: list[list[float]] = json.loads(path.read_text())["groups"]
            if len(groups) == count:
                return groups
        assert time.monotonic() < deadline, "the state file was not written"
        await asyncio.sleep(0.01)


def test_registry_tracks_spawned_children_and_removes_the_file_on_close() -> None:
    async def main() -> None:
        path = state_path("ipc:///tmp/x.sock")
        registry = ChildRegistry(path, "ipc:///tmp/x.sock")
        Process.tracker = registry
        try:
            procs = [Process.spawn(SpawnSpec(["sleep", "60"]), w) for w in (1, 2)]
            groups = await written(path, 2)  # the write comes FLUSH_DELAY later
            assert sorted(pid for pid, _ in groups) == sorted(p.pid for p in procs)
            assert dict(groups)[procs[0].pid] == started(procs[0].pid)
            await procs[0].terminate(signal.SIGTERM, 10)
            assert [pid for pid, _ in await written(path, 1)] == [procs[1].pid]
            await procs[1].terminate(signal.SIGTERM, 10)
        finally:
            Process.tracker = None
        registry.close()
        assert not path.exists()

    asyncio.run(asyncio.wait_for(main(), 60))


def test_leftover_groups_are_ended_but_recycled_pids_are_not(tmp_path: Path) -> None:
    ours = group("sleep 3600 & wait")
    stranger = group("sleep 3600")
    path = tmp_path / "state.json"
    dead_owner = (2**22 + 1, 1.0)  # no such pid
    write_state(
        path,
        dead_owner,
        [
            [ours.pid, started(ours.pid)],
            [stranger.pid, started(stranger.pid) - 5],  # same pid, another start: recycled
        ],
    )
    grandchildren = psutil.Process(ours.pid).children()
    ended = asyncio.run(asyncio.wait_for(end_leftovers(path, grace=10), 60))
    assert ended == [ours.pid]
    assert ours.wait(10) == -signal.SIGTERM
    for child in grandchildren:
        assert wait_dead(child.pid, 10)
    assert stranger.poll() is None  # untouched


def test_stubborn_leftovers_get_sigkill_after_the_grace(tmp_path: Path) -> None:
    ready = tmp_path / "ready"
    stubborn = group(f"trap '' TERM; sleep 3600 & echo ok > {ready}; wait")
    deadline = time.monotonic() + 20
    while not ready.exists() or not ready.read_text():  # the trap is in place from here on
        assert time.monotonic() < deadline
        time.sleep(0.01)
    path = tmp_path / "state.json"
    write_state(path, (2**22 + 1, 1.0), [[stubborn.pid, started(stubborn.pid)]])
    assert asyncio.run(asyncio.wait_for(end_leftovers(path, grace=0.3), 60)) == [stubborn.pid]
    assert stubborn.wait(10) == -signal.SIGKILL


def test_a_live_owner_keeps_its_children(tmp_path: Path) -> None:
    child = group("sleep 3600")
    owner = group("sleep 3600")  # stands for the circusd still running on this endpoint
    path = tmp_path / "state.json"
    write_state(path, (owner.pid, started(owner.pid)), [[child.pid, started(child.pid)]])
    assert asyncio.run(asyncio.wait_for(end_leftovers(path), 60)) == []
    assert child.poll() is None


def test_runtime_dir_writable_by_others_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    unsafe = tmp_path / "unsafe"
    unsafe.mkdir()
    unsafe.chmod(0o777)
    monkeypatch.setenv("CIRCUS_RUNTIME_DIR", str(unsafe))
    with pytest.raises(Exception, match="writable by other users"):
        runtime_dir()
