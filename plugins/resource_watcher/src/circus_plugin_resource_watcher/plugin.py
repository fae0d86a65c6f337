"""The resource_watcher plugin: samples in, ``restart``/``kill``/``signal`` out.

Samples come from circusd's stats stream when it runs (``statsd = true``: circusd samples every
process once a second anyway, so the plugin adds no work to the daemon), judged as they arrive;
otherwise, or while the stream is silent or shows none of the watcher's processes, or with
``process_children`` (the stream carries no children), or with ``stats_stream = false``,
every ``sample_rate`` seconds one ``stats`` call reads the watcher's processes (and their
children). :class:`ResourceTracker` decides; this
class sends the command and the 0.19 statsd counters. A round still running (a sample being
judged, a command in flight) makes the next one a no-op, so a slow daemon never piles up calls
and one condition never gets two actions. Everything runs in the plugin's loop thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from typing import Any, ClassVar

from statsd import StatsClient  # type: ignore[import-untyped]

from circus.errors import CallError, ConfigError
from circus.plugins import AsyncCircusPlugin, Scheduled
from circus.plugins.stats import WatcherStream, daemon_pid
from circus.signals import signal_name
from circus_plugin_resource_watcher.limits import Decision, Entity, ResourceTracker, Sample
from circus_plugin_resource_watcher.settings import OPTIONS, ResourceSettings


def _statsd(config: Mapping[str, Any]) -> StatsClient:
    config = OPTIONS.view(config)
    app = str(config.get("application_name") or "app").strip()
    try:
        port = int(config.get("port") or 8125)
    except ValueError:
        raise ConfigError(f"invalid port {config.get('port')!r}", key="port") from None
    return StatsClient(host=str(config.get("host") or "localhost"), port=port,
                       prefix=f"circus.{app}.watcher")


class ResourceWatcher(AsyncCircusPlugin):
    """Acts on processes of one watcher that use too much (or too little) cpu or memory."""

    name = "resource_watcher"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    required_commands: ClassVar[frozenset[str] | None] = frozenset(
        {"stats", "restart", "kill", "signal"}
    )
    restart_timeout: ClassVar[float] = 60.0

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.settings = ResourceSettings.from_config(self.config)
        self.tracker = ResourceTracker(self.settings)
        self.metrics = _statsd(self.config)
        self._timer: Scheduled | None = None
        self._sampling = False
        self._last_error: str | None = None
        self.stream = WatcherStream(self.settings.watcher)
        self._tasks: set[asyncio.Task[None]] = set()
        #: which source the last round used ("stream" or "stats"), logged when it changes
        self.source: str | None = None

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        ResourceSettings.from_config(config)
        _statsd(config)

    async def handle_init(self) -> None:
        s = self.settings
        limits = [f"{name} {value}" for name, value in (
            ("max_cpu", s.max_cpu and f"{s.max_cpu:g}%"),
            ("min_cpu", s.min_cpu is not None and f"{s.min_cpu:g}%"),
            ("max_mem", s.max_mem and s.max_mem.describe()),
            ("min_mem", s.min_mem and s.min_mem.describe()),
            ("health_threshold", s.health_threshold and f"{s.health_threshold:g}%"),
        ) if value]
        self.log.info(f"watching {s.watcher} every {s.sample_rate:g}s: {', '.join(limits)}; "
                      f"{s.action} after {s.window:g}s over a limit")
        if self.stats_endpoint and s.stats_stream and not s.process_children:
            try:
                self.stream.daemon_pid = daemon_pid(await self.call("dstats"))
            except CallError as exc:
                self.log.warning(f"cannot tell whether the stats stream is circusd's: {exc}; "
                                 "reading stats instead")
        self._timer = self.every(s.sample_rate, self.sample)
        await self.sample()

    def handle_stats(self, watcher: str, pid: int | None, stats: dict[str, Any]) -> None:
        """A stream sample: this watcher's are judged at once (see :meth:`sample`)."""
        if self.stream.take(watcher, pid, stats, time.monotonic()) and not self._sampling:
            task = self.loop.create_task(self.sample())
            self._tasks.add(task)  # a reference until it ends (the loop keeps weak ones)
            task.add_done_callback(self._tasks.discard)

    async def handle_recv(self, data: tuple[str, str]) -> None:
        """Acts on samples, not on events."""

    async def handle_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()

    def _count(self, what: str) -> None:
        self.metrics.incr(f"_resource_watcher.{self.settings.watcher}.{what}")

    async def sample(self) -> None:
        if self._sampling:
            return
        self._sampling = True
        try:
            await self._sample()
        finally:
            self._sampling = False

    def _use(self, source: str) -> None:
        if source != self.source:
            how = ("circusd's stats stream" if source == "stream"
                   else f"stats every {self.settings.sample_rate:g}s")
            self.log.info(f"{self.settings.watcher}: reading {how}")
            self.source = source

    async def _sample(self) -> None:
        if self.stream.carries(time.monotonic()):
            self._use("stream")
            infos, pids = self.stream.take_new(time.monotonic())
            alive: set[Entity] | None = None if pids is None else {(p, None) for p in pids}
            await self._judge({str(pid): info for pid, info in infos.items()}, alive,
                              complete=False)
            return
        self._use("stats")
        await self._poll()

    async def _poll(self) -> None:
        watcher = self.settings.watcher
        try:
            reply = await self.call("stats", name=watcher)
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        if reply.get("status") != "ok" or not isinstance(reply.get("info"), dict):
            self._count("error")
            reason = str(reply.get("reason"))
            if reason != self._last_error:  # once per distinct problem, not every second
                self.log.warning(f"{watcher}: cannot read its stats: {reason}")
                self._last_error = reason
            return
        self._last_error = None
        await self._judge(reply["info"], None, complete=True)

    async def _judge(self, infos: dict[str, Any], alive: set[Entity] | None, *,
                     complete: bool) -> None:
        """Judge one reading per process (``{"<pid>": info}``) and act on what is due.

        The histories of entities that no longer exist are forgotten: those not in ``infos``
        when it is ``complete`` (a ``stats`` reply), else those not in ``alive`` when known
        (the stream's watcher aggregate; its per-process samples may come in several batches).
        """
        now = time.monotonic()
        seen: set[Entity] = set()
        decisions: list[Decision] = []
        for key, info in infos.items():
            if not isinstance(info, dict) or not str(key).isdigit():
                continue  # "No such process (stopped?)"
            pid = int(key)
            entities: list[tuple[Entity, dict[str, Any]]] = [((pid, None), info)]
            if self.settings.process_children:
                entities += [((pid, int(child["pid"])), child)
                             for child in info.get("children", [])
                             if isinstance(child, dict) and isinstance(child.get("pid"), int)]
            for entity, data in entities:
                seen.add(entity)
                kinds, decision = self.tracker.observe(entity, Sample.from_info(data), now)
                for kind in kinds:
                    self._count(kind)
                if decision is not None:
                    decisions.append(decision)
        if complete:
            self.tracker.keep_only(seen)
        elif alive is not None:
            self.tracker.keep_only(alive)
        for decision in decisions:
            if await self.act(decision):
                break  # the whole watcher was restarted: the other decisions are moot

    async def act(self, decision: Decision) -> bool:
        """Send the command for one decision; True when the whole watcher was restarted."""
        s = self.settings
        pid, child = decision.entity
        why = (f"{', '.join(decision.kinds)} for {s.window:g}s "
               f"({decision.sample.describe()})")
        self._count("restarting")
        props: dict[str, Any] = {"name": s.watcher}
        if child is not None:
            command = "signal"
            props.update(pid=pid, childpid=child, signum=s.child_signal)  # 0.19: child_pid (B3)
            what = f"sending {signal_name(s.child_signal)} to child {child} of pid {pid}"
        elif s.action == "restart":
            command = "restart"
            what = "restarting the watcher"
        elif s.action == "kill":
            command = "kill"
            props["pid"] = pid
            what = f"killing pid {pid}"
        else:
            command = "signal"
            props.update(pid=pid, signum=s.signal)
            what = f"sending {signal_name(s.signal)} to pid {pid}"
        self.log.warning(f"{s.watcher}: {why}: {what}", watcher=s.watcher, pid=child or pid)
        try:
            timeout = self.restart_timeout if command == "restart" else None
            reply = await self.call(command, timeout=timeout, **props)
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        if reply.get("status") != "ok":
            self.log.error(f"{s.watcher}: {command} failed: {reply.get('reason')}",
                           watcher=s.watcher)
        if command == "restart":
            self.tracker.reset()
            return True
        return False
