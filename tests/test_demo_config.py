"""The demo (demo/circus.ini) does what demo/README.md promises, under a real circusd.

The demo is copied to a temporary directory and run there (it uses paths relative to its own
directory, as `python3 dev.py demo` runs it), with ipc endpoints and a free UDP port instead of
the fixed loopback ports, so it cannot collide with anything else on the machine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import time
import urllib.request
from pathlib import Path

import pytest

from circus.config import load_config
from circus.testing import CircusdProcess, EventCollector, free_port, wait_until

DEMO = Path(__file__).resolve().parents[1] / "demo"
TIMEOUT = 60.0


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_demo_config_loads_the_three_plugins_by_short_name() -> None:
    cfg = load_config(str(DEMO / "circus.ini"))
    names = {w.name for w in cfg.watchers}
    assert {"worker", "crasher", "statsd-receiver"} <= names
    assert {"plugin:logger", "plugin:statsd", "plugin:flapping", "plugin:notify",
            "plugin:http_observer", "plugin:watchdog", "plugin:command_reloader",
            "plugin:autoscale"} <= names


def test_demo_runs_as_documented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    demo = tmp_path / "demo"
    shutil.copytree(DEMO, demo, ignore=shutil.ignore_patterns("*.log", "__pycache__"))
    text = (demo / "circus.ini").read_text()
    text = re.sub(r"^(endpoint|pubsub_endpoint) = .*\n", "", text, flags=re.MULTILINE)
    text = text.replace("18125", str(free_udp_port()))
    text = text.replace("18080", str(free_port()))
    text = text.replace("11664", str(free_udp_port()))
    web_port = free_port()
    text = text.replace("httpd_port = 8080", f"httpd_port = {web_port}")
    monkeypatch.chdir(demo)  # circusd (and so the relative paths) run from the demo directory
    with CircusdProcess(text, demo) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        # while the crasher flaps (its incident takes ~15 s), two other plugins are driven
        check_watchdog_and_autoscale(demo, daemon, ev)
        # The flapping plugin stops the crasher, retries twice (5 s apart), then gives up.
        ev.wait_count(lambda t, p: t == "watcher.crasher.stop", 3, timeout=TIMEOUT)
        deadline = time.monotonic() + TIMEOUT
        while "crasher: left stopped after 2 retries" not in daemon.log_text():
            assert time.monotonic() < deadline, daemon.log_text()
            time.sleep(0.1)
        assert daemon.call("status", name="crasher")["status"] == "stopped"
        assert daemon.call("status", name="worker")["status"] == "active"
        output = daemon.log_text()
        # statsd lines left the plugin and reached the receiver, with bucket-safe names.
        assert "statsd <- circus.demo.watcher.crasher.reap:1|c" in output
        assert "statsd <- circus.demo.watcher.plugin_flapping.numprocesses:1|g" in output
        # The logger's file filled with one line per event.
        events = (demo / "events.log").read_text().splitlines()
        assert any(line.startswith("watcher.crasher.stop::") for line in events)
        # notify: one alert for the whole flapping incident (retries included)
        alerts = [line for line in output.splitlines() if "alert <- " in line]
        assert len(alerts) == 1, alerts
        assert "alert <- crasher: stopped " in alerts[0]
        assert daemon.call("status", name="webhook-receiver")["status"] == "active"
        assert all("::{" in line for line in events)
        check_dashboard(web_port)
        check_command_reloader(demo, daemon, ev)  # after the alert count: notify reports it


def wait_pids(daemon: CircusdProcess, watcher: str, count: int) -> list[int]:
    """``watcher``'s pids once it lists ``count`` (circusd answers while still spawning)."""
    def enough() -> list[int] | None:
        pids = list(daemon.call("list", name=watcher)["pids"])
        return pids if len(pids) >= count else None

    return wait_until(enough, f"{count} {watcher} process(es)", TIMEOUT, daemon=daemon)


def check_dashboard(port: int) -> None:
    """httpd = true: the dashboard lists the demo's watchers and plugins (docs/web.md; its
    own tests drive it in a browser)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/state", timeout=10) as reply:
        names = {watcher["name"] for watcher in json.load(reply)["watchers"]}
    assert {"worker", "crasher", "plugin:web", "plugin:flapping"} <= names, names


def check_watchdog_and_autoscale(demo: Path, daemon: CircusdProcess, ev: EventCollector) -> None:
    """watchdog and autoscale do what demo/README.md says.

    The heartbeat is frozen and the load raised together: each plugin takes several of its
    check periods to act, and they do not touch the same watcher."""
    # watchdog: a frozen (SIGSTOP) heartbeat process is killed and replaced
    frozen = wait_pids(daemon, "heartbeat", 1)[0]
    os.kill(frozen, signal.SIGSTOP)
    # autoscale: a high figure in demo/load adds worker processes up to max (4)
    (demo / "load").write_text("90\n")
    ev.wait_for(lambda t, p: t == "watcher.heartbeat.kill"
                and p["process_pid"] == frozen, timeout=TIMEOUT)
    ev.wait_for(lambda t, p: t == "watcher.heartbeat.spawn"
                and p["process_pid"] != frozen, timeout=TIMEOUT)
    wait_pids(daemon, "worker", 4)
    assert "worker: 2 -> 3 processes (command 90.0 above 75 for" in daemon.log_text()


def check_command_reloader(demo: Path, daemon: CircusdProcess, ev: EventCollector) -> None:
    """command_reloader does what demo/README.md says."""
    # command_reloader: a new worker.py restarts the worker
    before = set(daemon.call("list", name="worker")["pids"])
    mark = len(ev.events)
    (demo / "worker.py").write_text((demo / "worker.py").read_text() + "\n")
    ev.wait_for(lambda t, p: t == "watcher.worker.kill" and p["process_pid"] in before,
                timeout=TIMEOUT, start=mark)
    ev.wait_for(lambda t, p: t == "watcher.worker.spawn", timeout=TIMEOUT, start=mark)
    assert "worker.py modified. Restarting." in daemon.log_text()
