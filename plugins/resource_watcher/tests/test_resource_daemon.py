"""resource_watcher under a real circusd with real memory hogs.

A hog allocates (and touches) 120 MiB once its trigger file exists; limits are 60 MiB of RSS,
far from an idle Python's ~10 MiB, so load on the machine cannot blur the outcome.
"""

from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest
from support import wait_gone
from support.curve import curve_as_admin

from circus.testing import CircusdProcess, EventCollector, log_count, run_plugin, wait_until

TIMEOUT = 30.0
HOG = """\
import os, sys, time
trigger = sys.argv[1].replace("PID", str(os.getpid()))
while not os.path.exists(trigger):
    time.sleep(0.05)
data = b"x" * (120 * 1024 * 1024)
while True:
    time.sleep(1)
"""
PARENT = """\
import subprocess, sys, time
child = subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]])
open(sys.argv[3], "w").write(str(child.pid))
while True:
    child.poll()  # reaps the child once it is gone
    time.sleep(0.1)
"""


LOGGER = "circus.plugins.resource_watcher"


def wait_log(daemon: CircusdProcess, text: str, count: int = 1) -> None:
    wait_until(lambda: log_count(daemon, text, LOGGER) >= count, repr(text), daemon=daemon)


def hog_cmd(tmp_path: Path) -> str:
    (tmp_path / "hog.py").write_text(HOG)
    return f"{sys.executable} {tmp_path / 'hog.py'} {tmp_path / 'hog-PID'}"


def config(watchers: str, **options: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in options.items())
    return (f"[circus]\ndebug = true\n\n{watchers}\n[plugin:resources]\n"
            f"use = resource_watcher\n{extra}")


@pytest.mark.parametrize("stream", [False, True], ids=["stats", "stream"])
def test_kill_only_the_process_over_its_memory_limit(tmp_path: Path, stream: bool) -> None:
    """Polling ``stats``, and with ``statsd = true`` circusd's stats stream (``handle_stats``):
    there ``sample_rate`` is 60 s, so after the first round only the stream can have brought
    the hog to light."""
    watchers = f"[watcher:app]\ncmd = {hog_cmd(tmp_path)}\nnumprocesses = 2\n"
    cfg = config(watchers, watcher="app", max_mem="60M", loop_rate="0.3", max_count="1",
                 action="kill", sample_rate="60" if stream else "0.3")
    if stream:
        cfg = cfg.replace("[circus]\n", f"[circus]\nstatsd = true\n"
                                        f"stats_endpoint = ipc://{tmp_path}/stats.sock\n", 1)
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "app: reading circusd's stats stream" if stream
                 else "watching app every 0.3s")
        ev.wait_ready(daemon, "app")
        hog, other = daemon.call("list", name="app")["pids"]
        mark = len(ev.events)
        (tmp_path / f"hog-{hog}").touch()
        _, killed = ev.wait_for(lambda t, p: t == "watcher.app.kill", timeout=TIMEOUT,
                                start=mark)
        assert killed["process_pid"] == hog
        ev.wait_for(lambda t, p: t == "watcher.app.spawn", timeout=TIMEOUT, start=mark)
        ev.assert_quiet(lambda t, p: t == "watcher.app.kill", 2.5)  # acted once
        assert other in daemon.call("list", name="app")["pids"]
        assert log_count(daemon, "app: over_memory for 0.3s (cpu ", LOGGER)
        assert log_count(daemon, f"killing pid {hog}", LOGGER)
        if stream:  # the first round polled; once the stream flowed it never fell back
            assert log_count(daemon, "app: reading stats every", LOGGER) <= 1
        else:
            assert not log_count(daemon, "reading circusd's stats stream", LOGGER)


def test_a_child_gets_the_child_signal_not_its_parent(tmp_path: Path) -> None:
    (tmp_path / "hog.py").write_text(HOG)
    (tmp_path / "parent.py").write_text(PARENT)
    child_file = tmp_path / "child.pid"
    (tmp_path / "hog-go").touch()  # the child hogs at once (its trigger has no PID in it)
    cmd = (f"{sys.executable} {tmp_path / 'parent.py'} {tmp_path / 'hog.py'} "
           f"{tmp_path / 'hog-go'} {child_file}")
    cfg = config(f"[watcher:parent]\ncmd = {cmd}\n", watcher="parent", max_mem="60M",
                 loop_rate="0.3", max_count="1", process_children="true", child_signal="TERM")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        parent = daemon.call("list", name="parent")["pids"][0]
        deadline = time.monotonic() + TIMEOUT
        while not child_file.exists() or not child_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        child = int(child_file.read_text())
        assert wait_gone(child, timeout=TIMEOUT)  # 0.19 signalled the parents instead (B3)
        wait_log(daemon, f"sending SIGTERM to child {child} of pid {parent}")
        assert daemon.call("list", name="parent")["pids"] == [parent]
        assert not any(t == "watcher.parent.kill" for t, _ in ev.events)


