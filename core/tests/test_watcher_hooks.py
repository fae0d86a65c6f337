"""Watcher hooks (contract 8.5) with real modules, real children and recorded events."""

from __future__ import annotations

import asyncio
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support import kill_tree

from circus.config import WatcherConfig
from circus.stats import Sampler
from circus.watcher import Watcher

HOOKS = textwrap.dedent(
    """\
    CALLS = []

    def record(watcher, arbiter, hook_name, **extras):
        CALLS.append((hook_name, extras))
        return True

    def refuse(watcher, arbiter, hook_name, **extras):
        CALLS.append((hook_name, extras))
        return False

    def explode(watcher, arbiter, hook_name, **extras):
        raise RuntimeError("boom")

    def add_field(watcher, arbiter, hook_name, pid, stats):
        stats["extra_field"] = pid
        return True
    """
)


@pytest.fixture
def hooks_module(tmp_path: Path) -> Iterator[Any]:
    name = f"circus_test_hooks_{abs(hash(tmp_path)) % 10**8}"
    (tmp_path / f"{name}.py").write_text(HOOKS)
    sys.path.insert(0, str(tmp_path))
    try:
        __import__(name)
        yield sys.modules[name]
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(name, None)


WATCHERS: list[Watcher] = []


@pytest.fixture(autouse=True)
def _no_leftover_children() -> Iterator[None]:
    """A failed test must not leave children behind."""
    yield
    for watcher in WATCHERS:
        for proc in watcher.processes.all():
            kill_tree(proc.pid)
    WATCHERS.clear()


class Events:
    def __init__(self) -> None:
        self.items: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, name: str, action: str, payload: dict[str, Any]) -> int:
        self.items.append((action, payload))
        return len(self.items)

    def actions(self) -> list[str]:
        return [a for a, _ in self.items]


def make(events: Events, hooks: dict[str, str], **options: Any) -> Watcher:
    options.setdefault("cmd", "sleep 120")
    options.setdefault("graceful_timeout", 5.0)
    watcher = Watcher(WatcherConfig(name="w", hooks=hooks, **options), events)
    WATCHERS.append(watcher)
    return watcher


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 60))


def test_before_start_false_aborts_the_start(hooks_module: Any) -> None:
    mod = hooks_module.__name__

    async def main() -> None:
        events = Events()
        w = make(events, {"before_start": f"{mod}.refuse"})
        result = await w.start()
        assert result == {"started": [], "kept": []}
        assert w.state == "stopped"
        assert events.actions() == ["hook_success"]
        assert list(events.items[0][1]) == ["name", "time"]
        assert events.items[0][1]["name"] == "before_start"

    run(main())


def test_failing_spawn_hook_stops_the_watcher_unless_ignored(hooks_module: Any) -> None:
    mod = hooks_module.__name__

    async def main() -> None:
        events = Events()
        w = make(events, {"before_spawn": f"{mod}.explode"})
        await w.start()
        assert w.state == "stopped"
        failure = events.items[0]
        assert failure[0] == "hook_failure"
        assert failure[1]["error"] == "boom"
        assert list(failure[1]) == ["name", "time", "error"]
        assert "spawn" not in events.actions()

        events = Events()
        w = make(events, {"before_spawn": f"{mod}.explode, true"})
        await w.start()
        assert w.state == "active"
        assert events.actions() == ["hook_failure", "spawn", "start"]
        await w.stop()

    run(main())


def test_lifecycle_hooks_get_their_extras(hooks_module: Any) -> None:
    mod = hooks_module.__name__
    names = [
        "before_start", "after_start", "before_spawn", "after_spawn", "before_stop",
        "after_stop", "before_signal", "after_signal", "before_reap", "after_reap",
    ]  # fmt: skip

    async def main() -> None:
        events = Events()
        w = make(events, dict.fromkeys(names, f"{mod}.record"))
        await w.start()
        (pid,) = w.pids()
        await w.stop()
        calls = dict(hooks_module.CALLS)
        assert set(calls) == set(names)
        assert calls["after_spawn"] == {"pid": pid}
        assert calls["before_signal"] == {"pid": pid, "signum": 15}
        assert calls["after_reap"]["exit_code"] == -15
        assert calls["after_reap"]["process_status"] == 15
        assert calls["after_reap"]["process_pid"] == pid
        order = [name for name, _ in hooks_module.CALLS]
        assert order.index("before_stop") < order.index("before_signal")
        assert order.index("after_reap") < order.index("after_stop")

    run(main())


def test_before_signal_false_withholds_the_stop_signal(hooks_module: Any) -> None:
    mod = hooks_module.__name__

    async def main() -> None:
        events = Events()
        w = make(events, {"before_signal": f"{mod}.refuse"}, graceful_timeout=0.5)
        await w.start()
        started = time.monotonic()
        await w.stop()
        assert time.monotonic() - started >= 0.45  # only SIGKILL ended it
        reap = next(p for a, p in events.items if a == "reap")
        assert reap["exit_code"] == -9

    run(main())


def test_extended_stats_hook_adds_fields(hooks_module: Any) -> None:
    mod = hooks_module.__name__

    async def main() -> None:
        events = Events()
        w = make(events, {"extended_stats": f"{mod}.add_field"})
        await w.start()
        (pid,) = w.pids()
        sampler = Sampler()
        try:
            sample = await sampler.sample([pid])
        finally:
            sampler.close()
        assert w.stats(sample, extended=True)[str(pid)]["extra_field"] == pid
        assert "extra_field" not in w.stats(sample)[str(pid)]
        await w.stop()

    run(main())


def test_set_hooks_replaces_the_callable(hooks_module: Any) -> None:
    mod = hooks_module.__name__

    async def main() -> None:
        events = Events()
        w = make(events, {})
        await w.apply_options({"hooks.before_start": f"{mod}.refuse"})
        assert w.config.hooks == {"before_start": f"{mod}.refuse"}
        await w.start()
        assert w.state == "stopped"

    run(main())
