"""Reply shapes of the read-only commands against a real circusd (contract section 3).

The exact set of top-level keys is checked: the original circusctl and plugins read these
fields by name, and an extra or missing key is a wire change.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psutil
import pytest

from circus.testing import CircusdProcess

CONFIG = """\
[watcher:sleeper]
cmd = sleep 600
numprocesses = 2
flapping.max_retry = 7

[watcher:Mixed]
cmd = sleep 600
singleton = true
stop_signal = INT
graceful_timeout = 7

[watcher:idle]
cmd = sleep 600
autostart = false
"""

OK_KEYS = {"status", "time", "id"}
ERROR_KEYS = {"status", "reason", "tb", "time", "errno", "id"}

OPTION_KEYS = {
    "args", "close_child_stderr", "close_child_stdin", "close_child_stdout", "cmd", "copy_env",
    "env", "executable", "gid", "graceful_timeout", "max_age", "max_age_variance", "max_retry",
    "numprocesses", "on_demand", "priority", "respawn", "send_hup", "shell", "shell_args",
    "singleton", "stderr_stream_conf", "stdout_stream_conf", "stop_children", "stop_signal", "uid",
    "use_sockets", "warmup_delay", "working_dir",
}  # fmt: skip


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CircusdProcess]:
    with CircusdProcess(CONFIG, tmp_path_factory.mktemp("replies")) as running:
        yield running


def ok(reply: dict[str, Any], *fields: str) -> dict[str, Any]:
    assert reply["status"] != "error", reply
    assert set(reply) == OK_KEYS | set(fields), reply
    assert isinstance(reply["time"], float)
    return reply


def error(reply: dict[str, Any], errno: int, reason: str) -> None:
    assert set(reply) == ERROR_KEYS, reply
    assert reply["status"] == "error"
    assert (reply["errno"], reply["reason"]) == (errno, reason)


def test_list(daemon: CircusdProcess) -> None:
    reply = ok(daemon.call("list"), "watchers")
    assert reply["watchers"] == ["idle", "mixed", "sleeper"]
    pids = ok(daemon.call("list", name="SLEEPER"), "pids")["pids"]
    assert len(pids) == 2
    children = {p.pid: p for p in psutil.Process(daemon.pid).children()}
    assert set(pids) <= set(children)
    # spawn order
    assert sorted(pids, key=lambda pid: children[pid].create_time()) == pids
    assert ok(daemon.call("list", name="idle"), "pids")["pids"] == []
    error(daemon.call("list", name="nope"), 3, "program nope not found")


def test_status(daemon: CircusdProcess) -> None:
    reply = ok(daemon.call("status"), "statuses")
    assert reply["status"] == "ok"
    assert reply["statuses"] == {"Mixed": "active", "idle": "stopped", "sleeper": "active"}
    # C5: the state replaces "ok"
    assert ok(daemon.call("status", name="mixed"))["status"] == "active"
    assert ok(daemon.call("status", name="idle"))["status"] == "stopped"


def test_counts(daemon: CircusdProcess) -> None:
    assert ok(daemon.call("numwatchers"), "numwatchers")["numwatchers"] == 3
    assert ok(daemon.call("numprocesses"), "numprocesses")["numprocesses"] == 3
    reply = ok(daemon.call("numprocesses", name="SLEEPER"), "numprocesses", "watcher_name")
    assert (reply["numprocesses"], reply["watcher_name"]) == (2, "SLEEPER")


def test_options(daemon: CircusdProcess) -> None:
    options = ok(daemon.call("options", name="sleeper"), "options")["options"]
    assert set(options) >= OPTION_KEYS
    assert list(options) == sorted(options)
    assert options["flapping.max_retry"] == "7"
    assert options["numprocesses"] == 2
    assert options["stop_signal"] == 15
    mixed = ok(daemon.call("options", name="Mixed"), "options")["options"]
    assert mixed["stop_signal"] == 2
    assert mixed["graceful_timeout"] == 7.0
    assert isinstance(mixed["graceful_timeout"], float)
    assert mixed["singleton"] is True


def test_get(daemon: CircusdProcess) -> None:
    reply = ok(daemon.call("get", name="mixed", keys=["numprocesses", "stop_signal"]), "options")
    assert reply["options"] == {"numprocesses": 1, "stop_signal": 2}
    error(daemon.call("get", name="mixed", keys=["zzz"]), 3, "'zzz' option not found")
    error(daemon.call("get", name="mixed"), 3, "message invalid 'keys' is missing")
    # C7 fixed: a free-form option that `options` lists can be read with `get`
    free = ok(daemon.call("get", name="sleeper", keys=["flapping.max_retry"]), "options")
    assert free["options"] == {"flapping.max_retry": "7"}


def test_globaloptions(daemon: CircusdProcess) -> None:
    options = ok(daemon.call("globaloptions"), "options")["options"]
    assert set(options) == {
        "endpoint", "pubsub_endpoint", "stats_endpoint", "check_delay", "multicast_endpoint",
    }  # fmt: skip
    assert options["endpoint"] == daemon.endpoint
    assert options["pubsub_endpoint"] == daemon.pubsub_endpoint
    assert isinstance(options["check_delay"], float)
    one = ok(daemon.call("globaloptions", option="endpoint"), "options")["options"]
    assert one == {"endpoint": daemon.endpoint}
    error(daemon.call("globaloptions", option="zzz"), 3, "'zzz' not an existing option")


def test_stats(daemon: CircusdProcess) -> None:
    infos = ok(daemon.call("stats"), "infos")["infos"]
    assert set(infos) == {"sleeper", "Mixed", "idle"}
    pids = daemon.call("list", name="sleeper")["pids"]
    assert set(infos["sleeper"]) == {str(pid) for pid in pids}
    one = ok(daemon.call("stats", name="SLEEPER"), "name", "info")
    assert one["name"] == "SLEEPER"
    info = one["info"][str(pids[0])]
    for key in ("pid", "wid", "started", "age", "create_time", "cpu", "mem", "mem_info1",
                "mem_info2", "ctime", "username", "nice", "cmdline", "children"):
        assert key in info
    assert info["pid"] == pids[0]
    assert info["cmdline"] == "sleep"
    proc = ok(daemon.call("stats", name="sleeper", process=pids[1]), "process", "info")
    assert proc["process"] == pids[1]
    assert proc["info"]["pid"] == pids[1]
    error(daemon.call("stats", name="sleeper", process=1), 3, "process 1 not found in 'sleeper'")


def test_dstats(daemon: CircusdProcess) -> None:
    info = ok(daemon.call("dstats"), "info")["info"]
    assert info["pid"] == daemon.pid
    assert info["children"] == []


def test_fixed_replies(daemon: CircusdProcess) -> None:
    assert ok(daemon.call("listsockets"), "sockets")["sockets"] == []
    ipython = ok(daemon.call("ipython"), "shell", "msg")
    assert ipython["shell"] is False
    assert isinstance(ipython["msg"], str)
    error(daemon.call("listen"), 3, "invalid message. use a pub/sub socket")


def test_singleton_incr_and_decr_change_nothing(daemon: CircusdProcess) -> None:
    for command in ("incr", "decr"):
        reply = ok(daemon.call(command, name="mixed", waiting=True), "numprocesses", "singleton")
        assert (reply["numprocesses"], reply["singleton"]) == (1, True)
    assert len(daemon.call("list", name="mixed")["pids"]) == 1


def test_commands_are_case_insensitive(daemon: CircusdProcess) -> None:
    assert ok(daemon.call("NumWatchers"), "numwatchers")["numwatchers"] == 3
    assert ok(daemon.call("LIST"), "watchers")["watchers"] == ["idle", "mixed", "sleeper"]
