"""The autoscale plugin: a metric in, ``incr``/``decr`` out, every decision logged.

Every ``sample_rate`` seconds: the watcher's ``numprocesses`` (``get``), the metric (for
``cpu``: the latest samples of circusd's stats stream when it runs, ``statsd = true``, else a
``stats`` call), then
:class:`AutoscalePolicy` decides. A change is one ``incr``/``decr`` call; circusd publishes
its ``spawn``/``kill`` events (marked as caused by this plugin where circusd adds ``by``) and
the plugin logs ``web: 2 -> 3 processes (cpu 91.3 above 75 for 5.0s)``. A round still
running makes the next one a no-op. Everything runs in the plugin's loop thread.
"""

from __future__ import annotations

import time
from typing import Any, ClassVar

from circus.errors import CallError
from circus.plugins import AsyncCircusPlugin, Scheduled
from circus.plugins.stats import WatcherStream, daemon_pid
from circus_plugin_autoscale.metrics import CommandMetric, MetricError, average_cpu, from_url
from circus_plugin_autoscale.policy import AutoscalePolicy, Decision
from circus_plugin_autoscale.settings import OPTIONS, AutoscaleSettings


class Autoscale(AsyncCircusPlugin):
    """Keeps a watcher between ``min`` and ``max`` processes, following its load."""

    name = "autoscale"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names
    required_commands: ClassVar[frozenset[str] | None] = frozenset(
        {"get", "stats", "incr", "decr"}
    )

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.settings = AutoscaleSettings.from_config(self.config)
        self.policy = AutoscalePolicy(self.settings)
        self._timer: Scheduled | None = None
        self._busy = False
        self._last_problem: str | None = None
        self._last_held: str | None = None
        self.stream = WatcherStream(self.settings.watcher)
        #: where the last cpu figure came from ("stream" or "stats"), logged when it changes
        self.source: str | None = None
        self._command = (CommandMetric(self.settings.metric_command, self.settings.timeout)
                         if self.settings.metric_command else None)

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        AutoscaleSettings.from_config(config)

    async def handle_init(self) -> None:
        s = self.settings
        source = {"cpu": "average cpu of its processes", "command": repr(s.metric_command),
                  "http": repr(s.metric_url)}[s.metric]
        self.log.info(
            f"scaling {s.watcher} between {s.min} and {s.max} processes on {source}: "
            f"+{s.step} above {s.scale_up:g} for {s.up_after:g}s, -{s.step} below "
            f"{s.scale_down:g} for {s.down_after:g}s, cooldown {s.cooldown:g}s"
        )
        if self.stats_endpoint and s.metric == "cpu" and s.stats_stream:
            try:
                self.stream.daemon_pid = daemon_pid(await self.call("dstats"))
            except CallError as exc:
                self.log.warning(f"cannot tell whether the stats stream is circusd's: {exc}; "
                                 "reading stats instead")
        self._timer = self.every(s.sample_rate, self.round)
        await self.round()

    def handle_stats(self, watcher: str, pid: int | None, stats: dict[str, Any]) -> None:
        """circusd's stats stream: kept for the next round (see :meth:`measure`)."""
        self.stream.take(watcher, pid, stats, time.monotonic())

    async def handle_recv(self, data: tuple[str, str]) -> None:
        """Acts on samples, not on events."""

    async def handle_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._command is not None:
            await self._command.close()

    def _problem(self, message: str | None) -> None:
        """Log a problem once per distinct message (a sample per second must not flood)."""
        if message is not None and message != self._last_problem:
            self.log.warning(f"{self.settings.watcher}: {message}")
        self._last_problem = message

    async def round(self) -> None:
        if self._busy:
            return
        self._busy = True
        try:
            await self._round()
        finally:
            self._busy = False

    async def _round(self) -> None:
        s = self.settings
        try:
            reply = await self.call("get", name=s.watcher, keys=["numprocesses"])
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        try:
            current = int(reply["options"]["numprocesses"])
        except (KeyError, TypeError, ValueError):
            self._problem(f"cannot read numprocesses: {reply.get('reason', reply)}")
            return
        try:
            value: float | None = await self.measure()
            self._problem(None)
        except MetricError as exc:
            self._problem(f"no {s.metric} value: {exc}")
            value = None
        decision = self.policy.observe(value, current, time.monotonic())
        if self.policy.held != self._last_held and self.policy.held:
            self.log.info(f"{s.watcher}: {self.policy.held}")
        self._last_held = self.policy.held
        if decision is not None:
            await self.apply(decision)

    async def measure(self) -> float:
        s = self.settings
        if s.metric == "command":
            assert self._command is not None
            return await self._command.read()
        if s.metric == "http":
            assert s.metric_url is not None
            return await from_url(s.metric_url, s.timeout)
        now = time.monotonic()
        if self.stream.live(now):
            processes = self.stream.processes(now)
            if processes:  # else: no aggregate yet, or no process (stats will say which)
                self._use("stream")
                return average_cpu(processes)
        self._use("stats")
        try:
            reply = await self.call("stats", name=s.watcher)
        except CallError as exc:
            raise MetricError(f"stats: {exc}") from None
        if reply.get("status") != "ok":
            raise MetricError(f"stats: {reply.get('reason')}")
        return average_cpu(reply.get("info"))

    def _use(self, source: str) -> None:
        if source != self.source:
            how = "circusd's stats stream" if source == "stream" else "stats"
            self.log.info(f"{self.settings.watcher}: cpu read from {how}")
            self.source = source

    async def apply(self, decision: Decision) -> None:
        s = self.settings
        command = "incr" if decision.delta > 0 else "decr"
        self.log.warning(f"{s.watcher}: {decision.current} -> {decision.target} processes "
                         f"({decision.reason})", watcher=s.watcher)
        try:
            reply = await self.call(command, name=s.watcher, nb=abs(decision.delta),
                                    waiting=True)
        except CallError as exc:
            reply = {"status": "error", "reason": str(exc)}
        # cool down after a failure too: retrying every sample would hammer circusd
        self.policy.changed(time.monotonic())
        if reply.get("status") != "ok":
            self.log.error(f"{s.watcher}: {command} failed: {reply.get('reason')}",
                           watcher=s.watcher)
