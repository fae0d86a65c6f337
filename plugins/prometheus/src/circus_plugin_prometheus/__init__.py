"""The Prometheus plugin for circus: ``/metrics`` with circusd's watchers and processes.

Per watcher: process count, state, restarts, spawn/reap/crash counters (from events) and CPU and
memory (from process statistics), served by ``prometheus_client``'s HTTP server. See the README
for options, metric names and a scrape configuration.
"""

from circus_plugin_prometheus.plugin import PrometheusExporter

__all__ = ["PrometheusExporter"]
