"""Test helpers for plugin authors: run a plugin against a real circusd, or unit-test it alone.

* :class:`RunningPlugin` runs a plugin *in the test process* (on a thread) against a real circusd
  (:class:`circus.testing.CircusdProcess`), so a test can look at its attributes. Give it a
  class, a dotted path or the short name of an installed plugin. ``start()`` returns once the
  plugin is *subscribed*: ``handle_init`` ran and an event provoked by the helper has reached the
  plugin's socket. That event is counted before any hook runs, so a hook distribution installed
  in the venv that filters events cannot make the wait fail.
* :class:`PluginHarness` builds a plugin without any daemon, replaces its ``call``/``cast`` with
  recording fakes answering from a table, and feeds it events directly: fast unit tests of the
  plugin's logic.

The pytest fixtures over both are in :mod:`circus.plugins.pytest_plugin`.
"""

from __future__ import annotations

import inspect
import json
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from circus.plugins.aio import AsyncCircusPlugin
from circus.plugins.base import PROBE_TOPIC, Phase, PluginCore
from circus.plugins.registry import resolve
from circus.testing import CircusdProcess
from circus.transports import CommandClient

PluginSpec = type[PluginCore] | str
Reply = dict[str, Any]
Responder = Reply | Callable[[dict[str, Any]], Reply]

#: added (not started) when no watcher's events reach the plugin; its events always do
PROBE_WATCHER = PROBE_TOPIC.split(".")[1]


def plugin_class(spec: PluginSpec) -> type[PluginCore]:
    """A plugin class from itself, a dotted path (``pkg.mod.Class``) or an installed short name."""
    if isinstance(spec, type):
        return spec
    cls = resolve(spec).load()
    if not (isinstance(cls, type) and issubclass(cls, PluginCore)):
        raise TypeError(f"{spec!r} is not a circus plugin class: {cls!r}")
    return cls


class RunningPlugin:
    """A plugin running in this process against ``daemon`` (see the module docstring).

    ``plugin`` may also be an instance the test built itself; ``daemon`` may then be omitted
    (the helper talks to the plugin's own endpoint).
    """

    def __init__(self, plugin: PluginSpec | PluginCore, daemon: CircusdProcess | None = None,
                 *, timeout: float = 20.0, **config: Any) -> None:
        self.timeout = timeout
        self._client: CommandClient | None = None
        if daemon is None:
            if not isinstance(plugin, PluginCore):
                raise TypeError("a daemon is needed to build the plugin from a class or name")
            self._client = CommandClient(plugin.endpoint, timeout=timeout)
            self._call: Callable[..., dict[str, Any]] = self._client.call
        else:
            self._call = daemon.call
        if isinstance(plugin, PluginCore):  # built by the test (its own constructor arguments)
            if config:
                raise TypeError("options go to the plugin's constructor, not here")
            self.cls: type[PluginCore] = type(plugin)
            self.plugin: Any = plugin
        else:
            assert daemon is not None
            self.cls = plugin_class(plugin)
            self.plugin = self.cls(endpoint=daemon.endpoint,
                                   pubsub_endpoint=daemon.pubsub_endpoint,
                                   check_delay=1.0, **config)
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, daemon=True,
                                        name=f"test-{self.cls.__name__}")

    def _run(self) -> None:
        try:
            self.plugin.start()
        except BaseException as exc:
            self._errors.append(exc)

    def start(self) -> Any:
        """Start the plugin and wait until it is subscribed; returns the plugin."""
        self._thread.start()
        phase = self.plugin.wait_phase(Phase.RUNNING, Phase.FAILED, Phase.STOPPED,
                                       timeout=self.timeout)
        if phase is not Phase.RUNNING:
            self._thread.join(self.timeout)
            if self._errors:
                raise self._errors[0]
            raise AssertionError(f"{self.cls.__name__} did not start within {self.timeout} s "
                                 f"(phase {phase.value})")
        self.wait_subscribed()
        return self.plugin

    def wait_subscribed(self) -> None:
        """Provoke events until the plugin's socket receives one (ZeroMQ's slow joiner)."""
        counters = self.plugin.event_counters
        before = counters.received
        watcher = self._probe_watcher()
        added = watcher == PROBE_WATCHER
        deadline = time.monotonic() + self.timeout
        try:
            while counters.received == before:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.cls.__name__} received no event within "
                                         f"{self.timeout} s")
                self._call("set", name=watcher, options={"graceful_timeout": 30})
                time.sleep(0.02)
        finally:
            if added:
                self._call("rm", name=watcher)

    def _probe_watcher(self) -> str:
        """A watcher whose ``updated`` events reach the plugin (the probe watcher, added, if no
        other does: the runtime subscribes every plugin to its events)."""
        topics = [str(t) for t in self.cls.subscribe_topics]
        for name in self._call("list").get("watchers", []):
            if any(f"watcher.{name}.updated".startswith(t) for t in topics):
                return str(name)
        reply = self._call("add", name=PROBE_WATCHER, cmd="sleep 1", start=False)
        if reply.get("status") != "ok":
            raise AssertionError(f"cannot add a probe watcher: {reply}")
        return PROBE_WATCHER

    def stop(self) -> None:
        """Stop the plugin (``handle_stop`` runs) and re-raise what ``start()`` raised."""
        self.plugin.stop()
        self._thread.join(self.timeout)
        if self._client is not None:
            self._client.close()
        if self._thread.is_alive():
            raise AssertionError(f"{self.cls.__name__}.start() did not return after stop()")
        if self._errors:
            raise self._errors[0]

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass(frozen=True)
class RecordedCall:
    """One ``call`` (``cast=False``) or ``cast`` a plugin made through a :class:`PluginHarness`."""

    command: str
    properties: dict[str, Any]
    cast: bool = False


