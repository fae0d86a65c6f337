"""Commands that change things, against a real circusd: replies, errors and their effect.

Each test gets its own daemon so that the state one test leaves cannot hide a bug in another.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from support import wait_gone

from circus.testing import CircusdProcess, wait_until

CONFIG = """\
[watcher:sleeper]
cmd = sleep 600
numprocesses = 2
graceful_timeout = 5

[watcher:spare]
cmd = sleep 600

[watcher:idle]
cmd = sleep 600
autostart = false
"""

OK_KEYS = {"status", "time", "id"}


@pytest.fixture
def daemon(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    """Started, with every autostart process running: circusd answers commands while it is
    still spawning them, and under load a test's first ``list`` could see one of two."""
    started = circusd(CONFIG)
    wait_until(lambda: (len(pids(started, "sleeper")), len(pids(started, "spare"))) == (2, 1),
               "the autostart processes running", daemon=started)
    return started


def ok(reply: dict[str, Any], *fields: str) -> dict[str, Any]:
    assert reply["status"] == "ok", reply
    assert set(reply) == OK_KEYS | set(fields), reply
    return reply


def error(reply: dict[str, Any], errno: int, reason: str) -> None:
    assert reply["status"] == "error", reply
    assert (reply["errno"], reply["reason"]) == (errno, reason)


def pids(daemon: CircusdProcess, name: str) -> list[int]:
    found: list[int] = daemon.call("list", name=name)["pids"]
    return found


def statuses(daemon: CircusdProcess) -> dict[str, str]:
    found: dict[str, str] = daemon.call("status")["statuses"]
    return found


def test_incr_decr(daemon: CircusdProcess) -> None:
    ok(daemon.call("incr", name="sleeper", waiting=False))  # C6: no numprocesses without waiting
    assert ok(daemon.call("incr", name="sleeper", nb=2, waiting=True), "numprocesses")[
        "numprocesses"
    ] == 5
    assert len(pids(daemon, "sleeper")) == 5
    before = pids(daemon, "sleeper")
    reply = ok(daemon.call("decr", name="sleeper", nb=4, waiting=True), "numprocesses")
    assert reply["numprocesses"] == 1
    assert pids(daemon, "sleeper") == before[-1:]  # the oldest processes went
    assert ok(daemon.call("decr", name="sleeper", nb=5, waiting=True), "numprocesses")[
        "numprocesses"
    ] == 0
    # circusctl-style numeric strings are accepted, garbage is not
    ok(daemon.call("incr", name="sleeper", nb="2", waiting=True), "numprocesses")
    error(daemon.call("incr", name="sleeper", nb="two"), 3, "'nb' isn't an integer")


def test_set(daemon: CircusdProcess) -> None:
    ok(daemon.call("set", name="sleeper", options={"numprocesses": 3}, waiting=True))
    assert len(pids(daemon, "sleeper")) == 3
    assert daemon.call("get", name="sleeper", keys=["numprocesses"])["options"] == {
        "numprocesses": 3
    }
    ok(daemon.call("set", name="sleeper", options={"graceful_timeout": 2.5, "warmup_delay": 0},
                   waiting=True))
    assert daemon.call("options", name="sleeper")["options"]["graceful_timeout"] == 2.5
    ok(daemon.call("set", name="sleeper", options={"graceful_timeout": 3}, waiting=True))
    assert isinstance(daemon.call("options", name="sleeper")["options"]["graceful_timeout"], float)
    error(daemon.call("set", name="sleeper", options={"numprocesses": "3"}), 3,
          "'numprocesses' isn't an integer")
    error(daemon.call("set", name="sleeper", options={"priority": 3}), 3, "unknown key 'priority'")
    error(daemon.call("set", name="sleeper", options={"flapping.x": "1"}), 3,
          "unknown key 'flapping.x'")
    error(daemon.call("set", name="sleeper", options=[1]), 3,
          "'options' property should be an object")
    # all or nothing: the valid key of a rejected request is not applied
    error(daemon.call("set", name="sleeper", options={"numprocesses": 1, "shell": "yes"}), 3,
          "'shell' isn't a valid boolean")
    assert len(pids(daemon, "sleeper")) == 3


def test_add_and_rm(daemon: CircusdProcess) -> None:
    ok(daemon.call("add", name="added", cmd="sleep 600"))
    assert "added" in daemon.call("list")["watchers"]
    assert statuses(daemon)["added"] == "stopped"
    reply = ok(daemon.call("add", name="Second", cmd="sleep", args=["600"], start=True,
                           options={"numprocesses": 2}, waiting=True), "started", "kept")
    assert len(reply["started"]) == 2
    assert reply["kept"] == []
    assert pids(daemon, "second") == reply["started"]
    duplicate = daemon.call("add", name="SECOND", cmd="sleep 1")
    assert duplicate["errno"] == 5
    assert duplicate["reason"].endswith("'SECOND' already exist")
    error(daemon.call("add", name="x", cmd="sleep 1", options={"priority": 1}), 3,
          "unknown key 'priority'")
    error(daemon.call("add", name="x"), 3, "message invalid 'cmd' is missing")
    ok(daemon.call("rm", name="second", waiting=True))
    assert "second" not in daemon.call("list")["watchers"]
    for pid in reply["started"]:
        assert wait_gone(pid, 20)
    error(daemon.call("rm", name="second"), 3, "program second not found")


