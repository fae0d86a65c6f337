"""The circusd command line: version/usage, pidfile, --daemon, signals (contract 10.1, 2.8)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from support import kill_tree, wait_gone

from circus import __version__
from circus.testing import CircusdProcess, EventCollector, free_port, wait_until
from circus.transports import CommandClient

CIRCUSD = [sys.executable, "-m", "circus.circusd"]


def circusd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CIRCUSD, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_version_and_usage() -> None:
    version = circusd("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == __version__
    usage = circusd()
    assert usage.returncode == 0
    assert "usage: circusd" in usage.stdout


def test_bad_log_level_is_one_line(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text("[watcher:w]\ncmd = sleep 1\n")
    result = circusd("--log-level", "loud", str(ini))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_pidfile_written_removed_and_stale_refused(tmp_path: Path) -> None:
    pidfile = tmp_path / "circusd.pid"
    config = "[watcher:w]\ncmd = sleep 120\n"
    daemon = CircusdProcess(config, tmp_path, args=["--pidfile", str(pidfile)]).start()
    try:
        assert pidfile.read_text().strip() == str(daemon.pid)
        second = circusd("--pidfile", str(pidfile), str(daemon.config_path))
        assert second.returncode == 1
        assert f"pid file '{pidfile}' is stale, current pid {daemon.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert daemon.call("status")["statuses"] == {"w": "active"}  # the first one is unharmed
    finally:
        assert daemon.stop() == 0
    assert not pidfile.exists()


def test_daemon_mode_detaches(tmp_path: Path) -> None:
    pidfile = tmp_path / "d.pid"
    sock = tmp_path / "c.sock"
    ini = tmp_path / "c.ini"
    ini.write_text(
        f"[circus]\nendpoint = ipc://{sock}\npubsub_endpoint = ipc://{tmp_path}/p.sock\n"
        "[watcher:w]\ncmd = sleep 120\n"
    )
    result = circusd("--daemon", "--pidfile", str(pidfile), str(ini))
    assert result.returncode == 0
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline, "the daemon never wrote its pidfile"
        time.sleep(0.05)
    pid = int(pidfile.read_text())
    try:
        with CommandClient(f"ipc://{sock}", timeout=20) as client:
            assert client.call("status")["statuses"] == {"w": "active"}
            assert client.call("quit", waiting=True)["status"] == "ok"
        assert wait_gone(pid, 30)
        assert not pidfile.exists()
    finally:
        kill_tree(pid)  # no-op when it quit as it should


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGQUIT])
def test_quit_signals_stop_children_and_exit_zero(tmp_path: Path, signum: int) -> None:
    daemon = CircusdProcess("[watcher:w]\ncmd = sleep 120\nnumprocesses = 2\n", tmp_path).start()
    try:
        children = [p.pid for p in daemon.children()]
        assert len(children) == 2
        os.kill(daemon.pid, signum)
        assert daemon.popen is not None
        assert daemon.popen.wait(30) == 0
        for pid in children:
            assert wait_gone(pid)
    finally:
        daemon.stop()


def test_sighup_reloads_gracefully(tmp_path: Path) -> None:
    config = "[watcher:w]\ncmd = sleep 120\nnumprocesses = 2\n"
    with CircusdProcess(config, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        ev.wait_ready(daemon, "w")
        old = daemon.call("list", name="w")["pids"]
        mark = len(ev.events)
        os.kill(daemon.pid, signal.SIGHUP)
        ev.wait_for(lambda t, p: t == "watcher.w.reload", start=mark)
        actions = [t.rsplit(".", 1)[1] for t, _ in ev.events[mark:]]
        assert actions[:2] == ["spawn", "spawn"]
        new = daemon.call("list", name="w")["pids"]
        assert len(new) == 2
        assert not set(new) & set(old)
        for pid in old:
            assert wait_gone(pid)


def test_sighup_reopens_the_log_file(tmp_path: Path) -> None:
    log = tmp_path / "circusd.out"
    config = "[watcher:w]\ncmd = sleep 120\n"
    args = ["--log-output", str(log), "--log-level", "debug"]
    with (
        CircusdProcess(config, tmp_path, args=args) as daemon,
        EventCollector(daemon.pubsub_endpoint) as ev,
    ):
        ev.wait_ready(daemon, "w")
        assert "circusd started" in log.read_text()
        log.rename(tmp_path / "circusd.out.1")
        mark = len(ev.events)
        os.kill(daemon.pid, signal.SIGHUP)
        ev.wait_for(lambda t, p: t == "watcher.w.reload", start=mark)
        daemon.call("stop", name="w", waiting=True)  # logs "watcher stopped"
        assert "watcher stopped" in log.read_text()
        assert "watcher stopped" not in (tmp_path / "circusd.out.1").read_text()


def test_unopenable_stream_file_exits_1_before_starting(tmp_path: Path) -> None:
    ini = tmp_path / "c.ini"
    ini.write_text(
        f"[circus]\nendpoint = ipc://{tmp_path}/c.sock\npubsub_endpoint = ipc://{tmp_path}/p.sock\n"
        "[watcher:w]\ncmd = sleep 120\n"
        "stdout_stream.class = FileStream\n"
        f"stdout_stream.filename = {tmp_path}/missing/dir/out.log\n"
    )
    result = circusd(str(ini))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "[watcher:w]" in lines[0]
    assert "stdout_stream" in lines[0]
    assert str(ini) in lines[0]


def test_json_log_format(tmp_path: Path) -> None:
    log = tmp_path / "circusd.json"
    args = ["--log-output", str(log), "--log-format", "json"]
    with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", tmp_path, args=args) as daemon:
        daemon.call("stop", name="w", waiting=True)
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    messages = [r.get("event") for r in records]
    assert "circusd started" in messages
    assert "watcher stopped" in messages


def test_statsd_and_httpd_companions_start(tmp_path: Path) -> None:
    """0.19's companions: the stats stream, and httpd's dashboard (circus-plugin-web; its
    own tests drive it in a browser)."""
    stats = f"ipc://{tempfile.mkdtemp(prefix='circus-')}/stats.sock"
    port = free_port()
    config = (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats}\nhttpd = true\n"
        f"httpd_port = {port}\n\n[watcher:w]\ncmd = sleep 60\n"
    )
    with CircusdProcess(config, tmp_path) as daemon:
        assert daemon.call("status", name="w")["status"] == "active"
        wait_until(lambda: "dashboard on http://127.0.0.1:" in daemon.log_text(),
                   "the dashboard listening", daemon=daemon)
        log = daemon.log_text()
    assert "not supported" not in log
    assert "stats stream started" in log
