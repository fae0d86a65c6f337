"""Output tailing end to end: a real circusd, real children writing, the real circusctl.

``tail -f`` must keep following across a crash and a ``restart``, ``logs`` must prefix every
line with ``watcher[wid]``, the rings must stay bounded under a process writing as fast as it
can, and ``status -l`` must show what the daemon really runs (pids from ``list``, restarts after
real kills).
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

import psutil
import pytest
from original_circus import OriginalDaemon
from support import wait_gone

from circus.testing import CircusdProcess, terminate, wait_until

EMIT = """\
import os, sys, time
pid = os.getpid()
for i in range(int(sys.argv[1])):
    print(f"{pid} line {i}", flush=True)
print(f"{pid} done", file=sys.stderr, flush=True)
time.sleep(1000)
"""


def circusctl(daemon: CircusdProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint, *args],
        capture_output=True, text=True, timeout=60, check=False,
    )


def pids(daemon: CircusdProcess, name: str) -> list[int]:
    return list(daemon.call("list", name=name)["pids"])


def tail_lines(daemon: CircusdProcess, name: str, count: int = 100) -> list[str]:
    return [line["line"] for line in daemon.call("tail", names=[name], lines=count)["lines"]]


class LineReader:
    """Reads a subprocess's stdout in a thread (the test never blocks on a pipe)."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, wanted: str, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while wanted not in self.seen:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{wanted!r} not printed; got {self.seen}")
            try:
                self.seen.append(self.lines.get(timeout=remaining))
            except queue.Empty:
                continue


@pytest.fixture
def emitter(tmp_path: Path) -> str:
    script = tmp_path / "emit.py"
    script.write_text(EMIT)
    return f"{sys.executable} {script}"


@pytest.fixture
def follower_procs() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        terminate(proc)


