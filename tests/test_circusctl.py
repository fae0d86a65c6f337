"""circusctl (the real CLI, as a subprocess) against our real circusd: outputs and exit codes.

Every command's rendering and exit status is checked against the daemon's actual state (queried
separately through the control channel or /proc), so a circusctl that prints "ok" while nothing
happened fails here.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import IO

import pytest
from support import pid_state, wait_gone

from circus import __version__
from circus.testing import CircusdProcess, wait_until

CONFIG = """\
[watcher:sleeper]
cmd = sleep 1000
numprocesses = 2
graceful_timeout = 5

[env:sleeper]
GREETING = hello

[watcher:Other]
cmd = sleep 1000
autostart = false
"""


def circusctl(
    *args: str, env: Mapping[str, str] | None = None, timeout: float = 60.0, stdin: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "circus.circusctl", *args],
        capture_output=True, text=True, timeout=timeout, input=stdin, check=False,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def daemon(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    return circusd(CONFIG)


def ctl(daemon: CircusdProcess, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return circusctl("--endpoint", daemon.endpoint, *args, stdin=stdin)


def pids(daemon: CircusdProcess, name: str = "sleeper") -> list[int]:
    return list(daemon.call("list", name=name)["pids"])


def test_read_only_commands_render_the_daemons_state(daemon: CircusdProcess) -> None:
    running = pids(daemon)
    assert len(running) == 2

    out = ctl(daemon, "status")
    assert (out.returncode, out.stdout) == (0, "Other: stopped\nsleeper: active\n")
    out = ctl(daemon, "status", "sleeper")
    assert (out.returncode, out.stdout) == (0, "active\n")
    assert ctl(daemon, "list").stdout == "other,sleeper\n"
    assert ctl(daemon, "list", "sleeper").stdout == ",".join(map(str, running)) + "\n"
    assert ctl(daemon, "numprocesses").stdout == "2\n"
    assert ctl(daemon, "numprocesses", "sleeper").stdout == "2\n"
    assert ctl(daemon, "numwatchers").stdout == "2\n"

    options = ctl(daemon, "options", "sleeper")
    assert options.returncode == 0
    lines = options.stdout.splitlines()
    assert "numprocesses: 2" in lines
    assert "cmd: sleep 1000" in lines
    assert "env: GREETING=hello" in lines
    assert lines == sorted(lines)

    got = ctl(daemon, "get", "sleeper", "numprocesses", "graceful_timeout")
    assert got.stdout == "graceful_timeout: 5.0\nnumprocesses: 2\n"
    glob = ctl(daemon, "globaloptions").stdout.splitlines()
    assert f"endpoint: {daemon.endpoint}" in glob
    assert ctl(daemon, "globaloptions", "pubsub_endpoint").stdout == (
        f"pubsub_endpoint: {daemon.pubsub_endpoint}\n"
    )

    stats = ctl(daemon, "stats", "sleeper").stdout.splitlines()
    assert stats[0] == "sleeper:"
    assert sorted(int(line.split(":")[0]) for line in stats[1:]) == sorted(running)
    assert all("sleep" in line for line in stats[1:])
    one = ctl(daemon, "stats", "sleeper", str(running[0]))
    assert one.returncode == 0
    assert one.stdout.startswith(f"{running[0]}: {running[0]} sleep")
    dstats = ctl(daemon, "dstats")
    assert dstats.returncode == 0
    assert dstats.stdout.splitlines()[0] == "Main Process:"
    assert str(daemon.pid) in dstats.stdout
    assert ctl(daemon, "listsockets").returncode == 0


def test_json_output_endpoint_from_the_environment_and_version(daemon: CircusdProcess) -> None:
    raw = ctl(daemon, "--json", "list", "sleeper")
    reply = json.loads(raw.stdout)
    assert reply["status"] == "ok"
    assert reply["pids"] == pids(daemon)
    pretty = ctl(daemon, "--json", "--prettify", "status")
    assert pretty.stdout.startswith("{\n  ")
    assert json.loads(pretty.stdout)["statuses"] == {"Other": "stopped", "sleeper": "active"}
    # global options after the command
    assert circusctl("status", "sleeper", "--endpoint", daemon.endpoint).stdout == "active\n"
    from_env = circusctl("status", "sleeper", env={"CIRCUSCTL_ENDPOINT": daemon.endpoint})
    assert (from_env.returncode, from_env.stdout) == (0, "active\n")
    version = circusctl("--version")
    assert (version.returncode, version.stdout.strip()) == (0, f"circusctl {__version__}")


def test_error_replies_exit_3_on_stderr_and_0_with_json(daemon: CircusdProcess) -> None:
    out = ctl(daemon, "status", "nope")
    assert (out.returncode, out.stdout, out.stderr) == (3, "", "error: program nope not found\n")
    out = ctl(daemon, "set", "sleeper", "priority", "3")
    assert out.returncode == 3
    assert "priority" in out.stderr
    out = ctl(daemon, "--json", "options", "nope")
    assert out.returncode == 0
    reply = json.loads(out.stdout)
    assert (reply["status"], reply["errno"]) == ("error", 3)


def test_no_daemon_exits_1_with_a_hint(tmp_path: Path) -> None:
    started = time.monotonic()
    out = circusctl("--endpoint", f"ipc://{tmp_path}/none.sock", "--timeout", "0.5", "status")
    assert time.monotonic() - started < 30
    assert out.returncode == 1
    assert "within 0.5 s" in out.stderr
    assert "unreachable or slow" in out.stderr


@pytest.mark.parametrize(
    "args",
    [["bogus"], ["incr"], ["--ssh", "me@host:22", "status"], ["set", "sleeper", "numprocesses"],
     ["set", "sleeper", "numprocesses", "lots"], ["stop", "--match", "fuzzy"]],
)
def test_usage_errors_exit_2_without_traceback(args: list[str], tmp_path: Path) -> None:
    out = circusctl("--endpoint", f"ipc://{tmp_path}/none.sock", "--timeout", "0.5", *args)
    assert out.returncode == 2
    assert out.stderr.strip()
    assert "Traceback" not in out.stderr


def test_process_count_commands_change_the_real_process_count(daemon: CircusdProcess) -> None:
    out = ctl(daemon, "incr", "sleeper", "2", "--waiting")
    assert (out.returncode, out.stdout) == (0, "4\n")
    assert len(pids(daemon)) == 4
    out = ctl(daemon, "decr", "sleeper", "--waiting")
    assert (out.returncode, out.stdout) == (0, "3\n")
    wait_until(lambda: len(pids(daemon)) == 3, "3 processes after decr")
    out = ctl(daemon, "set", "sleeper", "numprocesses", "1", "stop_signal", "INT", "--waiting")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    wait_until(lambda: len(pids(daemon)) == 1, "1 process after set numprocesses")
    options = daemon.call("get", name="sleeper", keys=["numprocesses", "stop_signal"])["options"]
    assert options == {"numprocesses": 1, "stop_signal": int(signal.SIGINT)}
    out = ctl(daemon, "set", "sleeper", "env", "A=1,B=2", "--waiting")
    assert out.returncode == 0, out.stderr
    assert daemon.call("options", name="sleeper")["options"]["env"] == {"A": "1", "B": "2"}


def test_lifecycle_commands_start_stop_restart_reload(daemon: CircusdProcess) -> None:
    before = pids(daemon)
    out = ctl(daemon, "stop", "sleeper", "--waiting")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    assert daemon.call("status", name="sleeper")["status"] == "stopped"
    assert pids(daemon) == []
    assert all(wait_gone(pid) for pid in before)

    assert ctl(daemon, "start", "sleeper", "--waiting").returncode == 0
    assert daemon.call("status", name="sleeper")["status"] == "active"
    started = pids(daemon)
    assert len(started) == 2

    assert ctl(daemon, "restart", "sleeper", "--waiting").returncode == 0
    restarted = pids(daemon)
    assert len(restarted) == 2
    assert not set(restarted) & set(started)

    assert ctl(daemon, "reload", "sleeper", "--waiting").returncode == 0
    wait_until(lambda: len(pids(daemon)) == 2 and not set(pids(daemon)) & set(restarted),
               "2 new processes after reload")

    out = ctl(daemon, "start", "oth.*", "--match", "regex", "--waiting")
    assert out.returncode == 0
    assert daemon.call("status", name="Other")["status"] == "active"


def test_kill_signal_add_rm(daemon: CircusdProcess) -> None:
    victim, survivor = pids(daemon)
    out = ctl(daemon, "kill", "sleeper", str(victim), "--graceful_timeout", "2", "--waiting")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    assert wait_gone(victim)
    wait_until(lambda: len(pids(daemon)) == 2 and victim not in pids(daemon),
               "the killed process replaced")
    assert survivor in pids(daemon)

    out = ctl(daemon, "signal", "sleeper", str(survivor), "KILL")
    assert out.returncode == 0
    assert wait_gone(survivor)
    wait_until(lambda: len(pids(daemon)) == 2 and survivor not in pids(daemon),
               "the signalled process replaced")

    out = ctl(daemon, "add", "--start", "extra", "sleep", "1000")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    wait_until(lambda: daemon.call("status", name="extra")["status"] == "active",
               "the added watcher active")
    extra = pids(daemon, "extra")
    assert len(extra) == 1
    out = ctl(daemon, "rm", "extra", "--waiting")
    assert out.returncode == 0
    assert "extra" not in daemon.call("list")["watchers"]
    assert wait_gone(extra[0])

    ctl(daemon, "add", "--start", "kept", "sleep", "1000")
    wait_until(lambda: len(pids(daemon, "kept")) == 1, "the kept watcher's process")
    (kept,) = pids(daemon, "kept")
    try:
        out = ctl(daemon, "rm", "kept", "--nostop", "--waiting")
        assert out.returncode == 0
        assert "kept" not in daemon.call("list")["watchers"]
        assert pid_state(kept) not in (None, "Z")  # --nostop reached the daemon (C14 fixed)
    finally:
        os.kill(kept, signal.SIGKILL)
        wait_gone(kept)


def test_add_takes_start_before_name_or_at_the_end_as_019_did(daemon: CircusdProcess) -> None:
    # contract 10.2: `circusctl add [--start] NAME CMD`; 0.19 also read --start (and the
    # global options) after CMD, and scripts written for it put it there
    out = ctl(daemon, "add", "late", "sleep", "1000", "--start")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    out = ctl(daemon, "add", "quoted", "sleep 1000", "--start", "--json")
    assert out.returncode == 0
    assert json.loads(out.stdout)["status"] == "ok"
    for name in ("late", "quoted"):
        wait_until(lambda name=name: daemon.call("status", name=name)["status"] == "active",
                   "the watcher active")
        assert daemon.call("get", name=name, keys=["cmd"])["options"]["cmd"] == "sleep 1000"
        assert len(pids(daemon, name)) == 1
    # inside the command line, or after --, it is the program's: added, not started
    out = ctl(daemon, "add", "inner", "--", "sleep", "1000", "--start")
    assert out.returncode == 0
    assert daemon.call("status", name="inner")["status"] == "stopped"
    assert daemon.call("get", name="inner", keys=["cmd"])["options"]["cmd"] == (
        "sleep 1000 --start")
    for name in ("late", "quoted", "inner"):
        assert ctl(daemon, "rm", name, "--waiting").returncode == 0


def test_quit_stops_the_daemon_and_its_processes(daemon: CircusdProcess) -> None:
    running = pids(daemon)
    out = ctl(daemon, "quit", "--waiting")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    assert daemon.popen is not None
    assert daemon.popen.wait(30) == 0
    assert all(wait_gone(pid) for pid in running)


class LineReader:
    """Reads a child's stdout on a thread, so the test can wait for lines with a deadline."""

    def __init__(self, stream: IO[str]) -> None:
        self.lines: queue.Queue[str] = queue.Queue()
        self._thread = threading.Thread(target=self._pump, args=(stream,), daemon=True)
        self._thread.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            self.lines.put(line.rstrip("\n"))

    def wait_for(self, predicate: Callable[[str], bool], deadline: float,
                 poke: Callable[[], object] = lambda: None) -> str:
        while True:
            poke()
            try:
                line = self.lines.get(timeout=0.2)
            except queue.Empty:
                line = ""
            if line and predicate(line):
                return line
            assert time.monotonic() < deadline, "circusctl listen printed nothing matching"


