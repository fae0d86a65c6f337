"""The kit for plugin authors: pytest fixtures, the in-process harness, scoped hooks.

The fixtures are the ones circus-core registers through ``pytest11``; one test runs them from a
plugin project outside this repository (a separate pytest process in a temp dir).
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from circus.hooks import applies, get_plugin_manager, hookimpl, wanted_hooks
from circus.hookspecs import PluginEvent
from circus.plugins import AsyncCircusPlugin, CircusPlugin
from circus.plugins.testing import PluginHarness, RecordedCall
from circus.testing import CircusdProcess

CONFIG = "[watcher:web]\ncmd = sleep 120\n"


class Collector(CircusPlugin):
    name = "collector"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.topics: list[str] = []
        self.pids: list[int] = []

    def handle_init(self) -> None:
        self.pids = self.call("list", name="web")["pids"]

    def handle_recv(self, data: tuple[str, str]) -> None:
        self.topics.append(data[0])
        if data[0] == "watcher.web.reap":
            self.cast("incr", name="web")


class OnlyReaps(Collector):
    name = "only-reaps"
    subscribe_topics = ("watcher.web.reap",)


def test_fixtures_run_a_plugin_until_subscribed(
    circusd: Callable[..., CircusdProcess], circus_plugin: Callable[..., Any],
    circus_events: Callable[..., Any],
) -> None:
    daemon = circusd(CONFIG, check_delay=1)
    plugin = circus_plugin(Collector, daemon)
    assert plugin.running
    assert plugin.pids == daemon.call("list", name="web")["pids"]
    assert plugin.event_counters.received >= 1  # subscribed: it has received an event
    events = circus_events(daemon)
    events.wait_ready(daemon, "web")
    daemon.call("incr", name="web")
    events.wait_for(lambda t, p: t == "watcher.web.spawn")
    # a narrow subscription: the helper provokes an event the plugin subscribes to... or adds a
    # probe watcher when none matches (no `updated` can reach a reap-only plugin)
    narrow = circus_plugin(OnlyReaps, daemon)
    assert narrow.running


def test_fixture_by_dotted_path_and_the_seed_logger(
    circusd: Callable[..., CircusdProcess], circus_plugin: Callable[..., Any],
    tmp_path: Any,
) -> None:
    daemon = circusd(CONFIG)
    out = tmp_path / "events.log"
    plugin = circus_plugin("circus_plugin_logger.Logger", daemon, filename=str(out))
    assert type(plugin).__name__ == "Logger"
    assert plugin.event_counters.received >= 1


def test_harness_records_calls_and_answers_from_its_table(
    plugin_harness: Callable[..., PluginHarness],
) -> None:
    harness = plugin_harness(Collector, replies={"list": {"status": "ok", "pids": [7, 8]}})
    plugin = harness.init()
    assert plugin.pids == [7, 8]
    harness.event("web", "reap", process_pid=7, exit_code=-9)
    assert harness.calls == [RecordedCall("list", {"name": "web"}),
                             RecordedCall("incr", {"name": "web"}, cast=True)]
    assert plugin.topics == ["watcher.web.reap"]


def test_harness_drives_async_plugins(plugin_harness: Callable[..., PluginHarness]) -> None:
    class Async(AsyncCircusPlugin):
        name = "async-kit"
        seen: list[int]

        async def handle_init(self) -> None:
            self.seen = []

        async def handle_recv(self, data: tuple[str, str]) -> None:
            reply = await self.call("numprocesses", name="web")
            self.seen.append(reply["numprocesses"])

    harness = plugin_harness(Async, replies={
        "numprocesses": lambda props: {"status": "ok", "numprocesses": len(props["name"])}})
    harness.init()
    harness.event("web", "spawn", process_pid=1)
    assert harness.plugin.seen == [3]
    assert harness.commands() == ["numprocesses"]


class DropUpdated:
    """A third-party hook scoped to the ``collector`` plugin."""

    circus_plugins = frozenset({"collector"})

    @hookimpl
    def circus_plugin_event(self, plugin: Any, event: PluginEvent) -> None:
        if event.topic.endswith(".updated"):
            event.drop()


@pytest.fixture
def scoped_hook() -> Iterator[DropUpdated]:
    pm = get_plugin_manager()
    hook = DropUpdated()
    pm.register(hook, name="test-scoped-drop")
    yield hook
    pm.unregister(hook)


def test_hooks_are_scoped_by_plugin_name_and_plugins_can_opt_out(
    scoped_hook: DropUpdated,
) -> None:
    class Other(Collector):
        name = "other"

    class OptOut(Collector):
        use_hooks = False

    class OnlyAudit(Collector):
        use_hooks = frozenset({"audit"})

    (impl,) = [i for i in get_plugin_manager().hook.circus_plugin_event.get_hookimpls()
               if i.plugin is scoped_hook]
    assert applies(impl, Collector(endpoint="x", pubsub_endpoint="y"))
    assert not applies(impl, Other(endpoint="x", pubsub_endpoint="y"))
    assert not applies(impl, OptOut(endpoint="x", pubsub_endpoint="y"))
    assert not applies(impl, OnlyAudit(endpoint="x", pubsub_endpoint="y"))
    # and end to end through the delivery path
    collector = Collector(endpoint="x", pubsub_endpoint="y")
    other = Other(endpoint="x", pubsub_endpoint="y")
    payload = b'{"time": 1.0}'
    assert collector._pc_filter(b"watcher.web.updated", payload) is None
    assert other._pc_filter(b"watcher.web.updated", payload) is not None
    # the built-in topics filter still applies to a plugin that opted out of hooks
    opted = OptOut(endpoint="x", pubsub_endpoint="y", topics="watcher.web.reap")
    get_plugin_manager().hook.circus_plugin_loaded(plugin=opted)
    assert opted._pc_filter(b"watcher.web.spawn", payload) is None
    assert opted._pc_filter(b"watcher.web.reap", payload) is not None
    for plugin in (collector, other, opted):
        plugin.stop()


def test_circus_load_hooks_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CIRCUS_LOAD_HOOKS", raising=False)
    assert wanted_hooks() is None
    monkeypatch.setenv("CIRCUS_LOAD_HOOKS", "")
    assert wanted_hooks() == frozenset()
    monkeypatch.setenv("CIRCUS_LOAD_HOOKS", "audit, metrics")
    assert wanted_hooks() == {"audit", "metrics"}


def test_fixtures_in_a_plugin_project_outside_this_repo(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(my_plugin=textwrap.dedent('''
        from circus.plugins import CircusPlugin

        class Counter(CircusPlugin):
            name = "counter"
            required_commands = frozenset({"numprocesses"})

            def handle_init(self):
                self.spawns = 0

            def handle_recv(self, data):
                if data[0].endswith(".spawn"):
                    self.spawns += 1
    '''))
    pytester.makepyfile(test_counter=textwrap.dedent('''
        import time
        from my_plugin import Counter

        def test_counts_spawns(circusd, circus_plugin):
            daemon = circusd("[watcher:w]\\ncmd = sleep 60\\n")
            plugin = circus_plugin(Counter, daemon)
            daemon.call("incr", name="w", nb=2)
            deadline = time.monotonic() + 20
            while plugin.spawns < 2 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert plugin.spawns == 2

        def test_unit(plugin_harness):
            harness = plugin_harness(Counter)
            harness.init()
            harness.event("w", "spawn", process_pid=1)
            assert harness.plugin.spawns == 1
    '''))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)


def _doc_block(text: str, starts_with: str) -> str:
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    (block,) = [b for b in blocks if b.startswith(starts_with)]
    return block


def test_the_worked_example_of_docs_plugins_md_passes(pytester: pytest.Pytester) -> None:
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    plugin = _doc_block(doc, "class Tracker(CircusPlugin)")
    tests = _doc_block(doc, "# tests/test_tracker.py")
    pytester.mkpydir("my_tracker")
    (pytester.path / "my_tracker" / "plugin.py").write_text(
        "from circus.plugins import CircusPlugin\n\n\n" + plugin)
    pytester.makepyfile(test_tracker=tests)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=120)
    result.assert_outcomes(passed=2)