def test_tail_prints_the_last_lines_and_follows_across_crash_and_restart(
    tmp_path: Path, emitter: str, follower_procs: list[subprocess.Popen[str]]
) -> None:
    config = f"[watcher:w]\ncmd = {emitter} 30\ngraceful_timeout = 5\n"
    with CircusdProcess(config, tmp_path) as daemon:
        first = pids(daemon, "w")[0]
        wait_until(lambda: f"{first} done" in tail_lines(daemon, "w"), what="first output")
        result = circusctl(daemon, "tail", "w", "-n", "3")
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == [f"{first} line 28", f"{first} line 29",
                                              f"{first} done"]

        follower = subprocess.Popen(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint,
             "tail", "-f", "w", "-n", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        follower_procs.append(follower)
        reader = LineReader(follower.stdout)  # type: ignore[arg-type]
        reader.wait_for(f"{first} done")

        os.kill(first, signal.SIGKILL)  # a crash: the respawned process's lines follow
        second = wait_until(lambda: [p for p in pids(daemon, "w") if p != first], what="respawn")[0]
        reader.wait_for(f"{second} done")
        assert circusctl(daemon, "restart", "w", "--waiting").returncode == 0
        third = pids(daemon, "w")[0]
        assert third not in (first, second)
        reader.wait_for(f"{third} done")

        printed = reader.seen
        for pid in (second, third):  # every line of the new processes, once, in order
            mine = [line for line in printed if line.startswith(f"{pid} ")]
            assert mine == [f"{pid} line {i}" for i in range(30)] + [f"{pid} done"]
        assert terminate(follower) == 0
        assert wait_gone(follower.pid)


def test_tail_of_one_stream_like_supervisorctl(
    tmp_path: Path, emitter: str, follower_procs: list[subprocess.Popen[str]]
) -> None:
    with CircusdProcess(f"[watcher:w]\ncmd = {emitter} 20\n", tmp_path) as daemon:
        first = pids(daemon, "w")[0]
        wait_until(lambda: f"{first} done" in tail_lines(daemon, "w"), what="first output")
        assert circusctl(daemon, "tail", "w", "stderr").stdout.splitlines() == [f"{first} done"]
        assert circusctl(daemon, "tail", "w", "stdout", "-n", "1").stdout.splitlines() == [
            f"{first} line 19"]
        follower = subprocess.Popen(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint,
             "tail", "-f", "w", "stderr", "-n", "1"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        follower_procs.append(follower)
        reader = LineReader(follower.stdout)  # type: ignore[arg-type]
        reader.wait_for(f"{first} done")
        assert circusctl(daemon, "restart", "w", "--waiting").returncode == 0
        second = pids(daemon, "w")[0]
        reader.wait_for(f"{second} done")
        assert reader.seen == [f"{first} done", f"{second} done"]  # no stdout line at all
        assert terminate(follower) == 0
        assert "lost" not in follower.stderr.read()  # type: ignore[union-attr]


def test_tail_follows_across_a_restart_of_circusd(
    tmp_path: Path, emitter: str, follower_procs: list[subprocess.Popen[str]]
) -> None:
    """A new circusd numbers lines from 1 again: the follower notices (``origin``) and prints
    the new daemon's lines instead of skipping them as already seen."""
    daemon = CircusdProcess(f"[watcher:w]\ncmd = {emitter} 5\n", tmp_path)
    daemon.start()
    try:
        first = pids(daemon, "w")[0]
        wait_until(lambda: f"{first} done" in tail_lines(daemon, "w"), what="first output")
        follower = subprocess.Popen(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint,
             "--timeout", "2", "tail", "-f", "w", "-n", "10"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        follower_procs.append(follower)
        reader = LineReader(follower.stdout)  # type: ignore[arg-type]
        reader.wait_for(f"{first} done")
        daemon.stop()
        daemon.start()
        second = pids(daemon, "w")[0]
        reader.wait_for(f"{second} done", timeout=40)  # within a lease renewal (5 s)
        mine = [line for line in reader.seen if line.startswith(f"{second} ")]
        assert mine == [f"{second} line {i}" for i in range(5)] + [f"{second} done"]
    finally:
        daemon.stop()


def test_logs_prefixes_every_line_with_watcher_and_wid(tmp_path: Path, emitter: str) -> None:
    config = (f"[watcher:alpha]\ncmd = {emitter} 3\nnumprocesses = 2\n\n"
              f"[watcher:beta]\ncmd = {emitter} 2\n")
    with CircusdProcess(config, tmp_path) as daemon:
        for name in ("alpha", "beta"):
            for pid in pids(daemon, name):
                wait_until(lambda pid=pid, name=name: f"{pid} done" in tail_lines(daemon, name),
                           what=f"{name} output")
        slots = {f"{w['name']}[{p['wid']}]": p["pid"]
                 for w in daemon.call("processes")["watchers"] for p in w["processes"]}
        assert set(slots) == {"alpha[1]", "alpha[2]", "beta[1]"}

        result = circusctl(daemon, "logs", "--no-follow", "-n", "100")
        assert result.returncode == 0, result.stderr
        lines = result.stdout.splitlines()
        assert len(lines) == 2 * 4 + 3
        for line in lines:
            match = re.fullmatch(r"(\w+\[\d\]) \| (\d+) (line \d|done)", line)
            assert match, line
            assert slots[match.group(1)] == int(match.group(2))  # the prefix names the writer

        only_beta = circusctl(daemon, "logs", "beta", "--no-follow").stdout.splitlines()
        assert only_beta
        assert all(line.startswith("beta[1] | ") for line in only_beta)
        unknown = circusctl(daemon, "logs", "nope", "--no-follow")
        assert unknown.returncode == 3
        assert "nope" in unknown.stderr


def test_children_without_stream_still_reach_circusd_output(tmp_path: Path, emitter: str) -> None:
    config = (f"[watcher:kept]\ncmd = {emitter} 1\n\n"
              f"[watcher:inherit]\ncmd = {emitter} 1\noutput_lines = 0\n")
    with CircusdProcess(config, tmp_path) as daemon:
        kept, inherit = pids(daemon, "kept")[0], pids(daemon, "inherit")[0]
        wait_until(lambda: f"{kept} done" in daemon.log_text() and
                   f"{inherit} done" in daemon.log_text(), what="children's output in the log")
        assert tail_lines(daemon, "kept") == [f"{kept} line 0", f"{kept} done"]
        assert tail_lines(daemon, "inherit") == []
        result = circusctl(daemon, "tail", "inherit")
        assert result.returncode == 0
        assert "keeps no output" in result.stderr


CHATTY = (
    "import sys; line = b'x' * 99 + b'\\n'; write = sys.stdout.buffer.write\n"
    "while True: write(line * 512)\n"
)


def test_rings_stay_bounded_under_a_chatty_process(tmp_path: Path) -> None:
    script = tmp_path / "chatty.py"
    script.write_text(CHATTY)
    config = (
        f"[watcher:chatty]\ncmd = {sys.executable} {script}\n"
        "output_lines = 2000\noutput_bytes = 100000\n"
        "stdout_stream.class = FileStream\nstdout_stream.filename = /dev/null\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        daemon_proc = psutil.Process(daemon.pid)
        wait_until(lambda: daemon.call("tail", names=["chatty"], lines=1)["seq"]["chatty"] > 1000,
                   what="first lines")
        rss_before = daemon_proc.memory_info().rss
        # ~100 MB of output through the daemon (1,000,000 lines of 100 bytes)
        wait_until(
            lambda: daemon.call("tail", names=["chatty"], lines=1)["seq"]["chatty"] > 1_000_000,
            timeout=120, what="a million lines",
        )
        reply = daemon.call("tail", names=["chatty"], lines=100_000)
        kept = reply["lines"]
        assert 0 < len(kept) <= 100_000 // 99  # the byte budget binds before the 2000 lines
        assert sum(len(line["line"]) for line in kept) <= 100_000
        grown = daemon_proc.memory_info().rss - rss_before
        assert grown < 30 * 1024 * 1024, f"circusd grew by {grown} bytes"


def test_status_long_shows_each_process(tmp_path: Path) -> None:
    config = (
        "[watcher:web]\ncmd = sleep 1000\nnumprocesses = 2\n\n"
        "[watcher:idle]\ncmd = sleep 1000\nautostart = false\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        web = pids(daemon, "web")
        os.kill(web[0], signal.SIGKILL)
        wait_until(lambda: len(set(pids(daemon, "web")) - {web[0]}) == 2, what="respawn")
        now = pids(daemon, "web")

        plain = circusctl(daemon, "status")
        assert plain.stdout.splitlines() == ["idle: stopped", "web: active"]  # 0.19's output

        result = circusctl(daemon, "status", "-l")
        assert result.returncode == 0, result.stderr
        header, *rows = [line.split() for line in result.stdout.splitlines()]
        assert header == ["NAME", "WID", "PID", "STATE", "UPTIME", "RESTARTS", "CPU%", "MEM%",
                          "RSS"]
        assert rows[0] == ["idle", "-", "-", "stopped", "-", "0", "-", "-", "-"]
        by_pid = {int(row[2]): row for row in rows[1:]}
        assert set(by_pid) == set(now)
        restarted = next(pid for pid in now if pid != web[1])
        assert by_pid[restarted][5] == "1"
        assert by_pid[web[1]][5] == "0"
        assert all(row[3] == "active" and re.fullmatch(r"\d+s", row[4]) for row in rows[1:])
        assert all(re.fullmatch(r"[\d.]+[BKM]", row[8]) for row in rows[1:])

        one = circusctl(daemon, "status", "-l", "idle").stdout.splitlines()
        assert len(one) == 2
        assert one[1].split()[0] == "idle"
        assert circusctl(daemon, "status", "-l", "nope").returncode == 3


@pytest.mark.interop
def test_tail_and_status_long_against_the_original_daemon_say_what_is_missing(
    original_circusd: Callable[..., OriginalDaemon],
) -> None:
    daemon = original_circusd("[watcher:web]\ncmd = sleep 1000\n")

    def ours(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.endpoint, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )

    for args, hint in ((["tail", "web"], "predates"), (["logs", "--no-follow"], "predates"),
                       (["status", "-l"], "predates")):
        done = ours(*args)
        assert done.returncode == 3, (args, done.stderr)
        assert hint in done.stderr
        assert "Traceback" not in done.stderr
    assert ours("status").stdout.strip() == "web: active"  # plain status works as ever
