"""End to end: what a child inherits from circusd (issue 8 items 5 and 8).

circusd is started the way ``nohup`` or a background job starts it (SIGHUP ignored, a signal
blocked, a low soft fd limit); its children must still start with default dispositions, an
empty mask and no fd of circusd's, and circusd runs with the hard fd limit.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from circus.testing import CircusdProcess

TIMEOUT = 20


@contextlib.contextmanager
def inherited_state(soft_nofile: int | None = None) -> Iterator[None]:
    """While circusd starts: SIGHUP/SIGUSR1 ignored and SIGUSR2/SIGTERM blocked in this thread
    (``nohup``, a background job), optionally a low soft fd limit; all restored afterwards."""
    saved = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGHUP, signal.SIGUSR1)}
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR2, signal.SIGTERM})
    limits = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft_nofile is not None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft_nofile, limits[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, limits)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        for signum, handler in saved.items():
            signal.signal(signum, handler)


def status_masks(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("SigBlk", "SigIgn"):
            fields[key] = int(value.strip(), 16)
    return fields


def soft_nofile(pid: int) -> tuple[str, str]:
    for line in Path(f"/proc/{pid}/limits").read_text().splitlines():
        if line.startswith("Max open files"):
            soft, hard = line.split()[3:5]
            return soft, hard
    raise AssertionError("no 'Max open files' line")


def wait_file(path: Path, text: str) -> bool:
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if path.exists() and text in path.read_text():
            return True
        time.sleep(0.02)
    return False


def test_child_gets_default_signals_under_nohup_and_hup_reaches_it(tmp_path: Path) -> None:
    marker = tmp_path / "hup"
    ready = tmp_path / "ready"
    script = tmp_path / "trap.sh"
    script.write_text(
        f"trap 'echo hup >> {marker}' HUP\necho ready > {ready}\nwhile true; do sleep 0.05; done\n"
    )
    config = f"[watcher:w]\ncmd = sh {script}\ngraceful_timeout = 5\n"
    with inherited_state():
        daemon = CircusdProcess(config, tmp_path, args=["--log-level", "debug"]).start()
    try:
        (pid,) = daemon.call("list", name="w")["pids"]
        assert wait_file(ready, "ready")
        # the shell blocks every signal for an instant while it forks its `sleep`: a reading
        # taken then is not the inherited mask, so look until one falls between two forks
        deadline = time.monotonic() + 10
        masks = status_masks(pid)
        while masks != {"SigBlk": 0, "SigIgn": 0} and time.monotonic() < deadline:
            time.sleep(0.01)
            masks = status_masks(pid)
        assert masks == {"SigBlk": 0, "SigIgn": 0}
        # circusd itself no longer has SIGTERM blocked: it hears a plain kill (checked by stop)
        assert status_masks(daemon.pid)["SigBlk"] == 0
        daemon.call("signal", name="w", signum="HUP")
        assert wait_file(marker, "hup"), "SIGHUP did not reach the child (inherited SIG_IGN)"
        assert "inherited signal state reset" in daemon.log_text()
    finally:
        daemon.stop()


def test_no_fd_of_circusd_leaks_into_a_child(tmp_path: Path) -> None:
    out = tmp_path / "out.log"
    config = (
        "[watcher:plain]\ncmd = sleep 300\n\n"
        f"[watcher:streamed]\ncmd = sleep 300\nstdout_stream.class = FileStream\n"
        f"stdout_stream.filename = {out}\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        for name in ("plain", "streamed"):
            (pid,) = daemon.call("list", name=name)["pids"]
            fds = {
                int(fd): os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")
            }
            assert sorted(fds) == [0, 1, 2], fds
            assert fds[0] == "/dev/null"
        daemon_fds = len(os.listdir(f"/proc/{daemon.pid}/fd"))
        assert daemon_fds > 3  # sockets, epoll, pidfds: none of them reached a child


def test_circusd_raises_its_soft_fd_limit_to_the_hard_one(tmp_path: Path) -> None:
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    low = min(256, hard)
    with inherited_state(soft_nofile=low):
        daemon = CircusdProcess(
            "[watcher:w]\ncmd = sleep 300\n", tmp_path, args=["--log-level", "debug"]
        ).start()
    try:
        soft, hard_text = soft_nofile(daemon.pid)
        assert soft == hard_text
        assert "RLIMIT_NOFILE" in daemon.log_text()
        assert str(low) in daemon.log_text()
    finally:
        daemon.stop()


def test_inserted_values_reach_the_child_as_written(tmp_path: Path) -> None:
    """copy_env = true, a circusd variable holding ``$(circus.env.SECRET)``, an [env] value
    with a quote and shell = false: the child sees the text as written, one argument each
    (0.19: the secret leaked, and the quote made every spawn fail)."""
    out = tmp_path / "out"
    config = (
        "[env:w]\nGREETING = it's\n"
        "[watcher:w]\n"
        f'cmd = sh -c \'echo "$1" > {out}; echo "$2" >> {out}; echo "$GREETING" >> {out}\''
        " x $(circus.env.USER_VALUE) $(circus.env.GREETING)\n"
        "copy_env = true\nrespawn = false\n"
    )
    env = {**os.environ, "SECRET": "s3cret", "USER_VALUE": "$(circus.env.SECRET) ; $(circus.wid)"}
    with CircusdProcess(config, tmp_path, env=env):
        assert wait_file(out, "it's\nit's")
        assert out.read_text().splitlines() == [
            "$(circus.env.SECRET) ; $(circus.wid)",
            "it's",
            "it's",
        ]
