"""The ORIGINAL circusctl 0.19 (from PyPI, in its own venv) driving OUR circusd.

Operators keep their old circusctl, scripts and muscle memory: every command they use must
print what 0.19 printed and really act on the daemon. Outputs are compared with what the same
original circusctl prints against the ORIGINAL circusd running the same config, and the effect
of each mutating command is checked on our daemon's real state.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest
from original_circus import OriginalCircus, OriginalDaemon, run_original_circusctl
from support import wait_gone

from circus.client import CircusClient
from circus.testing import CircusdProcess, wait_until

pytestmark = pytest.mark.interop

WATCHERS = """\
[watcher:sleeper]
cmd = sleep 1000
numprocesses = 2
graceful_timeout = 5

[watcher:idle]
cmd = sleep 1000
autostart = false
"""


@pytest.fixture
def ours(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    return circusd(WATCHERS)


class Ctl:
    """The original circusctl bound to one endpoint."""

    def __init__(self, installed: OriginalCircus, endpoint: str) -> None:
        self.installed = installed
        self.endpoint = endpoint

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run_original_circusctl(self.installed, self.endpoint, *args, timeout=60)

    def ok(self, *args: str) -> str:
        out = self(*args)
        assert out.returncode == 0, (args, out.stdout, out.stderr)
        return out.stdout


def ping_call(endpoint: str, command: str, **props: Any) -> dict[str, Any]:
    with CircusClient(endpoint, timeout=20) as client:
        return client.call(command, **props)


def pids(daemon: CircusdProcess, name: str = "sleeper") -> list[int]:
    return list(daemon.call("list", name=name)["pids"])


def test_original_circusctl_drives_our_circusd(
    original_circus: OriginalCircus, ours: CircusdProcess
) -> None:
    ctl = Ctl(original_circus, ours.endpoint)

    assert ctl.ok("status") == "idle: stopped\nsleeper: active\n"
    assert ctl.ok("status", "sleeper") == "active\n"
    assert ctl.ok("list") == "idle,sleeper\n"
    assert ctl.ok("list", "sleeper") == ",".join(map(str, pids(ours))) + "\n"
    assert ctl.ok("numprocesses") == "2\n"
    assert ctl.ok("numprocesses", "sleeper") == "2\n"

    options = ctl.ok("options", "sleeper").splitlines()
    for line in ("cmd: sleep 1000", "numprocesses: 2", "graceful_timeout: 5.0", "stop_signal: 15",
                 "respawn: True", "singleton: False", "env: "):
        assert line in options, (line, options)
    assert ctl.ok("get", "sleeper", "numprocesses", "graceful_timeout") == (
        "numprocesses: 2\ngraceful_timeout: 5.0\n"
    )

    # incr/decr: the original prints the count only with --waiting (contract C6)
    assert ctl.ok("incr", "sleeper", "2", "--waiting") == "4\n"
    assert len(pids(ours)) == 4
    assert ctl.ok("decr", "sleeper", "--waiting") == "3\n"
    wait_until(lambda: len(pids(ours)) == 3, "3 processes after decr --waiting")
    assert ctl.ok("incr", "sleeper") == "ok\n"
    wait_until(lambda: len(pids(ours)) == 4, "4 processes after incr")
    assert ctl.ok("decr", "sleeper", "2") == "ok\n"
    wait_until(lambda: len(pids(ours)) == 2, "2 processes after decr 2")

    # set: the original converts values itself (ints, floats, signal names)
    assert ctl.ok("set", "sleeper", "numprocesses", "3", "--waiting") == "ok\n"
    wait_until(lambda: len(pids(ours)) == 3, "3 processes after set numprocesses")
    assert ctl.ok("set", "sleeper", "stop_signal", "INT", "graceful_timeout", "7") == "ok\n"
    assert ctl.ok("get", "sleeper", "stop_signal", "graceful_timeout", "numprocesses") == (
        "stop_signal: 2\ngraceful_timeout: 7.0\nnumprocesses: 3\n"
    )

    # stop / start / restart with the real processes checked
    before = pids(ours)
    assert ctl.ok("stop", "sleeper", "--waiting") == "ok\n"
    assert ours.call("status", name="sleeper")["status"] == "stopped"
    assert pids(ours) == []
    assert all(wait_gone(pid) for pid in before)
    assert ctl.ok("status", "sleeper") == "stopped\n"
    assert ctl.ok("start", "sleeper", "--waiting") == "ok\n"
    started = pids(ours)
    assert len(started) == 3
    assert ctl.ok("restart", "sleeper", "--waiting") == "ok\n"
    restarted = pids(ours)
    assert len(restarted) == 3
    assert not set(restarted) & set(started)
    assert ctl.ok("start", "idle") == "ok\n"
    wait_until(lambda: ours.call("status", name="idle")["status"] == "active", "idle active")
    assert ctl.ok("stop") == "ok\n"
    wait_until(lambda: ours.call("status")["statuses"] == {"idle": "stopped", "sleeper": "stopped"},
               "every watcher stopped")

    # error replies: exit 3 (0.19's status rendering prints only "error", a bug of its own)
    out = ctl("status", "nope")
    assert (out.returncode, out.stderr) == (3, "error\n")
    out = ctl("options", "nope")
    assert (out.returncode, out.stderr) == (3, "error: program nope not found\n")
    out = ctl("get", "sleeper", "zzz")
    assert (out.returncode, out.stderr) == (3, "error: 'zzz' option not found\n")

    # quit: the daemon exits 0 and leaves no process behind
    ctl.ok("start", "--waiting")
    wait_until(lambda: len(pids(ours)) == 3, "3 processes after start")
    running = pids(ours)
    assert ctl.ok("quit") == "ok\n"
    assert ours.popen is not None
    assert ours.popen.wait(30) == 0
    assert all(wait_gone(pid) for pid in running)


def _normalise(text: str) -> str:
    return re.sub(r"\b\d{3,}\b", "<pid>", text)


@pytest.mark.parametrize(
    "args",
    [
        ("status",), ("status", "sleeper"), ("status", "idle"), ("list",), ("list", "sleeper"),
        ("numprocesses",), ("numprocesses", "sleeper"), ("numwatchers",),
        ("get", "sleeper", "numprocesses", "stop_signal", "graceful_timeout", "cmd"),
        ("incr", "sleeper", "--waiting"), ("decr", "sleeper", "--waiting"),
        ("status", "nope"), ("options", "nope"), ("get", "sleeper", "zzz"),
        ("set", "sleeper", "numprocesses", "2"), ("stop", "idle"), ("start", "sleeper"),
    ],
)
def test_original_circusctl_prints_the_same_for_both_daemons(
    original_circus: OriginalCircus,
    ours: CircusdProcess,
    original_circusd: Callable[..., OriginalDaemon],
    args: tuple[str, ...],
) -> None:
    theirs = original_circusd(WATCHERS)
    with_ours = Ctl(original_circus, ours.endpoint)(*args)
    with_theirs = theirs.circusctl(*args)
    assert with_ours.returncode == with_theirs.returncode, (with_ours, with_theirs)
    assert _normalise(with_ours.stdout) == _normalise(with_theirs.stdout)
    assert _normalise(with_ours.stderr) == _normalise(with_theirs.stderr)


def test_our_circusctl_drives_the_original_circusd(
    original_circusd: Callable[..., OriginalDaemon],
) -> None:
    """The other direction: our circusctl against a 0.19 daemon still in service."""
    theirs = original_circusd(WATCHERS)

    def ours_ctl(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "circus.circusctl", "--endpoint", theirs.endpoint, *args],
            capture_output=True, text=True, timeout=60, check=False,
        )

    def their_pids() -> list[int]:
        reply = ping_call(theirs.endpoint, "list", name="sleeper")
        return list(reply["pids"])

    assert ours_ctl("status").stdout == "idle: stopped\nsleeper: active\n"
    assert ours_ctl("list", "sleeper").stdout == ",".join(map(str, their_pids())) + "\n"
    assert ours_ctl("incr", "sleeper", "--waiting").stdout == "3\n"
    assert len(their_pids()) == 3
    assert ours_ctl("set", "sleeper", "stop_signal", "HUP", "numprocesses", "2",
                    "--waiting").returncode == 0
    assert ours_ctl("get", "sleeper", "stop_signal", "numprocesses").stdout == (
        "numprocesses: 2\nstop_signal: 1\n"
    )
    assert "numprocesses: 2" in ours_ctl("options", "sleeper").stdout.splitlines()
    out = ours_ctl("options", "nope")
    assert (out.returncode, out.stderr) == (3, "error: program nope not found\n")
    assert ours_ctl("quit").stdout == "ok\n"
    assert theirs.process.wait(30) == 0
