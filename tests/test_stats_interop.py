"""The stats of our circusd read by the ORIGINAL Circus 0.19 tools: circus-top (in tmux, as a
person would run it) and circusctl's rendering of ``stats`` and ``dstats``."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from original_circus import OriginalCircus, run_original_circusctl

from circus.testing import CircusdProcess, kill_tree

TIMEOUT = 30.0
TOP_CODE = "import sys; sys.argv[0] = 'circus-top'; from circus.stats.client import main; main()"


@pytest.fixture
def stats_endpoint() -> Iterator[str]:
    folder = tempfile.mkdtemp(prefix="circus-top-")
    try:
        yield f"ipc://{folder}/stats.sock"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


class Tmux:
    """A tmux server of our own (``-L``), so other tests' sessions are never touched."""

    def __init__(self) -> None:
        self.socket = f"circus-stats-{uuid.uuid4().hex[:8]}"

    def run(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True, text=True, timeout=TIMEOUT, check=True,
        )  # fmt: skip
        return done.stdout

    def pane_pid(self) -> int:
        return int(self.run("display-message", "-p", "-t", "top", "#{pane_pid}").strip())

    def wait_screen(self, *needles: str) -> str:
        deadline = time.monotonic() + TIMEOUT
        while True:
            screen = self.run("capture-pane", "-p", "-t", "top")
            if all(needle in screen for needle in needles):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"never showed {needles}; the screen:\n{screen}")
            time.sleep(0.2)


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (apt-get install tmux)")
def test_original_circus_top_shows_our_watchers(
    original_circus: OriginalCircus, tmp_path: Path, stats_endpoint: str
) -> None:
    config = (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats_endpoint}\n\n"
        "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n\n"
        "[watcher:worker]\ncmd = sleep 121\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        web = daemon.call("list", name="web")["pids"]
        (worker,) = daemon.call("list", name="worker")["pids"]
        tmux = Tmux()
        command = f"{original_circus.python} -c \"{TOP_CODE}\" --endpoint {stats_endpoint}"
        tmux.run("new-session", "-d", "-s", "top", "-x", "120", "-y", "40", command)
        pane = tmux.pane_pid()
        try:
            screen = tmux.wait_screen(
                "Circus Top", "web", "worker", *map(str, web), str(worker),
                f"{daemon.pid} (circusd)", "(avg)", "(sum)",
            )  # fmt: skip
        finally:
            kill_tree(pane)
            with contextlib.suppress(subprocess.SubprocessError):
                tmux.run("kill-server")
    lines = screen.splitlines()
    assert any(line.startswith("web") for line in lines)
    assert any(line.startswith("worker") for line in lines)
    assert any(line.startswith("circus") for line in lines)
    assert "CPU (%)" in screen
    assert "MEMORY (%)" in screen


def test_original_circusctl_renders_our_stats_and_dstats(
    original_circus: OriginalCircus, tmp_path: Path
) -> None:
    config = "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n"
    with CircusdProcess(config, tmp_path) as daemon:
        pids = sorted(daemon.call("list", name="web")["pids"])
        every = run_original_circusctl(original_circus, daemon.endpoint, "stats")
        one = run_original_circusctl(original_circus, daemon.endpoint, "stats", "web")
        single = run_original_circusctl(
            original_circus, daemon.endpoint, "stats", "web", str(pids[0])
        )
        dstats = run_original_circusctl(original_circus, daemon.endpoint, "dstats")
    for done in (every, one, single, dstats):
        assert done.returncode == 0, done.stderr
        assert "Traceback" not in done.stderr
    assert every.stdout.splitlines()[0] == "web:"
    assert sorted(int(line.split(":")[0]) for line in one.stdout.splitlines()[1:]) == pids
    assert all("sleep" in line for line in one.stdout.splitlines()[1:])
    assert single.stdout.split()[:2] == [f"{pids[0]}:", str(pids[0])]
    assert dstats.stdout.splitlines()[0] == "Main Process:"
    assert str(daemon.pid) in dstats.stdout
