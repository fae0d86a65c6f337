"""The flapping plugin: the rule of :mod:`circus_plugin_flapping.tracker` wired to circusd.

Everything runs in the plugin's loop thread (``AsyncCircusPlugin``): events are handled in order,
``stop``/``start``/``options`` are awaited ``call``\\ s (a refused stop is noticed and sent again,
unlike the original's lost casts), and retries are timers on the same loop, cancelled on reset
and on stop. The loop thread also owns both sockets; the main thread only starts the plugin and
runs ``handle_stop``, so no socket is ever shared between threads (contract F3).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Coroutine
from typing import Any, ClassVar

from circus.errors import CallError, ConfigError, Errno
from circus.plugins import AsyncCircusPlugin, Scheduled
from circus.plugins.options import PluginOptions
from circus_plugin_flapping.settings import NAME, OPTIONS, WATCHER_OPTIONS, FlappingSettings
from circus_plugin_flapping.tracker import (
    PLUGIN_WATCHER_PREFIX,
    Action,
    CancelStart,
    FlappingTracker,
    Note,
    RefreshSettings,
    ScheduleStart,
    StartWatcher,
    StopWatcher,
)

#: Seconds between two attempts of a refused or unanswered stop request, and how many. The
#: original circusd refuses commands during its tick, which is when reaps are published; a
#: short delay lands the next attempt after the tick.
STOP_RETRY_DELAY = 0.25
STOP_ATTEMPTS = 120


def _settings(config: dict[str, Any]) -> FlappingSettings:
    try:
        return FlappingSettings().with_values(config)
    except ValueError as exc:
        key = str(exc).split(":", 1)[0]
        raise ConfigError(str(exc).split(": ", 1)[-1], key=key) from None


class Flapping(AsyncCircusPlugin):
    """Options ``attempts``, ``window``, ``retry_in``, ``max_retry``, ``active`` (contract 7.2)."""

    name = NAME
    #: Beyond the read-only default (circus.credentials): it stops and restarts watchers.
    required_commands: ClassVar[frozenset[str] | None] = frozenset({"start", "stop"})
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    #: the ``flapping.*`` keys of a watcher it reads: circusd warns about any other (typos)
    watcher_options: ClassVar[PluginOptions | None] = WATCHER_OPTIONS

    def __init__(self, *args: Any, **config: Any) -> None:
        # *args: the original positional form (endpoint, pubsub_endpoint, check_delay, ssh).
        super().__init__(*args, **config)
        self.defaults = _settings(self.config)
        self.tracker = FlappingTracker(self.settings_for)
        self._settings: dict[str, FlappingSettings] = {}
        self._timers: dict[str, Scheduled] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        _settings(config)

    def settings_for(self, watcher: str) -> FlappingSettings:
        return self._settings.get(watcher, self.defaults)

    # -- plugin hooks ---------------------------------------------------------------------

    async def handle_init(self) -> None:
        """Read every watcher's overrides now, so the first crash is judged with them."""
        try:
            reply = await self.call("list")
        except CallError as exc:
            self.log.warning(f"cannot list watchers yet: {exc}")
            return
        for watcher in reply.get("watchers", []):
            if isinstance(watcher, str) and not watcher.startswith(PLUGIN_WATCHER_PREFIX):
                await self.refresh(watcher)

    async def handle_recv(self, data: tuple[str, str]) -> None:
        event = self.parse_event(data)
        if event is None:
            return
        watcher, action, payload = event
        if (action == "reap" and watcher not in self._settings
                and not watcher.startswith(PLUGIN_WATCHER_PREFIX)):
            await self.refresh(watcher)
        await self.execute(self.tracker.on_event(watcher, action, payload, time.time()))

    async def handle_stop(self) -> None:
        """Cancel pending retries (awaited on the loop, which owns the timer table)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()

    # -- actions ----------------------------------------------------------------------------

    async def execute(self, actions: list[Action]) -> None:
        for action in actions:
            if isinstance(action, StopWatcher):
                self.log.warning(action.reason, watcher=action.watcher)
                self._spawn(self._stop(action.watcher))
            elif isinstance(action, ScheduleStart):
                self._cancel_timer(action.watcher)
                self.log.info(f"{action.watcher}: stopped; starting it again in "
                              f"{action.delay:g}s", watcher=action.watcher)
                self._timers[action.watcher] = self.schedule(
                    action.delay, self._retry_due, action.watcher
                )
            elif isinstance(action, CancelStart):
                self._cancel_timer(action.watcher)
            elif isinstance(action, StartWatcher):
                self._spawn(self._start(action.watcher))
            elif isinstance(action, RefreshSettings):
                await self.refresh(action.watcher)
            elif isinstance(action, Note):
                self.log.warning(action.message, watcher=action.watcher)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _cancel_timer(self, watcher: str) -> None:
        timer = self._timers.pop(watcher, None)
        if timer is not None:
            timer.cancel()

    async def _retry_due(self, watcher: str) -> None:
        self._timers.pop(watcher, None)
        await self.execute(self.tracker.retry_due(watcher, time.time()))

    async def _stop(self, watcher: str) -> None:
        """Send ``stop`` until circusd accepts it (or the plugin no longer wants it)."""
        for attempt in range(1, STOP_ATTEMPTS + 1):
            try:
                reply = await self.call("stop", name=watcher, match="simple")
            except CallError as exc:
                reply = {"status": "error", "reason": str(exc)}
            if reply.get("status") == "ok":
                return
            if reply.get("errno") == Errno.MESSAGE_ERROR:  # the watcher is gone
                self.log.warning(f"{watcher}: cannot stop it: {reply.get('reason')}")
                await self.execute(self.tracker.on_event(watcher, "remove", {}, time.time()))
                return
            self.log.warning(f"{watcher}: stop refused ({reply.get('reason')}); "
                             f"asking again (attempt {attempt})", watcher=watcher)
            await asyncio.sleep(STOP_RETRY_DELAY)
            if not self.tracker.stop_failed(watcher):
                return
        self.log.error(f"{watcher}: could not stop it after {STOP_ATTEMPTS} attempts")

    async def _start(self, watcher: str) -> None:
        try:
            reply = await self.call("start", name=watcher, match="simple")
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        if reply.get("status") == "ok":
            self.log.info(f"{watcher}: started again", watcher=watcher)
            return
        self.log.warning(f"{watcher}: start failed ({reply.get('reason')}); will retry",
                         watcher=watcher)
        await self.execute(self.tracker.start_failed(watcher))

    async def refresh(self, watcher: str) -> None:
        """(Re)read the watcher's ``flapping.*`` overrides through the ``options`` command."""
        try:
            reply = await self.call("options", name=watcher)
        except CallError as exc:
            self.log.warning(f"{watcher}: cannot read its options: {exc}", watcher=watcher)
            return
        if reply.get("status") != "ok":
            self._settings.pop(watcher, None)
            return
        options = reply.get("options")
        settings, problems = self.defaults.with_overrides(
            options if isinstance(options, dict) else {}
        )
        for problem in problems:
            self.log.error(f"{watcher}: ignoring override {problem}", watcher=watcher)
        self._settings[watcher] = settings
        self.log.info(
            f"{watcher}: attempts={settings.attempts} window={settings.window:g}s "
            f"retry_in={settings.retry_in:g}s max_retry={settings.max_retry} "
            f"active={settings.active}",
            watcher=watcher,
        )
