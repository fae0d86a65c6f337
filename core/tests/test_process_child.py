"""circus.process: real children, exits noticed through pidfds, signals to whole trees."""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import kill_tree, pid_state, wait_dead

from circus.errors import SpawnError
from circus.process import Process, SpawnSpec

TIMEOUT = 20
#: every test runs with pidfds and with the SIGCHLD fallback (core/tests/conftest.py)
pytestmark = pytest.mark.usefixtures("exit_path")
SPAWNED: list[Process] = []


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    """A failed test must not leave children behind."""
    yield
    for proc in SPAWNED:
        kill_tree(proc.pid)
    SPAWNED.clear()


def spawn(spec: SpawnSpec, **kwargs: Any) -> Process:
    proc = Process.spawn(spec, 1, **kwargs)
    SPAWNED.append(proc)
    return proc


def run(coro: object) -> object:
    return asyncio.run(asyncio.wait_for(coro, 60))  # type: ignore[arg-type]


def test_exit_code_and_callback_without_polling() -> None:
    async def main() -> None:
        exits: list[Process] = []
        proc = spawn(SpawnSpec(["sh", "-c", "exit 7"]), on_exit=exits.append)
        code = await asyncio.wait_for(proc.exited, TIMEOUT)
        assert code == 7
        assert exits == [proc]
        assert not proc.alive
        # reaped at once: the pid is not a zombie
        assert pid_state(proc.pid) is None

    run(main())


def test_exit_by_signal_is_minus_signum_and_fast() -> None:
    async def main() -> None:
        proc = spawn(SpawnSpec(["sleep", "60"]))
        assert proc.alive
        before = time.monotonic()
        assert proc.send_signal(signal.SIGKILL)
        code = await asyncio.wait_for(proc.exited, TIMEOUT)
        assert code == -9
        assert time.monotonic() - before < 1.0
        assert not proc.send_signal(signal.SIGTERM)  # gone: nothing sent

    run(main())


def test_output_is_delivered_before_exit() -> None:
    async def main() -> None:
        chunks: list[tuple[str, int, bytes]] = []
        spec = SpawnSpec(["sh", "-c", "echo out; echo err >&2"], stdout="pipe", stderr="pipe")
        proc = spawn(spec, on_output=lambda n, p, d: chunks.append((n, p, d)))
        await asyncio.wait_for(proc.exited, TIMEOUT)
        got = {
            name: b"".join(d for n, _, d in chunks if n == name) for name in ("stdout", "stderr")
        }
        assert got == {"stdout": b"out\n", "stderr": b"err\n"}
        assert {p for _, p, _ in chunks} == {proc.pid}

    run(main())


def test_env_cwd_rlimits_and_new_session(tmp_path: Path) -> None:
    async def main() -> None:
        chunks: list[bytes] = []
        spec = SpawnSpec(
            ["sh", "-c", 'echo "$FOO"; pwd; ulimit -n; ps -o sid= -p $$'],
            env={"FOO": "bar baz", "PATH": os.environ["PATH"]},
            cwd=str(tmp_path),
            rlimits={resource.RLIMIT_NOFILE: 123},
            stdout="pipe",
        )
        proc = spawn(spec, on_output=lambda n, p, d: chunks.append(d))
        assert await asyncio.wait_for(proc.exited, TIMEOUT) == 0
        lines = b"".join(chunks).decode().split("\n")
        assert lines[0] == "bar baz"
        assert lines[1] == str(tmp_path)
        assert lines[2] == "123"
        assert int(lines[3]) == proc.pid  # session leader: setsid happened

    run(main())


@pytest.mark.skipif(os.geteuid() != 0, reason="switching user needs root")
def test_uid_gid_when_root() -> None:
    async def main() -> None:
        chunks: list[bytes] = []
        spec = SpawnSpec(["sh", "-c", "id -u; id -g"], uid=65534, gid=65534, stdout="pipe")
        proc = spawn(spec, on_output=lambda n, p, d: chunks.append(d))
        assert await asyncio.wait_for(proc.exited, TIMEOUT) == 0
        assert b"".join(chunks).split() == [b"65534", b"65534"]

    run(main())


