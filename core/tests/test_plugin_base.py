"""CircusPlugin / AsyncCircusPlugin against a real circusd (ipc:// endpoints in tmp).

Plugins run in-process here (``start()`` on a helper thread) so the tests can look at their
state; the runner and signal handling are tested in test_plugin_runner.py and end to end.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from circus.errors import CallTimeout, ConfigError
from circus.hooks import get_plugin_manager, hookimpl
from circus.hookspecs import PluginEvent
from circus.plugins import AsyncCircusPlugin, CircusPlugin, PluginCore, PluginFailed
from circus.plugins.base import Phase
from circus.plugins.testing import RunningPlugin
from circus.testing import CircusdProcess, wait_until

WAIT = 20.0


@pytest.fixture
def daemon(circusd: Callable[..., CircusdProcess]) -> CircusdProcess:
    return circusd("[watcher:w]\ncmd = sleep 120\n", check_delay=1)


@contextmanager
def running(plugin: PluginCore) -> Iterator[PluginCore]:
    """Run ``plugin`` on a thread until it is subscribed; stop it afterwards (bounded), and
    re-raise what ``start()`` raised (circus.plugins.testing.RunningPlugin)."""
    with RunningPlugin(plugin, timeout=WAIT):
        yield plugin


def subscribed(daemon: CircusdProcess, events: list[Any]) -> None:
    """Provoke ``updated`` events until the plugin has received one (slow-joiner effect)."""
    before = len(events)
    deadline = time.monotonic() + WAIT
    while len(events) == before:
        daemon.call("set", name="w", options={"graceful_timeout": 30})
        if time.monotonic() > deadline:
            pytest.fail("the plugin never received an event")
        time.sleep(0.05)


class Recorder(CircusPlugin):
    name = "recorder"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.events: list[tuple[str, str]] = []
        self.init_reply: dict[str, Any] | None = None
        self.loop_thread: int | None = None
        self.stopped_in: int | None = None

    def handle_init(self) -> None:
        self.loop_thread = threading.get_ident()
        self.init_reply = self.call("list")  # sockets are connected before handle_init

    def handle_recv(self, data: tuple[str, str]) -> None:
        assert threading.get_ident() == self.loop_thread
        self.events.append(data)

    def handle_stop(self) -> None:
        self.stopped_in = threading.get_ident()


def make(cls: type[PluginCore], daemon: CircusdProcess, **config: Any) -> Any:
    return cls(endpoint=daemon.endpoint, pubsub_endpoint=daemon.pubsub_endpoint,
               check_delay=1, **config)


def test_events_calls_and_casts(daemon: CircusdProcess) -> None:
    plugin = make(Recorder, daemon)
    with running(plugin):
        assert plugin.init_reply is not None
        assert plugin.init_reply["watchers"] == ["w"]
        subscribed(daemon, plugin.events)
        assert plugin.call("status", name="w")["status"] == "active"
        plugin.cast("incr", name="w")
        wait_until(lambda: any(t == "watcher.w.spawn" for t, _ in plugin.events), what="spawn")
        assert daemon.call("numprocesses", name="w")["numprocesses"] == 2
        topic, msg = next(e for e in plugin.events if e[0] == "watcher.w.spawn")
        assert isinstance(topic, str)
        assert isinstance(msg, str)
        assert PluginCore.split_data((topic, msg))[:2] == ("w", "spawn")
        assert PluginCore.load_message(msg)["process_pid"] in daemon.call("list", name="w")["pids"]
    assert plugin.stopped_in == threading.get_ident()
    assert not plugin.running


def test_call_inside_handle_recv_does_not_deadlock(daemon: CircusdProcess) -> None:
    class Caller(CircusPlugin):
        name = "caller"
        replies: list[dict[str, Any]]

        def handle_init(self) -> None:
            self.replies = []

        def handle_recv(self, data: tuple[str, str]) -> None:
            self.replies.append(self.call("list", name="w"))

    plugin = make(Caller, daemon)
    with running(plugin):
        subscribed(daemon, plugin.replies)
        assert all(r["status"] == "ok" for r in plugin.replies)


# a 0.3 s timeout must raise within about a second, not merely "eventually"
TIMEOUT_BOUND = 1.5


def test_start_fails_within_connect_timeout_when_nothing_answers(tmp_path: Path) -> None:
    # nothing listens on the control endpoint: start() must say so, not wait forever
    plugin = Recorder(endpoint=f"ipc://{tmp_path}/nobody.sock",
                      pubsub_endpoint=f"ipc://{tmp_path}/nobody-pub.sock", check_delay=1)
    plugin.connect_timeout = 0.3
    started = time.monotonic()
    with pytest.raises(PluginFailed, match=r"no circusd answered at ipc://.*within 0\.3 s"):
        plugin.start()
    assert time.monotonic() - started < TIMEOUT_BOUND
    plugin.stop()
    assert plugin.stopped_in is None  # handle_stop only runs after a successful handle_init
    assert plugin.phase is Phase.FAILED


def test_call_timeout_from_any_thread(daemon: CircusdProcess, tmp_path: Path) -> None:
    plugin = make(Recorder, daemon)
    with running(plugin):
        other = Recorder(endpoint=f"ipc://{tmp_path}/x.sock",
                         pubsub_endpoint=daemon.pubsub_endpoint)
        started = time.monotonic()
        with pytest.raises(CallTimeout):
            other.call("list", timeout=0.3)
        assert time.monotonic() - started < TIMEOUT_BOUND
        other.stop()
        # a timed out call elsewhere does not affect this plugin's calls
        assert plugin.call("list", timeout=WAIT)["status"] == "ok"


def test_handle_recv_error_is_logged_and_the_plugin_keeps_running(
    daemon: CircusdProcess,
) -> None:
    failures: list[tuple[str, str]] = []

    class Spy:
        @hookimpl
        def circus_plugin_failed(self, plugin: Any, stage: str, error: BaseException) -> None:
            failures.append((stage, str(error)))

    class Flaky(Recorder):
        def handle_recv(self, data: tuple[str, str]) -> None:
            super().handle_recv(data)
            if len(self.events) == 1:
                raise RuntimeError("first event breaks")

    pm = get_plugin_manager()
    spy = Spy()
    pm.register(spy)
    try:
        plugin = make(Flaky, daemon)
        with running(plugin):
            subscribed(daemon, plugin.events)
            subscribed(daemon, plugin.events)  # delivery continues after the error
    finally:
        pm.unregister(spy)
    assert ("handle_recv", "first event breaks") in failures


def test_topics_option_and_a_third_party_event_hook(daemon: CircusdProcess) -> None:
    class Rewriter:
        @hookimpl
        def circus_plugin_event(self, plugin: Any, event: PluginEvent) -> None:
            if plugin.name == "recorder" and event.topic.endswith(".kill"):
                event.drop()
            else:
                event.message = event.message.replace("process_pid", "pid")

    class Broken:
        @hookimpl
        def circus_plugin_event(self, plugin: Any, event: PluginEvent) -> None:
            raise RuntimeError("a bad hook must not stop delivery")

    pm = get_plugin_manager()
    hooks = [Rewriter(), Broken()]
    for impl in hooks:
        pm.register(impl)
    try:
        plugin = make(Recorder, daemon, topics="watcher.w.spawn, watcher.*.kill")
        with running(plugin):
            def spawned() -> bool:  # repeat: the subscription may still be settling
                daemon.call("incr", name="w", waiting=True)
                time.sleep(0.05)
                return bool(plugin.events)

            wait_until(spawned, what="spawn event")
            daemon.call("decr", name="w", waiting=True)
            daemon.call("incr", name="w", waiting=True)
            wait_until(lambda: len(plugin.events) >= 2, what="second spawn")
    finally:
        for impl in hooks:
            pm.unregister(impl)
    topics = {t for t, _ in plugin.events}
    assert topics == {"watcher.w.spawn"}  # updated filtered by topics, kill dropped by the hook
    assert all('"pid"' in m and "process_pid" not in m for _, m in plugin.events)


def test_no_event_reaches_handle_recv_once_handle_stop_began(daemon: CircusdProcess) -> None:
    class Strict(Recorder):
        late = 0
        stopping = False

        def handle_recv(self, data: tuple[str, str]) -> None:
            if self.stopping:
                self.late += 1
            super().handle_recv(data)

        def handle_stop(self) -> None:
            self.stopping = True
            time.sleep(0.3)  # events keep coming meanwhile
            super().handle_stop()

    plugin = make(Strict, daemon)
    churn = threading.Event()

    def churner() -> None:
        while not churn.is_set():
            daemon_client_set()

    def daemon_client_set() -> None:
        from circus.transports import CommandClient

        with CommandClient(daemon.endpoint, timeout=WAIT) as client:
            while not churn.is_set():
                client.call("set", name="w", options={"graceful_timeout": 30})

    with running(plugin):
        subscribed(daemon, plugin.events)
        worker = threading.Thread(target=churner, daemon=True)
        worker.start()
        wait_until(lambda: len(plugin.events) > 20, what="a stream of events")
        plugin.stop()  # while events are flowing
    churn.set()
    worker.join(WAIT)
    assert plugin.late == 0


def test_schedule_and_every_run_in_the_loop_thread(daemon: CircusdProcess) -> None:
    plugin = make(Recorder, daemon)
    ticks: list[int] = []
    once: list[int] = []
    with running(plugin):
        periodic = plugin.every(0.02, lambda: ticks.append(threading.get_ident()))
        later = plugin.schedule(0.01, lambda: once.append(threading.get_ident()))
        cancelled = plugin.schedule(0.2, lambda: once.append(-1))
        cancelled.cancel()
        wait_until(lambda: len(ticks) >= 3 and once, what="timers")
        periodic.cancel()
        count = len(ticks)
        time.sleep(0.3)
        assert len(ticks) <= count + 1
        assert later.cancelled is False
    assert set(ticks) == {plugin.loop_thread}
    assert once == [plugin.loop_thread]


def test_async_plugin(daemon: CircusdProcess) -> None:
    class Async(AsyncCircusPlugin):
        name = "async"

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.events: list[tuple[str, str]] = []
            self.pids: list[int] = []
            self.stopped = False

        async def handle_init(self) -> None:
            self.pids = (await self.call("list", name="w"))["pids"]

        async def handle_recv(self, data: tuple[str, str]) -> None:
            self.events.append(data)
            if data[0].endswith(".updated"):
                self.cast("incr", name="w")

        def handle_stop(self) -> None:
            assert self.call_sync("status", name="w")["status"] == "active"
            self.stopped = True

    plugin = make(Async, daemon)
    with running(plugin):
        assert len(plugin.pids) == 1
        subscribed(daemon, plugin.events)
        wait_until(lambda: any(t.endswith(".spawn") for t, _ in plugin.events), what="spawn")
    assert plugin.stopped


def test_constructor_forms_and_options(tmp_path: Path) -> None:
    plugin = CircusPlugin("tcp://127.0.0.1:1", "tcp://127.0.0.1:2", "2.5", None, a="1")
    assert (plugin.endpoint, plugin.pubsub_endpoint, plugin.check_delay) == (
        "tcp://127.0.0.1:1", "tcp://127.0.0.1:2", 2.5)
    assert plugin.config == {"a": "1"}
    assert plugin.active is True
    plugin.stop()  # never started: just releases the loop
    off = CircusPlugin(endpoint="x", pubsub_endpoint="y", check_delay=1, active="Off")
    assert off.active is False
    with pytest.raises(ValueError, match="inactive"):
        off.start()
    off.stop()
    with pytest.raises(ConfigError, match="active"):
        CircusPlugin(active="maybe")
    with pytest.raises(ConfigError, match="SSH"):
        CircusPlugin(ssh_server="me@host:22")


def test_handle_init_failure_makes_start_raise(daemon: CircusdProcess) -> None:
    class Broken(Recorder):
        def handle_init(self) -> None:
            raise OSError("cannot open the file")

    plugin = make(Broken, daemon)
    with pytest.raises(PluginFailed, match="cannot open the file"):
        plugin.start()
    plugin.stop()
    assert plugin.stopped_in is None


def test_plugin_survives_a_circusd_restart(tmp_path: Path) -> None:
    config = "[watcher:w]\ncmd = sleep 120\n"
    first = CircusdProcess(config, tmp_path, check_delay=1).start()
    try:
        plugin = make(Recorder, first)
        with running(plugin):
            subscribed(first, plugin.events)
            first.stop()
            with pytest.raises(CallTimeout):
                plugin.call("list", timeout=0.3)
            # same tmp dir, same ipc endpoints: ZeroMQ reconnects both sockets by itself
            with CircusdProcess(config, tmp_path, check_delay=1) as second:
                assert second.endpoint == first.endpoint
                assert plugin.call("list", timeout=WAIT)["watchers"] == ["w"]
                subscribed(second, plugin.events)
    finally:
        first.stop()