def test_listen_prints_events_until_interrupted(daemon: CircusdProcess) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "circus.circusctl", "--endpoint", daemon.pubsub_endpoint,
         "listen", "watcher.sleeper."],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        reader = LineReader(proc.stdout)
        deadline = time.monotonic() + 30
        # the subscription is live once a no-op `set` shows up (ZeroMQ slow joiner)
        reader.wait_for(
            lambda line: line.startswith("watcher.sleeper.updated: "), deadline,
            poke=lambda: daemon.call("set", name="sleeper", options={"graceful_timeout": 5}),
        )
        daemon.call("incr", name="sleeper", waiting=True)
        spawn = reader.wait_for(lambda line: ".spawn: " in line, deadline)
        topic, payload = spawn.split(": ", 1)
        assert topic == "watcher.sleeper.spawn"
        assert json.loads(payload)["process_pid"] in pids(daemon)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_interactive_prompt_runs_each_line(daemon: CircusdProcess) -> None:
    out = ctl(daemon, stdin="list\nstatus sleeper\nbogus\nincr sleeper --waiting\n")
    assert out.returncode == 0
    assert out.stdout.startswith(f"circusctl {__version__}\nOther: stopped\nsleeper: active\n")
    assert "(circusctl) other,sleeper\n" in out.stdout
    assert "(circusctl) active\n" in out.stdout
    assert "(circusctl) 3\n" in out.stdout
    assert "invalid choice: 'bogus'" in out.stderr
    assert len(pids(daemon)) == 3


