"""Process.spawn failures: a typed SpawnError with the OS cause, and no fd left behind."""

from __future__ import annotations

import asyncio
import errno
import os
import subprocess
import sys
from pathlib import Path

import pytest

from circus.errors import SpawnError
from circus.process import Process, SpawnSpec


def open_fds() -> set[int]:
    return {int(fd) for fd in os.listdir("/proc/self/fd")}


def spawn_error(spec: SpawnSpec) -> SpawnError:
    async def main() -> SpawnError:
        with pytest.raises(SpawnError) as info:
            Process.spawn(spec, 1)
        return info.value

    return asyncio.run(main())


def test_missing_program_is_enoent() -> None:
    exc = spawn_error(SpawnSpec(["/nonexistent/binary"]))
    assert isinstance(exc, OSError)  # callers catching OSError keep working
    assert exc.errno == errno.ENOENT
    assert exc.code == "ENOENT"
    assert str(exc) == "cannot start '/nonexistent/binary': No such file or directory (ENOENT)"


def test_not_executable_is_eacces(tmp_path: Path) -> None:
    script = tmp_path / "script.sh"
    script.write_text("#!/bin/sh\nexit 0\n")
    script.chmod(0o644)
    exc = spawn_error(SpawnSpec([str(script)]))
    if os.geteuid() == 0 and exc.errno != errno.EACCES:
        pytest.skip("root may execute files without the x bit on this system")
    assert exc.code == "EACCES"


def test_failed_spawns_leak_no_fd() -> None:
    async def main() -> None:
        before = open_fds()
        for _ in range(20):
            with pytest.raises(SpawnError):
                Process.spawn(SpawnSpec(["/nonexistent/binary"], stdout="pipe", stderr="pipe"), 1)
        assert open_fds() == before

    asyncio.run(main())


EMFILE_SCRIPT = r"""
import asyncio, os, resource
from circus.errors import SpawnError
from circus.process import Process, SpawnSpec

async def main():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
    hog = []
    while True:
        try:
            hog.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    for fd in hog[-2:]:   # room for one pipe, not for the second one nor the pidfd
        os.close(fd)
    del hog[-2:]
    before = sorted(os.listdir("/proc/self/fd"))
    try:
        Process.spawn(SpawnSpec(["true"], stdout="pipe", stderr="pipe"), 1)
    except SpawnError as exc:
        print(exc.code)
    else:
        print("spawned")
    after = sorted(os.listdir("/proc/self/fd"))
    print("same-fds" if before == after else f"leak {before} {after}")

asyncio.run(main())
"""


def test_fd_exhaustion_is_emfile_and_leaks_nothing() -> None:
    out = subprocess.run(
        [sys.executable, "-c", EMFILE_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["EMFILE", "same-fds"]
