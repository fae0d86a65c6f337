"""``PrometheusExporter``: circusd's events and statistics served on ``/metrics``.

A blocking ``CircusPlugin``. Events are counted in ``handle_recv``, stream samples taken in
``handle_stats`` (when circusd runs its stats stream); every ``refresh_interval``
a timer asks circusd for ``status``, ``stats`` and ``dstats`` (three calls, whatever the number
of processes: circusd samples them off its event loop) and installs the result. Scrapes are
answered by ``prometheus_client``'s HTTP server thread from the last refresh, so a scrape never
waits on circusd and a slow Prometheus never slows the plugin.
"""

from __future__ import annotations

from typing import Any, ClassVar

from prometheus_client import start_http_server
from prometheus_client.registry import CollectorRegistry

from circus.errors import CallError, ConfigError
from circus.plugins import CircusPlugin, Scheduled
from circus.protocol import split_topic
from circus_plugin_prometheus.metrics import (
    CircusMetrics,
    Snapshot,
    daemon_figures,
    figures_from,
    watcher_label,
)
from circus_plugin_prometheus.settings import OPTIONS, PrometheusSettings


class PrometheusExporter(CircusPlugin):
    """Options: host (127.0.0.1), port (9645), refresh_interval (5 s)."""

    name = "prometheus"
    #: the options it reads: circusd warns about any other key of its section (typos)
    config_options: ClassVar[frozenset[str]] = OPTIONS.names

    def __init__(self, *args: Any, **config: Any) -> None:
        super().__init__(*args, **config)
        self.settings = PrometheusSettings.from_config(self.config)
        self.metrics = CircusMetrics()
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self.metrics)
        self._server: Any = None
        self._refresh: Scheduled | None = None

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Refuse bad option values when circusd loads its configuration."""
        PrometheusSettings.from_config(config)

    def handle_init(self) -> None:
        host, port = self.settings.host, self.settings.port
        try:
            self._server, _ = start_http_server(port, addr=host, registry=self.registry)
        except OSError as exc:
            reason = f"cannot listen on {host}:{port}: {exc.strerror}"
            raise ConfigError(reason, key="port") from None
        self.log.info(f"serving metrics on http://{host}:{port}/metrics")
        self.refresh()
        self._refresh = self.every(self.settings.refresh_interval, self.refresh)

    def handle_stats(self, watcher: str, pid: int | None, stats: dict[str, Any]) -> None:
        """circusd's stats stream (``statsd = true``): fresher cpu/mem than the refresh."""
        self.metrics.stream.take(watcher, pid, stats)

    def handle_recv(self, data: tuple[str, str]) -> None:
        topic, message = data
        try:
            watcher, action = split_topic(topic)
        except ValueError:
            return
        try:
            payload = self.load_message(message)
        except ValueError:
            payload = {}
        self.metrics.event(watcher, action, payload if isinstance(payload, dict) else {})

    def refresh(self) -> None:
        """Ask circusd for states and statistics; a failure leaves ``circus_up`` at 0."""
        try:
            statuses = self.call("status").get("statuses", {})
            infos = self.call("stats").get("infos", {})
            daemon = self.call("dstats").get("info", {})
        except CallError as exc:
            self.log.warning(f"cannot refresh the metrics: {exc}")
            self.metrics.update(Snapshot())
            return
        watchers = {
            watcher_label(name): figures_from(str(state), infos.get(name) or {})
            for name, state in statuses.items()
        }
        pid = daemon.get("pid")
        self.metrics.update(
            Snapshot(watchers, daemon_figures(daemon), True, pid if isinstance(pid, int) else None)
        )

    def handle_stop(self) -> None:
        if self._refresh is not None:
            self._refresh.cancel()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

