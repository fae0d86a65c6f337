"""The pluggy layer on its own: built-in hook implementations and failure isolation."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from typing import Any

import pytest

from circus.hooks import call_each, get_plugin_manager, hookimpl, notify, parse_topics
from circus.hookspecs import PluginEvent
from circus.plugins import CircusPlugin


@pytest.fixture
def plugin() -> Iterator[CircusPlugin]:
    p = CircusPlugin(endpoint="ipc:///nonexistent/c", pubsub_endpoint="ipc:///nonexistent/p",
                     topics="watcher.web.*  watcher.*.reap,")
    yield p
    p.stop()


def deliver(plugin: CircusPlugin, topic: str) -> PluginEvent:
    event = PluginEvent(topic, "{}")
    get_plugin_manager().hook.circus_plugin_event(plugin=plugin, event=event)
    return event


def test_parse_topics() -> None:
    assert parse_topics(" a.*, b  c,,") == ["a.*", "b", "c"]
    assert parse_topics("") == []


def test_topics_filter_compiles_at_load(plugin: CircusPlugin) -> None:
    hook = get_plugin_manager().hook
    assert not deliver(plugin, "watcher.db.spawn").dropped  # not loaded yet: no filter
    notify(hook.circus_plugin_loaded, plugin)
    assert not deliver(plugin, "watcher.web.spawn").dropped
    assert not deliver(plugin, "watcher.db.reap").dropped
    assert deliver(plugin, "watcher.db.spawn").dropped
    assert deliver(plugin, "watcher.webapp.spawn").dropped  # globs match the whole topic


def test_call_each_isolates_failures_and_keeps_order() -> None:
    pm = get_plugin_manager()
    calls: list[str] = []

    class First:
        @hookimpl(tryfirst=True)
        def circus_plugin_started(self, plugin: Any) -> None:
            calls.append("first")
            raise RuntimeError("boom")

    class Second:
        @hookimpl
        def circus_plugin_started(self, plugin: Any) -> None:
            calls.append("second")

    impls = [First(), Second()]
    for impl in impls:
        pm.register(impl)
    errors: list[str] = []
    try:
        call_each(pm.hook.circus_plugin_started, lambda exc, name: errors.append(str(exc)),
                  plugin=object())
    finally:
        for impl in impls:
            pm.unregister(impl)
    assert calls == ["first", "second"]
    assert errors == ["boom"]


def test_wrappers_fall_back_to_pluggy_and_failures_are_still_contained(
    plugin: CircusPlugin,
) -> None:
    pm = get_plugin_manager()
    seen: list[str] = []

    class Wrapper:
        @hookimpl(wrapper=True)
        def circus_plugin_event(self, plugin: Any, event: PluginEvent) -> Generator[None]:
            seen.append("before")
            result = yield
            seen.append("after")
            return result

    class Failing:
        @hookimpl
        def circus_plugin_event(self, plugin: Any, event: PluginEvent) -> None:
            raise ValueError("inner")

    impls = [Wrapper(), Failing()]
    for impl in impls:
        pm.register(impl)
    errors: list[BaseException] = []
    try:
        call_each(pm.hook.circus_plugin_event, lambda exc, name: errors.append(exc),
                  plugin=plugin, event=PluginEvent("watcher.web.spawn", "{}"))
    finally:
        for impl in impls:
            pm.unregister(impl)
    assert seen == ["before"]  # the wrapper saw the exception thrown into it
    assert isinstance(errors[0], ValueError)


def test_notify_reports_a_failing_hook_through_circus_plugin_failed(
    plugin: CircusPlugin,
) -> None:
    pm = get_plugin_manager()
    failures: list[tuple[str, str]] = []

    class Broken:
        @hookimpl
        def circus_plugin_stopped(self, plugin: Any) -> None:
            raise RuntimeError("stopped hook broke")

    class Spy:
        @hookimpl
        def circus_plugin_failed(self, plugin: Any, stage: str, error: BaseException) -> None:
            failures.append((stage, str(error)))

    impls = [Broken(), Spy()]
    for impl in impls:
        pm.register(impl)
    try:
        notify(pm.hook.circus_plugin_stopped, plugin)  # must not raise
    finally:
        for impl in impls:
            pm.unregister(impl)
    assert failures == [("hook", "stopped hook broke")]
