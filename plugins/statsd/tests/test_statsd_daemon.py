"""The statsd plugin run by a real circusd (``use = statsd``), sending to real receivers."""

from __future__ import annotations

import os
import re
import signal
import time
from collections.abc import Callable
from pathlib import Path

from statsd_servers import EtsyStatsd, UdpReceiver

from circus.testing import CircusdProcess

TIMEOUT = 30.0
# Every line the plugin may send: bucket-safe names, a counter or a gauge, nothing else.
LINE = re.compile(r"circus\.app\.watcher\.[A-Za-z0-9_.-]+\.[a-z_]+:[0-9]+(\.[0-9]+)?\|[cg]")


def config(port: int, gauge_interval: str = "0.5") -> str:
    return (
        # min_uptime = 0: the SIGKILL below is a normal exit, respawned without a backoff event
        "[watcher:web]\ncmd = sleep 120\nnumprocesses = 2\nmin_uptime = 0\n\n"
        "[plugin:statsd]\nuse = statsd\nhost = 127.0.0.1\n"
        f"port = {port}\ngauge_interval = {gauge_interval}\n"
    )


def poke_until(daemon: CircusdProcess, seen: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    """``set`` a no-op option on web (-> an ``updated`` event) until ``seen()`` says it arrived."""
    value = daemon.call("get", name="web", keys=["graceful_timeout"])["options"]
    deadline = time.monotonic() + timeout
    while not seen():
        if time.monotonic() > deadline:
            raise AssertionError(f"the plugin never reported events:\n{daemon.log_text()}")
        daemon.call("set", name="web", options=value)


def test_counters_and_gauges_exactly(tmp_path: Path, udp_receiver: UdpReceiver) -> None:
    received: list[str] = []

    def take(wait: float = 0.2) -> list[str]:
        received.extend(udp_receiver.nothing_more(wait))
        return received

    with CircusdProcess(config(udp_receiver.port), tmp_path) as daemon:
        poke_until(daemon, lambda: "circus.app.watcher.web.updated:1|c" in take())
        # A gauge per watcher, the plugin's own one bucket-safe.
        deadline = time.monotonic() + TIMEOUT
        gauges = {"circus.app.watcher.web.numprocesses:2|g",
                  "circus.app.watcher.plugin_statsd.numprocesses:1|g"}
        while not gauges <= set(take()):
            assert time.monotonic() < deadline, received
        mark = len(received)
        pid = daemon.call("list", name="web")["pids"][0]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + TIMEOUT
        while "circus.app.watcher.web.spawn:1|c" not in take()[mark:]:
            assert time.monotonic() < deadline, received
        # (an ``updated`` of a late poke may still trickle in: not part of the story)
        counters = [line for line in received[mark:]
                    if line.endswith("|c") and ".updated:" not in line]
        assert counters == ["circus.app.watcher.web.reap:1|c", "circus.app.watcher.web.spawn:1|c"]
        daemon.call("stop", name="web")
        deadline = time.monotonic() + TIMEOUT
        while "circus.app.watcher.web.stop:1|c" not in take():
            assert time.monotonic() < deadline, received
    bad = [line for line in received if not LINE.fullmatch(line)]
    assert bad == []
    # FullStats gauges: web's two processes, never the plugin watchers
    assert "circus.app.watcher._stats.web.watchers_num:2|g" in received
    rss = [line for line in received if line.startswith("circus.app.watcher._stats.web.mem_sum:")]
    assert rss
    assert float(rss[0].split(":")[1].split("|")[0]) > 100_000  # two sleeps' resident memory
    assert not [line for line in received if "_stats.plugin" in line]
    tail = [line for line in received if line.endswith("|c") and ".updated:" not in line][-5:]
    assert sorted(tail[:4]) == [
        "circus.app.watcher.web.kill:1|c",
        "circus.app.watcher.web.kill:1|c",
        "circus.app.watcher.web.reap:1|c",
        "circus.app.watcher.web.reap:1|c",
    ]
    assert tail[4] == "circus.app.watcher.web.stop:1|c"


def test_etsy_daemon_counts_circusd_events(tmp_path: Path, etsy_statsd: EtsyStatsd) -> None:
    with CircusdProcess(config(etsy_statsd.port, gauge_interval="0.3"), tmp_path) as daemon:
        def updated_counted() -> bool:
            counters = etsy_statsd.admin("counters")
            return counters.get("circus.app.watcher.web.updated", 0) > 0

        poke_until(daemon, updated_counted)
        for pid in daemon.call("list", name="web")["pids"]:
            os.kill(pid, signal.SIGKILL)
        counters = etsy_statsd.wait_for(
            "counters", lambda c: c.get("circus.app.watcher.web.spawn", 0) >= 2
        )
        assert counters["circus.app.watcher.web.reap"] == 2
        assert counters["statsd.bad_lines_seen"] == 0
        gauges = etsy_statsd.wait_for(
            "gauges", lambda g: "circus.app.watcher.plugin_statsd.numprocesses" in g
        )
        assert gauges["circus.app.watcher.web.numprocesses"] == 2
        assert gauges["circus.app.watcher.plugin_statsd.numprocesses"] == 1
        gauges = etsy_statsd.wait_for(
            "gauges", lambda g: g.get("circus.app.watcher._stats.web.watchers_num") == 2
        )
        assert gauges["circus.app.watcher._stats.web.mem_sum"] > 100_000
        assert gauges["circus.app.watcher._stats.web.mem_max"] <= gauges[
            "circus.app.watcher._stats.web.mem_sum"
        ]
        assert 0 < gauges["circus.app.watcher._stats.web.mem_pct_sum"] < 100
        assert gauges["circus.app.watcher._stats.web.cpu_sum"] >= 0
        assert not [name for name in gauges if "_stats.plugin" in name]
        assert etsy_statsd.admin("counters")["statsd.bad_lines_seen"] == 0