def test_kill_coerces_pid_and_the_process_is_replaced(daemon: CircusdProcess) -> None:
    first, second = pids(daemon, "sleeper")
    ok(daemon.call("kill", name="sleeper", pid=str(first), signum="KILL", waiting=True))
    assert wait_gone(first, 20)
    # the watcher respawns the killed process; the other one is untouched
    ok(daemon.call("kill", name="sleeper", pid=10**7, waiting=True))  # unknown pid: nothing
    assert second in pids(daemon, "sleeper")
    error(daemon.call("kill", name="sleeper", pid="abc"), 3, "'pid' isn't an integer")
    error(daemon.call("kill", name="sleeper", graceful_timeout="soon"), 3,
          "'graceful_timeout' isn't a number")


def test_signal(daemon: CircusdProcess) -> None:
    first, second = pids(daemon, "sleeper")
    ok(daemon.call("signal", name="sleeper", signum="sigkill", pid=first))
    assert wait_gone(first, 20)
    assert second in pids(daemon, "sleeper")
    reply = daemon.call("signal", name="sleeper", signum="SIGFOO")
    assert reply["errno"] == 3
    assert reply["reason"].startswith("signal invalid")
    error(daemon.call("signal", name="sleeper", signum=15, childpid=5), 3,
          "cannot specify childpid without pid")
    error(daemon.call("signal", name="sleeper"), 3, "message invalid 'signum' is missing")


def test_start_stop_restart_one_watcher(daemon: CircusdProcess) -> None:
    old = pids(daemon, "sleeper")
    assert ok(daemon.call("stop", name="sleeper", waiting=True), "info")["info"] is None
    assert statuses(daemon)["sleeper"] == "stopped"
    for pid in old:
        assert wait_gone(pid, 20)
    started = ok(daemon.call("start", name="sleeper", waiting=True), "info")["info"]
    assert set(started) == {"started", "kept"}
    assert len(started["started"]) == 2
    restarted = ok(daemon.call("restart", name="sleeper", waiting=True), "info")["info"]
    assert set(restarted) == {"stopped", "started", "kept"}
    assert sorted(restarted["stopped"]) == sorted(started["started"])
    assert pids(daemon, "sleeper") == restarted["started"]
    # the autostart=false watcher starts when named alone
    ok(daemon.call("start", name="idle", waiting=True), "info")
    assert statuses(daemon)["idle"] == "active"


def test_matching(daemon: CircusdProcess) -> None:
    ok(daemon.call("stop", name="s*", waiting=True))  # glob, two watchers: bare ok
    assert statuses(daemon) == {"sleeper": "stopped", "spare": "stopped", "idle": "stopped"}
    # regex: case-insensitive, anchored at the start only; one match answers with `info`
    ok(daemon.call("start", name="SP", match="regex", waiting=True), "info")
    assert statuses(daemon)["spare"] == "active"
    assert statuses(daemon)["sleeper"] == "stopped"
    error(daemon.call("start", name="leeper", match="regex"), 3, "program leeper not found")
    ok(daemon.call("stop", name="s[lp]", match="regex", waiting=True))
    ok(daemon.call("start", name="*", waiting=True))  # several: autostart=false skipped (C10)
    assert statuses(daemon) == {"sleeper": "active", "spare": "active", "idle": "stopped"}
    ok(daemon.call("stop", name="sleeper", match="simple", waiting=True), "info")
    error(daemon.call("start", name="x*"), 3, "program x* not found")
    error(daemon.call("start", name="sleeper", match="fuzzy"), 3, "unknown match method fuzzy")


def test_start_and_stop_everything(daemon: CircusdProcess) -> None:
    ok(daemon.call("stop", waiting=True))
    assert set(statuses(daemon).values()) == {"stopped"}
    ok(daemon.call("start", waiting=True))
    assert statuses(daemon) == {"sleeper": "active", "spare": "active", "idle": "stopped"}


def test_restart_all_in_place(daemon: CircusdProcess) -> None:
    """C15 replaced: the daemon and its sockets stay, every running watcher gets new processes."""
    old = pids(daemon, "sleeper") + pids(daemon, "spare")
    ok(daemon.call("restart", waiting=True))
    new = pids(daemon, "sleeper") + pids(daemon, "spare")
    assert len(new) == 3
    assert not set(old) & set(new)
    assert daemon.call("dstats")["info"]["pid"] == daemon.pid


def test_reload(daemon: CircusdProcess) -> None:
    old = pids(daemon, "sleeper")
    info = ok(daemon.call("reload", name="sleeper", waiting=True), "info")["info"]
    assert set(info) == {"stopped", "started", "kept"}
    assert sorted(info["stopped"]) == sorted(old)
    assert pids(daemon, "sleeper") == info["started"]
    ok(daemon.call("reload", waiting=True))
    ok(daemon.call("reload", name="sleeper", graceful=False, waiting=True), "info")
    error(daemon.call("reload", name="nope"), 3, "program nope not found")


def test_reloadconfig(daemon: CircusdProcess) -> None:
    daemon.config_path.write_text(daemon.config_text + "\n[watcher:late]\ncmd = sleep 600\n")
    ok(daemon.call("reloadconfig", waiting=True))
    assert statuses(daemon)["late"] == "active"


def test_quit_waiting_replies_then_exits(daemon: CircusdProcess) -> None:
    children = pids(daemon, "sleeper") + pids(daemon, "spare")
    ok(daemon.call("quit", waiting=True))
    assert daemon.popen is not None
    assert daemon.popen.wait(30) == 0
    for pid in children:
        assert wait_gone(pid, 20)