def test_signal_tree_reaches_grandchildren_even_after_parent_dies(tmp_path: Path) -> None:
    pidfile = tmp_path / "grandchild"

    async def main() -> None:
        script = f"trap '' TERM; sleep 300 & echo $! > {pidfile}; wait"
        proc = spawn(SpawnSpec(["sh", "-c", script]))
        deadline = time.monotonic() + TIMEOUT
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        grandchild = int(pidfile.read_text())
        assert grandchild in [p.pid for p in proc.descendants()]
        reached = proc.signal_tree(signal.SIGKILL)
        assert reached[0] == proc.pid
        assert grandchild in reached
        assert await asyncio.wait_for(proc.exited, TIMEOUT) == -9
        assert wait_dead(grandchild)

    run(main())


def test_executable_is_honoured() -> None:
    async def main() -> None:
        chunks: list[bytes] = []
        spec = SpawnSpec(["not-a-program", "hello"], executable="/bin/echo", stdout="pipe")
        proc = spawn(spec, on_output=lambda n, p, d: chunks.append(d))
        assert await asyncio.wait_for(proc.exited, TIMEOUT) == 0
        assert b"".join(chunks) == b"hello\n"

    run(main())


def test_exit_path_is_the_one_asked_for(exit_path: str) -> None:
    async def main() -> None:
        proc = spawn(SpawnSpec(["sleep", "60"]))
        assert (proc._pidfd >= 0) == (exit_path == "pidfd")
        proc.send_signal(signal.SIGKILL)
        assert await asyncio.wait_for(proc.exited, TIMEOUT) == -9

    run(main())


def test_foreign_children_are_not_reaped(exit_path: str) -> None:
    """Only our own pids are waited for: another child of this process stays its owner's to
    reap (its exit status is still there for it), on both exit paths."""

    async def main() -> None:
        foreign = subprocess.Popen(["sh", "-c", "exit 3"])
        deadline = time.monotonic() + TIMEOUT
        while pid_state(foreign.pid) != "Z":  # exited, not reaped yet
            assert time.monotonic() < deadline
            await asyncio.sleep(0.01)
        proc = spawn(SpawnSpec(["sh", "-c", "exit 4"]))
        assert await asyncio.wait_for(proc.exited, TIMEOUT) == 4  # SIGCHLD handled meanwhile
        assert pid_state(foreign.pid) == "Z"
        assert foreign.wait(TIMEOUT) == 3

    run(main())


def test_many_quick_exits_are_all_noticed_and_reaped(exit_path: str) -> None:
    """SIGCHLD coalesces: 50 children exiting together are still each noticed, none left."""

    async def main() -> None:
        procs = [spawn(SpawnSpec(["true"])) for _ in range(50)]
        codes = await asyncio.wait_for(asyncio.gather(*(p.exited for p in procs)), TIMEOUT)
        assert codes == [0] * 50
        assert all(pid_state(p.pid) is None for p in procs)

    run(main())


@pytest.mark.parametrize("exit_path", ["sigchld"], indirect=True)  # pidfds work in any thread
def test_sigchld_path_outside_the_main_thread_is_a_spawn_error(exit_path: str) -> None:
    """Without pidfds a loop in another thread cannot get SIGCHLD: the spawn fails cleanly
    (SpawnError, child killed and reaped, no fd left) instead of leaving a child unwatched."""
    result: list[object] = []

    async def main() -> None:
        before = sorted(os.listdir("/proc/self/fd"))
        try:
            Process.spawn(SpawnSpec(["sleep", "60"], stdout="pipe"), 1)
        except SpawnError as exc:
            result.append(exc.code)
        result.append(sorted(os.listdir("/proc/self/fd")) == before)

    thread = threading.Thread(target=lambda: asyncio.run(main()))
    thread.start()
    thread.join(TIMEOUT)
    assert result == ["ENOSYS", True]
