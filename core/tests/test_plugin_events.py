"""Events a plugin can trust: start-up window, gaps, daemon restarts, the bounded queue, snapshots.

Real circusd processes and real plugin sockets; the plugins run in-process so the tests can read
their gap reports and counters.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from circus.errors import CallTimeout
from circus.plugins import AsyncCircusPlugin, CircusPlugin, PluginCore
from circus.plugins.sequence import Gap, read_stamp
from circus.plugins.snapshot import Snapshot
from circus.plugins.testing import RunningPlugin
from circus.testing import CircusdProcess, wait_until
from circus.transports import CommandClient

WAIT = 20.0
CONFIG = "[watcher:w]\ncmd = sleep 120\nnumprocesses = 2\n"


@contextmanager
def running(plugin: PluginCore) -> Iterator[PluginCore]:
    """Run ``plugin`` on a thread until it is subscribed; stop it afterwards (bounded), and
    re-raise what ``start()`` raised (circus.plugins.testing.RunningPlugin)."""
    with RunningPlugin(plugin, timeout=WAIT):
        yield plugin


def provoke(daemon: CircusdProcess, plugin: PluginCore, count: int = 1) -> None:
    """Publish ``updated`` events until the plugin has received ``count`` more events."""
    target = plugin.event_counters.received + count
    deadline = time.monotonic() + WAIT
    while plugin.event_counters.received < target:
        daemon.call("set", name="w", options={"graceful_timeout": 30})
        if time.monotonic() > deadline:
            pytest.fail("the plugin never received the provoked events")


class GapRecorder(CircusPlugin):
    name = "gaps"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gaps: list[Gap] = []
        self.snapshots: list[Snapshot] = []
        self.received = 0
        self.release = threading.Event()
        self.release.set()

    def handle_init(self) -> None:
        self.snapshots.append(self.snapshot())

    def handle_gap(self, gap: Gap) -> None:
        self.gaps.append(gap)
        if gap.kind != "start":
            self.snapshots.append(self.snapshot())

    def handle_recv(self, data: tuple[str, str]) -> None:
        self.release.wait(WAIT)
        self.received += 1


def make(cls: type[PluginCore], daemon: CircusdProcess, **config: Any) -> Any:
    return cls(endpoint=daemon.endpoint, pubsub_endpoint=daemon.pubsub_endpoint,
               check_delay=1, **config)


def test_stamps_are_read_without_decoding() -> None:
    assert read_stamp(b'{"time": 1.5, "boot": "ab12", "seq": 42}') == ("ab12", 42)
    assert read_stamp(b'{"cmd": "say \\"seq\\": 3", "boot": "x", "seq": 7}') == ("x", 7)
    assert read_stamp(b'{"time": 1.5}') is None  # a 0.19 daemon: delivered untracked


def test_snapshot_at_init_and_the_start_up_window(tmp_path: Path) -> None:
    with CircusdProcess(CONFIG, tmp_path, check_delay=1) as daemon:
        plugin = make(GapRecorder, daemon)
        with running(plugin):
            (snap,) = plugin.snapshots
            assert set(snap.watchers) == {"w"}
            assert snap.watchers["w"].status == "active"
            assert sorted(snap.watchers["w"].pids) == sorted(
                daemon.call("list", name="w")["pids"])
            provoke(daemon, plugin)
        # circusd published spawn/start events before the plugin existed: reported once,
        # as the start-up window, with how many there were
        start = [g for g in plugin.gaps if g.kind == "start"]
        assert len(start) == 1
        assert start[0].missed == start[0].seq - 1 >= 3
        assert not [g for g in plugin.gaps if g.kind != "start"]


def test_daemon_restart_is_reported_and_the_plugin_resynchronises(tmp_path: Path) -> None:
    first = CircusdProcess(CONFIG, tmp_path, check_delay=1).start()
    try:
        plugin = make(GapRecorder, first)
        with running(plugin):
            provoke(first, plugin)
            old_boot = plugin.gaps[0].boot
            first.kill()  # a crash: SIGKILL, no goodbye
            # same tmp dir, same ipc endpoints: ZeroMQ reconnects both sockets by itself
            with CircusdProcess(CONFIG, tmp_path, check_delay=1) as second:
                provoke(second, plugin)
                restarts = [g for g in plugin.gaps if g.kind == "restart"]
                assert len(restarts) == 1
                assert restarts[0].boot != old_boot
                assert plugin.event_counters.restarts == 1
                # handle_gap took a fresh snapshot: the new daemon's pids
                wait_until(lambda: len(plugin.snapshots) == 2, "snapshot after the restart")
                assert sorted(plugin.snapshots[-1].watchers["w"].pids) == sorted(
                    second.call("list", name="w")["pids"])
    finally:
        first.kill()


def test_a_blocked_plugin_stays_within_its_bound_and_reports_the_drops(tmp_path: Path) -> None:
    bound = 50
    with CircusdProcess(CONFIG, tmp_path, check_delay=1) as daemon:
        plugin = make(GapRecorder, daemon, queue_size=str(bound))
        with running(plugin):
            provoke(daemon, plugin)
            plugin.release.clear()
            provoke(daemon, plugin)  # the handler now blocks on this event
            published = 10 * bound
            with CommandClient(daemon.endpoint, timeout=WAIT) as client:
                for _ in range(published):
                    client.call("set", name="w", options={"graceful_timeout": 30})
                # the last one went out after all the others: wait until the loop has read it
                last_seq = daemon.call("set", name="w", options={"graceful_timeout": 30})
            assert last_seq["status"] == "ok"
            wait_until(lambda: plugin._pc_inbox.dropped_total >= published - bound,
                       "the queue to overflow")
            assert len(plugin._pc_inbox._events) <= bound
            before = plugin.received
            plugin.release.set()
            wait_until(lambda: any(g.kind == "gap" for g in plugin.gaps), "the gap report")
            (gap,) = [g for g in plugin.gaps if g.kind == "gap"]
            assert gap.dropped >= published - bound
            assert gap.missed >= gap.dropped
            wait_until(lambda: plugin.event_counters.dropped == plugin._pc_inbox.dropped_total,
                       "the counters to settle")
            # it handled what its queue held, not the whole burst
            assert plugin.received - before <= bound + 2
            provoke(daemon, plugin)  # and it keeps running
        assert plugin.event_counters.gaps == 1


def test_async_plugin_call_timeout_and_gap_callback(tmp_path: Path) -> None:
    class Async(AsyncCircusPlugin):
        name = "async-gaps"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.gaps: list[Gap] = []
            self.snapshot_pids: set[int] = set()

        async def handle_init(self) -> None:
            self.snapshot_pids = (await self.snapshot()).pids()

        async def handle_gap(self, gap: Gap) -> None:
            self.gaps.append(gap)

        async def handle_recv(self, data: tuple[str, str]) -> None:
            pass

    with CircusdProcess(CONFIG, tmp_path, check_delay=1) as daemon:
        plugin = make(Async, daemon)
        with running(plugin):
            assert plugin.snapshot_pids == set(daemon.call("list", name="w")["pids"])
            provoke(daemon, plugin)
            assert [g.kind for g in plugin.gaps] == ["start"]
            os.kill(daemon.pid, signal.SIGSTOP)  # a daemon that does not answer
            try:
                started = time.monotonic()
                future = asyncio.run_coroutine_threadsafe(
                    plugin.call("list", timeout=0.3), plugin.loop)
                with pytest.raises(CallTimeout, match="'list'"):
                    future.result(WAIT)
                assert time.monotonic() - started < 1.5
            finally:
                os.kill(daemon.pid, signal.SIGCONT)
            reply = asyncio.run_coroutine_threadsafe(plugin.call("list"), plugin.loop)
            assert reply.result(WAIT)["status"] == "ok"
