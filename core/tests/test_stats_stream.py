"""The stats stream of a real circusd (contract 5): topics, payloads, pid tracking."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import zmq
import zmq.asyncio

from circus.logthrottle import Throttle
from circus.stats import Sampler
from circus.stats.stream import StatsStream
from circus.testing import CircusdProcess, EventCollector
from circus.transports import CommandClient

#: keys of a ``stat.<watcher>.<pid>`` payload, exactly those of 0.19's circusd-stats
PROCESS_KEYS = {"pid", "create_time", "cpu", "mem", "mem_info1", "mem_info2", "ctime",
                "username", "nice", "cmdline", "age", "children", "subtopic", "name"}  # fmt: skip
AGGREGATE_KEYS = {"pid", "cpu", "mem", "age"}


@pytest.fixture
def stats_endpoint() -> Iterator[str]:
    """An ipc:// endpoint short enough for sun_path, whatever pytest's tmp path is."""
    folder = tempfile.mkdtemp(prefix="circus-stats-")
    try:
        yield f"ipc://{folder}/stats.sock"
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def config(stats_endpoint: str, *, numprocesses: int = 2) -> str:
    return (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats_endpoint}\n\n"
        f"[watcher:Web App]\ncmd = sleep 120\nnumprocesses = {numprocesses}\n"
    )


def test_topics_and_payloads_follow_the_contract(tmp_path: Path, stats_endpoint: str) -> None:
    with CircusdProcess(config(stats_endpoint), tmp_path) as daemon:
        assert daemon.call("globaloptions", option="stats_endpoint")["options"] == {
            "stats_endpoint": stats_endpoint
        }
        pids = sorted(daemon.call("list", name="Web App")["pids"])
        with EventCollector(stats_endpoint, ["stat."]) as stats:
            for pid in pids:
                stats.wait_for(
                    lambda t, p, pid=pid: t == f"stat.web_app.{pid}" and p["cmdline"] == "sleep"
                )
            _, agg = stats.wait_for(lambda t, p: t == "stat.web_app")
            _, me = stats.wait_for(lambda t, p: t == f"stat.circus.{daemon.pid}")
            _, circus = stats.wait_for(lambda t, p: t == "stat.circus")
        for topic, payload in stats.events:
            parts = topic.split(".")
            assert parts[0] == "stat", topic
            assert len(parts) in (2, 3), topic
            assert set(payload) == (PROCESS_KEYS if len(parts) == 3 else AGGREGATE_KEYS), topic
            if len(parts) == 3:
                assert payload["subtopic"] == payload["pid"] == int(parts[2])
                assert payload["children"] == []
                assert payload["mem_info1"][-1] in "BKMG"
        per_pid = [p for t, p in stats.events if t.startswith("stat.web_app.")]
        assert {p["pid"] for p in per_pid} == set(pids)
        assert all(p["name"] is None for p in per_pid)
        # the latest figures: an early round may catch a child between fork and exec
        latest = {p["pid"]: p for p in per_pid}
        assert {p["cmdline"] for p in latest.values()} == {"sleep"}
        assert sorted(agg["pid"]) == pids
        assert isinstance(agg["cpu"], float)
        assert isinstance(agg["mem"], float)
        assert me["name"] == "circusd"
        assert me["pid"] == daemon.pid
        assert circus["pid"] == [daemon.pid]


def test_the_stream_follows_respawns_and_stops(tmp_path: Path, stats_endpoint: str) -> None:
    with CircusdProcess(config(stats_endpoint, numprocesses=1), tmp_path) as daemon:
        (old,) = daemon.call("list", name="Web App")["pids"]
        with EventCollector(stats_endpoint, ["stat.web_app"]) as stats:
            stats.wait_for(lambda t, p: t == f"stat.web_app.{old}")
            os.kill(old, signal.SIGKILL)
            _, agg = stats.wait_for(lambda t, p: t == "stat.web_app" and p["pid"] != [old])
            (new,) = agg["pid"]
            assert new == daemon.call("list", name="Web App")["pids"][0]
            mark = len(stats.events)
            stats.wait_for(lambda t, p: t == f"stat.web_app.{new}", start=mark)
            daemon.call("stop", name="Web App", waiting=True)
        # a stopped watcher publishes nothing; circus itself keeps going
        with EventCollector(stats_endpoint, ["stat."]) as later:
            later.wait_count(lambda t, p: t == "stat.circus", 2)
            assert not [t for t, _ in later.events if t.startswith("stat.web_app")]


