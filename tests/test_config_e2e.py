"""Config files through a real circusd: env sections, substitution, plugin argv, config errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from circus.testing import CircusdProcess

PROBE_PLUGIN = """
import json, os, threading


class Probe:
    name = "probe"

    def __init__(self, endpoint, pubsub_endpoint, check_delay, ssh_server=None, **config):
        self.done = threading.Event()
        seen = {"check_delay": check_delay, "config": config}
        tmp = os.environ["PROBE_OUT"] + ".tmp"
        with open(tmp, "w") as handle:
            json.dump(seen, handle)
        os.replace(tmp, os.environ["PROBE_OUT"])

    def start(self):
        self.done.wait(120)

    def stop(self):
        self.done.set()
"""

CHILD = """
import json, os, sys, time
tmp = sys.argv[1] + ".tmp"
with open(tmp, "w") as handle:
    json.dump({"argv": sys.argv[2:], "env": dict(os.environ)}, handle)
os.replace(tmp, sys.argv[1])
time.sleep(120)
"""


def wait_json(path: Path, timeout: float = 30.0) -> Any:
    """Bounded wait for a file a child writes atomically (os.replace)."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} was not written within {timeout}s"
        time.sleep(0.05)
    return json.loads(path.read_text())


def test_config_reaches_processes(tmp_path: Path) -> None:
    (tmp_path / "h3_e2e_probe.py").write_text(PROBE_PLUGIN)
    (tmp_path / "child.py").write_text(CHILD)
    (tmp_path / "conf.d").mkdir()
    (tmp_path / "conf.d" / "plugin.ini").write_text(
        "[plugin:probe]\nuse = h3_e2e_probe.Probe\nmessage = hello  big 'world'\n"
        "graceful_timeout = 5\n"
    )
    seen_child = tmp_path / "child.json"
    seen_plugin = tmp_path / "plugin.json"
    config = f"""\
[circus]
include_dir = conf.d

[env]
GREETING = hi there
PROBE_OUT = {seen_plugin}

[env:work*]
ROLE = worker

[watcher:worker]
cmd = {sys.executable} {tmp_path}/child.py {seen_child} $(circus.env.ROLE) $(circus.wid)
stop_signal = TERM
graceful_timeout = 5
"""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path])}
    with CircusdProcess(config, tmp_path, check_delay=0.5, env=env) as daemon:
        child = wait_json(seen_child)
        assert child["argv"] == ["worker", "1"]  # load-time env + spawn-time wid
        assert child["env"]["GREETING"] == "hi there"
        assert child["env"]["ROLE"] == "worker"
        plugin = wait_json(seen_plugin)
        assert plugin["check_delay"] == 0.5
        assert plugin["config"] == {
            "name": "plugin:probe",
            "message": "hello  big 'world'",
            "graceful_timeout": "5",
        }
        names = daemon.call("list")["watchers"]
        assert sorted(names) == ["plugin:probe", "worker"]


def test_config_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    path = tmp_path / "circus.ini"
    path.write_text("[watcher:web]\ncmd = sleep 10\nstop_signal = SIGNOPE\n")
    result = subprocess.run(
        [sys.executable, "-m", "circus.circusd", str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    output = result.stdout + result.stderr
    assert "Traceback" not in output
    assert f"{path}: [watcher:web]: stop_signal: unknown signal 'SIGNOPE'" in output