@dataclass
class PluginHarness:
    """A plugin built without a daemon, with recording fakes for ``call`` and ``cast``.

    ``replies`` maps a command to its reply (a dict, or a function of the properties returning
    one); unknown commands get ``{"status": "ok"}``. ``send`` feeds one event to
    ``handle_recv`` (awaited for async plugins); ``calls`` lists what the plugin sent.
    """

    cls: type[PluginCore]
    replies: Mapping[str, Responder] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    calls: list[RecordedCall] = field(default_factory=list)

    def __post_init__(self) -> None:
        plugin: Any = self.cls(endpoint="ipc:///nonexistent/circus-harness",
                               pubsub_endpoint="ipc:///nonexistent/circus-harness-events",
                               check_delay=1.0, **self.config)
        self._async = issubclass(self.cls, AsyncCircusPlugin)
        plugin.call = self._async_call if self._async else self._call
        if self._async:
            plugin.call_sync = self._call
        plugin.cast = self._cast
        self.plugin: Any = plugin

    def _reply(self, command: str, props: dict[str, Any]) -> Reply:
        self.calls.append(RecordedCall(command, dict(props)))
        answer = self.replies.get(command, {"status": "ok"})
        return answer(props) if callable(answer) else dict(answer)

    def _call(self, command: str, timeout: float | None = None, **props: Any) -> Reply:
        return self._reply(command, props)

    async def _async_call(self, command: str, timeout: float | None = None, **props: Any
                          ) -> Reply:
        return self._reply(command, props)

    def _cast(self, command: str, **props: Any) -> None:
        self.calls.append(RecordedCall(command, dict(props), cast=True))

    def _run(self, result: Any) -> Any:
        if inspect.isawaitable(result):
            return self.plugin.loop.run_until_complete(_awaited(result))
        return result

    def init(self) -> Any:
        """Run ``handle_init``; returns the plugin."""
        self._run(self.plugin.handle_init())
        return self.plugin

    def send(self, topic: str, payload: Mapping[str, Any] | str) -> None:
        """Deliver one event to ``handle_recv`` as ``(topic, message)`` strings."""
        message = payload if isinstance(payload, str) else json.dumps(dict(payload))
        self._run(self.plugin.handle_recv((topic, message)))

    def event(self, watcher: str, action: str, **payload: Any) -> None:
        """``send(f"watcher.{watcher}.{action}", payload)`` (``time`` added if missing)."""
        payload.setdefault("time", time.time())
        self.send(f"watcher.{watcher}.{action}", payload)

    def commands(self) -> list[str]:
        """The commands sent so far, in order (calls and casts)."""
        return [c.command for c in self.calls]

    def close(self) -> None:
        """Run ``handle_stop`` and release the plugin's loop."""
        try:
            self._run(self.plugin.handle_stop())
        finally:
            self.plugin.stop()  # never started: releases its loop and sockets


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


__all__ = ["PluginHarness", "RecordedCall", "RunningPlugin", "plugin_class"]