def test_without_statsd_no_stream_runs(tmp_path: Path) -> None:
    with CircusdProcess("[watcher:w]\ncmd = sleep 120\n", tmp_path) as daemon:
        assert daemon.call("status", name="w")["status"] == "active"
        options = daemon.call("globaloptions")["options"]
        assert options["stats_endpoint"] == "tcp://127.0.0.1:5557"  # reported all the same
        assert "stats stream started" not in daemon.log_text()


def test_a_taken_stats_endpoint_is_a_clear_startup_error(
    tmp_path: Path, stats_endpoint: str
) -> None:
    folder = os.path.dirname(stats_endpoint.removeprefix("ipc://"))  # short enough for ipc://
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        endpoint = f"tcp://127.0.0.1:{taken.getsockname()[1]}"
        (tmp_path / "circus.ini").write_text(
            f"[circus]\nendpoint = ipc://{folder}/c.sock\n"
            f"pubsub_endpoint = ipc://{folder}/p.sock\nstats_endpoint = {endpoint}\n"
        )
        done = subprocess.run(
            [sys.executable, "-m", "circus.circusd", str(tmp_path / "circus.ini")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
    assert done.returncode == 1
    assert f"cannot bind: stats_endpoint {endpoint}: Address already in use" in done.stderr
    assert "Traceback" not in done.stderr


def test_spawning_with_rlimits_while_the_sampler_runs(tmp_path: Path, stats_endpoint: str) -> None:
    """rlimits are applied by a preexec function in the forked child while the sampler thread
    runs rounds (a client sends ``stats`` back to back, the stream runs too): no spawn may hang
    or fail because a thread was busy at fork time."""
    text = (
        f"[circus]\nstatsd = true\nstats_endpoint = {stats_endpoint}\n\n"
        "[watcher:limited]\ncmd = sleep 120\nnumprocesses = 4\nrlimit_nofile = 512\n"
        "min_uptime = 0\n"
    )
    with CircusdProcess(text, tmp_path) as daemon:
        done = threading.Event()
        rounds = [0]

        def hammer() -> None:
            with CommandClient(daemon.endpoint, timeout=20) as client:
                while not done.is_set():
                    client.call("stats")
                    rounds[0] += 1

        thread = threading.Thread(target=hammer, daemon=True)
        thread.start()
        try:
            for _ in range(5):
                old = sorted(daemon.call("list", name="limited")["pids"])
                reply = daemon.call("restart", name="limited", waiting=True)
                assert reply["status"] == "ok", reply
                new = sorted(daemon.call("list", name="limited")["pids"])
                assert len(new) == 4
                assert not set(old) & set(new)
        finally:
            done.set()
            thread.join(30)
        assert rounds[0] > 0
        for pid in new:
            with open(f"/proc/{pid}/limits") as limits:
                line = next(x for x in limits if x.startswith("Max open files"))
            assert line.split()[3:5] == ["512", "512"]


class _Nothing:
    """A daemon without watchers or sockets, where the stream's source stands."""

    watchers: list[Any] = []

    def socket_reads(self) -> list[tuple[int, str, int]]:
        return []


def test_a_round_failing_again_and_again_logs_a_bounded_number_of_lines(
    stats_endpoint: str,
) -> None:
    # a closed sampler: every round fails (RuntimeError), one every 10 ms here
    sampler = Sampler()
    sampler.close()

    async def burst() -> tuple[StatsStream, float]:
        context = zmq.asyncio.Context()
        stream = StatsStream(context, stats_endpoint, sampler, _Nothing(), interval=0.01,
                             errors=Throttle("circus.stats", period=0.5, burst=3))
        started = time.monotonic()
        await stream.start()
        try:
            deadline = time.monotonic() + 30
            while stream.failures < 150 and time.monotonic() < deadline:
                await asyncio.sleep(0.02)
        finally:
            await stream.close()
            context.term()
        return stream, time.monotonic() - started

    with structlog.testing.capture_logs() as logs:
        stream, elapsed = asyncio.run(burst())
    assert stream.failures >= 150
    failed = [e for e in logs if e["event"] == "stats round failed"]
    assert failed
    assert failed[0]["log_level"] == "error"
    assert "closed" in failed[0]["error"]
    windows = int(elapsed / 0.5) + 1
    assert len(failed) <= 3 * windows < stream.failures  # bounded, whatever the rate
    # nothing vanishes: logged + suppressed (on later lines, then at close) = every failure
    flushed = [e for e in logs if e["event"] == "stats rounds failed (lines suppressed)"]
    counted = sum(e.get("suppressed", 0) for e in failed + flushed)
    assert len(failed) + counted == stream.failures
