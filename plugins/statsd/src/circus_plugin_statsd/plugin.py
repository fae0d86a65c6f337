"""``StatsdEmitter``: events -> counters; a periodic ``list``/``numprocesses`` and ``stats`` ->
gauges (the latter are 0.19's ``FullStats`` ones, which this plugin now includes).

A blocking ``CircusPlugin``: counters are sent from ``handle_recv`` in the loop thread, and the
gauge refresh is a timer on the same loop (``self.every``) whose ``call``\\ s run on the base
class's command thread, so no socket is shared between threads.
"""

from __future__ import annotations

from typing import Any, ClassVar

from circus.errors import CallError, ConfigError
from circus.plugins import CircusPlugin, Scheduled
from circus_plugin_statsd.emitter import EventMetrics
from circus_plugin_statsd.fullstats import ERROR_BUCKET, full_stats_gauges
from circus_plugin_statsd.settings import OPTIONS, StatsdSettings


def _settings(config: dict[str, Any]) -> StatsdSettings:
    try:
        return StatsdSettings.from_config(config)
    except ValueError as exc:
        key, _, why = str(exc).partition(": ")
        raise ConfigError(why, key=key) from None


class StatsdEmitter(CircusPlugin):
    """Options: host, port, application_name, prefix, sample_rate, gauge_interval (alias
    loop_rate), full_stats."""

    name = "statsd"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names

    def __init__(self, *args: Any, **config: Any) -> None:
        # *args: the original positional form (endpoint, pubsub_endpoint, check_delay, ssh).
        super().__init__(*args, **config)
        self.settings = _settings(self.config)
        try:
            self.metrics = EventMetrics(self.settings)
        except OSError as exc:  # socket.gaierror: unknown host name
            raise ConfigError(f"cannot resolve {self.settings.host!r}: {exc}", key="host") from None
        self._gauges: Scheduled | None = None

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        _settings(config)

    def handle_init(self) -> None:
        if self.settings.gauge_interval > 0:
            self.send_gauges()
            self._gauges = self.every(self.settings.gauge_interval, self.send_gauges)

    def handle_recv(self, data: tuple[str, str]) -> None:
        self.metrics.event(data[0])

    def send_gauges(self) -> None:
        """One gauge per watcher: the number of processes circusd tracks for it; then, with
        ``full_stats``, 0.19's FullStats cpu/mem gauges from one ``stats`` call."""
        self.send_process_counts()
        if self.settings.full_stats:
            self.send_full_stats()

    def send_full_stats(self) -> None:
        try:
            reply = self.call("stats")
        except CallError as exc:
            self.log.warning(f"cannot read process statistics: {exc}")
            self.metrics.count(ERROR_BUCKET)
            return
        if reply.get("status") != "ok" or not isinstance(reply.get("infos"), dict):
            self.metrics.count(ERROR_BUCKET)
            return
        self.metrics.gauges(full_stats_gauges(reply["infos"]))

    def send_process_counts(self) -> None:
        try:
            watchers = self.call("list").get("watchers", [])
            counts: dict[str, int] = {}
            for watcher in watchers:
                reply = self.call("numprocesses", name=watcher)
                value = reply.get("numprocesses")
                if reply.get("status") == "ok" and isinstance(value, int):
                    counts[str(watcher)] = value
        except CallError as exc:
            self.log.warning(f"cannot refresh the process gauges: {exc}")
            return
        self.metrics.process_counts(counts)

    def handle_stop(self) -> None:
        if self._gauges is not None:
            self._gauges.cancel()
        self.metrics.close()
