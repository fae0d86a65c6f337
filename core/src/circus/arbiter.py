"""The arbiter: owns the watchers, the event publisher and the controller; runs until ``quit``.

Startup (contract 9.4): bind the ``[socket:NAME]`` sockets and the event PUB socket, start the
control socket and the ``check_delay`` housekeeping pass, then start every ``autostart`` watcher
in descending priority (``on_demand`` ones wait for their socket instead). Shutdown: stop every
watcher (initiated in ascending priority, concurrently), then close the controller and the
publisher, and the sockets last.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import dataclasses
import importlib
import os
from collections.abc import Callable, Mapping
from typing import Any

import structlog
import zmq
import zmq.asyncio

from circus.binding import BindPolicy
from circus.config import (
    CircusConfig,
    CircusSettings,
    SocketConfig,
    WatcherConfig,
    load_config,
    plugin_watcher,
    watcher_from_options,
)
from circus.config.socket_section import socket_from_options
from circus.config.socket_use import check_socket_references, used_sockets
from circus.credentials import REGISTRY
from circus.curve import CurveKeyError, CurveServer
from circus.errors import ConfigError, ConflictError, MessageError
from circus.events import EventPublisher
from circus.on_demand import OnDemand
from circus.output_tail import with_defaults
from circus.sockets import ReadCounter, SocketSet
from circus.stats.report import daemon_stats
from circus.stats.sampler import Sampler
from circus.stats.stream import StatsStream
from circus.watcher import SpawnFailed, Watcher

log = structlog.get_logger("circus.arbiter")

#: ``check_delay`` of the Python API (0.19 uses 1.0 there and 5.0 in INI files, E5)
API_CHECK_DELAY = 1.0


class Arbiter:
    """See the module docstring and docs/architecture.md (Arbiter API)."""

    def __init__(
        self,
        watchers: list[WatcherConfig],
        settings: CircusSettings | None = None,
        *,
        config_path: str | None = None,
        plugins: list[WatcherConfig | Mapping[str, Any]] | None = None,
        context: zmq.asyncio.Context | None = None,
        sockets: list[SocketConfig] | None = None,
    ) -> None:
        """``plugins``: plugin watchers already converted, or dicts with ``name``, ``use`` and
        the plugin's options (converted here with :func:`circus.config.plugin_watcher`).
        ``sockets``: the ``[socket:NAME]`` sockets, bound by :meth:`start`."""
        self.settings = settings or CircusSettings()
        self.sockets = SocketSet(sockets)
        self._socket_configs = {c.name: c for c in sockets or []}
        self.on_demand = OnDemand(self.sockets, self._start_on_demand)
        #: readiness counts of the sockets for the stats stream (started with it)
        self.socket_counter = ReadCounter(self.sockets)
        self.config_path = config_path
        self._context = context
        self._own_context = context is None
        self._watchers: dict[str, Watcher] = {}
        self._loaded: dict[str, WatcherConfig] = {}
        self.publisher: EventPublisher | None = None
        self.bind_policy = BindPolicy()
        self.controller: Any = None
        #: gathers process statistics in a thread of its own (``stats``, ``dstats``, the stream)
        self.sampler = Sampler()
        self.stats_stream: StatsStream | None = None
        self._tick_task: asyncio.Task[None] | None = None
        self._done = asyncio.Event()
        self._quitting: asyncio.Task[None] | None = None
        #: two reloadconfig must not interleave their diffs (one would re-add the other's)
        self._config_lock = asyncio.Lock()
        #: set by circusd: reopens its own log output (``reload`` without a name, SIGHUP)
        self.reopen_logs: Callable[[], None] | None = None
        #: called once every channel is bound (``circusd --daemon`` then lets its parent exit)
        self.on_bound: Callable[[], None] | None = None
        #: ``circusd --strict``: reloadconfig refuses what would be a warning too
        self.strict_config = False
        for plugin in plugins or []:
            watchers = [*watchers, _plugin_config(plugin, self.settings)]
        for cfg in watchers:
            self._register(cfg)

    @classmethod
    def from_config(cls, config: CircusConfig) -> Arbiter:
        return cls(
            config.watchers, config.settings, config_path=config.path, sockets=config.sockets
        )

    # -- simple views ------------------------------------------------------------------------

    @property
    def endpoint(self) -> str:
        return self.settings.endpoint

    @property
    def pubsub_endpoint(self) -> str:
        return self.settings.pubsub_endpoint

    @property
    def endpoint_owner(self) -> str | None:
        """User owning an ``ipc://`` control socket (the controller chowns it)."""
        return self.settings.endpoint_owner

    @property
    def check_delay(self) -> float:
        return self.settings.check_delay

    @property
    def watchers(self) -> list[Watcher]:
        """Every watcher (plugins included), sorted by name."""
        return sorted(self._watchers.values(), key=lambda w: w.name)

    def get_watcher(self, name: str) -> Watcher:
        try:
            return self._watchers[name.lower()]
        except KeyError:
            raise MessageError(f"program {name} not found") from None

    def global_options(self) -> dict[str, Any]:
        s = self.settings
        return {
            "endpoint": s.endpoint,
            "pubsub_endpoint": s.pubsub_endpoint,
            "stats_endpoint": s.stats_endpoint,
            "check_delay": float(s.check_delay),
            "multicast_endpoint": s.multicast_endpoint,
        }

    def list_sockets(self) -> list[dict[str, Any]]:
        return self.sockets.listing()

    def socket_reads(self) -> list[tuple[int, str, int]]:
        """For the stats stream's ``stat.sockets`` topics."""
        return self.socket_counter.take()

    async def dstats(self) -> dict[str, Any]:
        return daemon_stats(await self.sampler.sample([os.getpid()]), os.getpid())

    # -- registry ----------------------------------------------------------------------------

    def _publish(self, watcher_name: str, action: str, payload: dict[str, Any]) -> int:
        if action in ("start", "stop"):
            self._on_demand_event(watcher_name, action)
        if self.publisher is None:
            return 0
        return self.publisher.publish(watcher_name, action, payload)

    def _publish_output(self, topic: bytes, body: dict[str, Any]) -> None:
        if self.publisher is not None:
            self.publisher.publish_raw(topic, body)

    def _register(self, cfg: WatcherConfig) -> Watcher:
        key = cfg.name.lower()
        if key in self._watchers:
            raise ConflictError(f"the watcher '{cfg.name}' already exist")
        self._loaded[key] = copy.deepcopy(cfg)
        # [circus] output_lines/output_bytes apply to watchers that do not set their own
        cfg = dataclasses.replace(cfg, extra=with_defaults(cfg.extra, self.settings.extra))
        watcher = Watcher(cfg, self._publish, umask=self.settings.umask, sockets=self.sockets)
        watcher.arbiter = self
        watcher.output.sink = self._publish_output
        self._watchers[key] = watcher
        return watcher

    # -- on_demand ---------------------------------------------------------------------------

    def _on_demand_event(self, watcher_name: str, action: str) -> None:
        """A stopped on-demand watcher waits for its sockets again; a started one no longer."""
        key = watcher_name.lower()
        watcher = self._watchers.get(key)
        if watcher is None or not watcher.config.on_demand:
            return
        self.on_demand.disarm(key)
        if action == "stop" and self._quitting is None and self.publisher is not None:
            self.on_demand.arm(key, watcher.config)

    async def _start_on_demand(self, key: str) -> None:
        watcher = self._watchers.get(key)
        if watcher is None or self._quitting is not None:
            return
        try:
            await watcher.start()
        except SpawnFailed as exc:  # the watcher retries after its backoff
            log.warning("on-demand start failed", watcher=watcher.name, error=exc.reason)

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self) -> None:
        """Bind the sockets, start the tick, then the autostart watchers."""
        self.sockets.bind_all()  # before any watcher starts: they inherit these
        if self._context is None:
            self._context = zmq.asyncio.Context()
        self.bind_policy = self._bind_policy(self._context)
        self.publisher = EventPublisher(
            self._context, self.settings.pubsub_endpoint, policy=self.bind_policy
        )
        await self.publisher.start()
        await self._start_controller()
        if self.settings.statsd:
            self.stats_stream = StatsStream(
                self._context, self.settings.stats_endpoint, self.sampler, self,
                policy=self.bind_policy,
            )
            await self.stats_stream.start()
            self.socket_counter.start()
        if self.on_bound is not None:
            self.on_bound()
        if self.settings.check_delay > 0:
            self._tick_task = asyncio.create_task(self._tick_loop(), name="circus-tick")
        log.info(
            "circusd started",
            pid=os.getpid(),
            pubsub=self.settings.pubsub_endpoint,
            watchers=len(self._watchers),
        )
        waiting = [w for w in self._watchers.values() if w.config.on_demand]
        for watcher in waiting:
            if watcher.autostart:
                self.on_demand.arm(watcher.name.lower(), watcher.config)
        with contextlib.suppress(SpawnFailed):  # logged by the watcher, retried after a backoff
            await self.start_watchers([w for w in self._watchers.values() if w not in waiting])

    async def _start_controller(self) -> None:
        try:
            module = importlib.import_module("circus.controller")
        except ImportError:
            log.warning("no control channel: circus.controller is not available")
            return
        self.controller = module.Controller(
            self, self.settings.endpoint, self._context, policy=self.bind_policy
        )
        await self.controller.start()

    def _bind_policy(self, context: zmq.asyncio.Context) -> BindPolicy:
        """CURVE (started now, before any socket binds) and ipc ownership (circus.binding)."""
        server = None
        if self.settings.curve_server_key:
            server = CurveServer.from_paths(
                self.settings.curve_server_key, self.settings.curve_authorized_keys
            )
            server.start(context)
            REGISTRY.curve = server
        return BindPolicy(curve=server, owner=self.settings.endpoint_owner)

    async def run(self) -> None:
        """Start, then serve until :meth:`quit` finished; closes every socket on the way out."""
        try:
            await self.start()
            await self._done.wait()
        except BaseException:
            # never leave children running unsupervised when startup fails or we are cancelled
            await asyncio.shield(self.stop_watchers())
            raise
        finally:
            await self.close()

    async def wait_closed(self) -> None:
        await self._done.wait()

    async def close(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
            self._tick_task = None
        for watcher in self._watchers.values():
            watcher.close()
        if self.controller is not None:
            await self.controller.stop()
            self.controller = None
        if self.stats_stream is not None:
            await self.stats_stream.close()
            self.stats_stream = None
        await asyncio.to_thread(self.sampler.close)
        if self.publisher is not None:
            await self.publisher.close()
            self.publisher = None
        if self.bind_policy.curve is not None:
            self.bind_policy.curve.stop()
            REGISTRY.curve = None
        self.on_demand.close()
        self.socket_counter.close()
        self.sockets.close_all()  # last: nothing that inherited them is left
        if self._context is not None and self._own_context:
            self._context.term()
            self._context = None

    async def quit(self) -> None:
        """Stop everything; :meth:`run` then returns (circusd exits 0). Idempotent."""
        if self._quitting is None:
            self._quitting = asyncio.create_task(self._quit())
        await asyncio.shield(self._quitting)

    async def _quit(self) -> None:
        log.info("stopping every watcher")
        try:
            await self.stop_watchers()
        finally:
            self._done.set()

    async def _tick_loop(self) -> None:
        while True:
            await asyncio.sleep(self.settings.check_delay)
            if self._quitting is not None:
                return
            for watcher in list(self._watchers.values()):
                try:
                    await watcher.tick()
                except Exception:
                    log.exception("housekeeping failed", watcher=watcher.name)

    # -- groups of watchers ------------------------------------------------------------------

    def _by_priority(self, watchers: list[Watcher] | None, *, descending: bool) -> list[Watcher]:
        chosen = list(self._watchers.values()) if watchers is None else list(watchers)
        return sorted(chosen, key=lambda w: w.priority, reverse=descending)

    async def start_watchers(self, watchers: list[Watcher] | None = None) -> None:
        """Start autostart watchers, highest priority first, ``warmup_delay`` between them.

        A watcher that cannot start every process does not hold the others back; the failures
        are raised together at the end (the reply of ``start`` names them).
        """
        failures: list[str] = []
        first = True
        for watcher in self._by_priority(watchers, descending=True):
            if self._quitting is not None:
                return
            if not watcher.autostart:
                continue
            if not first and self.settings.warmup_delay > 0:
                await asyncio.sleep(self.settings.warmup_delay)
            elif not first:
                await asyncio.sleep(0)  # let the controller answer during a long startup
            first = False
            try:
                await watcher.start()
            except SpawnFailed as exc:
                failures.append(exc.reason)
        if failures:
            raise SpawnFailed("; ".join(failures))

    async def stop_watchers(self, watchers: list[Watcher] | None = None) -> None:
        """Stop concurrently, initiated lowest priority first."""
        ordered = self._by_priority(watchers, descending=False)
        await asyncio.gather(*(w.stop() for w in ordered))

    async def restart_watchers(self, watchers: list[Watcher] | None = None) -> None:
        await self.stop_watchers(watchers)
        await self.start_watchers(watchers)

    async def reload(self, graceful: bool = True, sequential: bool = False) -> None:
        """Every watcher, highest priority first; circusd's log output is reopened and the
        authorised CURVE keys re-read first (SIGHUP comes here)."""
        if self.reopen_logs is not None:
            self.reopen_logs()
        try:
            await self._reload_keys(self.settings.curve_authorized_keys)
        except CurveKeyError as exc:  # the watchers are still reloaded
            log.error("authorised CURVE keys not re-read; the previous ones stay", error=str(exc))
        for watcher in self._by_priority(None, descending=True):
            await watcher.reload(graceful=graceful, sequential=sequential)

    # -- add / remove ------------------------------------------------------------------------

    async def add_watcher(
        self,
        name: str,
        cmd: str,
        args: str | list[str] | None,
        options: dict[str, Any],
        start: bool,
    ) -> Watcher:
        """The ``add`` command: publishes ``add``, then starts the watcher when asked."""
        if name.lower() in self._watchers:
            raise ConflictError(f"the watcher '{name}' already exist")
        values: dict[str, Any] = {**options, "cmd": cmd}
        if args is not None:
            values["args"] = args
        try:
            cfg = watcher_from_options(name, values)
            watcher = self._register(cfg)
        except ConfigError as exc:
            raise MessageError(exc.message) from None
        watcher.notify("add")
        if start:
            await watcher.start()
        return watcher

    async def remove_watcher(self, name: str, nostop: bool = False) -> None:
        """The ``rm`` command: ``remove`` first, then (unless nostop) a graceful stop."""
        watcher = self.get_watcher(name)
        watcher.notify("remove")
        del self._watchers[watcher.name.lower()]
        self._loaded.pop(watcher.name.lower(), None)
        self.on_demand.disarm(watcher.name.lower())
        if nostop:
            watcher.abandon()
            return
        await watcher.stop()
        watcher.close_streams()

    # -- configuration reload ----------------------------------------------------------------

    async def reload_config(self) -> None:
        """Re-read the config file and apply the difference (contract ``reloadconfig``)."""
        if self.config_path is None:
            raise MessageError("circusd was not started from a config file")
        async with self._config_lock:
            await self._reload_config(self.config_path)

    async def _reload_config(self, path: str) -> None:
        try:
            new = load_config(path, strict=self.strict_config)
        except ConfigError as exc:
            raise MessageError(str(exc)) from None
        for warning in new.warnings:
            log.warning(str(warning))
        try:
            await self._reload_keys(new.settings.curve_authorized_keys)
        except CurveKeyError as exc:
            raise MessageError(str(exc)) from None
        self.settings.curve_authorized_keys = new.settings.curve_authorized_keys
        if _settings_differ(self.settings, new.settings):
            log.warning("global settings changed: restarting every watcher (not applied)")
            await self.restart_watchers()
            return
        try:
            await self._apply_config(new)
        except ConfigError as exc:
            raise MessageError(str(exc)) from None

    async def _apply_config(self, new: CircusConfig) -> None:
        wanted = {cfg.name.lower(): cfg for cfg in new.watchers}
        for key in [k for k in self._watchers if k not in wanted]:
            await self.remove_watcher_quietly(key)
        await self._apply_sockets(new.sockets)
        failures: list[str] = []
        for key, cfg in wanted.items():
            old = self._loaded.get(key)
            current = self._watchers.get(key)
            try:
                if current is None or old is None:
                    await self._register_and_start(cfg)
                elif old == cfg:
                    continue
                elif dataclasses.replace(old, numprocesses=cfg.numprocesses) == cfg:
                    self._loaded[key] = copy.deepcopy(cfg)
                    await current.apply_count(cfg.numprocesses)
                else:
                    await self.remove_watcher_quietly(key)
                    await self._register_and_start(cfg)
            except SpawnFailed as exc:  # the other watchers are still applied
                failures.append(exc.reason)
        if failures:
            raise SpawnFailed("; ".join(failures))

    async def _apply_sockets(self, configs: list[SocketConfig]) -> None:
        """Diff sockets by name: a changed or removed socket is closed, after the watchers using
        it stopped (they are recreated by the watcher diff); a new or changed one is bound."""
        wanted = {c.name: c for c in configs}
        changed = {
            name
            for name in {*wanted, *self._socket_configs}
            if wanted.get(name) != self._socket_configs.get(name)
        }
        if not changed:
            return
        every = [*self.sockets, *(n for n in wanted if n not in self.sockets)]
        for key, cfg in list(self._loaded.items()):
            if changed & set(used_sockets(cfg, every)) and key in self._watchers:
                await self.remove_watcher_quietly(key)
        for name in sorted(changed):
            self.sockets.remove(name)
            self._socket_configs.pop(name, None)
            if name in wanted:
                self.sockets.add(wanted[name])
                self._socket_configs[name] = wanted[name]
        log.info("sockets reloaded", sockets=sorted(changed))

    async def _reload_keys(self, directory: str | None) -> None:
        """Admit exactly the keys of ``directory`` from now on (CURVE only; circus.curve)."""
        if self.bind_policy.curve is not None:
            await self.bind_policy.curve.reload_authorized(directory)

    async def _register_and_start(self, cfg: WatcherConfig) -> None:
        watcher = self._register(cfg)
        if watcher.autostart and cfg.on_demand:
            self.on_demand.arm(watcher.name.lower(), watcher.config)
        elif watcher.autostart:
            await watcher.start()

    async def remove_watcher_quietly(self, key: str) -> None:
        """Stop and drop a watcher without a ``remove`` event (what reloadconfig does)."""
        watcher = self._watchers.pop(key)
        self._loaded.pop(key, None)
        self.on_demand.disarm(key)
        await watcher.stop()
        watcher.close_streams()


def _settings_differ(old: CircusSettings, new: CircusSettings) -> bool:
    # curve_authorized_keys is applied by reloadconfig itself (Arbiter._reload_keys)
    ignored = {"pidfile", "loglevel", "logoutput", "loggerconfig", "strict",
               "curve_authorized_keys"}
    return any(
        getattr(old, f.name) != getattr(new, f.name)
        for f in dataclasses.fields(CircusSettings)
        if f.name not in ignored
    )


def get_arbiter(
    watchers: list[dict[str, Any]],
    plugins: list[dict[str, Any]] | None = None,
    sockets: list[dict[str, Any]] | None = None,
    **settings: Any,
) -> Arbiter:
    """Build an arbiter from Python: ``watchers`` are option dicts with a ``name`` and ``cmd``;
    ``plugins`` are dicts with ``name``, ``use`` and the plugin's options; ``sockets`` are
    dicts with a ``name`` and the ``[socket:NAME]`` options (0.19's ``sockets`` argument);
    ``settings`` are ``[circus]`` options (``check_delay`` defaults to 1.0 here, as in 0.19's
    API)."""
    settings.setdefault("check_delay", API_CHECK_DELAY)
    known = {f.name for f in dataclasses.fields(CircusSettings)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise ConfigError(f"unknown setting(s): {', '.join(unknown)}", section="circus")
    circus_settings = CircusSettings(**settings)
    configs = [_watcher_config(dict(w)) for w in watchers]
    socket_configs = [_socket_config(dict(s)) for s in sockets or []]
    check_socket_references(configs, socket_configs)
    return Arbiter(configs, circus_settings, plugins=list(plugins or []), sockets=socket_configs)


def _socket_config(options: dict[str, Any]) -> SocketConfig:
    name = options.pop("name", None)
    if not isinstance(name, str) or not name:
        raise ConfigError("every socket needs a 'name'")
    try:
        return socket_from_options(name, options)
    except ConfigError as exc:
        raise ConfigError(exc.message, section=f"socket:{name}", key=exc.key) from None


def _plugin_config(
    plugin: WatcherConfig | Mapping[str, Any], settings: CircusSettings
) -> WatcherConfig:
    if isinstance(plugin, WatcherConfig):
        return plugin
    spec = dict(plugin)
    name = str(spec.pop("name", ""))
    use = str(spec.pop("use", ""))
    return plugin_watcher(name, use, spec, settings, env=None)[1]


def _watcher_config(options: Mapping[str, Any]) -> WatcherConfig:
    values = dict(options)
    name = values.pop("name", None)
    if not isinstance(name, str):
        raise ConfigError("every watcher needs a 'name'")
    return watcher_from_options(name, values)


__all__ = ["Arbiter", "get_arbiter"]