def test_restart_and_the_statsd_counters(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as statsd:
        statsd.bind(("127.0.0.1", 0))
        statsd.settimeout(0.2)
        port = statsd.getsockname()[1]
        watchers = f"[watcher:app]\ncmd = {hog_cmd(tmp_path)}\nnumprocesses = 2\n"
        cfg = config(watchers, watcher="app", max_mem="60M", loop_rate="0.3", max_count="1",
                     host="127.0.0.1", port=str(port), application_name="shop")
        with CircusdProcess(cfg, tmp_path) as daemon, \
                EventCollector(daemon.pubsub_endpoint) as ev:
            wait_log(daemon, "restart after 0.3s over a limit")
            ev.wait_ready(daemon, "app")
            old = set(daemon.call("list", name="app")["pids"])
            mark = len(ev.events)
            (tmp_path / f"hog-{min(old)}").touch()
            ev.wait_count(lambda t, p: t == "watcher.app.spawn", 2, timeout=TIMEOUT, start=mark)
            kills = {p["process_pid"] for t, p in ev.events[mark:] if t == "watcher.app.kill"}
            assert kills == old  # the whole watcher, as in 0.19
            received: set[str] = set()
            deadline = time.monotonic() + TIMEOUT
            wanted = {"circus.shop.watcher._resource_watcher.app.over_memory:1|c",
                      "circus.shop.watcher._resource_watcher.app.restarting:1|c"}
            while not wanted <= received:
                assert time.monotonic() < deadline, received
                try:
                    received.add(statsd.recv(1024).decode())
                except TimeoutError:
                    continue


def test_a_stream_of_another_circusd_is_ignored(tmp_path: Path) -> None:
    """The plugin is handed the stream of a circusd it does not talk to, whose ``app`` hogs:
    it polls its own daemon's ``stats`` instead and acts on nothing."""
    stats = f"ipc://{tmp_path}/stats.sock"
    other_cfg = (f"[circus]\nstatsd = true\nstats_endpoint = {stats}\n\n"
                 f"[watcher:app]\ncmd = {hog_cmd(tmp_path)}\n")
    (tmp_path / "hog-go").touch()
    other_cmd = f"{sys.executable} {tmp_path / 'hog.py'} {tmp_path / 'hog-go'}"
    other_cfg = other_cfg.replace(hog_cmd(tmp_path), other_cmd)
    log = tmp_path / "plugin.log"
    options = {"watcher": "app", "max_mem": "60M", "loop_rate": "0.3", "max_count": "1",
               "action": "kill", "sample_rate": "0.3", "stats_endpoint": stats}
    with CircusdProcess(other_cfg, tmp_path / "other") as other, \
            CircusdProcess("[watcher:app]\ncmd = sleep 120\n", tmp_path / "mine") as mine, \
            EventCollector(mine.pubsub_endpoint) as ev, \
            run_plugin(mine.endpoint, mine.pubsub_endpoint, "resource_watcher", log, options):
        def logged(text: str) -> bool:
            return log.exists() and text in log.read_text()

        wait_until(lambda: logged("app: reading stats every 0.3s"), "polling", daemon=mine)
        hog = other.call("list", name="app")["pids"][0]
        wait_until(lambda: (other.call("stats", name="app")["info"][str(hog)]["mem_info1"]
                            .endswith("M")
                            and float(other.call("stats", name="app")["info"][str(hog)]
                                      ["mem_info1"][:-1]) > 60),
                   "the other daemon's hog over 60M", daemon=other)
        ev.assert_quiet(lambda t, p: t.endswith((".kill", ".stop")), 3.0)
        assert not logged("reading circusd's stats stream")
        assert "Traceback" not in log.read_text()


def test_the_stream_reaches_the_plugin_under_curve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With CURVE the stats stream is a CURVE server like the other channels, and the plugin's
    subscription uses the keys circusd gave it. Before, the stream stayed plain, the plugin's
    CURVE socket never got past the handshake, and it polled ``stats`` for good."""
    daemon_env = {k: v for k, v in os.environ.items() if not k.startswith("CIRCUS_CURVE_")}
    curve = curve_as_admin(tmp_path / "keys", monkeypatch)
    cfg = config("[watcher:app]\ncmd = sleep 120\n", watcher="app", max_mem="60M",
                 loop_rate="0.3", sample_rate="60")
    cfg = cfg.replace("[circus]\n", f"[circus]\nstatsd = true\n"
                                    f"stats_endpoint = ipc://{tmp_path}/stats.sock\n{curve}", 1)
    with CircusdProcess(cfg, tmp_path, env=daemon_env) as daemon:
        wait_log(daemon, "app: reading circusd's stats stream")
        assert "Traceback" not in daemon.log_text()
