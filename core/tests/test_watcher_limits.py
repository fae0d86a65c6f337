"""Spawns that fail for lack of resources, on a real circusd with a lowered RLIMIT_NOFILE:
the reply names the failure, the processes already running survive, nothing is killed later."""

from __future__ import annotations

import resource
import subprocess
import sys
import time
from pathlib import Path

from support import pid_state

from circus.testing import CircusdProcess, EventCollector

#: small enough to run out after a few dozen children (each holds a pidfd and two pipes)
FD_LIMIT = 160


def _lowered() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (FD_LIMIT, FD_LIMIT))


def start_limited(daemon: CircusdProcess) -> None:
    """CircusdProcess.start, with the hard fd limit lowered in the child before exec."""
    daemon.tmp_path.mkdir(parents=True, exist_ok=True)
    daemon.config_path.write_text(daemon.config_text)
    with open(daemon.log_path, "ab") as log:
        daemon.popen = subprocess.Popen(
            [sys.executable, "-m", "circus.circusd", str(daemon.config_path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=_lowered,  # noqa: PLW1509 - the test process starts no threads here
        )
    daemon.wait_ready(daemon.start_timeout)


def test_past_the_fd_limit_incr_names_the_failure_and_running_processes_survive(
    tmp_path: Path,
) -> None:
    config = "[watcher:w]\ncmd = sleep 120\nnumprocesses = 5\ngraceful_timeout = 5\n"
    daemon = CircusdProcess(config, tmp_path, check_delay=0.3)
    try:
        start_limited(daemon)
        with EventCollector(daemon.pubsub_endpoint) as events:
            events.wait_ready(daemon, "w")
            before = daemon.call("list", name="w")["pids"]
            assert len(before) == 5
            reply = daemon.client.call("incr", name="w", nb=200, waiting=True, timeout=60)
            assert reply["status"] == "error", reply
            assert "Too many open files" in reply["reason"]
            assert "EMFILE" in reply["reason"]
            running = daemon.call("list", name="w")["pids"]
            assert set(before) <= set(running)  # nothing already running was touched
            assert 5 < len(running) < 205
            # the target follows what runs: no count that does not exist
            count = daemon.call("numprocesses", name="w")["numprocesses"]
            assert count == len(running)
            assert daemon.call("get", name="w", keys=["numprocesses"])["options"] == {
                "numprocesses": len(running)
            }
            # several housekeeping ticks later, nothing was killed and the watcher runs
            deadline = time.monotonic() + 1.5
            while time.monotonic() < deadline:
                time.sleep(0.1)
            assert daemon.call("list", name="w")["pids"] == running
            assert all(pid_state(pid) in ("S", "R") for pid in running)
            assert daemon.call("status", name="w")["status"] in ("active", "backoff")
            assert not [t for t, _ in events.events if t == "watcher.w.stop"]
            daemon.call("stop", name="w", waiting=True)
        log = daemon.log_text()
        assert log.count("spawn failed") == 1, log  # logged once, with its cause
    finally:
        daemon.stop()


def test_unstartable_commands_are_named_in_replies_and_do_not_hold_circusd_back(
    tmp_path: Path,
) -> None:
    config = (
        "[watcher:bad]\ncmd = /nonexistent/prog\n\n"
        "[watcher:good]\ncmd = sleep 120\nnumprocesses = 2\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        # circusd started, the good watcher runs, the bad one is held back, not "active"
        assert len(daemon.call("list", name="good")["pids"]) == 2
        assert daemon.call("status", name="bad")["status"] in ("backoff", "stopped")
        reply = daemon.client.call(
            "add", name="worse", cmd="/nonexistent/other", start=True, waiting=True
        )
        assert reply["status"] == "error"
        assert "ENOENT" in reply["reason"]
        assert "/nonexistent/other" in reply["reason"]
        assert "next try in" in reply["reason"]
        assert daemon.call("status", name="worse")["status"] == "backoff"
        reply = daemon.client.call("start", name="bad", waiting=True)
        assert reply["status"] == "error"
        assert "ENOENT" in reply["reason"]
