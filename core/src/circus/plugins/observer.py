"""``HealthObserver``: the base of plugins that probe a service and act on its watcher.

Circus 0.19's ``BaseObserver`` (http_observer, redis_observer) called ``look_after()`` every
``loop_rate`` seconds and cast ``restart`` after every failed probe. This base keeps those option
names and adds what a health check needs to be trusted: a hard timeout around every probe, no
overlapping probes, the :mod:`circus.plugins.failures` policy (N consecutive failures, cooldown
with back-off), a ``signal`` instead of a restart when the service can reload itself, and the
command's reply checked and logged instead of a lost cast.

A subclass implements ``async def check(self) -> CheckResult`` and may override ``report`` to
publish metrics; everything runs in the plugin's loop thread.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

from circus.config.convert import to_float, to_int, to_port, to_positive_float, to_signal
from circus.errors import CallError, ConfigError
from circus.plugins.aio import AsyncCircusPlugin
from circus.plugins.failures import FailurePolicy, FailureRule, Verdict
from circus.plugins.options import PluginOptions
from circus.plugins.scheduling import Scheduled
from circus.signals import signal_name


@dataclass(frozen=True)
class CheckResult:
    """One probe: passed or not, why, and what it measured."""

    ok: bool
    detail: str
    #: a status code for metrics (HTTP status; 599 for no answer, as 0.19 reported)
    code: int | None = None
    #: seconds the probe took (filled in by the observer)
    duration: float = 0.0
    #: numbers the probe read (e.g. Redis INFO fields), for metrics
    values: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ObserverSettings:
    """The options every observer shares (0.19 names first, then ours)."""

    loop_rate: float
    timeout: float
    watcher: str | None
    signal: int | None
    rule: FailureRule
    statsd_host: str
    statsd_port: int
    metric_prefix: str

    @property
    def statsd_kwargs(self) -> dict[str, Any]:
        """``host``, ``port``, ``prefix`` for a statsd client (0.19's metric names)."""
        return {"host": self.statsd_host, "port": self.statsd_port, "prefix": self.metric_prefix}


#: the options every observer reads (:meth:`HealthObserver.parse_settings`), besides its
#: ``target_option``; a subclass declares ``config_options`` as these, its target option and
#: its own: ``OBSERVER_OPTIONS.extend(target_option, *OWN_OPTIONS).names``
OBSERVER_OPTIONS = PluginOptions("watcher", "max_failures", "cooldown", "max_cooldown",
                                 "application_name", "loop_rate", "timeout", "signal", "host",
                                 "port")


def _opt(config: Mapping[str, Any], key: str, convert: Any, default: Any) -> Any:
    value = config.get(key)
    if value is None or (isinstance(value, str) and not value.strip()):
        return default
    try:
        return convert(value)
    except ValueError as exc:
        raise ConfigError(str(exc), key=key) from None


#: circusd 0.19 refuses commands during its tick with this reason (errno 5); the command is
#: sent again every CONFLICT_DELAY s, CONFLICT_ATTEMPTS times at most.
CONFLICT_TEXT = "already running"
CONFLICT_DELAY = 0.25
CONFLICT_ATTEMPTS = 20


class HealthObserver(AsyncCircusPlugin):
    """Probe every ``loop_rate`` s; restart (or signal) the watcher after repeated failures."""

    #: the 0.19 option naming the watcher to restart (``watcher`` is accepted as well)
    target_option: ClassVar[str] = "watcher"
    default_timeout: ClassVar[float] = 10.0
    default_application_name: ClassVar[str] = "app"
    #: what this plugin sends (the daemon may restrict plugins to these)
    required_commands: ClassVar[frozenset[str] | None] = frozenset({"restart", "signal"})
    #: how long the restart command may take to answer (it waits for the old processes)
    restart_timeout: ClassVar[float] = 60.0

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.settings = self.parse_settings(self.config)
        self.policy = FailurePolicy(self.settings.rule)
        self._timer: Scheduled | None = None
        self._checking = False
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def parse_settings(cls, config: Mapping[str, Any]) -> ObserverSettings:
        """Parse the shared options; :class:`ConfigError` names the bad one."""
        config = OBSERVER_OPTIONS.extend(cls.target_option).view(config)
        target = config.get(cls.target_option) or config.get("watcher")
        rule_values = {
            "max_failures": _opt(config, "max_failures", lambda v: to_int(v, minimum=1), 1),
            "cooldown": _opt(config, "cooldown", lambda v: to_float(v, minimum=0.0), 10.0),
        }
        rule_values["max_cooldown"] = _opt(
            config, "max_cooldown", lambda v: to_float(v, minimum=0.0),
            max(600.0, rule_values["cooldown"]),
        )
        try:
            rule = FailureRule(**rule_values)
        except ValueError as exc:
            key, _, message = str(exc).partition(": ")
            raise ConfigError(message, key=key) from None
        app = str(config.get("application_name") or cls.default_application_name).strip()
        return ObserverSettings(
            loop_rate=_opt(config, "loop_rate", to_positive_float, 60.0),
            timeout=_opt(config, "timeout", to_positive_float, cls.default_timeout),
            watcher=(str(target).strip() or None) if target else None,
            signal=_opt(config, "signal", to_signal, None),
            rule=rule,
            statsd_host=str(config.get("host") or "localhost").strip(),
            statsd_port=_opt(config, "port", to_port, 8125),
            metric_prefix=f"circus.{app}.watcher",
        )

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        cls.parse_settings(config)
        cls.check_options(config)

    # -- for subclasses ---------------------------------------------------------------------

    @classmethod
    def check_options(cls, config: dict[str, Any]) -> None:
        """Validate the subclass's own options (raise :class:`ConfigError`)."""

    async def open(self) -> None:
        """Open the probe's client, in the loop thread, before the first check."""

    async def close(self) -> None:
        """Close what :meth:`open` opened, in the loop thread, when the plugin stops."""

    async def check(self) -> CheckResult:
        """Probe the service once (the observer bounds it by ``timeout``)."""
        raise NotImplementedError(f"{type(self).__name__} must implement check")

    def report(self, result: CheckResult, verdict: Verdict) -> None:
        """Called after every probe (metrics); the default does nothing."""

    def describe_target(self) -> str:
        """What is probed, for log lines."""
        return type(self).__name__

    # -- lifecycle --------------------------------------------------------------------------

    async def handle_init(self) -> None:
        await self.open()
        s = self.settings
        action = "no watcher configured: failures are only logged"
        if s.watcher:
            what = f"send {signal_name(s.signal)} to" if s.signal is not None else "restart"
            action = f"{what} {s.watcher} after {s.rule.max_failures} consecutive failure(s)"
        self.log.info(f"observing {self.describe_target()} every {s.loop_rate:g}s "
                      f"(timeout {s.timeout:g}s); {action}")
        self._timer = self.every(s.loop_rate, self.run_check)
        self._spawn(self.run_check())  # first probe now: a broken service shows at once

    async def handle_recv(self, data: tuple[str, str]) -> None:
        """Observers act on their probes, not on events."""

    async def handle_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        for task in list(self._tasks):
            task.cancel()
        await self.close()

    def _spawn(self, coro: Any) -> None:
        task: asyncio.Task[None] = self.loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- one round ----------------------------------------------------------------------------

    async def run_check(self) -> None:
        """Probe once and act on the verdict; a round still running makes this one a no-op."""
        if self._checking:
            self.log.debug("previous check still running; skipping this round")
            return
        self._checking = True
        try:
            result = await self._probe()
            verdict = self.policy.record(result.ok, time.monotonic())
            self._log(result, verdict)
            self.report(result, verdict)
            if verdict is Verdict.ACT and self.settings.watcher:
                await self._act(self.settings.watcher)
        finally:
            self._checking = False

    async def _probe(self) -> CheckResult:
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.settings.timeout):
                result = await self.check()
        except TimeoutError:
            result = CheckResult(False, f"no answer within {self.settings.timeout:g}s", code=599)
        except Exception as exc:  # a probe library's error is a failed check, not a crash
            result = CheckResult(False, f"{type(exc).__name__}: {exc}", code=599)
        return replace(result, duration=time.perf_counter() - started)

    def _log(self, result: CheckResult, verdict: Verdict) -> None:
        rule = self.settings.rule
        if verdict is Verdict.HEALTHY:
            self.log.debug(f"healthy: {result.detail}")
        elif verdict is Verdict.RECOVERED:
            self.log.info(f"healthy again: {result.detail}")
        elif verdict is Verdict.COOLING:
            self.log.info(f"check failed during the cooldown (not counted): {result.detail}")
        elif verdict is Verdict.FAILING:
            self.log.warning(
                f"check failed ({self.policy.failures}/{rule.max_failures}): {result.detail}"
            )
        else:
            self.log.warning(f"check failed ({rule.max_failures}/{rule.max_failures}): "
                             f"{result.detail}")

    async def _act(self, watcher: str) -> None:
        signum = self.settings.signal
        if signum is not None:
            self.log.warning(f"sending {signal_name(signum)} to {watcher}", watcher=watcher)
        else:
            self.log.warning(f"restarting {watcher}", watcher=watcher)
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            try:
                if signum is not None:
                    reply = await self.call("signal", name=watcher, signum=signum)
                else:
                    reply = await self.call("restart", timeout=self.restart_timeout,
                                            name=watcher, match="simple")
            except CallError as exc:
                self.log.error(f"{watcher}: the command got no answer: {exc}", watcher=watcher)
                return
            if reply.get("status") == "ok":
                return
            reason = str(reply.get("reason", ""))
            if CONFLICT_TEXT not in reason or attempt == CONFLICT_ATTEMPTS:
                self.log.error(f"{watcher}: the command failed: {reason}", watcher=watcher)
                return
            # circusd 0.19 refuses commands while its periodic tick runs (contract C3/F4)
            await asyncio.sleep(CONFLICT_DELAY)
