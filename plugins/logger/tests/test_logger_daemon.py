"""The logger plugin run by a real circusd (``use = logger``) and by the runner."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from circus.testing import CircusdError, CircusdProcess, wait_until

TIMEOUT = 30.0
WATCHERS = (
    "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\n\n[watcher:other]\ncmd = sleep 120\n\n"
)


def config(log: Path, **options: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in options.items())
    return f"{WATCHERS}[plugin:logger]\nuse = logger\nfilename = {log}\n{extra}"


def lines(path: Path) -> list[str]:
    try:
        return path.read_text().splitlines()
    except FileNotFoundError:
        return []


def poke_until(daemon: CircusdProcess, watcher: str, seen: Callable[[], bool]) -> None:
    """``set`` a no-op option (-> ``updated`` event) until the plugin has written it."""
    value = daemon.call("get", name=watcher, keys=["graceful_timeout"])["options"]
    deadline = time.monotonic() + TIMEOUT
    while True:
        daemon.call("set", name=watcher, options=value)
        try:
            wait_until(seen, "the plugin", timeout=0.3)
            return
        except AssertionError:
            if time.monotonic() > deadline:
                raise AssertionError(f"logger never wrote:\n{daemon.log_text()}") from None


def plugin_pid(daemon: CircusdProcess) -> int:
    return int(daemon.call("list", name="plugin:logger")["pids"][0])


def test_text_lines_one_per_event_and_rotation(tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    with CircusdProcess(config(log), tmp_path) as daemon:
        poke_until(daemon, "web", lambda: any("watcher.web.updated::" in x for x in lines(log)))
        pid = daemon.call("list", name="web")["pids"][0]
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: any(x.startswith("watcher.web.spawn::") for x in lines(log)), "spawn")
        for line in lines(log):
            topic, sep, payload = line.partition("::")
            assert sep
            assert topic.startswith("watcher.")
            assert isinstance(json.loads(payload)["seq"], int)
        reap = next(x for x in lines(log) if x.startswith("watcher.web.reap::"))
        assert json.loads(reap.partition("::")[2])["process_pid"] == pid

        # logrotate without a signal: the file is renamed away, the next event starts a new one
        log.rename(tmp_path / "events.log.1")
        daemon.call("incr", name="web")
        wait_until(lambda: any(x.startswith("watcher.web.spawn::") for x in lines(log)),
                   "a new file after rename")
        assert any(x.startswith("watcher.web.reap::") for x in lines(tmp_path / "events.log.1"))
        assert not any(x.startswith("watcher.web.reap::") for x in lines(log))

        # SIGHUP: the plugin reopens at once (no event needed to notice)
        log.rename(tmp_path / "events.log.2")
        os.kill(plugin_pid(daemon), signal.SIGHUP)
        wait_until(log.exists, "the file reopened on SIGHUP")
        daemon.call("decr", name="web")
        wait_until(lambda: any(x.startswith("watcher.web.kill::") for x in lines(log)), "kill")
        assert not any("watcher.web.kill::" in x for x in lines(tmp_path / "events.log.2"))


def test_json_format_and_topics_filter(tmp_path: Path) -> None:
    log = tmp_path / "events.jsonl"
    with CircusdProcess(config(log, format="json", topics="watcher.web.*"), tmp_path) as daemon:
        poke_until(daemon, "web", lambda: bool(lines(log)))
        daemon.call("set", name="other", options={"graceful_timeout": 29})
        daemon.call("stop", name="web")
        wait_until(lambda: any('"action":"stop"' in x for x in lines(log)), "stop")
    records = [json.loads(x) for x in lines(log)]
    assert {r["watcher"] for r in records} == {"web"}  # "other" filtered out by the core's hook
    stop = records[-1]
    assert stop["topic"] == "watcher.web.stop"
    assert stop["action"] == "stop"
    assert stop["time"] == stop["payload"]["time"]
    assert sorted(r["action"] for r in records[-5:-1]) == ["kill", "kill", "reap", "reap"]


def test_unwritable_filename_refused_at_load(tmp_path: Path) -> None:
    bad = tmp_path / "missing-dir" / "events.log"
    with pytest.raises(CircusdError) as info:
        CircusdProcess(config(bad), tmp_path, start_timeout=TIMEOUT).start()
    message = str(info.value)
    assert "missing-dir" in message
    assert "does not exist" in message
    assert "Traceback" not in message


def test_runner_reports_a_bad_file_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "missing-dir" / "events.log"
    result = subprocess.run(
        [sys.executable, "-m", "circus.plugins.runner", "--endpoint", "ipc://nowhere",
         "--pubsub", "ipc://nowhere-events", "logger", f"filename={bad}"],
        capture_output=True, text=True, timeout=TIMEOUT, check=False,
    )
    assert result.returncode == 1
    assert "does not exist" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
