"""The watchdog under a real circusd: real children sending real UDP heartbeats.

The children beat every 0.1 s while a "mute" file is absent; creating it silences every
process of that watcher at once. Waits are bounded and event-driven; the only fixed waits are
the "nothing more happens" windows after the last expected event.
"""

from __future__ import annotations

import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from circus.testing import (
    CircusdError,
    CircusdProcess,
    EventCollector,
    log_count,
    wait_until,
)

TIMEOUT = 30.0
BEATER = """\
import os, socket, sys, time
port, mute = int(sys.argv[1]), sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
while True:
    if not os.path.exists(mute):
        sock.sendto(f"{os.getpid()};{time.time()}".encode(), ("127.0.0.1", port))
    time.sleep(0.1)
"""


LOGGER = "circus.plugins.watchdog"


def wait_log(daemon: CircusdProcess, text: str, count: int = 1) -> None:
    wait_until(lambda: log_count(daemon, text, LOGGER) >= count, repr(text), daemon=daemon)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def beater(tmp_path: Path, name: str, port: int, numprocesses: int) -> str:
    script = tmp_path / "beater.py"
    script.write_text(BEATER)
    mute = tmp_path / f"{name}.mute"
    return (f"[watcher:{name}]\ncmd = {sys.executable} {script} {port} {mute}\n"
            f"numprocesses = {numprocesses}\ngraceful_timeout = 2\n\n")


def config(watchers: str, port: int, **options: str) -> str:
    extra = "".join(f"{k} = {v}\n" for k, v in options.items())
    return (f"[circus]\ndebug = true\n\n{watchers}[plugin:watchdog]\nuse = watchdog\n"
            f"port = {port}\n{extra}")


def of(watcher: str, action: str) -> Any:
    return lambda t, p: t == f"watcher.{watcher}.{action}"


def test_silent_processes_are_all_killed_and_respawned(tmp_path: Path) -> None:
    port = free_udp_port()
    watchers = beater(tmp_path, "hb", port, 3) + beater(tmp_path, "steady", port, 1)
    cfg = config(watchers, port, loop_rate="0.2", max_count="3")  # limit 0.6 s
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "monitoring 4 processes")
        ev.wait_ready(daemon, "hb")
        ev.assert_quiet(lambda t, p: t.endswith(".kill"), 1.5)  # beating processes are left alone
        silent = set(daemon.call("list", name="hb")["pids"])
        steady = daemon.call("list", name="steady")["pids"]
        mark = len(ev.events)
        muted_at = time.time()
        (tmp_path / "hb.mute").touch()
        kills = ev.wait_count(of("hb", "kill"), 3, timeout=TIMEOUT)
        assert {p["process_pid"] for _, p in kills[:3]} == silent  # all three, not one (B5)
        for _, payload in kills[:3]:
            # silent since the last beat before the mute (<= 0.1 s earlier), killed after 0.6 s
            assert payload["time"] - muted_at >= 0.6 - 0.15
        # the collector may have seen the first spawns too (it connects as circusd starts)
        before = sum(1 for event in ev.events[:mark] if of("hb", "spawn")(*event))
        respawned = ev.wait_count(of("hb", "spawn"), before + 3, timeout=TIMEOUT)[before:]
        (tmp_path / "hb.mute").unlink()
        new_pids = {p["process_pid"] for _, p in respawned}
        assert not new_pids & silent
        # the respawned processes beat again and are monitored: no further kills
        ev.assert_quiet(lambda t, p: t.endswith(".kill"), 2.0)
        assert daemon.call("list", name="steady")["pids"] == steady
        assert not any(t.startswith("watcher.steady.") and t.endswith(".kill")
                       for t, _ in ev.events[mark:])
        for pid in silent:
            assert log_count(daemon, f"hb: pid {pid} sent no heartbeat for 0.6s: killing it")


def test_bad_and_unknown_heartbeats_are_reported_not_fatal(tmp_path: Path) -> None:
    port = free_udp_port()
    cfg = config(beater(tmp_path, "hb", port, 1), port, loop_rate="0.2", max_count="3",
                 watchers_stop_signal="KILL")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "monitoring 1 processes")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _ in range(5):
                sock.sendto(b"garbage", ("127.0.0.1", port))
            sock.sendto(b"999999999;1", ("127.0.0.1", port))
        wait_log(daemon, "heartbeat from pid 999999999, which is not monitored")
        wait_log(daemon, "does not match msg_regex")
        wait_log(daemon, "(4 such so far)")
        assert not log_count(daemon, "(5 such so far)")  # throttled
        # still working: muting the process gets it killed, with the configured signal
        pid = daemon.call("list", name="hb")["pids"][0]
        mark = len(ev.events)
        (tmp_path / "hb.mute").touch()
        _, reap = ev.wait_for(lambda t, p: t == "watcher.hb.reap" and p["process_pid"] == pid,
                              timeout=TIMEOUT, start=mark)
        assert reap["exit_code"] == -9


def test_unmatched_watchers_and_the_plugin_itself_are_not_monitored(tmp_path: Path) -> None:
    port = free_udp_port()
    watchers = beater(tmp_path, "hb", port, 1) + "[watcher:quiet]\ncmd = sleep 120\n\n"
    cfg = config(watchers, port, loop_rate="0.1", max_count="2", watchers_regex="hb")
    with CircusdProcess(cfg, tmp_path) as daemon, EventCollector(daemon.pubsub_endpoint) as ev:
        wait_log(daemon, "monitoring 1 processes")
        ev.wait_ready(daemon, "quiet")
        plugin_pid = daemon.call("list", name="plugin:watchdog")["pids"]
        ev.assert_quiet(lambda t, p: t.endswith(".kill"), 1.5)  # 7x the limit
        assert daemon.call("list", name="plugin:watchdog")["pids"] == plugin_pid


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        cfg = config("[watcher:w]\ncmd = sleep 120\n\n", port)
        with CircusdProcess(cfg, tmp_path) as daemon:
            deadline = time.monotonic() + TIMEOUT
            while f"cannot listen for heartbeats on 127.0.0.1:{port}" not in daemon.log_text():
                assert time.monotonic() < deadline, daemon.log_text()
                time.sleep(0.05)
            assert "Traceback" not in daemon.log_text()


def test_bad_option_stops_circusd_with_the_key(tmp_path: Path) -> None:
    cfg = config("[watcher:w]\ncmd = sleep 120\n\n", 1664, msg_regex="(?P<when>.*)")
    with pytest.raises(CircusdError, match=r"msg_regex.*no \(\?P<pid>\.\.\.\) group"):
        CircusdProcess(cfg, tmp_path, start_timeout=20).start()
