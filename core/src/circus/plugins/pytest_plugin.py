"""pytest fixtures for plugin authors, registered through the ``pytest11`` entry point.

Installing ``circus-core`` makes them available in every test suite, with no import::

    def test_my_plugin_restarts_crashed_workers(circusd, circus_plugin):
        daemon = circusd("[watcher:web]\\ncmd = sleep 60\\n")
        plugin = circus_plugin("my_plugin.MyPlugin", daemon, threshold="3")
        ...

* ``circusd(config_text, **options)`` starts a real circusd (``ipc://`` endpoints in the
  test's ``tmp_path``) and stops it, by pid, at teardown; see
  :class:`circus.testing.CircusdProcess` for the options.
* ``circus_plugin(plugin, daemon, **config)`` runs a plugin (class, dotted path or installed
  short name) in the test process and returns it once it is subscribed; it is stopped
  (``handle_stop`` runs) at teardown. See :class:`circus.plugins.testing.RunningPlugin`.
* ``circus_events(daemon, topics=("",))`` a connected
  :class:`circus.testing.EventCollector`; closed at teardown. Call its ``wait_ready(daemon,
  watcher)`` before acting if the test must not miss the first events.
* ``plugin_harness(plugin, replies=None, **config)`` a :class:`PluginHarness`: the plugin built
  without a daemon, ``call``/``cast`` recorded and answered from ``replies``.

The ``circus_no_hooks`` marker (and the ``CIRCUS_LOAD_HOOKS`` variable, see docs/plugins.md)
keeps third-party hook distributions installed in the venv out of a test.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest

from circus.plugins.base import PluginCore
from circus.plugins.testing import PluginHarness, PluginSpec, Responder, RunningPlugin, plugin_class
from circus.testing import CircusdProcess, EventCollector

StartCircusd = Callable[..., CircusdProcess]
StartPlugin = Callable[..., Any]


def _end_all(stops: list[Callable[[], object]]) -> None:
    """Call every ``stop`` (each ends something a test started), then raise the first error."""
    errors: list[BaseException] = []
    for stop in stops:
        try:
            stop()
        except Exception as exc:
            errors.append(exc)
    if errors:
        raise errors[0]


@pytest.fixture
def circusd(tmp_path: Path) -> Iterator[StartCircusd]:
    """Factory: ``circusd(config_text, **options) -> CircusdProcess`` (started, answering)."""
    started: list[CircusdProcess] = []

    def start(config_text: str, **options: Any) -> CircusdProcess:
        folder = tmp_path / f"circusd-{len(started)}"
        folder.mkdir(parents=True, exist_ok=True)
        daemon = CircusdProcess(config_text, folder, **options)
        started.append(daemon)
        return daemon.start()

    yield start
    _end_all([daemon.stop for daemon in reversed(started)])


@pytest.fixture
def circus_plugin() -> Iterator[StartPlugin]:
    """Factory: ``circus_plugin(plugin, daemon, **config)`` -> the running, subscribed plugin."""
    running: list[RunningPlugin] = []

    def start(plugin: PluginSpec | PluginCore, daemon: CircusdProcess, *,
              timeout: float = 20.0, **config: Any) -> Any:
        runner = RunningPlugin(plugin, daemon, timeout=timeout, **config)
        running.append(runner)
        return runner.start()

    yield start
    _end_all([runner.stop for runner in reversed(running)])


@pytest.fixture
def circus_events() -> Iterator[Callable[..., EventCollector]]:
    """Factory: ``circus_events(daemon, topics=("",))`` -> a connected EventCollector."""
    collectors: list[EventCollector] = []

    def connect(daemon: CircusdProcess, topics: Sequence[str] = ("",)) -> EventCollector:
        collector = EventCollector(daemon.pubsub_endpoint, topics).connect()
        collectors.append(collector)
        return collector

    yield connect
    for collector in collectors:
        collector.close()


@pytest.fixture
def plugin_harness() -> Iterator[Callable[..., PluginHarness]]:
    """Factory: ``plugin_harness(plugin, replies=None, **config)`` -> a PluginHarness."""
    harnesses: list[PluginHarness] = []

    def build(plugin: PluginSpec, replies: Mapping[str, Responder] | None = None,
              **config: Any) -> PluginHarness:
        harness = PluginHarness(plugin_class(plugin), dict(replies or {}), config)
        harnesses.append(harness)
        return harness

    yield build
    for harness in harnesses:
        with contextlib.suppress(Exception):
            harness.plugin.stop()
