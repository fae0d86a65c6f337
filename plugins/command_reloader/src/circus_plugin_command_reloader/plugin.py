"""The command_reloader plugin: filesystem notifications in, ``restart`` commands out.

Changes are noticed through ``watchfiles`` (inotify on Linux, FSEvents, kqueue or
ReadDirectoryChangesW elsewhere; polling only where none exists or with ``force_polling``),
on the directories :class:`Targets` names. The notifier runs as a task on the plugin's loop,
next to the event handlers, so the target table has a single owner. Every ``loop_rate`` a
``list`` notices added and removed watchers; ``add``/``updated``/``start`` events refresh one
watcher at once.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from typing import Any, ClassVar

import watchfiles

from circus.errors import CallError
from circus.plugins import AsyncCircusPlugin, Scheduled
from circus.plugins.options import PluginOptions
from circus.protocol import res_name, split_topic
from circus_plugin_command_reloader.settings import (
    NAME,
    OPTIONS,
    WATCH_KEY,
    WATCHER_OPTIONS,
    ReloaderSettings,
    split_paths,
)
from circus_plugin_command_reloader.targets import Targets, executable

PLUGIN_PREFIX = "plugin:"
#: states in which a watcher is meant to run, so a new program is tried at once. ``backoff``
#: and ``fatal`` are crash loops circusd holds back or gave up on: the replaced program is
#: likely the fix, and ``restart`` tries it now with a clean failure count instead of after
#: the backoff (or never). ``stopped``/``stopping`` are the operator's: left alone.
RESTART_STATES = frozenset({"active", "starting", "backoff", "fatal"})


class CommandReloader(AsyncCircusPlugin):
    """Restarts a watcher when its executable, or a file or directory it names, changes."""

    name = NAME
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    #: the ``command_reloader.*`` keys of a watcher it reads (``watch``), likewise checked
    watcher_options: ClassVar[PluginOptions | None] = WATCHER_OPTIONS
    required_commands: ClassVar[frozenset[str] | None] = frozenset(
        {"list", "get", "options", "status", "restart"}
    )

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        # watchfiles logs every change at debug level: with the plugin's log written into a
        # watched directory, each line would report the previous one, forever.
        logging.getLogger("watchfiles").setLevel(logging.INFO)
        self.settings = ReloaderSettings.from_config(self.config)
        self.targets = Targets()
        self._names: dict[str, str] = {}  # res_name -> name
        self._watching: tuple[frozenset[str], frozenset[str]] | None = None
        self._stop_watch: asyncio.Event | None = None
        self._watch_tasks: list[asyncio.Task[None]] = []
        self._timer: Scheduled | None = None
        self._resyncing = False

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        ReloaderSettings.from_config(config)

    # -- lifecycle ---------------------------------------------------------------------------

    async def handle_init(self) -> None:
        await self.resync()
        self._timer = self.every(self.settings.loop_rate, self.resync)
        mode = "polling" if self.settings.force_polling else "notifications"
        self.log.info(f"watching {len(self.targets.names())} watchers ({mode})")

    async def handle_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._stop_watching()

    def wanted(self, name: str) -> bool:
        return (not name.startswith(PLUGIN_PREFIX) and name != "circusd-stats"
                and self.settings.watchers.match(name) is not None)

    # -- what to watch -----------------------------------------------------------------------

    async def resync(self) -> None:
        """Follow added and removed watchers (one ``list``), then (re)start the notifier."""
        if self._resyncing:
            return
        self._resyncing = True
        try:
            try:
                names = [n for n in (await self.call("list")).get("watchers", [])
                         if isinstance(n, str) and self.wanted(n)]
            except CallError as exc:
                self.log.warning(f"cannot list watchers: {exc}")
                return
            for gone in set(self.targets.names()) - set(names):
                self.targets.remove(gone)
            for name in names:
                self._names[res_name(name)] = name
                if name not in self.targets:
                    await self.refresh(name)
            self._ensure_watching()
        finally:
            self._resyncing = False

    async def refresh(self, name: str) -> None:
        """Read ``cmd``, ``working_dir`` and the ``command_reloader.watch`` key of a watcher."""
        try:
            reply = await self.call("options", name=name)
        except CallError as exc:
            self.log.warning(f"{name}: cannot read its options: {exc}", watcher=name)
            return
        options = reply.get("options")
        if reply.get("status") != "ok" or not isinstance(options, dict):
            self.targets.remove(name)
            return
        working_dir = options.get("working_dir") or None
        files: list[str] = []
        program = executable(str(options.get("cmd", "")), working_dir)
        if program is None:
            self.log.warning(f"{name}: cannot find the program of cmd "
                             f"{options.get('cmd')!r}; watching only {WATCH_KEY}", watcher=name)
        else:
            files.append(program)
        dirs: list[str] = []
        for extra in split_paths(WATCHER_OPTIONS.watcher_view(options, NAME).get("watch")):
            path = os.path.join(working_dir or os.getcwd(), os.path.expanduser(extra))
            (dirs if os.path.isdir(path) else files).append(os.path.abspath(path))
        self.targets.define(name, files, dirs)
        self.log.debug(f"{name}: watching {', '.join(files + dirs)}", watcher=name)

    async def handle_recv(self, data: tuple[str, str]) -> None:
        topic, message = data
        try:
            watcher, action = split_topic(topic)
            json.loads(message)
        except ValueError:
            return
        if action in ("add", "updated", "start") and not watcher.startswith(PLUGIN_PREFIX):
            name = self._names.get(watcher)
            if name is None or action == "add":
                await self.resync()
            else:
                await self.refresh(name)
                self._ensure_watching()
        elif action == "remove":
            self.targets.remove(self._names.pop(watcher, watcher))
            self._ensure_watching()

    # -- the notifier ----------------------------------------------------------------------------

    def _ensure_watching(self) -> None:
        flat, recursive = self.targets.directories()
        wanted = (frozenset(flat), frozenset(recursive))
        alive = any(not task.done() for task in self._watch_tasks)
        if wanted == self._watching and (alive or not (flat or recursive)):
            return
        self._stop_watching()
        self._watching = wanted
        self._stop_watch = asyncio.Event()
        for paths, recursive_flag in ((flat, False), (recursive, True)):
            if paths:
                self._watch_tasks.append(self.loop.create_task(
                    self._watch(sorted(paths), recursive_flag, self._stop_watch)))

    def _stop_watching(self) -> None:
        if self._stop_watch is not None:
            self._stop_watch.set()
        for task in self._watch_tasks:
            task.cancel()
        self._watch_tasks = []

    async def _watch(self, paths: list[str], recursive: bool, stop: asyncio.Event) -> None:
        announced = False
        try:
            # yield_on_timeout: an empty batch every second proves the watch is in place, so
            # "active" is logged only once a change can no longer be missed.
            async for changes in watchfiles.awatch(
                *paths, watch_filter=None, stop_event=stop,
                step=max(1, round(self.settings.settle * 1000)),
                recursive=recursive, force_polling=self.settings.force_polling or None,
                poll_delay_ms=int(self.settings.loop_rate * 1000),
                rust_timeout=1000, yield_on_timeout=True, ignore_permission_denied=True,
            ):
                if not announced:
                    announced = True
                    kind = "recursively " if recursive else ""
                    self.log.info(f"notifications active on {len(paths)} directories {kind}"
                                  f"({', '.join(paths)})")
                if changes:
                    await self.changed({path for _, path in changes})
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a watched directory vanished, inotify limits...
            # the next resync (every loop_rate) starts a new notifier: bounded retries
            self.log.warning(f"file notifications stopped: {exc}; retrying in "
                             f"{self.settings.loop_rate:g}s")
            self._watching = None

    async def changed(self, paths: set[str]) -> None:
        for name in self.targets.changed(paths):
            await self.restart(name)

    async def restart(self, name: str) -> None:
        files = ", ".join(self.targets.files_of(name)) or "a watched directory"
        try:
            status = (await self.call("status", name=name)).get("status")
            if status not in RESTART_STATES:
                self.log.info(f"{name}: {files} modified; the watcher is {status}, "
                              "not restarting it", watcher=name)
                return
            self.log.info(f"{name}: {files} modified. Restarting.", watcher=name)
            reply = await self.call("restart", name=name)
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        if reply.get("status") != "ok":
            self.log.error(f"{name}: restart failed: {reply.get('reason')}", watcher=name)