def test_reloadconfig_ipython_and_more_error_paths(daemon: CircusdProcess) -> None:
    before = pids(daemon)
    out = ctl(daemon, "reloadconfig", "--waiting")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    assert sorted(pids(daemon)) == sorted(before)  # unchanged config: nothing restarted
    out = ctl(daemon, "ipython")
    assert out.returncode == 0
    assert out.stdout.strip()
    out = ctl(daemon, "numprocesses", "nope")
    assert (out.returncode, out.stderr) == (3, "error: program nope not found\n")
    out = ctl(daemon, "kill", "nope")
    assert out.returncode == 3
    out = ctl(daemon, "signal", "sleeper", "SIGNOPE")
    assert out.returncode == 3
    assert out.stderr.startswith("error: ")


def test_incr_while_backing_off_says_when_the_new_processes_start(
    circusd: Callable[..., CircusdProcess],
) -> None:
    # a crash loop held back for 30 s: the new slots wait for that retry (starting them now
    # would side-step the backoff); the reply says so in fields 0.19 clients ignore, circusctl
    # on stderr (stdout stays the number scripts read), the daemon in its log
    daemon = circusd("[watcher:crasher]\ncmd = sh -c 'exit 1'\nbackoff_start = 30\n"
                     "backoff_max = 30\n")
    wait_until(lambda: daemon.call("status", name="crasher")["status"] == "backoff",
               "the crash loop in backoff")
    reply = daemon.call("incr", name="crasher", nb=2, waiting=True)
    assert reply["status"] == "ok"
    assert reply["numprocesses"] == 3
    assert reply["state"] == "backoff"
    assert 0 < reply["retry_in"] <= 30
    assert pids(daemon, "crasher") == []  # nothing started behind the backoff's back
    out = ctl(daemon, "incr", "crasher")
    assert (out.returncode, out.stdout) == (0, "ok\n")
    assert "crasher is backing off" in out.stderr
    assert "start at its next retry" in out.stderr
    out = ctl(daemon, "incr", "crasher", "--waiting")
    assert (out.returncode, out.stdout) == (0, "5\n")
    assert "backing off" in out.stderr
    assert "more processes wanted while backing off" in daemon.log_text()
    # decr and an incr on a healthy watcher say nothing more than before
    out = ctl(daemon, "decr", "crasher", "--waiting")
    assert (out.returncode, out.stdout, out.stderr) == (0, "4\n", "")
    assert "state" not in daemon.call("decr", name="crasher", waiting=True)
